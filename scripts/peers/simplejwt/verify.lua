-- wrk: POST /api/token/verify/ with one access token (access.txt).
local f = io.open(os.getenv("PEER_ACCESS"))
local token = f:read("*l")
f:close()
wrk.method = "POST"
wrk.path = "/api/token/verify/"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"token":"' .. token .. '"}'
