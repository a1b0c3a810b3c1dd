#!/usr/bin/env bash
# Run the decoder fuzzer for a while and say what it found.
#
#   bash fuzz/run.sh BUILD/fuzz_decode SECONDS     (make fuzz does this)
#
# Seeds fuzz/corpus (gitignored) from spec/fixtures -- every JSONTestSuite
# file and session.json -- and fuzz/seeds (wide-nested-*: containers of 63
# members nested until more than 1500 values wait on the Lua stack, the
# decoder's STACK_SOFT_LIMIT flush; big-integers: for big_integers), each
# behind 4 parameter bytes (see the top of fuzz/fuzz_decode.c).  The
# corpus keeps growing across runs.  libFuzzer's output is shown without
# its NEW/REDUCE lines (the full log is kept in build/fuzz/fuzz.log);
# crash, leak, timeout and oom artifacts go to fuzz/ (gitignored).  Ends
# with one line "fuzz: N executions in S s, ..." and exits non-zero if
# anything was found.
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 FUZZ_BINARY SECONDS" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
seconds=$2
cd "$ROOT" || exit 1

corpus=fuzz/corpus
log=$(dirname "$bin")/fuzz.log
mkdir -p "$corpus"
# Parameter bytes 0x01 0x42 0x83 0x04: two cuts, default options; the
# fuzz/seeds files also with 0x44 (big_integers = "string").
for f in spec/fixtures/session.json spec/fixtures/JSONTestSuite/test_parsing/*.json fuzz/seeds/*.json; do
  out="$corpus/seed-$(basename "$f")"
  [ -e "$out" ] || { printf '\001\102\203\004'; cat "$f"; } > "$out"
done
for f in fuzz/seeds/*.json; do
  out="$corpus/seed-big-strings-$(basename "$f")"
  [ -e "$out" ] || { printf '\001\102\203\104'; cat "$f"; } > "$out"
done

stamp=$(mktemp "${TMPDIR:-/tmp}/cozmox-fuzz.XXXXXX")
trap 'rm -f "$stamp"' EXIT
echo "fuzz: $bin for ${seconds}s, corpus $corpus ($(find "$corpus" -type f | wc -l) files)"
# -max_len=8192: without it libFuzzer grows inputs up to the largest seed
# (250 KB) and runs 5 times slower; every code path is reached well below.
"$bin" -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 -timeout=30 \
  -artifact_prefix="$ROOT/fuzz/" "$corpus" 2>&1 |
  tee "$log" | grep --line-buffered -Ev '^#[0-9]+[[:space:]]+(NEW|REDUCE)[[:space:]]'
rc=${PIPESTATUS[0]}

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
found=$(find fuzz -maxdepth 1 -type f -newer "$stamp" \
  \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) | sort)

covtext="cov ${cov:-?} ft ${ft:-?}"
[ -n "$cov" ] || covtext="before the first coverage report"
if [ -n "$found" ] || [ "$rc" -ne 0 ]; then
  echo "fuzz: ${execs:-?} executions, $covtext: FOUND a problem (exit status $rc):"
  for f in $found; do echo "  $f   (replay: $bin $f)"; done
  exit 1
fi
echo "fuzz: ${execs:-?} executions in ${secs:-$seconds} s, $covtext, corpus ${corp:-?}: nothing found"
