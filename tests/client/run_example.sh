#!/usr/bin/env bash
# Runs one other-language example (client/python or client/node) against the real server.
#   run_example.sh python|node SERVER_BINARY SOURCE_DIR WORK_DIR
# Starts SERVER_BINARY on 127.0.0.1:0 with a fresh data dir, reads its "listening on" line,
# passes <data_dir>/admin.key to the example when the server wrote one, and exits with the
# example's status. A missing tool is a FAILURE with a message, never a silent skip.
# Tools may be overridden: PROTOC, GRPC_PYTHON_PLUGIN, PYTHON (default /usr/bin/python3).
set -euo pipefail

lang=${1:?python|node}
server=${2:?server binary}
src=${3:?source dir}
work=${4:?work dir}

fail() { echo "FAIL: $*" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ta-example-XXXXXX")
server_pid=
cleanup() {
  if [[ -n "$server_pid" ]]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

start_server() {
  mkdir -p "$tmp/data"
  "$server" --listen=127.0.0.1:0 --data_dir="$tmp/data" --default_audience=api \
    >"$tmp/server.out" 2>"$tmp/server.err" &
  server_pid=$!
  for _ in $(seq 1 200); do
    if grep -q '^listening on ' "$tmp/server.out" 2>/dev/null; then
      address=$(sed -n 's/^listening on //p' "$tmp/server.out" | head -n1)
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.err" >&2; fail "server exited early"; }
    sleep 0.1
  done
  fail "server printed no listening line in 20 s"
}

run_python() {
  local python=${PYTHON:-/usr/bin/python3}
  local protoc=${PROTOC:-protoc}
  local plugin=${GRPC_PYTHON_PLUGIN:-/usr/bin/grpc_python_plugin}
  [[ -x "$python" ]] || fail "$python not found (Debian packages python3-grpcio python3-protobuf)"
  "$python" -c 'import grpc, google.protobuf' 2>/dev/null ||
    fail "$python lacks grpc/protobuf (Debian packages python3-grpcio python3-protobuf)"
  command -v "$protoc" >/dev/null || fail "protoc not found (Debian package protobuf-compiler)"
  [[ -x "$plugin" ]] || fail "$plugin not found (Debian package protobuf-compiler-grpc)"
  mkdir -p "$tmp/gen"
  "$protoc" -I "$src/proto" --python_out="$tmp/gen" --grpc_python_out="$tmp/gen" \
    --plugin=protoc-gen-grpc_python="$plugin" "$src/proto/tokenauthority/v1/token_authority.proto"
  PYTHONPATH="$tmp/gen" "$python" "$src/client/python/example.py" "$address" "${key_args[@]}"
}

run_node() {
  command -v node >/dev/null || fail "node not found: install Debian packages nodejs npm (scripts/setup.sh)"
  command -v npm >/dev/null || fail "npm not found: install Debian package npm (scripts/setup.sh)"
  local dir="$work/node_example"
  mkdir -p "$dir"
  # npm ci wipes node_modules; do it only when the lock changed or nothing is installed,
  # so that a second run needs no network.
  if ! cmp -s "$src/client/node/package-lock.json" "$dir/package-lock.json" ||
     [[ ! -d "$dir/node_modules/@grpc/grpc-js" ]]; then
    cp "$src/client/node/package.json" "$src/client/node/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) ||
      fail "npm ci failed in $dir"
  fi
  cp "$src/client/node/example.js" "$dir/"
  TA_PROTO_DIR="$src/proto" node "$dir/example.js" "$address" "${key_args[@]}"
}

address=
start_server
key_args=()
[[ -f "$tmp/data/admin.key" ]] && key_args=("$tmp/data/admin.key")
echo "server at $address${key_args:+ (with admin.key)}"

case "$lang" in
  python) run_python ;;
  node) run_node ;;
  *) fail "unknown example language: $lang" ;;
esac
