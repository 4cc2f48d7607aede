%% @doc rebar3 plugin entry point.
%%
%% Registers {ocisign, sign}, {ocisign, build} and {ocisign, takeover}, and
%% makes takeover a post hook of `release' (a built-in provider, so it is
%% there whatever the plugin order). ocibuild's provider depends on release,
%% so `rebar3 ocibuild' runs [..., release, {ocisign, takeover}, ocibuild]:
%% takeover puts ocisign's wrapper in front of ocibuild's provider just
%% before it runs (rebar3 looks providers up by name when it runs them), and
%% the wrapper checks the key, runs ocibuild and signs the digest it printed.
%%
%% Attaching at run time is what makes every plugin order work: when
%% ocisign's init/1 runs before ocibuild's, there is no ocibuild provider to
%% hook yet, and from project_plugins ocibuild's later registration would
%% shadow a hooked copy.
-module(ocisign).

-export([init/1]).

-define(TAKEOVER, {ocisign, takeover}).

-spec init(rebar_state:t()) -> {ok, rebar_state:t()}.
init(State0) ->
    {ok, State1} = ocisign_prv_sign:init(State0),
    {ok, State2} = ocisign_prv_build:init(State1),
    {ok, State3} = ocisign_prv_takeover:init(State2),
    {ok, hook_release(State3)}.

%% Idempotent: rebar3 runs a _checkouts plugin's init/1 twice.
hook_release(State) ->
    Providers = [hook(P) || P <- rebar_state:providers(State)],
    State1 = rebar_state:providers(State, Providers),
    case lists:member(?TAKEOVER, target_sequence(release, Providers)) of
        true ->
            State1;
        false ->
            rebar_api:warn("ocisign: this rebar3 does not run provider hooks of `release`, so ocisign cannot "
                           "sign what `rebar3 ocibuild` pushes; `rebar3 ocibuild --push` with a signing "
                           "key will fail before pushing", []),
            State1
    end.

hook(P) ->
    case providers:impl(P) =:= release andalso providers:namespace(P) =:= default of
        true ->
            {Pre, Post} = providers:hooks(P),
            providers:hooks(P, {Pre, (Post -- [?TAKEOVER]) ++ [?TAKEOVER]});
        false ->
            P
    end.

target_sequence(Name, Providers) ->
    try providers:get_target_providers(Name, Providers, default) of
        Seq when is_list(Seq) -> Seq;
        _ -> []
    catch
        _:_ -> []
    end.
