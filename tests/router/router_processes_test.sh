#!/usr/bin/env bash
# End to end across processes: nonstop-router runs the six transactions of chapter 5 while the
# three monitor programs watch on loopback; their SUMMARY lines must show consecutive relay
# numbers, nothing lost, both message formats decoded by OSPF 3, and every exit status 0.
# usage: router_processes_test.sh BIN_DIR
set -u
bin=$1
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for f in "$work"/*.out; do echo "== $f"; tail -5 "$f"; done
    exit 1
}

# Ports from a per-run base; a taken port makes a monitor exit at once, which is reported.
base=$((20000 + (RANDOM % 2000) * 10))
period=50
for i in 1 2 3; do
    mode=$(echo ip ospf vrrp | cut -d' ' -f$i)
    "$bin/nonstop-$mode-monitor" --port $((base + i)) --period $period --quiet >"$work/$mode.out" 2>&1 &
    pids+=($!)
    monitor_pid[$i]=$!
done
for i in 1 2 3; do
    mode=$(echo ip ospf vrrp | cut -d' ' -f$i)
    for _ in $(seq 50); do grep -q listening "$work/$mode.out" && break; sleep 0.1; done
    grep -q listening "$work/$mode.out" || fail "$mode monitor did not start"
done

"$bin/nonstop-router" --scenario --period $period --pause 6 --slow-drain 2500 --quiet \
    --ip-monitor $((base + 1)) --ospf-monitor $((base + 2)) --vrrp-monitor $((base + 3)) \
    >"$work/router.out" 2>&1 &
router=$!
pids+=($router)
for _ in $(seq 400); do grep -q '^scenario:' "$work/router.out" && break; sleep 0.1; done
grep -q '^scenario: every transaction ended as in the thesis' "$work/router.out" ||
    fail "the scenario did not end as in the thesis"
kill -TERM $router
wait $router || fail "nonstop-router exited with $?"
for i in 1 2 3; do
    kill -TERM "${monitor_pid[$i]}"
    wait "${monitor_pid[$i]}" || fail "monitor $i exited with $?"
done

field() { grep '^SUMMARY' "$work/$1.out" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
[ "$(field ospf gaps)" = 0 ] || fail "relay gaps"
[ "$(field ospf repeats)" = 0 ] || fail "relay repeats"
for source in IP VRRP; do
    monitor=$(echo $source | tr A-Z a-z)
    [ "$(field ospf relay_${source}_first)" = 1 ] || fail "$source relays do not start at 1"
    last=$(field ospf relay_${source}_last)
    [ "$(field ospf relay_${source}_count)" = "$last" ] || fail "$source relay count differs from last"
    [ "$(field $monitor sent_${source})" = "$last" ] || fail "$source sent $(field $monitor sent_${source}), OSPF served $last"
done
case ",$(field ospf decoded)," in *,3:1,*3:2,*) ;; *) fail "OSPF 3 did not decode both formats";; esac
[ "$(field ip versions)" = 1,2,3 ] || fail "IP versions $(field ip versions)"
grep '^SUMMARY' "$work"/*.out
echo PASS
