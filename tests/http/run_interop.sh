#!/usr/bin/env bash
# Runs one client nobody here wrote against the real server's HTTP face.
#   run_interop.sh jose|pyjwt|apache|promtool SERVER_BINARY TOKENCTL SOURCE_DIR WORK_DIR
#   run_interop.sh apache_sidecar SERVER_BINARY TOKENCTL SOURCE_DIR WORK_DIR SIDECAR_BINARY
#     (Apache introspecting at a ta-verifier-sidecar that follows the server: apache/
#     run_apache_sidecar.sh)
# Starts SERVER_BINARY with gRPC and HTTP on 127.0.0.1 ports it picks (port 0), a fresh data
# dir and its generated admin key, reads both listening lines, and runs the client. A missing
# tool is a FAILURE naming the Debian package, never a silent skip.
set -euo pipefail

client=${1:?jose|pyjwt|apache|apache_sidecar|promtool}
server=${2:?server binary}
tokenctl=${3:?tokenctl binary}
src=${4:?source dir}
work=${5:?work dir}
sidecar=${6:-}
[[ "$client" != apache_sidecar || -x "$sidecar" ]] || { echo "FAIL: apache_sidecar: no sidecar binary" >&2; exit 1; }
here="$src/tests/http"

fail() { echo "FAIL: $*" >&2; exit 1; }
source "$src/tests/client/example_tools.sh"  # npm_ci_cached

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ta-http-XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# Waits for "PREFIX HOST:PORT" in FILE (from PID) and prints HOST:PORT.
wait_line() {
  local prefix=$1 file=$2 pid=$3
  for _ in $(seq 1 200); do
    if grep -q "^$prefix " "$file" 2>/dev/null; then
      sed -n "s/^$prefix //p" "$file" | head -n1
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$tmp"/*.err >&2 || true; fail "$prefix: process exited early"; }
    sleep 0.1
  done
  fail "no '$prefix' line in 20 s"
}

# Callers: an admin (tokenctl: issue, rotate, revoke) and a resource server "gateway".
new_key() { head -c 32 /dev/urandom | base64 | tr -d '=+/\n'; }
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
admin_key=$(new_key)
gateway_key=$(new_key)
key_file="$tmp/admin.key"
(umask 077 && printf %s "$admin_key" >"$key_file")
printf 'ops admin key-sha256:%s\ngateway resource key-sha256:%s\n' "$(sha "$admin_key")" \
  "$(sha "$gateway_key")" >"$tmp/callers.txt"
# mod_auth_openidc fetches only https URLs: for Apache both faces serve TLS (the same
# certificate flags for gRPC and HTTP), from the integration tests' PKI.
scheme=http
tls_server=()
tls_client=()
server_extra=()
if [[ "$client" == apache || "$client" == apache_sidecar ]]; then
  mkdir -p "$tmp/pki"
  bash "$src/tests/integration/make_certs.sh" "$tmp/pki"
  scheme=https
  tls_server=(--tls_cert="$tmp/pki/server.pem" --tls_key="$tmp/pki/server.key")
  tls_client=(--tls_ca="$tmp/pki/ca.pem")
fi
# The sidecar needs the issuer; access tokens live 20 s so that one expires during the test.
if [[ "$client" == apache_sidecar ]]; then
  server_extra=(--issuer=https://auth.interop.test --access_ttl=20s)
fi
mkdir -p "$tmp/data"
"$server" --listen=127.0.0.1:0 --http_listen=127.0.0.1:0 --data_dir="$tmp/data" \
  --callers_file="$tmp/callers.txt" --default_audience=api "${tls_server[@]}" "${server_extra[@]}" \
  >"$tmp/server.out" 2>"$tmp/server.err" &
pids+=($!)
grpc=$(wait_line "listening on" "$tmp/server.out" "${pids[0]}")
http=$(wait_line "http listening on" "$tmp/server.out" "${pids[0]}")
export TA_HTTP="$scheme://$http"
export TA_TOKENCTL="[\"$tokenctl\", \"--server=$grpc\", \"--api_key_file=$key_file\"]"
ctl() { "$tokenctl" --server="$grpc" --api_key_file="$key_file" "${tls_client[@]}" "$@"; }
echo "server: grpc $grpc, http $http"

run_jose() {
  local dir="$work/jose"
  npm_ci_cached "$here/node" "$dir" jose  # tests/client/example_tools.sh
  cp "$here/node/jose_check.mjs" "$dir/"
  node "$dir/jose_check.mjs"
}

run_pyjwt() {
  local python=${PYTHON:-/usr/bin/python3}
  "$python" -c 'import jwt, cryptography' 2>/dev/null ||
    fail "$python lacks jwt/cryptography (Debian packages python3-jwt python3-cryptography)"
  "$python" "$here/pyjwt_check.py"
}

run_promtool() {
  command -v promtool >/dev/null || fail "promtool not found (Debian package prometheus)"
  command -v curl >/dev/null || fail "curl not found (Debian package curl)"
  # Traffic on both faces first, so every family has samples.
  local token refresh
  token=$(ctl --json issue alice --client_id=web | sed -n 's/.*"accessToken": *"\([^"]*\)".*/\1/p')
  [[ -n "$token" ]] || fail "could not issue a token"
  curl -sf -u "gateway:$gateway_key" -d "token=$token" \
    "$TA_HTTP/oauth2/introspect" >/dev/null
  curl -sf "$TA_HTTP/.well-known/jwks.json" >/dev/null
  curl -s "$TA_HTTP/nope" >/dev/null
  ctl introspect - <<<"$token" >/dev/null
  curl -sf "$TA_HTTP/metrics" >"$tmp/metrics"
  grep -q '^ta_http_requests_total{code="200",endpoint="introspect"} 1$' "$tmp/metrics" ||
    fail "/metrics lacks the introspection just made"
  grep -q '^ta_grpc_requests_total{code="OK",method="Introspect"} 1$' "$tmp/metrics" ||
    fail "/metrics lacks the gRPC introspection just made"
  promtool check metrics <"$tmp/metrics" || fail "promtool check metrics refused /metrics"
  echo "promtool: $(grep -c '^# TYPE' "$tmp/metrics") metric families accepted"
  echo "promtool: 1 passed, 0 failed"
}

case "$client" in
  jose) run_jose ;;
  pyjwt) run_pyjwt ;;
  promtool) run_promtool ;;
  apache) source "$here/apache/run_apache.sh" ;;
  apache_sidecar) source "$here/apache/run_apache_sidecar.sh" ;;
  *) fail "unknown client: $client" ;;
esac
