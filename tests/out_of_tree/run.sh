#!/usr/bin/env bash
# Installs the built nonstop into a scratch prefix, configures and builds this project against
# it, and runs its host. Arguments: the nonstop build directory, a scratch directory.
set -euo pipefail
build="$1"; scratch="$2"
here="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$scratch"
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
cmake -S "$here" -B "$scratch/build" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/build" -j2 >/dev/null
output="$("$scratch/build/greeter_host")"
echo "$output"
# Both versions served, the count continued across the replacement, nothing was lost.
for expected in "greeter v1 answered 2 to host" "replace greeter libgreeter_v2.so: committed" \
                "greeter v2 answered 3 to host" "unload greeter: committed"; do
  grep -qF "$expected" <<<"$output" || { echo "missing: $expected" >&2; exit 1; }
done
