%% @doc rebar3 plugin entry point.
%%
%% Registers {ocisign, sign}, {ocisign, prepare} and {ocisign, build}, then
%% attaches prepare/sign as pre/post hooks to the record of the `ocibuild'
%% provider (the `providers' library's hooks field: rebar3 expands them for
%% every command that runs ocibuild, while rebar.config `provider_hooks' never
%% fire for it). See docs in the ocisign repository: rebar3-integration.
-module(ocisign).

-export([init/1]).

-define(PREPARE, {ocisign, prepare}).
-define(SIGN, {ocisign, sign}).

-spec init(rebar_state:t()) -> {ok, rebar_state:t()}.
init(State0) ->
    State1 = ensure_ocibuild(State0),
    {ok, State2} = ocisign_prv_sign:init(State1),
    {ok, State3} = ocisign_prv_prepare:init(State2),
    {ok, State4} = ocisign_prv_build:init(State3),
    {ok, attach(State4)}.

%% With ocisign listed before ocibuild, ocibuild's provider does not exist
%% yet; registering it ourselves lets the hook attach (the later duplicate is
%% skipped by rebar3, except from project_plugins, see rebar.config.example).
ensure_ocibuild(State) ->
    case providers:get_provider(ocibuild, rebar_state:providers(State), default) of
        not_found ->
            case code:ensure_loaded(ocibuild) of
                {module, ocibuild} ->
                    try init_other(ocibuild, State) of
                        {ok, State1} ->
                            rebar_api:debug("ocisign: registered the ocibuild provider itself "
                                            "(ocibuild was not initialised yet)", []),
                            State1;
                        _ -> State
                    catch
                        Class:Reason ->
                            rebar_api:debug("ocisign: ocibuild:init/1 failed: ~p:~p", [Class, Reason]),
                            State
                    end;
                _ ->
                    State
            end;
        _ ->
            State
    end.

%% Through a variable: ocibuild is not a dependency (xref).
init_other(Module, State) ->
    Module:init(State).

%% Idempotent: rebar3 runs a _checkouts plugin's init/1 twice.
attach(State) ->
    Providers = rebar_state:providers(State),
    case providers:get_provider(ocibuild, Providers, default) of
        not_found ->
            rebar_api:warn("ocisign: no `ocibuild` provider is registered, so `rebar3 ocibuild` "
                           "will not sign. List ocibuild before ocisign in plugins/project_plugins, "
                           "or run `rebar3 ocisign build --push REGISTRY -t TAG --sign-key KEY`.", []),
            State;
        _ ->
            Hooked = [hook(P) || P <- Providers],
            State1 = rebar_state:providers(State, Hooked),
            case attached(Hooked) of
                true ->
                    State1;
                false ->
                    rebar_api:warn("ocisign: could not attach signing to `rebar3 ocibuild` (this "
                                   "rebar3 does not expand provider hooks); use "
                                   "`rebar3 ocisign build --push REGISTRY -t TAG --sign-key KEY` "
                                   "or `rebar3 ocisign sign --push REGISTRY -t TAG` after the push.", []),
                    State1
            end
    end.

hook(P) ->
    case providers:impl(P) =:= ocibuild andalso providers:namespace(P) =:= default of
        true ->
            {Pre, Post} = providers:hooks(P),
            providers:hooks(P, {(Pre -- [?PREPARE]) ++ [?PREPARE],
                                (Post -- [?SIGN]) ++ [?SIGN]});
        false ->
            P
    end.

attached(Providers) ->
    try providers:get_target_providers(ocibuild, Providers, default) of
        Seq when is_list(Seq) ->
            lists:member(?SIGN, Seq) andalso lists:member(?PREPARE, Seq)
                andalso index(?PREPARE, Seq) < index({default, ocibuild}, Seq)
                andalso index({default, ocibuild}, Seq) < index(?SIGN, Seq);
        _ -> false
    catch
        _:_ -> false
    end.

index(X, L) -> index(X, L, 1).
index(X, [X | _], N) -> N;
index(X, [_ | T], N) -> index(X, T, N + 1);
index(_, [], _) -> 0.
