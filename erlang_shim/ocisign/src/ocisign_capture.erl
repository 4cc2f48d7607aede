%% @doc Runs a fun with the calling process's output going through a proxy
%% group leader that passes every request on unchanged to the real one and
%% remembers the lines ocibuild prints for CI pipelines:
%%   Tagged: <registry>/<repo>:<tag>   (one per pushed tag)
%%   Digest: sha256:<hex>              (the manifest or index it pushed)
%% ocibuild keeps the digest to itself otherwise (rebar_api:console is all).
-module(ocisign_capture).

-export([run/1, scan/2]).

-type printed() :: #{digest := binary() | undefined, tagged := [binary()]}.
-export_type([printed/0]).

%% A line longer than this is not one of ours; the buffer never grows past it.
-define(MAX_LINE, 8192).

-spec run(fun(() -> T)) -> {T, printed()}.
run(Fun) ->
    Original = group_leader(),
    Proxy = spawn(fun() -> proxy(Original, <<>>, #{digest => undefined, tagged => []}) end),
    Mon = erlang:monitor(process, Proxy),
    group_leader(Proxy, self()),
    try
        Fun()
    of
        Result -> {Result, collect(Proxy, Mon)}
    after
        group_leader(Original, self()),
        exit(Proxy, kill)
    end.

collect(Proxy, Mon) ->
    Proxy ! {self(), collect},
    receive
        {Proxy, Printed} -> erlang:demonitor(Mon, [flush]), Printed;
        {'DOWN', Mon, process, Proxy, _} -> #{digest => undefined, tagged => []}
    end.

proxy(Original, Buffer, Printed) ->
    receive
        {io_request, _From, _ReplyAs, Request} = Msg ->
            Original ! Msg,
            {Buffer1, Printed1} = scan(iolist_to_binary([Buffer, text(Request)]), Printed),
            proxy(Original, Buffer1, Printed1);
        {From, collect} ->
            {_, Final} = scan(<<Buffer/binary, "\n">>, Printed),
            From ! {self(), Final#{tagged := lists:reverse(maps:get(tagged, Final))}};
        Other ->
            %% Anything else a group leader may get goes to the real one.
            Original ! Other,
            proxy(Original, Buffer, Printed)
    end.

%% The text an output request writes (never fails: unknown shapes are none).
text({put_chars, Enc, Chars}) -> chars(Enc, Chars);
text({put_chars, Enc, M, F, A}) -> chars(Enc, catch apply(M, F, A));
text({put_chars, Chars}) -> chars(latin1, Chars);
text({put_chars, M, F, A}) -> chars(latin1, catch apply(M, F, A));
text({requests, Requests}) -> [text(R) || R <- Requests];
text(_) -> <<>>.

chars(Enc, Chars) ->
    case catch unicode:characters_to_binary(Chars, Enc) of
        B when is_binary(B) -> B;
        _ -> <<>>
    end.

%% @doc Takes the complete lines out of Buffer and records the ones that
%% matter; returns the incomplete rest.
-spec scan(binary(), printed()) -> {binary(), printed()}.
scan(Buffer, Printed) ->
    case binary:split(Buffer, <<"\n">>) of
        [Line, Rest] -> scan(Rest, line(string:trim(plain(Line)), Printed));
        [Partial] when byte_size(Partial) > ?MAX_LINE -> {<<>>, Printed};
        [Partial] -> {Partial, Printed}
    end.

%% Without terminal colour codes: rebar3 ends a coloured line with a reset
%% that lands at the start of the next one.
plain(Line) ->
    re:replace(Line, "\e\\[[0-9;]*m", "", [global, {return, binary}]).

line(<<"Digest: ", D/binary>>, Printed) ->
    case re:run(D, "^sha256:[0-9a-f]{64}$", [{capture, none}]) of
        match -> Printed#{digest := D};
        nomatch -> Printed
    end;
line(<<"Tagged: ", Ref/binary>>, #{tagged := Tagged} = Printed) ->
    case binary:match(Ref, [<<" ">>, <<"\t">>]) of
        nomatch when Ref =/= <<>> -> Printed#{tagged := [Ref | Tagged]};
        _ -> Printed
    end;
line(_, Printed) ->
    Printed.
