%% @doc The `ocibuild' provider of the test stand-in, our own code written
%% from reading ocibuild 0.10.5 (none of it is copied). The real plugin
%% needs OTP 27+; this one runs on OTP 25 and 27 alike and pushes random
%% images through the pushimage test tool (OCISIGN_TEST_PUSHIMAGE) to a real
%% registry. What it imitates, because ocisign depends on it:
%%   - provider `ocibuild', namespace default, deps [release], the same 14
%%     options, registered by ocibuild:init/1 -> ocibuild_rebar3:init/1;
%%   - the key from --sign-key > OCIBUILD_SIGN_KEY > {ocibuild, [{sign_key, _}]};
%%   - the first tag is pushed, the others re-tagged to the same digest;
%%   - its own signer: single-platform images only, and only with a key it
%%     can read (a plain EC PEM): it then overwrites the sha256-<hex>.sig tag
%%     (here with a marked, invalid layer); with a key it cannot read (a
%%     cosign encrypted key) it only prints a warning;
%%   - then `Tagged: <ref>' per tag and `Digest: <digest>' via
%%     rebar_api:console, and the State returned unchanged.
%% OCIBUILD_STANDIN_FAULT switches on what the real one does wrong:
%%   multi_platform  a --platform push with two or more platforms fails as
%%                   0.10.5's does (its HTTP pool is not ready: noproc),
%%                   before any tag exists;
%%   move_tag        right after printing `Digest:', another image is pushed
%%                   to the first tag (someone else's push in between).
-module(ocibuild_rebar3).

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
    Fault = os:getenv("OCIBUILD_STANDIN_FAULT", ""),
    FirstRef = Registry ++ "/" ++ Repo ++ ":" ++ FirstTag,
    case Platforms > 1 andalso Fault =:= "multi_platform" of
        true ->
            %% What 0.10.5 ends with: no tag is pushed, ocisign gets no Digest.
            {error, {?MODULE, {push_failed, {noproc, {gen_server, call, [ocibuild_http_pool, checkout]}}}}};
        false ->
            Sign = Platforms =:= 1 andalso own_signer(SignKey),
            case pushimage(["push", "-platforms", integer_to_list(Platforms)] ++ ["-bogus-sig" || Sign]
                           ++ [FirstRef | Extra]) of
                {ok, Out} ->
                    Sign andalso rebar_api:info("Image signed with ~ts (ocibuild stand-in's own signer)",
                                                [sig_tag(string:trim(Out))]),
                    [rebar_api:console("Tagged: ~ts/~ts:~ts", [Registry, Repo, T]) || T <- [FirstTag | Extra]],
                    rebar_api:console("Digest: ~ts", [string:trim(Out)]),
                    moved(Fault, FirstRef),
                    {ok, State};
                {error, Status, Out} ->
                    {error, {?MODULE, {push_failed, Status, Out}}}
            end
    end.

%% ocibuild's signer reads only plain PEM EC keys; anything else is a warning.
own_signer(undefined) ->
    false;
own_signer(Key) ->
    Readable = case file:read_file(Key) of
                   {ok, Pem} ->
                       case catch public_key:pem_decode(Pem) of
                           [{'ECPrivateKey', _, not_encrypted} | _] -> true;
                           [] -> {invalid_pem, no_entries};
                           Other when is_list(Other) -> {key_decode_failed, unsupported};
                           _ -> {pem_decode_failed, bad_pem}
                       end;
                   {error, R} ->
                       {key_read_failed, Key, R}
               end,
    case Readable of
        true ->
            true;
        Why ->
            rebar_api:info("Warning: Invalid signing key ~ts: ~p", [Key, Why]),
            false
    end.

moved("move_tag", Ref) ->
    {ok, Out} = pushimage(["push", "-platforms", "1", Ref]),
    rebar_api:debug("ocibuild stand-in: moved ~ts to ~ts", [Ref, string:trim(Out)]);
moved(_, _) ->
    ok.

sig_tag("sha256:" ++ Hex) -> "sha256-" ++ Hex ++ ".sig";
sig_tag(Other) -> Other.

pushimage(Args) ->
    Port = open_port({spawn_executable, os:getenv("OCISIGN_TEST_PUSHIMAGE")},
                     [{args, Args}, exit_status, stderr_to_stdout, binary]),
    case collect(Port, <<>>) of
        {0, Out} -> {ok, Out};
        {Status, Out} -> {error, Status, Out}
    end.

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
            case looks_like_host(First) of
                true -> {First, Rest};
                false -> {"docker.io", Push}
            end
    end.

strip_registry(Image) ->
    case string:split(Image, "/") of
        [First, Rest] ->
            case looks_like_host(First) of
                true -> Rest;
                false -> Image
            end;
        [_] ->
            Image
    end.

looks_like_host(Part) ->
    string:find(Part, ".") =/= nomatch orelse string:find(Part, ":") =/= nomatch.

format_error(missing_tag) ->
    "ocibuild stand-in: no tag (-t NAME:TAG)";
format_error({push_failed, Status, Out}) ->
    io_lib:format("ocibuild stand-in: pushimage exited ~p: ~ts", [Status, Out]);
format_error({push_failed, Reason}) ->
    io_lib:format("Failed to push image: ~p", [Reason]);
format_error(Other) ->
    io_lib:format("~p", [Other]).
