#!/usr/bin/env bash
# build.sh BUILD_TYPE DIR [TARGET...]: configures (once) and builds with Ninja (+ ccache).
set -euo pipefail
cd "$(dirname "$0")/.."
type=$1 dir=$2
shift 2
if [[ ! -f "$dir/build.ninja" ]]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" >/dev/null
fi
jobs=$(nproc)
if (($#)); then
  cmake --build "$dir" --parallel "$jobs" --target "$@"
else
  cmake --build "$dir" --parallel "$jobs"
fi
