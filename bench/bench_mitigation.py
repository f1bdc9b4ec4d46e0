"""Time of the whole mitigation comparison (all methods, default sweep) on bank and adult.

Target: under 30 s per dataset on 2 cores, with the same recommendations as before the
in-processing estimator moved from L-BFGS to Newton-Cholesky. Run:
`python bench/bench_mitigation.py`; the last line is the slowest case.
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
    worst = ("", 0.0)
    for name, data, target, pos, groups, drop in cases:
        t = time.perf_counter()
        r = compare(data, target, groups.get("sensitive", ()), groups.get("tiers"), positive_label=pos, drop=drop)
        total = time.perf_counter() - t
        per = {}
        for p in [*r.methods, *r.curve]:
            per[p.method] = per.get(p.method, 0.0) + p.seconds
        print(f"{name}: {len(data):,} rows, {len(r.methods)} methods, {len(r.curve)} sweep points: {total:.1f} s "
              f"(target < 30 s); per method: " + ", ".join(f"{k} {v:.1f} s" for k, v in per.items()))
        print(f"  recommended: {r.recommended['method']} — {r.recommended['why']}")
        worst = max(worst, (name, total), key=lambda w: w[1])
    print(f"slowest: {worst[0]}, all six methods with their sweep: {worst[1]:.1f} s (target < 30 s)")


if __name__ == "__main__":
    main()
