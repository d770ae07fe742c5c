#!/usr/bin/env bash
# clang-tidy over the project's sources, using the compile database of build/test.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -f build/test/compile_commands.json ]] || bash scripts/build.sh RelWithDebInfo build/test
git ls-files 'server/*.cc' 'storage/*.cc' 'client/*.cc' | xargs -P "$(nproc)" -n 4 \
  clang-tidy -p build/test --quiet
