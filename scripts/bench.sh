#!/usr/bin/env bash
# End-to-end benchmarks (issue 7). Builds Release, starts token-authority on a fresh data dir,
# runs every load scenario with ta-loadgen (and h2load), runs Django REST Framework SimpleJWT
# side by side, and writes the results table into BENCHMARKS.md (between the markers).
# Every figure is a ratio against the gRPC health check measured in the same run.
# Loopback only; every load is bounded.
# Usage: scripts/bench.sh [--no-peer] [--seconds N] [--large N] [--allocators] [--store=S]
#        scripts/bench.sh --http [--seconds N]
#        scripts/bench.sh --replicas [--seconds N]
#        scripts/bench.sh --propagation [--samples N]
#        scripts/bench.sh --restart [--sizes "10000 1000000 10000000"]
#        scripts/bench.sh --verifier [--seconds N] [--samples N]
#   --store=S     both (default): the RocksDB rows, then issue/refresh/introspect on the
#                 PostgreSQL store (a local cluster, fsync and synchronous_commit on) and the
#                 SimpleJWT peer on SQLite and on that PostgreSQL. rocksdb: no PostgreSQL
#                 rows. postgres: the RocksDB baseline rows the ratios need and the PostgreSQL
#                 rows only (no RS256, h2load or latency runs).
#   --large N     also compare Introspect on stores seeded with N families + N denylisted
#                 jtis, and 1M of each when N is larger, against one seeded with 10k of each
#                 (calls/s and their ratio to 10k, peak RSS, restart to serving: to the
#                 "listening on" line and to the first Introspect answered).
#   --allocators  also run the allocator A/B: the same server on glibc malloc, jemalloc,
#                 mimalloc (LD_PRELOAD on a system-malloc build) and tcmalloc (as shipped).
#   --propagation only the replicas' propagation delay (issue 14): three servers on a throwaway
#                 PostgreSQL under a mixed load, a revocation on one, the time until the two
#                 others answer inactive (replica_tests "[propagation]", --samples N, default
#                 500; scripts/bench_propagation.sh); writes its own block of BENCHMARKS.md.
#   --restart     only restart to serving with N live revocations, from the view's checkpoint
#                 and reading the whole log, for each N of --sizes (default 10k, 1M, 10M;
#                 10M needs ~10 min and a few GB of disk and memory; scripts/bench_restart.sh);
#                 writes its own block of BENCHMARKS.md.
#   --http        only the HTTP face (issue 15): RFC 7662 introspection over HTTP/1.1 (wrk)
#                 against gRPC Introspect (ta-loadgen) on the same server, in alternating
#                 rounds of N s (default 5), and each face's empty handler; writes its own
#                 block of BENCHMARKS.md.
#   --replicas    only PostgreSQL replicas (issue 14): aggregate calls/s of one server and of
#                 three replicas on one local PostgreSQL (scripts/bench_replicas.sh); writes
#                 its own block of BENCHMARKS.md.
#   --verifier    only the verifier sidecar (issue 25 item 7): its RFC 7662 (wrk) and gRPC
#                 Introspect (ta-loadgen) against the authority it follows, alternating rounds
#                 of N s (default 5); revocation -> LocalVerifier::Verify inactive under load
#                 on one node and across three PostgreSQL replicas (--samples N, default 500;
#                 scripts/bench_verifier.sh); writes its own block of BENCHMARKS.md.
#   --snapshot    only the stream's snapshot (issue 27 item 4): scripts/bench_snapshot.sh with
#                 the arguments that follow (--sizes, --pg N, --build DIR); its own block.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
if [[ ${1:-} == --snapshot ]]; then shift; exec bash scripts/bench_snapshot.sh "$@"; fi

PEER=1
SECS=10
LARGE=0
ALLOCATORS=0
HTTP=0
REPLICAS=0
PROPAGATION=0
VERIFIER=0
RESTART=0
RESTART_SIZES="10000 1000000 10000000"
SAMPLES=500
STORE=both
while (($#)); do
  case $1 in
    --store=rocksdb|--store=postgres|--store=both) STORE=${1#--store=} ;;
    --no-peer) PEER=0 ;;
    --seconds) SECS=$2; shift ;;
    --large) LARGE=$2; shift ;;
    --allocators) ALLOCATORS=1 ;;
    --http) HTTP=1; PEER=0; STORE=rocksdb; [[ $SECS == 10 ]] && SECS=5 ;;
    --replicas) REPLICAS=1; PEER=0; STORE=rocksdb ;;
    --propagation) PROPAGATION=1; PEER=0 ;;
    --verifier) VERIFIER=1; PEER=0; STORE=rocksdb; [[ $SECS == 10 ]] && SECS=5 ;;
    --samples) SAMPLES=$2; shift ;;
    --restart) RESTART=1; PEER=0; STORE=rocksdb ;;
    --sizes) RESTART_SIZES=$2; shift ;;
    *) echo "usage: $0 [--no-peer] [--seconds N] [--large N] [--allocators] [--store=both|rocksdb|postgres] | --http | --replicas | --propagation [--samples N] | --restart [--sizes \"N...\"] | --verifier [--samples N]" >&2; exit 2 ;;
  esac
  shift
done

bash scripts/setup.sh
need=(nghttp2-client wrk util-linux)
((PEER)) && need+=(python3-djangorestframework-simplejwt gunicorn)
PGROWS=0; FULL=1
[[ $STORE != rocksdb ]] && PGROWS=1
[[ $STORE == postgres ]] && FULL=0
((PEER && PGROWS)) && need+=(python3-psycopg2)
((ALLOCATORS)) && need+=(libjemalloc2 libmimalloc2.0)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
targets=(token-authority ta-loadgen ta-seed)
((ALLOCATORS)) && targets+=(token-authority-system-malloc)
bash scripts/build.sh Release build/release "${targets[@]}" >/dev/null

WORK=$(mktemp -d)
PIDS=()
PGDIR=""  # the PostgreSQL cluster's directory once started
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n $PGDIR ]]; then bash scripts/pg_local.sh stop "$PGDIR" || true; rm -rf "$PGDIR"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# SERVER_BIN and SERVER_PRELOAD select the binary and an LD_PRELOAD (allocator A/B only).
SERVER_BIN=build/release/server/token-authority
SERVER_PRELOAD=""
start_server() {  # start_server DATA_DIR [flags...] -> sets PORT, SERVER_PID, START_MS
  local dir=$1
  shift
  local t0
  t0=$(date +%s%N)
  LD_PRELOAD=$SERVER_PRELOAD "$SERVER_BIN" --listen=127.0.0.1:0 --data_dir="$dir" \
    --default_audience=api "$@" >"$WORK/server.out" 2>"$WORK/server.err" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  START_T0=$t0
  for _ in $(seq 1500); do
    PORT=$(sed -n 's/^listening on 127.0.0.1://p' "$WORK/server.out")
    if [[ -n $PORT ]]; then
      START_MS=$((($(date +%s%N) - t0) / 1000000))
      return 0
    fi
    sleep 0.02
  done
  echo "server did not start" >&2; cat "$WORK/server.err" >&2; exit 1
}

# first_answer: after start_server, one Introspect (ta-loadgen issues a token, then
# introspects it); sets SERVE_MS to the time from the server's exec to that answer.
first_answer() {
  local line
  line=$(build/release/client/loadgen/ta-loadgen --server="127.0.0.1:$PORT" --channels=1 \
         --inflight=1 --threads=1 --api_key_file="$1/admin.key" --scenario=introspect_same \
         --count=1 --duration=60s | tail -1)
  [[ $line == *" errors=0"* ]] || { echo "first Introspect failed: $line" >&2; exit 1; }
  SERVE_MS=$((($(date +%s%N) - START_T0) / 1000000))
}

declare -A RPS P50 P99 P999 ERR
LG=(build/release/client/loadgen/ta-loadgen --channels=4 --inflight=32 --threads=2)
PIN=()  # a `taskset -c N` prefix for the generator in the pinned latency runs
run() {  # run LABEL SCENARIO [extra loadgen flags]
  local label=$1 scenario=$2
  shift 2
  local line
  line=$("${PIN[@]}" "${LG[@]}" --server="127.0.0.1:$PORT" --api_key_file="$DATA/admin.key" \
         --scenario="$scenario" --duration="${SECS}s" "$@" | tail -1)
  echo "  $label: $line"
  RPS[$label]=$(sed -n 's/.* rps=\([0-9]*\).*/\1/p' <<<"$line")
  P50[$label]=$(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' <<<"$line")
  P99[$label]=$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$line")
  P999[$label]=$(sed -n 's/.* p999_us=\([0-9]*\).*/\1/p' <<<"$line")
  ERR[$label]=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$line")
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

source scripts/bench_lib.sh  # write_block, wrk_record

if ((PROPAGATION)); then
  source scripts/bench_propagation.sh
  exit 0
fi
if ((VERIFIER)); then
  source scripts/bench_verifier.sh
  exit 0
fi
if ((HTTP)); then
  source scripts/bench_http.sh
  exit 0
fi
if ((REPLICAS)); then
  source scripts/bench_replicas.sh
  exit 0
fi
if ((RESTART)); then
  source scripts/bench_restart.sh
  exit 0
fi

echo "== token-authority ($(nproc) cores)"
DATA=$WORK/data
start_server "$DATA"
run health health
run introspect_same introspect_same
run introspect_distinct introspect_distinct --count=$((SECS * 3000))
# Writes vary most from run to run on a shared machine (fsync latency, background
# flushes): three alternating rounds, and the table shows the median round of each.
median_of() {  # median_of LABEL ROUND_LABEL... : copies the median round's figures to LABEL
  local label=$1 pick
  shift
  pick=$(for l in "$@"; do echo "${RPS[$l]} $l"; done | sort -n | sed -n "$(((${#} + 1) / 2))p" |
         cut -d' ' -f2)
  RPS[$label]=${RPS[$pick]}; P50[$label]=${P50[$pick]}; P99[$label]=${P99[$pick]}
  P999[$label]=${P999[$pick]}; ERR[$label]=${ERR[$pick]}
  ROUNDS[$label]=$(for l in "$@"; do printf '%s ' "${RPS[$l]}"; done)
}
declare -A ROUNDS
for round in 1 2 3; do
  run "refresh_$round" refresh --count=$((SECS * 2000))
  run "issue_$round" issue
done
median_of refresh refresh_1 refresh_2 refresh_3
median_of issue issue_1 issue_2 issue_3
run health_again health
# The cached-Introspect ratio again from alternating 5 s pairs, so that a slow spell of a
# shared machine falls on both sides of a pair; the median of three is reported.
PAIR_RATIOS=()
for _ in 1 2 3; do
  run pair_health health --duration=5s
  run pair_same introspect_same --duration=5s
  PAIR_RATIOS+=("$(ratio "${RPS[pair_same]}" "${RPS[pair_health]}")")
done
PAIR_MEDIAN=$(printf '%s\n' "${PAIR_RATIOS[@]}" | sort -n | sed -n 2p)
HALF=$((RPS[introspect_same] / 2))
run introspect_half_rate introspect_same --rate="$HALF"
H2_HEALTH=""; H2_INTRO=""
if ((FULL)); then
# Latency with the generator kept off the server's core: server threads on CPU 0, generator
# on CPU 1, so neither preempts the other; peak and half rate measured the same way.
for task in /proc/"$SERVER_PID"/task/*; do taskset -pc 0 "${task##*/}" >/dev/null; done
PIN=(taskset -c 1)
run pinned_peak introspect_same
PINNED_HALF=$((RPS[pinned_peak] / 2))
run pinned_half_rate introspect_same --rate="$PINNED_HALF"
PIN=()

echo "== h2load: health and cached Introspect as raw gRPC over HTTP/2"
TOKEN=$(build/release/client/loadgen/ta-loadgen --server="127.0.0.1:$PORT" \
        --api_key_file="$DATA/admin.key" --print_token 2>/dev/null | tail -1 || true)
if [[ -n $TOKEN ]]; then
  # gRPC framing: 1 byte "not compressed", 4 bytes big-endian length, then the message.
  printf '\x00\x00\x00\x00\x00' >"$WORK/health.bin"
  /usr/bin/python3 - "$TOKEN" "$WORK/introspect.bin" <<'PY'
import struct, sys
token = sys.argv[1].encode()
def varint(n):
    out = b""
    while True:
        b = n & 0x7F; n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n: return out
msg = b"\x0a" + varint(len(token)) + token          # IntrospectRequest{token = 1}
open(sys.argv[2], "wb").write(b"\x00" + struct.pack(">I", len(msg)) + msg)
PY
  H2=(h2load -D "$SECS" -c 4 -m 32 -t 2 -H "content-type: application/grpc" -H "te: trailers"
      -H "authorization: Bearer $(cat "$DATA/admin.key")")
  H2_HEALTH=$("${H2[@]}" -d "$WORK/health.bin" "http://127.0.0.1:$PORT/grpc.health.v1.Health/Check" |
              sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
  H2_INTRO=$("${H2[@]}" -d "$WORK/introspect.bin" \
             "http://127.0.0.1:$PORT/tokenauthority.v1.TokenAuthority/Introspect" |
             sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
  echo "  h2load health: ${H2_HEALTH} req/s; h2load introspect_same: ${H2_INTRO} req/s"
fi
kill "$SERVER_PID"; wait "$SERVER_PID" || true

echo "== RS256 signing key: verification 3x cheaper than ES256, signing 13x dearer"
DATA=$WORK/data-rs256
start_server "$DATA" --signing_alg=RS256
run rs256_health health
run rs256_introspect_distinct introspect_distinct --count=$((SECS * 3000))
run rs256_issue issue
fi  # FULL
kill "$SERVER_PID"; wait "$SERVER_PID" || true

if ((PGROWS)); then
  echo "== PostgreSQL store (local PostgreSQL 15, fsync and synchronous_commit on)"
  PGDIR=$(mktemp -d /tmp/ta-bench-pg-XXXXXX)
  PGDSN=$(bash scripts/pg_local.sh start "$PGDIR")
  PSQL=(/usr/lib/postgresql/15/bin/psql -qX -h "$PGDIR" -U postgres -d postgres)
  "${PSQL[@]}" -c "CREATE DATABASE tokens" -c "CREATE DATABASE simplejwt"
  DATA=$WORK/data-pg
  (umask 077; openssl rand -base64 32 > "$WORK/kek")
  start_server "$DATA" --store=postgres --postgres_dsn="$PGDSN dbname=tokens" \
    --key_encryption_key_file="$WORK/kek"
  run pg_health health
  run pg_introspect_same introspect_same
  run pg_introspect_distinct introspect_distinct --count=$((SECS * 3000))
  for round in 1 2 3; do
    run "pg_refresh_$round" refresh --count=$((SECS * 2000))
    run "pg_issue_$round" issue
  done
  median_of pg_refresh pg_refresh_1 pg_refresh_2 pg_refresh_3
  median_of pg_issue pg_issue_1 pg_issue_2 pg_issue_3
  PG_DB_MB=$("${PSQL[@]}" -d tokens -tAc "SELECT pg_database_size('tokens') / 1048576")
  kill "$SERVER_PID"; wait "$SERVER_PID" || true
fi

ALLOC_ROWS=""
if ((ALLOCATORS)); then
  echo "== allocator A/B (same server code; jemalloc/mimalloc by LD_PRELOAD)"
  lib=/usr/lib/x86_64-linux-gnu
  for round in 1 2; do
    for alloc in glibc jemalloc mimalloc tcmalloc; do
      SERVER_BIN=build/release/server/token-authority-system-malloc
      case $alloc in
        glibc) SERVER_PRELOAD="" ;;
        jemalloc) SERVER_PRELOAD=$lib/libjemalloc.so.2 ;;
        mimalloc) SERVER_PRELOAD=$lib/libmimalloc.so.2 ;;
        tcmalloc) SERVER_BIN=build/release/server/token-authority; SERVER_PRELOAD="" ;;
      esac
      DATA=$WORK/alloc-$alloc-$round
      start_server "$DATA"
      run "a_health" health
      run "a_same" introspect_same
      run "a_refresh" refresh --count=$((SECS * 2000))
      run "a_issue" issue
      rss_mb=$(awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$SERVER_PID/status")
      kill "$SERVER_PID"; wait "$SERVER_PID" || true
      ALLOC_ROWS+="| $alloc | $round | ${RPS[a_health]} | ${RPS[a_same]} | $(ratio "${RPS[a_same]}" "${RPS[a_health]}") | ${RPS[a_refresh]} | ${RPS[a_issue]} | $rss_mb |"$'\n'
    done
  done
  SERVER_BIN=build/release/server/token-authority; SERVER_PRELOAD=""
fi

LARGE_ROWS=""
LARGE_SIZES=""
if ((LARGE > 0)); then
  # 10k, 1M (when N is larger) and N: introspection at each size against the 10k figure.
  LARGE_SIZES="10000"
  ((LARGE > 1000000)) && LARGE_SIZES+=" 1000000"
  ((LARGE > 10000)) && LARGE_SIZES+=" $LARGE"
  echo "== store size: $LARGE_SIZES families and denylisted jtis"
  declare -A FIRST_MS FIRST_RSS
  for n in $LARGE_SIZES; do
    DATA=$WORK/seeded-$n
    mkdir -p "$DATA"
    seed_out=$(build/release/storage/ta-seed --path="$DATA/db" --families="$n" --jtis="$n")
    echo "  $seed_out"
    # First start: keys, admin key; it reads the whole log, and its clean shutdown writes the
    # view's checkpoint that the measured starts load.
    start_server "$DATA"
    FIRST_MS[$n]=$START_MS FIRST_RSS[$n]=$(awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$SERVER_PID/status")
    echo "  $n first start (whole log): listening ${FIRST_MS[$n]} ms, peak RSS ${FIRST_RSS[$n]} MiB"
    kill "$SERVER_PID"; wait "$SERVER_PID" || true
  done
  # All sizes are measured in alternating rounds (10k, 1M, N, 10k, 1M, N), so that a slower
  # spell of a shared machine does not land on one store size only.
  declare -A SUM_SAME SUM_DISTINCT
  for round in 1 2; do
    for n in $LARGE_SIZES; do
      DATA=$WORK/seeded-$n
      start_server "$DATA"  # measured: open-to-serving on an existing store
      restart_ms=$START_MS
      first_answer "$DATA"
      serve_ms=$SERVE_MS
      echo "  $n round $round: listening ${restart_ms} ms, first Introspect ${serve_ms} ms;" \
           "$(grep -h 'revocation view:\|started in' "$WORK/server.err" | tr '\n' ' ')"
      run "same_$n" introspect_same
      run "distinct_$n" introspect_distinct --count=$((SECS * 3000))
      rss_mb=$(awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$SERVER_PID/status")
      kill "$SERVER_PID"; wait "$SERVER_PID" || true
      SUM_SAME[$n]=$((${SUM_SAME[$n]:-0} + RPS[same_$n]))
      SUM_DISTINCT[$n]=$((${SUM_DISTINCT[$n]:-0} + RPS[distinct_$n]))
      LARGE_ROWS+="| $n | $round | ${RPS[same_$n]} | ${RPS[distinct_$n]} | ${rss_mb} | ${restart_ms} | ${serve_ms} |"$'\n'
    done
  done
  LARGE_RATIOS=""
  for n in $LARGE_SIZES; do
    ((n == 10000)) && continue
    LARGE_RATIOS+="$n / 10k: introspect_same $(ratio "${SUM_SAME[$n]}" "${SUM_SAME[10000]}"),"
    LARGE_RATIOS+=" introspect_distinct $(ratio "${SUM_DISTINCT[$n]}" "${SUM_DISTINCT[10000]}"); "
  done
  LARGE_RATIOS=${LARGE_RATIOS%; }
  LARGE_LOAD=$(uptime | sed 's/.*load average: //')
fi

source scripts/bench_peer.sh  # the SimpleJWT peer: sets SJ_* and SJPG_*

table() {
  local base=${RPS[health]}
  cat <<EOF
Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),
load generator and server on the same machine, \`scripts/bench.sh --seconds $SECS$( ((LARGE)) && echo " --large $LARGE")$( ((ALLOCATORS)) && echo " --allocators")\`
(ta-loadgen: 4 channels x 32 in flight, 2 client threads; synced WAL on).

| scenario | calls/s | ratio to health | p50 µs | p99 µs | p999 µs | errors |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
EOF
  for l in health introspect_same introspect_distinct refresh issue health_again introspect_half_rate; do
    echo "| $l | ${RPS[$l]} | $(ratio "${RPS[$l]}" "$base") | ${P50[$l]} | ${P99[$l]} | ${P999[$l]} | ${ERR[$l]} |"
  done
  echo
  echo "refresh and issue: median of three alternating rounds (calls/s: refresh ${ROUNDS[refresh]% };"
  echo "issue ${ROUNDS[issue]% })."
  echo
  echo "Alternating 5 s pairs of health and introspect_same: ratios ${PAIR_RATIOS[*]}; median $PAIR_MEDIAN."
  echo
  if ((FULL)); then
  echo "Latency with the server's threads on CPU 0 and the generator on CPU 1 (\`taskset\`),"
  echo "peak and half of it measured that way; and a server signing with RS256 instead of ES256:"
  echo
  echo "| scenario | calls/s | ratio | p50 µs | p99 µs | p999 µs | errors |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for l in pinned_peak pinned_half_rate; do
    echo "| $l | ${RPS[$l]} | $(ratio "${RPS[$l]}" "${RPS[pinned_peak]}") to pinned peak | ${P50[$l]} | ${P99[$l]} | ${P999[$l]} | ${ERR[$l]} |"
  done
  for l in rs256_health rs256_introspect_distinct rs256_issue; do
    echo "| $l | ${RPS[$l]} | $(ratio "${RPS[$l]}" "${RPS[rs256_health]}") to rs256_health | ${P50[$l]} | ${P99[$l]} | ${P999[$l]} | ${ERR[$l]} |"
  done
  fi  # FULL
  if [[ -n $H2_HEALTH ]]; then
    echo
    echo "h2load (-c 4 -m 32 -t 2): health ${H2_HEALTH} req/s; introspect_same ${H2_INTRO} req/s" \
         "(ratio $(ratio "${H2_INTRO%.*}" "${H2_HEALTH%.*}"))."
  fi
  if ((LARGE > 0)); then
    echo
    echo "Store size (ta-seed: N families + N denylisted jtis, so N live revocations in the"
    echo "view; a first start reads the whole log and its clean shutdown writes the view's"
    echo "checkpoint; each measured start loads it. Introspect of freshly issued tokens, so every"
    echo "call also misses the N-entry view; sizes alternated in two rounds; load average at the"
    echo "end: $LARGE_LOAD):"
    echo
    echo "| records (each) | round | introspect_same calls/s | introspect_distinct calls/s | peak RSS MiB | restart to listening ms | restart to first Introspect ms |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    printf '%s' "$LARGE_ROWS"
    echo
    echo "Ratio to 10k over both rounds: $LARGE_RATIOS."
    echo
    echo "The same run's first start of each store (no checkpoint yet: the whole log read), the"
    echo "baseline for the restarts above: $(for n in $LARGE_SIZES; do printf '%s: %s ms, %s MiB; ' "$n" "${FIRST_MS[$n]}" "${FIRST_RSS[$n]}"; done | sed 's/; $//')."
  fi
  if ((PEER)); then
    echo
    echo "SimpleJWT 5.2 (Django, gunicorn 2 sync workers, SQLite, ROTATE_REFRESH_TOKENS +"
    echo "BLACKLIST_AFTER_ROTATION, HS256; wrk -t 2 -c 8):"
    echo
    echo "| | SimpleJWT req/s | token-authority calls/s | token-authority / SimpleJWT |"
    echo "| --- | ---: | ---: | ---: |"
    echo "| verify (SimpleJWT verify vs our Introspect, distinct tokens) | $SJ_VERIFY | ${RPS[introspect_distinct]} | $(ratio "${RPS[introspect_distinct]}" "${SJ_VERIFY%.*}") |"
    echo "| refresh with rotation | $SJ_REFRESH (non-2xx: ${SJ_REFRESH_ERR:-0}) | ${RPS[refresh]} | $(ratio "${RPS[refresh]}" "${SJ_REFRESH%.*}") |"
  fi
}

# The PostgreSQL rows, in a block of BENCHMARKS.md of their own (so `--store=postgres` leaves
# the full table alone).
pg_table() {
  cat <<EOF
Measured $(date -u +%Y-%m-%d) on $(nproc) cores, \`scripts/bench.sh --seconds $SECS --store=$STORE\`:
the server on a local PostgreSQL 15 sharing the machine with it and the load generator
(Unix socket; fsync, synchronous_commit and every other setting at Debian's defaults; the
server's 16 pooled connections), beside the RocksDB figures of the same run (synced WAL).
Database size after the run: ${PG_DB_MB} MiB.

| scenario | PostgreSQL calls/s | RocksDB calls/s | PostgreSQL / RocksDB | p50 µs | p99 µs | p999 µs | errors |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
EOF
  for l in health introspect_same introspect_distinct refresh issue; do
    echo "| $l | ${RPS[pg_$l]} | ${RPS[$l]} | $(ratio "${RPS[pg_$l]}" "${RPS[$l]}") | ${P50[pg_$l]} | ${P99[pg_$l]} | ${P999[pg_$l]} | ${ERR[pg_$l]} |"
  done
  echo
  echo "refresh and issue: median of three alternating rounds (PostgreSQL calls/s: refresh"
  echo "${ROUNDS[pg_refresh]% }; issue ${ROUNDS[pg_issue]% })."
  if ((PEER)); then
    echo
    echo "SimpleJWT on the same PostgreSQL (psycopg2; otherwise as in the table above):"
    echo
    echo "| | SimpleJWT req/s | token-authority calls/s | token-authority / SimpleJWT |"
    echo "| --- | ---: | ---: | ---: |"
    echo "| verify vs Introspect, distinct tokens | $SJPG_VERIFY | ${RPS[pg_introspect_distinct]} | $(ratio "${RPS[pg_introspect_distinct]}" "${SJPG_VERIFY%.*}") |"
    echo "| refresh with rotation | $SJPG_REFRESH (non-2xx: ${SJPG_REFRESH_ERR:-0}) | ${RPS[pg_refresh]} | $(ratio "${RPS[pg_refresh]}" "${SJPG_REFRESH%.*}") |"
  fi
}

alloc_table() {
  echo "Measured $(date -u +%Y-%m-%d), \`scripts/bench.sh --allocators\` (two interleaved rounds; the"
  echo "same server code, glibc/jemalloc/mimalloc by LD_PRELOAD on a system-malloc build;"
  echo "refresh and issue with synced WAL):"
  echo
  echo "| allocator | round | health | introspect_same | ratio | refresh | issue | peak RSS MiB |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  printf '%s' "$ALLOC_ROWS"
}

RESULT=""
((FULL)) && RESULT=$(table)
PG_RESULT=""
((PGROWS)) && PG_RESULT=$(pg_table)
ALLOC_RESULT=""
((ALLOCATORS)) && ALLOC_RESULT=$(alloc_table)
echo
[[ -n $RESULT ]] && echo "$RESULT"
[[ -n $PG_RESULT ]] && echo && echo "$PG_RESULT"
[[ -n $ALLOC_RESULT ]] && echo && echo "$ALLOC_RESULT"
MD=BENCHMARKS.md
[[ -f $MD ]] || printf '# Benchmarks\n\n<!-- bench:begin -->\n<!-- bench:end -->\n' >"$MD"
# Each block is replaced only when this run produced it (the allocator A/B is optional).
/usr/bin/python3 - "$MD" "$RESULT" "$ALLOC_RESULT" "$PG_RESULT" <<'PY'
import sys
path, result, alloc, pg = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
text = open(path).read()
def replace(text, name, body):
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if begin not in text:
        text = text.replace("<!-- bench:end -->", f"<!-- bench:end -->\n\n{begin}\n{end}", 1)
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + begin + "\n" + body + "\n" + end + tail
if result:
    text = replace(text, "bench", result)
if pg:
    text = replace(text, "postgres", pg)
if alloc:
    text = replace(text, "alloc", alloc)
open(path, "w").write(text)
PY
echo "wrote $MD"
