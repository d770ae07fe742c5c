# Sourced by scripts/bench.sh --propagation (uses SAMPLES): the propagation delay of a revocation
# across three replicas (issue 14 item 6). replica_tests "[propagation]" starts a throwaway
# PostgreSQL 15 (fsync off: a test cluster) and three Release servers on it, runs a mixed
# background load (3 client threads: issue, refresh, revoke, replay, introspect over all three),
# and for each sample revokes on one replica (half jtis, half families) and polls the two
# others back to back until they answer inactive. Writes its own block of BENCHMARKS.md.
bash scripts/build.sh Release build/release token-authority replica_tests >/dev/null
STATS=$(mktemp)
trap 'rm -f "$STATS"' EXIT
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
MD=BENCHMARKS.md
/usr/bin/python3 - "$MD" "$REPLICA_RESULT" <<'PY'
import sys
path, body = sys.argv[1], sys.argv[2]
text = open(path).read()
begin, end = "<!-- propagation:begin -->", "<!-- propagation:end -->"
if begin not in text:
    text = text.rstrip("\n") + f"\n\n## Replicas: revocation propagation\n\n{begin}\n{end}\n"
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(head + begin + "\n" + body + "\n" + end + tail)
PY
echo "wrote $MD"
