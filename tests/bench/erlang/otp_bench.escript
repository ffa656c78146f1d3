#!/usr/bin/env escript
%% -*- erlang -*-
%%! -noshell +sbwt none
%% The Erlang/OTP side of the side-by-side benchmark (issue #13), run by scripts/bench on the
%% same machine as the nonstop figures. A gen_server is upgraded the OTP way, as a release
%% handler's `{update, Mod, {advanced, Extra}}` instruction does it: sys:suspend, load the new
%% code, sys:change_code, sys:resume. Prints one line per figure:
%%   otp <figure> <median_us> <p99_us> <min_us> <max_us>
%%   otp_bench.escript [ROUNDS]
-mode(compile).

main(Args) ->
    Rounds = case Args of [N] -> list_to_integer(N); _ -> 2000 end,
    Bins = [compile_version(V) || V <- [1, 2]],
    {ok, Pid} = start(hd(Bins)),
    report("gen_server_call_roundtrip", roundtrip(Pid, Rounds * 50)),
    report("suspend_change_code_resume", upgrade(Pid, Bins, Rounds, false)),
    report("upgrade_with_code_load", upgrade(Pid, Bins, Rounds, true)),
    ok.

%% Two versions of one gen_server module, compiled in memory: the state is a counter, and
%% code_change converts it (as a real upgrade would) so that the callback does some work.
compile_version(V) ->
    Src = io_lib:format(
        "-module(otp_bench_srv).~n"
        "-behaviour(gen_server).~n"
        "-vsn(~b).~n"
        "-export([init/1, handle_call/3, handle_cast/2, code_change/3]).~n"
        "init(N) -> {ok, N}.~n"
        "handle_call(ping, _From, N) -> {reply, ~b, N + 1}.~n"
        "handle_cast(_, N) -> {noreply, N}.~n"
        "code_change(_Old, N, _Extra) -> {ok, N}.~n", [V, V]),
    {ok, Forms} = forms(lists:flatten(Src)),
    {ok, otp_bench_srv, Bin} = compile:forms(Forms, [binary]),
    Bin.

forms(Src) -> forms(Src, []).
forms(Src, Acc) ->
    case erl_scan:tokens([], Src, 1) of
        {done, {ok, Toks, _}, Rest} ->
            {ok, F} = erl_parse:parse_form(Toks),
            forms(Rest, [F | Acc]);
        {more, _} -> {ok, lists:reverse(Acc)}
    end.

start(Bin) ->
    {module, otp_bench_srv} = code:load_binary(otp_bench_srv, "otp_bench_srv.beam", Bin),
    gen_server:start(otp_bench_srv, 0, []).

roundtrip(Pid, Calls) ->
    [begin
         T = erlang:monotonic_time(nanosecond),
         _ = gen_server:call(Pid, ping),
         erlang:monotonic_time(nanosecond) - T
     end || _ <- lists:seq(1, Calls)].

%% Blackout: from the moment the server is suspended until the first call is served by the
%% resumed (upgraded) server: the window in which a request would wait.
upgrade(Pid, Bins, Rounds, LoadCode) ->
    [begin
         Bin = lists:nth(1 + (I rem 2), Bins),
         Expect = 1 + (I rem 2),
         case LoadCode of
             true -> code:soft_purge(otp_bench_srv);
             false -> ok
         end,
         T = erlang:monotonic_time(nanosecond),
         ok = sys:suspend(Pid),
         case LoadCode of
             true -> {module, _} = code:load_binary(otp_bench_srv, "otp_bench_srv.beam", Bin);
             false -> ok
         end,
         ok = sys:change_code(Pid, otp_bench_srv, undefined, []),
         ok = sys:resume(Pid),
         Got = gen_server:call(Pid, ping),
         D = erlang:monotonic_time(nanosecond) - T,
         case LoadCode of
             true -> Expect = Got;
             false -> ok
         end,
         D
     end || I <- lists:seq(1, Rounds)].

report(Name, SamplesNs) ->
    S = lists:sort(SamplesNs),
    Len = length(S),
    At = fun(Q) -> lists:nth(min(Len, 1 + trunc(Q * Len)), S) / 1000 end,
    io:format("otp ~s ~.3f ~.3f ~.3f ~.3f~n",
              [Name, At(0.5), At(0.99), hd(S) / 1000, lists:last(S) / 1000]).
