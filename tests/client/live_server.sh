# Sourced by the shell drivers in tests/client: the real server for one test.
#   source live_server.sh; start_server SERVER_BINARY [FLAG...]
# Creates $tmp (a fresh temp dir removed on exit), starts SERVER_BINARY on 127.0.0.1:0 with
# data dir $tmp/data and --default_audience=api plus FLAGs, and sets $address from its
# "listening on" line and key_args to ($tmp/data/admin.key) when the server wrote one. The
# server gets SIGTERM on exit. fail MESSAGE exits 1 with "FAIL: MESSAGE".

fail() { echo "FAIL: $*" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ta-client-test-XXXXXX")
server_pid=
address=
key_args=()
cleanup_live_server() {
  if [[ -n "$server_pid" ]]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" || true; fi
  rm -rf "$tmp"
}
trap cleanup_live_server EXIT

start_server() {
  local server=${1:?server binary}
  shift
  mkdir -p "$tmp/data"
  "$server" --listen=127.0.0.1:0 --data_dir="$tmp/data" --default_audience=api "$@" \
    >"$tmp/server.out" 2>"$tmp/server.err" </dev/null &
  server_pid=$!
  for _ in $(seq 1 200); do
    if grep -q '^listening on ' "$tmp/server.out" 2>/dev/null; then
      address=$(sed -n 's/^listening on //p' "$tmp/server.out" | head -n1)
      [[ -f "$tmp/data/admin.key" ]] && key_args=("$tmp/data/admin.key")
      echo "server at $address${key_args:+ (with admin.key)}"
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.err" >&2; fail "server exited early"; }
    sleep 0.1
  done
  fail "server printed no listening line in 20 s"
}
