#!/usr/bin/env bash
# Server instructions per call, by scenario, under callgrind (issue 7's profiling).
#
# Instruction counts are repeatable on a busy machine, where calls/s are not: this is how
# hot-path changes were compared (BENCHMARKS.md, "How the server was tuned"). The Release
# server runs under `valgrind --tool=callgrind`; ta-loadgen drives each scenario with one
# channel and 4 calls in flight; counters are zeroed after a warm-up and dumped after N
# calls, so each figure covers the measured calls only (for introspect_distinct and
# refresh, the pre-issuing of their tokens is in the dump too; use it for comparisons).
# The dumps stay in the printed directory for callgrind_annotate.
#
# Usage: scripts/profile.sh [--calls N] SCENARIO...   (health introspect_same issue ...)
set -euo pipefail
cd "$(dirname "$0")/.."

N=4000
if [[ ${1:-} == --calls ]]; then N=$2; shift 2; fi
(($# > 0)) || { echo "usage: $0 [--calls N] SCENARIO..." >&2; exit 2; }
command -v valgrind >/dev/null || { echo "profile.sh: needs valgrind" >&2; exit 2; }

bash scripts/build.sh Release build/release token-authority ta-loadgen >/dev/null
OUT=$(mktemp -d /tmp/ta-profile-XXXXXX)
DATA=$OUT/data
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
  build/release/server/token-authority --listen=127.0.0.1:0 --data_dir="$DATA" \
  --default_audience=api >"$OUT/server.out" 2>"$OUT/server.err" &
VG=$!
trap 'kill "$VG" 2>/dev/null || true; wait "$VG" 2>/dev/null || true' EXIT
PORT=""
for _ in $(seq 600); do
  PORT=$(sed -n 's/^listening on 127.0.0.1://p' "$OUT/server.out")
  [[ -n $PORT ]] && break
  sleep 0.2
done
[[ -n $PORT ]] || { echo "server did not start under valgrind" >&2; cat "$OUT/server.err" >&2; exit 1; }

LG=(build/release/client/loadgen/ta-loadgen --server="127.0.0.1:$PORT"
    --api_key_file="$DATA/admin.key" --channels=1 --inflight=4 --threads=1)
for scenario in "$@"; do
  "${LG[@]}" --scenario="$scenario" --count=500 --duration=120s >/dev/null  # warm-up
  callgrind_control -z "$VG" >/dev/null 2>&1
  "${LG[@]}" --scenario="$scenario" --count="$N" --duration=600s >/dev/null
  callgrind_control -d "$scenario" "$VG" >/dev/null 2>&1
  dump=$(ls -t "$OUT"/callgrind.out.* | head -1)
  total=$(callgrind_annotate "$dump" 2>/dev/null | sed -n 's/^\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' |
          tr -d ,)
  echo "$scenario: $((total / N)) server instructions per call ($dump)"
done
