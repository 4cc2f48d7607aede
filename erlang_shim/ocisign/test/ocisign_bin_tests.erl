-module(ocisign_bin_tests).
-include_lib("eunit/include/eunit.hrl").

%% {ocisign, [{bin, _}]} > OCISIGN_BIN > priv/ocisign > PATH
lookup_test_() ->
    {setup, fun setup/0, fun cleanup/1, fun tests/1}.

setup() ->
    Dir = filename:join(["/tmp", "ocisign_bin_tests." ++ os:getpid()]),
    Priv = filename:join(Dir, "priv"),
    ok = filelib:ensure_dir(filename:join(Priv, "x")),
    Make = fun(Path, Mode) ->
                   ok = file:write_file(Path, <<"#!/bin/sh\n">>),
                   ok = file:change_mode(Path, Mode),
                   Path
           end,
    #{dir => Dir,
      priv => Priv,
      priv_bin => Make(filename:join(Priv, "ocisign"), 8#755),
      cfg => Make(filename:join(Dir, "cfg-ocisign"), 8#755),
      env => Make(filename:join(Dir, "env-ocisign"), 8#700),
      noexec => Make(filename:join(Dir, "noexec"), 8#644),
      empty_priv => filename:join(Dir, "empty")}.

cleanup(#{dir := Dir}) ->
    os:cmd("rm -rf '" ++ Dir ++ "'").

tests(#{priv := Priv, priv_bin := PrivBin, cfg := Cfg, env := Env, noexec := NoExec,
        empty_priv := EmptyPriv, dir := Dir}) ->
    OnPath = fun("ocisign") -> "/usr/local/bin/ocisign" end,
    NotOnPath = fun(_) -> false end,
    R = fun ocisign_bin:resolve/4,
    [?_assertEqual({ok, Cfg}, R(Cfg, Env, Priv, OnPath)),
     ?_assertEqual({ok, Env}, R(undefined, Env, Priv, OnPath)),
     ?_assertEqual({ok, Env}, R("", Env, Priv, OnPath)),
     ?_assertEqual({ok, PrivBin}, R(undefined, false, Priv, OnPath)),
     ?_assertEqual({ok, PrivBin}, R(undefined, "", Priv, OnPath)),
     ?_assertEqual({ok, "/usr/local/bin/ocisign"}, R(undefined, false, EmptyPriv, OnPath)),
     ?_assertEqual({ok, "/usr/local/bin/ocisign"}, R(undefined, false, undefined, OnPath)),
     %% An explicit setting that does not work is an error, not a fallback.
     ?_assertEqual({error, {bin_not_found, "OCISIGN_BIN", Dir ++ "/nope"}},
                   R(undefined, Dir ++ "/nope", Priv, OnPath)),
     ?_assertEqual({error, {bin_not_executable, "OCISIGN_BIN", NoExec}}, R(undefined, NoExec, Priv, OnPath)),
     ?_assertMatch({error, {bin_not_found, "{ocisign, [{bin, ...}]}" ++ _, _}}, R(Dir ++ "/nope", Env, Priv, OnPath)),
     ?_assertEqual({error, {bin_not_executable, "OCISIGN_BIN", Dir}}, R(undefined, Dir, Priv, OnPath)),
     ?_assertEqual({error, {bin_missing, EmptyPriv}}, R(undefined, false, EmptyPriv, NotOnPath)),
     ?_test(begin
                {error, Missing} = R(undefined, false, EmptyPriv, NotOnPath),
                Msg = ocisign_bin:format_error(Missing),
                ?assertNotEqual(nomatch, string:find(Msg, "go build -o " ++ EmptyPriv ++ "/ocisign ./cmd/ocisign")),
                ?assertNotEqual(nomatch, string:find(Msg, "OCISIGN_BIN")),
                ?assertNotEqual(nomatch, string:find(Msg, "{ocisign, [{bin"))
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
