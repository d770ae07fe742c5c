#!/usr/bin/env bash
# setup.sh [--run | --package | --test | --list-run | --list-test]: installs the Debian 12
# packages that are missing. Idempotent: installs only what is missing. Runs as root or
# through sudo.
#   --run        what building and running the server and tokenctl needs (scripts/run.sh)
#   --package    that, plus what building the .deb needs (scripts/package.sh)
#   --test       (the default) all of it, plus what the tests, the benchmarks and the tools
#                need (scripts/test.sh, scripts/bench.sh)
#   --list-run, --list-test   print that list, one package a line, and install nothing
#                (tests/package/setup_run_test.py checks the run list against a real build)
set -euo pipefail

# Building token-authority and tokenctl (scripts/run.sh builds nothing else) and following
# the README with them.
RUN_PACKAGES=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config
  # libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev libssl-dev librocksdb-dev rapidjson-dev libgoogle-perftools-dev
  # the PostgreSQL store's client library (the server binary always links it)
  libpq-dev
  # the HTTP face: Boost.Beast (header-only, Boost 1.81) and prometheus-cpp (core + text format)
  libboost1.81-dev prometheus-cpp-dev
  # Boost.URL (compiled part of Boost 1.81): RFC 3986 normalisation of DPoP proofs' htu
  libboost-url1.81-dev
  # the README's HTTP examples
  curl
)

# CPack's DEB generator: dpkg-shlibdeps computes Depends, `file` finds the ELF files.
PACKAGE_PACKAGES=(dpkg-dev file)

TEST_PACKAGES=(
  # the server binaries for the tests' throwaway clusters (tests/support/pg_cluster.h), which
  # use /usr/lib/postgresql/15/bin directly
  postgresql-15
  # tests and benchmarks
  catch2 libbenchmark-dev
  # interop tests and the Python example client (run with /usr/bin/python3)
  python3 python3-jwt python3-cryptography python3-grpcio python3-protobuf
  # the SimpleJWT peer of scripts/bench.sh on PostgreSQL
  python3-psycopg2
  # test PKI for the TLS tests
  openssl
  # the HTTP face's interop tests: Apache httpd + mod_auth_openidc as a resource server,
  # promtool (prometheus) for /metrics and the alerting rules (tests/monitoring)
  apache2 libapache2-mod-auth-openidc prometheus
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
  # the Debian package test (tests/package): systemd-analyze for the unit, logrotate for its
  # stanza (and PACKAGE_PACKAGES to build the .deb)
  systemd logrotate
)

mode=test
case ${1:-} in
  --run) mode=run ;;
  --package) mode=package ;;
  --test | "") mode=test ;;
  --list-run) printf '%s\n' "${RUN_PACKAGES[@]}"; exit 0 ;;
  --list-test) printf '%s\n' "${RUN_PACKAGES[@]}" "${PACKAGE_PACKAGES[@]}" "${TEST_PACKAGES[@]}"; exit 0 ;;
  -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
  *) echo "setup.sh: unknown argument $1 (--run or --test)" >&2; exit 2 ;;
esac

PACKAGES=("${RUN_PACKAGES[@]}")
# The Node example client (npm packages pinned in client/node/package-lock.json). A machine
# may already have node and npm from elsewhere (Debian's npm would conflict with them), so
# these are installed only when the command is missing.
declare -A BY_COMMAND=()
[[ $mode == run ]] || PACKAGES+=("${PACKAGE_PACKAGES[@]}")
if [[ $mode == test ]]; then
  PACKAGES+=("${TEST_PACKAGES[@]}")
  BY_COMMAND=([node]=nodejs [npm]=npm)
fi

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
if [[ $mode == test && ! -d /usr/lib/postgresql/15 ]]; then
  $SUDO mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" |
    $SUDO tee /etc/postgresql-common/createcluster.d/token-authority.conf >/dev/null
fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
