#!/usr/bin/env bash
# Function lengths of our C++ sources (a development measurement; nothing builds or tests on it).
# Usage: scripts/function_lengths.sh [--limit N] [--top K] [DIR...]
#   DIR defaults to the library and server sources: base server storage client token (those that
#   exist); pass tests to measure the tests. Prints the number of function definitions, the share
#   of them that are at most N lines long (default 40) and the K longest (default 20).
# A function's length is its definition from the line of its name to its closing brace, as
# universal-ctags finds them (C++ kind "f", with the "end" field); tracked .cc/.h files only.
# Lambdas (ctags names them __anon...) are part of the function that holds them, not counted apart.
# Needs universal-ctags (Debian: apt-get install universal-ctags) and jq.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=40
top=20
while [[ $# -gt 0 ]]; do
  case $1 in
    --limit) limit=$2; shift 2 ;;
    --top) top=$2; shift 2 ;;
    *) break ;;
  esac
done
dirs=("$@")
if [[ ${#dirs[@]} -eq 0 ]]; then
  for d in base server storage client token; do [[ -d $d ]] && dirs+=("$d"); done
fi
command -v ctags >/dev/null || { echo "universal-ctags is missing (apt-get install universal-ctags)" >&2; exit 2; }
mapfile -t files < <(git ls-files -- "${dirs[@]/%//*.cc}" "${dirs[@]/%//*.h}")
[[ ${#files[@]} -gt 0 ]] || { echo "no C++ files under: ${dirs[*]}" >&2; exit 2; }
lengths=$(ctags --output-format=json --fields=+ne --languages=C++ --langmap=C++:+.h \
                --kinds-C++=f -f - "${files[@]}" 2>/dev/null |
          jq -r 'select(.end != null and (.name | startswith("__anon") | not)) |
                 "\(.end - .line + 1)\t\(.path):\(.line)\t\(if .scope then .scope + "::" else "" end)\(.name)"' |
          sort -t$'\t' -k1,1nr)
total=$(printf '%s\n' "$lengths" | grep -c . || true)
short=$(printf '%s\n' "$lengths" | awk -F'\t' -v l="$limit" '$1 <= l' | grep -c . || true)
echo "dirs: ${dirs[*]} (${#files[@]} files)"
echo "functions: $total"
awk -v s="$short" -v t="$total" -v l="$limit" \
    'BEGIN { printf "<= %d lines: %d (%.1f %%)\n", l, s, t ? 100 * s / t : 0 }'
echo "longest $top:"
sed -n "1,${top}p" <<<"$lengths"
