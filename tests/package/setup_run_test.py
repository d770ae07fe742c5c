#!/usr/bin/env python3
"""scripts/run.sh needs only `scripts/setup.sh --run` (issue 23, item 8).

  setup_run_test.py SOURCE_DIR BUILD_DIR

1. Configures a fresh build the way run.sh does (-DTA_BUILD_TESTS=OFF) with Catch2 and Google
   Benchmark made unfindable: running needs neither.
2. Every file from the system that building token-authority and tokenctl reads (each
   object's headers, per Ninja's dependency log in BUILD_DIR, and every /usr path in the
   compile, code-generation and link commands: compilers, protoc and its plugins, libraries)
   belongs to a Debian package that `setup.sh --run` installs, or that one of those depends
   on, or that every Debian 12 has (Essential or Priority: required).
3. run.sh installs with --run, passes -DTA_BUILD_TESTS=OFF and builds only those two targets.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

TARGETS = ["token-authority", "tokenctl"]


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def installed_packages():
    """name -> (depends clauses, essential/required) for every installed package, plus the
    virtual names each provides."""
    fmt = "${Package}\t${Status}\t${Essential}\t${Priority}\t${Pre-Depends}, ${Depends}\t${Provides}\n"
    pkgs, provides = {}, {}
    for line in run(["dpkg-query", "-W", "-f", fmt]).splitlines():
        name, status, essential, priority, deps, prov = line.split("\t")
        if not status.endswith(" installed"):
            continue
        clauses = []
        for clause in deps.split(","):
            alts = [re.split(r"[\s(:]", a.strip())[0] for a in clause.split("|")]
            alts = [a for a in alts if a]
            if alts:
                clauses.append(alts)
        pkgs[name] = (clauses, essential == "yes" or priority == "required")
        for p in prov.split(","):
            p = re.split(r"[\s(]", p.strip())[0]
            if p:
                provides.setdefault(p, set()).add(name)
    return pkgs, provides


def closure(roots, pkgs, provides):
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        for real in ({name} if name in pkgs else set()) | provides.get(name, set()):
            if real in seen:
                continue
            seen.add(real)
            for alts in pkgs[real][0]:
                todo.extend(alts)  # every installed alternative: an over-approximation
    return seen


def file_owners():
    """path -> package, from dpkg's file lists (both spellings of usrmerge'd paths)."""
    owners = {}
    info = "/var/lib/dpkg/info"
    for f in os.listdir(info):
        if not f.endswith(".list"):
            continue
        pkg = f[: -len(".list")].split(":")[0]
        with open(os.path.join(info, f), errors="replace") as lst:
            for path in lst.read().splitlines():
                owners.setdefault(path, pkg)
    return owners


def owner(path, owners):
    candidates = {path, os.path.realpath(path)}
    for p in list(candidates):
        for a, b in (("/usr/lib/", "/lib/"), ("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/")):
            if p.startswith(a):
                candidates.add(b + p[len(a):])
            elif p.startswith(b):
                candidates.add(a + p[len(b):])
    for p in candidates:
        if p in owners:
            return owners[p]
    return None


def system_files_of_build(build):
    inputs = run(["ninja", "-C", build, "-t", "inputs"] + TARGETS).split()
    objects = [i for i in inputs if i.endswith(".o")]
    files = set()
    deps = run(["ninja", "-C", build, "-t", "deps"] + objects)
    for line in deps.splitlines():
        p = line.strip()
        if p.startswith("/usr/") or p.startswith("/lib/"):
            files.add(p)
    commands = run(["ninja", "-C", build, "-t", "commands"] + TARGETS)
    for token in re.findall(r"(?<![\w.-])/(?:usr|lib|bin)/[^\s;:\"'=]+", commands):
        if os.path.isfile(token):
            files.add(token)
    if len(objects) < 20 or len(files) < 100:
        fail(f"too little found in {build} ({len(objects)} objects, {len(files)} files): not built?")
    return files


def main():
    src, build = sys.argv[1], sys.argv[2]
    setup = os.path.join(src, "scripts", "setup.sh")
    run_list = run(["bash", setup, "--list-run"]).split()
    test_list = run(["bash", setup, "--list-test"]).split()
    if not run_list or not set(run_list) < set(test_list):
        fail("setup.sh --list-run must be a non-empty part of --list-test")
    for heavy in ["catch2", "postgresql-15", "apache2", "prometheus", "clang", "golang-go",
                  "default-jdk-headless", "ruby-grpc", "libbenchmark-dev", "systemd"]:
        if heavy in run_list:
            fail(f"setup.sh --run installs {heavy}, which only the tests need")

    run_sh = open(os.path.join(src, "scripts", "run.sh")).read()
    if "scripts/setup.sh --run" not in run_sh:
        fail("run.sh does not install with setup.sh --run")
    build_line = [l for l in run_sh.splitlines() if "scripts/build.sh" in l]
    if len(build_line) != 1 or "-DTA_BUILD_TESTS=OFF" not in build_line[0] or \
            not build_line[0].rstrip().endswith("token-authority tokenctl"):
        fail(f"run.sh must build only token-authority and tokenctl without tests: {build_line}")

    # 1. Configure as run.sh does, without the test toolchain's packages.
    tmp = tempfile.mkdtemp(prefix="ta-run-configure-")
    try:
        out = subprocess.run(
            ["cmake", "-S", src, "-B", tmp, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
             "-DTA_BUILD_TESTS=OFF", "-DCMAKE_DISABLE_FIND_PACKAGE_Catch2=ON",
             "-DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON"],
            capture_output=True, text=True)
        if out.returncode != 0:
            fail("configuring without the tests and without Catch2/benchmark failed:\n" +
                 out.stdout[-2000:] + out.stderr[-2000:])
        targets = run(["ninja", "-C", tmp, "-t", "targets", "all"])
        for t in TARGETS:
            if not re.search(rf"^{re.escape(t)}:", targets, re.M):
                fail(f"a build configured as run.sh does has no target {t}")
        if re.search(r"^\S*_tests:", targets, re.M):
            fail("a build configured with -DTA_BUILD_TESTS=OFF still has test targets")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"configure: OK without Catch2 and benchmark ({' and '.join(TARGETS)} present, no tests)")

    # 2. What the build of the two binaries reads from the system.
    pkgs, provides = installed_packages()
    missing_from_machine = [p for p in run_list if p not in pkgs]
    if missing_from_machine:
        fail(f"setup.sh --run lists packages not installed here: {missing_from_machine}")
    base = [p for p, (_, required) in pkgs.items() if required]
    allowed = closure(run_list + base, pkgs, provides)
    owners = file_owners()
    files = system_files_of_build(build)
    outside = {}
    for f in sorted(files):
        pkg = owner(f, owners)
        if pkg is None:
            fail(f"{f} (used by the build) belongs to no Debian package")
        if pkg not in allowed:
            outside.setdefault(pkg, []).append(f)
    if outside:
        lines = [f"  {pkg}: {fs[0]}" + (f" (+{len(fs) - 1} more)" if len(fs) > 1 else "")
                 for pkg, fs in sorted(outside.items())]
        fail("building token-authority and tokenctl uses packages that setup.sh --run "
             "does not install:\n" + "\n".join(lines))
    used = sorted({owner(f, owners) for f in files})
    print(f"build: {len(files)} system files from {len(used)} packages, all installed by "
          f"setup.sh --run ({len(run_list)} packages) or Debian's base")
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
