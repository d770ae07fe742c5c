#!/usr/bin/env bash
# Issue 23 (10): what the README's recipes write into the repository root (the KEK `kek`,
# `data/`, the replicas' `data-1..3/` with admin keys) is git-ignored, so `git add -A` cannot
# commit a key. Checked with git itself against the repository's .gitignore, in a scratch
# repository (the source tree is not touched).
#   gitignore_test.sh SOURCE_DIR
set -euo pipefail
src=${1:?source dir}
command -v git >/dev/null || { echo "FAIL: git not found" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ta-gitignore-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
git -C "$tmp" init -q
cp "$src/.gitignore" "$tmp/"
mkdir -p "$tmp/data/keys" "$tmp/data-1" "$tmp/data-2" "$tmp/data-3" "$tmp/client" \
  "$tmp/client/node_dpop/node_modules/dpop"
# data/app.json: the DPoP walkthrough's app state (its private key); node_modules anywhere.
for f in kek data/admin.key data/keys/k.pem data-1/admin.key data-2/audit.log data-3/admin.key \
  data/app.json client/node_dpop/node_modules/dpop/index.js; do
  echo secret > "$tmp/$f"
done
echo code > "$tmp/client/client.cc"
git -C "$tmp" add -A
staged=$(git -C "$tmp" diff --cached --name-only | sort | tr '\n' ' ')
if [[ "$staged" != ".gitignore client/client.cc " ]]; then
  echo "FAIL: git add -A staged: $staged" >&2
  exit 1
fi
echo "ok: git add -A staged only: $staged"
