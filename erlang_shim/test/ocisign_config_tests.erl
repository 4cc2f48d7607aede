-module(ocisign_config_tests).
-include_lib("eunit/include/eunit.hrl").

-import(ocisign_config, [sign_key/3, tags/2, resolve_tags/2, release_name/2, references/3,
                         parse_push_destination/1, extract_repo_path/1, parse_tag/1, options/1]).

%% --sign-key > OCIBUILD_SIGN_KEY > {ocibuild, [{sign_key, _}]}
sign_key_test_() ->
    Cli = [{sign_key, "cli.key"}],
    Cfg = [{sign_key, "config.key"}],
    [?_assertEqual({ok, cli, "cli.key"}, sign_key(Cli, Cfg, "env.key")),
     ?_assertEqual({ok, env, "env.key"}, sign_key([], Cfg, "env.key")),
     ?_assertEqual({ok, config, "config.key"}, sign_key([], Cfg, false)),
     ?_assertEqual({ok, config, "config.key"}, sign_key([], Cfg, "")),
     ?_assertEqual({ok, config, "bin.key"}, sign_key([], [{sign_key, <<"bin.key">>}], false)),
     ?_assertEqual({ok, cli, "cli.key"}, sign_key(Cli, [], false)),
     ?_assertEqual(none, sign_key([{push, "r"}], [{tag, "a:1"}], false)),
     ?_assertEqual(none, sign_key([], [], ""))].

tags_test_() ->
    [?_assertEqual([<<"a:1">>, <<"a:2">>], tags([{tag, "a:1"}, {push, "x"}, {tag, "a:2"}], [{tag, "c:1"}])),
     ?_assertEqual([<<"a:1">>, <<"a:latest">>, <<"b:2">>],
                   tags([{tag, "a:1; a:latest ;"}, {tag, "b:2"}], [])),
     ?_assertEqual([<<"c:1">>], tags([], [{tag, "c:1"}])),
     ?_assertEqual([<<"c:1">>], tags([], [{tag, <<"c:1">>}])),
     ?_assertEqual([<<"c:1">>, <<"c:2">>, <<"c:3">>], tags([], [{tag, ["c:1", <<"c:2;c:3">>]}])),
     ?_assertEqual([], tags([], [])),
     ?_assertEqual([], tags([], [{tag, []}]))].

release_name_test_() ->
    Relx = [{dev_mode, true}, {release, {myrel, "1.0.0"}, [myapp]}, {release, {other, "2"}, [x]}],
    [?_assertEqual({ok, <<"myrel">>}, release_name([], Relx)),
     ?_assertEqual({ok, <<"myrel">>}, release_name([], [{release, {myrel, "1"}, [a], [{extended_start_script, true}]}])),
     ?_assertEqual({ok, <<"other">>}, release_name([{release, "other"}], Relx)),
     ?_assertEqual(none, release_name([], [])),
     ?_assertEqual(none, release_name([], [{dev_mode, true}]))].

%% ocibuild_release's documented examples.
parse_push_destination_test_() ->
    [?_assertEqual({<<"ghcr.io">>, <<>>}, parse_push_destination(<<"ghcr.io">>)),
     ?_assertEqual({<<"ghcr.io">>, <<"myorg">>}, parse_push_destination(<<"ghcr.io/myorg">>)),
     ?_assertEqual({<<"ghcr.io">>, <<"org/team">>}, parse_push_destination(<<"ghcr.io/org/team">>)),
     ?_assertEqual({<<"docker.io">>, <<"myorg">>}, parse_push_destination(<<"docker.io/myorg">>)),
     ?_assertEqual({<<"localhost:5000">>, <<"myorg">>}, parse_push_destination(<<"localhost:5000/myorg">>)),
     ?_assertEqual({<<"docker.io">>, <<"myorg/images">>}, parse_push_destination(<<"myorg/images">>)),
     ?_assertEqual({<<"myorg">>, <<>>}, parse_push_destination(<<"myorg">>))].

extract_repo_path_test_() ->
    [?_assertEqual(<<"myapp">>, extract_repo_path(<<"myapp">>)),
     ?_assertEqual(<<"myorg/myapp">>, extract_repo_path(<<"myorg/myapp">>)),
     ?_assertEqual(<<"myorg/myapp">>, extract_repo_path(<<"ghcr.io/myorg/myapp">>)),
     ?_assertEqual(<<"myapp">>, extract_repo_path(<<"localhost:5000/myapp">>))].

parse_tag_test_() ->
    [?_assertEqual({<<"myapp">>, <<"1.0.0">>}, parse_tag(<<"myapp:1.0.0">>)),
     ?_assertEqual({<<"myapp">>, <<"latest">>}, parse_tag(<<"myapp">>)),
     ?_assertEqual({<<"ghcr.io/org/app">>, <<"v1">>}, parse_tag(<<"ghcr.io/org/app:v1">>)),
     ?_assertEqual({<<"localhost:5000/myapp">>, <<"latest">>}, parse_tag(<<"localhost:5000/myapp">>)),
     ?_assertEqual({<<"localhost:5000/myapp">>, <<"v1">>}, parse_tag(<<"localhost:5000/myapp:v1">>))].

resolve_tags_test_() ->
    [?_assertEqual({ok, [<<"myapp:v1.0.0">>]}, resolve_tags([<<"v1.0.0">>], <<"myapp">>)),
     ?_assertEqual({ok, [<<"myapp:v1">>]}, resolve_tags([<<"myapp:v1">>], undefined)),
     ?_assertEqual({ok, [<<"ghcr.io/org/app:v1">>]}, resolve_tags([<<"ghcr.io/org/app:v1">>], undefined)),
     ?_assertEqual({ok, [<<"ghcr.io/org/app:latest">>]}, resolve_tags([<<"ghcr.io/org/app">>], undefined)),
     ?_assertEqual({ok, [<<"localhost:5000/myapp:latest">>]}, resolve_tags([<<"localhost:5000/myapp">>], undefined)),
     ?_assertEqual({ok, [<<"localhost:5000/myapp:v1">>]}, resolve_tags([<<"localhost:5000/myapp:v1">>], undefined)),
     ?_assertEqual({error, {bare_tag_needs_release, <<"v1.0.0">>}}, resolve_tags([<<"v1.0.0">>], undefined))].

references_test_() ->
    R = fun(Push, Tags, Rel) -> references(Push, Tags, Rel) end,
    [?_assertEqual({ok, [<<"ghcr.io/myorg/myapp:1.2.3">>]}, R(<<"ghcr.io/myorg">>, [<<"myapp:1.2.3">>], undefined)),
     ?_assertEqual({ok, [<<"ghcr.io/myorg/myapp:1.0">>, <<"ghcr.io/myorg/myapp:latest">>]},
                   R(<<"ghcr.io/myorg">>, [<<"myapp:1.0">>, <<"myapp:latest">>], undefined)),
     %% Bare tags take the release name.
     ?_assertEqual({ok, [<<"ghcr.io/myorg/rel:1.0">>, <<"ghcr.io/myorg/rel:latest">>]},
                   R(<<"ghcr.io/myorg">>, [<<"1.0">>, <<"latest">>], <<"rel">>)),
     %% Every tag goes to the first tag's repository (ocibuild tags by digest).
     ?_assertEqual({ok, [<<"127.0.0.1:5000/ns/other/app:v1">>, <<"127.0.0.1:5000/ns/other/app:v2">>]},
                   R(<<"127.0.0.1:5000/ns">>, [<<"ghcr.io/other/app:v1">>, <<"v2">>], <<"rel">>)),
     %% Registry prefixes of the tag are stripped, the --push registry wins.
     ?_assertEqual({ok, [<<"localhost:5000/myapp:v1">>]},
                   R(<<"localhost:5000">>, [<<"localhost:5000/myapp:v1">>], undefined)),
     %% A name without ":" is a bare tag (ocibuild's rule), a path gets :latest.
     ?_assertEqual({ok, [<<"ghcr.io/myorg/rel:myapp">>]}, R(<<"ghcr.io/myorg">>, [<<"myapp">>], <<"rel">>)),
     ?_assertEqual({ok, [<<"ghcr.io/myorg/team/app:latest">>]}, R(<<"ghcr.io/myorg">>, [<<"team/app">>], undefined)),
     %% docker.io: default registry, library/ for single-segment repositories.
     ?_assertEqual({ok, [<<"docker.io/myuser/images/myapp:1">>]}, R(<<"myuser/images">>, [<<"myapp:1">>], undefined)),
     ?_assertEqual({ok, [<<"docker.io/library/myapp:1">>]}, R(<<"docker.io">>, [<<"myapp:1">>], undefined)),
     ?_assertEqual({ok, [<<"docker.io/myorg/myapp:1">>]}, R(<<"docker.io/myorg">>, [<<"myapp:1">>], undefined)),
     ?_assertEqual({ok, [<<"ghcr.io/myapp:1">>]}, R(<<"ghcr.io">>, [<<"myapp:1">>], undefined)),
     ?_assertEqual({ok, [<<"ghcr.io/o/myapp:1">>]}, R(<<"ghcr.io/o">>, [<<"myapp:1">>, <<"myapp:1">>], undefined)),
     ?_assertEqual({error, no_tags}, R(<<"ghcr.io/o">>, [], undefined)),
     ?_assertEqual({error, {bare_tag_needs_release, <<"1.0">>}}, R(<<"ghcr.io/o">>, [<<"1.0">>], undefined))].

options_test_() ->
    Defaults = #{recursive => true, annotations => #{}, allow_insecure_registry => false,
                 timeout_ms => undefined, bin => undefined, on_error => fail},
    [?_assertEqual({ok, Defaults, []}, options([])),
     ?_assertEqual({ok, Defaults#{recursive => false, on_error => warn, timeout_ms => 1000,
                                  bin => "/x/ocisign", allow_insecure_registry => true,
                                  annotations => #{<<"team">> => <<"core">>, <<"env">> => <<"prod">>}},
                    [{colour, blue}]},
                   options([{recursive, false}, {on_error, warn}, {timeout_ms, 1000}, {bin, <<"/x/ocisign">>},
                            {allow_insecure_registry, true}, {colour, blue},
                            {annotations, [{team, "core"}, {<<"env">>, <<"prod">>}]}])),
     ?_assertEqual({ok, Defaults#{annotations => #{<<"a">> => <<"b">>}}, []},
                   options([{annotations, #{"a" => "b"}}])),
     ?_assertMatch({error, {bad_option, recursive, yes}}, options([{recursive, yes}])),
     ?_assertMatch({error, {bad_option, on_error, ignore}}, options([{on_error, ignore}])),
     ?_assertMatch({error, {bad_option, timeout_ms, 0}}, options([{timeout_ms, 0}])),
     ?_assertMatch({error, {bad_option, annotations, _}}, options([{annotations, [{"", "x"}]}])),
     ?_assertMatch({error, {bad_option, annotations, _}}, options([{annotations, [bad]}])),
     ?_assertMatch({error, {bad_option, annotations, _}}, options([{annotations, 42}])),
     ?_assertMatch({error, {bad_option, bin, _}}, options([{bin, 42}])),
     ?_assert(is_list(ocisign_config:format_error({bad_option, on_error, ignore})))].

%% rebar.config.example at the repository root stays valid: it parses, and
%% every {ocisign, [...]} option in it is known and accepted.
example_config_test() ->
    Example = filename:join([filename:dirname(code:which(?MODULE)), "..", "..", "..", "..", "..",
                             "rebar.config.example"]),
    Path = case filelib:is_file(Example) of
               true -> Example;
               false -> "../rebar.config.example"
           end,
    {ok, Terms} = file:consult(Path),
    {ocisign, Opts} = lists:keyfind(ocisign, 1, Terms),
    ?assertMatch({ok, #{recursive := true, on_error := fail}, []}, options(Opts)),
    {ocibuild, Oci} = lists:keyfind(ocibuild, 1, Terms),
    ?assertEqual({ok, config, "cosign.key"}, sign_key([], Oci, false)),
    {project_plugins, Plugins} = lists:keyfind(project_plugins, 1, Terms),
    ?assertEqual([ocibuild, ocisign], [case P of {N, _} -> N; N -> N end || P <- Plugins]).
