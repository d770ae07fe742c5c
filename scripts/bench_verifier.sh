# Sourced by scripts/bench.sh --verifier (uses its start_server, run, ratio, LG,
# RPS/P50/P99/ERR, WORK, SECS, SAMPLES, and scripts/bench_lib.sh's write_block and wrk_record):
# the verifier sidecar against the authority it follows
# (issue 25 item 7), in one run on one machine.
#  (a) RFC 7662 POST /oauth2/introspect: the sidecar's HTTP face (plain HTTP on loopback) vs
#      the authority's, wrk with the same token and the same concurrency on both (2 threads,
#      32 keep-alive connections: the sidecar's face serves at most 32 at once);
#  (b) gRPC Introspect: the sidecar vs the authority, ta-loadgen introspect_same (4 channels x
#      32 in flight, the token pre-issued at the authority: --issue_at);
#      both in alternating rounds of SECS s, so a slow spell of the shared machine falls on
#      both sides;
#  (c) revocation -> LocalVerifier::Verify inactive under a mixed load, on one node and across
#      three PostgreSQL replicas (replica_tests "[verifier_propagation]" --samples SAMPLES).
# Writes its own block of BENCHMARKS.md.
bash scripts/build.sh Release build/release ta-verifier-sidecar replica_tests >/dev/null
echo "== verifier sidecar vs the authority ($(nproc) cores, ${SECS} s per run)"
DATA=$WORK/data
ISSUER=https://auth.bench.test
start_server "$DATA" --http_listen=127.0.0.1:0 --issuer=$ISSUER
HTTP_ADDR=$(sed -n 's/^http listening on //p' "$WORK/server.out")
[[ -n $HTTP_ADDR ]] || { echo "no http listening line" >&2; exit 1; }
AUTHORITY_PORT=$PORT
build/release/client/sidecar/ta-verifier-sidecar --authority="127.0.0.1:$PORT" \
  --api_key_file="$DATA/admin.key" --issuer=$ISSUER --audience=api --listen=127.0.0.1:0 \
  --http_listen=127.0.0.1:0 >"$WORK/sidecar.out" 2>"$WORK/sidecar.err" &
PIDS+=($!)
for _ in $(seq 100); do grep -q '^ta-verifier-sidecar http on ' "$WORK/sidecar.out" && break; sleep 0.1; done
SIDECAR_GRPC=$(sed -n 's/^ta-verifier-sidecar listening on //p' "$WORK/sidecar.out")
SIDECAR_HTTP=$(sed -n 's/^ta-verifier-sidecar http on //p' "$WORK/sidecar.out")
[[ -n $SIDECAR_HTTP ]] || { echo "the sidecar did not start" >&2; cat "$WORK/sidecar.err" >&2; exit 1; }
build/release/client/loadgen/ta-loadgen --server="127.0.0.1:$PORT" --api_key_file="$DATA/admin.key" \
  --print_token 2>/dev/null | tail -1 >"$WORK/token"
[[ -s $WORK/token ]] || { echo "could not issue a token" >&2; exit 1; }
# Both faces must call it active (wrk counts only non-2xx as errors).
for url in "http://$HTTP_ADDR" "http://$SIDECAR_HTTP"; do
  for _ in $(seq 50); do
    curl -sf -H "Authorization: Bearer $(cat "$DATA/admin.key")" \
      --data-urlencode "token=$(cat "$WORK/token")" "$url/oauth2/introspect" |
      grep -q '"active":true' && break
    sleep 0.1
  done
  curl -sf --data-urlencode "token=$(cat "$WORK/token")" -H "Authorization: Bearer $(cat "$DATA/admin.key")" \
    "$url/oauth2/introspect" | grep -q '"active":true' ||
    { echo "the benchmark token is not active at $url" >&2; exit 1; }
done
WRK=(wrk -t 2 -c 32 -d "${SECS}s" --timeout 5s)
HTTP_RATIOS=()
GRPC_RATIOS=()
for round in 1 2 3; do
  wrk_record "authority_http_$round" introspect.lua "http://$HTTP_ADDR/oauth2/introspect"
  wrk_record "sidecar_http_$round" introspect.lua "http://$SIDECAR_HTTP/oauth2/introspect"
  HTTP_RATIOS+=("$(ratio "${RPS[sidecar_http_$round]}" "${RPS[authority_http_$round]}")")
done
for round in 1 2 3; do
  PORT=$AUTHORITY_PORT run "authority_grpc_$round" introspect_same
  PORT=${SIDECAR_GRPC##*:} run "sidecar_grpc_$round" introspect_same \
    --issue_at="127.0.0.1:$AUTHORITY_PORT"
  GRPC_RATIOS+=("$(ratio "${RPS[sidecar_grpc_$round]}" "${RPS[authority_grpc_$round]}")")
done
PORT=$AUTHORITY_PORT
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }

echo "== revocation -> local verifier, one node and three replicas ($SAMPLES samples each)"
STATS=$WORK/verifier.stats
build/release/tests/replicas/replica_tests "[verifier_propagation]" --samples "$SAMPLES" \
  --stats_file "$STATS" | grep -v '^$'
stat() { sed -n "s/^$1 //p" "$STATS" | tail -1; }

verifier_table() {
  echo "Measured $(date -u +%F) on $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)),"
  echo "everything on the same machine, \`scripts/bench.sh --verifier --seconds $SECS --samples $SAMPLES\`"
  echo "(load average $(cut -d' ' -f1-3 /proc/loadavg) at the end)."
  echo "One authority (RocksDB, Release) and one \`ta-verifier-sidecar\` following it; one cached"
  echo "access token; alternating runs. RFC 7662: wrk -t 2 -c 32 keep-alive on both"
  echo "(\`scripts/peers/http/introspect.lua\`; the sidecar's face serves at most 32 connections)."
  echo "gRPC: ta-loadgen introspect_same, 4 channels x 32 in flight on both."
  echo
  rounds_table authority_http sidecar_http authority_grpc sidecar_grpc
  echo
  echo "Sidecar / authority, RFC 7662, per round: ${HTTP_RATIOS[*]}; median **$(median "${HTTP_RATIOS[@]}")**."
  echo "Sidecar / authority, gRPC Introspect, per round: ${GRPC_RATIOS[*]}; median **$(median "${GRPC_RATIOS[@]}")**."
  echo
  echo "Revocation -> \`LocalVerifier::Verify\` inactive (\`replica_tests \"[verifier_propagation]\"\`):"
  echo "from the revoking call's acknowledgement, Verify polled every 100 µs, half jtis and half"
  echo "families, under a mixed load of 3 client threads. One node: a RocksDB server, the verifier"
  echo "following it, revocations on it. Three replicas: one throwaway PostgreSQL 15 (fsync off),"
  echo "the verifier following replica 0, revocations on replicas 1 and 2 (followers poll the log"
  echo "every 100 ms). The verifier's bound is 1 s."
  echo
  echo "| set-up | revocations | p50 ms | p99 ms | max ms | stale answers | load calls/s |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for s in node replicas; do
    echo "| $s | $(stat verifier_${s}_samples) | $(stat verifier_${s}_p50_ms) | $(stat verifier_${s}_p99_ms) | $(stat verifier_${s}_max_ms) | $(stat verifier_${s}_stale) | $(stat verifier_${s}_load_calls_per_s) |"
  done
}
VERIFIER_RESULT=$(verifier_table)
echo
echo "$VERIFIER_RESULT"
write_block verifier "$VERIFIER_RESULT" "Verifier sidecar and revocation -> verifier (issue 25 item 7)"
