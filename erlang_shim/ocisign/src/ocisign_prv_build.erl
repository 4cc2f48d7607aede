%% @doc `rebar3 ocisign build ...': runs ocibuild (as a dependency, with the
%% same options), which ocisign has taken over like every `rebar3 ocibuild'
%% (see ocisign_prv_takeover), so the key is checked before the push and
%% the pushed digest signed after it. Kept for scripts written against
%% earlier ocisign versions, where it was the way around a plugin order
%% that did not sign.
-module(ocisign_prv_build).

-export([init/1, do/1, format_error/1, ocibuild_opts/0]).

init(State) ->
    Opts = case providers:get_provider(ocibuild, rebar_state:providers(State), default) of
               not_found -> ocibuild_opts();
               P -> providers:opts(P)
           end,
    Provider = providers:create([
        {name, build},
        {namespace, ocisign},
        {module, ?MODULE},
        {bare, true},
        {deps, [{default, ocibuild}]},
        {example, "rebar3 ocisign build --push ghcr.io/myorg -t myapp:1.0.0 --sign-key cosign.key"},
        {short_desc, "Run `rebar3 ocibuild` and sign what it pushed"},
        {desc, "Runs ocibuild with the given options, then signs the pushed digest with the "
               "ocisign program (the index and, by default, every platform manifest)."},
        {opts, Opts ++ [{keyless, undefined, "keyless", boolean,
                         "Sign with an OIDC identity (Fulcio certificate, Rekor entry) instead of a key"}]}
    ]),
    {ok, rebar_state:add_provider(State, Provider)}.

%% The signing happened inside the ocibuild step; ocisign_done says so.
do(State) ->
    case rebar_state:get(State, ocisign_done, false) of
        true -> {ok, State};
        false -> {error, {ocisign_prv_sign, not_taken_over}}
    end.

format_error(Reason) ->
    ocisign_prv_sign:format_error(Reason).

%% ocibuild 0.10.5's options, for when its provider is not registered yet.
ocibuild_opts() ->
    [{tag, $t, "tag", string, "Image tag (repeatable, e.g., -t myapp:1.0.0 -t myapp:latest)"},
     {output, $o, "output", string, "Output tarball path"},
     {push, $p, "push", string, "Push to registry (e.g., ghcr.io/myorg)"},
     {base, undefined, "base", string, "Override base image"},
     {release, undefined, "release", string, "Release name (if multiple)"},
     {annotation, $a, "annotation", string, "Add manifest annotation KEY=VALUE (repeatable)"},
     {label, $l, "label", string, "Add image label KEY=VALUE (repeatable)"},
     {chunk_size, undefined, "chunk-size", integer, "Chunk size in MB for uploads (default: 5)"},
     {platform, $P, "platform", string, "Target platforms (e.g., linux/amd64,linux/arm64)"},
     {uid, undefined, "uid", integer, "User ID to run as (default: 65534)"},
     {no_vcs_annotations, undefined, "no-vcs-annotations", boolean, "Disable automatic VCS annotations"},
     {sbom, undefined, "sbom", string, "Export SBOM to file path"},
     {sign_key, undefined, "sign-key", string, "Path to cosign private key for image signing"},
     {compression, undefined, "compression", string,
      "Layer compression: gzip, zstd, or auto (default: auto)"}].
