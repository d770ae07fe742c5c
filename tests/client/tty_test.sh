#!/usr/bin/env bash
# tokenctl under a real terminal (issue 16, 3): tmux runs a shell on a pseudo-terminal, the
# test types commands with send-keys and reads the screen with capture-pane. Checks that
#   - revoke-subject --from_file draws a progress line with ETA on the terminal (every byte
#     the terminal received is recorded by pipe-pane) and erases it, leaving the summary;
#   - sessions prints its aligned table with relative times and the revoked row marked;
#   - a token read from "-" is prompted for and not echoed;
#   - --help exits 0;
#   - backup shows a spinner while it runs and leaves only its report.
# The same commands in pipes are tokenctl_tables_test.cc.
#   tty_test.sh SERVER_BINARY TOKENCTL_BINARY
set -euo pipefail

server=${1:?server binary}
tokenctl=${2:?tokenctl binary}

source "$(dirname "$0")/live_server.sh"
command -v tmux >/dev/null || fail "tmux not found (Debian package tmux; scripts/setup.sh installs it)"
start_server "$server"
key=${key_args[0]:-}
[[ -n "$key" ]] || fail "the server wrote no admin.key"

sock="$tmp/tmux.sock"
trap 'tmux -S "$sock" kill-server 2>/dev/null || true; cleanup_live_server' EXIT
tmux -S "$sock" -f /dev/null new-session -d -s tty -x 160 -y 40 \
  "env -i PATH=$PATH HOME=$tmp TERM=xterm-256color PS1='$ ' bash --norc --noprofile"
tmux -S "$sock" pipe-pane -t tty -o "cat >> '$tmp/terminal.raw'"

screen() { tmux -S "$sock" capture-pane -t tty -p; }
type_line() { tmux -S "$sock" send-keys -t tty -l "$1"; tmux -S "$sock" send-keys -t tty Enter; }
# Waits (up to 60 s) for `pattern` on the screen.
wait_for() {
  for _ in $(seq 1 600); do
    screen | grep -q -- "$1" && return 0
    sleep 0.1
  done
  screen >&2
  fail "\"$1\" never appeared on the terminal"
}
# Runs a command line in the terminal and waits for its exit status; clears the screen first.
n=0
run() {
  n=$((n + 1))
  type_line "clear; $1; echo \"DONE-$n EXIT=\$?\""
  wait_for "^DONE-$n EXIT="
}
# expect_screen/reject_screen PATTERN: grep -E on the screen.
expect_screen() {
  screen | grep -Eq -- "$1" || { screen >&2; fail "terminal lacks \"$1\""; }
}
reject_screen() {
  ! screen | grep -Eq -- "$1" || { screen >&2; fail "terminal still shows \"$1\""; }
}

T="$tokenctl --server=$address --api_key_file=$key"

# Sessions to show, and the bulk file.
$T issue alice --client_id=web --metadata=device=laptop --json >"$tmp/laptop.json"
$T issue alice --client_id=web --metadata=device=phone >/dev/null
laptop=$(sed -n 's/.*"familyId":"\([^"]*\)".*/\1/p' "$tmp/laptop.json")
access=$(sed -n 's/.*"accessToken":"\([^"]*\)".*/\1/p' "$tmp/laptop.json")
$T revoke-family "$laptop" --reason=logout >/dev/null
for i in $(seq 1 1500); do echo "tty-user-$i"; done >"$tmp/subjects.txt"

# 1. The sessions table.
run "$T sessions alice --include-revoked"
expect_screen "DONE-$n EXIT=0"
expect_screen "^FAMILY_ID  *STATE  *CLIENT  *CREATED  *LAST_REFRESH  *EXPIRES  *GEN  *METADATA  *NOTE$"
ago="(just now|[0-9]+ s ago)"
expect_screen "^$laptop  REVOKED  web  +$ago +$ago +in 29 days +0  device=laptop  +revoked $ago by local-admin: logout$"
expect_screen " active  .*device=phone$"
expect_screen "^2 sessions, 1 revoked$"
header=$(screen | grep '^FAMILY_ID')
row=$(screen | grep "^$laptop")
col=$(grep -bo NOTE <<<"$header" | cut -d: -f1)
[[ "${row:$col:7}" == revoked ]] || { screen >&2; fail "NOTE column not aligned"; }
screen | sed -n "1,/^2 sessions/p"

# 2. The progress line: drawn on the terminal while it runs, gone afterwards.
run "$T revoke-subject --from-file=$tmp/subjects.txt --reason=tty-test"
expect_screen "DONE-$n EXIT=0"
expect_screen "^revoked 1500 of 1500 subjects$"
reject_screen "revoking  \\[|ETA [-0-9]"
grep -q "revoking  \[#*\.*\]  [0-9]*/1500  [0-9]*%.*ETA [0-9]*:[0-9][0-9]" "$tmp/terminal.raw" ||
  fail "no progress frame with ETA reached the terminal"
echo "progress line: drawn $(grep -o 'ETA [0-9]' "$tmp/terminal.raw" | wc -l) times, then erased"

# 3. A token typed at the prompt is not echoed.
n=$((n + 1))
type_line "clear; $T introspect - --include-reason; echo \"DONE-$n EXIT=\$?\""
wait_for "token (not echoed):"
type_line "$access"
wait_for "^DONE-$n EXIT=0"
reject_screen "${access:0:40}"
expect_screen "^reason:     family_revoked$"

# 4. Help on a terminal.
run "$T --help"
expect_screen "DONE-$n EXIT=0"

# 5. backup: a spinner with the elapsed time while the one call runs, erased, then the report.
run "$T backup $tmp/backups"
expect_screen "DONE-$n EXIT=0"
expect_screen "^backup 1 in $tmp/backups, verified$"
reject_screen "backing up"
grep -q "backing up  [-\\|/]  [0-9]*s" "$tmp/terminal.raw" || fail "no backup spinner reached the terminal"
echo "ok: progress, table, secret prompt, help and backup under a real terminal"
