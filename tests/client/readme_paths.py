#!/usr/bin/python3
"""Checks the README's references: every `](#anchor)` names one of its headings, and every
repository path it names (in a link or in backquotes) exists.

Usage: readme_paths.py README SOURCE_DIR

Anchors are GitHub's: the heading lowercased, punctuation but '-' and '_' dropped, spaces
as '-'. A path counts as the repository's when its first component is a top-level entry of
SOURCE_DIR (client/, server/, tests/, scripts/, ...); '*' in it is a glob, and a path may
name a file or a directory. Paths under runtime directories (data/, build/) are not checked.
Exits 0 when all resolve, 1 listing those that do not.
"""

import glob
import os
import re
import sys


def anchor(heading):
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def main(readme, src):
    text = open(readme, encoding="utf-8").read()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold commands, not refs
    anchors = {anchor(h) for h in re.findall(r"^#+ (.+)$", prose, flags=re.M)}
    problems = []
    outside_code = re.sub(r"`[^`\n]+`", "", prose)
    links = re.findall(r"\]\(#([^)]+)\)", outside_code)
    for name in links:
        if name not in anchors:
            problems.append("anchor #%s names no heading" % name)
    tops = {entry for entry in os.listdir(src) if not entry.startswith(".")} - {"build", "data"}
    candidates = re.findall(r"\]\(([^)#:]+)\)", outside_code)
    for span in re.findall(r"`([^`\n]+)`", prose):
        candidates.extend(span.split())
    checked = set()
    for path in candidates:
        path = path.strip("(),;:").rstrip(".")
        first = path.split("/", 1)[0]
        if "/" not in path or first not in tops or path in checked:
            continue
        if any(c in path for c in "<>$={}"):
            continue
        checked.add(path)
        if not glob.glob(os.path.join(src, path)):
            problems.append("path %s does not exist" % path)
    for problem in problems:
        print("FAIL:", problem, file=sys.stderr)
    print("%d anchors and %d repository paths checked" % (len(links), len(checked)))
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
