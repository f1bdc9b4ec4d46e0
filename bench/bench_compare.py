"""Speed of the paired model comparison (`fairscan compare`) against a single audit.

Run: `python bench/bench_compare.py [--rows 10000000] [--repeat 3]`. Prints the figures. Not a test.

Seeded rows with two correlated score columns (champion and challenger), an outcome, a
5-level region and a number cut in 4 quantile tiers; a 10% budget. Timed in process, median of
`--repeat` after a warm-up: `fairscan.audit` of one score (1,000 bootstrap replicates, the
default) and `fairscan.compare` of the two (1,000 paired replicates), both in memory.
Target: the comparison within 2x of the single audit.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

import fairscan


def rows(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, n).astype(np.float32)
    region = pd.Categorical.from_codes(rng.integers(0, 5, n).astype(np.int8), ["N", "S", "E", "W", "C"])
    return pd.DataFrame({
        "region": region, "tenure": rng.gamma(2.0, 3.0, n).astype(np.float32),
        "a": base + rng.normal(0, 0.3, n).astype(np.float32), "b": base + rng.normal(0, 0.3, n).astype(np.float32),
        "y": (base + rng.normal(0, 1, n) > 0.5).astype(np.int8),
    })


def timed(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    t = time.perf_counter()
    df = rows(a.rows)
    print(f"{a.rows:,} rows generated in {time.perf_counter() - t:.1f} s")
    kw = dict(target="y", sensitive="region", tiers={"tenure": 4}, budget=0.1)
    t_audit = timed(lambda: fairscan.audit(df, score="a", **kw), a.repeat)
    t_cmp = timed(lambda: fairscan.compare(df, scores=["a", "b"], **kw), a.repeat)
    print(f"single audit (memory): {t_audit:.2f} s; paired comparison (memory): {t_cmp:.2f} s; "
          f"ratio {t_cmp / t_audit:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
