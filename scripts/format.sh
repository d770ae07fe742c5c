#!/usr/bin/env bash
# Formats C++ files with the repository's .clang-format: the files named, or every tracked
# .cc/.h when none is (--check: report, change nothing).
#   scripts/format.sh [--check] [FILE...]      (paths from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
if [[ ${1:-} == --check ]]; then check=1; shift; fi
if (($#)); then files=("$@"); else mapfile -t files < <(git ls-files '*.cc' '*.h'); fi
if ((check)); then
  clang-format --dry-run --Werror "${files[@]}"
else
  clang-format -i "${files[@]}"
fi
