%% @doc Test stand-in for the ocibuild rebar3 plugin (ocibuild 0.10.5), our
%% own code. Like the real one, the plugin's init/1 is in `ocibuild' and
%% registers the provider implemented by `ocibuild_rebar3' (see there for
%% what it imitates and why it exists).
-module(ocibuild).

-export([init/1]).

init(State) ->
    ocibuild_rebar3:init(State).
