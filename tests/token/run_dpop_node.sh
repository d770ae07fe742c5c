#!/usr/bin/env bash
# DPoP proofs made by npm dpop and oauth4webapi (tests/token/dpop_node), checked by our
# verifier through dpop_tool. A missing node or npm FAILS with the Debian package to install.
#   run_dpop_node.sh DPOP_TOOL WORK_DIR
set -euo pipefail
tool=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)/dpop_node
fail() { echo "run_dpop_node: $*" >&2; exit 1; }
command -v node >/dev/null || fail "node not found (Debian package nodejs)"
command -v npm >/dev/null || fail "npm not found (Debian package npm)"
mkdir -p "$work"
# npm ci only when the lock changed or nothing is installed: a second run needs no network.
if ! cmp -s "$here/package-lock.json" "$work/package-lock.json" ||
   [[ ! -d "$work/node_modules/dpop" || ! -d "$work/node_modules/oauth4webapi" ]]; then
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) ||
    fail "npm ci failed in $work"
fi
cp "$here/dpop_check.mjs" "$work/"
node "$work/dpop_check.mjs" "$tool"
