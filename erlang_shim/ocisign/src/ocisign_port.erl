%% @doc Talks to `ocisign port' (protocol v1: {packet,4} frames of UTF-8 JSON).
%%
%% One gen_server per port owns the Go program. It traps exits and is not
%% linked to the caller, so a crash of the Go program (or an EPIPE on the
%% port) never takes the caller down; it monitors the process that opened it
%% and closes the port when that process dies, so nothing is left behind.
%%
%% Results:
%%   sign/2,3   -> {ok, #{signature_digest := binary(),
%%                        signed := [#{digest, signature_ref, signature_digest,
%%                                     deduplicated, ...}]}}
%%   version/1  -> {ok, #{version := binary(), protocol := integer(),
%%                        max_frame_bytes := integer()}}
%%   verify/2   -> {ok, Map} with the Go reply's fields as atom keys.
%% Errors ({error, Reason}):
%%   {Code, Message}       the Go program refused or failed the request; Code
%%                         is an atom for the codes of docs/design.md
%%                         (key_not_found, wrong_password, not_found,
%%                         unauthorized, timeout, ...), a binary for any other
%%                         code; Message is a binary for humans.
%%   timeout               no reply in time: the OS process was killed.
%%   {port_exit, Status}   the Go program died (exit status, 137 = SIGKILL)
%%                         or the port failed (e.g. epipe);
%%                         killed_after_timeout: another request on the same
%%                         port timed out, which killed the program.
%%   closed                the port was closed (close/1, or it had died before).
%%   {protocol_error, R}   a reply frame that is not a protocol v1 reply.
%%   {protocol_mismatch, Got, 1}  open/1: the program speaks another protocol.
%%   {open_failed, Bin, R} open/1: the program could not be started.
%%   ocisign_bin:reason()  open/1: the program was not found.
%% format_error/1 turns any of them into a sentence.
-module(ocisign_port).
-behaviour(gen_server).

-export([open/0, open/1, close/1, close/2,
         sign/1, sign_once/2, sign/2, sign/3,
         verify/2, verify/3, version/1, version/2, public_key/2, connect/2, identity/2,
         os_pid/1, format_error/1, is_http_url/1, redact_url/1, redact_term/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
-ifdef(TEST).
-export([reply_to_result/1, sign_fields/1, verify_fields/1]).
-endif.

-define(PROTOCOL, 1).
%% The Go side's default per-request timeout (registry.DefaultTimeout).
-define(GO_DEFAULT_TIMEOUT_MS, 300000).
%% Extra time the Erlang side grants past timeout_ms: the Go program answers
%% its own timeout with an error reply; only a stuck program hits ours.
-define(MARGIN_MS, 5000).
-define(OPEN_TIMEOUT_MS, 30000).
%% How long the program gets to exit after an `exit' request (or after
%% SIGKILL, to report its exit status) before the port is given up.
-define(EXIT_GRACE_MS, 5000).
%% The program's default --max-frame-bytes.
-define(MAX_FRAME_BYTES, 1048576).

-type request() :: #{atom() => term()}.
-type result() :: #{atom() | binary() => term()}.
-type reason() :: {atom() | binary(), binary()} | timeout | {port_exit, term()} | closed
                | {protocol_error, term()} | {protocol_mismatch, term(), pos_integer()}
                | {open_failed, string(), term()} | ocisign_bin:reason()
                | {invalid_request, binary()}.
-export_type([request/0, result/0, reason/0]).

-record(st, {port :: port() | undefined,
             owner_mon :: reference(),
             max_frame :: pos_integer(),
             next_id = 1 :: pos_integer(),
             pending = #{} :: #{pos_integer() => {gen_server:from(), reference()}},
             %% Set once the port is being shut down: who waits for it (a
             %% close/2 caller or nobody), how it ends (ok: it exited; killed:
             %% it needed SIGKILL), the timer of the current step, and the
             %% replies held back until the program is gone.
             closing :: undefined | #{from := gen_server:from() | none, result := ok | killed,
                                      timer := reference(), waiters := [{gen_server:from(), term()}]}}).

%%====================================================================
%% API
%%====================================================================

-spec open() -> {ok, pid()} | {error, reason()}.
open() -> open(#{}).

%% @doc Starts `ocisign port' and checks that it speaks protocol 1.
%% Opts: bin (path, see ocisign_bin), env ([{Name, Value | false}] for the
%% program; everything else, COSIGN_PASSWORD and OCIBUILD_PUSH_* included, is
%% inherited), max_frame_bytes (the program's request size limit, default
%% 1 MiB; larger requests are refused here, before sending), args (extra
%% arguments after `port', e.g. ["--max-concurrent", "4"]), open_timeout_ms.
-spec open(map() | list()) -> {ok, pid()} | {error, reason()}.
open(Opts) when is_list(Opts) -> open(maps:from_list(Opts));
open(Opts) when is_map(Opts) ->
    case ocisign_bin:find(Opts) of
        {ok, Bin} ->
            case gen_server:start(?MODULE, {self(), Bin, Opts}, []) of
                {ok, Pid} -> handshake(Pid, maps:get(open_timeout_ms, Opts, ?OPEN_TIMEOUT_MS));
                {error, Reason} -> {error, Reason}
            end;
        {error, _} = Error ->
            Error
    end.

handshake(Pid, Timeout) ->
    case version(Pid, Timeout) of
        {ok, #{protocol := ?PROTOCOL} = Version} ->
            %% The program's real frame limit (--max-frame-bytes may come
            %% from `args' too); older programs do not say.
            case maps:get(max_frame_bytes, Version, undefined) of
                N when is_integer(N), N > 0 -> call(Pid, {max_frame, N});
                _ -> ok
            end,
            {ok, Pid};
        {ok, Other} ->
            close(Pid),
            {error, {protocol_mismatch, maps:get(protocol, Other, missing), ?PROTOCOL}};
        {error, Reason} ->
            close(Pid),
            {error, Reason}
    end.

%% @doc Asks the program to exit (the protocol's `exit' op), waits for the
%% exit status the runtime reports (SIGKILL after a grace period) and stops
%% the owner. Requests still in flight get the program's `cancelled' reply,
%% or {error, closed} if it had none. Always returns ok.
-spec close(pid()) -> ok.
close(Pid) ->
    _ = close(Pid, ?EXIT_GRACE_MS),
    ok.

%% @doc Like close/1 with the grace period given; says whether the program
%% exited when asked (ok) or had to be killed (killed). A port that was
%% already closed gives ok.
-spec close(pid(), non_neg_integer()) -> ok | killed.
close(Pid, GraceMs) when is_integer(GraceMs), GraceMs >= 0 ->
    case call(Pid, {close, GraceMs}) of
        killed -> killed;
        _ -> ok
    end.

%% @doc Opens a port, signs, closes it.
-spec sign(request()) -> {ok, result()} | {error, reason()}.
sign(Request) -> sign_once(Request, #{}).

%% @doc Like sign/1 with open/1 options (bin, env, ...).
-spec sign_once(request(), map()) -> {ok, result()} | {error, reason()}.
sign_once(Request, OpenOpts) ->
    case open(OpenOpts) of
        {ok, Pid} ->
            try sign(Pid, Request) after close(Pid) end;
        Error ->
            Error
    end.

%% @doc Request keys: reference (required), digest, sign_key, annotations
%% (map or proplist), recursive, allow_insecure_registry, timeout_ms,
%% rekor_url (record each signature in that Rekor log before pushing it),
%% rekor_public_key (PEM file of the log's key; send an absolute path),
%% just_pushed (the image was pushed moments ago: one round trip fewer). The
%% reply is awaited for timeout_ms plus 5 s; without timeout_ms, for the
%% program's default of 300000 ms plus 5 s (so pass timeout_ms when an
%% OCISIGN_CONFIG file sets a longer default).
-spec sign(pid(), request()) -> {ok, result()} | {error, reason()}.
sign(Pid, Request) -> sign(Pid, Request, default).

%% @doc Like sign/2 with the Erlang-side deadline set explicitly, in ms.
-spec sign(pid(), request(), pos_integer() | default) -> {ok, result()} | {error, reason()}.
sign(Pid, Request, CallTimeout) ->
    case sign_fields(Request) of
        {ok, Fields} -> request(Pid, <<"sign">>, Fields, deadline(Request, CallTimeout));
        Error -> Error
    end.

%% @doc Request keys are passed to the Go program as they are (atom keys,
%% strings as binaries); see docs/port-protocol.md for the verify fields.
%% The transparency log ones are checked here: require_tlog (boolean),
%% rekor_url (http(s) URL), rekor_public_key (path).
-spec verify(pid(), request()) -> {ok, result()} | {error, reason()}.
verify(Pid, Request) -> verify(Pid, Request, default).

-spec verify(pid(), request(), pos_integer() | default) -> {ok, result()} | {error, reason()}.
verify(Pid, Request, CallTimeout) ->
    case verify_fields(Request) of
        {ok, Fields} -> request(Pid, <<"verify">>, Fields, deadline(Request, CallTimeout));
        Error -> Error
    end.

-spec public_key(pid(), request()) -> {ok, result()} | {error, reason()}.
public_key(Pid, Request) ->
    case plain_fields(Request) of
        {ok, Fields} -> request(Pid, <<"public_key">>, Fields, deadline(Request, default));
        Error -> Error
    end.

%% @doc Makes ready what a sign of `reference' will need (the registry's
%% challenge, a push token, a connection) without reading or writing
%% anything. Request keys: reference, allow_insecure_registry, timeout_ms.
-spec connect(pid(), request()) -> {ok, result()} | {error, reason()}.
connect(Pid, Request) ->
    case plain_fields(Request) of
        {ok, Fields} -> request(Pid, <<"connect">>, Fields, deadline(Request, default));
        Error -> Error
    end.

%% @doc Checks before the push what a keyless sign will need, without
%% asking Fulcio: an identity token the program can find (identity_token,
%% SIGSTORE_ID_TOKEN, GitHub Actions), fulcio_url and fulcio_root usable.
%% The reply names the issuer, subject and source of the token.
-spec identity(pid(), request()) -> {ok, result()} | {error, reason()}.
identity(Pid, Request) ->
    case plain_fields(Request) of
        {ok, Fields} -> request(Pid, <<"identity">>, Fields, deadline(Request, default));
        Error -> Error
    end.

-spec version(pid()) -> {ok, result()} | {error, reason()}.
version(Pid) -> version(Pid, ?OPEN_TIMEOUT_MS).

-spec version(pid(), pos_integer()) -> {ok, result()} | {error, reason()}.
version(Pid, Timeout) -> request(Pid, <<"version">>, #{}, Timeout).

%% @doc The OS pid of the Go program (diagnostics and tests).
-spec os_pid(pid()) -> {ok, integer()} | {error, closed}.
os_pid(Pid) -> call(Pid, os_pid).

request(Pid, Op, Fields, Deadline) ->
    call(Pid, {request, Op, Fields, Deadline}).

%% The server always answers (it enforces the deadline itself), so the
%% caller can wait without a timeout; the call's monitor covers a dead server.
call(Pid, Msg) ->
    try
        gen_server:call(Pid, Msg, infinity)
    catch
        exit:{_Reason, {gen_server, call, _}} -> {error, closed}
    end.

deadline(_Request, N) when is_integer(N), N > 0 -> N;
deadline(Request, default) ->
    case maps:get(timeout_ms, Request, undefined) of
        N when is_integer(N), N > 0 -> N + ?MARGIN_MS;
        _ -> ?GO_DEFAULT_TIMEOUT_MS + ?MARGIN_MS
    end.

%%====================================================================
%% Request fields
%%====================================================================

sign_fields(Request) when is_map(Request) ->
    try
        Fields = maps:fold(fun sign_field/3, #{}, Request),
        case maps:is_key(<<"reference">>, Fields) of
            true -> {ok, Fields};
            false -> {error, {invalid_request, <<"sign request without a reference">>}}
        end
    catch
        throw:{bad_field, Msg} -> {error, {invalid_request, Msg}}
    end;
sign_fields(_) ->
    {error, {invalid_request, <<"a sign request must be a map">>}}.

sign_field(K, V, Acc) when K =:= reference; K =:= digest; K =:= sign_key;
                           K =:= fulcio_url; K =:= fulcio_root; K =:= identity_token ->
    Acc#{atom_to_binary(K, utf8) => nonempty_string(K, V)};
sign_field(annotations, V, Acc) ->
    Acc#{<<"annotations">> => annotations(V)};
sign_field(K, V, Acc) when K =:= recursive; K =:= allow_insecure_registry; K =:= keyless;
                           K =:= insecure_ignore_sct; K =:= just_pushed ->
    case is_boolean(V) of
        true -> Acc#{atom_to_binary(K, utf8) => V};
        false -> bad_field("~p must be true or false, got ~p", [K, V])
    end;
sign_field(timeout_ms, V, Acc) when is_integer(V), V > 0 ->
    Acc#{<<"timeout_ms">> => V};
sign_field(timeout_ms, V, _) ->
    bad_field("timeout_ms must be a positive integer, got ~p", [V]);
sign_field(K, V, Acc) when K =:= rekor_url; K =:= rekor_public_key ->
    tlog_field(K, V, Acc);
sign_field(K, _, _) ->
    bad_field("unknown field ~p in a sign request (known: reference, digest, sign_key, "
              "annotations, recursive, allow_insecure_registry, timeout_ms, rekor_url, "
              "rekor_public_key, keyless, identity_token, fulcio_url, fulcio_root, "
              "insecure_ignore_sct, just_pushed)", [K]).

%% Transparency log fields, shared by sign and verify.
tlog_field(rekor_url, V, Acc) ->
    Url = case to_bin(V) of
              {ok, <<>>} -> bad_field("rekor_url must not be empty", []);
              {ok, B} -> B;
              error -> bad_field("rekor_url must be a string, got ~p", [redact_term(V)])
          end,
    case is_http_url(Url) of
        true -> Acc#{<<"rekor_url">> => Url};
        false -> bad_field("rekor_url must be an absolute http:// or https:// URL without query "
                           "or fragment, got ~p", [redact_term(V)])
    end;
tlog_field(rekor_public_key, V, Acc) ->
    Acc#{<<"rekor_public_key">> => nonempty_string(rekor_public_key, V)};
tlog_field(require_tlog, V, Acc) when is_boolean(V) ->
    Acc#{<<"require_tlog">> => V};
tlog_field(require_tlog, V, _) ->
    bad_field("require_tlog must be true or false, got ~p", [V]).

%% @doc The rule of the Go side (port/request.go, tlog.New) for a Rekor URL:
%% absolute http:// or https:// with a host, no query, no fragment.
-spec is_http_url(string() | binary()) -> boolean().
is_http_url(Url) ->
    case catch uri_string:parse(Url) of
        #{scheme := Scheme, host := Host} = U when Host =/= "", Host =/= <<>> ->
            lists:member(string:lowercase(Scheme), ["http", "https", <<"http">>, <<"https">>])
                andalso not maps:is_key(query, U) andalso not maps:is_key(fragment, U);
        _ ->
            false
    end.

%% @doc Url for messages without its user-info, where credentials go
%% ("https://user:token@host/" gives "https://host/"), the rule of the Go
%% side's tlog.RedactURL. A URL that does not parse, or has an "@" left after
%% its host (a password holding "/"), gets everything between "://" (or its
%% start) and its last "@" replaced by "[REDACTED]". A binary stays a binary.
-spec redact_url(string() | binary()) -> string() | binary().
redact_url(Url) when is_binary(Url) ->
    case unicode:characters_to_list(Url) of
        L when is_list(L) -> unicode:characters_to_binary(redact_url(L));
        _ -> list_to_binary(redact_url(binary_to_list(Url))) % not UTF-8: redact the bytes
    end;
redact_url(Url) when is_list(Url) ->
    case lists:member($@, Url) of
        false -> Url; % nothing to hide; keep it as typed
        true -> redact_parsed(Url)
    end.

redact_parsed(Url) ->
    Recomposed = case catch uri_string:parse(Url) of
                     #{scheme := _, host := _} = U ->
                         catch uri_string:recompose(maps:remove(userinfo, U));
                     _ ->
                         error
                 end,
    case is_list(Recomposed) andalso not lists:member($@, Recomposed) of
        true -> Recomposed;
        false -> redact_text(Url)
    end.

redact_text(Url) ->
    {Head, Rest} = case string:split(Url, "://") of
                       [H, R] -> case lists:member($@, H) of
                                     false -> {H ++ "://", R};
                                     true -> {"", Url}
                                 end;
                       [_] -> {"", Url}
                   end,
    case string:split(Rest, "@", trailing) of
        [_, Host] -> Head ++ "[REDACTED]@" ++ Host;
        [_] -> Url
    end.

%% @doc A configured or requested value for an error message, of any shape:
%% every string in it (list, binary, atom) goes through redact_url/1.
-spec redact_term(term()) -> term().
redact_term(V) when is_binary(V) -> redact_url(V);
redact_term(V) when is_atom(V) -> list_to_atom(redact_url(atom_to_list(V)));
redact_term(V) when is_list(V) ->
    case catch unicode:characters_to_list(V) of
        L when is_list(L) -> redact_url(L);
        _ -> redact_elements(V)
    end;
redact_term(V) when is_tuple(V) -> list_to_tuple(redact_elements(tuple_to_list(V)));
redact_term(V) when is_map(V) ->
    maps:from_list([{redact_term(K), redact_term(X)} || {K, X} <- maps:to_list(V)]);
redact_term(V) -> V.

redact_elements([H | T]) -> [redact_term(H) | redact_elements(T)];
redact_elements([]) -> [];
redact_elements(Tail) -> redact_term(Tail). % improper list

verify_fields(Request) when is_map(Request) ->
    try
        Tlog = maps:with([require_tlog, rekor_url, rekor_public_key], Request),
        TlogFields = maps:fold(fun tlog_field/3, #{}, Tlog),
        case plain_fields(maps:without(maps:keys(Tlog), Request)) of
            {ok, Fields} -> {ok, maps:merge(Fields, TlogFields)};
            Error -> Error
        end
    catch
        throw:{bad_field, Msg} -> {error, {invalid_request, Msg}}
    end;
verify_fields(_) ->
    {error, {invalid_request, <<"a request must be a map">>}}.

plain_fields(Request) when is_map(Request) ->
    try
        {ok, maps:fold(fun(K, V, Acc) when is_atom(K) -> Acc#{atom_to_binary(K, utf8) => plain(V)};
                          (K, _, _) -> bad_field("field names must be atoms, got ~p", [K])
                       end, #{}, Request)}
    catch
        throw:{bad_field, Msg} -> {error, {invalid_request, Msg}}
    end;
plain_fields(_) ->
    {error, {invalid_request, <<"a request must be a map">>}}.

plain(V) when is_boolean(V); is_integer(V); is_binary(V) -> V;
plain(V) when is_map(V) -> annotations(V);
plain(V) when is_list(V) ->
    case io_lib:char_list(V) of
        true -> unicode:characters_to_binary(V);
        false -> annotations(V)
    end;
plain(V) -> bad_field("unsupported value ~p", [V]).

nonempty_string(K, V) ->
    case to_bin(V) of
        {ok, <<>>} -> bad_field("~p must not be empty", [K]);
        {ok, B} -> B;
        error -> bad_field("~p must be a string, got ~p", [K, V])
    end.

%% Annotations: a map or a proplist; keys and values strings, binaries or atoms.
annotations(M) when is_map(M) -> annotations(maps:to_list(M));
annotations(L) when is_list(L) ->
    maps:from_list([annotation(P) || P <- L]);
annotations(V) ->
    bad_field("annotations must be a map or a list of {Key, Value}, got ~p", [V]).

annotation({K, V}) ->
    case {to_bin(K), to_bin(V)} of
        {{ok, KB}, {ok, VB}} when KB =/= <<>> -> {KB, VB};
        _ -> bad_field("annotation ~p must be {Key, Value} strings with a non-empty key", [{K, V}])
    end;
annotation(Other) ->
    bad_field("annotation ~p must be {Key, Value}", [Other]).

to_bin(B) when is_binary(B) -> {ok, B};
to_bin(A) when is_atom(A), not is_boolean(A), A =/= null, A =/= undefined ->
    {ok, atom_to_binary(A, utf8)};
to_bin(L) when is_list(L) ->
    case catch unicode:characters_to_binary(L) of
        B when is_binary(B) -> {ok, B};
        _ -> error
    end;
to_bin(_) -> error.

bad_field(Fmt, Args) ->
    throw({bad_field, unicode:characters_to_binary(io_lib:format(Fmt, Args))}).

%%====================================================================
%% Replies
%%====================================================================

%% @private Converts a decoded reply (binary keys) into the API's shape.
reply_to_result(#{<<"ok">> := true} = Reply) ->
    {ok, atomize(maps:without([<<"id">>, <<"ok">>], Reply))};
reply_to_result(#{<<"ok">> := false, <<"error">> := #{<<"code">> := Code} = Err})
  when is_binary(Code) ->
    Message = case maps:get(<<"message">>, Err, <<>>) of
                  M when is_binary(M) -> M;
                  _ -> <<>>
              end,
    {error, {error_code(Code), Message}};
reply_to_result(Other) ->
    {error, {protocol_error, {bad_reply, Other}}}.

atomize(M) when is_map(M) ->
    maps:fold(fun(K, V, Acc) -> Acc#{field(K) => atomize(V)} end, #{}, M);
atomize(L) when is_list(L) -> [atomize(X) || X <- L];
atomize(V) -> V.

%% Fields of the protocol become atoms; anything else stays a binary, so a
%% reply can never create atoms.
field(<<"signature_digest">>) -> signature_digest;
field(<<"signed">>) -> signed;
field(<<"digest">>) -> digest;
field(<<"signature_ref">>) -> signature_ref;
field(<<"deduplicated">>) -> deduplicated;
field(<<"log_index">>) -> log_index;
field(<<"log_uuid">>) -> log_uuid;
field(<<"version">>) -> version;
field(<<"protocol">>) -> protocol;
field(<<"signatures">>) -> signatures;
field(<<"valid">>) -> valid;
field(<<"layer">>) -> layer;
field(<<"payload_digest">>) -> payload_digest;
field(<<"payload">>) -> payload;
field(<<"error">>) -> error;
field(<<"public_key">>) -> public_key;
field(<<"algorithm">>) -> algorithm;
field(<<"warnings">>) -> warnings;
field(<<"reference">>) -> reference;
field(<<"max_frame_bytes">>) -> max_frame_bytes;
field(<<"issuer">>) -> issuer;
field(<<"subject">>) -> subject;
field(<<"source">>) -> source;
field(<<"expires">>) -> expires;
field(<<"keyless">>) -> keyless;
field(<<"identities">>) -> identities;
field(K) -> K.

error_code(<<"invalid_request">>) -> invalid_request;
error_code(<<"invalid_json">>) -> invalid_json;
error_code(<<"invalid_reference">>) -> invalid_reference;
error_code(<<"key_not_found">>) -> key_not_found;
error_code(<<"invalid_key">>) -> invalid_key;
error_code(<<"unsupported_key">>) -> unsupported_key;
error_code(<<"wrong_password">>) -> wrong_password;
error_code(<<"password_required">>) -> password_required;
error_code(<<"not_found">>) -> not_found;
error_code(<<"unauthorized">>) -> unauthorized;
error_code(<<"denied">>) -> denied;
error_code(<<"insecure_registry">>) -> insecure_registry;
error_code(<<"registry_unavailable">>) -> registry_unavailable;
error_code(<<"registry_error">>) -> registry_error;
error_code(<<"timeout">>) -> timeout;
error_code(<<"cancelled">>) -> cancelled;
error_code(<<"tlog_error">>) -> tlog_error;
error_code(<<"identity_error">>) -> identity_error;
error_code(<<"ca_error">>) -> ca_error;
error_code(<<"verification_failed">>) -> verification_failed;
error_code(<<"frame_too_large">>) -> frame_too_large;
error_code(<<"unknown_op">>) -> unknown_op;
error_code(<<"internal">>) -> internal;
error_code(Other) -> Other.

%% @doc A sentence for any {error, Reason} of this module.
-spec format_error(term()) -> string().
format_error({Code, Message}) when (is_atom(Code) orelse is_binary(Code)), is_binary(Message) ->
    lists:flatten(io_lib:format("~ts (~ts)", [Message, Code]));
format_error(timeout) ->
    "the ocisign program did not answer in time; it was killed";
format_error({port_exit, 137}) ->
    "the ocisign program was killed (SIGKILL)";
format_error({port_exit, N}) when is_integer(N), N > 128 ->
    lists:flatten(io_lib:format("the ocisign program died from signal ~b", [N - 128]));
format_error({port_exit, killed_after_timeout}) ->
    "the ocisign program was killed because another request on the same port timed out "
    "(one program serves all of them); open a new port and retry";
format_error({port_exit, N}) when is_integer(N) ->
    lists:flatten(io_lib:format("the ocisign program exited with status ~b before answering "
                                "(its messages are on stderr above)", [N]));
format_error({port_exit, R}) ->
    lists:flatten(io_lib:format("the port to the ocisign program failed: ~p", [R]));
format_error(closed) ->
    "the port to the ocisign program is closed";
format_error({protocol_error, R}) ->
    lists:flatten(io_lib:format("the ocisign program sent something that is not a protocol v1 "
                                "reply: ~p", [R]));
format_error({protocol_mismatch, Got, Want}) ->
    lists:flatten(io_lib:format("the ocisign program speaks port protocol ~p, this plugin needs ~p; "
                                "rebuild the program from the same ocisign release", [Got, Want]));
format_error({open_failed, Bin, R}) ->
    lists:flatten(io_lib:format("could not start ~ts: ~p", [Bin, R]));
format_error({invalid_request, Msg}) ->
    lists:flatten(io_lib:format("invalid request: ~ts", [Msg]));
format_error(Reason) when element(1, Reason) =:= bin_missing;
                          element(1, Reason) =:= bin_download;
                          element(1, Reason) =:= bin_not_found;
                          element(1, Reason) =:= bin_not_executable ->
    ocisign_bin:format_error(Reason);
format_error(Other) ->
    lists:flatten(io_lib:format("~p", [Other])).

%%====================================================================
%% gen_server
%%====================================================================

init({Owner, Bin, Opts}) ->
    process_flag(trap_exit, true),
    Mon = erlang:monitor(process, Owner),
    Env = [{env, Env} || Env <- [maps:get(env, Opts, [])], Env =/= []],
    {MaxFrame, FrameArgs} = case maps:get(max_frame_bytes, Opts, undefined) of
                                N when is_integer(N), N > 0 ->
                                    {N, ["--max-frame-bytes", integer_to_list(N)]};
                                _ ->
                                    {?MAX_FRAME_BYTES, []}
                            end,
    PortOpts = [{args, ["port"] ++ FrameArgs ++ maps:get(args, Opts, [])},
                {packet, 4}, binary, exit_status, use_stdio | Env],
    try open_port({spawn_executable, Bin}, PortOpts) of
        Port -> {ok, #st{port = Port, owner_mon = Mon, max_frame = MaxFrame}}
    catch
        error:Reason -> {stop, {open_failed, Bin, Reason}}
    end.

handle_call({request, _Op, _Fields, _Deadline}, _From, #st{port = Port, closing = C} = S)
  when Port =:= undefined; C =/= undefined ->
    {reply, {error, closed}, S};
handle_call({request, Op, Fields, Deadline}, From, #st{next_id = Id} = S) ->
    try ocisign_json:encode(Fields#{<<"id">> => Id, <<"op">> => Op}) of
        Frame when byte_size(Frame) > S#st.max_frame ->
            {reply, {error, {invalid_request, iolist_to_binary(
                                                io_lib:format("the request is ~b bytes, over the program's "
                                                              "~b-byte frame limit (max_frame_bytes)",
                                                              [byte_size(Frame), S#st.max_frame]))}}, S};
        Frame ->
            send(Frame, Deadline, From, S)
    catch
        error:Why ->
            {reply, {error, {invalid_request, iolist_to_binary(
                                                io_lib:format("cannot encode the request as JSON: ~p",
                                                              [Why]))}}, S}
    end;
handle_call({max_frame, N}, _From, S) ->
    {reply, ok, S#st{max_frame = N}};
handle_call(os_pid, _From, #st{port = undefined} = S) ->
    {reply, {error, closed}, S};
handle_call(os_pid, _From, #st{port = Port} = S) ->
    case erlang:port_info(Port, os_pid) of
        {os_pid, OsPid} -> {reply, {ok, OsPid}, S};
        undefined -> {reply, {error, closed}, S}
    end;
handle_call({close, _GraceMs}, _From, #st{port = undefined} = S) ->
    {stop, normal, ok, S};
handle_call({close, _GraceMs}, From, #st{closing = #{from := none} = C} = S) ->
    {noreply, S#st{closing = C#{from := From}}};
handle_call({close, _GraceMs}, _From, #st{closing = #{}} = S) ->
    {reply, ok, S}; % someone else is closing it already
handle_call({close, GraceMs}, From, S) ->
    {noreply, begin_exit(S, From, GraceMs)}.

send(Frame, Deadline, From, #st{port = Port, next_id = Id} = S) ->
    try port_command(Port, Frame) of
        true ->
            TRef = erlang:send_after(Deadline, self(), {call_timeout, Id}),
            {noreply, S#st{next_id = Id + 1,
                           pending = (S#st.pending)#{Id => {From, TRef}}}}
    catch
        error:badarg ->
            %% The port died; its exit message is on its way and will stop us.
            {reply, {error, closed}, S}
    end.

handle_cast(_Msg, S) ->
    {noreply, S}.

handle_info({Port, {data, Frame}}, #st{port = Port} = S) ->
    case decode_reply(Frame) of
        {ok, null, Reply} ->
            %% A frame the program could not attribute (it has no id to echo):
            %% any waiting request may be the one; none is left to its deadline.
            fail_all(S, element(2, reply_to_result(Reply))),
            {noreply, S#st{pending = #{}}};
        {ok, Id, Reply} ->
            case maps:take(Id, S#st.pending) of
                {{From, TRef}, Pending} ->
                    _ = erlang:cancel_timer(TRef),
                    gen_server:reply(From, reply_to_result(Reply)),
                    {noreply, S#st{pending = Pending}};
                error ->
                    %% The reply to `exit', or one whose caller already timed out.
                    {noreply, S}
            end;
        {error, Why} ->
            %% The stream cannot be trusted any more.
            {noreply, kill_program(S, held(S, {protocol_error, Why}))}
    end;
handle_info({Port, {exit_status, Status}}, #st{port = Port} = S) ->
    %% The runtime's own word that the program is gone: only now is the port
    %% closed, so no signal can ever reach a reused process id.
    Reason = case S#st.closing of
                 undefined -> {port_exit, Status};
                 _ -> closed
             end,
    fail_all(S, Reason),
    finish(S#st{port = undefined, pending = #{}});
handle_info({'EXIT', Port, Reason}, #st{port = Port} = S) ->
    %% e.g. epipe: the program went away while we still had output queued.
    {noreply, kill_program(S, held(S, {port_exit, Reason}))};
handle_info({call_timeout, Id}, S) ->
    case maps:take(Id, S#st.pending) of
        {{From, _}, Pending} ->
            %% The one program serves every request, so the others go too.
            Held = [{From, {error, timeout}} | held(S#st{pending = Pending}, {port_exit, killed_after_timeout})],
            {noreply, kill_program(S, Held)};
        error ->
            {noreply, S}
    end;
handle_info({closing_timeout, TRef}, #st{closing = #{timer := TRef, result := ok}} = S) ->
    %% It did not exit within the grace period.
    {noreply, kill_program(S, [])};
handle_info({closing_timeout, TRef}, #st{closing = #{timer := TRef}, port = Port} = S) ->
    %% Killed, and still no exit status: give the port up.
    catch port_close(Port),
    fail_all(S, closed),
    finish(S#st{port = undefined, pending = #{}});
handle_info({'DOWN', Mon, process, _, _}, #st{owner_mon = Mon} = S) ->
    case S#st.closing of
        undefined -> {noreply, begin_exit(S, none, ?EXIT_GRACE_MS)};
        _ -> {noreply, S}
    end;
handle_info(_Other, S) ->
    {noreply, S}.

terminate(_Reason, #st{port = undefined}) ->
    ok;
terminate(_Reason, #st{port = Port}) ->
    %% Only when the server itself crashes: stdin EOF makes the program exit.
    catch port_close(Port),
    ok.

decode_reply(Frame) ->
    try ocisign_json:decode(Frame) of
        #{<<"id">> := Id} = Reply when is_integer(Id) -> {ok, Id, Reply};
        #{<<"id">> := null} = Reply -> {ok, null, Reply};
        Other -> {error, {no_id, Other}}
    catch
        error:Why -> {error, {invalid_json, Why}}
    end.

fail_all(#st{pending = Pending}, Reason) ->
    [gen_server:reply(From, Reply) || {From, Reply} <- held(Pending, Reason)],
    ok.

%% The pending requests' replies, {error, Reason} each, their timers off.
held(#st{pending = Pending}, Reason) ->
    held(Pending, Reason);
held(Pending, Reason) ->
    [begin _ = erlang:cancel_timer(TRef), {From, {error, Reason}} end
     || {From, TRef} <- maps:values(Pending)].

%% Asks the program to exit (the `exit' op: it cancels what is in flight
%% and exits) and waits for its exit status; SIGKILL after GraceMs.
begin_exit(#st{port = Port, next_id = Id} = S, From, GraceMs) ->
    catch port_command(Port, ocisign_json:encode(#{<<"id">> => Id, <<"op">> => <<"exit">>})),
    S#st{next_id = Id + 1, closing = #{from => From, result => ok, timer => closing_timer(GraceMs), waiters => []}}.

%% SIGKILL to the program while its port is open (so its process id is
%% still ours), then wait for the exit status the runtime reports; Held are
%% replies (the pending requests' failures) given once it is gone, so a
%% caller told `timeout' knows the program is dead.
kill_program(#st{port = Port, closing = Closing} = S, Held) ->
    case erlang:port_info(Port, os_pid) of
        {os_pid, OsPid} -> signal_kill(OsPid);
        undefined -> ok
    end,
    {From, Waiters} = case Closing of
                          #{from := F, waiters := W} -> {F, W};
                          undefined -> {none, []}
                      end,
    S#st{pending = #{}, closing = #{from => From, result => killed, timer => closing_timer(?EXIT_GRACE_MS),
                                    waiters => Waiters ++ Held}}.

closing_timer(Ms) ->
    Ref = make_ref(),
    erlang:send_after(Ms, self(), {closing_timeout, Ref}),
    Ref.

%% kill(1) run directly, no shell.
signal_kill(OsPid) ->
    case os:find_executable("kill") of
        false ->
            ok;
        Kill ->
            P = open_port({spawn_executable, Kill}, [{args, ["-KILL", integer_to_list(OsPid)]}, exit_status]),
            receive {P, {exit_status, _}} -> ok after ?EXIT_GRACE_MS -> catch port_close(P) end
    end.

finish(#st{closing = #{from := From, result := Result, waiters := Waiters}} = S) ->
    [gen_server:reply(W, Reply) || {W, Reply} <- Waiters],
    From =/= none andalso gen_server:reply(From, Result),
    {stop, normal, S};
finish(S) ->
    {stop, normal, S}.
