%% @doc The `ocibuild' provider as ocisign runs it (put in front of
%% ocibuild's own by {ocisign, takeover}): takes the signing key away from
%% ocibuild (its own signer overwrites the .sig tag), checks everything that
%% can be checked before anything is pushed (the program runs, the key
%% decrypts, the log key exists), runs ocibuild with its output watched for
%% the `Tagged:' and `Digest:' lines it prints, and signs that digest.
-module(ocisign_prv_ocibuild).

-export([provider/1, do/1, format_error/1]).

%% @doc A provider record that runs as `ocibuild' with ocibuild's options;
%% Inner is ocibuild's own record. Its deps do not matter: rebar3 expanded
%% the command before this record exists.
-spec provider(providers:t()) -> providers:t().
provider(Inner) ->
    providers:create([
        {name, ocibuild},
        {module, ?MODULE},
        {bare, true},
        {deps, []},
        {desc, providers:desc(Inner)},
        {short_desc, "Build OCI images (signed by ocisign)"},
        {opts, providers:opts(Inner)}
    ]).

do(State0) ->
    Inner = rebar_state:get(State0, ocisign_inner),
    {Key, Env, State1} = ocisign_prepush:take_key(State0),
    try ocisign_prepush:check(State1, Key) of
        {ok, Plan} ->
            State2 = rebar_state:set(State1, ocisign_done, true),
            try
                {Result, Printed} = ocisign_capture:run(fun() -> Inner:do(State2) end),
                case Result of
                    {ok, State3} -> ocisign_prv_sign:sign_printed(State3, Plan, Printed);
                    Error -> Error
                end
            after
                ocisign_prepush:close(Plan)
            end;
        {error, _} = Error ->
            Error
    after
        ocisign_prepush:restore_env(Env)
    end.

format_error(Reason) ->
    ocisign_prv_sign:format_error(Reason).
