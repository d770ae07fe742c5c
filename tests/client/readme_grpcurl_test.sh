#!/usr/bin/env bash
# The README's grpcurl walkthrough, run as written with a real grpcurl (readme_grpcurl.py).
#   readme_grpcurl_test.sh SERVER_BINARY SOURCE_DIR
# grpcurl has no Debian package: the test uses $TA_GRPCURL, else ../shared/tools/grpcurl
# beside the source tree, else a grpcurl on PATH. Without one it SKIPS (exit 77, which CTest
# reports as "Skipped") and says why.
set -euo pipefail

server=${1:?server binary}
src=${2:?source dir}

grpcurl=${TA_GRPCURL:-}
for candidate in "$src/../shared/tools/grpcurl" "$(command -v grpcurl || true)"; do
  [[ -z "$grpcurl" && -n "$candidate" && -x "$candidate" ]] && grpcurl=$candidate
done
if [[ -z "$grpcurl" ]]; then
  echo "SKIP: no grpcurl (not in \$TA_GRPCURL, $src/../shared/tools/grpcurl or PATH);" \
    "grpcurl has no Debian package, so the README walkthrough is checked only where a copy exists"
  exit 77
fi
echo "grpcurl: $grpcurl ($("$grpcurl" -version 2>&1))"

source "$(dirname "$0")/live_server.sh"
start_server "$server" --issuer=http://127.0.0.1:8080  # the issuer of run.sh's server (README)
/usr/bin/python3 "$(dirname "$0")/readme_grpcurl.py" "$src/README.md" "$grpcurl" "$address" "$tmp"
