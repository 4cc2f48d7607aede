-module(ocisign_bin_tests).
-include_lib("eunit/include/eunit.hrl").

%% {ocisign, [{bin, _}]} > OCISIGN_BIN > (cache) > priv/ocisign or PATH of this
%% version > (download) > (build); resolve/4 covers the steps without network.
lookup_test_() ->
    {setup, fun setup/0, fun cleanup/1, fun tests/1}.

setup() ->
    V = ocisign_release:version(),
    Dir = filename:join(["/tmp", "ocisign_bin_tests." ++ os:getpid()]),
    Priv = filename:join(Dir, "priv"),
    ok = filelib:ensure_dir(filename:join(Priv, "x")),
    Make = fun(Path, Mode, Version) ->
                   ok = file:write_file(Path, ["#!/bin/sh\necho 'ocisign ", Version, " (commit test)'\n"]),
                   ok = file:change_mode(Path, Mode),
                   Path
           end,
    #{dir => Dir, version => V,
      priv => Priv,
      priv_bin => Make(filename:join(Priv, "ocisign"), 8#755, V ++ "-dev"),
      cfg => Make(filename:join(Dir, "cfg-ocisign"), 8#755, "0.0.1"),
      env => Make(filename:join(Dir, "env-ocisign"), 8#700, "0.0.1"),
      current => Make(filename:join(Dir, "current"), 8#755, V),
      stale => Make(filename:join(Dir, "stale"), 8#755, "0.0.9"),
      dev_on_path => Make(filename:join(Dir, "dev"), 8#755, V ++ "-dev"),
      noexec => Make(filename:join(Dir, "noexec"), 8#644, V),
      empty_priv => filename:join(Dir, "empty")}.

cleanup(#{dir := Dir}) ->
    os:cmd("rm -rf '" ++ Dir ++ "'").

tests(#{priv := Priv, priv_bin := PrivBin, cfg := Cfg, env := Env, noexec := NoExec, current := Current,
        stale := Stale, dev_on_path := DevOnPath, empty_priv := EmptyPriv, dir := Dir, version := V}) ->
    OnPath = fun(Bin) -> fun("ocisign") -> Bin end end,
    NotOnPath = fun(_) -> false end,
    R = fun ocisign_bin:resolve/4,
    [%% Explicit settings win and are used whatever their version.
     ?_assertEqual({ok, Cfg}, R(Cfg, Env, Priv, OnPath(Current))),
     ?_assertEqual({ok, Env}, R(undefined, Env, Priv, OnPath(Current))),
     ?_assertEqual({ok, Env}, R("", Env, Priv, OnPath(Current))),
     %% priv/ocisign of this version (a -dev build is fine there), then PATH.
     ?_assertEqual({ok, PrivBin}, R(undefined, false, Priv, OnPath(Current))),
     ?_assertEqual({ok, PrivBin}, R(undefined, "", Priv, NotOnPath)),
     ?_assertEqual({ok, Current}, R(undefined, false, EmptyPriv, OnPath(Current))),
     ?_assertEqual({ok, Current}, R(undefined, false, undefined, OnPath(Current))),
     %% A stale or -dev program on PATH is not used: a silent downgrade.
     ?_assertMatch({error, {bin_missing, #{skipped := [{Stale, "0.0.9"}]}}}, R(undefined, false, EmptyPriv, OnPath(Stale))),
     ?_assertMatch({error, {bin_missing, _}}, R(undefined, false, EmptyPriv, OnPath(DevOnPath))),
     ?_assertMatch({error, {bin_missing, _}}, R(undefined, false, EmptyPriv, NotOnPath)),
     %% An explicit setting that does not work is an error, not a fallback.
     ?_assertEqual({error, {bin_not_found, "OCISIGN_BIN", Dir ++ "/nope"}},
                   R(undefined, Dir ++ "/nope", Priv, OnPath(Current))),
     ?_assertEqual({error, {bin_not_executable, "OCISIGN_BIN", NoExec}}, R(undefined, NoExec, Priv, OnPath(Current))),
     ?_assertMatch({error, {bin_not_found, "{ocisign, [{bin, ...}]}" ++ _, _}}, R(Dir ++ "/nope", Env, Priv, OnPath(Current))),
     ?_assertEqual({error, {bin_not_executable, "OCISIGN_BIN", Dir}}, R(undefined, Dir, Priv, OnPath(Current))),
     ?_test(begin
                {error, Missing} = R(undefined, false, EmptyPriv, OnPath(Stale)),
                Msg = ocisign_bin:format_error(Missing),
                [?assertNotEqual(nomatch, string:find(Msg, S), S)
                 || S <- [Stale ++ " is version 0.0.9, not " ++ V, "OCISIGN_BIN", "{ocisign, [{bin",
                          "download_url", "OCISIGN_DOWNLOAD_URL", "build_from_source", "OCISIGN_BUILD=1",
                          "HTTPS_PROXY", ocisign_bin:default_download_url(V)]]
            end),
     %% find/1 reads the real environment: an explicit bin in Opts wins.
     ?_assertEqual({ok, Cfg}, ocisign_bin:find(#{bin => list_to_binary(Cfg)})),
     ?_test(begin
                Old = os:getenv("OCISIGN_BIN"),
                os:putenv("OCISIGN_BIN", Env),
                try
                    ?assertEqual({ok, Env}, ocisign_bin:find(#{}))
                after
                    case Old of false -> os:unsetenv("OCISIGN_BIN"); _ -> os:putenv("OCISIGN_BIN", Old) end
                end
            end)].

platform_test_() ->
    P = fun ocisign_release:platform/1,
    [?_assertEqual({"linux", "amd64"}, P("x86_64-pc-linux-gnu")),
     ?_assertEqual({"linux", "amd64"}, P("x86_64-alpine-linux-musl")),
     ?_assertEqual({"linux", "arm64"}, P("aarch64-unknown-linux-gnu")),
     ?_assertEqual({"darwin", "arm64"}, P("aarch64-apple-darwin23.0.0")),
     ?_assertEqual({"darwin", "amd64"}, P("x86_64-apple-darwin21.6.0")),
     ?_assertEqual({unknown, "win32"}, P("win32")),
     ?_assertEqual({unknown, "riscv64-unknown-linux-gnu"}, P("riscv64-unknown-linux-gnu"))].

%% The committed table is the one `make release' writes: every platform,
%% the app's version, well-formed digests.
checksum_table_test() ->
    {ok, #{version := V, artifacts := As}} = ocisign_release:table(),
    _ = application:load(ocisign),
    {ok, Vsn} = application:get_key(ocisign, vsn),
    ?assertEqual(Vsn, V),
    ?assertEqual(lists:sort([{"darwin", "amd64"}, {"darwin", "arm64"}, {"linux", "amd64"}, {"linux", "arm64"}]),
                 lists:sort([{O, A} || #{os := O, arch := A} <- As])),
    [?assertMatch({match, _}, re:run(S, "^[0-9a-f]{64}$")) || #{sha256 := S} <- As],
    [?assertEqual("ocisign-" ++ V ++ "-" ++ O ++ "-" ++ A, N) || #{os := O, arch := A, name := N} <- As].

download_url_test_() ->
    C = fun ocisign_download:check_url/1,
    [?_assertEqual(ok, C("https://mirror.example/ocisign/v1")),
     ?_assertEqual(ok, C("http://127.0.0.1:8080/r")),
     ?_assertEqual(ok, C("http://localhost/r")),
     ?_assertEqual({error, {insecure_download_url, "http://mirror.example/r"}}, C("http://mirror.example/r")),
     ?_assertEqual({error, {bad_download_url, "ftp://x/r"}}, C("ftp://x/r"))].

proxy_options_test_() ->
    Env = fun(M) -> fun(K) -> maps:get(K, M, false) end end,
    P = fun(M) -> ocisign_download:proxy_options(Env(M)) end,
    [?_assertEqual([], P(#{})),
     ?_assertEqual([{https_proxy, {{"proxy.corp", 3128}, ["*.corp", "localhost"]}}],
                   P(#{"HTTPS_PROXY" => "http://proxy.corp:3128", "NO_PROXY" => ".corp, localhost"})),
     ?_assertEqual([{https_proxy, {{"p", 8080}, []}}, {proxy, {{"q", 80}, []}}],
                   P(#{"https_proxy" => "p:8080", "HTTP_PROXY" => "http://q"}))].

%% A download URL's user-info is a credential: never in a message.
download_url_credentials_test_() ->
    Url = "https://robot:S3cretTok@artifacts.internal/ocisign/ocisign-0.1.0-linux-amd64",
    F = fun ocisign_download:format_error/1,
    Clean = fun(Msg) -> string:find(Msg, "S3cretTok") =:= nomatch andalso string:find(Msg, "artifacts.internal") =/= nomatch end,
    [?_assert(Clean(F({download_failed, Url, {http_status, 404}}))),
     ?_assert(Clean(F({download_failed, Url, econnrefused}))),
     ?_assert(Clean(F({checksum_mismatch, Url, "aa", "bb"}))),
     ?_assert(Clean(F({size_mismatch, Url, 10, 3}))),
     ?_assert(Clean(F({insecure_download_url, "http://robot:S3cretTok@artifacts.internal/x"}))),
     ?_test(begin
                {error, Reason} = ocisign_config:options([{download_url, "http://robot:S3cretTok@artifacts.internal/x"}]),
                ?assert(Clean(ocisign_config:format_error(Reason)))
            end)].
