#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (CTest); then the tests under
# ASan+UBSan and TSan (scripts/sanitize.sh) and a bounded fuzz pass (scripts/fuzz.sh --ci:
# 25 s per target). Exits non-zero on any failure.
#   --long   the long variants: 200 crash-under-load rounds, the replica tests' long form (200
#            refresh-race rounds, 25 failover rounds, 500 propagation samples) and 10 min of
#            fuzzing per target
set -euo pipefail
cd "$(dirname "$0")/.."
long=0
[[ ${1:-} == --long ]] && long=1
bash scripts/setup.sh
bash scripts/build.sh RelWithDebInfo build/test
ctest --test-dir build/test --output-on-failure --parallel "$(nproc)" --timeout 300
bash scripts/sanitize.sh --ci
if ((long)); then
  build/test/tests/reliability/reliability_tests "[crash]" --rounds 200
  build/test/tests/replicas/replica_tests --long
  bash scripts/fuzz.sh --time 600
else
  bash scripts/fuzz.sh --ci
fi
