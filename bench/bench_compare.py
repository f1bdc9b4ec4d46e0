"""Speed of the paired model comparison (`fairscan compare`) against a single audit.

Run: `python bench/bench_compare.py [--rows 10000000] [--repeat 3]`. Prints the figures. Not a test.

Seeded rows (Parquet files under `bench/_data/compare/`, written once) with two correlated
score columns (champion and challenger), an outcome, a 5-level region and a number cut in 4
quantile tiers; a 10% budget. Timed in process, median of `--repeat` after a warm-up:
`fairscan.audit` of one score (1,000 bootstrap replicates, the default) and `fairscan.compare`
of the two (1,000 paired replicates), [1] on the rows read into memory and [2] through DuckDB
on the Parquet files (streamed: the rows never come to Python). Target: the comparison within
2x of the single audit on the same engine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import fairscan

sys.path.insert(0, str(Path(__file__).parent))
from _chunks import write_chunks

DATA = Path(__file__).parent / "_data" / "compare"


def rows(rng: np.random.Generator, n: int) -> pd.DataFrame:
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
    ap.add_argument("--skip-memory", action="store_true")
    a = ap.parse_args()
    import pyarrow as pa

    t = time.perf_counter()
    out = DATA / f"{a.rows}"
    write_chunks(out, a.rows, lambda rng, n: pa.Table.from_pandas(rows(rng, n), preserve_index=False))
    print(f"{a.rows:,} rows ready in {out} ({time.perf_counter() - t:.1f} s)")
    kw = dict(target="y", sensitive="region", tiers={"tenure": 4}, budget=0.1)
    glob = str(out / "*.parquet")
    if not a.skip_memory:
        df = pd.read_parquet(out)
        df["region"] = df["region"].astype("category")
        t_audit = timed(lambda: fairscan.audit(df, score="a", **kw), a.repeat)
        t_cmp = timed(lambda: fairscan.compare(df, scores=["a", "b"], **kw), a.repeat)
        print(f"[1] memory: single audit {t_audit:.2f} s; paired comparison {t_cmp:.2f} s; "
              f"ratio {t_cmp / t_audit:.2f}x (target <= 2x)")
        del df
    t_audit = timed(lambda: fairscan.audit(glob, score="a", **kw), a.repeat)
    t_cmp = timed(lambda: fairscan.compare(glob, scores=["a", "b"], **kw), a.repeat)
    print(f"[2] DuckDB on Parquet: single audit {t_audit:.2f} s; paired comparison {t_cmp:.2f} s; "
          f"ratio {t_cmp / t_audit:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
