-module(ocisign_config_tests).
-include_lib("eunit/include/eunit.hrl").

-import(ocisign_config, [sign_key/3, tags/2, resolve_tags/2, release_name/2, references/3,
                         parse_push_destination/1, extract_repo_path/1, parse_tag/1, options/1,
                         sign_request/4]).

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

%% A --push value without "/" is a registry host to ocibuild; the Go side
%% (like cosign) reads "myorg/app" as Docker Hub, so a host without "." or
%% ":" gets its default port: same server, unambiguous to both.
dotless_registry_test_() ->
    R = fun(Push, Tags) -> references(Push, Tags, <<"rel">>) end,
    [?_assertEqual({ok, [<<"myorg:443/myapp:1.0">>]}, R(<<"myorg">>, [<<"myapp:1.0">>])),
     ?_assertEqual({ok, [<<"myorg:443/rel:1.0">>, <<"myorg:443/rel:latest">>]},
                   R(<<"myorg">>, [<<"1.0">>, <<"latest">>])),
     ?_assertEqual({ok, [<<"registry:443/team/app:1">>]}, R("registry", [<<"team/app:1">>])),
     %% Written with a port or as a name with a dot, it stays as it is.
     ?_assertEqual({ok, [<<"myorg:443/myapp:1.0">>]}, R(<<"myorg:443">>, [<<"myapp:1.0">>])),
     ?_assertEqual({ok, [<<"myorg:5000/myapp:1.0">>]}, R(<<"myorg:5000">>, [<<"myapp:1.0">>])),
     ?_assertEqual({ok, [<<"myorg.internal/myapp:1.0">>]}, R(<<"myorg.internal">>, [<<"myapp:1.0">>])),
     %% localhost is a registry to go-containerregistry too.
     ?_assertEqual({ok, [<<"localhost/myapp:1.0">>]}, R(<<"localhost">>, [<<"myapp:1.0">>])),
     ?_assertEqual({ok, [<<"localhost:5000/ns/myapp:1.0">>]}, R(<<"localhost:5000/ns">>, [<<"myapp:1.0">>])),
     %% "myorg/ns" is a Docker Hub namespace to ocibuild as well: unchanged.
     ?_assertEqual({ok, [<<"docker.io/myorg/ns/myapp:1.0">>]}, R(<<"myorg/ns">>, [<<"myapp:1.0">>])),
     ?_assertEqual({ok, [<<"docker.io/library/myapp:1.0">>]}, R(<<"docker.io">>, [<<"myapp:1.0">>])),
     ?_assertEqual({error, {bad_push_destination, <<>>}}, R(<<>>, [<<"myapp:1.0">>])),
     ?_assertEqual({error, {bad_push_destination, <<"/ns">>}}, R(<<"/ns">>, [<<"myapp:1.0">>])),
     ?_assertEqual({error, {bad_push_destination, <<"ghcr.io/">>}}, R(<<"ghcr.io/">>, [<<"myapp:1.0">>])),
     ?_assertMatch("--push \"/ns\" is not a push destination" ++ _,
                   ocisign_config:format_error({bad_push_destination, <<"/ns">>})),
     ?_assertEqual(<<"myorg:443">>, ocisign_config:signing_registry(<<"myorg">>)),
     ?_assertEqual(<<"docker.io">>, ocisign_config:signing_registry(<<"docker.io">>)),
     ?_assertEqual(<<"127.0.0.1:5000">>, ocisign_config:signing_registry(<<"127.0.0.1:5000">>))].

digest_test_() ->
    D = <<"sha256:", (binary:copy(<<"0a">>, 32))/binary>>,
    [?_assertEqual({ok, undefined}, ocisign_config:digest([])),
     ?_assertEqual({ok, D}, ocisign_config:digest([{digest, binary_to_list(D)}])),
     ?_assertEqual({error, {bad_digest, <<"sha256:0A">>}}, ocisign_config:digest([{digest, "sha256:0A"}])),
     ?_assertMatch({error, {bad_digest, _}},
                   ocisign_config:digest([{digest, "SHA256:" ++ lists:duplicate(64, $a)}])),
     ?_assertMatch("--digest \"x\" is not a manifest digest" ++ _,
                   ocisign_config:format_error({bad_digest, <<"x">>}))].

dotless_registry_warning_test_() ->
    W = fun ocisign_config:dotless_registry_warning/1,
    [?_assertEqual(none, W(<<"ghcr.io/myorg">>)),
     ?_assertEqual(none, W("localhost")),
     ?_assertEqual(none, W("myorg:443")),
     ?_assertEqual(none, W("myorg/ns")),
     ?_assertEqual(none, W("docker.io")),
     ?_assertEqual(none, W("")),
     fun() ->
             Msg = W("myorg"),
             ?assert(is_list(Msg)),
             ?assertNotEqual(nomatch, string:find(Msg, "docker.io/myorg/NAME")),
             ?assertNotEqual(nomatch, string:find(Msg, "cosign verify myorg:443/NAME:TAG"))
     end].

%% A relative {bin, _} is relative to the project root, not to the working
%% directory the port happens to be opened from.
port_options_test_() ->
    {ok, Defaults, []} = options([]),
    {ok, Rel, []} = options([{bin, "tools/ocisign"}]),
    {ok, Abs, []} = options([{bin, "/opt/ocisign/bin/ocisign"}]),
    {ok, Dl, []} = options([{download_url, "https://artifacts.internal/ocisign/0.1.0"}, {build_from_source, true}]),
    [?_assertEqual(#{build_from_source => false}, ocisign_config:port_options(Defaults, "/proj")),
     ?_assertEqual(#{bin => "/proj/tools/ocisign", build_from_source => false}, ocisign_config:port_options(Rel, "/proj")),
     ?_assertEqual(#{bin => "/opt/ocisign/bin/ocisign", build_from_source => false},
                   ocisign_config:port_options(Abs, "/proj")),
     ?_assertEqual(#{download_url => "https://artifacts.internal/ocisign/0.1.0", build_from_source => true},
                   ocisign_config:port_options(Dl, "/proj")),
     ?_assertMatch({error, {bad_download_url, {insecure_download_url, _}}},
                   options([{download_url, "http://artifacts.internal/ocisign"}])),
     ?_assertMatch({error, {bad_option, build_from_source, yes}}, options([{build_from_source, yes}]))].

%% The resolved path finds the program whatever the working directory is.
port_options_cwd_test() ->
    Root = filename:join("/tmp", "ocisign_root_tests." ++ os:getpid()),
    Bin = filename:join([Root, "tools", "ocisign"]),
    ok = filelib:ensure_dir(Bin),
    ok = file:write_file(Bin, <<"#!/bin/sh\n">>),
    ok = file:change_mode(Bin, 8#755),
    {ok, Cwd} = file:get_cwd(),
    {ok, Opts, []} = options([{bin, "tools/ocisign"}]),
    try
        ok = file:set_cwd("/"),
        ?assertEqual({ok, Bin}, ocisign_bin:find(ocisign_config:port_options(Opts, Root))),
        %% Without the root the same setting is looked up in "/" and refused.
        ?assertEqual({error, {bin_not_found, "{ocisign, [{bin, ...}]} in rebar.config", "tools/ocisign"}},
                     ocisign_bin:find(#{bin => "tools/ocisign"}))
    after
        ok = file:set_cwd(Cwd),
        os:cmd("rm -rf '" ++ Root ++ "'")
    end.

signer_test_() ->
    Opts = fun(Keyless) -> #{keyless => Keyless, insecure_ignore_sct => false, fulcio_url => undefined,
                             fulcio_root => "r.pem"} end,
    [?_assertEqual({key, cli, "k.key"}, ocisign_config:signer({ok, cli, "k.key"}, Opts(false))),
     ?_assertEqual({error, keyless_and_key}, ocisign_config:signer({ok, cli, "k.key"}, Opts(true))),
     ?_assertEqual(keyless, ocisign_config:signer(none, Opts(true))),
     ?_assertEqual(#{keyless => true, insecure_ignore_sct => false, fulcio_root => "/p/r.pem"},
                   ocisign_config:signer_fields(keyless, Opts(true), "/p")),
     ?_assertEqual(#{sign_key => "/k"}, ocisign_config:signer_fields("/k", Opts(false), "/p"))].

options_test_() ->
    Defaults = #{recursive => true, annotations => #{}, allow_insecure_registry => false,
                 timeout_ms => undefined, bin => undefined, on_error => fail,
                 rekor_url => undefined, rekor_public_key => undefined,
                 download_url => undefined, build_from_source => false,
                 keyless => false, insecure_ignore_sct => false, fulcio_url => undefined, fulcio_root => undefined},
    [?_assertEqual({ok, Defaults, []}, options([])),
     ?_assertEqual({ok, Defaults#{keyless => true, insecure_ignore_sct => true, fulcio_url => <<"https://fulcio.example">>,
                                  fulcio_root => "root.pem"}, []},
                   options([{keyless, true}, {insecure_ignore_sct, true}, {fulcio_url, "https://fulcio.example"},
                            {fulcio_root, <<"root.pem">>}])),
     ?_assertMatch({error, {bad_option, keyless, yes}}, options([{keyless, yes}])),
     ?_assertMatch({error, {bad_option, fulcio_url, _}}, options([{fulcio_url, ""}])),
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
     %% rebar3 puts a profile's entries ahead of the base config's and keeps
     %% both (rebar_opts:merge_opts/3): the first one wins.
     ?_assertEqual({ok, Defaults#{recursive => false, rekor_public_key => "keys/p.pub",
                                  rekor_url => <<"http://x.example">>}, []},
                   options([{recursive, false}, {rekor_public_key, "keys/p.pub"}, {recursive, true},
                            {rekor_public_key, "base.pub"}, {rekor_url, "http://x.example"}])),
     ?_assertMatch({error, {bad_rekor_url, "r.example"}},
                   options([{rekor_url, "r.example"}, {rekor_url, "https://ok.example"}])),
     ?_assert(is_list(ocisign_config:format_error({bad_option, on_error, ignore})))].

%% {rekor_url, _} and {rekor_public_key, _}: the Go config's semantics (an
%% http(s) URL; a path, relative to the project root); bad values are errors,
%% never silently ignored (a typo would otherwise sign without the log).
rekor_options_test_() ->
    Url = fun(V) -> case options([{rekor_url, V}]) of
                        {ok, #{rekor_url := U}, []} -> {ok, U};
                        {error, _} = E -> E
                    end
          end,
    Key = fun(V) -> case options([{rekor_public_key, V}]) of
                        {ok, #{rekor_public_key := K}, []} -> {ok, K};
                        {error, _} = E -> E
                    end
          end,
    [?_assertEqual({ok, <<"https://rekor.internal.example">>}, Url("https://rekor.internal.example")),
     ?_assertEqual({ok, <<"http://127.0.0.1:3000/">>}, Url(<<"http://127.0.0.1:3000/">>)),
     ?_assertEqual({ok, <<"https://rekor.sigstore.dev">>}, Url("https://rekor.sigstore.dev")),
     ?_assertEqual({ok, <<"HTTPS://rekor.example">>}, Url("HTTPS://rekor.example")),
     ?_assertEqual({error, {bad_rekor_url, "rekor.sigstore.dev"}}, Url("rekor.sigstore.dev")),
     ?_assertEqual({error, {bad_rekor_url, "ftp://rekor.example"}}, Url("ftp://rekor.example")),
     ?_assertEqual({error, {bad_rekor_url, "file:///tmp/x"}}, Url("file:///tmp/x")),
     ?_assertEqual({error, {bad_rekor_url, "http://"}}, Url("http://")),
     ?_assertEqual({error, {bad_rekor_url, "https://r.example?x=1"}}, Url("https://r.example?x=1")),
     ?_assertEqual({error, {bad_rekor_url, "https://r.example#f"}}, Url("https://r.example#f")),
     ?_assertEqual({error, {bad_rekor_url, "http://exa mple.com"}}, Url("http://exa mple.com")),
     ?_assertEqual({error, {bad_option, rekor_url, ""}}, Url("")),
     ?_assertEqual({error, {bad_option, rekor_url, <<>>}}, Url(<<>>)),
     ?_assertEqual({error, {bad_option, rekor_url, true}}, Url(true)),
     ?_assertEqual({error, {bad_option, rekor_url, undefined}}, Url(undefined)),
     ?_assertEqual({error, {bad_option, rekor_url, 3000}}, Url(3000)),
     ?_assertEqual({error, {bad_option, rekor_url, [bad]}}, Url([bad])),
     ?_assertEqual({ok, "rekor.pub"}, Key("rekor.pub")),
     ?_assertEqual({ok, "/etc/rekor.pub"}, Key(<<"/etc/rekor.pub">>)),
     ?_assertEqual({error, {bad_option, rekor_public_key, ""}}, Key("")),
     ?_assertEqual({error, {bad_option, rekor_public_key, 'rekor.pub'}}, Key('rekor.pub')),
     ?_assertEqual({error, {bad_option, rekor_public_key, 1}}, Key(1)),
     %% The messages say what is wrong and what is expected.
     ?_assertMatch("{ocisign, [{rekor_url, \"rekor.sigstore.dev\"}]}: rekor_url must be an absolute http:// "
                   "or https:// URL" ++ _,
                   ocisign_config:format_error({bad_rekor_url, "rekor.sigstore.dev"})),
     ?_assertMatch("{ocisign, [{rekor_url, true}]}: rekor_url must be a non-empty string" ++ _,
                   ocisign_config:format_error({bad_option, rekor_url, true})),
     ?_assertMatch("{ocisign, [{rekor_public_key, 1}]}: rekor_public_key must be a non-empty string, the path "
                   "of the log's PEM public key (relative to the project root)",
                   ocisign_config:format_error({bad_option, rekor_public_key, 1})),
     ?_assertEqual("{ocisign, [{rekor_public_key, _}]}: the log's public key file /p/rekor.pub does not exist "
                   "(a relative path is relative to the project root)",
                   ocisign_config:format_error({rekor_public_key_missing, "/p/rekor.pub"}))].

%% The sign request built from the options: log fields only when configured,
%% the log key made absolute against the project root.
sign_request_test_() ->
    {ok, Plain, []} = options([]),
    {ok, Logged, []} = options([{rekor_url, "https://rekor.internal.example"},
                                {rekor_public_key, "keys/rekor.pub"}, {timeout_ms, 9000},
                                {recursive, false}]),
    {ok, AbsKey, []} = options([{rekor_url, <<"http://127.0.0.1:1">>},
                                {rekor_public_key, "/etc/rekor.pub"}]),
    {ok, UrlOnly, []} = options([{rekor_url, "http://127.0.0.1:1"}]),
    Base = #{reference => <<"r.example/a:1">>, sign_key => "/p/cosign.key", recursive => true,
             annotations => #{}, allow_insecure_registry => false, timeout_ms => 300000},
    R = fun(Opts) -> sign_request(<<"r.example/a:1">>, "/p/cosign.key", Opts, "/p") end,
    [?_assertEqual(Base, R(Plain)),
     ?_assertEqual(Base#{rekor_url => <<"https://rekor.internal.example">>,
                         rekor_public_key => "/p/keys/rekor.pub", timeout_ms => 9000, recursive => false},
                   R(Logged)),
     ?_assertEqual(Base#{rekor_url => <<"http://127.0.0.1:1">>, rekor_public_key => "/etc/rekor.pub"},
                   R(AbsKey)),
     ?_assertEqual(Base#{rekor_url => <<"http://127.0.0.1:1">>}, R(UrlOnly)),
     %% What ocisign_port sends for it: the protocol's field names.
     ?_assertEqual({ok, #{<<"reference">> => <<"r.example/a:1">>, <<"sign_key">> => <<"/p/cosign.key">>,
                          <<"recursive">> => false, <<"annotations">> => #{},
                          <<"allow_insecure_registry">> => false, <<"timeout_ms">> => 9000,
                          <<"rekor_url">> => <<"https://rekor.internal.example">>,
                          <<"rekor_public_key">> => <<"/p/keys/rekor.pub">>}},
                   ocisign_port:sign_fields(R(Logged)))].

%% rebar.config.example at the repository root stays valid: it parses, and
%% every {ocisign, [...]} option in it is known and accepted.
example_config_test() ->
    Example = filename:join([filename:dirname(code:which(?MODULE)), "..", "..", "..", "..", "..", "..",
                             "rebar.config.example"]),
    Path = case filelib:is_file(Example) of
               true -> Example;
               false -> "../../rebar.config.example"
           end,
    {ok, Terms} = file:consult(Path),
    {ocisign, Opts} = lists:keyfind(ocisign, 1, Terms),
    ?assertMatch({ok, #{recursive := true, on_error := fail, rekor_url := undefined,
                        rekor_public_key := undefined}, []}, options(Opts)),
    %% The log options are there, commented out: uploading is opt-in. Once
    %% uncommented they are valid.
    {ok, Text} = file:read_file(Path),
    Commented = [L || L <- binary:split(Text, <<"\n">>, [global]),
                      binary:match(L, [<<"{rekor_url,">>, <<"{rekor_public_key,">>]) =/= nomatch],
    ?assertMatch([_, _], Commented),
    ?assertEqual([], [L || L <- Commented, not lists:prefix("%%", string:trim(binary_to_list(L)))]),
    Uncommented = [begin
                       {Start, _} = binary:match(L, <<"{">>),
                       Term = binary:part(L, Start, byte_size(L) - Start),
                       {ok, Toks, _} = erl_scan:string(unicode:characters_to_list(Term) ++ "."),
                       {ok, T} = erl_parse:parse_term(Toks),
                       T
                   end || L <- Commented],
    ?assertMatch({ok, #{rekor_url := <<"https://", _/binary>>, rekor_public_key := [_ | _]}, []},
                 options(Uncommented)),
    {ocibuild, Oci} = lists:keyfind(ocibuild, 1, Terms),
    ?assertEqual({ok, config, "cosign.key"}, sign_key([], Oci, false)),
    {project_plugins, Plugins} = lists:keyfind(project_plugins, 1, Terms),
    ?assertEqual([ocibuild, ocisign], [case P of {N, _} -> N; N -> N end || P <- Plugins]).

%% A rekor_url with credentials is refused or logged without them.
rekor_url_credentials_test_() ->
    Secret = "S3cretTok",
    Clean = fun(Text) -> string:find(Text, Secret) =:= nomatch end,
    Refusal = fun(V) ->
                      {error, Reason} = options([{rekor_url, V}]),
                      {Reason, ocisign_config:format_error(Reason)}
              end,
    {R1, T1} = Refusal("ftp://alice:S3cretTok@rekor.example"),
    {R2, T2} = Refusal(<<"https://alice:S3cretTok@rekor.example/?q=1">>),
    {R3, T3} = Refusal("https://alice:S3cret Tok@rekor.example"),
    {R4, T4} = Refusal({"https://alice:S3cretTok@rekor.example"}),
    {R5, T5} = Refusal([<<"https://alice:S3cretTok@">>, 1.5]),
    {_, T6} = Refusal('https://alice:S3cretTok@rekor.example'),
    [?_assertEqual({bad_rekor_url, "ftp://rekor.example"}, R1),
     ?_assertEqual({bad_rekor_url, <<"https://rekor.example/?q=1">>}, R2),
     ?_assertEqual({bad_rekor_url, "https://[REDACTED]@rekor.example"}, R3),
     ?_assertMatch({bad_option, rekor_url, _}, R4),
     ?_assertMatch({bad_option, rekor_url, _}, R5),
     ?_assertMatch("{ocisign, [{rekor_url, \"ftp://rekor.example\"}]}: rekor_url must be" ++ _, T1),
     ?_assertMatch("{ocisign, [{rekor_url, <<\"https://rekor.example/?q=1\">>}]}" ++ _, T2),
     ?_assert(lists:all(Clean, [T1, T2, T3, T4, T5, T6])),
     %% format_error redacts an error term made elsewhere too.
     ?_assert(Clean(ocisign_config:format_error({bad_rekor_url, "ftp://a:S3cretTok@h"}))),
     ?_assert(Clean(ocisign_config:format_error({bad_option, rekor_url, <<"x://a:S3cretTok@h">>}))),
     %% A config that is not a list is not echoed.
     ?_assertEqual({error, {bad_option, ocisign, #{rekor_url => "https://a:S3cretTok@h"}}},
                   options(#{rekor_url => "https://a:S3cretTok@h"})),
     ?_assertEqual("{ocisign, ...} must be a list of {Key, Value} options, got a map",
                   ocisign_config:format_error({bad_option, ocisign, #{rekor_url => "https://a:S3cretTok@h"}})),
     %% A misspelt key is named, its value is not shown.
     ?_assertEqual({ok, #{rekor_url => undefined}, [{rekor_ulr, "https://a:S3cretTok@h"}]},
                   begin
                       {ok, O, U} = options([{rekor_ulr, "https://a:S3cretTok@h"}]),
                       {ok, maps:with([rekor_url], O), U}
                   end),
     ?_assertEqual("ocisign: unknown option rekor_ulr in {ocisign, [...]}, ignored",
                   ocisign_config:unknown_option({rekor_ulr, "https://a:S3cretTok@h"})),
     ?_assertEqual("ocisign: an entry of {ocisign, [...]} is a list, not a {Key, Value} option; ignored",
                   ocisign_config:unknown_option("https://a:S3cretTok@h"))].

signing_message_test_() ->
    Req = sign_request(<<"r.example/app:1">>, "/k/cosign.key",
                       element(2, options([{rekor_url, "https://alice:S3cretTok@rekor.example/"}])), "/p"),
    [?_assertEqual("ocisign: signing r.example/app:1, recording it in the transparency log https://rekor.example/",
                   ocisign_config:signing_message(Req)),
     ?_assertEqual("ocisign: signing r.example/app:1",
                   ocisign_config:signing_message(maps:remove(rekor_url, Req)))].

%% `Tagged:' references as ocibuild printed them, as the program must read them.
printed_reference_test_() ->
    P = fun ocisign_config:printed_reference/2,
    [?_assertEqual(<<"ghcr.io/org/app:1">>, P("ghcr.io/org", <<"ghcr.io/org/app:1">>)),
     ?_assertEqual(<<"127.0.0.1:5000/ns/app:1">>, P("127.0.0.1:5000/ns", <<"127.0.0.1:5000/ns/app:1">>)),
     %% a dotless registry host is ocibuild's reading; host:443 is the same server to Go
     ?_assertEqual(<<"myorg:443/app:1">>, P("myorg", <<"myorg/app:1">>)),
     ?_assertEqual(<<"docker.io/myorg/app:1">>, P("myorg/x", <<"docker.io/myorg/app:1">>)),
     ?_assertEqual(<<"other.io/app:1">>, P("myorg", <<"other.io/app:1">>))].

%% What the hook and `rebar3 ocisign sign` both build from the parsed arguments.
pushed_references_test_() ->
    P = fun ocisign_config:pushed_references/4,
    Relx = [{release, {app, "1.0.0"}, [app]}],
    [?_assertEqual({ok, [<<"ghcr.io/org/app:1">>, <<"ghcr.io/org/app:latest">>]},
                   P("ghcr.io/org", [{tag, "1;latest"}], [], Relx)),
     ?_assertEqual({ok, [<<"ghcr.io/org/other:2">>]}, P(<<"ghcr.io/org">>, [{release, "other"}], [{tag, "2"}], Relx)),
     ?_assertEqual({error, no_tags}, P("ghcr.io/org", [], [], Relx))].
