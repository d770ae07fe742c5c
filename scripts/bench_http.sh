# Sourced by scripts/bench.sh --http (uses its start_server, run, ratio, RPS/P50/P99/ERR, WORK,
# SECS): RFC 7662 introspection over HTTP/1.1 against gRPC Introspect on one server, and each
# face's empty handler (gRPC health, GET /healthz/live), in alternating rounds so that a slow
# spell of a shared machine falls on both sides. Same concurrency on both faces: 128 calls in
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
wrk_run() {  # wrk_run LABEL SCRIPT PATH
  local line
  line=$(TA_TOKEN_FILE="$WORK/token" TA_KEY_FILE="$DATA/admin.key" \
         "${WRK[@]}" -s "scripts/peers/http/$2" "http://$HTTP_ADDR$3" | tail -1)
  echo "  $1: $line"
  RPS[$1]=$(sed -n 's/.*rps=\([0-9]*\).*/\1/p' <<<"$line")
  P50[$1]=$(sed -n 's/.*p50_us=\([0-9]*\).*/\1/p' <<<"$line")
  P99[$1]=$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' <<<"$line")
  ERR[$1]=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$line")
}
INTRO_RATIOS=()
EMPTY_RATIOS=()
for round in 1 2 3; do
  run "grpc_introspect_$round" introspect_same --duration="${SECS}s"
  wrk_run "http_introspect_$round" introspect.lua /oauth2/introspect
  INTRO_RATIOS+=("$(ratio "${RPS[http_introspect_$round]}" "${RPS[grpc_introspect_$round]}")")
done
for round in 1 2; do
  run "grpc_health_$round" health --duration="${SECS}s"
  wrk_run "http_live_$round" get.lua /healthz/live
  EMPTY_RATIOS+=("$(ratio "${RPS[http_live_$round]}" "${RPS[grpc_health_$round]}")")
done
INTRO_MEDIAN=$(printf '%s\n' "${INTRO_RATIOS[@]}" | sort -n | sed -n 2p)

http_table() {
  echo "Measured $(date +%F) on $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)),"
  echo "client and server on the same machine, \`scripts/bench.sh --http --seconds $SECS\`:"
  echo "one server, alternating runs; 128 in flight on each face (ta-loadgen 4 channels x 32;"
  echo "wrk -t 2 -c 128 keep-alive, \`scripts/peers/http/introspect.lua\`), one cached access token."
  echo
  echo "| run | round | calls/s | p50 µs | p99 µs | errors |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  for label in grpc_introspect http_introspect grpc_health http_live; do
    for round in 1 2 3; do
      [[ -n ${RPS[${label}_$round]:-} ]] || continue
      echo "| $label | $round | ${RPS[${label}_$round]} | ${P50[${label}_$round]} | ${P99[${label}_$round]} | ${ERR[${label}_$round]} |"
    done
  done
  echo
  echo "HTTP / gRPC introspection, per round: ${INTRO_RATIOS[*]}; median **${INTRO_MEDIAN}**."
  echo "Empty handlers (GET /healthz/live / gRPC health), per round: ${EMPTY_RATIOS[*]}."
}
HTTP_RESULT=$(http_table)
echo
echo "$HTTP_RESULT"
write_block http "$HTTP_RESULT"
