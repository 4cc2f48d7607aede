%% @doc Pre hook of `ocibuild': takes the signing key away from ocibuild.
%%
%% ocibuild 0.10 signs single-platform images itself when it sees a key and
%% writes the `sha256-<hex>.sig' tag; with a key it cannot read (cosign's
%% encrypted format) it only warns. Either way ocisign must be the one signer,
%% so the key leaves the parsed args, the {ocibuild, [...]} config and
%% OCIBUILD_SIGN_KEY, and waits in the State for {ocisign, sign}, which also
%% restores the environment variable.
-module(ocisign_prv_prepare).

-export([init/1, do/1, format_error/1]).

init(State) ->
    Provider = providers:create([
        {name, prepare},
        {namespace, ocisign},
        {module, ?MODULE},
        {bare, false},
        {deps, []},
        {short_desc, "ocibuild pre hook: hand the signing key to ocisign"},
        {desc, "Runs before `rebar3 ocibuild`; removes the signing key from ocibuild's view "
               "so that ocisign signs after the push."},
        {opts, []}
    ]),
    {ok, rebar_state:add_provider(State, Provider)}.

%% Runs at most once per command: `rebar3 ocisign build' has it both as a
%% dependency and as ocibuild's pre hook.
do(State) ->
    case rebar_state:get(State, ocisign_prepared, undefined) of
        undefined -> take_key(State);
        _ -> {ok, State}
    end.

take_key(State) ->
    {Args, Rest} = rebar_state:command_parsed_args(State),
    OciConfig = rebar_state:get(State, ocibuild, []),
    Env = os:getenv("OCIBUILD_SIGN_KEY"),
    Key = ocisign_config:sign_key(Args, OciConfig, Env),
    Env =/= false andalso os:unsetenv("OCIBUILD_SIGN_KEY"),
    State1 = rebar_state:command_parsed_args(State, {proplists:delete(sign_key, Args), Rest}),
    State2 = rebar_state:set(State1, ocibuild, proplists:delete(sign_key, OciConfig)),
    State3 = rebar_state:set(State2, ocisign_prepared, #{key => Key, env => Env}),
    case Key of
        {ok, Source, _} ->
            rebar_api:debug("ocisign: took the signing key (from ~p) away from ocibuild", [Source]),
            check_program(State3, proplists:get_value(push, Args));
        none ->
            {ok, State3}
    end.

%% A missing program or log key file is found before ocibuild pushes
%% anything, so the command fails without leaving an unsigned image behind.
check_program(State, undefined) ->
    {ok, State};
check_program(State, _Push) ->
    case ocisign_config:options(rebar_state:get(State, ocisign, [])) of
        {ok, #{on_error := OnError} = Opts, _} ->
            Root = rebar_dir:root_dir(State),
            Checked = case ocisign_bin:find(ocisign_config:port_options(Opts, Root)) of
                          {ok, _} -> check_log_key(Opts, Root);
                          {error, Reason} -> {error, {port, Reason}}
                      end,
            case Checked of
                ok ->
                    {ok, State};
                {error, Why} when OnError =:= warn ->
                    rebar_api:warn("~ts~nThe image will be pushed but NOT signed "
                                   "({ocisign, [{on_error, warn}]}).", [ocisign_prv_sign:format_error(Why)]),
                    {ok, State};
                {error, Why} ->
                    {error, {ocisign_prv_sign, Why}}
            end;
        {error, Reason} ->
            {error, {ocisign_prv_sign, {config, Reason}}}
    end.

check_log_key(#{rekor_public_key := Path}, Root) when Path =/= undefined ->
    Abs = filename:absname(Path, Root),
    case filelib:is_regular(Abs) of
        true -> ok;
        false -> {error, {config, {rekor_public_key_missing, Abs}}}
    end;
check_log_key(_Opts, _Root) ->
    ok.

format_error(Reason) ->
    io_lib:format("~p", [Reason]).
