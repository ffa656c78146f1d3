#!/usr/bin/env bash
# libnonstop exports the host API and the module contract only: no symbol of nonstop::detail
# (the proxy, the name service, the upgrader and the rest of the framework's insides).
#   tests/exported_symbols.sh LIBRARY
set -euo pipefail
leaked=$(nm -D --defined-only "$1" | c++filt | grep 'nonstop::detail' || true)
if [ -n "$leaked" ]; then
  echo "exported_symbols: $1 exports private symbols:" >&2
  echo "$leaked" >&2
  exit 1
fi
echo "exported_symbols: $(nm -D --defined-only "$1" | c++filt | grep -c 'nonstop::') nonstop symbols exported, none of nonstop::detail"
