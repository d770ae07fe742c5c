#!/usr/bin/python3
"""Runs the README's grpcurl walkthrough with a real grpcurl against a real server.

Usage: readme_grpcurl.py README GRPCURL ADDRESS WORK_DIR

WORK_DIR holds the server's data/ (so `$(cat data/admin.key)` works as written); ADDRESS
replaces 127.0.0.1:50051. The walkthrough is the ```sh block under "## Calling it with
grpcurl". Every `grpcurl` command in it is run, in order, through bash together with the
block's `export` lines. Placeholders in a command are bound at their first use to the latest
value grpcurl printed for that field: "eyJ..." (access_token), "tar_..." (refresh_token),
"<family_id>" (family_id).

The `# ` comment lines right under a command (no blank line between) are what it prints,
stdout then stderr, compared exactly except for:
  - a JSON string containing "..." matches any string with the same text before and after
    the dots ("eyJ..." any access token, "..." anything);
  - an RFC 3339 time matches any RFC 3339 time; a JSON number >= 1e9 (a Unix time) any such
    number, since times differ on every run;
  - in text lines, "..." matches any run of characters.
A command without such lines must exit 0; one whose output starts with "ERROR:" must fail.
Exits 0 when every command behaves as written, 1 otherwise (with a diff of the first).
"""

import json
import os
import re
import subprocess
import sys

PLACEHOLDERS = {"eyJ...": "access_token", "tar_...": "refresh_token", "<family_id>": "family_id"}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class Mismatch(Exception):
    pass


def walkthrough(readme):
    """The lines of the sh block of the grpcurl section, continuations joined."""
    text = open(readme, encoding="utf-8").read()
    section = text.split("## Calling it with grpcurl", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return block.replace("\\\n", " ").splitlines()


def steps(lines):
    """(setup lines, [(command, expected output lines or None)])."""
    setup, commands = [], []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if line.startswith("export ") or re.match(r"^[A-Z_]+=", line):
            setup.append(line)
        elif line.startswith("grpcurl "):
            expected = []
            while i < len(lines) and lines[i].startswith("#"):
                expected.append(lines[i][2:] if lines[i].startswith("# ") else "")
                i += 1
            commands.append((line, expected or None))
    return setup, commands


def match_value(want, got, where):
    if isinstance(want, dict):
        if not isinstance(got, dict) or list(want) != list(got):
            raise Mismatch("%s: fields %s, README says %s" % (where, list(got) if isinstance(got, dict) else got, list(want)))
        for key in want:
            match_value(want[key], got[key], where + "." + key)
    elif isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            raise Mismatch("%s: %r, README says %d items" % (where, got, len(want)))
        for n, (w, g) in enumerate(zip(want, got)):
            match_value(w, g, "%s[%d]" % (where, n))
    elif isinstance(want, str) and "..." in want:
        head, tail = want.split("...", 1)
        if not (isinstance(got, str) and got.startswith(head) and got.endswith(tail)):
            raise Mismatch("%s: %r does not match %r" % (where, got, want))
    elif isinstance(want, str) and RFC3339.match(want):
        if not (isinstance(got, str) and RFC3339.match(got)):
            raise Mismatch("%s: %r is not an RFC 3339 time" % (where, got))
    elif isinstance(want, int) and not isinstance(want, bool) and want >= 10**9:
        if not (isinstance(got, int) and got >= 10**9):
            raise Mismatch("%s: %r is not a Unix time" % (where, got))
    elif want != got or type(want) is not type(got):
        raise Mismatch("%s: %r, README says %r" % (where, got, want))


def match_text(want_lines, got_lines):
    if len(want_lines) != len(got_lines):
        raise Mismatch("%d lines, README shows %d" % (len(got_lines), len(want_lines)))
    for want, got in zip(want_lines, got_lines):
        pattern = "^" + ".*".join(re.escape(part) for part in want.split("...")) + "$"
        if not re.match(pattern, got):
            raise Mismatch("line %r does not match README's %r" % (got, want))


def match_output(expected, output):
    """Compares grpcurl's output with the README's; JSON documents field by field."""
    want_text, got_text = "\n".join(expected), output.rstrip("\n")
    if want_text.startswith("{"):
        decoder = json.JSONDecoder()
        want, end = decoder.raw_decode(want_text)
        got, got_end = decoder.raw_decode(got_text)
        match_value(want, got, "$")
        want_text, got_text = want_text[end:].lstrip("\n"), got_text[got_end:].lstrip("\n")
        if not want_text and not got_text:
            return got
    match_text(want_text.splitlines(), got_text.splitlines())
    return None


def run(readme, grpcurl, address, work):
    setup, commands = steps(walkthrough(readme))
    if not commands:
        raise Mismatch("no grpcurl command found in the README")
    latest, bound = {}, {}
    for number, (command, expected) in enumerate(commands, 1):
        line = command.replace("127.0.0.1:50051", address)
        for placeholder, field in PLACEHOLDERS.items():
            if placeholder in line:
                if placeholder not in bound:
                    if field not in latest:
                        raise Mismatch("%s used before any output had %s" % (placeholder, field))
                    bound[placeholder] = latest[field]
                line = line.replace(placeholder, bound[placeholder])
        script = "\n".join(setup + ['grpcurl() { "$GRPCURL" "$@"; }', line])
        proc = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True,
                              env=dict(os.environ, GRPCURL=grpcurl), timeout=60)
        output = proc.stdout + proc.stderr
        print("[%d] %s -> exit %d" % (number, command[:100], proc.returncode))
        try:
            wants_error = expected is not None and expected[0].startswith("ERROR:")
            if (proc.returncode != 0) != wants_error:
                raise Mismatch("exit code %d" % proc.returncode)
            got = match_output(expected, output) if expected else None
            if got is None and proc.stdout.startswith("{"):
                got = json.loads(proc.stdout)
            for field in PLACEHOLDERS.values():
                if isinstance(got, dict) and field in got:
                    latest[field] = got[field]
        except Mismatch as mismatch:
            raise Mismatch("README grpcurl command %d:\n  %s\n%s\ngrpcurl printed:\n%s" % (
                number, command, mismatch, output)) from None
    return len(commands)


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        count = run(*argv[1:])
    except Mismatch as mismatch:
        print("FAIL:", mismatch, file=sys.stderr)
        return 1
    print("ok: %d README grpcurl commands printed what the README shows" % count)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
