%% @doc `rebar3 ocisign build ...': runs ocibuild (as a dependency, with the
%% same options) and then signs. The fallback when the hook on `ocibuild'
%% cannot be attached (say, ocisign listed before ocibuild): {ocisign, prepare}
%% is a dependency too, and providers' topological sort puts it before
%% ocibuild (it has no dependencies, ocibuild comes after release). With the
%% hook attached, the sign step already ran inside the ocibuild chain and
%% this one has nothing left to do.
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
        {deps, [{ocisign, prepare}, {default, ocibuild}]},
        {example, "rebar3 ocisign build --push ghcr.io/myorg -t myapp:1.0.0 --sign-key cosign.key"},
        {short_desc, "Run `rebar3 ocibuild` and sign what it pushed"},
        {desc, "Runs ocibuild with the given options, then signs every pushed tag with the "
               "ocisign program (the index and, by default, every platform manifest)."},
        {opts, Opts}
    ]),
    {ok, rebar_state:add_provider(State, Provider)}.

do(State) ->
    case rebar_state:get(State, ocisign_done, false) of
        true -> {ok, State};
        false -> ocisign_prv_sign:run(State, build)
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
