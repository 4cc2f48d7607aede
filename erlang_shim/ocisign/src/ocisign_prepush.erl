%% @doc What happens before ocibuild pushes: the signing key leaves
%% ocibuild's view (ocibuild 0.10 signs single-platform images itself and
%% overwrites the sha256-<hex>.sig tag; with a key it cannot read it only
%% warns), and everything that would make signing fail after the push is
%% checked while nothing is pushed yet: the program is found and answers,
%% the key decrypts (the port keeps it, so scrypt runs once per command),
%% the log key file exists. The port stays open for the signing.
-module(ocisign_prepush).

-export([take_key/1, check/2, close/1, restore_env/1, program_options/3]).

-type plan() :: skip | #{port := pid(), key := string() | keyless, opts := ocisign_config:options(),
                         push := string(), root := file:filename(), program := map(),
                         first_ref := binary() | undefined}.
-export_type([plan/0]).

%% @doc The key (--sign-key > OCIBUILD_SIGN_KEY > {ocibuild, [{sign_key, _}]}),
%% the environment value to restore afterwards, and the State without it.
-spec take_key(rebar_state:t()) ->
          {{ok, ocisign_config:key_source(), string()} | none, string() | false, rebar_state:t()}.
take_key(State) ->
    {Args, Rest} = rebar_state:command_parsed_args(State),
    OciConfig = rebar_state:get(State, ocibuild, []),
    Env = os:getenv("OCIBUILD_SIGN_KEY"),
    Key = ocisign_config:sign_key(Args, OciConfig, Env),
    Env =/= false andalso os:unsetenv("OCIBUILD_SIGN_KEY"),
    State1 = rebar_state:command_parsed_args(State, {proplists:delete(sign_key, Args), Rest}),
    State2 = rebar_state:set(State1, ocibuild, proplists:delete(sign_key, OciConfig)),
    {Key, Env, State2}.

-spec restore_env(string() | false) -> ok.
restore_env(false) -> ok;
restore_env(Env) -> os:putenv("OCIBUILD_SIGN_KEY", Env), ok.

%% @doc skip when nothing will be signed (no --push, or no key: said on the
%% console), else an open port with the key loaded. {error, _} fails the
%% command before ocibuild runs, unless {on_error, warn}, which says loudly
%% that the image will be pushed unsigned.
-spec check(rebar_state:t(), {ok, atom(), string()} | none) -> {ok, plan()} | {error, term()}.
check(State, Key) ->
    {Args, _} = rebar_state:command_parsed_args(State),
    case proplists:get_value(push, Args) of
        undefined ->
            rebar_api:info("ocisign: no --push, nothing is pushed, nothing to sign", []),
            {ok, skip};
        Push ->
            case ocisign_config:options(rebar_state:get(State, ocisign, [])) of
                {ok, Opts0, Unknown} ->
                    [rebar_api:warn("~ts", [ocisign_config:unknown_option(U)]) || U <- Unknown],
                    Opts = Opts0#{keyless := maps:get(keyless, Opts0) orelse proplists:get_bool(keyless, Args)},
                    plan(State, Push, ocisign_config:signer(Key, Opts), Opts);
                {error, Reason} ->
                    {error, {ocisign_prv_sign, {config, Reason}}}
            end
    end.

plan(_State, _Push, {error, Why}, _Opts) ->
    {error, {ocisign_prv_sign, Why}};
plan(_State, _Push, none, _Opts) ->
    rebar_api:info("ocisign: no signing key (--sign-key, OCIBUILD_SIGN_KEY or "
                   "{ocibuild, [{sign_key, ...}]}) and no identity token for keyless signing: "
                   "the pushed image will not be signed", []),
    {ok, skip};
plan(State, Push, Signer, Opts) ->
    Root = rebar_dir:root_dir(State),
    Key = case Signer of
              {key, Source, KeyPath} ->
                  rebar_api:debug("ocisign: took the signing key (from ~p) away from ocibuild", [Source]),
                  filename:absname(KeyPath, Root);
              _ ->
                  keyless
          end,
    Plan = #{key => Key, opts => Opts, push => Push, root => Root, program => program_options(State, Opts, Root),
             first_ref => first_ref(State, Push)},
    checked(ready(Plan), Opts).

checked({ok, Plan}, _Opts) ->
    {ok, Plan};
checked({error, Why}, #{on_error := warn}) ->
    rebar_api:warn("~ts~n*** The image will be pushed but NOT signed ({ocisign, [{on_error, warn}]}). ***",
                   [ocisign_prv_sign:format_error(Why)]),
    {ok, skip};
checked({error, Why}, _Opts) ->
    {error, {ocisign_prv_sign, Why}}.

ready(#{opts := Opts, root := Root} = Plan) ->
    case check_log_key(Opts, Root) of
        ok ->
            case ocisign_port:open(maps:get(program, Plan)) of
                {ok, Pid} ->
                    case check_signer(Pid, Plan) of
                        ok ->
                            warm(Pid, Plan),
                            {ok, Plan#{port => Pid}};
                        Error ->
                            ocisign_port:close(Pid),
                            Error
                    end;
                {error, Reason} ->
                    {error, {port, Reason}}
            end;
        Error ->
            Error
    end.

%% The key decrypts; or, keyless, the program finds a usable identity token.
check_signer(Pid, #{key := keyless, opts := Opts, root := Root}) ->
    Fields = maps:without([keyless, insecure_ignore_sct], ocisign_config:signer_fields(keyless, Opts, Root)),
    case ocisign_port:identity(Pid, Fields) of
        {ok, #{subject := Subject, issuer := Issuer, source := Source}} ->
            rebar_api:info("ocisign: signing keylessly after the push, as ~ts (issuer ~ts, token from ~ts): "
                           "Fulcio certificate, signature recorded in the transparency log", [Subject, Issuer, Source]),
            ok;
        {ok, _} ->
            ok;
        {error, Reason} ->
            {error, {identity, Reason}}
    end;
check_signer(Pid, #{key := Key}) ->
    case ocisign_port:public_key(Pid, #{sign_key => Key}) of
        {ok, _} -> ok;
        {error, Reason} -> {error, {key, Key, Reason}}
    end.

%% While ocibuild builds, the program pings the registry and gets its push
%% token, so the signing after the push starts warm. Best effort: the
%% reply is not waited for, and a failure here is the signing's to report.
warm(_Pid, #{first_ref := undefined}) ->
    ok;
warm(Pid, #{first_ref := Ref, opts := Opts}) ->
    Request = #{reference => Ref, allow_insecure_registry => maps:get(allow_insecure_registry, Opts)},
    _ = spawn(fun() -> ocisign_port:connect(Pid, Request) end),
    ok.

%% The first reference ocibuild will push, as far as it can be told now.
first_ref(State, Push) ->
    {Args, _} = rebar_state:command_parsed_args(State),
    case ocisign_config:pushed_references(Push, Args, rebar_state:get(State, ocibuild, []),
                                          rebar_state:get(State, relx, [])) of
        {ok, [Ref | _]} -> Ref;
        _ -> undefined
    end.

check_log_key(#{rekor_public_key := Path}, Root) when Path =/= undefined ->
    Abs = filename:absname(Path, Root),
    case filelib:is_regular(Abs) of
        true -> ok;
        false -> {error, {config, {rekor_public_key_missing, Abs}}}
    end;
check_log_key(_Opts, _Root) ->
    ok.

%% @doc How to find (or fetch) the program: the {ocisign, [...]} options,
%% rebar3's cache directory for downloads, and rebar3's console for the
%% one progress line of a download.
-spec program_options(rebar_state:t(), ocisign_config:options(), file:filename()) -> map().
program_options(State, Opts, Root) ->
    (ocisign_config:port_options(Opts, Root))#{
        cache_dir => rebar_dir:global_cache_dir(rebar_state:opts(State)),
        say => fun(Fmt, Args) -> rebar_api:info(Fmt, Args) end}.

-spec close(plan()) -> ok.
close(#{port := Pid}) -> ocisign_port:close(Pid);
close(skip) -> ok.
