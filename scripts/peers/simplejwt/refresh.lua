-- wrk: POST /api/token/refresh/ with a fresh refresh token per request (tokens.txt).
local tokens = {}
for line in io.lines(os.getenv("PEER_TOKENS")) do tokens[#tokens + 1] = line end
local counter = 0
local thread_id = 0
local threads = 1
function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end
function init(args)
  threads = tonumber(os.getenv("PEER_THREADS") or "1")
end
function request()
  local i = (counter * threads + thread_id) % #tokens + 1
  counter = counter + 1
  return wrk.format("POST", "/api/token/refresh/", {["Content-Type"] = "application/json"},
                    '{"refresh":"' .. tokens[i] .. '"}')
end
