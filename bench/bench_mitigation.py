"""Time of the whole mitigation comparison (all methods, default sweep) on bank and adult.

Target (issue): within 2 minutes on 2 cores. Run: `python bench/bench_mitigation.py`.
"""

from __future__ import annotations

import time

from fairscan import datasets
from fairscan.mitigation import compare


def main() -> None:
    cases = [
        ("bank by age band", datasets.load("bank"), "y", "yes", {"tiers": {"age": [24, 59]}}, ["duration"]),
        ("adult by sex", datasets.load("adult"), "income", ">50K", {"sensitive": ["sex"]}, []),
    ]
    for name, data, target, pos, groups, drop in cases:
        t = time.perf_counter()
        r = compare(data, target, groups.get("sensitive", ()), groups.get("tiers"), positive_label=pos, drop=drop)
        total = time.perf_counter() - t
        per = {}
        for p in [*r.methods, *r.curve]:
            per[p.method] = per.get(p.method, 0.0) + p.seconds
        print(f"{name}: {len(data):,} rows, {len(r.methods)} methods, {len(r.curve)} sweep points: {total:.1f} s "
              f"(target <= 120 s); per method: " + ", ".join(f"{k} {v:.1f} s" for k, v in per.items()))
        print(f"  recommended: {r.recommended['method']} — {r.recommended['why']}")


if __name__ == "__main__":
    main()
