#!/usr/bin/env bash
# The README's curl lines ("## The HTTP face") run as written against a real server
# (readme_http.py).
#   readme_http_test.sh SERVER_BINARY TOKENCTL_BINARY SOURCE_DIR
# The work directory looks like the repository root after scripts/run.sh: data/admin.key and
# build/release/client/tokenctl; TA_SERVER gives tokenctl the server's gRPC address.
set -euo pipefail

server=${1:?server binary}
tokenctl=${2:?tokenctl binary}
src=${3:?source dir}
command -v curl >/dev/null || { echo "FAIL: curl not found (Debian package curl)" >&2; exit 1; }

source "$(dirname "$0")/live_server.sh"
start_server "$server" --http_listen=127.0.0.1:0
http=
for _ in $(seq 1 100); do  # printed right after the gRPC line
  http=$(sed -n 's/^http listening on //p' "$tmp/server.out" | head -n1)
  [[ -n "$http" ]] && break
  sleep 0.1
done
[[ -n "$http" ]] || fail "no 'http listening on' line"
mkdir -p "$tmp/build/release/client"
ln -s "$tokenctl" "$tmp/build/release/client/tokenctl"
TA_SERVER=$address /usr/bin/python3 "$(dirname "$0")/readme_http.py" "$src/README.md" "$http" "$tmp"
