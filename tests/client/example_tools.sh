# Sourced by the drivers that run the other-language examples (run_example.sh here, and
# tests/replicas/consumers_test.sh): the tools they share, with Debian's packages only.
#   python_stubs   generates the Python stubs of proto/ into $tmp/gen
#   node_modules   npm ci into $work/node_example (only when the lock changed)
#   npm_ci_cached  the same for any package directory (tests/http/run_interop.sh sources
#                  this file for it)
# They read $src (the source dir), $tmp, $work, and call fail MESSAGE on a missing tool.

python_stubs() {
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
}

node_modules() {
  npm_ci_cached "$src/client/node" "$work/node_example" @grpc/grpc-js
}

# npm_ci_cached PACKAGE_DIR DIR MODULE: PACKAGE_DIR's package.json and package-lock.json
# installed into DIR (npm ci) unless DIR already has that lock and node_modules/MODULE, so
# that a second run needs no network (npm ci wipes node_modules). Also used by
# tests/http/run_interop.sh (jose).
npm_ci_cached() {
  local from=$1 dir=$2 module=$3
  command -v node >/dev/null || fail "node not found: install Debian packages nodejs npm (scripts/setup.sh)"
  command -v npm >/dev/null || fail "npm not found: install Debian package npm (scripts/setup.sh)"
  mkdir -p "$dir"
  if ! cmp -s "$from/package-lock.json" "$dir/package-lock.json" ||
     [[ ! -d "$dir/node_modules/$module" ]]; then
    cp "$from/package.json" "$from/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) ||
      fail "npm ci failed in $dir"
  fi
}
