#!/usr/bin/env bash
# Runs one other-language example (client/python, node, go, java or ruby) against the real server.
#   run_example.sh python|node|go|java|ruby|python_verifier|node_verifier SERVER SOURCE_DIR WORK_DIR
# python_verifier / node_verifier run tests/client/local_verifier_test.{py,js} (the local
# verifiers of client/python and client/node); the test stops the server itself (SIGTERM to
# its pid) to see the verifier fail closed, then starts it again on the same address and data
# dir (and stops it) to see the verifier follow the new server.
# Starts SERVER_BINARY on 127.0.0.1:0 with a fresh data dir, reads its "listening on" line,
# passes <data_dir>/admin.key to the example when the server wrote one, and exits with the
# example's status. A missing tool is a FAILURE with a message, never a silent skip.
# Stubs are generated from proto/ on every run, with Debian's tools only (no registry but npm
# is reachable: Go builds offline in GOPATH mode, Java compiles against /usr/share/java).
# Tools may be overridden: PROTOC, GRPC_PYTHON_PLUGIN, PYTHON (default /usr/bin/python3).
set -euo pipefail

lang=${1:?python|node|go|java|ruby}
server=${2:?server binary}
src=${3:?source dir}
work=${4:?work dir}

source "$(dirname "$0")/live_server.sh"
source "$(dirname "$0")/example_tools.sh"

run_python() {
  python_stubs
  PYTHONPATH="$tmp/gen" "${PYTHON:-/usr/bin/python3}" "$src/client/python/example.py" "$address" "${key_args[@]}"
}

# client/python/local_verifier.py, driven by tests/client/local_verifier_test.py.
run_python_verifier() {
  python_stubs
  "${PYTHON:-/usr/bin/python3}" -c 'import jwt' 2>/dev/null ||
    fail "${PYTHON:-/usr/bin/python3} lacks PyJWT (Debian package python3-jwt)"
  PYTHONPATH="$tmp/gen:$src/client/python" "${PYTHON:-/usr/bin/python3}" \
    "$src/tests/client/local_verifier_test.py" "$address" "${key_args[0]}" "$server_pid" \
    "$server" "$tmp/data"
}

run_node() {
  local dir="$work/node_example"
  node_modules
  cp "$src/client/node/example.js" "$dir/"
  TA_PROTO_DIR="$src/proto" node "$dir/example.js" "$address" "${key_args[@]}"
}

# client/node/local_verifier.js, driven by tests/client/local_verifier_test.js (both copied
# next to node_modules).
run_node_verifier() {
  local dir="$work/node_example"
  node_modules
  cp "$src/client/node/local_verifier.js" "$src/tests/client/local_verifier_test.js" "$dir/"
  TA_PROTO_DIR="$src/proto" node "$dir/local_verifier_test.js" "$address" "${key_args[0]}" \
    "$server_pid" "$server" "$tmp/data"
}

run_go() {
  local protoc=${PROTOC:-protoc}
  command -v go >/dev/null || fail "go not found (Debian package golang-go)"
  for plugin in protoc-gen-go protoc-gen-go-grpc; do
    command -v $plugin >/dev/null || fail "$plugin not found (Debian package $plugin)"
  done
  [[ -d /usr/share/gocode/src/google.golang.org/grpc ]] ||
    fail "grpc-go not in /usr/share/gocode (Debian packages golang-google-grpc-dev golang-google-protobuf-dev)"
  # GOPATH mode, offline: our generated package first, then Debian's Go sources. Go's own
  # build cache (~/.cache/go-build) makes a second run compile only the example; without a
  # home, the cache lives in the build tree.
  local cache
  cache=$(go env GOCACHE 2>/dev/null) || cache=
  [[ -n "$cache" && "$cache" != off ]] || cache="$work/go-cache"
  local gopath="$tmp/gopath"
  mkdir -p "$gopath/src"
  "$protoc" -I "$src/proto" --go_out="$gopath/src" --go-grpc_out="$gopath/src" \
    "$src/proto/tokenauthority/v1/token_authority.proto"
  GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$gopath:/usr/share/gocode" GOCACHE="$cache" \
    go build -o "$tmp/example-go" "$src/client/go/main.go"
  "$tmp/example-go" "$address" "${key_args[@]}"
}

# The jars a grpc-java client needs at compile and run time, all from Debian packages.
java_classpath() {
  local jars=(protobuf grpc-api grpc-context grpc-core grpc-netty grpc-protobuf grpc-protobuf-lite
    grpc-stub guava perfmark-api gson geronimo-annotation-1.3-spec netty-buffer netty-codec
    netty-codec-http netty-codec-http2 netty-codec-socks netty-common netty-handler
    netty-handler-proxy netty-resolver netty-transport)
  local cp="" jar
  for jar in "${jars[@]}"; do
    [[ -f /usr/share/java/$jar.jar ]] || fail "/usr/share/java/$jar.jar missing (scripts/setup.sh installs libgrpc-java and its jars)"
    cp+="${cp:+:}/usr/share/java/$jar.jar"
  done
  echo "$cp"
}

run_java() {
  local protoc=${PROTOC:-protoc}
  command -v javac >/dev/null || fail "javac not found (Debian package default-jdk-headless)"
  [[ -x /usr/bin/grpc_java_plugin ]] || fail "grpc_java_plugin not found (Debian package protobuf-compiler-grpc-java-plugin)"
  local cp
  cp=$(java_classpath)
  mkdir -p "$tmp/java/classes"
  "$protoc" -I "$src/proto" --java_out="$tmp/java" --grpc-java_out="$tmp/java" \
    --plugin=protoc-gen-grpc-java=/usr/bin/grpc_java_plugin \
    "$src/proto/tokenauthority/v1/token_authority.proto"
  # -nowarn: the generated code uses APIs that javac 17 flags as deprecated.
  javac -nowarn -cp "$cp" -d "$tmp/java/classes" \
    $(find "$tmp/java/dev" -name '*.java') "$src/client/java/Example.java"
  java -cp "$tmp/java/classes:$cp" Example "$address" "${key_args[@]}"
}

run_ruby() {
  command -v ruby >/dev/null || fail "ruby not found (Debian package ruby-grpc)"
  command -v grpc_tools_ruby_protoc >/dev/null || fail "grpc_tools_ruby_protoc not found (Debian package ruby-grpc-tools)"
  ruby -e 'require "grpc"; require "google/protobuf"' 2>/dev/null ||
    fail "ruby lacks grpc/google-protobuf (Debian packages ruby-grpc ruby-google-protobuf)"
  mkdir -p "$tmp/ruby"
  grpc_tools_ruby_protoc -I "$src/proto" --ruby_out="$tmp/ruby" --grpc_out="$tmp/ruby" \
    "$src/proto/tokenauthority/v1/token_authority.proto"
  ruby -I "$tmp/ruby" "$src/client/ruby/example.rb" "$address" "${key_args[@]}"
}

start_server "$server"
[[ "$lang" != *_verifier || ${#key_args[@]} -gt 0 ]] || fail "the server wrote no admin.key"

case "$lang" in
  python) run_python ;;
  python_verifier) run_python_verifier ;;
  node_verifier) run_node_verifier ;;
  node) run_node ;;
  go) run_go ;;
  java) run_java ;;
  ruby) run_ruby ;;
  *) fail "unknown example language: $lang" ;;
esac
