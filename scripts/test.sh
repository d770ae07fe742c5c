#!/usr/bin/env bash
# Installs what is missing (scripts/setup.sh --test), builds (g++, warnings as errors:
# -DTA_WERROR=ON), and runs every test (CTest); then the tests under ASan+UBSan
# (scripts/sanitize.sh --asan-only) and a bounded fuzz pass (scripts/fuzz.sh --ci: 25 s per
# target). Exits non-zero on any failure.
#   --long   also the TSan pass (a build of its own: kept out of the default run so that a
#            fresh clone's CI stays under 45 minutes) and the long variants: 200
#            crash-under-load rounds, the replica tests' long form (200 refresh-race rounds,
#            25 failover rounds, 500 propagation samples, 100 revocations timed in every
#            verifier consumer) and 10 min of fuzzing per target
set -euo pipefail
cd "$(dirname "$0")/.."
long=0
[[ ${1:-} == --long ]] && long=1
bash scripts/setup.sh --test
bash scripts/build.sh RelWithDebInfo build/test -DTA_WERROR=ON
ctest --test-dir build/test --output-on-failure --parallel "$(nproc)" --timeout 300
if ((long)); then
  bash scripts/sanitize.sh
  build/test/tests/reliability/reliability_tests "[crash]" --rounds 200
  build/test/tests/replicas/replica_tests --long
  bash tests/replicas/consumers_test.sh build/test/tests/replicas/replica_tests "$PWD" \
    "$PWD/build/test/tests/client" --long
  bash scripts/fuzz.sh --time 600
else
  bash scripts/sanitize.sh --asan-only
  bash scripts/fuzz.sh --ci
fi
