#!/usr/bin/env escript
%%! -noshell
%% End-to-end tests of ocisign_port against the real Go program and a real
%% registry (test/erlang/run.sh sets everything up).
%%
%%   port_test.escript EBIN REPO INDEX_DIGEST KEY PUB
%% REPO is "127.0.0.1:PORT/ns/direct" holding tag "1" (an index of two
%% platform images pushed by pushimage) with digest INDEX_DIGEST; KEY is
%% encrypted with COSIGN_PASSWORD. The program is the plugin's priv/ocisign
%% (OCISIGN_BIN unset); leftover processes are looked for by its exact path.
%% Prints "PASS name" / "FAIL name: why" per check and exits with the number
%% of failures.
-mode(compile).

main([Ebin, Repo, IndexDigest, Key, Pub]) ->
    true = code:add_patha(Ebin),
    Bin = filename:absname(filename:join(code:priv_dir(ocisign), "ocisign")),
    Ctx = #{repo => list_to_binary(Repo), index => list_to_binary(IndexDigest),
            key => Key, pub => Pub, bin => Bin},
    Tests = [fun binary_from_priv/1,
             fun version/1,
             fun sign_once/1,
             fun sign_again_deduplicates/1,
             fun sign_by_digest/1,
             fun verify/1,
             fun concurrent_requests/1,
             fun error_replies/1,
             fun wrong_password/1,
             fun request_limits/1,
             fun learned_frame_limit/1,
             fun null_id_reply_fails_waiters_at_once/1,
             fun go_side_timeout/1,
             fun kill_mid_request/1,
             fun erlang_side_timeout/1,
             fun close_leaves_no_process/1,
             fun close_mid_request/1,
             fun owner_death_closes/1],
    Failures = lists:sum([run(T, Ctx) || T <- Tests]),
    halt(min(Failures, 100));
main(_) ->
    io:format(standard_error, "usage: port_test.escript EBIN REPO INDEX_DIGEST KEY PUB~n", []),
    halt(2).

run(Test, Ctx) ->
    {name, Name} = erlang:fun_info(Test, name),
    Self = self(),
    %% Each test in its own process: a crash is a failure, not the end.
    {Pid, Mon} = spawn_monitor(fun() -> Self ! {self(), catch Test(Ctx)} end),
    Result = receive
                 {Pid, R} -> R;
                 {'DOWN', Mon, process, Pid, Why} -> {died, Why}
             after 180000 -> hung
             end,
    erlang:demonitor(Mon, [flush]),
    case Result of
        ok -> io:format("PASS ~s~n", [Name]), 0;
        Other -> io:format("FAIL ~s: ~p~n", [Name, Other]), 1
    end.

%% The pattern is matched inside a fun so its variables stay local.
-define(CHECK(Expr, Pattern),
        check(?LINE, ??Expr, (Expr), fun(V__) -> case V__ of Pattern -> true; _ -> false end end)).

check(Line, Text, Value, Matches) ->
    case Matches(Value) of
        true -> ok;
        false -> throw({line, Line, Text, got, Value})
    end.

ref(#{repo := Repo}, Tag) -> <<Repo/binary, ":", Tag/binary>>.

%% --- lookup and handshake ------------------------------------------------

binary_from_priv(#{bin := Bin}) ->
    %% run.sh does not set OCISIGN_BIN: the program comes from priv/.
    ?CHECK(os:getenv("OCISIGN_BIN"), false),
    ?CHECK(ocisign_bin:find(#{}), {ok, Bin}),
    ok.

version(_) ->
    {ok, P} = ocisign_port:open(),
    ?CHECK(ocisign_port:version(P), {ok, #{protocol := 1, version := V}} when is_binary(V)),
    ok = ocisign_port:close(P).

%% --- signing -------------------------------------------------------------

sign_once(#{index := Index, key := Key} = C) ->
    Ref = ref(C, <<"1">>),
    {ok, Result} = ocisign_port:sign(#{reference => Ref, sign_key => Key,
                                       annotations => #{"run" => "port_test"}, recursive => true}),
    #{signature_digest := SigDigest, signed := Signed} = Result,
    ?CHECK(SigDigest, <<"sha256:", _:64/binary>>),
    ?CHECK(length(Signed), 3),                          % the index + 2 platforms
    [First | _] = Signed,
    ?CHECK(maps:get(digest, First), Index),
    ?CHECK(maps:get(signature_digest, First), SigDigest),
    <<"sha256:", Hex/binary>> = Index,
    ExpectedRef = <<(maps:get(repo, C))/binary, ":sha256-", Hex/binary, ".sig">>,
    ?CHECK(maps:get(signature_ref, First), ExpectedRef),
    [?CHECK(E, #{digest := <<"sha256:", _:64/binary>>, deduplicated := false,
                 signature_ref := <<_/binary>>, signature_digest := <<"sha256:", _:64/binary>>})
     || E <- Signed],
    ?CHECK(length(lists:usort([maps:get(digest, E) || E <- Signed])), 3),
    ok.

sign_again_deduplicates(#{key := Key} = C) ->
    {ok, #{signed := Signed}} =
        ocisign_port:sign(#{reference => ref(C, <<"1">>), sign_key => Key,
                            annotations => [{run, "port_test"}], recursive => true}),
    ?CHECK([maps:get(deduplicated, E) || E <- Signed], [true, true, true]),
    ok.

sign_by_digest(#{index := Index, key := Key} = C) ->
    {ok, P} = ocisign_port:open(),
    try
        {ok, #{signed := Signed}} =
            ocisign_port:sign(P, #{reference => ref(C, <<"1">>), digest => Index, sign_key => Key,
                                   recursive => false, annotations => #{"by" => "digest"}}),
        ?CHECK([maps:get(digest, E) || E <- Signed], [Index])
    after
        ocisign_port:close(P)
    end.

verify(#{index := Index, pub := Pub} = C) ->
    {ok, P} = ocisign_port:open(),
    try
        ?CHECK(ocisign_port:verify(P, #{reference => ref(C, <<"1">>), public_key => Pub}),
               {ok, #{digest := Index, valid := N}} when N >= 1),
        ?CHECK(ocisign_port:verify(P, #{reference => ref(C, <<"1">>), public_key => Pub,
                                        annotations => #{"by" => "nobody"}}),
               {error, {verification_failed, _}})
    after
        ocisign_port:close(P)
    end.

%% Several requests in flight on one port; each caller gets its own reply.
concurrent_requests(#{key := Key} = C) ->
    {ok, P} = ocisign_port:open(),
    Self = self(),
    Jobs = [{version, fun() -> ocisign_port:version(P) end} || _ <- lists:seq(1, 5)]
        ++ [{sign, fun() -> ocisign_port:sign(P, #{reference => ref(C, <<"1">>), sign_key => Key,
                                                   recursive => true,
                                                   annotations => #{"run" => "port_test"}}) end},
            {missing, fun() -> ocisign_port:sign(P, #{reference => ref(C, <<"nope">>),
                                                      sign_key => Key}) end}],
    Pids = [{Kind, spawn(fun() -> Self ! {self(), F()} end)} || {Kind, F} <- Jobs],
    Results = [{Kind, receive {Pid, R} -> R end} || {Kind, Pid} <- Pids],
    ocisign_port:close(P),
    [case Kind of
         version -> ?CHECK(R, {ok, #{protocol := 1}});
         sign -> ?CHECK(R, {ok, #{signed := [_, _, _]}});
         missing -> ?CHECK(R, {error, {not_found, _}})
     end || {Kind, R} <- Results],
    ok.

error_replies(#{key := Key} = C) ->
    {ok, P} = ocisign_port:open(),
    try
        ?CHECK(ocisign_port:sign(P, #{reference => ref(C, <<"1">>), sign_key => "/nonexistent/cosign.key"}),
               {error, {key_not_found, <<_/binary>>}}),
        ?CHECK(ocisign_port:sign(P, #{reference => ref(C, <<"no-such-tag">>), sign_key => Key}),
               {error, {not_found, _}}),
        ?CHECK(ocisign_port:sign(P, #{reference => <<"Not A Reference!!">>, sign_key => Key}),
               {error, {invalid_reference, _}}),
        ?CHECK(ocisign_port:verify(P, #{reference => ref(C, <<"1">>)}),
               {error, {invalid_request, _}}),
        %% Still serving after the refusals.
        ?CHECK(ocisign_port:version(P), {ok, #{protocol := 1}})
    after
        ocisign_port:close(P)
    end.

%% Requests the program would refuse without an id to answer with are
%% refused before sending; the port keeps serving.
request_limits(#{key := Key} = C) ->
    {ok, P} = ocisign_port:open(#{max_frame_bytes => 4096}),
    try
        Big = #{"big" => binary:copy(<<"x">>, 5000)},
        ?CHECK(ocisign_port:sign(P, #{reference => ref(C, <<"1">>), sign_key => Key, annotations => Big}),
               {error, {invalid_request, <<"the request is ", _/binary>>}}),
        ?CHECK(ocisign_port:sign(P, #{reference => ref(C, <<"1">>), sign_key => Key,
                                      annotations => #{"bad" => <<16#ff, 16#fe>>}}),
               {error, {invalid_request, <<"cannot encode", _/binary>>}}),
        %% 3000 bytes pass both our limit and the program's --max-frame-bytes 4096.
        Fits = #{"run" => "port_test", "fits" => binary:copy(<<"y">>, 3000)},
        ?CHECK(ocisign_port:sign(P, #{reference => ref(C, <<"1">>), sign_key => Key, annotations => Fits}),
               {ok, #{signed := [_]}}),
        ?CHECK(ocisign_port:version(P), {ok, #{protocol := 1}})
    after
        ocisign_port:close(P)
    end.

wrong_password(#{key := Key} = C) ->
    {ok, P} = ocisign_port:open(#{env => [{"COSIGN_PASSWORD", "not-the-password"}]}),
    try
        {error, {wrong_password, Msg}} = ocisign_port:sign(P, #{reference => ref(C, <<"1">>), sign_key => Key}),
        %% The password never shows up in what comes back.
        ?CHECK(binary:match(Msg, <<"not-the-password">>), nomatch)
    after
        ocisign_port:close(P)
    end.

%% The program's real --max-frame-bytes (here given through `args', which
%% the plugin does not parse) comes with the version reply: a larger request
%% is refused before it is sent.
learned_frame_limit(#{key := Key}) ->
    {ok, P} = ocisign_port:open(#{args => ["--max-frame-bytes", "300"]}),
    try
        Big = #{<<"k">> => binary:copy(<<"v">>, 400)},
        ?CHECK(ocisign_port:sign(P, #{reference => <<"127.0.0.1:1/x:1">>, sign_key => Key, annotations => Big}),
               {error, {invalid_request, <<"the request is ", _/binary>>}}),
        ?CHECK(ocisign_port:version(P), {ok, #{protocol := 1, max_frame_bytes := 300}})
    after
        ocisign_port:close(P)
    end.

%% A reply with "id": null (a frame the program refused unread) fails the
%% waiting request at once instead of leaving it to its deadline. The
%% plugin's limit is raised behind its back to get such a frame through.
null_id_reply_fails_waiters_at_once(#{key := Key}) ->
    {ok, P} = ocisign_port:open(#{args => ["--max-frame-bytes", "300"]}),
    try
        ok = gen_server:call(P, {max_frame, 1000000}),
        Big = #{<<"k">> => binary:copy(<<"v">>, 400)},
        %% 120 s deadline: before, the caller waited all of it.
        ?CHECK(ocisign_port:sign(P, #{reference => <<"127.0.0.1:1/x:1">>, sign_key => Key, annotations => Big},
                                 120000),
               {error, {frame_too_large, _}}),
        ?CHECK(ocisign_port:version(P), {ok, #{protocol := 1}})
    after
        ocisign_port:close(P)
    end.

%% --- lifecycle -----------------------------------------------------------

%% A registry that accepts connections and never answers.
blackhole() ->
    Self = self(),
    {ok, L} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}, {active, false}, {backlog, 64}]),
    {ok, Port} = inet:port(L),
    Acceptor = spawn(fun() -> accept_loop(L, Self, []) end),
    ok = gen_tcp:controlling_process(L, Acceptor),
    {Port, Acceptor}.

accept_loop(L, Notify, Held) ->
    case gen_tcp:accept(L) of
        {ok, S} -> Notify ! accepted, accept_loop(L, Notify, [S | Held]);
        {error, _} -> ok
    end.

stuck_ref(BhPort) ->
    list_to_binary(io_lib:format("127.0.0.1:~b/ns/stuck:1", [BhPort])).

%% The Go program enforces timeout_ms itself and the port keeps serving.
go_side_timeout(#{key := Key}) ->
    {BhPort, _} = blackhole(),
    {ok, P} = ocisign_port:open(),
    try
        ?CHECK(ocisign_port:sign(P, #{reference => stuck_ref(BhPort), sign_key => Key, timeout_ms => 1500}),
               {error, {timeout, _}}),
        ?CHECK(ocisign_port:version(P), {ok, #{protocol := 1}})
    after
        ocisign_port:close(P)
    end.

kill_mid_request(#{key := Key, bin := Bin}) ->
    {BhPort, _} = blackhole(),
    {ok, P} = ocisign_port:open(),
    {ok, OsPid} = ocisign_port:os_pid(P),
    Self = self(),
    Caller = spawn(fun() ->
                           R = ocisign_port:sign(P, #{reference => stuck_ref(BhPort), sign_key => Key,
                                                      timeout_ms => 120000}),
                           Self ! {caller, self(), R},
                           receive stop -> ok end
                   end),
    %% The program has reached the registry: the request is in flight.
    receive accepted -> ok after 60000 -> throw(never_reached_registry) end,
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    Result = receive {caller, Caller, R} -> R after 60000 -> throw(caller_hangs) end,
    ?CHECK(Result, {error, {port_exit, 137}}),
    ?CHECK(is_process_alive(Caller), true),
    Caller ! stop,
    ?CHECK(is_process_alive(P), false),
    ?CHECK(ocisign_port:sign(P, #{reference => <<"r/x:1">>}), {error, closed}),
    ?CHECK(leftovers(Bin), []),
    ok.

erlang_side_timeout(#{key := Key, bin := Bin}) ->
    {BhPort, _} = blackhole(),
    {ok, P} = ocisign_port:open(),
    {ok, OsPid} = ocisign_port:os_pid(P),
    %% Go would wait 120 s; the Erlang side gives up after 3 s and kills it.
    ?CHECK(ocisign_port:sign(P, #{reference => stuck_ref(BhPort), sign_key => Key, timeout_ms => 120000}, 3000),
           {error, timeout}),
    ?CHECK(alive(OsPid), false),
    ?CHECK(leftovers(Bin), []),
    ?CHECK(ocisign_port:version(P), {error, closed}),
    ok.

close_leaves_no_process(#{bin := Bin}) ->
    {ok, P} = ocisign_port:open(),
    {ok, OsPid} = ocisign_port:os_pid(P),
    ?CHECK(alive(OsPid), true),
    %% ok, not killed: the program exited by itself when asked (`exit').
    ?CHECK(ocisign_port:close(P, 10000), ok),
    ?CHECK(alive(OsPid), false),
    ?CHECK(leftovers(Bin), []),
    ?CHECK(ocisign_port:close(P), ok),
    ok.

%% Closing while a request hangs on the registry: the program cancels the
%% request on `exit', answers it as cancelled and exits by itself.
close_mid_request(#{key := Key, bin := Bin}) ->
    {BhPort, _} = blackhole(),
    {ok, P} = ocisign_port:open(),
    {ok, OsPid} = ocisign_port:os_pid(P),
    Self = self(),
    Caller = spawn(fun() ->
                           Self ! {caller, self(), ocisign_port:sign(P, #{reference => stuck_ref(BhPort),
                                                                          sign_key => Key,
                                                                          timeout_ms => 120000})}
                   end),
    receive accepted -> ok after 60000 -> throw(never_reached_registry) end,
    ?CHECK(ocisign_port:close(P, 10000), ok),
    ?CHECK(receive {caller, Caller, R} -> R after 60000 -> caller_hangs end,
           {error, {cancelled, <<_/binary>>}}),
    ?CHECK(alive(OsPid), false),
    ?CHECK(leftovers(Bin), []),
    ok.

owner_death_closes(#{bin := Bin}) ->
    Self = self(),
    Owner = spawn(fun() ->
                          {ok, P} = ocisign_port:open(),
                          Self ! {opened, P, ocisign_port:os_pid(P)},
                          receive die -> exit(crash) end
                  end),
    {P, OsPid} = receive {opened, P0, {ok, O}} -> {P0, O} after 30000 -> throw(no_open) end,
    Mon = erlang:monitor(process, P),
    Owner ! die,
    receive {'DOWN', Mon, process, P, _} -> ok after 30000 -> throw(port_owner_lingers) end,
    ?CHECK(alive(OsPid), false),
    ?CHECK(leftovers(Bin), []),
    ok.

alive(OsPid) ->
    os:cmd("kill -0 " ++ integer_to_list(OsPid) ++ " 2>/dev/null && echo alive") =:= "alive\n".

%% Processes running exactly `Bin port' (their argv, read from /proc).
leftovers(Bin) ->
    Want = iolist_to_binary([Bin, 0, "port", 0]),
    [Pid || Pid <- filelib:wildcard("/proc/[0-9]*/cmdline"),
            file:read_file(Pid) =:= {ok, Want}].
