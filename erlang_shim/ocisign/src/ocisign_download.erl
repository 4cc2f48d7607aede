%% @doc Fetches a release file of the ocisign program into the cache and
%% keeps it only if its size and SHA-256 are the pinned ones. Nothing is
%% ever run from here: the file is written to a temporary name, checked,
%% made executable and renamed into place (two fetches at once both end
%% with the same good file). https only, except to loopback hosts; the
%% usual proxy variables are honoured; the whole fetch is bounded in time
%% and in bytes (the pinned size).
-module(ocisign_download).

-export([fetch/4, check_url/1, proxy_options/1, format_error/1]).

-define(TIMEOUT_MS, 300000).
-define(CONNECT_TIMEOUT_MS, 15000).
-define(PROFILE, ocisign_download).

%% @doc Url of the file, the pinned artifact, the path to create, and a fun
%% to say (once) that a download is starting.
-spec fetch(string(), ocisign_release:artifact(), file:filename(), fun((string(), [term()]) -> term())) ->
          ok | {error, term()}.
fetch(Url, #{size := Size} = Artifact, Target, Say) ->
    case check_url(Url) of
        ok ->
            ok = filelib:ensure_dir(Target),
            Tmp = lists:flatten(io_lib:format("~ts.tmp.~s.~b", [Target, os:getpid(),
                                                              erlang:unique_integer([positive])])),
            Say("ocisign: fetching ~ts (~.1f MB) from ~ts",
                [maps:get(name, Artifact), Size / 1.0e6, ocisign_port:redact_url(Url)]),
            Result = download(Url, Artifact, Tmp),
            case Result of
                ok ->
                    ok = file:change_mode(Tmp, 8#755),
                    case file:rename(Tmp, Target) of
                        ok -> ok;
                        {error, R} -> _ = file:delete(Tmp), {error, {cache_write, Target, R}}
                    end;
                {error, _} = Error ->
                    _ = file:delete(Tmp),
                    Error
            end;
        Error ->
            Error
    end.

%% @doc https://, or http:// to a loopback host (a mirror on this machine).
-spec check_url(string()) -> ok | {error, term()}.
check_url(Url) ->
    case uri_string:parse(Url) of
        #{scheme := "https", host := H} when H =/= "" -> ok;
        #{scheme := "http", host := H} = _ when H =/= "" ->
            case loopback(H) of
                true -> ok;
                false -> {error, {insecure_download_url, Url}}
            end;
        _ ->
            {error, {bad_download_url, Url}}
    end.

loopback("localhost") -> true;
loopback("[::1]") -> true;
loopback("::1") -> true;
loopback(H) ->
    case inet:parse_address(H) of
        {ok, {127, _, _, _}} -> true;
        _ -> false
    end.

download(Url, #{size := Size, sha256 := Sha}, Tmp) ->
    {ok, _} = application:ensure_all_started(inets),
    {ok, _} = application:ensure_all_started(ssl),
    _ = inets:start(httpc, [{profile, ?PROFILE}]),
    ok = httpc:set_options(proxy_options(fun os:getenv/1), ?PROFILE),
    {ok, Fd} = file:open(Tmp, [write, raw, binary]),
    try
        HttpOpts = [{timeout, ?TIMEOUT_MS}, {connect_timeout, ?CONNECT_TIMEOUT_MS}, {autoredirect, true},
                    {ssl, ssl_options()}],
        case httpc:request(get, {Url, [{"user-agent", "ocisign-rebar3-plugin"}]}, HttpOpts,
                           [{sync, false}, {stream, self}, {body_format, binary}], ?PROFILE) of
            {ok, Req} ->
                Deadline = erlang:monotonic_time(millisecond) + ?TIMEOUT_MS,
                receive_body(Req, Url, Fd, crypto:hash_init(sha256), 0, Size, Deadline, Sha);
            {error, Reason} ->
                {error, {download_failed, Url, Reason}}
        end
    after
        file:close(Fd)
    end.

receive_body(Req, Url, Fd, Hash, Got, Size, Deadline, Sha) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {http, {Req, stream_start, _Headers}} ->
            receive_body(Req, Url, Fd, Hash, Got, Size, Deadline, Sha);
        {http, {Req, stream, Bin}} when Got + byte_size(Bin) > Size ->
            httpc:cancel_request(Req, ?PROFILE),
            {error, {size_mismatch, Url, Size, {more_than, Size}}};
        {http, {Req, stream, Bin}} ->
            ok = file:write(Fd, Bin),
            receive_body(Req, Url, Fd, crypto:hash_update(Hash, Bin), Got + byte_size(Bin), Size, Deadline, Sha);
        {http, {Req, stream_end, _Headers}} when Got =/= Size ->
            {error, {size_mismatch, Url, Size, Got}};
        {http, {Req, stream_end, _Headers}} ->
            case hex(crypto:hash_final(Hash)) of
                Sha -> ok;
                Other -> {error, {checksum_mismatch, Url, Sha, Other}}
            end;
        {http, {Req, {{_, Status, _}, _, _}}} ->
            {error, {download_failed, Url, {http_status, Status}}};
        {http, {Req, {error, Reason}}} ->
            {error, {download_failed, Url, Reason}}
    after Left ->
        httpc:cancel_request(Req, ?PROFILE),
        {error, {download_failed, Url, timeout}}
    end.

hex(Bin) -> lists:flatten([io_lib:format("~2.16.0b", [B]) || <<B>> <= Bin]).

ssl_options() ->
    [{verify, verify_peer}, {cacerts, public_key:cacerts_get()}, {depth, 10},
     {customize_hostname_check, [{match_fun, public_key:pkix_verify_hostname_match_fun(https)}]}].

%% @doc httpc proxy options from HTTPS_PROXY / HTTP_PROXY / NO_PROXY (either
%% case), as curl and Go read them.
-spec proxy_options(fun((string()) -> string() | false)) -> list().
proxy_options(Getenv) ->
    NoProxy = [no_proxy_entry(string:trim(E))
               || E <- string:lexemes(env(Getenv, "no_proxy"), ","), string:trim(E) =/= ""],
    [{Key, {HostPort, NoProxy}}
     || {Key, Var} <- [{https_proxy, "https_proxy"}, {proxy, "http_proxy"}],
        HostPort <- [proxy_host_port(env(Getenv, Var))], HostPort =/= none].

env(Getenv, Lower) ->
    case Getenv(Lower) of
        V when is_list(V), V =/= "" -> V;
        _ ->
            case Getenv(string:uppercase(Lower)) of
                V when is_list(V) -> V;
                _ -> ""
            end
    end.

proxy_host_port("") -> none;
proxy_host_port(Url) ->
    case uri_string:parse(case string:find(Url, "://") of nomatch -> "http://" ++ Url; _ -> Url end) of
        #{host := H, port := P} when H =/= "" -> {H, P};
        #{host := H} when H =/= "" -> {H, 80};
        _ -> none
    end.

%% ".example.com" and "example.com" both cover the subdomains, as in curl.
no_proxy_entry("." ++ Domain) -> "*." ++ Domain;
no_proxy_entry(Host) -> Host.

%% @doc A sentence for an error of fetch/4 or check_url/1; a URL in it is
%% shown without the credentials its user-info may hold.
-spec format_error(term()) -> string().
format_error(Reason) when is_tuple(Reason), tuple_size(Reason) >= 2, is_list(element(2, Reason)) ->
    message(setelement(2, Reason, ocisign_port:redact_url(element(2, Reason))));
format_error(Reason) ->
    message(Reason).

message({insecure_download_url, Url}) ->
    f("the download URL ~ts is plain http to a host that is not loopback; use https", [Url]);
message({bad_download_url, Url}) ->
    f("~ts is not an http(s) URL", [Url]);
message({download_failed, Url, {http_status, 404}}) ->
    f("~ts was not found (404)", [Url]);
message({download_failed, Url, {http_status, S}}) ->
    f("~ts answered HTTP ~b", [Url, S]);
message({download_failed, Url, timeout}) ->
    f("~ts did not arrive within ~b s", [Url, ?TIMEOUT_MS div 1000]);
message({download_failed, Url, Reason}) ->
    f("~ts could not be fetched: ~p", [Url, Reason]);
message({size_mismatch, Url, Want, {more_than, _}}) ->
    f("~ts is larger than the ~b bytes of the pinned release file; it was discarded and never run", [Url, Want]);
message({size_mismatch, Url, Want, Got}) ->
    f("~ts has ~b bytes, the pinned release file ~b; it was discarded and never run", [Url, Got, Want]);
message({checksum_mismatch, Url, Want, Got}) ->
    f("checksum mismatch: ~ts has SHA-256 ~s, but this plugin trusts only ~s (priv/checksums.config); "
      "the file was discarded and never run", [Url, Got, Want]);
message({cache_write, Path, R}) ->
    f("could not write ~ts: ~p", [Path, R]).

f(Fmt, Args) -> lists:flatten(io_lib:format(Fmt, Args)).
