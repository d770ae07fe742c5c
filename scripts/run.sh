#!/usr/bin/env bash
# Installs what running needs and is missing (scripts/setup.sh --run: the compiler and the
# libraries, none of the test toolchain), builds Release (token-authority and tokenctl only;
# the tests are not even configured), and starts the server on 127.0.0.1:50051 (gRPC) and
# 127.0.0.1:8080 (HTTP: JWKS, metadata, RFC 7662/7009, /metrics, /healthz) with its RocksDB
# store under ./data and a signing key generated on first start (./data/keys).
# Extra arguments go to the server, e.g. scripts/run.sh --listen=127.0.0.1:0
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --run
bash scripts/build.sh Release build/release -DTA_BUILD_TESTS=OFF token-authority tokenctl
exec build/release/server/token-authority --data_dir=./data --default_audience=api \
  --http_listen=127.0.0.1:8080 "$@"
