%% @doc {ocisign, sign}: signs the tags `rebar3 ocibuild --push' pushed.
%%
%% Runs as the post hook of `ocibuild' (it then sees ocibuild's parsed
%% arguments and the key {ocisign, prepare} took away), inside
%% `rebar3 ocisign build', or on its own:
%%   rebar3 ocisign sign --push REGISTRY[/NAMESPACE] -t TAG... [--sign-key KEY] [--digest D]
%% Each tag's reference is signed by the Go program, which resolves the tag
%% (ocibuild keeps the pushed digest to itself, so the hook signs what the
%% tag points to at signing time; --digest pins it) and, unless
%% {ocisign, [{recursive, false}]}, signs every platform manifest of an index.
-module(ocisign_prv_sign).

-export([init/1, do/1, format_error/1, run/2]).

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
                {release, undefined, "release", string, "Release name that qualifies bare tags"},
                {digest, undefined, "digest", string,
                 "Sign this manifest digest (sha256:...) instead of what the tags point to now"}]}
    ]),
    {ok, rebar_state:add_provider(State, Provider)}.

do(State) ->
    case rebar_state:get(State, ocisign_done, false) of
        true -> {ok, State};
        false -> run(State, sign)
    end.

%% @doc Mode: sign (standalone or hook) or build (`rebar3 ocisign build').
-spec run(rebar_state:t(), sign | build) -> {ok, rebar_state:t()} | {error, term()}.
run(State0, Mode) ->
    Prepared = rebar_state:get(State0, ocisign_prepared, undefined),
    restore_env(Prepared),
    State = rebar_state:set(State0, ocisign_done, true),
    case ocisign_config:options(rebar_state:get(State, ocisign, [])) of
        {ok, Opts, Unknown} ->
            [rebar_api:warn("~ts", [ocisign_config:unknown_option(U)]) || U <- Unknown],
            outcome(sign_pushed(State, Prepared, Mode, Opts), State, Opts);
        {error, Reason} ->
            {error, {?MODULE, {config, Reason}}}
    end.

outcome(ok, State, _Opts) ->
    {ok, State};
outcome({error, Reason}, State, #{on_error := warn}) ->
    rebar_api:warn("~ts~nThe image was pushed but is NOT signed "
                   "({ocisign, [{on_error, warn}]} keeps the build going).", [format_error(Reason)]),
    {ok, State};
outcome({error, Reason}, _State, _Opts) ->
    {error, {?MODULE, Reason}}.

sign_pushed(State, Prepared, Mode, Opts) ->
    {Args, _} = rebar_state:command_parsed_args(State),
    OciConfig = rebar_state:get(State, ocibuild, []),
    Hooked = Prepared =/= undefined,
    case proplists:get_value(push, Args) of
        undefined when Mode =:= sign, not Hooked ->
            {error, no_push};
        undefined ->
            rebar_api:info("ocisign: no --push, nothing was pushed, nothing to sign", []),
            ok;
        Push ->
            Key = case Prepared of
                      #{key := K} -> K;
                      undefined -> ocisign_config:sign_key(Args, OciConfig, os:getenv("OCIBUILD_SIGN_KEY"))
                  end,
            case Key of
                none when Hooked, Mode =:= sign ->
                    rebar_api:info("ocisign: no signing key (--sign-key, OCIBUILD_SIGN_KEY or "
                                   "{ocibuild, [{sign_key, ...}]}): the pushed image is not signed", []),
                    ok;
                none ->
                    {error, no_key};
                {ok, _Source, KeyPath} ->
                    Release = case ocisign_config:release_name(Args, rebar_state:get(State, relx, [])) of
                                  {ok, R} -> R;
                                  none -> undefined
                              end,
                    Tags = ocisign_config:tags(Args, OciConfig),
                    case refs_and_digest(Push, Tags, Release, Args) of
                        {ok, Refs, Digest} ->
                            case ocisign_config:dotless_registry_warning(Push) of
                                none -> ok;
                                Warning -> rebar_api:warn("~ts", [Warning])
                            end,
                            Root = rebar_dir:root_dir(State),
                            KeyAbs = filename:absname(KeyPath, Root),
                            Requests = [with_digest(ocisign_config:sign_request(Ref, KeyAbs, Opts, Root),
                                                    Digest)
                                        || Ref <- Refs],
                            sign_refs(Requests, ocisign_config:port_options(Opts, Root));
                        {error, Reason} ->
                            {error, {config, Reason}}
                    end
            end
    end.

refs_and_digest(Push, Tags, Release, Args) ->
    case ocisign_config:digest(Args) of
        {ok, Digest} ->
            case ocisign_config:references(list_to_binary(Push), Tags, Release) of
                {ok, Refs} -> {ok, Refs, Digest};
                Error -> Error
            end;
        Error ->
            Error
    end.

with_digest(Request, undefined) -> Request;
with_digest(Request, Digest) -> Request#{digest => Digest}.

sign_refs(Requests, PortOpts) ->
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
            case maps:get(warning, Result, <<>>) of
                <<>> -> ok;
                Warning -> rebar_api:warn("ocisign: ~ts", [Warning])
            end,
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

restore_env(#{env := Env}) when Env =/= false ->
    os:putenv("OCIBUILD_SIGN_KEY", Env);
restore_env(_) ->
    ok.

format_error(no_push) ->
    "ocisign sign: give --push REGISTRY[/NAMESPACE] (the destination the image was pushed to)";
format_error(no_key) ->
    "ocisign: no signing key: give --sign-key cosign.key, set OCIBUILD_SIGN_KEY, or put "
    "{ocibuild, [{sign_key, \"cosign.key\"}]} in rebar.config";
format_error({config, Reason}) ->
    "ocisign: " ++ ocisign_config:format_error(Reason);
format_error({port, Reason}) ->
    "ocisign: " ++ ocisign_port:format_error(Reason);
format_error({sign, Ref, Reason}) ->
    lists:flatten(io_lib:format("ocisign: signing ~ts failed: ~ts",
                                [Ref, ocisign_port:format_error(Reason)]));
format_error(Other) ->
    lists:flatten(io_lib:format("ocisign: ~p", [Other])).
