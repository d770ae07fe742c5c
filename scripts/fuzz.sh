#!/usr/bin/env bash
# fuzz.sh [--ci] [--time SECONDS] [TARGET...]: builds the libFuzzer targets of tests/fuzz with
# clang (ASan + UBSan, in build/fuzz) and runs each for a bounded time.
#   --ci          25 s per target (what scripts/test.sh runs), without the entropic schedule:
#                 it keeps every feature seen < 255 times as "rare" and scans that list for
#                 each feature of each run, which in a short run of a large target (request:
#                 thousands of features an input) costs more than the target itself (3x fewer
#                 runs); its gain, steering a long campaign to rare features, needs minutes
#   --time N      N seconds per target (default 600: the long run, entropic on)
#   TARGET        base64url jwt dpop storage_codec request http_request (default: all)
# Each target starts from the checked-in corpus tests/fuzz/corpus/<target>/ (never modified)
# plus a working corpus in build/fuzz/corpus/<target>/ that grows across runs. A crash,
# leak or timeout fails the script; the input is kept in build/fuzz/findings/<target>/. Fix
# the bug, then copy the input to tests/fuzz/corpus/<target>/finding-<what> so that the
# ordinary build replays it as a regression test (ctest -R fuzz/).
# Prints executions per target (summed over the workers: see below). Needs clang and
# libclang-rt-14-dev.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
ci=0
schedule=()
targets=()
while (($#)); do
  case $1 in
    --ci) ci=1; seconds=25; schedule=(-entropic=0) ;;
    --time) seconds=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
((${#targets[@]})) || targets=(base64url jwt dpop storage_codec request http_request)

if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz.sh: needs clang and libclang-rt-14-dev (apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi
dir=build/fuzz
if [[ ! -f $dir/build.ninja ]]; then
  CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTA_FUZZ=ON >/dev/null
fi
cmake --build "$dir" --parallel "${TA_JOBS:-$(nproc)}" --target "${targets[@]/#/fuzz_}"

# The CI pass (--ci) keeps no allocation stack per malloc (malloc_context_size=0): every check
# still runs, a report just lacks where the memory was allocated -- replay the saved input
# with the default options for that. Measured on `request`: ~12 % more runs.
asan_ci=""
((ci)) && asan_ci=":malloc_context_size=0"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1$asan_ci}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:suppressions=$PWD/tests/fuzz/ubsan.supp}
# Static singletons of gRPC/protobuf/absl stay allocated at exit; not our leaks.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0}

# Each target runs in `workers` processes at once (libFuzzer -jobs/-workers, one per core by
# default; TA_FUZZ_WORKERS overrides): they share the working corpus, and the executions are
# the sum. A whole-stack target such as `request` costs ~40-80 µs an input (a real core and
# store behind ASan, coverage collection), so one core gives it ~300 k runs in 25 s; both
# cores of the CI machine give it twice that. A crash in any worker fails the run.
workers=${TA_FUZZ_WORKERS:-$(nproc)}
root=$PWD
status=0
summary=()
for t in "${targets[@]}"; do
  work=$root/$dir/corpus/$t findings=$root/$dir/findings/$t log=$root/$dir/fuzz-$t.log
  jobs_dir=$root/$dir/jobs/$t
  rm -rf "$jobs_dir"
  mkdir -p "$work" "$findings" "$jobs_dir"
  echo "fuzz: $t for ${seconds}s, $workers worker(s)"
  max_len=4096
  [[ $t == jwt ]] && max_len=12288
  parallel=()
  ((workers > 1)) && parallel=(-jobs="$workers" -workers="$workers")
  # The workers' logs are fuzz-N.log in the directory they start in.
  if (cd "$jobs_dir" && "$root/$dir/tests/fuzz/fuzz_$t" "${parallel[@]}" "${schedule[@]}" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=$max_len \
      -print_final_stats=1 -artifact_prefix="$findings/" "$work" "$root/tests/fuzz/corpus/$t") \
      >"$log" 2>&1; then
    result=ok
  else
    result="FAILED (input in $findings/, log $log)"
    status=1
    grep -hE "ERROR|SUMMARY|Test unit written" "$log" "$jobs_dir"/fuzz-*.log 2>/dev/null |
      head -5 || true
  fi
  logs=("$log")
  ((workers > 1)) && logs=("$jobs_dir"/fuzz-*.log)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "${logs[@]}" 2>/dev/null |
    awk '{s += $1} END {print s + 0}')
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "${logs[@]}" 2>/dev/null |
    awk '{s += $1} END {print s + 0}')
  cov=$(grep -ohE 'cov: [0-9]+' "${logs[@]}" 2>/dev/null | sort -t' ' -k2 -n | tail -1)
  summary+=("$(printf '%-14s %10s execs %7s exec/s  %-9s corpus %5s  %s' "$t" "${execs:-?}" \
    "${rate:-?}" "${cov:-cov: ?}" "$(ls "$work" | wc -l)" "$result")")
done
echo "fuzz summary (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
exit $status
