#!/usr/bin/env bash
# package.sh [DIR]: builds the Debian package (README "Install as a service"): installs what
# is missing (scripts/setup.sh --package), builds Release (token-authority, tokenctl and
# ta-verifier-sidecar only), runs CPack and prints the path of the .deb (in DIR, default build/package).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/package}
bash scripts/setup.sh --package
bash scripts/build.sh Release build/release -DTA_BUILD_TESTS=OFF token-authority tokenctl ta-verifier-sidecar
cpack --config build/release/CPackConfig.cmake -G DEB -B "$out" >/dev/null
ls "$out"/token-authority_*.deb
