#!/usr/bin/env bash
# Runs the hidden case "[verifier_consumers]" of replica_tests (verifier_consumers_test.cc):
# every width of revocation made on replicas 1 and 2 reaching the sidecar binary (HTTP and
# gRPC), the Python example and the Node example, each following replica 0. This prepares
# what those examples need the way run_example.sh does (tests/client/example_tools.sh: Python
# stubs generated now; node_modules by npm ci in WORK_DIR/node_example, shared with the Node
# example tests) and hands it over in the environment. Extra arguments go to replica_tests
# (e.g. --long: 25 rounds instead of 6, or --consumer_rounds N).
#   consumers_test.sh REPLICA_TESTS SOURCE_DIR WORK_DIR [replica_tests args...]
set -euo pipefail

bin=${1:?replica_tests binary}
src=${2:?source dir}
work=${3:?work dir: tests/client in the build}
shift 3
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ta-consumers-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
source "$src/tests/client/example_tools.sh"

python_stubs
"${PYTHON:-/usr/bin/python3}" -c 'import jwt' 2>/dev/null ||
  fail "${PYTHON:-/usr/bin/python3} lacks PyJWT (Debian package python3-jwt)"
node_modules
cp "$src/client/node/local_verifier.js" "$src/tests/replicas/verifier_probe.js" \
  "$work/node_example/"

TA_PROBE_PYTHON="${PYTHON:-/usr/bin/python3}" \
TA_PROBE_PYTHONPATH="$tmp/gen:$src/client/python" \
TA_PROBE_PYTHON_SCRIPT="$src/client/python/local_verifier.py" \
TA_PROBE_NODE_SCRIPT="$work/node_example/verifier_probe.js" \
TA_PROTO_DIR="$src/proto" \
  "$bin" "[verifier_consumers]" "$@"
