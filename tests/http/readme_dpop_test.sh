#!/usr/bin/env bash
# The README's DPoP walkthrough ("### A DPoP-bound session, end to end") run as written
# against a real server (tests/client/readme_http.py with that heading): a bound login over
# gRPC, refreshes at POST /oauth2/token by client/node_dpop/dpop_app.mjs (npm dpop), a
# replayed proof and a stolen refresh token refused, a bound token used as bearer inactive.
#   readme_dpop_test.sh SERVER_BINARY SOURCE_DIR
# The work directory looks like the repository root after scripts/run.sh: data/admin.key,
# client/node_dpop (copied: npm ci installs there) and proto/. node, npm or curl missing is a
# FAILURE naming the Debian package.
set -euo pipefail

server=${1:?server binary}
src=${2:?source dir}
for tool in node:nodejs npm:npm curl:curl; do
  command -v "${tool%%:*}" >/dev/null || { echo "FAIL: ${tool%%:*} not found (Debian package ${tool#*:})" >&2; exit 1; }
done

source "$src/tests/client/live_server.sh"
start_server "$server" --http_listen=127.0.0.1:0
http=
for _ in $(seq 1 100); do  # printed right after the gRPC line
  http=$(sed -n 's/^http listening on //p' "$tmp/server.out" | head -n1)
  [[ -n "$http" ]] && break
  sleep 0.1
done
[[ -n "$http" ]] || fail "no 'http listening on' line"
mkdir -p "$tmp/client/node_dpop"
cp "$src/client/node_dpop/package.json" "$src/client/node_dpop/package-lock.json" \
  "$src/client/node_dpop/dpop_app.mjs" "$tmp/client/node_dpop/"
ln -s "$src/proto" "$tmp/proto"
TA_SERVER=$address /usr/bin/python3 "$src/tests/client/readme_http.py" "$src/README.md" "$http" \
  "$tmp" "### A DPoP-bound session, end to end"
