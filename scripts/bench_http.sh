# Sourced by scripts/bench.sh --http (uses its start_server, run, ratio, RPS/P50/P99/ERR, WORK,
# SECS, and scripts/bench_lib.sh's wrk_record and write_block): RFC 7662 introspection over
# HTTP/1.1 against gRPC Introspect on one server, and each face's empty handler (gRPC health,
# GET /healthz/live), in alternating rounds so that a slow spell of a shared machine falls on
# both sides. Same concurrency on both faces: 128 calls in
# flight (ta-loadgen 4 channels x 32; wrk 128 keep-alive connections), 2 client threads.
echo "== HTTP face vs gRPC on one server ($(nproc) cores, ${SECS} s per run)"
DATA=$WORK/data
start_server "$DATA" --http_listen=127.0.0.1:0
HTTP_ADDR=$(sed -n 's/^http listening on //p' "$WORK/server.out")
[[ -n $HTTP_ADDR ]] || { echo "no http listening line" >&2; exit 1; }
build/release/client/loadgen/ta-loadgen --server="127.0.0.1:$PORT" --api_key_file="$DATA/admin.key" \
  --print_token 2>/dev/null | tail -1 >"$WORK/token"
[[ -s $WORK/token ]] || { echo "could not issue a token" >&2; exit 1; }
# The answer wrk will get (it counts only non-2xx as errors): the token must be active.
curl -sf -H "Authorization: Bearer $(cat "$DATA/admin.key")" --data-urlencode "token=$(cat "$WORK/token")" \
  "http://$HTTP_ADDR/oauth2/introspect" | grep -q '"active":true' ||
  { echo "the benchmark token is not active over HTTP" >&2; exit 1; }
WRK=(wrk -t 2 -c 128 -d "${SECS}s" --timeout 5s)
INTRO_RATIOS=()
EMPTY_RATIOS=()
for round in 1 2 3; do
  run "grpc_introspect_$round" introspect_same --duration="${SECS}s"
  wrk_record "http_introspect_$round" introspect.lua "http://$HTTP_ADDR/oauth2/introspect"
  INTRO_RATIOS+=("$(ratio "${RPS[http_introspect_$round]}" "${RPS[grpc_introspect_$round]}")")
done
for round in 1 2; do
  run "grpc_health_$round" health --duration="${SECS}s"
  wrk_record "http_live_$round" get.lua "http://$HTTP_ADDR/healthz/live"
  EMPTY_RATIOS+=("$(ratio "${RPS[http_live_$round]}" "${RPS[grpc_health_$round]}")")
done
INTRO_MEDIAN=$(printf '%s\n' "${INTRO_RATIOS[@]}" | sort -n | sed -n 2p)

http_table() {
  echo "Measured $(date +%F) on $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)),"
  echo "client and server on the same machine, \`scripts/bench.sh --http --seconds $SECS\`:"
  echo "one server, alternating runs; 128 in flight on each face (ta-loadgen 4 channels x 32;"
  echo "wrk -t 2 -c 128 keep-alive, \`scripts/peers/http/introspect.lua\`), one cached access token."
  echo
  rounds_table grpc_introspect http_introspect grpc_health http_live
  echo
  echo "HTTP / gRPC introspection, per round: ${INTRO_RATIOS[*]}; median **${INTRO_MEDIAN}**."
  echo "Empty handlers (GET /healthz/live / gRPC health), per round: ${EMPTY_RATIOS[*]}."
}
HTTP_RESULT=$(http_table)
echo
echo "$HTTP_RESULT"
write_block http "$HTTP_RESULT"
