#!/usr/bin/env bash
# ctest `memory_vs_length_script` (label e2e): scripts/bench/memory_vs_length.sh on 1 s and 2 s of audio prints one
# row per length with the frame count emo probe reads back and a peak RSS, and its bad inputs exit with a message.
#   tests/scripts/test_memory_vs_length.sh path/to/emo
set -uo pipefail
emo="$1"
script="$(cd "$(dirname "$0")/../.." && pwd)/scripts/bench/memory_vs_length.sh"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$script" --emo "$emo" --lengths "1 2" --work "$work" 2>"$work/err") || fail "rc $? on 1 s and 2 s: $(tail -3 "$work/err")"
echo "$out"
row1=$(grep -E '^\| 1 s \|' <<<"$out") || fail "no row for 1 s"
row2=$(grep -E '^\| 2 s \|' <<<"$out") || fail "no row for 2 s"
[[ $(awk -F'|' '{gsub(/ /, "", $3); print $3}' <<<"$row1") == 25 ]] || fail "1 s should be 25 frames: $row1"
[[ $(awk -F'|' '{gsub(/ /, "", $3); print $3}' <<<"$row2") == 50 ]] || fail "2 s should be 50 frames: $row2"
awk -F'|' '{ if ($4 + 0 < 100) exit 1 }' <<<"$row2" || fail "peak RSS not a plausible MiB figure: $row2"

"$script" --bogus >/dev/null 2>"$work/err"; rc=$?
[[ $rc == 2 ]] && grep -q "unknown option --bogus" "$work/err" || fail "unknown option: rc $rc, $(cat "$work/err")"
"$script" --emo "$work/none" >/dev/null 2>"$work/err"; rc=$?
[[ $rc == 2 ]] && grep -q "not an executable" "$work/err" || fail "missing emo: rc $rc, $(cat "$work/err")"
"$script" --emo "$emo" --lengths 1 --work "$work" -- --no-such-option >/dev/null 2>"$work/err"; rc=$?
[[ $rc == 1 ]] && grep -q "emo generate failed for 1 s of audio" "$work/err" || fail "failing render: rc $rc, $(tail -2 "$work/err")"
echo "PASS"
