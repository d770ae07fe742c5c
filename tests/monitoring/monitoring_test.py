#!/usr/bin/env python3
"""The Grafana dashboard and the alerting rules against the real server (issue 23, item 14).

  monitoring_test.py dashboard SOURCE_DIR
      The dashboard is well-formed Grafana JSON (unique ids, panels on the 24-column grid
      without overlap, every query on the $datasource variable) and every PromQL expression of
      it parses (promtool check rules over them as recording rules, variables substituted).
  monitoring_test.py exported SOURCE_DIR SERVER_BINARY TOKENCTL
      Starts the server (port 0, a temp data dir), makes traffic of every kind the dashboard
      and rules look at (issue, refresh, reuse, revocations, HTTP, a key rotation, a backup),
      scrapes /metrics and checks that every metric the dashboard and the rules name is
      exported, and that each label value they select on (method="IssueTokens",
      outcome="reuse_detected", ...) occurs in the scrape.
A missing tool fails, naming its Debian package.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

DASHBOARD = "deploy/grafana/token-authority.json"
RULES = "deploy/prometheus/token-authority.rules.yml"


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def dashboard_exprs(src):
    with open(os.path.join(src, DASHBOARD)) as f:
        dash = json.load(f)
    exprs = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            exprs.append((p["title"], t["expr"]))
    return dash, exprs


def rule_exprs(src):
    # The rules file is YAML; its `expr:` lines are one line each (checked here).
    exprs = []
    with open(os.path.join(src, RULES)) as f:
        for line in f:
            m = re.match(r"\s*expr:\s*(.*)$", line)
            if m:
                if m.group(1) in ("", "|", ">", "|-", ">-"):
                    fail(f"{RULES}: keep each expr on one line (this test reads them)")
                exprs.append(("rule", m.group(1)))
    if not exprs:
        fail(f"no expr in {RULES}")
    return exprs


def substitute(expr):
    return (expr.replace("$__rate_interval", "5m").replace("$job", ".*")
            .replace("$instance", ".*"))


def check_dashboard(src):
    dash, exprs = dashboard_exprs(src)
    for key in ("title", "uid", "panels", "templating", "schemaVersion"):
        if key not in dash:
            fail(f"dashboard lacks {key}")
    names = {v["name"] for v in dash["templating"]["list"]}
    if not {"datasource", "job", "instance"} <= names:
        fail(f"dashboard variables {names} lack datasource, job or instance")
    ids, cells = set(), {}
    for p in dash["panels"]:
        if p["id"] in ids:
            fail(f"panel id {p['id']} twice")
        ids.add(p["id"])
        g = p["gridPos"]
        if g["x"] < 0 or g["x"] + g["w"] > 24:
            fail(f"panel {p['title']} is off the 24-column grid: {g}")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    fail(f"panels {cells[(x, y)]!r} and {p['title']!r} overlap")
                cells[(x, y)] = p["title"]
        if p["type"] == "row":
            continue
        if not p.get("targets"):
            fail(f"panel {p['title']} has no query")
        for t in p["targets"]:
            if t.get("datasource", {}).get("uid") != "${datasource}" or \
                    p.get("datasource", {}).get("uid") != "${datasource}":
                fail(f"panel {p['title']} does not use the $datasource variable")
            if 'job=~"$job"' not in t["expr"] or 'instance=~"$instance"' not in t["expr"]:
                fail(f"panel {p['title']}: a selector ignores $job/$instance: {t['expr']}")
    # PromQL syntax: promtool parses them as recording rules.
    promtool = shutil.which("promtool") or fail("promtool not found (Debian package prometheus)")
    tmp = tempfile.mkdtemp(prefix="ta-dashboard-")
    try:
        path = os.path.join(tmp, "dashboard_exprs.yml")
        with open(path, "w") as f:
            f.write("groups:\n  - name: dashboard\n    rules:\n")
            for i, (title, expr) in enumerate(exprs):
                f.write(f"      - record: dashboard:panel_{i}\n        expr: {json.dumps(substitute(expr))}\n")
        out = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
        if out.returncode != 0:
            fail("a dashboard query does not parse:\n" + out.stdout + out.stderr)
    finally:
        shutil.rmtree(tmp)
    print(f"dashboard: {len(dash['panels'])} panels, {len(exprs)} queries, all parse")


def referenced(src):
    """metric -> {(label, value)} selected with = on it, over the dashboard and the rules."""
    refs = {}
    for _, expr in dashboard_exprs(src)[1] + rule_exprs(src):
        for name in re.findall(r"\b((?:ta|process)_[a-z0-9_]+)\b", expr):
            refs.setdefault(name, set())
        for name, body in re.findall(r"\b((?:ta|process)_[a-z0-9_]+)\{([^}]*)\}", expr):
            for label, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', body):
                if op == "=" and "$" not in value:
                    refs[name].add((label, value))
    return refs


def parse_scrape(text):
    """(families: name -> type, samples: sample name -> [labels dict])."""
    families, samples = {}, {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            families[m.group(1)] = m.group(2)
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ", line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            samples.setdefault(m.group(1), []).append(labels)
    return families, samples


class Server:
    def __init__(self, binary, tokenctl, tmp):
        self.tmp, self.tokenctl = tmp, tokenctl
        self.out = open(os.path.join(tmp, "server.out"), "w+")
        self.err = open(os.path.join(tmp, "server.err"), "w+")
        self.proc = subprocess.Popen(
            [binary, "--listen=127.0.0.1:0", "--http_listen=127.0.0.1:0",
             f"--data_dir={tmp}/data", "--default_audience=api", "--reuse_grace=0s",
             "--retired_key_window=1h"],
            stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL)
        self.grpc = self.wait_line("listening on ")
        self.http = self.wait_line("http listening on ")

    def wait_line(self, prefix):
        deadline = time.time() + 30
        while time.time() < deadline:
            with open(self.out.name) as f:
                for line in f:
                    if line.startswith(prefix):
                        return line[len(prefix):].strip()
            if self.proc.poll() is not None:
                fail(f"server exited early: {open(self.err.name).read()}")
            time.sleep(0.1)
        fail(f"no '{prefix}' line in 30 s")

    def ctl(self, *args, stdin=None, ok=True):
        out = subprocess.run(
            [self.tokenctl, f"--server={self.grpc}", f"--api_key_file={self.tmp}/data/admin.key",
             *args], input=stdin, capture_output=True, text=True, timeout=60)
        if ok and out.returncode != 0:
            fail(f"tokenctl {' '.join(args)}: exit {out.returncode}: {out.stderr}")
        return out.stdout

    def get(self, path):
        with urllib.request.urlopen(f"http://{self.http}{path}", timeout=10) as r:
            return r.read().decode()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def traffic(s, tmp):
    issued = json.loads(s.ctl("--json", "issue", "alice", "--client_id=web"))
    refresh = issued["refreshToken"]
    s.ctl("refresh", "-", stdin=refresh)
    s.ctl("refresh", "-", stdin=refresh, ok=False)  # reuse: revokes the family
    again = json.loads(s.ctl("--json", "issue", "bob", "--client_id=web"))
    s.ctl("introspect", "-", stdin=again["accessToken"])
    s.ctl("revoke", "-", stdin=again["accessToken"])
    s.ctl("revoke-subject", "carol")
    s.ctl("rotate-key")  # the old key is now retiring
    s.ctl("backup", os.path.join(tmp, "backups"))
    s.get("/.well-known/jwks.json")
    s.get("/healthz/ready")


def check_exported(src, binary, tokenctl):
    refs = referenced(src)
    tmp = tempfile.mkdtemp(prefix="ta-monitoring-")
    server = None
    try:
        server = Server(binary, tokenctl, tmp)
        traffic(server, tmp)
        scrape = server.get("/metrics")
    finally:
        if server:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    families, samples = parse_scrape(scrape)
    missing, bad_labels = [], []
    for name, selected in sorted(refs.items()):
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and families.get(name[: -len(suffix)]) == "histogram":
                family = name[: -len(suffix)]
        if family not in families:
            missing.append(name)
            continue
        rows = samples.get(name, [])
        for label, value in sorted(selected):
            if not any(r.get(label) == value for r in rows):
                seen = sorted({r.get(label, "") for r in rows})
                bad_labels.append(f'{name}{{{label}="{value}"}} (scrape has {label} in {seen})')
    if missing:
        fail("named by the dashboard or the rules but not exported by the server: " +
             ", ".join(missing))
    if bad_labels:
        fail("selected by the dashboard or the rules but absent from the scrape: " +
             "; ".join(bad_labels))
    # The new gauges carry what they say on this server (RocksDB, one writer, just backed up).
    def value(name):
        m = re.search(rf"^{name} (\S+)$", scrape, re.M)
        return float(m.group(1)) if m else fail(f"no unlabelled {name} sample")
    if value("ta_ready") != 1 or value("ta_store_up") != 1:
        fail("a healthy server does not export ta_ready 1 and ta_store_up 1")
    if value("ta_revocation_view_lag_seconds") != 0:
        fail("a single RocksDB server's view lag is not 0")
    if abs(value("ta_backup_last_success_timestamp_seconds") - time.time()) > 300:
        fail("ta_backup_last_success_timestamp_seconds is not the backup just made")
    if "ta_signing_key_retire_timestamp_seconds{" not in scrape:
        fail("no retire time for the key rotated out")
    print(f"exported: all {len(refs)} metrics named by the dashboard and the rules, "
          f"{sum(len(v) for v in refs.values())} label selections, found in a real scrape "
          f"({len(families)} families)")


def main():
    mode, src = sys.argv[1], sys.argv[2]
    if mode == "dashboard":
        check_dashboard(src)
    elif mode == "exported":
        check_exported(src, sys.argv[3], sys.argv[4])
    else:
        fail(f"unknown mode {mode}")
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
