# Sourced by the benchmark scripts (scripts/bench.sh and the scripts it sources, and any
# bench_*.sh run on its own): the functions they share.
#   write_block NAME BODY [HEADING]   BENCHMARKS.md's block NAME becomes BODY
#   wrk_record LABEL LUA URL          one wrk run (the caller's WRK array: wrk and its flags)
#                                     with scripts/peers/http/LUA, recorded in
#                                     RPS/P50/P99/ERR[LABEL]
#   rounds_table LABEL...             the Markdown table of LABEL_1..LABEL_3's records
# Run from the repository's root (the paths are relative to it).

# write_block NAME BODY [HEADING]: replaces BENCHMARKS.md's block between
# <!-- NAME:begin --> and <!-- NAME:end --> with BODY (appended, under HEADING, when absent).
write_block() {
  /usr/bin/python3 - BENCHMARKS.md "$1" "$2" "${3:-}" <<'PY'
import sys
path, name, body, heading = sys.argv[1:5]
text = open(path).read()
begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
if begin not in text:
    text = text.rstrip("\n") + "\n\n" + (f"## {heading}\n\n" if heading else "") + f"{begin}\n{end}\n"
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(head + begin + "\n" + body + "\n" + end + tail)
PY
  echo "wrote BENCHMARKS.md ($1 block)"
}

# wrk_record LABEL LUA URL: runs "${WRK[@]}" with scripts/peers/http/LUA against URL, the
# token in $WORK/token and the API key in $DATA/admin.key (the Lua scripts read both), prints
# the script's summary line and records its rps, p50_us, p99_us and errors under LABEL.
wrk_record() {
  local line
  line=$(TA_TOKEN_FILE="$WORK/token" TA_KEY_FILE="$DATA/admin.key" \
         "${WRK[@]}" -s "scripts/peers/http/$2" "$3" | tail -1)
  echo "  $1: $line"
  RPS[$1]=$(sed -n 's/.*rps=\([0-9]*\).*/\1/p' <<<"$line")
  P50[$1]=$(sed -n 's/.*p50_us=\([0-9]*\).*/\1/p' <<<"$line")
  P99[$1]=$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' <<<"$line")
  ERR[$1]=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$line")
}

# rounds_table LABEL...: a Markdown table, a row for each recorded round (1 to 3) of each
# LABEL (RPS/P50/P99/ERR[LABEL_ROUND], as wrk_record and bench.sh's run record them).
rounds_table() {
  local label round
  echo "| run | round | calls/s | p50 µs | p99 µs | errors |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  for label in "$@"; do
    for round in 1 2 3; do
      [[ -n ${RPS[${label}_$round]:-} ]] || continue
      echo "| $label | $round | ${RPS[${label}_$round]} | ${P50[${label}_$round]} | ${P99[${label}_$round]} | ${ERR[${label}_$round]} |"
    done
  done
}
