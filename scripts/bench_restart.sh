# Sourced by scripts/bench.sh --restart (uses RESTART_SIZES): restart to serving with N live
# revocations (issue 27 items 2 and 5). For each N, ta-seed fills a RocksDB store with N
# families and N denylisted jtis (N live entries of the revocation log, live for an hour);
# a first start reads the whole log and its clean shutdown (SIGTERM) writes the view's
# checkpoint; then two rounds of: a start from the checkpoint, and a start with
# --view_checkpoint_interval=0 (the whole log read, as before the checkpoint existed). Each
# start is timed from exec to the "listening on" line; peak RSS is VmHWM. The store is deleted
# after each size (GBs at 10 M). Writes its own block of BENCHMARKS.md.
echo "== restart to serving ($(nproc) cores): N families + N denylisted jtis"
RESTART_ROWS=""
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
hwm_mb() { awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$1/status"; }
for n in $RESTART_SIZES; do
  DATA=$WORK/restart-$n
  mkdir -p "$DATA"
  t0=$(date +%s%N)
  build/release/storage/ta-seed --path="$DATA/db" --families="$n" --jtis="$n" >/dev/null
  seed_ms=$(ms_since "$t0")
  start_server "$DATA"
  first_ms=$START_MS
  t0=$(date +%s%N)
  kill "$SERVER_PID"; wait "$SERVER_PID" || true
  stop_ms=$(ms_since "$t0")  # includes writing the checkpoint
  ckpt_mb=$(awk -v b="$(stat -c %s "$DATA/revocation_view.ckpt")" 'BEGIN {printf "%.1f", b / 1048576}')
  declare -A R=()
  for round in 1 2; do
    start_server "$DATA"
    R[ckpt_$round]=$START_MS
    first_answer "$DATA"
    R[ckpt_serve_$round]=$SERVE_MS R[ckpt_rss_$round]=$(hwm_mb "$SERVER_PID")
    R[ckpt_log_$round]=$(sed -n 's/^token-authority: revocation view: //p' "$WORK/server.err" | tail -1)
    kill "$SERVER_PID"; wait "$SERVER_PID" || true
    start_server "$DATA" --view_checkpoint_interval=0
    R[full_$round]=$START_MS
    first_answer "$DATA"
    R[full_serve_$round]=$SERVE_MS R[full_rss_$round]=$(hwm_mb "$SERVER_PID")
    kill "$SERVER_PID"; wait "$SERVER_PID" || true
  done
  echo "  $n: seed ${seed_ms} ms; first start ${first_ms} ms; shutdown with checkpoint ${stop_ms} ms" \
       "(${ckpt_mb} MiB); from checkpoint ${R[ckpt_1]} / ${R[ckpt_2]} ms, first Introspect" \
       "${R[ckpt_serve_1]} / ${R[ckpt_serve_2]} ms (${R[ckpt_log_2]}); whole log" \
       "${R[full_1]} / ${R[full_2]} ms, first Introspect ${R[full_serve_1]} / ${R[full_serve_2]} ms;" \
       "load $(uptime | sed 's/.*load average: //')"
  RESTART_ROWS+="| $n | **${R[ckpt_1]} / ${R[ckpt_2]}** | ${R[ckpt_serve_1]} / ${R[ckpt_serve_2]} | ${R[full_1]} / ${R[full_2]} | ${R[full_serve_1]} / ${R[full_serve_2]} | ${R[ckpt_rss_2]} / ${R[full_rss_2]} | ${ckpt_mb} | ${stop_ms} | $(uptime | sed 's/.*load average: \([0-9.]*\).*/\1/') |"$'\n'
  rm -rf "$DATA"
done
RESTART_RESULT=$(cat <<MD
Measured $(date -u +%Y-%m-%d) on $(nproc) cores, \`scripts/bench.sh --restart --sizes "$RESTART_SIZES"\`:
a RocksDB store seeded by ta-seed with N families and N denylisted jtis (N live revocations;
families that are not revoked are not in the view). "From checkpoint": the start after a clean
shutdown wrote \`<data_dir>/revocation_view.ckpt\`; "whole log": \`--view_checkpoint_interval=0\`,
which reads the whole revocation log as every start did before. Times from exec to the
"listening on" line (store open, key ring, view, gRPC bind), and to the first Introspect
answered (ta-loadgen started after the line: it issues a token, then introspects it), two
rounds each; peak RSS is the second round's VmHWM; shutdown: SIGTERM to exit of the first
server, which wrote the checkpoint; load: the 1-minute load average after the size.

| live revocations | from checkpoint: to listening ms | to first Introspect ms | whole log: to listening ms | to first Introspect ms | peak RSS MiB (checkpoint / whole log) | checkpoint MiB | shutdown ms | load |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${RESTART_ROWS%$'\n'}
MD
)
echo
echo "$RESTART_RESULT"
write_block restart "$RESTART_RESULT" "Restart to serving: the revocation view's checkpoint (issue 27 item 2)"
