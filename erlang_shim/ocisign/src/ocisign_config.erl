%% @doc Pure configuration logic of the rebar3 integration: which key, which
%% references, which {ocisign, [...]} options. No rebar3 calls here, so EUnit
%% covers it directly.
%%
%% References are built the way ocibuild 0.10.5 builds what it pushes
%% (ocibuild_release: get_tags/4, resolve_tags_list/2, parse_tag/1,
%% parse_push_destination/1, extract_repo_path/1, do_push/6 and
%% ocibuild_registry:normalize_repo/2), re-implemented because those are
%% private or need OTP 27.
-module(ocisign_config).

-export([signer/2, signer_fields/3, sign_key/3, tags/2, resolve_tags/2, release_name/2, references/3,
         parse_push_destination/1, extract_repo_path/1, parse_tag/1, signing_registry/1,
         printed_reference/2, pushed_references/4, digest/1,
         dotless_registry_warning/1, options/1, port_options/2, sign_request/4,
         signing_message/1, unknown_option/1, format_error/1]).

%% The Go side's default per-request timeout (registry.DefaultTimeout).
-define(DEFAULT_TIMEOUT_MS, 300000).

-type key_source() :: cli | env | config.
-type options() :: #{recursive := boolean(),
                     annotations := #{binary() => binary()},
                     allow_insecure_registry := boolean(),
                     timeout_ms := pos_integer() | undefined,
                     bin := string() | undefined,
                     on_error := fail | warn,
                     rekor_url := binary() | undefined,
                     rekor_public_key := string() | undefined,
                     download_url := string() | undefined,
                     build_from_source := boolean(),
                     keyless := boolean(),
                     insecure_ignore_sct := boolean(),
                     fulcio_url := binary() | undefined,
                     fulcio_root := string() | undefined}.
-export_type([key_source/0, options/0]).

%%--------------------------------------------------------------------
%% Key: --sign-key > OCIBUILD_SIGN_KEY > {ocibuild, [{sign_key, K}]}
%%--------------------------------------------------------------------

%% @doc Args are the parsed CLI args, Config the {ocibuild, [...]} list,
%% Env the value of os:getenv("OCIBUILD_SIGN_KEY"). An empty value counts as
%% unset (CI systems export empty variables).
-spec sign_key(proplists:proplist(), proplists:proplist(), string() | false) ->
          {ok, key_source(), string()} | none.
sign_key(Args, Config, Env) ->
    Candidates = [{cli, proplists:get_value(sign_key, Args)},
                  {env, Env},
                  {config, proplists:get_value(sign_key, Config)}],
    first_key(Candidates).

first_key([]) -> none;
first_key([{Source, V} | Rest]) ->
    case str(V) of
        undefined -> first_key(Rest);
        "" -> first_key(Rest);
        S -> {ok, Source, S}
    end.

%%--------------------------------------------------------------------
%% Tags and references
%%--------------------------------------------------------------------

%% @doc -t values win over the config's tag (a string or a list); each value
%% is split on ";" and trimmed (docker/metadata-action style).
-spec tags(proplists:proplist(), proplists:proplist()) -> [binary()].
tags(Args, Config) ->
    Cli = lists:flatmap(fun split_tags/1, [bin(T) || T <- proplists:get_all_values(tag, Args)]),
    case Cli of
        [] -> lists:flatmap(fun split_tags/1, config_tags(proplists:get_value(tag, Config, [])));
        _ -> Cli
    end.

config_tags(T) when is_binary(T) -> [T];
config_tags([]) -> [];
config_tags(T) when is_list(T) ->
    case io_lib:char_list(T) of
        true -> [bin(T)];
        false -> [bin(X) || X <- T]
    end;
config_tags(T) when is_atom(T) -> [bin(T)];
config_tags(_) -> [].

split_tags(T) ->
    [P || Part <- binary:split(T, <<";">>, [global]),
          P <- [string:trim(Part)], P =/= <<>>].

%% @doc The release name used for bare tags: --release, else the first
%% release in the relx config.
-spec release_name(proplists:proplist(), list()) -> {ok, binary()} | none.
release_name(Args, Relx) ->
    case proplists:get_value(release, Args) of
        undefined -> first_release(Relx);
        Name -> {ok, bin(Name)}
    end.

first_release([{release, {Name, _Vsn}, _Apps} | _]) -> {ok, bin(Name)};
first_release([{release, {Name, _Vsn}, _Apps, _Opts} | _]) -> {ok, bin(Name)};
first_release([_ | Rest]) -> first_release(Rest);
first_release(_) -> none.

%% @doc Bare tags ("1.0") become "<release>:1.0"; "repo:tag" and full
%% references stay; a reference without a tag gets ":latest".
-spec resolve_tags([binary()], binary() | undefined) -> {ok, [binary()]} | {error, term()}.
resolve_tags(Tags, Release) ->
    try
        {ok, [resolve_tag(T, Release) || T <- Tags]}
    catch
        throw:Error -> {error, Error}
    end.

resolve_tag(Tag, Release) ->
    case classify_tag(Tag) of
        {bare, T} when Release =/= undefined -> <<Release/binary, ":", T/binary>>;
        {bare, T} -> throw({bare_tag_needs_release, T});
        {ref, Repo, T} -> <<Repo/binary, ":", T/binary>>
    end.

classify_tag(Tag) ->
    case binary:split(Tag, <<":">>, [global]) of
        [Only] ->
            case has_slash(Only) of
                false -> {bare, Only};
                true -> {ref, Only, <<"latest">>}
            end;
        [_Repo, TagPart] = Parts ->
            case has_slash(TagPart) of
                true -> {ref, Tag, <<"latest">>};            % host:port/repo
                false -> {ref, hd(Parts), TagPart}
            end;
        Parts ->
            Last = lists:last(Parts),
            case has_slash(Last) of
                false -> {ref, join(lists:droplast(Parts), <<":">>), Last};
                true -> {ref, Tag, <<"latest">>}
            end
    end.

%% @doc ocibuild's parse_tag/1: {Repo, Tag}, ":latest" when there is none.
-spec parse_tag(binary()) -> {binary(), binary()}.
parse_tag(Tag) ->
    case binary:split(Tag, <<":">>, [global]) of
        [Repo] -> {Repo, <<"latest">>};
        Parts ->
            Last = lists:last(Parts),
            case has_slash(Last) of
                false -> {join(lists:droplast(Parts), <<":">>), Last};
                true -> {Tag, <<"latest">>}
            end
    end.

%% @doc "ghcr.io/org" -> {"ghcr.io", "org"}; "myorg" alone is a registry
%% host with no namespace; "myorg/x" (no "." or ":" before the first "/")
%% is a namespace on docker.io.
-spec parse_push_destination(binary()) -> {binary(), binary()}.
parse_push_destination(Dest) ->
    case binary:split(Dest, <<"/">>) of
        [Registry] -> {Registry, <<>>};
        [First, Rest] ->
            case looks_like_host(First) of
                true -> {First, Rest};
                false -> {<<"docker.io">>, Dest}
            end
    end.

%% @doc Strips a leading "host[:port]/" from an image name.
-spec extract_repo_path(binary()) -> binary().
extract_repo_path(Name) ->
    case binary:split(Name, <<"/">>) of
        [_] -> Name;
        [First, Rest] ->
            case looks_like_host(First) of
                true -> Rest;
                false -> Name
            end
    end.

%% @doc The references ocibuild pushed for --push Dest and the resolved tags:
%% every tag lives in the repository of the first tag's image name. The
%% registry is written so that the Go side reads it as ocibuild did (see
%% signing_registry/1).
-spec references(binary(), [binary()], binary() | undefined) -> {ok, [binary()]} | {error, term()}.
references(_Dest, [], _Release) ->
    {error, no_tags};
references(Dest, Tags, Release) ->
    case lists:member(<<>>, binary:split(bin(Dest), <<"/">>, [global])) of
        true ->
            {error, {bad_push_destination, bin(Dest)}};
        false ->
            {Registry, Namespace} = parse_push_destination(bin(Dest)),
            case resolve_tags(Tags, Release) of
                {ok, [First | _] = Resolved} ->
                    {ImageName, _} = parse_tag(First),
                    RepoPath = extract_repo_path(ImageName),
                    Repo0 = case Namespace of
                                <<>> -> RepoPath;
                                _ -> <<Namespace/binary, "/", RepoPath/binary>>
                            end,
                    Repo = normalize_repo(Registry, Repo0),
                    Host = signing_registry(Registry),
                    Refs = [begin
                                {_, T} = parse_tag(R),
                                <<Host/binary, "/", Repo/binary, ":", T/binary>>
                            end || R <- Resolved],
                    {ok, dedup(Refs)};
                {error, _} = Error ->
                    Error
            end
    end.

%% @doc The references ocibuild pushes for --push Dest, from the parsed
%% arguments (tags, --release), the {ocibuild, [...]} config and the relx
%% config (the release name qualifies bare tags).
-spec pushed_references(binary() | string(), proplists:proplist(), proplists:proplist(), list()) ->
          {ok, [binary()]} | {error, term()}.
pushed_references(Dest, Args, OciConfig, Relx) ->
    Release = case release_name(Args, Relx) of
                  {ok, R} -> R;
                  none -> undefined
              end,
    references(bin(Dest), tags(Args, OciConfig), Release).

%% @doc The registry as written in the references sent to the Go program.
%% ocibuild takes a --push value without "/" as a registry host, even
%% "myorg", and talks to https://myorg (it has no plain HTTP). The Go side
%% (go-containerregistry, like cosign, docker and Kubernetes) reads
%% "myorg/app" as Docker Hub's docker.io/myorg/app, so the tag would be
%% resolved and the .sig pushed on another registry. "myorg:443" is the
%% same server, port and repository to both, so the hook signs what was
%% pushed instead of failing after the push; the payload's docker-reference
%% then reads "myorg:443/app", which cosign does not compare, and the
%% credentials are the same (ocibuild's OCIBUILD_PUSH_* apply to any host).
%% "localhost" is a registry to go-containerregistry already.
-spec signing_registry(binary()) -> binary().
signing_registry(<<"localhost">> = Registry) ->
    Registry;
signing_registry(Registry) ->
    case looks_like_host(Registry) of
        true -> Registry;
        false -> <<Registry/binary, ":443">>
    end.

%% @doc A reference ocibuild printed (`Tagged: REF') as the program must
%% read it: ocibuild writes "<registry>/<repo>:<tag>" with the registry of
%% --push, so only a dotless registry host needs signing_registry/1's form.
-spec printed_reference(string() | binary(), binary()) -> binary().
printed_reference(Push, Ref) ->
    {Registry, _} = parse_push_destination(bin(Push)),
    Prefix = <<Registry/binary, "/">>,
    case {Registry, binary:match(Ref, Prefix)} of
        {<<>>, _} ->
            Ref;
        {_, {0, Len}} ->
            Host = signing_registry(Registry),
            <<Host/binary, "/", (binary:part(Ref, Len, byte_size(Ref) - Len))/binary>>;
        _ ->
            Ref
    end.

%% @doc The warning for a --push registry that only ocibuild reads as a
%% host (see signing_registry/1): every other tool needs the ":443" form to
%% find the image, cosign verify included.
-spec dotless_registry_warning(binary() | string()) -> none | string().
dotless_registry_warning(Dest) ->
    case parse_push_destination(bin(Dest)) of
        {<<>>, _} ->
            none;
        {Registry, _} ->
            case signing_registry(Registry) of
                Registry -> none;
                Host ->
                    f("ocisign: --push ~ts names the registry host ~ts (ocibuild's reading), but cosign, "
                      "docker and Kubernetes read ~ts/NAME as Docker Hub (docker.io/~ts/NAME). Signing it as "
                      "~ts/NAME, the same registry; refer to the image that way (cosign verify ~ts/NAME:TAG), "
                      "or push to ~ts or a fully qualified host name.",
                      [Dest, Registry, Registry, Registry, Host, Host, Host])
            end
    end.

%% Docker Hub keeps official images under library/.
normalize_repo(<<"docker.io">>, Repo) ->
    case has_slash(Repo) of
        true -> Repo;
        false -> <<"library/", Repo/binary>>
    end;
normalize_repo(_, Repo) ->
    Repo.

looks_like_host(Part) ->
    binary:match(Part, [<<".">>, <<":">>]) =/= nomatch.

has_slash(B) -> binary:match(B, <<"/">>) =/= nomatch.

join(Parts, Sep) -> iolist_to_binary(lists:join(Sep, Parts)).

dedup(L) -> dedup(L, []).
dedup([], Acc) -> lists:reverse(Acc);
dedup([H | T], Acc) ->
    case lists:member(H, Acc) of
        true -> dedup(T, Acc);
        false -> dedup(T, [H | Acc])
    end.

%%--------------------------------------------------------------------
%% {ocisign, [...]} options
%%--------------------------------------------------------------------

%% @doc Validates the {ocisign, [...]} list and fills in defaults.
-spec options(proplists:proplist()) -> {ok, options(), Unknown :: [term()]} | {error, term()}.
options(Config) when is_list(Config) ->
    Defaults = #{recursive => true, annotations => #{}, allow_insecure_registry => false,
                 timeout_ms => undefined, bin => undefined, on_error => fail,
                 rekor_url => undefined, rekor_public_key => undefined,
                 download_url => undefined, build_from_source => false,
                 keyless => false, insecure_ignore_sct => false, fulcio_url => undefined, fulcio_root => undefined},
    try
        lists:foldl(fun option/2, {Defaults, []}, first_of_each_key(Config))
    of
        {Opts, Unknown} -> {ok, Opts, lists:reverse(Unknown)}
    catch
        throw:Error -> {error, Error}
    end;
options(Other) ->
    {error, {bad_option, ocisign, Other}}.

%% rebar3 merges a profile's {ocisign, [...]} ahead of the base one and keeps
%% both entries, so the first of each key wins (as with proplists:get_value/2).
first_of_each_key(Config) ->
    {Kept, _} = lists:foldl(fun({K, _} = E, {Acc, Seen}) ->
                                    case sets:is_element(K, Seen) of
                                        true -> {Acc, Seen};
                                        false -> {[E | Acc], sets:add_element(K, Seen)}
                                    end;
                               (E, {Acc, Seen}) ->
                                    {[E | Acc], Seen}
                            end, {[], sets:new()}, Config),
    lists:reverse(Kept).

option({K, V}, {Opts, Unknown}) when K =:= recursive; K =:= allow_insecure_registry; K =:= build_from_source;
                                     K =:= keyless; K =:= insecure_ignore_sct ->
    case is_boolean(V) of
        true -> {Opts#{K => V}, Unknown};
        false -> throw({bad_option, K, V})
    end;
option({annotations, V}, {Opts, Unknown}) ->
    {Opts#{annotations => annotation_map(V)}, Unknown};
option({timeout_ms, V}, {Opts, Unknown}) when is_integer(V), V > 0 ->
    {Opts#{timeout_ms => V}, Unknown};
option({bin, V}, {Opts, Unknown}) ->
    case str(V) of
        undefined -> throw({bad_option, bin, V});
        S -> {Opts#{bin => S}, Unknown}
    end;
option({download_url, V}, {Opts, Unknown}) ->
    case str(V) of
        S when is_list(S), S =/= "" ->
            case ocisign_download:check_url(S) of
                ok -> {Opts#{download_url => S}, Unknown};
                {error, Why} -> throw({bad_download_url, Why})
            end;
        _ ->
            throw({bad_option, download_url, V})
    end;
%% Keyless: the program checks the URL and the root file (identity op,
%% before the push); here they only have to be non-empty strings.
option({K, V}, {Opts, Unknown}) when K =:= fulcio_url; K =:= fulcio_root ->
    case str(V) of
        S when is_list(S), S =/= "" ->
            {Opts#{K => case K of fulcio_url -> bin(S); fulcio_root -> S end}, Unknown};
        _ ->
            throw({bad_option, K, ocisign_port:redact_term(V)})
    end;
option({on_error, V}, {Opts, Unknown}) when V =:= fail; V =:= warn ->
    {Opts#{on_error => V}, Unknown};
%% Opt-in only: without rekor_url nothing but registry traffic leaves the
%% machine (OCISIGN_REKOR_URL in the program's environment aside).
option({K, V}, {Opts, Unknown}) when (K =:= rekor_url orelse K =:= rekor_public_key),
                                     (is_list(V) orelse is_binary(V)) ->
    case {K, str(V)} of
        {rekor_url, S} when is_list(S), S =/= "" ->
            case ocisign_port:is_http_url(S) of
                true -> {Opts#{rekor_url => bin(S)}, Unknown};
                false -> throw({bad_rekor_url, ocisign_port:redact_term(V)})
            end;
        {rekor_public_key, S} when is_list(S), S =/= "" ->
            {Opts#{rekor_public_key => S}, Unknown};
        {rekor_url, _} ->
            throw({bad_option, rekor_url, ocisign_port:redact_term(V)});
        _ ->
            throw({bad_option, K, V})
    end;
option({rekor_url, V}, _) ->
    throw({bad_option, rekor_url, ocisign_port:redact_term(V)});
option({K, V}, _) when K =:= timeout_ms; K =:= on_error; K =:= rekor_public_key ->
    throw({bad_option, K, V});
option(Other, {Opts, Unknown}) ->
    {Opts, [Other | Unknown]}.

%% @doc The --digest of `rebar3 ocisign sign': the manifest to sign instead
%% of what the tags point to when the program resolves them (the hook can
%% only sign tags: ocibuild does not expose the digest it pushed).
-spec digest(proplists:proplist()) -> {ok, binary() | undefined} | {error, term()}.
digest(Args) ->
    case proplists:get_value(digest, Args) of
        undefined -> {ok, undefined};
        D ->
            B = bin(D),
            case re:run(B, "^sha256:[0-9a-f]{64}$", [{capture, none}]) of
                match -> {ok, B};
                nomatch -> {error, {bad_digest, B}}
            end
    end.

%% @doc ocisign_port:open/1 options (see ocisign_bin:find/1). A relative
%% {bin, Path} is resolved against Root, the project root (where
%% rebar.config is), so that it does not depend on the working directory at
%% the time the port is opened.
-spec port_options(options(), file:filename()) -> map().
port_options(#{bin := Bin, download_url := Url, build_from_source := Build}, Root) ->
    Abs = case Bin of
              undefined -> undefined;
              _ -> filename:absname(Bin, Root)
          end,
    maps:filter(fun(_, V) -> V =/= undefined end,
                #{bin => Abs, download_url => Url, build_from_source => Build}).

%% @doc The ocisign_port:sign/2 request for one reference. timeout_ms is
%% always sent so that the program's deadline (which an OCISIGN_CONFIG file
%% could otherwise change) and ours agree. The log fields are sent only when
%% configured: without rekor_url the program falls back to OCISIGN_REKOR_URL
%% and otherwise uploads nothing. rekor_public_key is made absolute against
%% Root, the project root, because the program resolves relative paths
%% against its own working directory.
-spec sign_request(binary(), string() | keyless, options(), file:filename()) -> ocisign_port:request().
sign_request(Ref, Key, Opts, Root) ->
    Base = (signer_fields(Key, Opts, Root))#{reference => Ref,
             recursive => maps:get(recursive, Opts),
             annotations => maps:get(annotations, Opts),
             allow_insecure_registry => maps:get(allow_insecure_registry, Opts),
             timeout_ms => case maps:get(timeout_ms, Opts) of
                               undefined -> ?DEFAULT_TIMEOUT_MS;
                               T -> T
                           end},
    Log = [{rekor_url, maps:get(rekor_url, Opts, undefined)},
           {rekor_public_key, case maps:get(rekor_public_key, Opts, undefined) of
                                  undefined -> undefined;
                                  P -> filename:absname(P, Root)
                              end}],
    maps:merge(Base, maps:from_list([{K, V} || {K, V} <- Log, V =/= undefined])).

%% @doc What signs: the key (sign_key/3's answer); keyless when asked for;
%% keyless too when there is no key but the environment offers an identity
%% token (GitHub Actions' id-token permission, SIGSTORE_ID_TOKEN), which the
%% program then finds and checks (ocisign_port:identity/2).
-spec signer({ok, key_source(), string()} | none, options()) ->
          {key, key_source(), string()} | keyless | none | {error, keyless_and_key}.
signer({ok, _Source, _KeyPath}, #{keyless := true}) ->
    {error, keyless_and_key};
signer({ok, Source, KeyPath}, _Opts) ->
    {key, Source, KeyPath};
signer(none, #{keyless := true}) ->
    keyless;
signer(none, _Opts) ->
    %% The program's own test (keyless.TokenSources.Available): a non-empty
    %% SIGSTORE_ID_TOKEN, or both of GitHub's token variables.
    case set("SIGSTORE_ID_TOKEN") orelse (set("ACTIONS_ID_TOKEN_REQUEST_URL") andalso set("ACTIONS_ID_TOKEN_REQUEST_TOKEN")) of
        true -> keyless;
        false -> none
    end.

set(Var) -> not lists:member(os:getenv(Var), [false, ""]).

%% @doc How a request says what to sign with: the key, or keyless (the
%% program finds the identity token itself) with the {ocisign, [...]}
%% Fulcio options; fulcio_root is made absolute against Root.
-spec signer_fields(string() | keyless, options(), file:filename()) -> ocisign_port:request().
signer_fields(keyless, Opts, Root) ->
    Fields = #{keyless => true, insecure_ignore_sct => maps:get(insecure_ignore_sct, Opts),
               fulcio_url => maps:get(fulcio_url, Opts),
               fulcio_root => case maps:get(fulcio_root, Opts) of
                                  undefined -> undefined;
                                  P -> filename:absname(P, Root)
                              end},
    maps:filter(fun(_, V) -> V =/= undefined end, Fields);
signer_fields(KeyPath, _Opts, _Root) ->
    #{sign_key => KeyPath}.

%% @doc The line logged before a sign request is sent; a log URL is shown
%% without its credentials.
-spec signing_message(ocisign_port:request()) -> string().
signing_message(#{reference := Ref, rekor_url := Log}) ->
    f("ocisign: signing ~ts, recording it in the transparency log ~ts", [Ref, ocisign_port:redact_url(Log)]);
signing_message(#{reference := Ref}) ->
    f("ocisign: signing ~ts", [Ref]).

annotation_map(M) when is_map(M) -> annotation_map(maps:to_list(M));
annotation_map(L) when is_list(L) ->
    maps:from_list([annotation_pair(P) || P <- L]);
annotation_map(V) ->
    throw({bad_option, annotations, V}).

annotation_pair({K, V} = P) ->
    case {str(K), str(V)} of
        {KS, VS} when is_list(KS), KS =/= "", is_list(VS) -> {bin(KS), bin(VS)};
        _ -> throw({bad_option, annotations, P})
    end;
annotation_pair(P) ->
    throw({bad_option, annotations, P}).

%%--------------------------------------------------------------------

-spec format_error(term()) -> string().
format_error({bare_tag_needs_release, T}) ->
    f("tag ~ts has no repository and no release name is known to qualify it "
      "(give --release or a relx release, or tag as name:~ts)", [T, T]);
format_error({bad_push_destination, Dest}) ->
    f("--push \"~ts\" is not a push destination: give REGISTRY[/NAMESPACE] without empty parts, "
      "e.g. ghcr.io/myorg", [Dest]);
format_error({bad_digest, D}) ->
    f("--digest \"~ts\" is not a manifest digest: give sha256: and 64 lowercase hex digits "
      "(the digest ocibuild printed for the push)", [D]);
format_error(no_tags) ->
    "no image tag: give -t NAME:TAG (or {ocibuild, [{tag, ...}]} in rebar.config)";
format_error({bad_option, annotations, V}) ->
    f("{ocisign, [{annotations, ~p}]}: annotations must be a map or a list of {Key, Value} strings "
      "with non-empty keys", [V]);
format_error({bad_rekor_url, V}) ->
    f("{ocisign, [{rekor_url, ~p}]}: rekor_url must be an absolute http:// or https:// URL "
      "without query or fragment, e.g. \"https://rekor.internal.example\"", [ocisign_port:redact_term(V)]);
format_error({bad_option, rekor_url, V}) ->
    f("{ocisign, [{rekor_url, ~p}]}: rekor_url must be a non-empty string (an http:// or https:// URL)",
      [ocisign_port:redact_term(V)]);
format_error({bad_option, ocisign, V}) ->
    %% Not echoed: it may hold a rekor_url with credentials.
    f("{ocisign, ...} must be a list of {Key, Value} options, got ~ts", [kind(V)]);
format_error({bad_download_url, Why}) ->
    f("{ocisign, [{download_url, _}]}: ~ts", [ocisign_download:format_error(Why)]);
format_error({rekor_public_key_missing, Path}) ->
    f("{ocisign, [{rekor_public_key, _}]}: the log's public key file ~ts does not exist "
      "(a relative path is relative to the project root)", [Path]);
format_error({bad_option, rekor_public_key, V}) ->
    f("{ocisign, [{rekor_public_key, ~p}]}: rekor_public_key must be a non-empty string, the path of "
      "the log's PEM public key (relative to the project root)", [V]);
format_error({bad_option, K, V}) ->
    f("{ocisign, [{~p, ~p}]} is not valid: recursive, allow_insecure_registry and build_from_source take "
      "true|false, timeout_ms a positive integer, bin a path, download_url an https:// URL, on_error fail|warn",
      [K, V]);
format_error(Other) ->
    f("~p", [Other]).

%% @doc The warning for an entry of {ocisign, [...]} that options/1 did not
%% know. Only its key is shown: a misspelt rekor_url may hold credentials.
-spec unknown_option(term()) -> string().
unknown_option({K, _}) when is_atom(K) ->
    f("ocisign: unknown option ~p in {ocisign, [...]}, ignored", [K]);
unknown_option(Other) ->
    f("ocisign: an entry of {ocisign, [...]} is ~ts, not a {Key, Value} option; ignored", [kind(Other)]).

kind(V) when is_map(V) -> "a map";
kind(V) when is_tuple(V) -> "a tuple";
kind(V) when is_binary(V) -> "a binary";
kind(V) when is_atom(V) -> "an atom";
kind(V) when is_number(V) -> "a number";
kind(V) when is_list(V) -> "a list";
kind(_) -> "not a list".

f(Fmt, Args) -> lists:flatten(io_lib:format(Fmt, Args)).

str(undefined) -> undefined;
str(false) -> undefined;
str(B) when is_binary(B) -> unicode:characters_to_list(B);
str(A) when is_atom(A) -> atom_to_list(A);
str(L) when is_list(L) ->
    case io_lib:char_list(L) of
        true -> L;
        false -> undefined
    end;
str(_) -> undefined.

bin(B) when is_binary(B) -> B;
bin(A) when is_atom(A) -> atom_to_binary(A, utf8);
bin(L) when is_list(L) -> unicode:characters_to_binary(L).
