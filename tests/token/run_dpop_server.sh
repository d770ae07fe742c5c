#!/usr/bin/env bash
# Sender-constrained sessions against the real server (issue 26 item 4): starts the
# token-authority binary (tests/client/live_server.sh), generates the Python stubs, and runs
# dpop_server_interop.py with proofs made by python3-cryptography, npm dpop and oauth4webapi
# (dpop_node/, npm ci on the first run). A missing tool FAILS with the package to install.
#   run_dpop_server.sh SERVER SOURCE_DIR NODE_WORK_DIR [nonce]
set -euo pipefail
server=${1:?server binary} src=${2:?source dir} work=${3:?node work dir} mode=${4:-}
source "$src/tests/client/live_server.sh"

python=${PYTHON:-/usr/bin/python3}
protoc=${PROTOC:-protoc}
plugin=${GRPC_PYTHON_PLUGIN:-/usr/bin/grpc_python_plugin}
"$python" -c 'import grpc, google.protobuf, cryptography' 2>/dev/null ||
  fail "$python lacks grpc/protobuf/cryptography (Debian python3-grpcio python3-protobuf python3-cryptography)"
command -v "$protoc" >/dev/null || fail "protoc not found (Debian package protobuf-compiler)"
[[ -x "$plugin" ]] || fail "$plugin not found (Debian package protobuf-compiler-grpc)"

if [[ "$mode" == nonce ]]; then
  start_server "$server" --dpop_nonce
else
  start_server "$server" --http_listen=127.0.0.1:0
fi
mkdir -p "$tmp/gen"
"$protoc" -I "$src/proto" --python_out="$tmp/gen" --grpc_python_out="$tmp/gen" \
  --plugin=protoc-gen-grpc_python="$plugin" "$src/proto/tokenauthority/v1/token_authority.proto"
run() { PYTHONPATH="$tmp/gen" "$python" "$src/tests/token/dpop_server_interop.py" "$address" \
          "${key_args[0]}" "$@"; }

if [[ "$mode" == nonce ]]; then
  run python --nonce
  exit 0
fi
http=
for _ in $(seq 1 50); do
  http=$(sed -n 's/^http listening on //p' "$tmp/server.out" | head -n1)
  [[ -n "$http" ]] && break
  sleep 0.1
done
[[ -n "$http" ]] || fail "no http listening line"
run python --http "$http"

command -v node >/dev/null || fail "node not found (Debian package nodejs)"
command -v npm >/dev/null || fail "npm not found (Debian package npm)"
here="$src/tests/token/dpop_node"
mkdir -p "$work"
if ! cmp -s "$here/package-lock.json" "$work/package-lock.json" ||
   [[ ! -d "$work/node_modules/dpop" || ! -d "$work/node_modules/oauth4webapi" ]]; then
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) ||
    fail "npm ci failed in $work"
fi
cp "$here/dpop_prover.mjs" "$work/"
run "node-dpop:$work" --http "$http"
run "node-oauth4webapi:$work"
