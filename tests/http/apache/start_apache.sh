# Sourced by run_apache.sh and run_apache_sidecar.sh (uses run_interop.sh's fail, wait_line,
# ctl, pids, tmp, here, TA_HTTP and gateway_key): starts Apache httpd + mod_auth_openidc as a
# resource server in front of apache/backend.py, one virtual host (JWKS_PORT) validating bearer
# JWTs against the JWKS URI $TA_HTTP/.well-known/jwks.json, the other (INTROSPECT_PORT)
# introspecting them at $INTROSPECT_URL (default: the authority's RFC 7662 endpoint), both
# over TLS verified against the test CA; defines expect, bearer and issue. Apache runs in the
# foreground from a temp ServerRoot on ports picked at run time; as root its children run as
# www-data.
apache=$(command -v apache2 || echo /usr/sbin/apache2)
[[ -x "$apache" ]] || fail "apache2 not found (Debian packages apache2 libapache2-mod-auth-openidc)"
[[ -f /usr/lib/apache2/modules/mod_auth_openidc.so ]] ||
  fail "mod_auth_openidc not found (Debian package libapache2-mod-auth-openidc)"
command -v curl >/dev/null || fail "curl not found (Debian package curl)"

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

/usr/bin/python3 "$here/apache/backend.py" >"$tmp/backend.out" 2>"$tmp/backend.err" &
pids+=($!)
backend=$(wait_line "backend listening on" "$tmp/backend.out" "${pids[-1]}")
jwks_port=$(free_port)
introspect_port=$(free_port)
while [[ "$introspect_port" == "$jwks_port" ]]; do introspect_port=$(free_port); done

user_group=""
if [[ $(id -u) -eq 0 ]]; then
  user_group=$'User www-data\nGroup www-data'
  id www-data >/dev/null 2>&1 || user_group=$'User nobody\nGroup nogroup'
fi
mkdir -p "$tmp/apache"
# Apache's children (www-data when we are root) read the CA bundle at request time.
chmod 711 "$tmp"
chmod 755 "$tmp/apache"
install -m 644 "$tmp/pki/ca.pem" "$tmp/apache/ca.pem"
export AP_USER_GROUP="$user_group"
sed -e "s#@ROOT@#$tmp/apache#g" -e "s#@TA_HTTP@#$TA_HTTP#g" \
  -e "s#@INTROSPECT_URL@#${INTROSPECT_URL:-$TA_HTTP/oauth2/introspect}#g" \
  -e "s#@JWKS_PORT@#$jwks_port#g" -e "s#@INTROSPECT_PORT@#$introspect_port#g" \
  -e "s#@BACKEND_PORT@#${backend##*:}#g" -e "s#@GATEWAY_KEY@#$gateway_key#g" \
  -e "s#@CA@#$tmp/apache/ca.pem#g" -e "s#@PASSPHRASE@#$(head -c 18 /dev/urandom | base64 | tr -d '=+/')#g" \
  "$here/apache/httpd.conf.in" |
  awk '/@USER_GROUP@/ { print ENVIRON["AP_USER_GROUP"]; next } { print }' >"$tmp/apache/httpd.conf"
"$apache" -d "$tmp/apache" -f "$tmp/apache/httpd.conf" -DFOREGROUND >"$tmp/apache.out" 2>&1 &
pids+=($!)
apache_pid=${pids[-1]}

for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$jwks_port/api/" && curl -s -o /dev/null \
    "http://127.0.0.1:$introspect_port/api/" && break
  kill -0 "$apache_pid" 2>/dev/null || { cat "$tmp/apache.out" "$tmp/apache/error.log" >&2; fail "apache exited"; }
  sleep 0.1
done

passed=0
failed=0
# expect NAME STATUS PORT [curl args...]: the status Apache answers /api/hello with.
expect() {
  local name=$1 want=$2 port=$3
  shift 3
  local got
  got=$(curl -s -o "$tmp/body" -w '%{http_code}' "$@" "http://127.0.0.1:$port/api/hello")
  if [[ "$got" == "$want" ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $name: HTTP $got, expected $want" >&2
  fi
}
bearer() { echo "Authorization: Bearer $1"; }
issue() { ctl --json issue "$1" --client_id=web --scope=read | sed -n 's/.*"accessToken": *"\([^"]*\)".*/\1/p'; }

