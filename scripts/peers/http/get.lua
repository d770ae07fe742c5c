-- wrk: GET of the URL given (e.g. /healthz/live, the HTTP face's empty handler), then one
-- parseable summary line (scripts/bench.sh --http).
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("rps=%.0f p50_us=%d p99_us=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
