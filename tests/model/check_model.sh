#!/usr/bin/env bash
# check_model.sh [--long]: model-checks tests/model/watch.pml with Spin (issue 25 item 6).
#   1. the protocol as written: an exhaustive search must find no error (assertions and
#      invalid end states); the default run uses smaller bounds (2 revocations, 3 sequence
#      numbers, 3 ticks: ~10 M states), --long the model's own (3, 4, 5: far larger, not
#      part of any scripted run yet).
#   2. each BUG_* variant (one rule of the protocol removed) must fail: a check that cannot
#      fail proves nothing. Each stops at its first counterexample.
# Exits non-zero on any unexpected outcome; prints one line per run and a closing count.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v spin >/dev/null || { echo "check_model: spin is not installed (scripts/setup.sh)" >&2; exit 1; }
bounds=(-DNTOK=2 -DMAXSEQ=3 -DTMAX=3)
[[ ${1:-} == --long ]] && bounds=()
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0

check() {  # NAME EXPECT(pass|fail) SPIN_DEFINES...
  local name=$1 expect=$2
  shift 2
  local dir=$work/$name
  mkdir -p "$dir"
  cp "$here/watch.pml" "$dir/"
  (cd "$dir" && spin "$@" -a watch.pml >spin.log 2>&1 && gcc -O2 -DSAFETY -DCOLLAPSE -w -o pan pan.c)
  local out errors
  out=$(cd "$dir" && ./pan -m2000000 2>&1) || true
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' <<<"$out")
  local states
  states=$(awk '/states, stored/ {print $1}' <<<"$out")
  if [[ -z $errors ]]; then
    echo "check_model: $name: pan gave no verdict"; echo "$out" | tail -20; failed=$((failed + 1)); return
  fi
  if [[ $expect == pass && $errors == 0 && $out != *"Search not completed"* ]]; then
    echo "check_model: $name: no error in $states states (exhaustive)"; passed=$((passed + 1))
  elif [[ $expect == fail && $errors != 0 ]]; then
    local what
    what=$(grep -m1 -E 'assertion violated|invalid end state' <<<"$out" || true)
    echo "check_model: $name: counterexample found as it must be (${what#pan:1: })"; passed=$((passed + 1))
  else
    echo "check_model: $name: expected $expect, got errors=$errors"; echo "$out" | tail -20
    failed=$((failed + 1))
  fi
}

check protocol pass "${bounds[@]}"
for bug in BUG_NO_EPOCH BUG_BOOKMARK_NOW BUG_NO_STALE_RULE BUG_REAPER_NO_MARGIN BUG_RESET_KEEPS_TRUST; do
  check "$bug" fail "${bounds[@]}" "-D$bug"
done
echo "$passed passed, $failed failed"
((failed == 0))
