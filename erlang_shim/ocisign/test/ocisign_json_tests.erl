-module(ocisign_json_tests).
-include_lib("eunit/include/eunit.hrl").

%% Every test runs the built-in codec (the one OTP 25/26 use); the backend
%% tests check that encode/1 and decode/1 agree with it on this node.

-define(ENC(T), ocisign_json:encode_native(T)).
-define(DEC(B), ocisign_json:decode_native(B)).

roundtrip(T) -> ?DEC(?ENC(T)).

scalars_test_() ->
    [?_assertEqual(null, ?DEC(<<"null">>)),
     ?_assertEqual(true, ?DEC(<<"true">>)),
     ?_assertEqual(false, ?DEC(<<" false ">>)),
     ?_assertEqual(<<"null">>, ?ENC(null)),
     ?_assertEqual(<<"true">>, ?ENC(true)),
     ?_assertEqual(<<"\"atom\"">>, ?ENC(atom)),
     ?_assertEqual(<<"[]">>, ?ENC([])),
     ?_assertEqual(<<"{}">>, ?ENC(#{})),
     ?_assertEqual([], ?DEC(<<"[ ]">>)),
     ?_assertEqual(#{}, ?DEC(<<"{ }">>))].

numbers_test_() ->
    [?_assertEqual(0, ?DEC(<<"0">>)),
     ?_assertEqual(-0.0, ?DEC(<<"-0.0">>)),
     ?_assertEqual(-17, ?DEC(<<"-17">>)),
     ?_assertEqual(12345678901234567890123, ?DEC(<<"12345678901234567890123">>)),
     ?_assertEqual(1.5, ?DEC(<<"1.5">>)),
     ?_assertEqual(1.0e21, ?DEC(<<"1e+21">>)),
     ?_assertEqual(1.0e21, ?DEC(<<"1E21">>)),
     ?_assertEqual(1.5e-7, ?DEC(<<"1.5e-7">>)),
     ?_assertEqual(-2.5e3, ?DEC(<<"-2.5E+3">>)),
     ?_assertEqual(<<"42">>, ?ENC(42)),
     ?_assertEqual(<<"-42">>, ?ENC(-42)),
     ?_assertEqual(<<"0.5">>, ?ENC(0.5)),
     ?_assertEqual(1.0e21, roundtrip(1.0e21)),
     ?_assertEqual(3.141592653589793, roundtrip(3.141592653589793)),
     ?_assertEqual(5.0e-324, roundtrip(5.0e-324)),
     ?_assertEqual(9007199254740993, roundtrip(9007199254740993)),
     ?_assertError({invalid_json, _}, ?DEC(<<"01">>)),
     ?_assertError({invalid_json, _}, ?DEC(<<"1.">>)),
     ?_assertError({invalid_json, _}, ?DEC(<<".5">>)),
     ?_assertError({invalid_json, _}, ?DEC(<<"1e">>)),
     ?_assertError({invalid_json, _}, ?DEC(<<"+1">>)),
     ?_assertError({invalid_json, _}, ?DEC(<<"-">>)),
     ?_assertError({invalid_json, _}, ?DEC(<<"1e400">>))].

strings_test_() ->
    [?_assertEqual(<<"a\"b\\c/d\b\f\n\r\t">>, ?DEC(<<"\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"">>)),
     ?_assertEqual(<<"\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\"">>, ?ENC(<<"a\"b\\c/d\b\f\n\r\t">>)),
     ?_assertEqual(<<"\"\\u0000\\u001f\"">>, ?ENC(<<0, 31>>)),
     ?_assertEqual(<<0, 31, 127>>, roundtrip(<<0, 31, 127>>)),
     ?_assertEqual(<<"é"/utf8>>, ?DEC(<<"\"\\u00e9\"">>)),
     ?_assertEqual(<<"é"/utf8>>, ?DEC(<<"\"\\u00E9\"">>)),
     ?_assertEqual(<<"€"/utf8>>, ?DEC(<<"\"\\u20ac\"">>)),
     ?_assertEqual(<<"<&>"/utf8>>, ?DEC(<<"\"\\u003c\\u0026\\u003e\"">>)),
     %% U+1F600 as a surrogate pair, and raw.
     ?_assertEqual(<<16#1F600/utf8>>, ?DEC(<<"\"\\ud83d\\ude00\"">>)),
     ?_assertEqual(<<16#1D11E/utf8, "x">>, ?DEC(<<"\"\\uD834\\uDD1Ex\"">>)),
     ?_assertEqual(<<16#10FFFF/utf8>>, ?DEC(<<"\"\\udbff\\udfff\"">>)),
     ?_assertEqual(<<"😀"/utf8>>, ?DEC(<<"\"😀\""/utf8>>)),
     ?_assertEqual(<<"\"日本語 😀\""/utf8>>, ?ENC(<<"日本語 😀"/utf8>>)),
     ?_assertEqual(<<"日本語 😀 ✓ ключ"/utf8>>, roundtrip(<<"日本語 😀 ✓ ключ"/utf8>>)),
     ?_assertError({invalid_json, {lone_surrogate, _}}, ?DEC(<<"\"\\ud83d\"">>)),
     ?_assertError({invalid_json, {lone_surrogate, _}}, ?DEC(<<"\"\\ud83dx\"">>)),
     ?_assertError({invalid_json, {lone_surrogate, _}}, ?DEC(<<"\"\\ude00\"">>)),
     ?_assertError({invalid_json, {lone_surrogate, _}}, ?DEC(<<"\"\\ud83d\\u0041\"">>)),
     ?_assertError({invalid_json, {bad_unicode_escape, _}}, ?DEC(<<"\"\\u12g4\"">>)),
     ?_assertError({invalid_json, {bad_unicode_escape, _}}, ?DEC(<<"\"\\u12\"">>)),
     ?_assertError({invalid_json, {bad_escape, _}}, ?DEC(<<"\"\\x\"">>)),
     ?_assertError({invalid_json, {control_character_in_string, _}}, ?DEC(<<"\"a\nb\"">>)),
     ?_assertError({invalid_json, {invalid_utf8, _}}, ?DEC(<<"\"", 16#ff, "\"">>)),
     %% An overlong encoding of "/" and an encoded surrogate are not UTF-8.
     ?_assertError({invalid_json, {invalid_utf8, _}}, ?DEC(<<"\"", 16#c0, 16#af, "\"">>)),
     ?_assertError({invalid_json, {invalid_utf8, _}}, ?DEC(<<"\"", 16#ed, 16#a0, 16#80, "\"">>)),
     ?_assertError({invalid_json, {unterminated_string, _}}, ?DEC(<<"\"abc">>)),
     ?_assertError({invalid_utf8, _}, ?ENC(<<16#ff>>))].

structures_test_() ->
    Nested = #{<<"a">> => [1, 2.5, <<"x">>, [], #{}, [[[null]]]],
               <<"ünï"/utf8>> => #{<<"k">> => [true, false, #{<<"deep">> => [#{}]}]},
               <<"">> => <<"empty key">>},
    [?_assertEqual(Nested, roundtrip(Nested)),
     ?_assertEqual(#{<<"a">> => 1, <<"b">> => [1, 2]}, ?DEC(<<" {\"a\" : 1 ,\n\t\"b\":[1 , 2]} ">>)),
     %% Keys come out sorted, atom keys as strings.
     ?_assertEqual(<<"{\"a\":1,\"b\":{\"c\":[true,null]}}">>, ?ENC(#{b => #{c => [true, null]}, a => 1})),
     ?_assertEqual(#{<<"a">> => 2}, ?DEC(<<"{\"a\":1,\"a\":2}">>)),
     ?_assertError({invalid_json, _}, ?DEC(<<"{\"a\":1,}">>)),
     ?_assertError({invalid_json, _}, ?DEC(<<"[1,]">>)),
     ?_assertError({invalid_json, _}, ?DEC(<<"[1 2]">>)),
     ?_assertError({invalid_json, _}, ?DEC(<<"{\"a\" 1}">>)),
     ?_assertError({invalid_json, _}, ?DEC(<<"{a:1}">>)),
     ?_assertError({invalid_json, _}, ?DEC(<<"{\"a\":1">>)),
     ?_assertError({invalid_json, _}, ?DEC(<<"[">>)),
     ?_assertError({invalid_json, _}, ?DEC(<<"">>)),
     ?_assertError({invalid_json, {trailing_data, _}}, ?DEC(<<"{} {}">>)),
     ?_assertError({invalid_json, _}, ?DEC(<<"nul">>)),
     ?_assertError({invalid_json_value, _}, ?ENC({tuple})),
     ?_assertError({invalid_json_value, _}, ?ENC(self()))].

%% What Go's encoding/json wrote (test/erlang/jsonfixture, committed; run.sh
%% regenerates it and fails when it differs).
go_document() ->
    Hex = fun(Pair) -> binary:copy(Pair, 32) end,
    Cd = Hex(<<"cd">>),
    #{<<"ascii">> => <<"hello">>,
      <<"escapes">> => <<"quote\" backslash\\ slash/ nl\n cr\r tab\t bs\b ff\f nul", 0,
                         " unit", 31, " del", 127>>,
      <<"html">> => <<"<a href=\"x\">&amp;</a>">>,
      <<"unicode">> => <<"héllo wörld ✓ 日本語"/utf8>>,
      <<"astral">> => <<"emoji 😀 clef 𝄞"/utf8>>,
      <<"separators">> => <<"line", 16#2028/utf8, "para", 16#2029/utf8, "end">>,
      <<"invalid_utf8">> => <<16#FFFD/utf8, "a", 16#FFFD/utf8>>,
      <<"empty">> => <<>>,
      <<"ints">> => [0, -1, 1, 42, 9007199254740991, -9007199254740991],
      <<"floats">> => [0.5, -2.25, 1.0e21, 1.5e-7, 3.141592653589793, 1.0e-300, 123456789.125],
      <<"bools">> => [true, false],
      <<"null">> => null,
      <<"nested">> => #{<<"a">> => [#{<<"b">> => [[], #{}]}],
                        <<"ünï"/utf8>> => <<"ключ"/utf8>>,
                        <<"deep">> => [[[[<<"x">>]]]]},
      <<"key \"quoted\"\n">> => 1,
      <<"reply">> => #{<<"id">> => 7, <<"ok">> => true,
                       <<"signature_digest">> => <<"sha256:", (Hex(<<"ab">>))/binary>>,
                       <<"signed">> => [#{<<"digest">> => <<"sha256:", Cd/binary>>,
                                          <<"signature_ref">> => <<"127.0.0.1:5000/ns/app:sha256-", Cd/binary, ".sig">>,
                                          <<"signature_digest">> => <<"sha256:", (Hex(<<"ef">>))/binary>>,
                                          <<"deduplicated">> => false}]}}.

fixture(Name) ->
    Dir = filename:join(filename:dirname(code:which(?MODULE)), "fixtures"),
    Path = case filelib:is_dir(Dir) of
               true -> filename:join(Dir, Name);
               false -> filename:join(["test", "fixtures", Name])
           end,
    {ok, Bin} = file:read_file(Path),
    Bin.

go_compact_test() ->
    ?assertEqual(go_document(), ?DEC(fixture("go_compact.json"))).

go_indented_test() ->
    ?assertEqual(go_document(), ?DEC(fixture("go_indented.json"))).

go_reencode_test() ->
    Doc = ?DEC(fixture("go_compact.json")),
    ?assertEqual(Doc, ?DEC(?ENC(Doc))).

backend_test_() ->
    Doc = go_document(),
    [?_assert(lists:member(ocisign_json:backend(), [json, ocisign_json])),
     ?_assertEqual(Doc, ocisign_json:decode(ocisign_json:encode(Doc))),
     ?_assertEqual(Doc, ocisign_json:decode(fixture("go_compact.json"))),
     ?_assertEqual(Doc, ocisign_json:decode(?ENC(Doc))),
     ?_assertEqual(Doc, ?DEC(ocisign_json:encode(Doc)))].

%% OTP 27+ uses its own json module, older releases the built-in codec.
backend_matches_otp_test() ->
    Expected = case list_to_integer(erlang:system_info(otp_release)) >= 27 of
                   true -> json;
                   false -> ocisign_json
               end,
    ?assertEqual(Expected, ocisign_json:backend()).
