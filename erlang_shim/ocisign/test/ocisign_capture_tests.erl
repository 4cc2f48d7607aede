-module(ocisign_capture_tests).
-include_lib("eunit/include/eunit.hrl").

-define(D, "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").

%% What ocibuild prints through rebar_api:console, after a coloured info line
%% whose reset lands at the start of the next line.
run_captures_tagged_and_digest_test() ->
    {Result, Printed} = ocisign_capture:run(
                          fun() ->
                                  io:format("\e[0;32m===> Pushing~n\e[0m"),
                                  io:format("Tagged: ~s~n", ["ghcr.io/org/app:1.0"]),
                                  io:format("Tagged: ~s~n", ["ghcr.io/org/app:latest"]),
                                  io:put_chars(<<"Digest: ", ?D, "\n">>),
                                  done
                          end),
    ?assertEqual(done, Result),
    ?assertEqual(#{digest => <<?D>>, tagged => [<<"ghcr.io/org/app:1.0">>, <<"ghcr.io/org/app:latest">>]},
                 Printed).

run_restores_the_group_leader_test() ->
    GL = group_leader(),
    ?assertError(boom, ocisign_capture:run(fun() -> error(boom) end)),
    ?assertEqual(GL, group_leader()),
    {ok, #{digest := undefined, tagged := []}} = ocisign_capture:run(fun() -> ok end),
    ?assertEqual(GL, group_leader()).

%% Output of processes the fun spawns goes through the proxy too; a line
%% split over several writes counts once complete; the last line needs no
%% newline.
run_sees_spawned_and_split_output_test() ->
    {ok, Printed} = ocisign_capture:run(
                      fun() ->
                              Self = self(),
                              spawn(fun() -> io:format("Tagged: r/a:1~n"), Self ! printed end),
                              receive printed -> ok end,
                              io:format("Dig"), io:format("est: " ?D),
                              ok
                      end),
    ?assertEqual(#{digest => <<?D>>, tagged => [<<"r/a:1">>]}, Printed).

scan_ignores_what_is_not_ours_test() ->
    Empty = #{digest => undefined, tagged => []},
    Lines = <<"Digest: sha256:abc\n", "Digest: md5:", ?D, "\n", "Tagged: two words\n",
              "Tagged: \n", "  Digested: ", ?D, "\n", "partial">>,
    ?assertEqual({<<"partial">>, Empty}, ocisign_capture:scan(Lines, Empty)),
    Long = binary:copy(<<"x">>, 10000),
    ?assertEqual({<<>>, Empty}, ocisign_capture:scan(Long, Empty)).
