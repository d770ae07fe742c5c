#!/usr/bin/python3
"""Runs the README's curl lines of "## The HTTP face" as written against a real server.

Usage: readme_http.py README HTTP_ADDRESS WORK_DIR [HEADING]

HEADING (default "## The HTTP face") picks another section: its first ```sh block, up to the
next heading of its level or above ("### A DPoP-bound session, end to end" runs that
walkthrough's lines the same way). 127.0.0.1:50051 in a line becomes $TA_SERVER when set.

WORK_DIR is laid out like the repository root after scripts/run.sh: data/admin.key (the
server's) and build/release/client/tokenctl (a link to the built one); $TA_SERVER points
tokenctl at the server's gRPC address. HTTP_ADDRESS replaces 127.0.0.1:8080. The block is the
```sh block of the section; its lines run in order in one bash, so variables carry over. A
line's trailing "# ..." comment is what it prints (stdout and stderr together), compared
exactly except that "..." stands for any text; a line without one must exit 0, and print
something when it is a pipeline (a grep that finds nothing fails). An assignment must set a
non-empty value. Exits 0 when every line behaves as written, 1 otherwise.
"""

import os
import re
import subprocess
import sys

COMMENT = re.compile(r"^(.*?\S)\s+# (.*)$")
ASSIGNMENT = re.compile(r"^([A-Z_][A-Z0-9_]*)=")


def block(readme, heading="## The HTTP face"):
    text = open(readme, encoding="utf-8").read()
    section = text.split("\n%s\n" % heading, 1)[1]
    level = heading.split(" ", 1)[0]
    for stop in ["#" * n + " " for n in range(2, len(level) + 1)]:
        section = section.split("\n" + stop, 1)[0]
    code = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.strip() for line in re.sub(r"\\\n\s*", "", code).splitlines() if line.strip()]


def split_expected(line):
    # A '#' inside quotes is not a comment; the README's lines put none there.
    match = COMMENT.match(line)
    if match and match.group(1).count("'") % 2 == 0 and match.group(1).count('"') % 2 == 0:
        return match.group(1), match.group(2)
    return line, None


def matches(want, got):
    pattern = "^" + ".*".join(re.escape(part) for part in want.split("...")) + "$"
    return re.match(pattern, got, re.S) is not None


def run(readme, http_address, work, heading="## The HTTP face"):
    lines = block(readme, heading)
    if not lines:
        print("FAIL: no sh block in the HTTP section", file=sys.stderr)
        return 1
    script, checks = ["set -u"], []
    for number, line in enumerate(lines, 1):
        command, expected = split_expected(line)
        command = command.replace("127.0.0.1:8080", http_address)
        if os.environ.get("TA_SERVER"):
            command = command.replace("127.0.0.1:50051", os.environ["TA_SERVER"])
        out, rc = "out.%d" % number, "rc.%d" % number
        assignment = ASSIGNMENT.match(command)
        if assignment:
            script.append(command)
            script.append('printf %%s "${%s}" > %s; echo 0 > %s' % (assignment.group(1), out, rc))
        else:
            script.append("{ %s ; } > %s 2>&1; echo $? > %s" % (command, out, rc))
        checks.append((number, line, expected, out, rc, bool(assignment)))
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=work, capture_output=True,
                          text=True, timeout=500)
    if proc.returncode != 0:
        print("FAIL: the block did not run: %s" % proc.stderr, file=sys.stderr)
        return 1
    for number, line, expected, out, rc, assignment in checks:
        got = open(os.path.join(work, out)).read()
        code = int(open(os.path.join(work, rc)).read())
        print("[%d] %s -> exit %d" % (number, line[:100], code))
        problem = None
        if expected is not None:
            if not matches(expected, got.rstrip("\n")):
                problem = "printed %r, README says %r" % (got, expected)
        elif code != 0:
            problem = "exit %d: %s" % (code, got)
        elif (assignment or "|" in line) and not got.strip():
            problem = "printed nothing"
        if problem:
            print("FAIL: README HTTP line %d:\n  %s\n%s" % (number, line, problem), file=sys.stderr)
            return 1
    print("ok: %d README HTTP lines behaved as written" % len(checks))
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(run(*sys.argv[1:]))
