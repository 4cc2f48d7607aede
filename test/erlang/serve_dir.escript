#!/usr/bin/env escript
%%! -noshell
%% Test plumbing for test/erlang/run.sh: serves DIR over plain HTTP on a free
%% loopback port (inets httpd), writes the port to PORTFILE, and appends one
%% line per request to LOG. Runs until killed.
%%
%%   serve_dir.escript DIR PORTFILE LOG
main([Dir, PortFile, Log]) ->
    logger:set_primary_config(level, error), % no report when the test kills it
    ok = inets:start(),
    {ok, Pid} = inets:start(httpd, [{port, 0}, {bind_address, {127, 0, 0, 1}},
                                    {server_name, "localhost"}, {server_root, Dir},
                                    {document_root, Dir}, {transfer_log, Log},
                                    {modules, [mod_alias, mod_get, mod_log]}]),
    {port, Port} = lists:keyfind(port, 1, httpd:info(Pid)),
    ok = file:write_file(PortFile, integer_to_list(Port)),
    receive after infinity -> ok end.
