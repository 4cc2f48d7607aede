-module(ocisign_port_tests).
-include_lib("eunit/include/eunit.hrl").

%% Request validation happens in the caller before anything reaches a port,
%% so these need no Go program (run.sh covers the real port end to end).
request_validation_test_() ->
    Nobody = spawn(fun() -> ok end),
    S = fun(Req) -> ocisign_port:sign(Nobody, Req) end,
    [?_assertMatch({error, {invalid_request, <<"sign request without a reference">>}}, S(#{})),
     ?_assertMatch({error, {invalid_request, _}}, S(#{reference => ""})),
     ?_assertMatch({error, {invalid_request, _}}, S(#{reference => 42})),
     ?_assertMatch({error, {invalid_request, <<"unknown field key", _/binary>>}},
                   S(#{reference => "r/x:1", key => "k"})),
     ?_assertMatch({error, {invalid_request, _}}, S(#{reference => "r/x:1", recursive => "yes"})),
     ?_assertMatch({error, {invalid_request, _}}, S(#{reference => "r/x:1", just_pushed => 1})),
     ?_assertMatch({error, {invalid_request, _}}, S(#{reference => "r/x:1", timeout_ms => -1})),
     ?_assertMatch({error, {invalid_request, _}}, S(#{reference => "r/x:1", annotations => [{"", "v"}]})),
     ?_assertMatch({error, {invalid_request, _}}, S(#{reference => "r/x:1", annotations => 7})),
     %% A valid request to a dead owner: closed, and the caller is fine.
     ?_assertEqual({error, closed}, S(#{reference => <<"r/x:1">>, digest => "sha256:00",
                                        sign_key => "k", annotations => #{a => "b"},
                                        recursive => true, allow_insecure_registry => false,
                                        just_pushed => true, timeout_ms => 10})),
     ?_assertEqual(ok, ocisign_port:close(Nobody)),
     ?_assertEqual({error, closed}, ocisign_port:os_pid(Nobody))].

%% The transparency log fields: sign takes rekor_url and rekor_public_key,
%% verify also require_tlog; types and the URL are checked before sending.
tlog_fields_test_() ->
    Nobody = spawn(fun() -> ok end),
    S = fun(Req) -> ocisign_port:sign_fields(Req#{reference => "r/x:1"}) end,
    V = fun(Req) -> ocisign_port:verify_fields(Req#{reference => "r/x:1", public_key => "k.pub"}) end,
    [?_assertEqual({ok, #{<<"reference">> => <<"r/x:1">>, <<"rekor_url">> => <<"http://127.0.0.1:3000">>,
                          <<"rekor_public_key">> => <<"/k/rekor.pub">>}},
                   S(#{rekor_url => "http://127.0.0.1:3000", rekor_public_key => <<"/k/rekor.pub">>})),
     ?_assertMatch({error, {invalid_request, <<"rekor_url must be an absolute http:// or https:// URL", _/binary>>}},
                   S(#{rekor_url => "rekor.sigstore.dev"})),
     ?_assertMatch({error, {invalid_request, _}}, S(#{rekor_url => "https://r.example?q=1"})),
     ?_assertMatch({error, {invalid_request, <<"rekor_url must not be empty">>}}, S(#{rekor_url => ""})),
     ?_assertMatch({error, {invalid_request, <<"rekor_url must be a string, got 42">>}}, S(#{rekor_url => 42})),
     ?_assertMatch({error, {invalid_request, <<"rekor_public_key must not be empty">>}},
                   S(#{rekor_public_key => <<>>})),
     %% require_tlog is a verify field only.
     ?_assertMatch({error, {invalid_request, <<"unknown field require_tlog", _/binary>>}},
                   S(#{require_tlog => true})),
     ?_assertEqual({ok, #{<<"reference">> => <<"r/x:1">>, <<"public_key">> => <<"k.pub">>,
                          <<"require_tlog">> => true, <<"rekor_url">> => <<"https://rekor.example">>,
                          <<"rekor_public_key">> => <<"rekor.pub">>}},
                   V(#{require_tlog => true, rekor_url => <<"https://rekor.example">>,
                       rekor_public_key => "rekor.pub"})),
     ?_assertEqual({ok, #{<<"reference">> => <<"r/x:1">>, <<"public_key">> => <<"k.pub">>,
                          <<"require_tlog">> => false}},
                   V(#{require_tlog => false})),
     ?_assertMatch({error, {invalid_request, <<"require_tlog must be true or false, got \"yes\"">>}},
                   V(#{require_tlog => "yes"})),
     ?_assertMatch({error, {invalid_request, _}}, V(#{rekor_url => "ftp://rekor.example"})),
     ?_assertMatch({error, {invalid_request, _}}, V(#{rekor_public_key => 7})),
     %% Through the API: refused before sending, a valid request reaches the
     %% (dead) port.
     ?_assertMatch({error, {invalid_request, _}},
                   ocisign_port:verify(Nobody, #{reference => "r/x:1", public_key => "k", require_tlog => 1})),
     ?_assertEqual({error, closed},
                   ocisign_port:verify(Nobody, #{reference => "r/x:1", public_key => "k", require_tlog => true,
                                                 rekor_public_key => "rekor.pub"})),
     ?_assertEqual({error, closed},
                   ocisign_port:sign(Nobody, #{reference => "r/x:1", rekor_url => "https://rekor.example",
                                               rekor_public_key => "rekor.pub"})),
     ?_assertEqual(true, ocisign_port:is_http_url(<<"https://rekor.sigstore.dev">>)),
     ?_assertEqual(true, ocisign_port:is_http_url("http://[::1]:3000/")),
     ?_assertEqual(false, ocisign_port:is_http_url("http:///path")),
     ?_assertEqual(false, ocisign_port:is_http_url("mailto:x@example.com")),
     ?_assertEqual(false, ocisign_port:is_http_url(<<255, 0>>))].

open_without_binary_test() ->
    Old = os:getenv("OCISIGN_BIN"),
    os:putenv("OCISIGN_BIN", "/nonexistent/ocisign"),
    try
        ?assertEqual({error, {bin_not_found, "OCISIGN_BIN", "/nonexistent/ocisign"}}, ocisign_port:open()),
        ?assertMatch({error, {bin_not_found, _, _}}, ocisign_port:sign(#{reference => "r/x:1"}))
    after
        case Old of false -> os:unsetenv("OCISIGN_BIN"); _ -> os:putenv("OCISIGN_BIN", Old) end
    end.

format_error_test_() ->
    F = fun ocisign_port:format_error/1,
    [?_assertEqual("no such key (key_not_found)", F({key_not_found, <<"no such key">>})),
     ?_assertEqual("the ocisign program was killed (SIGKILL)", F({port_exit, 137})),
     ?_assertEqual("the ocisign program exited with status 2 before answering (its messages are on stderr above)",
                   F({port_exit, 2})),
     ?_assertMatch("the ocisign program was killed because another request on the same port timed out" ++ _,
                   F({port_exit, killed_after_timeout})),
     ?_assert(is_list(F(timeout))),
     ?_assert(is_list(F({bin_missing, #{version => "0.1.0", priv => undefined}}))),
     ?_assert(is_list(F({bin_download, no_go, #{version => "0.1.0", priv => undefined}}))),
     ?_assert(is_list(F({protocol_mismatch, 2, 1})))].

%% Replies as the Go program writes them, decoded by the codec in use.
reply_test_() ->
    R = fun(Json) -> ocisign_port:reply_to_result(ocisign_json:decode(Json)) end,
    D = <<"sha256:", (binary:copy(<<"a">>, 64))/binary>>,
    [?_assertEqual({ok, #{signature_digest => D,
                          signed => [#{digest => D, signature_ref => <<"r/x:sha256-a.sig">>,
                                       signature_digest => D, deduplicated => true,
                                       <<"future_field">> => 1}]}},
                   R(<<"{\"id\":3,\"ok\":true,\"signature_digest\":\"", D/binary, "\",\"signed\":[{\"digest\":\"",
                       D/binary, "\",\"signature_ref\":\"r/x:sha256-a.sig\",\"signature_digest\":\"", D/binary,
                       "\",\"deduplicated\":true,\"future_field\":1}]}">>)),
     ?_assertEqual({ok, #{version => <<"1.2.3">>, protocol => 1}},
                   R(<<"{\"id\":1,\"ok\":true,\"version\":\"1.2.3\",\"protocol\":1}">>)),
     ?_assertEqual({error, {wrong_password, <<"nope">>}},
                   R(<<"{\"id\":1,\"ok\":false,\"error\":{\"code\":\"wrong_password\",\"message\":\"nope\",\"retryable\":false}}">>)),
     ?_assertEqual({error, {timeout, <<"t">>}},
                   R(<<"{\"id\":1,\"ok\":false,\"error\":{\"code\":\"timeout\",\"message\":\"t\",\"retryable\":true}}">>)),
     %% Unknown codes stay binaries: a reply never creates atoms.
     ?_assertEqual({error, {<<"brand_new_code">>, <<"m">>}},
                   R(<<"{\"id\":1,\"ok\":false,\"error\":{\"code\":\"brand_new_code\",\"message\":\"m\"}}">>)),
     ?_assertMatch({error, {protocol_error, _}}, R(<<"{\"id\":1,\"ok\":\"yes\"}">>)),
     ?_assertMatch({error, {protocol_error, _}}, R(<<"{\"id\":1,\"ok\":false,\"error\":\"text\"}">>))].

%% Rekor URL credentials (user-info) never reach a message: the rule of the
%% Go side's tlog.RedactURL.
redact_url_test_() ->
    R = fun ocisign_port:redact_url/1,
    [?_assertEqual("https://rekor.example", R("https://rekor.example")),
     ?_assertEqual("https://rekor.example/?q=1", R("https://alice:S3cretTok@rekor.example/?q=1")),
     ?_assertEqual(<<"https://rekor.example:3000/api">>, R(<<"https://S3cretTok@rekor.example:3000/api">>)),
     ?_assertEqual("ftp://rekor.example", R("ftp://alice:S3cretTok@rekor.example")),
     %% Unparsable, or the "@" ends up after the host: the text up to the last "@" goes.
     ?_assertEqual("https://[REDACTED]@rekor.example/", R("https://alice:S3cret Tok@rekor.example/")),
     ?_assertEqual("https://[REDACTED]@rekor.example/", R("https://alice:12/S3cretTok@rekor.example/")),
     ?_assertEqual("[REDACTED]@rekor.example", R("alice:S3cretTok@rekor.example")),
     ?_assertEqual("[REDACTED]@host://x", R("alice:S3cretTok@host://x")),
     ?_assertEqual(<<"https://[REDACTED]@h">>, R(<<"https://a:S3cret", 255, "@h">>)),
     ?_assertEqual("rekor example", R("rekor example")),
     ?_assertEqual("", R("")),
     ?_assertEqual('https://rekor.example', ocisign_port:redact_term('https://a:S3cretTok@rekor.example')),
     ?_assertEqual({x, ["https://rekor.example", 1.5], #{k => <<"https://h">>}},
                   ocisign_port:redact_term({x, ["https://a:S3cretTok@rekor.example", 1.5],
                                             #{k => <<"https://a:S3cretTok@h">>}})),
     ?_assertEqual("https://rekor.example", ocisign_port:redact_term([<<"https://a:S3cretTok@">>, "rekor.example"])),
     ?_assertEqual(42, ocisign_port:redact_term(42)),
     ?_assertEqual([bad], ocisign_port:redact_term([bad]))].

%% Refused rekor_url fields name the URL without its credentials.
rekor_url_credentials_refused_test_() ->
    S = fun(Req) -> ocisign_port:sign_fields(Req#{reference => "r/x:1"}) end,
    V = fun(Req) -> ocisign_port:verify_fields(Req#{reference => "r/x:1", public_key => "k.pub"}) end,
    NoSecret = fun({error, {invalid_request, Msg}}) ->
                       nomatch =:= binary:match(Msg, <<"S3cret">>)
                           andalso nomatch =/= binary:match(Msg, <<"rekor_url">>);
                  (_) -> false
               end,
    [?_assertEqual({error, {invalid_request, <<"rekor_url must be an absolute http:// or https:// URL without "
                                               "query or fragment, got \"https://rekor.example/?q=1\"">>}},
                   S(#{rekor_url => "https://alice:S3cretTok@rekor.example/?q=1"})),
     ?_assert(NoSecret(S(#{rekor_url => <<"ftp://alice:S3cretTok@rekor.example">>}))),
     ?_assert(NoSecret(S(#{rekor_url => "https://alice:S3cret Tok@rekor.example"}))),
     ?_assert(NoSecret(V(#{rekor_url => "https://alice:S3cretTok@rekor.example/#f"}))),
     ?_assert(NoSecret(V(#{rekor_url => {"https://alice:S3cretTok@rekor.example"}}))),
     ?_assert(NoSecret(S(#{rekor_url => [<<"https://alice:S3cretTok@">>, 1.5]}))),
     ?_assertMatch({error, {invalid_request, <<"rekor_url must be a string, got {\"https://rekor.example\"}">>}},
                   S(#{rekor_url => {"https://alice:S3cretTok@rekor.example"}}))].
