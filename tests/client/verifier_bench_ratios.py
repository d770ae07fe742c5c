#!/usr/bin/env python3
"""Ratios of verifier_bench's figures against its own Introspect figures (same run).

Usage: verifier_bench_ratios.py OUT.json   (OUT.json from verifier_bench
       --benchmark_out=OUT.json --benchmark_out_format=json)
Throughput is items_per_second: with 2 threads, the calls of both per second of wall time.
"""
import json
import sys


def main() -> int:
    with open(sys.argv[1]) as f:
        run = json.load(f)
    marks = {b["name"]: b for b in run["benchmarks"]}
    seen = next(b for n, b in marks.items() if n.startswith("BM_Introspect/"))
    unseen = next(b for n, b in marks.items() if n.startswith("BM_IntrospectUnseen/"))
    print(f"load average at start: {run['context'].get('load_avg')}")
    print(f"{'benchmark':46s} {'calls/s':>10s} {'us/call':>9s} {'x Introspect':>13s} "
          f"{'x Introspect unseen':>20s}")
    for name, b in marks.items():
        if "items_per_second" not in b or name.startswith("BM_ViewMemory"):
            continue
        rate = b["items_per_second"]
        print(f"{name:46s} {rate:10.0f} {1e6 / rate:9.2f} "
              f"{rate / seen['items_per_second']:13.2f} {rate / unseen['items_per_second']:20.2f}")
    for name, b in marks.items():
        if name.startswith("BM_ViewMemory"):
            print(f"{name}: view {b['view_B_per_entry']:.1f} B/entry ({b['view_MiB']:.1f} MiB), "
                  f"resident growth {b['rss_B_per_entry']:.1f} B/entry, "
                  f"Apply {b['items_per_second'] / 1e6:.2f} M entries/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
