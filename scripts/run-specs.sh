#!/usr/bin/env bash
# Run the busted specs under one Lua interpreter and summarize.
#
#   bash scripts/run-specs.sh LUA_BIN [BUSTED ARGS...]
#
# Runs from the repository root (relative spec paths are taken from there);
# without paths busted runs everything under spec/. LUA_PATH and LUA_CPATH
# pass through unchanged (the Makefile points them at the in-tree modules).
# Output is shown live; the last line is always "N passed, N failed"
# (failed = busted's failures + errors). Exits non-zero when anything failed
# or when busted ended without its summary line (crash, bad arguments).
set -uo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 LUA_BIN [BUSTED ARGS...]" >&2
  exit 2
fi
LUA_BIN=$1
shift

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

if ! command -v busted >/dev/null 2>&1; then
  echo "run-specs.sh: busted not found (run: bash scripts/deps.sh)"
  echo "0 passed, 1 failed"
  exit 1
fi

log=$(mktemp "${TMPDIR:-/tmp}/cozmox-specs.XXXXXX")
trap 'rm -f "$log"' EXIT

# `busted --lua=X` re-executes busted under interpreter X (checked: a spec
# asserting _VERSION == "Lua 5.4" passes with --lua=lua5.4).
busted --lua="$LUA_BIN" "$@" 2>&1 | tee "$log"
busted_rc=${PIPESTATUS[0]}

# Busted's summary: "12 successes / 1 failure / 0 errors / 2 pending : 0.5 seconds"
# (singular forms for 1; colour codes stripped in case of a terminal).
summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" |
  grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' |
  tail -n 1)

if [ -z "$summary" ]; then
  echo "run-specs.sh: busted printed no summary (exit status $busted_rc)"
  echo "0 passed, 1 failed"
  exit 1
fi

read -r passed _ _ failures _ _ errors _ <<<"$summary"
failed=$((failures + errors))
echo "$passed passed, $failed failed"

if [ "$failed" -ne 0 ] || [ "$busted_rc" -ne 0 ]; then
  exit 1
fi
exit 0
