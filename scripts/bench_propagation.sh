# Sourced by scripts/bench.sh --propagation (uses SAMPLES): the propagation delay of a revocation
# across three replicas (issue 14 item 6). replica_tests "[propagation]" starts a throwaway
# PostgreSQL 15 (fsync off: a test cluster) and three Release servers on it, runs a mixed
# background load (3 client threads: issue, refresh, revoke, replay, introspect over all three),
# and for each sample revokes on one replica (half jtis, half families) and polls the two
# others back to back until they answer inactive. Writes its own block of BENCHMARKS.md.
bash scripts/build.sh Release build/release token-authority replica_tests >/dev/null
STATS=$WORK/propagation.stats
echo "== revocation propagation across 3 replicas ($(nproc) cores, $SAMPLES samples)"
build/release/tests/replicas/replica_tests "[propagation]" --samples "$SAMPLES" \
  --stats_file "$STATS" | grep -v '^$'
stat() { sed -n "s/^$1 //p" "$STATS" | tail -1; }
REPLICA_RESULT=$(cat <<MD
Measured $(date -u +%Y-%m-%d) on $(nproc) cores, \`scripts/bench.sh --propagation --samples $SAMPLES\`:
three servers and a throwaway PostgreSQL 15 (Unix socket, fsync off) on the same machine, with
a background mixed load of $(stat propagation_load_calls_per_s) calls/s over the three. Each sample revokes on one
replica and times, from the acknowledgement, the first inactive answer of each of the two
others (polled back to back, so the figure includes one Introspect round trip). Followers
poll the log every 100 ms; \`--max_revocation_lag\` 1 s.

| samples (revocations x 2 replicas) | p50 ms | p99 ms | max ms | stale answers |
| ---: | ---: | ---: | ---: | ---: |
| $(stat propagation_samples) | $(stat propagation_p50_ms) | $(stat propagation_p99_ms) | $(stat propagation_max_ms) | $(stat propagation_stale_answers) |
MD
)
echo
echo "$REPLICA_RESULT"
write_block propagation "$REPLICA_RESULT" "Replicas: revocation propagation"
