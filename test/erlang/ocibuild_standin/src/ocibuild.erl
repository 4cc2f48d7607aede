%% @doc Test stand-in for the ocibuild rebar3 plugin.
%%
%% The real ocibuild (0.10.5) needs OTP 27 (`~"..."' sigils, -doc
%% attributes, the json module); CI runs Debian's OTP 25, where it does not
%% compile. This stand-in takes its place in test/erlang/run.sh: it registers
%% the same provider (`ocibuild', namespace default, deps [release], the same
%% 14 options) through the same entry point (ocibuild:init/1), names what it
%% pushes the way ocibuild does, and pushes a real image (random layers, one
%% per platform of --platform) through the pushimage test tool to the real
%% registry. Like ocibuild, it returns the State unchanged (the digest is not
%% kept anywhere). Like ocibuild's own signer, when it still sees a signing
%% key it overwrites the image's .sig tag with its own manifest -- here a
%% marked, invalid one -- so a test can see whether ocisign's prepare hook
%% took the key away from it. (The real ocibuild skips multi-platform images
%% and only signs single-platform ones; the stand-in always writes, to make
%% the check independent of the platform count.)
-module(ocibuild).

-export([init/1, do/1, format_error/1]).

init(State) ->
    Provider = providers:create([
        {name, ocibuild},
        {module, ?MODULE},
        {bare, true},
        {deps, [release]},
        {desc, "Build OCI container images from Erlang releases (test stand-in)"},
        {short_desc, "Build OCI images (test stand-in)"},
        {example, "rebar3 ocibuild -t myapp:1.0.0"},
        {opts, [
            {tag, $t, "tag", string, "Image tag (repeatable, e.g., -t myapp:1.0.0 -t myapp:latest)"},
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
            {compression, undefined, "compression", string, "Layer compression: gzip, zstd, or auto (default: auto)"}
        ]}
    ]),
    {ok, rebar_state:add_provider(State, Provider)}.

do(State) ->
    {Args, _} = rebar_state:command_parsed_args(State),
    Config = rebar_state:get(State, ocibuild, []),
    Tags = tags(Args, Config),
    SignKey = sign_key(Args, Config),
    rebar_api:info("ocibuild stand-in: tags ~p, sign_key ~p", [Tags, SignKey]),
    case {Tags, proplists:get_value(push, Args)} of
        {[], _} ->
            {error, {?MODULE, missing_tag}};
        {_, undefined} ->
            rebar_api:info("ocibuild stand-in: no --push, image only saved", []),
            {ok, State};
        {_, Push} ->
            push(State, Args, Push, Tags, SignKey)
    end.

push(State, Args, Push, Tags, SignKey) ->
    Release = release(Args, rebar_state:get(State, relx, [])),
    [First | _] = Resolved = [qualify(T, Release) || T <- Tags],
    {Image, _} = split_tag(First),
    {Registry, Namespace} = destination(Push),
    Repo = case Namespace of
               "" -> strip_registry(Image);
               _ -> Namespace ++ "/" ++ strip_registry(Image)
           end,
    [FirstTag | Extra] = [element(2, split_tag(R)) || R <- Resolved],
    Platforms = case proplists:get_value(platform, Args,
                                         proplists:get_value(platform, rebar_state:get(State, ocibuild, []))) of
                    undefined -> 1;
                    P -> length(string:lexemes(P, ","))
                end,
    Tool = os:getenv("OCISIGN_TEST_PUSHIMAGE"),
    ToolArgs = ["push", "-platforms", integer_to_list(Platforms)]
        ++ ["-bogus-sig" || SignKey =/= undefined]
        ++ [Registry ++ "/" ++ Repo ++ ":" ++ FirstTag | Extra],
    case SignKey of
        undefined -> ok;
        _ -> rebar_api:warn("ocibuild stand-in: signing with ~ts myself (overwrites the .sig tag)", [SignKey])
    end,
    case run(Tool, ToolArgs) of
        {0, Out} ->
            [rebar_api:console("Tagged: ~ts/~ts:~ts", [Registry, Repo, T]) || T <- [FirstTag | Extra]],
            rebar_api:console("Digest: ~ts", [string:trim(Out)]),
            {ok, State};
        {Status, Out} ->
            {error, {?MODULE, {push_failed, Status, Out}}}
    end.

run(Tool, Args) ->
    Port = open_port({spawn_executable, Tool}, [{args, Args}, exit_status, stderr_to_stdout, binary]),
    collect(Port, <<>>).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, <<Acc/binary, D/binary>>);
        {Port, {exit_status, S}} -> {S, binary_to_list(Acc)}
    end.

%% ocibuild's rules, condensed: CLI tags win over config; ";" separates.
tags(Args, Config) ->
    Split = fun(T) -> [string:trim(X) || X <- string:lexemes(T, ";"), string:trim(X) =/= ""] end,
    case lists:flatmap(Split, proplists:get_all_values(tag, Args)) of
        [] ->
            case proplists:get_value(tag, Config, []) of
                [C | _] = L when is_list(C) -> lists:flatmap(Split, L);
                L -> Split(L)
            end;
        Cli ->
            Cli
    end.

sign_key(Args, Config) ->
    case proplists:get_value(sign_key, Args) of
        undefined ->
            case os:getenv("OCIBUILD_SIGN_KEY") of
                false -> proplists:get_value(sign_key, Config);
                Env -> Env
            end;
        Key ->
            Key
    end.

release(Args, Relx) ->
    case proplists:get_value(release, Args) of
        undefined -> hd([atom_to_list(N) || {release, {N, _}, _} <- Relx] ++ [undefined]);
        R -> R
    end.

qualify(Tag, Release) ->
    case {string:find(Tag, ":"), string:find(Tag, "/")} of
        {nomatch, nomatch} -> Release ++ ":" ++ Tag;
        {nomatch, _} -> Tag ++ ":latest";
        _ ->
            {Repo, T} = split_tag(Tag),
            Repo ++ ":" ++ T
    end.

split_tag(Ref) ->
    case string:split(Ref, ":", trailing) of
        [Repo, T] ->
            case string:find(T, "/") of
                nomatch -> {Repo, T};
                _ -> {Ref, "latest"}
            end;
        [_] ->
            {Ref, "latest"}
    end.

destination(Push) ->
    case string:split(Push, "/") of
        [Reg] -> {Reg, ""};
        [First, Rest] ->
            case string:find(First, ".") =/= nomatch orelse string:find(First, ":") =/= nomatch of
                true -> {First, Rest};
                false -> {"docker.io", Push}
            end
    end.

strip_registry(Image) ->
    case string:split(Image, "/") of
        [First, Rest] ->
            case string:find(First, ".") =/= nomatch orelse string:find(First, ":") =/= nomatch of
                true -> Rest;
                false -> Image
            end;
        [_] ->
            Image
    end.

format_error(missing_tag) ->
    "ocibuild stand-in: no tag (-t NAME:TAG)";
format_error({push_failed, Status, Out}) ->
    io_lib:format("ocibuild stand-in: pushimage exited ~p: ~ts", [Status, Out]);
format_error(Other) ->
    io_lib:format("~p", [Other]).
