#!/usr/bin/env bash
# The Debian package, end to end on this machine (issue 23, item 13):
#   package_test.sh BUILD_DIR SOURCE_DIR
# 1. CPack makes the .deb from the already-built tree (no rebuild): binaries in /usr/bin,
#    the units, /etc/token-authority/flags, sidecar.flags and the logrotate stanza as
#    conffiles, Depends from dpkg-shlibdeps.
# 2. dpkg -i installs it; systemd-analyze verifies both installed units and scores their
#    hardening offline; the sidecar's unit is not enabled.
# 3. The installed server starts as the unit would start it (this machine has no systemd as
#    PID 1): the unit's ExecStart line, as a user of systemd's dynamic range owning only the
#    state and log directories (created as StateDirectory=/LogsDirectory= would: 0700, under
#    /var/lib/private and /var/log/private with the public symlinks), no capabilities, no new
#    privileges, the unit's UMask, a read-only / (ProtectSystem=strict) and a private /tmp,
#    in a mount namespace of its own. Only the ports are overridden (port 0). Then the
#    installed tokenctl issues and introspects a token with the generated admin key, the
#    audit trail lands in /var/log/token-authority, and logrotate (the installed stanza,
#    postrotate pointed at this process) rotates it and the server writes a fresh file. The
#    installed ta-verifier-sidecar, started with its installed flags file (ports, issuer and
#    key overridden), follows that server and answers RFC 7662 for the token.
# 4. dpkg -r then dpkg --purge: nothing the package installed or its scripts made is left,
#    except the state directory (kept on purge by design), which this test then removes.
# Needs root (dpkg -i); refuses to run where token-authority is installed or its state or
# log directory exists, so it never touches a real installation. Cleans up on any exit:
# the server stopped, the package purged, the directories it made removed.
set -euo pipefail

build=${1:?build dir}
src=${2:?source dir}
unit=token-authority.service
sidecar_unit=ta-verifier-sidecar.service
state=/var/lib/token-authority
logs=/var/log/token-authority

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

[[ $(id -u) -eq 0 ]] || fail "needs root (dpkg -i); CI runs as root"
for tool in cpack dpkg-shlibdeps file systemd-analyze logrotate setpriv unshare curl; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/setup.sh installs it)"
done
if dpkg-query -W -f='${Status}' token-authority 2>/dev/null | grep -q installed; then
  fail "the token-authority package is installed on this machine: this test installs and purges it, so it refuses to run here"
fi
for d in "$state" /var/lib/private/token-authority "$logs" /var/log/private/token-authority; do
  [[ ! -e $d && ! -L $d ]] || fail "$d exists (a real installation's?): this test would use and remove it, so it refuses to run here"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ta-package-XXXXXX")
server_pid=
sidecar_pid=
installed=0
masked=0
made_dirs=0
made_private=()  # /var/lib/private, /var/log/private when this test made them
cleanup() {
  local rc=$?
  if [[ -n $sidecar_pid ]]; then kill -TERM "$sidecar_pid" 2>/dev/null || true; wait "$sidecar_pid" 2>/dev/null || true; fi
  if [[ -n $server_pid ]]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if ((installed)); then dpkg --purge token-authority >/dev/null 2>&1 || echo "cleanup: dpkg --purge failed" >&2; fi
  if ((masked)); then systemctl unmask --runtime "$unit" "$sidecar_unit" >/dev/null 2>&1 || true; fi
  if ((made_dirs)); then
    rm -rf "$state" /var/lib/private/token-authority "$logs" /var/log/private/token-authority
    for d in "${made_private[@]}"; do rmdir "$d" 2>/dev/null || true; done
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

# dpkg takes its lock without waiting: retry while another package manager holds it.
dpkg_retry() {
  for _ in $(seq 1 60); do
    if dpkg "$@" >"$tmp/dpkg.log" 2>&1; then return 0; fi
    grep -q 'lock' "$tmp/dpkg.log" || { cat "$tmp/dpkg.log" >&2; return 1; }
    sleep 2
  done
  cat "$tmp/dpkg.log" >&2
  return 1
}

step "1. cpack on the built tree"
start=$(date +%s)
cpack --config "$build/CPackConfig.cmake" -G DEB -B "$tmp/cpack" >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log" >&2; fail "cpack failed"; }
deb=$(ls "$tmp"/cpack/token-authority_*.deb 2>/dev/null | head -n1)
[[ -f $deb ]] || { cat "$tmp/cpack.log" >&2; fail "cpack made no token-authority_*.deb"; }
echo "$(basename "$deb"): $(du -k "$deb" | cut -f1) KiB in $(($(date +%s) - start)) s"
dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|' >"$tmp/contents"
for f in /usr/bin/token-authority /usr/bin/tokenctl /usr/bin/ta-verifier-sidecar \
  /usr/lib/systemd/system/$unit /usr/lib/systemd/system/$sidecar_unit \
  /etc/token-authority/flags /etc/token-authority/sidecar.flags /etc/logrotate.d/token-authority \
  /usr/share/doc/token-authority/README.md; do
  grep -qx "$f" "$tmp/contents" || fail "$f is not in the package: $(cat "$tmp/contents")"
done
dpkg-deb -f "$deb" Depends | grep -q 'libgrpc++' || fail "Depends lacks libgrpc++: $(dpkg-deb -f "$deb" Depends)"
dpkg-deb -e "$deb" "$tmp/control"
diff <(sort "$tmp/control/conffiles") <(printf '/etc/logrotate.d/token-authority\n/etc/token-authority/flags\n/etc/token-authority/sidecar.flags\n') ||
  fail "conffiles are not the two flags files and the logrotate stanza"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/token-authority | file - | grep -q ', stripped' ||
  fail "the packaged server is not stripped"

step "2. dpkg -i, systemd-analyze"
if [[ -d /run/systemd/system ]]; then
  # A machine with systemd running: keep the postinst from starting the real service.
  systemctl mask --runtime "$unit" "$sidecar_unit" >/dev/null
  masked=1
fi
installed=1
dpkg_retry -i "$deb" || fail "dpkg -i failed"
dpkg-query -L token-authority >"$tmp/files"
unit_file=/usr/lib/systemd/system/$unit
[[ -f $unit_file ]] || fail "$unit_file not installed"
systemd-analyze verify "$unit_file" 2>"$tmp/verify.err" || { cat "$tmp/verify.err" >&2; fail "systemd-analyze verify refused the unit"; }
[[ ! -s $tmp/verify.err ]] || { cat "$tmp/verify.err" >&2; fail "systemd-analyze verify warned"; }
systemd-analyze security --offline=true --threshold=20 "$unit_file" >"$tmp/security" 2>&1 ||
  { cat "$tmp/security" >&2; fail "systemd-analyze security: exposure above 2.0"; }
echo "systemd-analyze verify: clean; $(grep -o 'Overall exposure level.*' "$tmp/security")"
# The unit's hardening, as the issue asks for it.
for want in 'DynamicUser=yes' 'StateDirectory=token-authority' 'ProtectSystem=strict' \
  'NoNewPrivileges=yes' 'CapabilityBoundingSet=' 'ExecStart=/usr/bin/token-authority --flagfile=/etc/token-authority/flags'; do
  grep -qx "$want" "$unit_file" || fail "the unit lacks the line $want"
done
# The sidecar's unit: valid, as hardened, and installed disabled.
sidecar_file=/usr/lib/systemd/system/$sidecar_unit
[[ -f $sidecar_file ]] || fail "$sidecar_file not installed"
systemd-analyze verify "$sidecar_file" 2>"$tmp/verify.err" || { cat "$tmp/verify.err" >&2; fail "systemd-analyze verify refused the sidecar's unit"; }
[[ ! -s $tmp/verify.err ]] || { cat "$tmp/verify.err" >&2; fail "systemd-analyze verify warned on the sidecar's unit"; }
systemd-analyze security --offline=true --threshold=20 "$sidecar_file" >"$tmp/security" 2>&1 ||
  { cat "$tmp/security" >&2; fail "systemd-analyze security: the sidecar's exposure above 2.0"; }
echo "sidecar unit: verify clean; $(grep -o 'Overall exposure level.*' "$tmp/security")"
for want in 'DynamicUser=yes' 'ProtectSystem=strict' 'NoNewPrivileges=yes' \
  'LoadCredential=api.key:/etc/token-authority/sidecar.key' \
  'ExecStart=/usr/bin/ta-verifier-sidecar --flagfile=/etc/token-authority/sidecar.flags --api_key_file=%d/api.key'; do
  grep -qx "$want" "$sidecar_file" || fail "the sidecar's unit lacks the line $want"
done
enabled=$(find /etc/systemd/system -name "$sidecar_unit" -path '*.wants/*' 2>/dev/null)
[[ -z $enabled ]] || fail "the sidecar's unit was enabled by the package: $enabled"
logrotate -d /etc/logrotate.d/token-authority >"$tmp/logrotate-d" 2>&1 ||
  { cat "$tmp/logrotate-d" >&2; fail "logrotate -d refused the stanza"; }

step "3. the installed server, started as the unit would start it"
unit_value() { sed -n "s/^$1=//p" "$unit_file" | tail -n1; }
exec_start=$(unit_value ExecStart)
umask_value=$(unit_value UMask)
read -r -a argv <<<"$exec_start"
# A uid of systemd's DynamicUser range that names nobody here.
uid=61184
while getent passwd "$uid" >/dev/null || getent group "$uid" >/dev/null; do uid=$((uid + 1)); done
made_dirs=1
for base in /var/lib /var/log; do
  [[ -d $base/private ]] || made_private+=("$base/private")
  install -d -m 0700 -o root -g root "$base/private"
  install -d -m 0700 -o "$uid" -g "$uid" "$base/private/token-authority"
  ln -s private/token-authority "$base/token-authority"
done
# Inside the namespace, as systemd does for DynamicUser=: /var/lib/private and
# /var/log/private become traversable (a 0755 tmpfs holding only this unit's directory).
mkdir -m 0700 "$tmp/hold-state" "$tmp/hold-logs"
sandbox="set -e
mount --bind /var/lib/private/token-authority $tmp/hold-state
mount --bind /var/log/private/token-authority $tmp/hold-logs
for d in lib:state log:logs; do
  priv=/var/\${d%%:*}/private
  mount -t tmpfs -o mode=0755 tmpfs \$priv
  mkdir \$priv/token-authority
  mount --bind $tmp/hold-\${d#*:} \$priv/token-authority
done
mount -o remount,bind,ro /
mount -t tmpfs -o mode=1777 tmpfs /tmp
umask $umask_value
cd /
exec setpriv --reuid=$uid --regid=$uid --clear-groups --no-new-privs --inh-caps=-all \\
  --bounding-set=-all env -i PATH=/usr/bin:/bin LANG=C.UTF-8 \"\$@\""
# The ports are the only change to the unit's command line: port 0 for a hermetic test.
unshare --mount --propagation private -- bash -c "$sandbox" sandbox "${argv[@]}" \
  --listen=127.0.0.1:0 --http_listen=127.0.0.1:0 >"$tmp/server.out" 2>"$tmp/server.err" </dev/null &
server_pid=$!
wait_line() {  # PREFIX: prints the address of the server's "PREFIX HOST:PORT" line
  for _ in $(seq 1 300); do
    if grep -q "^$1 " "$tmp/server.out"; then sed -n "s/^$1 //p" "$tmp/server.out" | head -n1; return 0; fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.err" >&2; fail "the installed server exited at start"; }
    sleep 0.1
  done
  cat "$tmp/server.err" >&2
  fail "no '$1' line in 30 s"
}
grpc=$(wait_line "listening on")
http=$(wait_line "http listening on")
echo "installed server: gRPC $grpc, HTTP $http, uid $uid"
key=$state/admin.key
[[ -f $key ]] || fail "no admin.key in $state"
[[ $(stat -c '%u %a' "$key") == "$uid 600" ]] || fail "admin.key is $(stat -c '%u %a' "$key"), not $uid 600"
[[ -d $state/db && -d $state/keys ]] || fail "no db/ and keys/ in $state: $(ls "$state")"
ctl() { /usr/bin/tokenctl --server="$grpc" --api_key_file="$key" "$@"; }
token=$(ctl --json issue alice --client_id=web | sed -n 's/.*"accessToken": *"\([^"]*\)".*/\1/p')
[[ -n $token ]] || fail "the installed tokenctl could not issue a token"
ctl introspect - <<<"$token" | grep -q 'active: *true' || fail "the issued token does not introspect active"
curl -sf "http://$http/healthz/ready" >/dev/null || fail "/healthz/ready does not answer 200"
echo "issued and introspected a token for alice"
audit=$logs/audit.log
grep -q '"action":"session.issue"' "$audit" 2>/dev/null || fail "no session.issue event in $audit"
[[ $(stat -c '%u %a' "$audit") == "$uid 600" ]] || fail "the audit log is $(stat -c '%u %a' "$audit")"
# logrotate with the installed stanza; postrotate signals this server as ExecReload would.
sed "s|^\(\s*\)if systemctl.*|\1kill -HUP $server_pid|" /etc/logrotate.d/token-authority >"$tmp/logrotate.conf"
grep -q "kill -HUP $server_pid" "$tmp/logrotate.conf" || fail "the stanza's postrotate line changed: update this test"
logrotate -f -s "$tmp/logrotate.state" "$tmp/logrotate.conf" 2>"$tmp/logrotate.err" ||
  { cat "$tmp/logrotate.err" >&2; fail "logrotate failed on the installed stanza"; }
[[ -f $audit.1 ]] || fail "logrotate made no $audit.1: $(ls "$logs")"
ctl issue bob --client_id=web >/dev/null
for _ in $(seq 1 50); do grep -q '"subject":"bob"' "$audit" 2>/dev/null && break; sleep 0.1; done
grep -q '"subject":"bob"' "$audit" || fail "after rotation and SIGHUP the server does not write a new $audit"
echo "logrotate: rotated, the server reopened $audit"
# The installed sidecar with its installed flags (the ports, the issuer of a server without
# --issuer, and the key overridden), following the installed server.
/usr/bin/ta-verifier-sidecar --flagfile=/etc/token-authority/sidecar.flags --authority="$grpc" \
  --api_key_file="$key" --issuer=token-authority --listen=127.0.0.1:0 --http_listen=127.0.0.1:0 \
  >"$tmp/sidecar.out" 2>"$tmp/sidecar.err" &
sidecar_pid=$!
for _ in $(seq 1 100); do grep -q '^ta-verifier-sidecar http on ' "$tmp/sidecar.out" && break; sleep 0.1; done
sidecar_http=$(sed -n 's/^ta-verifier-sidecar http on //p' "$tmp/sidecar.out")
[[ -n $sidecar_http ]] || { cat "$tmp/sidecar.err" >&2; fail "the installed sidecar did not start"; }
for _ in $(seq 1 100); do
  curl -s -d "token=$token" "http://$sidecar_http/oauth2/introspect" | grep -q '"active":true' && break
  sleep 0.1
done
curl -s -d "token=$token" "http://$sidecar_http/oauth2/introspect" | grep -q '"active":true' ||
  { cat "$tmp/sidecar.err" >&2; fail "the installed sidecar does not answer the token active"; }
echo "installed sidecar: RFC 7662 on $sidecar_http answers the token active"
kill -TERM "$sidecar_pid"
wait "$sidecar_pid" || fail "the installed sidecar exited $? on SIGTERM"
sidecar_pid=
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=
((rc == 0)) || { cat "$tmp/server.err" >&2; fail "the installed server exited $rc on SIGTERM"; }

step "4. dpkg -r, dpkg --purge"
dpkg_retry -r token-authority || fail "dpkg -r failed"
[[ -f /etc/token-authority/flags ]] || fail "dpkg -r removed the conffile /etc/token-authority/flags"
[[ ! -e /usr/bin/token-authority ]] || fail "dpkg -r left /usr/bin/token-authority"
dpkg_retry --purge token-authority || fail "dpkg --purge failed"
installed=0
left=()
while read -r f; do
  [[ -e $f && ! -d $f ]] && left+=("$f")
done <"$tmp/files"
for f in /etc/token-authority /etc/logrotate.d/token-authority "$logs" /var/log/private/token-authority; do
  [[ -e $f || -L $f ]] && left+=("$f")
done
while read -r f; do left+=("$f"); done < <(find /etc/systemd /var/lib/systemd -name '*token-authority*' 2>/dev/null)
((${#left[@]} == 0)) || fail "left behind after purge: ${left[*]}"
[[ -f $state/admin.key && -d $state/db ]] || fail "purge removed the state directory $state"
echo "purged: nothing left but $state (the store, keys, admin.key), which this test now removes"
echo "1 passed, 0 failed"
