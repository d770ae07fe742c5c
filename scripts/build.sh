#!/usr/bin/env bash
# build.sh BUILD_TYPE DIR [-DNAME=VALUE...] [TARGET...]: configures and builds with Ninja
# (+ ccache). Configures when DIR has no build yet, or when a -D setting differs from DIR's
# cache (so e.g. -DTA_WERROR=ON reaches a build directory made without it).
set -euo pipefail
cd "$(dirname "$0")/.."
type=$1 dir=$2
shift 2
settings=() targets=()
for arg in "$@"; do
  case $arg in
    -D*) settings+=("$arg") ;;
    *) targets+=("$arg") ;;
  esac
done
configure=0
[[ -f "$dir/build.ninja" ]] || configure=1
for s in "${settings[@]}"; do  # -DNAME=VALUE or -DNAME:TYPE=VALUE, as CMakeCache.txt has it
  name=${s#-D} value=${name#*=} name=${name%%=*} name=${name%%:*}
  grep -qxE "${name}(:[A-Z]+)?=${value}" "$dir/CMakeCache.txt" 2>/dev/null || configure=1
done
if ((configure)); then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "${settings[@]}" >/dev/null
fi
jobs=$(nproc)
if ((${#targets[@]})); then
  cmake --build "$dir" --parallel "$jobs" --target "${targets[@]}"
else
  cmake --build "$dir" --parallel "$jobs"
fi
