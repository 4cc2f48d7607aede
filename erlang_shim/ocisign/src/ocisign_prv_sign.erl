%% @doc Signing what ocibuild pushed.
%%
%% sign_printed/3 runs inside `rebar3 ocibuild' (ocisign_prv_ocibuild):
%% it signs the digest ocibuild printed (`Digest: sha256:...'), named by the
%% references it printed (`Tagged: ...'), through the port the pre-push
%% checks opened. {ocisign, sign} is the same on its own, after the fact:
%%   rebar3 ocisign sign --push REGISTRY[/NAMESPACE] -t TAG... [--sign-key KEY] [--digest D]
%% where the references are built the way ocibuild builds them and, without
%% --digest, the program signs what each tag points to now. Unless
%% {ocisign, [{recursive, false}]}, every platform manifest of an index is
%% signed too.
-module(ocisign_prv_sign).

-export([init/1, do/1, format_error/1, sign_printed/3]).

init(State) ->
    Provider = providers:create([
        {name, sign},
        {namespace, ocisign},
        {module, ?MODULE},
        {bare, true},
        {deps, []},
        {example, "rebar3 ocisign sign --push ghcr.io/myorg -t myapp:1.0.0 --sign-key cosign.key"},
        {short_desc, "Sign images pushed by `rebar3 ocibuild --push`"},
        {desc, "Signs REGISTRY/NAMESPACE/NAME:TAG for every -t the way `rebar3 ocibuild --push` "
               "named them, with the cosign key from --sign-key, OCIBUILD_SIGN_KEY or "
               "{ocibuild, [{sign_key, ...}]}. The key password comes from COSIGN_PASSWORD, "
               "registry credentials from OCIBUILD_PUSH_TOKEN / OCIBUILD_PUSH_USERNAME + "
               "OCIBUILD_PUSH_PASSWORD or docker's config."},
        {opts, [{push, $p, "push", string, "Registry and namespace the image was pushed to (e.g. ghcr.io/myorg)"},
                {tag, $t, "tag", string, "Pushed image tag (repeatable; NAME:TAG or a bare TAG)"},
                {sign_key, undefined, "sign-key", string, "Path to the cosign private key"},
                {keyless, undefined, "keyless", boolean,
                 "Sign with an OIDC identity (Fulcio certificate, Rekor entry) instead of a key"},
                {release, undefined, "release", string, "Release name that qualifies bare tags"},
                {digest, undefined, "digest", string,
                 "Sign this manifest digest (sha256:..., as ocibuild printed it) instead of what the tags point to now"}]}
    ]),
    {ok, rebar_state:add_provider(State, Provider)}.

%% `rebar3 ocisign sign ...'
do(State) ->
    {Args, _} = rebar_state:command_parsed_args(State),
    OciConfig = rebar_state:get(State, ocibuild, []),
    Key = ocisign_config:sign_key(Args, OciConfig, os:getenv("OCIBUILD_SIGN_KEY")),
    case {proplists:get_value(push, Args), ocisign_config:options(rebar_state:get(State, ocisign, []))} of
        {undefined, _} ->
            {error, {?MODULE, no_push}};
        {_, {error, Reason}} ->
            {error, {?MODULE, {config, Reason}}};
        {Push, {ok, Opts0, Unknown}} ->
            [rebar_api:warn("~ts", [ocisign_config:unknown_option(U)]) || U <- Unknown],
            Opts = Opts0#{keyless := maps:get(keyless, Opts0) orelse proplists:get_bool(keyless, Args)},
            Root = rebar_dir:root_dir(State),
            case signer(Key, Opts, Root) of
                {ok, Signer} ->
                    Result = case derived_refs(State, Args, Push) of
                                 {ok, Refs, Digest} ->
                                     sign_with_new_port(requests(Refs, Digest, Signer, Opts, Root),
                                                        ocisign_prepush:program_options(State, Opts, Root));
                                 {error, Reason} ->
                                     {error, {config, Reason}}
                             end,
                    outcome(Result, State, Opts);
                {error, Why} ->
                    {error, {?MODULE, Why}}
            end
    end.

%% The key's absolute path, or keyless (ocisign_config:signer/2).
signer(Key, Opts, Root) ->
    case ocisign_config:signer(Key, Opts) of
        {key, _Source, KeyPath} -> {ok, filename:absname(KeyPath, Root)};
        keyless -> {ok, keyless};
        none -> {error, no_key};
        {error, _} = Error -> Error
    end.

%% @doc Signs after ocibuild pushed: the digest and references it printed.
%% Without a `Digest:' line (an ocibuild that does not print one) the tags
%% are signed as they resolve now, and the console says so.
-spec sign_printed(rebar_state:t(), ocisign_prepush:plan(), ocisign_capture:printed()) ->
          {ok, rebar_state:t()} | {error, term()}.
sign_printed(State, skip, _Printed) ->
    {ok, State};
sign_printed(State, #{port := Pid, key := Key, opts := Opts, push := Push, root := Root}, Printed) ->
    {Args, _} = rebar_state:command_parsed_args(State),
    Refs = case Printed of
               #{tagged := [_ | _] = Tagged} ->
                   {ok, [ocisign_config:printed_reference(Push, R) || R <- Tagged]};
               _ ->
                   rebar_api:warn("ocisign: ocibuild printed no `Tagged:` lines; signing the references "
                                  "built from --push and the tags", []),
                   case derived_refs(State, Args, Push) of
                       {ok, Derived, _} -> {ok, Derived};
                       Error -> Error
                   end
           end,
    Digest = case Printed of
                 #{digest := undefined} ->
                     rebar_api:warn("ocisign: ocibuild printed no `Digest:` line; signing what each tag "
                                    "points to now (someone else's push in between would get the signature)", []),
                     undefined;
                 #{digest := D} ->
                     D
             end,
    %% ocibuild pushed the image moments ago: it most likely has no
    %% signature yet, which lets the program upload everything in one round.
    Result = case Refs of
                 {ok, Refs1} -> sign_each(Pid, [R#{just_pushed => true} || R <- requests(Refs1, Digest, Key, Opts, Root)]);
                 {error, Reason} -> {error, {config, Reason}}
             end,
    outcome(Result, State, Opts).

outcome(ok, State, _Opts) ->
    {ok, State};
outcome({error, Reason}, State, #{on_error := warn}) ->
    rebar_api:warn("~ts~n*** The image was pushed but is NOT signed "
                   "({ocisign, [{on_error, warn}]} keeps the build going). ***", [format_error(Reason)]),
    {ok, State};
outcome({error, Reason}, _State, _Opts) ->
    {error, {?MODULE, Reason}}.

%% The references ocibuild pushed, built from --push, the tags and the release
%% name the way ocibuild builds them, and --digest if given.
derived_refs(State, Args, Push) ->
    case ocisign_config:digest(Args) of
        {ok, Digest} ->
            case ocisign_config:pushed_references(Push, Args, rebar_state:get(State, ocibuild, []),
                                                  rebar_state:get(State, relx, [])) of
                {ok, Refs} ->
                    case ocisign_config:dotless_registry_warning(Push) of
                        none -> ok;
                        Warning -> rebar_api:warn("~ts", [Warning])
                    end,
                    {ok, Refs, Digest};
                Error ->
                    Error
            end;
        Error ->
            Error
    end.

requests(Refs, Digest, Key, Opts, Root) ->
    [with_digest(ocisign_config:sign_request(Ref, Key, Opts, Root), Digest) || Ref <- Refs].

with_digest(Request, undefined) -> Request;
with_digest(Request, Digest) -> Request#{digest => Digest}.

sign_with_new_port(Requests, PortOpts) ->
    case ocisign_port:open(PortOpts) of
        {ok, Pid} ->
            try
                sign_each(Pid, Requests)
            after
                ocisign_port:close(Pid)
            end;
        {error, Reason} ->
            {error, {port, Reason}}
    end.

sign_each(_Pid, []) ->
    ok;
sign_each(Pid, [#{reference := Ref} = Request | Rest]) ->
    rebar_api:info("~ts", [ocisign_config:signing_message(Request)]),
    case ocisign_port:sign(Pid, Request) of
        {ok, #{signed := Signed} = Result} ->
            lists:foreach(fun print_signed/1, Signed),
            [rebar_api:warn("ocisign: ~ts", [W]) || W <- maps:get(warnings, Result, [])],
            sign_each(Pid, Rest);
        {ok, Other} ->
            {error, {sign, Ref, {protocol_error, {bad_reply, Other}}}};
        {error, Reason} ->
            {error, {sign, Ref, Reason}}
    end.

print_signed(#{digest := Digest, signature_ref := SigRef} = Entry) ->
    Note = case maps:get(deduplicated, Entry, false) of
               true -> " (already signed with this key)";
               _ -> ""
           end,
    Log = case Entry of
              #{log_index := Index, log_uuid := Uuid} when is_integer(Index), is_binary(Uuid) ->
                  io_lib:format(" (transparency log index ~b, entry ~ts)", [Index, Uuid]);
              _ -> ""
          end,
    rebar_api:console("Signed: ~ts -> ~ts~ts~ts", [Digest, SigRef, Note, Log]);
print_signed(Other) ->
    rebar_api:console("Signed: ~p", [Other]).

format_error(no_push) ->
    "ocisign sign: give --push REGISTRY[/NAMESPACE] (the destination the image was pushed to)";
format_error(no_key) ->
    "ocisign: no signing key: give --sign-key cosign.key, set OCIBUILD_SIGN_KEY, or put "
    "{ocibuild, [{sign_key, \"cosign.key\"}]} in rebar.config";
format_error({config, Reason}) ->
    "ocisign: " ++ ocisign_config:format_error(Reason);
format_error({port, Reason}) ->
    "ocisign: " ++ ocisign_port:format_error(Reason);
format_error({key, Key, Reason}) ->
    lists:flatten(io_lib:format("ocisign: the signing key ~ts cannot be used, so nothing was pushed: ~ts~ts",
                                [Key, ocisign_port:format_error(Reason), key_hint(Reason)]));
format_error({identity, Reason}) ->
    lists:flatten(io_lib:format("ocisign: keyless signing cannot work, so nothing was pushed: ~ts~n"
                                "(in GitHub Actions grant `permissions: id-token: write`; elsewhere set SIGSTORE_ID_TOKEN, "
                                "or give a key with --sign-key)", [ocisign_port:format_error(Reason)]));
format_error(keyless_and_key) ->
    "ocisign: keyless signing ({ocisign, [{keyless, true}]} or --keyless) and a signing key "
    "(--sign-key, OCIBUILD_SIGN_KEY or {ocibuild, [{sign_key, ...}]}) exclude each other: drop one";
format_error({sign, Ref, Reason}) ->
    lists:flatten(io_lib:format("ocisign: signing ~ts failed: ~ts",
                                [Ref, ocisign_port:format_error(Reason)]));
format_error(not_taken_over) ->
    "ocisign: `rebar3 ocisign build` ran ocibuild without ocisign (its `release` hook did not run); "
    "nothing was signed. Run `rebar3 ocibuild --push ...` with ocisign listed as a plugin, or report this";
format_error(Other) ->
    lists:flatten(io_lib:format("ocisign: ~p", [Other])).

key_hint({wrong_password, _}) ->
    ". Set COSIGN_PASSWORD to the key's password";
key_hint({password_required, _}) ->
    ". Set COSIGN_PASSWORD to the key's password (export COSIGN_PASSWORD= for a key without one)";
key_hint({key_not_found, _}) ->
    ". Give the path of an existing key (relative paths are relative to the project root)";
key_hint(_) ->
    "".
