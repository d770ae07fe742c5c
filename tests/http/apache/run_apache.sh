# Sourced by run_interop.sh apache (uses its fail, ctl, tmp, here, TA_HTTP and gateway_key):
# Apache httpd + mod_auth_openidc as a resource server (apache/start_apache.sh), (a) validating
# bearer JWTs against our JWKS URI, (b) introspecting them at our RFC 7662 endpoint.
source "$here/apache/start_apache.sh"

pair=$(ctl --json issue alice --client_id=web --scope=read)
token=$(sed -n 's/.*"accessToken": *"\([^"]*\)".*/\1/p' <<<"$pair")
refresh=$(sed -n 's/.*"refreshToken": *"\([^"]*\)".*/\1/p' <<<"$pair")
[[ -n "$token" && -n "$refresh" ]] || fail "could not issue tokens"
# Flip the first signature character (the last one may carry only padding bits).
sig=${token##*.}
tampered="${token%.*}.$([[ ${sig:0:1} == A ]] && echo B || echo A)${sig:1}"

# (a) JWKS.
expect "jwks: valid token" 200 "$jwks_port" -H "$(bearer "$token")"
grep -q "hello alice" "$tmp/body" || { failed=$((failed + 1)); echo "FAIL: backend did not see alice" >&2; }
expect "jwks: no token" 401 "$jwks_port"
expect "jwks: tampered token" 401 "$jwks_port" -H "$(bearer "$tampered")"
# (b) Introspection.
expect "introspect: valid token" 200 "$introspect_port" -H "$(bearer "$token")"
grep -q "hello alice" "$tmp/body" || { failed=$((failed + 1)); echo "FAIL: backend did not see alice" >&2; }
expect "introspect: refresh token as a bearer token" 401 "$introspect_port" -H "$(bearer "$refresh")"
expect "introspect: tampered token" 401 "$introspect_port" -H "$(bearer "$tampered")"
ctl revoke - <<<"$token" >/dev/null || fail "revoke over gRPC failed"
expect "introspect: token revoked through gRPC" 401 "$introspect_port" -H "$(bearer "$token")"
other=$(issue bob)
expect "introspect: another valid token still passes" 200 "$introspect_port" -H "$(bearer "$other")"

if ((failed > 0)); then
  echo "--- apache error.log" >&2
  tail -n 30 "$tmp/apache/error.log" >&2 || true
fi
echo "apache: $passed passed, $failed failed"
((failed == 0))
