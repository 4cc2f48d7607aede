%% @doc The release this plugin trusts: priv/checksums.config, written by
%% `make release' and committed with it (never fetched): the version, and
%% for each platform the program file's name, SHA-256 and size.
-module(ocisign_release).

-export([table/0, table/1, version/0, platform/0, platform/1, artifact/2]).

-type artifact() :: #{os := string(), arch := string(), name := string(), sha256 := string(),
                      size := non_neg_integer()}.
-type table() :: #{version := string(), commit := string(), artifacts := [artifact()]}.
-export_type([artifact/0, table/0]).

-spec table() -> {ok, table()} | {error, term()}.
table() ->
    case code:priv_dir(ocisign) of
        {error, _} -> {error, {no_checksums, "<ocisign plugin>/priv/checksums.config"}};
        Priv -> table(filename:join(Priv, "checksums.config"))
    end.

-spec table(file:filename()) -> {ok, table()} | {error, term()}.
table(Path) ->
    case file:consult(Path) of
        {ok, Terms} ->
            case {proplists:get_value(version, Terms), proplists:get_value(commit, Terms, "unknown"),
                  proplists:get_value(artifacts, Terms)} of
                {V, C, As} when is_list(V), is_list(As) ->
                    {ok, #{version => V, commit => C,
                           artifacts => [#{os => Os, arch => Arch, name => N, sha256 => string:lowercase(S), size => Sz}
                                         || {Os, Arch, N, S, Sz} <- As]}};
                _ ->
                    {error, {bad_checksums, Path}}
            end;
        {error, _} ->
            {error, {no_checksums, Path}}
    end.

%% @doc The plugin's version (the release it trusts); the app's vsn is the
%% same number (make release writes both).
-spec version() -> string().
version() ->
    case table() of
        {ok, #{version := V}} -> V;
        _ ->
            _ = application:load(ocisign),
            case application:get_key(ocisign, vsn) of
                {ok, V} -> V;
                undefined -> "unknown"
            end
    end.

%% @doc {Os, Arch} in Go's names for this runtime, or {unknown, Arch}.
-spec platform() -> {string(), string()} | {unknown, string()}.
platform() ->
    platform(erlang:system_info(system_architecture)).

-spec platform(string()) -> {string(), string()} | {unknown, string()}.
platform(SysArch) ->
    Os = case {string:find(SysArch, "linux"), string:find(SysArch, "darwin")} of
             {nomatch, nomatch} -> unknown;
             {nomatch, _} -> "darwin";
             _ -> "linux"
         end,
    Arch = case hd(string:split(SysArch, "-")) of
               A when A =:= "x86_64"; A =:= "amd64" -> "amd64";
               A when A =:= "aarch64"; A =:= "arm64" -> "arm64";
               _ -> unknown
           end,
    case Os =:= unknown orelse Arch =:= unknown of
        true -> {unknown, SysArch};
        false -> {Os, Arch}
    end.

-spec artifact(table(), {string(), string()}) -> {ok, artifact()} | none.
artifact(#{artifacts := As}, {Os, Arch}) ->
    case [A || #{os := O, arch := R} = A <- As, O =:= Os, R =:= Arch] of
        [A | _] -> {ok, A};
        [] -> none
    end.
