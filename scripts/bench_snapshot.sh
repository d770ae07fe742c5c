#!/usr/bin/env bash
# bench_snapshot.sh [--sizes "10000 1000000 10000000"] [--pg N] [--build DIR] [--no-write]
# (also: scripts/bench.sh --snapshot ...): how long a new watcher takes to receive the
# WatchRevocations snapshot of N live revocations, its bytes on the wire per entry, and the
# memory it costs (issue 27 item 4; BENCHMARKS.md "The stream's snapshot").
#
# For each N: ta-seed fills a RocksDB store with N denylisted jtis (N live entries of the
# revocation log, live for an hour; `--families=0`), the real server starts on it, and
# tests/client/snapshot_bench times, one after the other, a raw gRPC reader asking for batches
# (`raw`), one without (`raw1`, one message per entry as every watcher before batches; up to
# 1 M only: 10 M would take minutes), and the C++ LocalVerifier (`verifier`: Create until its
# view is current, i.e. the snapshot and then one bookmark). Each from the call's start to
# end_of_snapshot. Bytes on the wire: the serialized messages + 5 bytes per message (gRPC's
# length prefix) + 9 per HTTP/2 DATA frame (16 KiB frames; HPACK'd headers and WINDOW_UPDATEs
# not counted). Peak RSS: the watcher's VmHWM; the server's VmRSS sampled every 50 ms during
# each watch (its rise over the idle server is what the watch costs).
# --pg N: also a replica on a local PostgreSQL 15 seeded with N log rows by SQL (raw + verifier).
# --build DIR: use the binaries of an existing build (default: a Release build in build/release).
# SNAPSHOT_SEEDED=DIR: use DIR/snap-N/db when it exists (seeded before; kept) instead of seeding.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh  # write_block
SIZES="10000 1000000 10000000"
PG_N=0
BUILD=build/release
WRITE=1
while (($#)); do
  case $1 in
    --sizes) SIZES=$2; shift ;;
    --pg) PG_N=$2; shift ;;
    --build) BUILD=$2; shift ;;
    --no-write) WRITE=0 ;;
    *) echo "usage: $0 [--sizes \"N...\"] [--pg N] [--build DIR] [--no-write]" >&2; exit 2 ;;
  esac
  shift
done
if [[ $BUILD == build/release ]]; then
  bash scripts/build.sh Release build/release token-authority ta-seed snapshot_bench >/dev/null
fi
SERVER_BIN=$BUILD/server/token-authority
SEED_BIN=$BUILD/storage/ta-seed
BENCH_BIN=$BUILD/tests/client/snapshot_bench

WORK=$(mktemp -d)
PIDS=()
PGDIR=""
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n $PGDIR ]]; then bash scripts/pg_local.sh stop "$PGDIR" || true; rm -rf "$PGDIR"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
rss_mb() { awk -v f="$2" '$1 == f":" {printf "%d", $2 / 1024}' "/proc/$1/status"; }
start_server() {  # start_server DATA_DIR [flags...] -> SERVER_PID, PORT, START_MS
  local dir=$1 t0
  shift
  mkdir -p "$dir"
  t0=$(date +%s%N)
  "$SERVER_BIN" --listen=127.0.0.1:0 --data_dir="$dir" --default_audience=api --audit_log=off \
    "$@" >"$dir.out" 2>"$dir.err" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 30000); do
    PORT=$(sed -n 's/^listening on 127.0.0.1://p' "$dir.out")
    [[ -n $PORT ]] && { START_MS=$(ms_since "$t0"); return 0; }
    sleep 0.02
  done
  echo "server did not start" >&2; cat "$dir.err" >&2; exit 1
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" || true; }
cpu_s() {  # cpu_s PID: user + system CPU seconds so far
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}
# watch MODE KEY_FILE: runs snapshot_bench, sampling the server's RSS; sets LINE, SERVER_PEAK.
watch() {
  local mode=$1 key=$2 sampler
  (peak=0; while kill -0 "$SERVER_PID" 2>/dev/null; do
     r=$(rss_mb "$SERVER_PID" VmRSS); ((r > peak)) && { peak=$r; echo "$peak" >"$WORK/peak"; }
     sleep 0.05; done) &
  sampler=$!
  local cpu0
  cpu0=$(cpu_s "$SERVER_PID")
  LINE=$("$BENCH_BIN" --server="127.0.0.1:$PORT" --api_key_file="$key" --mode="$mode")
  SERVER_CPU=$(awk -v a="$(cpu_s "$SERVER_PID")" -v b="$cpu0" 'BEGIN {printf "%.1f", a - b}')
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  SERVER_PEAK=$(cat "$WORK/peak")
  rm -f "$WORK/peak"
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$LINE"; }
per() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }'; }
ROWS=""
row() {  # row STORE N MODE IDLE_RSS: appends the table row of LINE
  local entries ms wire msgs
  entries=$(field entries) ms=$(field ms) wire=$(field wire_bytes) msgs=$(field messages)
  echo "  $1 $2 $3: $LINE server_cpu_s=$SERVER_CPU server_rss_mb=$SERVER_PEAK (idle $4)"
  ROWS+="| $1 | $2 | $3 | ${ms%.*} | $(per "$entries" "$(awk -v m="$ms" 'BEGIN{print m/1000}')") |"
  ROWS+=" $(field cpu_s) / $SERVER_CPU | ${msgs:-} | ${wire:+$(per "$wire" "$entries")} |"
  ROWS+=" $(field rss_mb) | $4 → $SERVER_PEAK |"$'\n'
}

echo "== the stream's snapshot ($(nproc) cores): N live revocations (denylisted jtis)"
for n in $SIZES; do
  DATA=$WORK/snap-$n
  if [[ -n ${SNAPSHOT_SEEDED:-} && -d $SNAPSHOT_SEEDED/snap-$n/db ]]; then
    DATA=$SNAPSHOT_SEEDED/snap-$n  # seeded before (kept): ta-seed --families=0 --jtis=N
  else
    mkdir -p "$DATA"
    t0=$(date +%s%N)
    "$SEED_BIN" --path="$DATA/db" --families=0 --jtis="$n" >/dev/null
    echo " $n: seeded in $(ms_since "$t0") ms"
  fi
  start_server "$DATA"
  sleep 1
  idle=$(rss_mb "$SERVER_PID" VmRSS)
  echo " $n: server serving after ${START_MS} ms, ${idle} MiB"
  modes=(raw verifier)
  ((n <= 1000000)) && modes=(raw raw1 verifier)
  for mode in "${modes[@]}"; do
    watch "$mode" "$DATA/admin.key"
    row rocksdb "$n" "$mode" "$idle"
  done
  stop_server
  if [[ $DATA == "$WORK"/* ]]; then rm -rf "$DATA"; fi
done

if ((PG_N > 0)); then
  PGDIR=$(mktemp -d /tmp/ta-bench-pg-XXXXXX)
  PGDSN=$(bash scripts/pg_local.sh start "$PGDIR")
  PSQL=(/usr/lib/postgresql/15/bin/psql -qX -h "$PGDIR" -U postgres)
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE snap"
  (umask 077; openssl rand -base64 32 >"$WORK/kek")
  DATA=$WORK/pg
  start_server "$DATA" --store=postgres --postgres_dsn="$PGDSN dbname=snap" \
    --key_encryption_key_file="$WORK/kek"
  stop_server
  t0=$(date +%s%N)
  "${PSQL[@]}" -d snap -c "INSERT INTO ta_revocations SELECT g, 1, convert_to('seed-jti-' || g, 'UTF8'),
      (extract(epoch from now()) * 1e6)::int8, (extract(epoch from now() + interval '1 hour') * 1e6)::int8
      FROM generate_series(1, $PG_N) g" \
    -c "UPDATE ta_meta SET value = $PG_N WHERE name = 'revocation_seq'"
  echo " postgres $PG_N: seeded in $(ms_since "$t0") ms"
  start_server "$DATA" --store=postgres --postgres_dsn="$PGDSN dbname=snap" \
    --key_encryption_key_file="$WORK/kek"
  sleep 1
  idle=$(rss_mb "$SERVER_PID" VmRSS)
  echo " postgres $PG_N: replica serving after ${START_MS} ms, ${idle} MiB"
  for mode in raw verifier; do
    watch "$mode" "$DATA/admin.key"
    row postgres "$PG_N" "$mode" "$idle"
  done
  stop_server
fi

RESULT=$(cat <<MD
Measured $(date -u +%Y-%m-%d) on $(nproc) cores (shared with other work: figures vary run to run),
\`scripts/bench_snapshot.sh --sizes "$SIZES"$( ((PG_N)) && echo " --pg $PG_N")\` (= \`scripts/bench.sh --snapshot ...\`):
N live revocations (ta-seed's denylisted jtis, 16-19 character ids), the real server, then one
watcher at a time from the call's start to \`end_of_snapshot\`: \`raw\` a gRPC reader asking for
\`batches\` (parses every message, holds nothing), \`raw1\` one without (one message per entry),
\`verifier\` the C++ LocalVerifier from Create until current (snapshot + one bookmark, up to
200 ms more). B/entry on the wire: serialized messages + 5 B gRPC prefix per message + 9 B per
16 KiB HTTP/2 DATA frame. CPU s: user + system seconds the watcher process and the server
used for the watch (what it costs whatever else runs). Watcher RSS: its VmHWM; server RSS:
idle → peak VmRSS during the watch.

| store | N | watcher | ms | entries/s | CPU s watcher / server | messages | B/entry on the wire | watcher peak RSS MiB | server RSS MiB |
| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${ROWS%$'\n'}
MD
)
echo
echo "$RESULT"
if ((WRITE)); then
  write_block snapshot "$RESULT" "The stream's snapshot (issue 27 item 4)"
fi
