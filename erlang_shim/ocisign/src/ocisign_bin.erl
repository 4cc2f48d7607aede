%% @doc Finds the ocisign program, in this order:
%%   1. {ocisign, [{bin, Path}]} (Opts bin)      must work when set
%%   2. OCISIGN_BIN                              must work when set
%%   3. the verified download in the cache, for this version and platform
%%      (its SHA-256 is checked again each time)
%%   4. priv/ocisign (a contributor's build) or `ocisign' on PATH, only if
%%      its `version' is this plugin's (a stale binary would be a silent
%%      downgrade; priv may also be this version's -dev build)
%%   5. a fresh download from Opts download_url / OCISIGN_DOWNLOAD_URL /
%%      the project's release URL, verified against priv/checksums.config
%%   6. `go build' from source, when asked ({build_from_source, true} or
%%      OCISIGN_BUILD=1) and Go is there
%% and otherwise an error that lists all of these.
-module(ocisign_bin).

-export([find/1, resolve/4, cache_dir/1, default_download_url/1, format_error/1]).

-define(RELEASE_URL, "https://github.com/ocisign/ocisign/releases/download/v").

-type reason() :: {bin_not_found, Where :: string(), Path :: string()}
                | {bin_not_executable, Where :: string(), Path :: string()}
                | {bin_missing, map()}
                | {bin_download, term(), map()}.
-export_type([reason/0]).

%% @doc Opts (all optional): bin, download_url, build_from_source (boolean),
%% cache_dir (rebar3's cache; default REBAR_CACHE_DIR or ~/.cache/rebar3),
%% say (fun(Format, Args) for the one progress line of a download).
-spec find(map()) -> {ok, string()} | {error, reason()}.
find(Opts) ->
    resolve(to_list(maps:get(bin, Opts, undefined)), os:getenv("OCISIGN_BIN"),
            priv_dir(), fun os:find_executable/1, Opts).

%% @doc Steps 1, 2 and 4 with every input explicit (EUnit); a miss goes on
%% with the cache and the download (find/1's Opts).
-spec resolve(ConfigBin :: string() | undefined, EnvBin :: string() | false,
              PrivDir :: string() | undefined,
              FindOnPath :: fun((string()) -> string() | false)) ->
          {ok, string()} | {error, reason()}.
resolve(ConfigBin, EnvBin, Priv, Find) ->
    resolve(ConfigBin, EnvBin, Priv, Find, #{download => false}).

resolve(ConfigBin, _EnvBin, _Priv, _Find, _Opts) when is_list(ConfigBin), ConfigBin =/= "" ->
    explicit("{ocisign, [{bin, ...}]} in rebar.config", ConfigBin);
resolve(_ConfigBin, EnvBin, _Priv, _Find, _Opts) when is_list(EnvBin), EnvBin =/= "" ->
    explicit("OCISIGN_BIN", EnvBin);
resolve(_ConfigBin, _EnvBin, Priv, Find, Opts) ->
    Version = ocisign_release:version(),
    Local = [P || P <- [priv_program(Priv), Find("ocisign")], is_list(P)],
    case maps:get(download, Opts, true) of
        false -> first_matching(Local, Version, #{version => Version, priv => Priv});
        true -> cached_or_fetched(Local, Version, Priv, Opts)
    end.

cached_or_fetched(Local, Version, Priv, Opts) ->
    Seen = #{version => Version, priv => Priv},
    case ocisign_release:table() of
        {ok, Table} ->
            Platform = ocisign_release:platform(),
            case ocisign_release:artifact(Table, Platform) of
                {ok, #{name := Name} = Artifact} ->
                    Cached = filename:join([cache_dir(Opts), "ocisign", Version, Name]),
                    case verified(Cached, Artifact) of
                        true ->
                            {ok, Cached};
                        false ->
                            case first_matching(Local, Version, Seen) of
                                {ok, _} = Found -> Found;
                                {error, {bin_missing, Seen1}} ->
                                    fetch(Artifact, Cached, Version, Opts, Seen1#{cache => Cached})
                            end
                    end;
                none ->
                    or_build(first_matching(Local, Version, Seen), {unknown_platform, Platform}, Opts)
            end;
        {error, Why} ->
            or_build(first_matching(Local, Version, Seen), Why, Opts)
    end.

fetch(#{name := Name} = Artifact, Cached, Version, Opts, Seen) ->
    Base = string:trim(download_base(Opts, Version), trailing, "/"),
    Url = Base ++ "/" ++ Name,
    case ocisign_download:fetch(Url, Artifact, Cached, say(Opts)) of
        ok -> {ok, Cached};
        {error, Why} -> or_build({error, {bin_missing, Seen}}, Why, Opts)
    end.

%% Step 6, or the error naming every step (Seen: what was looked at).
or_build({ok, _} = Found, _Why, _Opts) ->
    Found;
or_build({error, {bin_missing, Seen}}, Why, Opts) ->
    case build_asked(Opts) of
        true -> build(Opts, Seen);
        false -> {error, {bin_download, Why, Seen}}
    end.

build_asked(Opts) ->
    maps:get(build_from_source, Opts, false) =:= true orelse os:getenv("OCISIGN_BUILD") =:= "1".

%% From the repository the plugin sits in (a checkout or _checkouts), else
%% `go install' of this version's module from the Go module proxy.
build(Opts, Seen) ->
    case os:find_executable("go") of
        false ->
            {error, {bin_download, no_go, Seen}};
        Go ->
            Dir = filename:join([cache_dir(Opts), "ocisign", maps:get(version, Seen), "built"]),
            ok = filelib:ensure_path(Dir),
            Out = filename:join(Dir, "ocisign"),
            Say = say(Opts),
            Say("ocisign: building the ocisign program with ~ts (build_from_source)", [Go]),
            Cmd = case source_root() of
                      {ok, Root} ->
                          {Root, ["build", "-trimpath", "-o", Out, "./cmd/ocisign"], []};
                      none ->
                          {Dir, ["install", "github.com/ocisign/ocisign/cmd/ocisign@v" ++ maps:get(version, Seen)],
                           [{"GOBIN", Dir}]}
                  end,
            case run(Go, Cmd) of
                {0, _} -> {ok, Out};
                {Status, Output} -> {error, {bin_download, {build_failed, Status, Output}, Seen}}
            end
    end.

%% The checkout the plugin's files come from: a _checkouts/ocisign link (or
%% priv link in _build) into a clone of the repository, whose root has
%% cmd/ocisign. rebar3's git_subdir installs fetch erlang_shim/ only.
source_root() ->
    case code:priv_dir(ocisign) of
        {error, _} -> none;
        Priv ->
            App = filename:dirname(real_path(Priv)),
            Root = filename:dirname(filename:dirname(App)),
            case filelib:is_regular(filename:join([Root, "cmd", "ocisign", "main.go"])) of
                true -> {ok, Root};
                false -> none
            end
    end.

%% Every symbolic link resolved (readlink -f), or Path as it is.
real_path(Path) ->
    case os:find_executable("readlink") of
        false -> Path;
        Readlink ->
            case run(Readlink, {"/", ["-f", Path], []}) of
                {0, Out} -> string:trim(binary_to_list(Out));
                _ -> Path
            end
    end.

%% Runs Exe in Dir; {ExitStatus | timeout, Output} within TimeoutMs.
run(Exe, {Dir, Args, Env}) ->
    run(Exe, {Dir, Args, Env}, 600000).

run(Exe, {Dir, Args, Env}, TimeoutMs) ->
    Port = open_port({spawn_executable, Exe}, [{args, Args}, {cd, Dir}, {env, Env}, exit_status,
                                                stderr_to_stdout, binary]),
    collect(Port, <<>>, TimeoutMs).

collect(Port, Acc, TimeoutMs) ->
    receive
        {Port, {data, D}} -> collect(Port, <<Acc/binary, D/binary>>, TimeoutMs);
        {Port, {exit_status, S}} -> {S, Acc}
    after TimeoutMs ->
        catch port_close(Port),
        {timeout, Acc}
    end.

%% The cached file is used only while its bytes are the pinned ones.
verified(Path, #{sha256 := Sha, size := Size}) ->
    case file:read_file_info(Path) of
        {ok, Info} when element(2, Info) =:= Size ->
            case file:read_file(Path) of
                {ok, Bin} -> hex(crypto:hash(sha256, Bin)) =:= Sha andalso executable(Path) =:= ok;
                _ -> false
            end;
        _ ->
            false
    end.

hex(Bin) -> lists:flatten([io_lib:format("~2.16.0b", [B]) || <<B>> <= Bin]).

first_matching([], _Version, Seen) ->
    {error, {bin_missing, Seen}};
first_matching([P | Rest], Version, Seen) ->
    case executable(P) =:= ok andalso program_version(P) of
        {ok, V} when V =:= Version -> {ok, filename:absname(P)};
        {ok, V} ->
            case P =:= priv_program(maps:get(priv, Seen)) andalso V =:= Version ++ "-dev" of
                true -> {ok, filename:absname(P)};
                false -> first_matching(Rest, Version, Seen#{skipped => [{P, V} | maps:get(skipped, Seen, [])]})
            end;
        _ ->
            first_matching(Rest, Version, Seen)
    end.

%% `ocisign version' prints "ocisign VERSION (commit C)".
program_version(Path) ->
    case run(Path, {"/", ["version"], []}, 10000) of
        {0, <<"ocisign ", Rest/binary>>} -> {ok, binary_to_list(hd(binary:split(Rest, [<<" ">>, <<"\n">>])))};
        _ -> error
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

priv_program(undefined) -> undefined;
priv_program(Priv) -> filename:join(Priv, "ocisign").

%% @doc rebar3's cache directory unless Opts names one: REBAR_CACHE_DIR,
%% else the user cache directory's rebar3 (~/.cache/rebar3).
-spec cache_dir(map()) -> file:filename().
cache_dir(#{cache_dir := Dir}) when Dir =/= undefined -> Dir;
cache_dir(_) ->
    case os:getenv("REBAR_CACHE_DIR") of
        Dir when is_list(Dir), Dir =/= "" -> Dir;
        _ -> filename:basedir(user_cache, "rebar3")
    end.

download_base(Opts, Version) ->
    case to_list(maps:get(download_url, Opts, undefined)) of
        U when is_list(U), U =/= "" -> U;
        _ ->
            case os:getenv("OCISIGN_DOWNLOAD_URL") of
                U when is_list(U), U =/= "" -> U;
                _ -> default_download_url(Version)
            end
    end.

%% @doc Where the project publishes a version's release files.
-spec default_download_url(string()) -> string().
default_download_url(Version) -> ?RELEASE_URL ++ Version.

say(#{say := Say}) when is_function(Say, 2) -> Say;
say(_) -> fun(Fmt, Args) -> io:format(standard_error, Fmt ++ "~n", Args) end.

to_list(undefined) -> undefined;
to_list(B) when is_binary(B) -> unicode:characters_to_list(B);
to_list(L) when is_list(L) -> L;
to_list(A) when is_atom(A) -> atom_to_list(A).

-spec format_error(reason()) -> string().
format_error({bin_not_found, Where, Path}) ->
    f("the ocisign program set by ~ts does not exist: ~ts", [Where, Path]);
format_error({bin_not_executable, Where, Path}) ->
    f("the ocisign program set by ~ts is not an executable file: ~ts", [Where, Path]);
format_error({bin_missing, Seen}) ->
    f("the ocisign program ~s was not found.~ts", [maps:get(version, Seen), ways(Seen)]);
format_error({bin_download, Why, Seen}) ->
    f("the ocisign program ~s is not available: ~ts.~ts", [maps:get(version, Seen), why(Why), ways(Seen)]).

why({unknown_platform, {unknown, SysArch}}) ->
    f("no release file for this platform (~ts; releases exist for linux and darwin on amd64 and arm64)", [SysArch]);
why({unknown_platform, {Os, Arch}}) ->
    f("no release file for ~s/~s in priv/checksums.config", [Os, Arch]);
why({no_checksums, Path}) ->
    f("the plugin has no checksum table (~ts; `make release` writes it)", [Path]);
why({bad_checksums, Path}) ->
    f("the checksum table ~ts does not parse", [Path]);
why(no_go) ->
    "build_from_source was asked for, but there is no `go` on PATH";
why({build_failed, Status, Output}) ->
    f("`go build` failed (~p): ~ts", [Status, Output]);
why(Other) ->
    ocisign_download:format_error(Other).

ways(Seen) ->
    Skipped = [f("~n  - ~ts is version ~ts, not ~s (not used)", [P, V, maps:get(version, Seen)])
               || {P, V} <- lists:reverse(maps:get(skipped, Seen, []))],
    f("~ts~nWays to get it, in the order they are tried:~n"
      "  1. {ocisign, [{bin, \"/path/to/ocisign\"}]} in rebar.config~n"
      "  2. OCISIGN_BIN=/path/to/ocisign~n"
      "  3. the verified download cached at ~ts~n"
      "  4. ~ts or `ocisign` on PATH, when its version is ~s~n"
      "  5. a download from {ocisign, [{download_url, URL}]} or OCISIGN_DOWNLOAD_URL (a mirror or an internal "
      "artifact store holding the release files), else ~ts; behind a proxy set HTTPS_PROXY~n"
      "  6. {ocisign, [{build_from_source, true}]} or OCISIGN_BUILD=1, with Go installed",
      [Skipped, maps:get(cache, Seen, "<rebar3 cache>/ocisign/" ++ maps:get(version, Seen) ++ "/"),
       case maps:get(priv, Seen) of undefined -> "<plugin>/priv/ocisign"; P -> filename:join(P, "ocisign") end,
       maps:get(version, Seen), default_download_url(maps:get(version, Seen))]).

f(Fmt, Args) -> lists:flatten(io_lib:format(Fmt, Args)).
