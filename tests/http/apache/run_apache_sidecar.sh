# Sourced by run_interop.sh apache_sidecar (uses its fail, wait_line, ctl, pids, tmp, here,
# sidecar, grpc, TA_HTTP and gateway_key): issue 25 item 3's "any gateway that speaks RFC 7662
# then verifies with zero network hops to the authority". A ta-verifier-sidecar follows the
# real server over TLS (--tls_ca, the test CA; the caller "gateway", role resource) and serves
# RFC 7662 over https on loopback (mod_auth_openidc calls only https endpoints); Apache's
# mod_auth_openidc introspects every token there (no cache: OIDCOAuthTokenIntrospectionInterval
# -1), sending client_secret_basic credentials the sidecar ignores. Checked: a valid token
# passes, a tampered, a refresh and an expired token are refused, a token revoked at the
# authority is refused within the sidecar's 1 s bound (the measured delay is printed), and the
# authority answered no introspection at all (its /metrics).
(umask 077 && printf %s "$gateway_key" >"$tmp/gateway.key")
"$sidecar" --authority="$grpc" --api_key_file="$tmp/gateway.key" --tls_ca="$tmp/pki/ca.pem" \
  --issuer=https://auth.interop.test --audience=api --leeway=0s --listen=127.0.0.1:0 \
  --http_listen=127.0.0.1:0 --http_tls_cert="$tmp/pki/server.pem" \
  --http_tls_key="$tmp/pki/server.key" >"$tmp/sidecar.out" 2>"$tmp/sidecar.err" &
pids+=($!)
sidecar_http=$(wait_line "ta-verifier-sidecar http on" "$tmp/sidecar.out" "${pids[-1]}")
echo "sidecar: https $sidecar_http"
INTROSPECT_URL="https://$sidecar_http/oauth2/introspect"
source "$here/apache/start_apache.sh"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# The sidecar is current once it answers a fresh token active (its first bookmark arrived).
probe=$(issue probe)
for _ in $(seq 1 100); do
  curl -s --cacert "$tmp/pki/ca.pem" -d "token=$probe" "$INTROSPECT_URL" | grep -q '"active":true' &&
    break
  sleep 0.1
done

pair=$(ctl --json issue alice --client_id=web --scope=read)
token=$(sed -n 's/.*"accessToken": *"\([^"]*\)".*/\1/p' <<<"$pair")
refresh=$(sed -n 's/.*"refreshToken": *"\([^"]*\)".*/\1/p' <<<"$pair")
[[ -n "$token" && -n "$refresh" ]] || fail "could not issue tokens"
issued_ms=$(now_ms)
sig=${token##*.}
tampered="${token%.*}.$([[ ${sig:0:1} == A ]] && echo B || echo A)${sig:1}"

expect "sidecar: valid token" 200 "$introspect_port" -H "$(bearer "$token")"
grep -q "hello alice" "$tmp/body" || { failed=$((failed + 1)); echo "FAIL: backend did not see alice" >&2; }
expect "sidecar: no token" 401 "$introspect_port"
expect "sidecar: tampered token" 401 "$introspect_port" -H "$(bearer "$tampered")"
expect "sidecar: refresh token as a bearer token" 401 "$introspect_port" -H "$(bearer "$refresh")"

# Revocation at the authority -> refused by Apache, polled back to back from the ack; 5 times.
delays=()
for round in 1 2 3 4 5; do
  victim=$(issue "carol$round")
  expect "sidecar: token to revoke, before ($round)" 200 "$introspect_port" -H "$(bearer "$victim")"
  ctl revoke - <<<"$victim" >/dev/null || fail "revoke over gRPC failed"
  acked=$(now_ms)
  code=200
  while [[ "$code" == 200 ]] && (($(now_ms) - acked < 5000)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "$(bearer "$victim")" \
      "http://127.0.0.1:$introspect_port/api/hello")
  done
  delay=$(($(now_ms) - acked))
  delays+=("$delay")
  # The sidecar's bound is 1 s; 3 s leaves room for a loaded machine (the figures are printed).
  if [[ "$code" == 401 ]] && ((delay <= 3000)); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: revoked token still let through after $delay ms (HTTP $code)" >&2
  fi
done
echo "sidecar: revoked tokens refused by Apache after (ms from the revoke's ack): ${delays[*]}"
other=$(issue bob)
expect "sidecar: another valid token still passes" 200 "$introspect_port" -H "$(bearer "$other")"
# client_secret_post and no client authentication at all are accepted alike on loopback.
curl -s --cacert "$tmp/pki/ca.pem" -d "token=$other" -d client_id=gateway -d client_secret=x \
  "$INTROSPECT_URL" | grep -q '"active":true' && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: client_secret_post refused" >&2; }

# Expiry: the first token (20 s access_ttl) once its exp has passed (the sidecar's leeway 0).
wait_ms=$((issued_ms + 21500 - $(now_ms)))
((wait_ms > 0)) && sleep "$((wait_ms / 1000)).$(printf %03d $((wait_ms % 1000)))"
expect "sidecar: expired token" 401 "$introspect_port" -H "$(bearer "$token")"

# Zero hops: the authority counted no introspection on either face.
curl -s --cacert "$tmp/pki/ca.pem" "$TA_HTTP/metrics" >"$tmp/metrics" || fail "no /metrics"
if grep -E '^ta_(http|grpc)_requests_total\{[^}]*(endpoint="introspect"|method="Introspect")' \
  "$tmp/metrics" | grep -v ' 0$' >&2; then
  failed=$((failed + 1))
  echo "FAIL: the authority answered introspections (above)" >&2
else
  passed=$((passed + 1))
fi

if ((failed > 0)); then
  echo "--- apache error.log" >&2
  tail -n 30 "$tmp/apache/error.log" >&2 || true
  tail -n 20 "$tmp/sidecar.err" >&2 || true
fi
echo "apache via sidecar: $passed passed, $failed failed"
((failed == 0))
