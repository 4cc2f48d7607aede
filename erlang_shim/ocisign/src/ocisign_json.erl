%% @doc JSON for the port protocol on every OTP from 25 on.
%%
%% encode/1 and decode/1 use OTP's `json' module when it is loaded (OTP 27+)
%% and this module's own codec otherwise. Both give the same terms:
%% objects are maps with binary keys, strings are binaries, arrays are lists,
%% `true'/`false'/`null' are atoms, numbers are integers or floats.
%% `json' is only called through a module variable so that this module
%% compiles and passes xref on OTP 25 and 26.
-module(ocisign_json).

-export([encode/1, decode/1, backend/0]).
%% The built-in codec, exported so tests exercise it on every OTP.
-export([encode_native/1, decode_native/1]).

-type value() :: null | boolean() | number() | binary() | [value()] | #{binary() | atom() => value()}.
-export_type([value/0]).

%% @doc The module that encodes and decodes on this node.
-spec backend() -> json | ocisign_json.
backend() ->
    case code:ensure_loaded(json) of
        {module, json} ->
            %% Only OTP's own json (stdlib, OTP 27+), not a same-named library.
            Stdlib = code:lib_dir(stdlib),
            Which = code:which(json),
            case erlang:function_exported(json, decode, 1)
                andalso is_list(Which) andalso lists:prefix(Stdlib, Which) of
                true -> json;
                false -> ocisign_json
            end;
        _ ->
            ocisign_json
    end.

%% @doc Encodes to a UTF-8 binary. Raises error({invalid_json_value, Term}) for
%% anything that has no JSON form.
-spec encode(value()) -> binary().
encode(Term) ->
    case backend() of
        ocisign_json -> encode_native(Term);
        Json -> iolist_to_binary(Json:encode(Term))
    end.

%% @doc Decodes one JSON document. Raises an error on invalid input.
-spec decode(binary()) -> value().
decode(Bin) when is_binary(Bin) ->
    case backend() of
        ocisign_json -> decode_native(Bin);
        Json -> Json:decode(Bin)
    end.

%%--------------------------------------------------------------------
%% Encoder
%%--------------------------------------------------------------------

-spec encode_native(value()) -> binary().
encode_native(Term) ->
    iolist_to_binary(enc(Term)).

enc(null) -> <<"null">>;
enc(true) -> <<"true">>;
enc(false) -> <<"false">>;
enc(A) when is_atom(A) -> enc_string(atom_to_binary(A, utf8));
enc(B) when is_binary(B) -> enc_string(B);
enc(I) when is_integer(I) -> integer_to_binary(I);
enc(F) when is_float(F) -> float_to_binary(F, [short]);
enc(L) when is_list(L) -> [$[, join([enc(V) || V <- L]), $]];
enc(M) when is_map(M) ->
    %% Sorted keys make the output deterministic (tests compare bytes).
    Pairs = lists:sort([{key(K), V} || {K, V} <- maps:to_list(M)]),
    [${, join([[enc_string(K), $:, enc(V)] || {K, V} <- Pairs]), $}];
enc(Other) ->
    error({invalid_json_value, Other}).

key(K) when is_binary(K) -> K;
key(K) when is_atom(K) -> atom_to_binary(K, utf8);
key(K) when is_integer(K) -> integer_to_binary(K);
key(K) -> error({invalid_json_key, K}).

join([]) -> [];
join([H | T]) -> [H | [[$, | X] || X <- T]].

enc_string(B) ->
    case unicode:characters_to_binary(B, utf8, utf8) of
        B -> [$", escape(B, <<>>), $"];
        _ -> error({invalid_utf8, B})
    end.

escape(<<>>, Acc) -> Acc;
escape(<<$", R/binary>>, Acc) -> escape(R, <<Acc/binary, "\\\"">>);
escape(<<$\\, R/binary>>, Acc) -> escape(R, <<Acc/binary, "\\\\">>);
escape(<<$\n, R/binary>>, Acc) -> escape(R, <<Acc/binary, "\\n">>);
escape(<<$\r, R/binary>>, Acc) -> escape(R, <<Acc/binary, "\\r">>);
escape(<<$\t, R/binary>>, Acc) -> escape(R, <<Acc/binary, "\\t">>);
escape(<<$\b, R/binary>>, Acc) -> escape(R, <<Acc/binary, "\\b">>);
escape(<<$\f, R/binary>>, Acc) -> escape(R, <<Acc/binary, "\\f">>);
escape(<<C, R/binary>>, Acc) when C < 16#20 ->
    Hex = iolist_to_binary(io_lib:format("\\u~4.16.0b", [C])),
    escape(R, <<Acc/binary, Hex/binary>>);
escape(<<C, R/binary>>, Acc) ->
    escape(R, <<Acc/binary, C>>).

%%--------------------------------------------------------------------
%% Decoder: recursive descent over the binary, no intermediate tokens.
%%--------------------------------------------------------------------

-spec decode_native(binary()) -> value().
decode_native(Bin) when is_binary(Bin) ->
    {Value, Rest} = value(ws(Bin), Bin),
    case ws(Rest) of
        <<>> -> Value;
        Trailing -> error({invalid_json, {trailing_data, offset(Bin, Trailing)}})
    end.

offset(Whole, Rest) -> byte_size(Whole) - byte_size(Rest).

ws(<<C, R/binary>>) when C =:= $\s; C =:= $\t; C =:= $\n; C =:= $\r -> ws(R);
ws(B) -> B.

value(<<${, R/binary>>, W) -> object(ws(R), W, #{});
value(<<$[, R/binary>>, W) -> array(ws(R), W, []);
value(<<$", R/binary>>, W) -> string(R, W, <<>>);
value(<<"true", R/binary>>, _) -> {true, R};
value(<<"false", R/binary>>, _) -> {false, R};
value(<<"null", R/binary>>, _) -> {null, R};
value(<<C, _/binary>> = B, W) when C =:= $-; C >= $0, C =< $9 -> number(B, W);
value(<<>>, W) -> error({invalid_json, {unexpected_end, byte_size(W)}});
value(B, W) -> error({invalid_json, {unexpected_byte, offset(W, B)}}).

object(<<$}, R/binary>>, _, Acc) when map_size(Acc) =:= 0 -> {Acc, R};
object(<<$", R/binary>>, W, Acc) ->
    {Key, R1} = string(R, W, <<>>),
    case ws(R1) of
        <<$:, R2/binary>> ->
            {Val, R3} = value(ws(R2), W),
            Acc1 = Acc#{Key => Val},
            case ws(R3) of
                <<$,, R4/binary>> -> object_key(ws(R4), W, Acc1);
                <<$}, R4/binary>> -> {Acc1, R4};
                Other -> unexpected(Other, W)
            end;
        Other ->
            unexpected(Other, W)
    end;
object(Other, W, _) ->
    unexpected(Other, W).

%% After a comma a key must follow; "{\"a\":1,}" is invalid.
object_key(<<$", _/binary>> = B, W, Acc) -> object(B, W, Acc);
object_key(Other, W, _) -> unexpected(Other, W).

array(<<$], R/binary>>, _, []) -> {[], R};
array(B, W, Acc) ->
    {Val, R1} = value(B, W),
    case ws(R1) of
        <<$,, R2/binary>> -> array(ws(R2), W, [Val | Acc]);
        <<$], R2/binary>> -> {lists:reverse([Val | Acc]), R2};
        Other -> unexpected(Other, W)
    end.

unexpected(<<>>, W) -> error({invalid_json, {unexpected_end, byte_size(W)}});
unexpected(B, W) -> error({invalid_json, {unexpected_byte, offset(W, B)}}).

string(<<$", R/binary>>, _, Acc) -> {Acc, R};
string(<<$\\, $u, R/binary>>, W, Acc) -> unicode_escape(R, W, Acc);
string(<<$\\, C, R/binary>>, W, Acc) ->
    Ch = case C of
             $" -> $";
             $\\ -> $\\;
             $/ -> $/;
             $b -> $\b;
             $f -> $\f;
             $n -> $\n;
             $r -> $\r;
             $t -> $\t;
             _ -> error({invalid_json, {bad_escape, offset(W, R) - 2}})
         end,
    string(R, W, <<Acc/binary, Ch>>);
string(<<C, _/binary>> = B, W, _) when C < 16#20 ->
    error({invalid_json, {control_character_in_string, offset(W, B)}});
string(<<C, R/binary>>, W, Acc) when C < 16#80 ->
    string(R, W, <<Acc/binary, C>>);
string(<<C/utf8, R/binary>>, W, Acc) ->
    string(R, W, <<Acc/binary, C/utf8>>);
string(<<>>, W, _) ->
    error({invalid_json, {unterminated_string, byte_size(W)}});
string(B, W, _) ->
    error({invalid_json, {invalid_utf8, offset(W, B)}}).

unicode_escape(R0, W, Acc) ->
    {Unit, R1} = hex4(R0, W),
    if
        Unit >= 16#D800, Unit =< 16#DBFF ->
            %% A high surrogate must be followed by an escaped low surrogate.
            case R1 of
                <<$\\, $u, R2/binary>> ->
                    {Low, R3} = hex4(R2, W),
                    case Low >= 16#DC00 andalso Low =< 16#DFFF of
                        true ->
                            Cp = 16#10000 + ((Unit - 16#D800) bsl 10) + (Low - 16#DC00),
                            string(R3, W, <<Acc/binary, Cp/utf8>>);
                        false ->
                            error({invalid_json, {lone_surrogate, offset(W, R0)}})
                    end;
                _ ->
                    error({invalid_json, {lone_surrogate, offset(W, R0)}})
            end;
        Unit >= 16#DC00, Unit =< 16#DFFF ->
            error({invalid_json, {lone_surrogate, offset(W, R0)}});
        true ->
            string(R1, W, <<Acc/binary, Unit/utf8>>)
    end.

hex4(<<A, B, C, D, R/binary>> = In, W) ->
    try
        {list_to_integer([A, B, C, D], 16), R}
    catch
        error:badarg -> error({invalid_json, {bad_unicode_escape, offset(W, In)}})
    end;
hex4(In, W) ->
    error({invalid_json, {bad_unicode_escape, offset(W, In)}}).

number(B, W) ->
    {Neg, R0} = case B of
                    <<$-, R/binary>> -> {<<"-">>, R};
                    _ -> {<<>>, B}
                end,
    {Int, R1} = int_part(R0, W),
    {Frac, R2} = frac_part(R1, W),
    {Exp, R3} = exp_part(R2, W),
    Value = case {Frac, Exp} of
                {<<>>, <<>>} ->
                    binary_to_integer(<<Neg/binary, Int/binary>>);
                _ ->
                    F = case Frac of <<>> -> <<"0">>; _ -> Frac end,
                    E = case Exp of <<>> -> <<>>; _ -> <<"e", Exp/binary>> end,
                    try
                        binary_to_float(<<Neg/binary, Int/binary, ".", F/binary, E/binary>>)
                    catch
                        error:badarg -> error({invalid_json, {number_out_of_range, offset(W, B)}})
                    end
            end,
    {Value, R3}.

int_part(<<$0, R/binary>>, _) -> {<<"0">>, R};
int_part(<<C, _/binary>> = B, _) when C >= $1, C =< $9 -> digits(B, <<>>);
int_part(B, W) -> unexpected(B, W).

frac_part(<<$., C, _/binary>> = B, _) when C >= $0, C =< $9 ->
    <<$., R/binary>> = B,
    digits(R, <<>>);
frac_part(<<$., R/binary>>, W) -> unexpected(R, W);
frac_part(B, _) -> {<<>>, B}.

exp_part(<<E, R/binary>>, W) when E =:= $e; E =:= $E ->
    {Sign, R1} = case R of
                     <<$+, X/binary>> -> {<<"+">>, X};
                     <<$-, X/binary>> -> {<<"-">>, X};
                     _ -> {<<>>, R}
                 end,
    case R1 of
        <<C, _/binary>> when C >= $0, C =< $9 ->
            {Ds, R2} = digits(R1, <<>>),
            {<<Sign/binary, Ds/binary>>, R2};
        _ ->
            unexpected(R1, W)
    end;
exp_part(B, _) -> {<<>>, B}.

digits(<<C, R/binary>>, Acc) when C >= $0, C =< $9 -> digits(R, <<Acc/binary, C>>);
digits(R, Acc) -> {Acc, R}.
