#!/usr/bin/env bash
# Installs exactly the Debian 12 packages the build, the tests and the tools need.
# Idempotent: installs only what is missing. Runs as root or through sudo.
set -euo pipefail

PACKAGES=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config
  # libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev libssl-dev librocksdb-dev rapidjson-dev libgoogle-perftools-dev
  # the PostgreSQL store: libpq to build; the server binaries for the tests' throwaway
  # clusters (tests/support/pg_cluster.h), which use /usr/lib/postgresql/15/bin directly
  libpq-dev postgresql-15
  # the HTTP face: Boost.Beast (header-only, Boost 1.81) and prometheus-cpp (core + text format)
  libboost1.81-dev prometheus-cpp-dev
  # tests and benchmarks
  catch2 libbenchmark-dev
  # interop tests and the Python example client (run with /usr/bin/python3)
  python3 python3-jwt python3-cryptography python3-grpcio python3-protobuf
  # the SimpleJWT peer of scripts/bench.sh on PostgreSQL
  python3-psycopg2
  # test PKI for the TLS tests
  openssl
  # the HTTP face's interop tests: Apache httpd + mod_auth_openidc as a resource server,
  # promtool (prometheus) for /metrics, curl (also for the README's examples)
  apache2 libapache2-mod-auth-openidc prometheus curl
  # fuzzing (libFuzzer) and the storage-fault tests (chattr)
  clang libclang-rt-14-dev e2fsprogs
  # the Go, Java and Ruby example clients (tests/client/run_example.sh), offline from Debian:
  # Go in GOPATH mode over /usr/share/gocode; protoc-gen-go (APIv2) replaces the older
  # golang-goprotobuf-dev plugin, which conflicts with it
  golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
  protoc-gen-go protoc-gen-go-grpc
  default-jdk-headless libgrpc-java protobuf-compiler-grpc-java-plugin libprotobuf-java
  libnetty-java libperfmark-java libguava-java libgoogle-gson-java libgeronimo-annotation-1.3-spec-java
  ruby-grpc ruby-grpc-tools ruby-google-protobuf
  # the revocation stream's protocol model (tests/model/check_model.sh)
  spin
  # tokenctl under a real terminal (tests/client/tty_test.sh)
  tmux
)

# The Node example client (npm packages pinned in client/node/package-lock.json). A machine
# may already have node and npm from elsewhere (Debian's npm would conflict with them), so
# these are installed only when the command is missing.
declare -A BY_COMMAND=([node]=nodejs [npm]=npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for cmd in "${!BY_COMMAND[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${BY_COMMAND[$cmd]}")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
# The tests bring their own clusters: keep Debian from creating (and starting) a system one
# when it installs PostgreSQL for the first time (a drop-in its createcluster.conf includes;
# a machine that already has PostgreSQL keeps what it has).
if [[ ! -d /usr/lib/postgresql/15 ]]; then
  $SUDO mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" |
    $SUDO tee /etc/postgresql-common/createcluster.d/token-authority.conf >/dev/null
fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
