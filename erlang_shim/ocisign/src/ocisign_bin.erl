%% @doc Finds the ocisign Go program.
%%
%% Order: {ocisign, [{bin, Path}]} (passed in as Opts bin) > OCISIGN_BIN >
%% code:priv_dir(ocisign)/ocisign > `ocisign' on PATH. A path the user set
%% explicitly (config or OCISIGN_BIN) must work: it is never silently skipped
%% for another binary.
-module(ocisign_bin).

-export([find/1, resolve/4, format_error/1]).

-type reason() :: {bin_not_found, Where :: string(), Path :: string()}
                | {bin_not_executable, Where :: string(), Path :: string()}
                | {bin_missing, Priv :: string() | undefined}.
-export_type([reason/0]).

%% @doc Opts is a map; its `bin' key (string or binary) is the configured path.
-spec find(map()) -> {ok, string()} | {error, reason()}.
find(Opts) ->
    resolve(to_list(maps:get(bin, Opts, undefined)), os:getenv("OCISIGN_BIN"),
            priv_dir(), fun os:find_executable/1).

%% @doc The lookup with every input explicit (used by find/1 and by tests).
-spec resolve(ConfigBin :: string() | undefined, EnvBin :: string() | false,
              PrivDir :: string() | undefined,
              FindOnPath :: fun((string()) -> string() | false)) ->
          {ok, string()} | {error, reason()}.
resolve(ConfigBin, _EnvBin, _Priv, _Find) when is_list(ConfigBin), ConfigBin =/= "" ->
    explicit("{ocisign, [{bin, ...}]} in rebar.config", ConfigBin);
resolve(_ConfigBin, EnvBin, _Priv, _Find) when is_list(EnvBin), EnvBin =/= "" ->
    explicit("OCISIGN_BIN", EnvBin);
resolve(_ConfigBin, _EnvBin, Priv, Find) ->
    InPriv = case Priv of
                 undefined -> false;
                 _ -> filename:join(Priv, "ocisign")
             end,
    case InPriv =/= false andalso executable(InPriv) of
        ok ->
            {ok, filename:absname(InPriv)};
        _ ->
            case Find("ocisign") of
                false -> {error, {bin_missing, Priv}};
                Path -> {ok, filename:absname(Path)}
            end
    end.

explicit(Where, Path) ->
    case executable(Path) of
        ok -> {ok, filename:absname(Path)};
        enoent -> {error, {bin_not_found, Where, Path}};
        not_executable -> {error, {bin_not_executable, Where, Path}}
    end.

executable(Path) ->
    case file:read_file_info(Path) of
        {ok, Info} ->
            %% #file_info.type is element 3, #file_info.mode element 8; no include
            %% needed for two fields.
            Type = element(3, Info),
            Mode = element(8, Info),
            case Type =:= regular andalso (Mode band 8#111) =/= 0 of
                true -> ok;
                false -> not_executable
            end;
        {error, _} ->
            enoent
    end.

priv_dir() ->
    case code:priv_dir(ocisign) of
        {error, _} -> undefined;
        Dir -> Dir
    end.

to_list(undefined) -> undefined;
to_list(B) when is_binary(B) -> unicode:characters_to_list(B);
to_list(L) when is_list(L) -> L;
to_list(A) when is_atom(A) -> atom_to_list(A).

-spec format_error(reason()) -> string().
format_error({bin_not_found, Where, Path}) ->
    lists:flatten(io_lib:format(
      "the ocisign program set by ~ts does not exist: ~ts", [Where, Path]));
format_error({bin_not_executable, Where, Path}) ->
    lists:flatten(io_lib:format(
      "the ocisign program set by ~ts is not an executable file: ~ts", [Where, Path]));
format_error({bin_missing, Priv}) ->
    Target = case Priv of
                 undefined -> "<ocisign plugin>/priv/ocisign";
                 _ -> filename:join(Priv, "ocisign")
             end,
    lists:flatten(io_lib:format(
      "the ocisign program was not found (looked at {ocisign, [{bin, ...}]}, OCISIGN_BIN, ~ts "
      "and PATH). Build it from the ocisign repository with `go build -o ~ts ./cmd/ocisign`, "
      "or point to a built one with OCISIGN_BIN=/path/to/ocisign or "
      "{ocisign, [{bin, \"/path/to/ocisign\"}]} in rebar.config", [Target, Target])).
