-- wrk: RFC 7662 POST /oauth2/introspect of one access token (TA_TOKEN_FILE) as the caller whose
-- API key is in TA_KEY_FILE, then one parseable summary line (scripts/bench.sh --http).
local function read(path)
  local f = assert(io.open(path))
  local s = f:read("*l")
  f:close()
  return s
end
wrk.method = "POST"
wrk.path = "/oauth2/introspect"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Bearer " .. read(os.getenv("TA_KEY_FILE"))
wrk.body = "token=" .. read(os.getenv("TA_TOKEN_FILE"))

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("rps=%.0f p50_us=%d p99_us=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
