#!/usr/bin/env bash
# `make demo`: the cozmox command on the mock API's demo sessions.
#
#   bash scripts/with-mock.sh bash scripts/demo.sh [LUA_BIN]
#
# Prints each command before its output, as a terminal would show it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LUA_BIN=${1:-lua5.4}

# A LUA_INIT of the caller's would run first and could print or fail.
unset LUA_INIT LUA_INIT_5_1 LUA_INIT_5_2 LUA_INIT_5_3 LUA_INIT_5_4

# One of the demo sessions of spec/fixtures/demo/sessions.json.
SESSION=70fe0451-8264-41d4-92b0-82b83b97d402

run() {
  printf '$ cozmox %s\n' "$*"
  "$LUA_BIN" "$ROOT/bin/cozmox" "$@"
}

run get "$SESSION"
echo
run list --limit 6
