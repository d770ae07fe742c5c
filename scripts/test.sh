#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (CTest). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh RelWithDebInfo build/test
ctest --test-dir build/test --output-on-failure --parallel "$(nproc)" --timeout 300
