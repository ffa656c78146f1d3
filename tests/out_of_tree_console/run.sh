#!/usr/bin/env bash
# Installs the built nonstop into a scratch prefix, builds this project (a host embedding the
# remote console) against it, starts the host, and administers it with the installed
# nonstop-shell --connect: loads a module, lists the modules, reads the module's kind.
# Arguments: the nonstop build directory, a scratch directory.
set -euo pipefail
build="$1"; scratch="$2"
here="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$scratch"
mkdir -p "$scratch"
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
cmake -S "$here" -B "$scratch/build" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/build" -j2 >/dev/null

host_pid=""
cleanup() { [ -z "$host_pid" ] || kill -KILL "$host_pid" 2>/dev/null || true; }
trap cleanup EXIT
"$scratch/build/console_host" "$scratch/token" >"$scratch/host.out" 2>&1 &
host_pid=$!
port=""
for _ in $(seq 300); do  # the console is up when the host prints its port (30 s at most)
  port=$(sed -n 's/^console \([0-9]*\) .*/\1/p' "$scratch/host.out")
  [ -n "$port" ] && break
  kill -0 "$host_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { echo "the host never reported its console:" >&2; cat "$scratch/host.out" >&2; exit 1; }

cat >"$scratch/batch.tcl" <<'TCL'
Load greeter libecho.so
nonstop send greeter 1 hello
set answer "modules: [nonstop modules]"
set answer "kind: [dict get [nonstop info greeter] kind]"
TCL
status=0
output=$("$scratch/prefix/bin/nonstop-shell" --connect "127.0.0.1:$port" --token-file "$scratch/token" \
  "$scratch/batch.tcl" 2>&1) || status=$?
echo "$output"
kill -TERM "$host_pid"
host_status=0
wait "$host_pid" || host_status=$?
host_pid=""
cat "$scratch/host.out"

[ "$status" = 0 ] || { echo "nonstop-shell --connect exited with $status" >&2; exit 1; }
[ "$host_status" = 0 ] || { echo "the host exited with $host_status" >&2; exit 1; }
# The console ran the commands in the host's runtime: the answers came back, and the module the
# operator loaded was still there when the host stopped.
for expected in "outcome committed" "modules: greeter" "kind: echo"; do
  grep -qF "$expected" <<<"$output" || { echo "missing in the console's answers: $expected" >&2; exit 1; }
done
grep -qxF "modules at stop: greeter" "$scratch/host.out" || { echo "the host did not keep the module" >&2; exit 1; }
