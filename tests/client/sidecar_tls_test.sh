#!/usr/bin/env bash
# ta-verifier-sidecar following a real token-authority over mTLS (issue 25 item 4), with
# tokenctl's flags (--tls_ca, --tls_cert, --tls_key; client::ApplyTlsFiles for both): the
# server serves TLS with the test PKI (tests/integration/make_certs.sh) and asks for client
# certificates; the sidecar's only credential is its certificate, whose SAN URI is a caller
# with role resource. Checked: it answers a token active, then inactive after a revocation at
# the authority (timed); a sidecar with the CA but no certificate (nor API key) is refused by
# the authority and never calls a valid token active; bad TLS flags exit 2 at start.
#   sidecar_tls_test.sh SERVER_BINARY TOKENCTL_BINARY SIDECAR_BINARY SOURCE_DIR
set -euo pipefail

server=${1:?server binary}
tokenctl=${2:?tokenctl binary}
sidecar=${3:?sidecar binary}
src=${4:?source dir}
command -v curl >/dev/null || { echo "FAIL: curl not found (Debian package curl)" >&2; exit 1; }

source "$(dirname "$0")/live_server.sh"
sidecar_pids=()
stop_all() {
  for pid in "${sidecar_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" || true; done
  cleanup_live_server
}
trap stop_all EXIT

mkdir -p "$tmp/pki"
bash "$src/tests/integration/make_certs.sh" "$tmp/pki" >/dev/null 2>&1 || fail "make_certs.sh failed"
pki=$tmp/pki
admin_key=$(head -c 32 /dev/urandom | base64 | tr -d '=+/\n')
(umask 077 && printf %s "$admin_key" >"$tmp/admin.key")
printf 'ops admin key-sha256:%s\ngateway resource cert-uri:spiffe://test/gateway\n' \
  "$(printf %s "$admin_key" | sha256sum | cut -d' ' -f1)" >"$tmp/callers.txt"
issuer=https://auth.sidecar-tls.test
# Client certificates requested and verified; callers without one (tokenctl here) use API keys.
start_server "$server" --issuer=$issuer --tls_cert="$pki/server.pem" --tls_key="$pki/server.key" \
  --tls_client_ca="$pki/ca.pem" --tls_allow_no_client_cert --callers_file="$tmp/callers.txt"

# start_sidecar NAME FLAG...: starts a sidecar following the server, prints its HTTP address.
start_sidecar() {
  local name=$1
  shift
  "$sidecar" --listen=127.0.0.1:0 --http_listen=127.0.0.1:0 --authority="$address" \
    --issuer=$issuer --audience=api "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null &
  sidecar_pids+=($!)
  local http=
  for _ in $(seq 1 100); do
    http=$(sed -n 's/^ta-verifier-sidecar http on //p' "$tmp/$name.out" | head -n1)
    [[ -n "$http" ]] && { echo "$http"; return 0; }
    kill -0 "${sidecar_pids[-1]}" 2>/dev/null || { cat "$tmp/$name.err" >&2; fail "$name exited early"; }
    sleep 0.1
  done
  fail "$name: no 'ta-verifier-sidecar http on' line"
}
mtls=$(start_sidecar mtls --tls_ca="$pki/ca.pem" --tls_cert="$pki/client.pem" \
  --tls_key="$pki/client.key")
nocert=$(start_sidecar nocert --tls_ca="$pki/ca.pem")

ctl() { "$tokenctl" --server="$address" --api_key_file="$tmp/admin.key" --tls_ca="$pki/ca.pem" "$@"; }
token=$(ctl --json issue alice --client_id=web --scope=read | sed -n 's/.*"accessToken": *"\([^"]*\)".*/\1/p')
[[ -n "$token" ]] || fail "tokenctl over TLS could not issue a token"
introspect() { curl -s -o "$tmp/body" -w '%{http_code}' -d "token=$2" "http://$1/oauth2/introspect"; }

for _ in $(seq 1 100); do
  [[ $(introspect "$mtls" "$token") == 200 ]] && grep -q '^{"active":true' "$tmp/body" && break
  sleep 0.1
done
grep -q '^{"active":true' "$tmp/body" ||
  { cat "$tmp/mtls.err" >&2; fail "the mTLS sidecar does not answer the token active: $(cat "$tmp/body")"; }
echo "mTLS sidecar: token active"

ctl revoke - <<<"$token" >/dev/null || fail "revoke over TLS failed"
acked=$(($(date +%s%N) / 1000000))
while (($(date +%s%N) / 1000000 - acked < 5000)); do
  introspect "$mtls" "$token" >/dev/null
  [[ $(cat "$tmp/body") == '{"active":false}' ]] && break
done
delay=$(($(date +%s%N) / 1000000 - acked))
[[ $(cat "$tmp/body") == '{"active":false}' ]] || fail "still active $delay ms after the revoke"
echo "mTLS sidecar: inactive $delay ms after the revoke's ack"
((delay <= 3000)) || fail "inactive only after $delay ms (bound 1 s, 3 s allowed on a loaded machine)"

# Without a certificate the authority refuses it the stream and the keys: it never calls a
# valid token active (503 revocations_stale, or inactive when it holds no keys), while the
# mTLS one does.
fresh=$(ctl --json issue bob --client_id=web --scope=read | sed -n 's/.*"accessToken": *"\([^"]*\)".*/\1/p')
sleep 1
code=$(introspect "$mtls" "$fresh")
grep -q '^{"active":true' "$tmp/body" || fail "the mTLS sidecar: HTTP $code $(cat "$tmp/body")"
code=$(introspect "$nocert" "$fresh")
if grep -q '"active":true' "$tmp/body" || [[ $code != 503 && $code != 200 ]]; then
  fail "a sidecar without a client certificate answered HTTP $code: $(cat "$tmp/body")"
fi
echo "sidecar without a certificate: HTTP $code $(cat "$tmp/body") (never active)"

# Bad TLS flags: exit 2 at start, naming the flag.
rc=0
"$sidecar" --authority="$address" --issuer=$issuer --tls_cert="$pki/client.pem" \
  >/dev/null 2>"$tmp/bad.err" || rc=$?
[[ $rc == 2 ]] && grep -q -- '--tls_cert and --tls_key go together' "$tmp/bad.err" ||
  fail "--tls_cert without --tls_key: exit $rc, $(cat "$tmp/bad.err")"
rc=0
"$sidecar" --authority="$address" --issuer=$issuer --tls_ca="$tmp/missing.pem" \
  >/dev/null 2>"$tmp/bad.err" || rc=$?
[[ $rc == 2 ]] && grep -q -- '--tls_ca: cannot read' "$tmp/bad.err" ||
  fail "--tls_ca of a missing file: exit $rc, $(cat "$tmp/bad.err")"
echo "sidecar over mTLS: 5 passed, 0 failed"
