%% @doc {ocisign, takeover}: the post hook of `release' that puts
%% ocisign's wrapper (ocisign_prv_ocibuild) in front of the `ocibuild'
%% provider, so that the `ocibuild' step that runs next checks the signing
%% key, runs ocibuild and signs what it pushed. rebar3 expanded the command
%% before this runs, but finds each provider by name when it runs it, and
%% the first provider of a name wins.
%%
%% Runs after every `release' (also `rebar3 release' alone, where the
%% wrapper is then never used). Idempotent.
-module(ocisign_prv_takeover).

-export([init/1, do/1, format_error/1]).

init(State) ->
    Provider = providers:create([
        {name, takeover},
        {namespace, ocisign},
        {module, ?MODULE},
        {bare, false},
        {deps, []},
        {short_desc, "internal: lets ocisign sign what `rebar3 ocibuild` pushes"},
        {desc, "Runs after `release`; makes the `ocibuild` step that follows check the signing key "
               "before pushing and sign the pushed digest afterwards."},
        {opts, []}
    ]),
    {ok, rebar_state:add_provider(State, Provider)}.

do(State) ->
    Providers = rebar_state:providers(State),
    case providers:get_provider(ocibuild, Providers, default) of
        not_found ->
            {ok, State};
        P ->
            case providers:module(P) of
                ocisign_prv_ocibuild ->
                    {ok, State};
                Inner ->
                    Wrapper = ocisign_prv_ocibuild:provider(P),
                    State1 = rebar_state:providers(State, [Wrapper | Providers]),
                    {ok, rebar_state:set(State1, ocisign_inner, Inner)}
            end
    end.

format_error(Reason) ->
    io_lib:format("~p", [Reason]).
