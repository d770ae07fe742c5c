# Sourced by scripts/bench.sh --replicas (uses its SERVER_BIN, LG, PIDS, WORK, SECS, ratio and
# the RPS/P50/P99/ERR tables): aggregate calls/s of one server and of three replicas on one
# local PostgreSQL 15 (each configuration on a fresh database; the replicas share the key ring
# under one KEK and one admin key). On a 2-core machine the three replicas, PostgreSQL and the
# load generator share the same cores: the figures show what replicas cost, not how they scale.
echo "== one server vs three replicas on one PostgreSQL ($(nproc) cores, ${SECS} s per run)"
PGDIR=$(mktemp -d /tmp/ta-bench-pg-XXXXXX)
PGDSN=$(bash scripts/pg_local.sh start "$PGDIR")
PSQL=(/usr/lib/postgresql/15/bin/psql -qX -h "$PGDIR" -U postgres -d postgres)
"${PSQL[@]}" -c "CREATE DATABASE one" -c "CREATE DATABASE three"
(umask 077; openssl rand -base64 32 >"$WORK/kek"; openssl rand -hex 24 >"$WORK/admin.key")

REPLICA_ADDRS=()
start_replica() {  # start_replica NAME DATABASE: appends its address to REPLICA_ADDRS
  local dir=$WORK/$1
  mkdir -p "$dir"
  (umask 077; cp "$WORK/admin.key" "$dir/admin.key")
  "$SERVER_BIN" --listen=127.0.0.1:0 --data_dir="$dir" --default_audience=api \
    --store=postgres --postgres_dsn="$PGDSN dbname=$2" --key_encryption_key_file="$WORK/kek" \
    --audit_log=off >"$dir/out" 2>"$dir/err" &
  PIDS+=("$!")
  local port=""
  for _ in $(seq 1500); do
    port=$(sed -n 's/^listening on 127.0.0.1://p' "$dir/out")
    [[ -n $port ]] && break
    sleep 0.02
  done
  [[ -n $port ]] || { echo "replica $1 did not start" >&2; cat "$dir/err" >&2; exit 1; }
  REPLICA_ADDRS+=("127.0.0.1:$port")
}
stop_replicas() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
  REPLICA_ADDRS=()
}
lg_run() {  # lg_run LABEL SCENARIO [loadgen flags]: against every address in REPLICA_ADDRS
  local label=$1 scenario=$2 line servers
  shift 2
  servers=$(IFS=,; echo "${REPLICA_ADDRS[*]}")
  line=$("${LG[@]}" --channels=6 --server="$servers" --api_key_file="$WORK/admin.key" \
         --scenario="$scenario" --duration="${SECS}s" "$@" | tail -1)
  echo "  $label: $line"
  RPS[$label]=$(sed -n 's/.* rps=\([0-9]*\).*/\1/p' <<<"$line")
  P50[$label]=$(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' <<<"$line")
  P99[$label]=$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$line")
  ERR[$label]=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$line")
}
REPLICA_SCENARIOS=(health introspect_same refresh issue)
for n in 1 3; do
  db=one
  ((n == 3)) && db=three
  for i in $(seq "$n"); do start_replica "r$n-$i" "$db"; done
  echo " $n server(s): ${REPLICA_ADDRS[*]}"
  for s in "${REPLICA_SCENARIOS[@]}"; do
    count=()
    [[ $s == refresh ]] && count=(--count=$((SECS * 1500)))
    lg_run "x${n}_$s" "$s" "${count[@]}"
  done
  stop_replicas
done

replicas_table() {
  echo "Measured $(date +%F) on $(nproc) cores, \`scripts/bench.sh --replicas --seconds $SECS\`:"
  echo "ta-loadgen (6 channels x 32 in flight, channels spread round-robin over the servers) against"
  echo "one server, then against three replicas, each on a fresh database of one local"
  echo "PostgreSQL 15 (fsync and synchronous_commit on). Everything shares the same $(nproc) cores,"
  echo "so this shows the cost of replicas (three processes, three pools, three followers polling"
  echo "every 100 ms), not scaling."
  echo
  echo "| scenario | 1 server calls/s | 3 replicas calls/s | 3 / 1 | p99 µs (1) | p99 µs (3) | errors (1 / 3) |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for s in "${REPLICA_SCENARIOS[@]}"; do
    echo "| $s | ${RPS[x1_$s]} | ${RPS[x3_$s]} | $(ratio "${RPS[x3_$s]}" "${RPS[x1_$s]}") | ${P99[x1_$s]} | ${P99[x3_$s]} | ${ERR[x1_$s]} / ${ERR[x3_$s]} |"
  done
}
REPLICAS_RESULT=$(replicas_table)
echo
echo "$REPLICAS_RESULT"
/usr/bin/python3 - BENCHMARKS.md "$REPLICAS_RESULT" <<'PY'
import sys
path, body = sys.argv[1], sys.argv[2]
text = open(path).read()
begin, end = "<!-- replicas:begin -->", "<!-- replicas:end -->"
if begin not in text:
    text += f"\n{begin}\n{end}\n"
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(head + begin + "\n" + body + "\n" + end + tail)
PY
echo "wrote BENCHMARKS.md (replicas block)"
