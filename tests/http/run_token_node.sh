#!/usr/bin/env bash
# POST /oauth2/token driven by oauth4webapi and npm dpop (tests/http/token_node_check.mjs)
# against the real server; sessions start over gRPC (@grpc/grpc-js). Packages: the lock of
# client/node_dpop. A missing node or npm FAILS with the Debian package to install.
#   run_token_node.sh SERVER_BINARY SOURCE_DIR WORK_DIR
set -euo pipefail
server=${1:?server binary}
src=${2:?source dir}
work=${3:?work dir}
source "$src/tests/client/live_server.sh"
command -v node >/dev/null || fail "node not found (Debian package nodejs)"
command -v npm >/dev/null || fail "npm not found (Debian package npm)"
mkdir -p "$work"
# npm ci only when the lock changed or nothing is installed: a second run needs no network.
if ! cmp -s "$src/client/node_dpop/package-lock.json" "$work/package-lock.json" ||
   [[ ! -d "$work/node_modules/dpop" || ! -d "$work/node_modules/@grpc/grpc-js" ]]; then
  cp "$src/client/node_dpop/package.json" "$src/client/node_dpop/package-lock.json" "$work/"
  (cd "$work" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) ||
    fail "npm ci failed in $work"
fi
cp "$src/tests/http/token_node_check.mjs" "$work/"
start_server "$server" --http_listen=127.0.0.1:0
http=
for _ in $(seq 1 100); do
  http=$(sed -n 's/^http listening on //p' "$tmp/server.out" | head -n1)
  [[ -n "$http" ]] && break
  sleep 0.1
done
[[ -n "$http" ]] || fail "no 'http listening on' line"
node "$work/token_node_check.mjs" "http://$http" "$address" "${key_args[0]}" "$src/proto"
