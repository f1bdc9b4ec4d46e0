"""Speed of fairscan.audit against fairlearn's MetricFrame, in the same process.

Prints times and ratios; the figures are recorded in bench/README.md. Not a test: run it
with `python bench/bench_audit.py [--rows 1000000] [--big-rows 10000000] [--skip-big]`.

1. 1M rows, 10 groups: fairscan.audit with every metric, 1,000 bootstrap replicates, tests
   and verdicts vs MetricFrame computing six point estimates (selection rate, TPR, FPR, FNR,
   accuracy, precision) on the same frame. Target: >= 300x.
2. 10M rows, categorical group column: the aggregation pass vs a bare np.bincount of the
   same cell counts from the same codes (target: within 3x), and the extra peak memory of
   the audit vs the size of the columns it reads (target: under 2x).
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np
import pandas as pd


def make_frame(n: int, groups: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    y = rng.random(n) < 0.2 + 0.02 * g
    s = np.clip(rng.normal(0.4 + 0.2 * y - 0.01 * g, 0.2), 0, 1)
    return pd.DataFrame({
        "group": pd.Categorical.from_codes(g, [f"g{i}" for i in range(groups)]),
        "y": y,
        "score": s,
    })


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_vs_fairlearn(n: int) -> dict:
    from fairlearn.metrics import (
        MetricFrame,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score, precision_score

    import fairscan

    df = make_frame(n)
    y_pred = (df["score"] >= 0.5).to_numpy()

    def ours():
        return fairscan.audit(df, target="y", score="score", threshold=0.5, sensitive="group",
                              n_boot=1000, seed=0)

    def theirs():
        return MetricFrame(
            metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
                     "false_positive_rate": false_positive_rate, "false_negative_rate": false_negative_rate,
                     "accuracy": accuracy_score,
                     "precision": lambda a, b: precision_score(a, b, zero_division=np.nan)},
            y_true=df["y"].to_numpy(), y_pred=y_pred, sensitive_features=df["group"],
        )

    r, mf = ours(), theirs()
    ours_by = r.groups.set_index("group")
    for m in ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy", "precision"):
        assert np.allclose(ours_by[m].to_numpy(float), mf.by_group[m].to_numpy(float), atol=1e-12), m
    t_ours = best_of(ours, 5)
    t_fl = best_of(theirs, 1)
    return {"rows": n, "fairscan_s": t_ours, "fairlearn_s": t_fl, "speedup": t_fl / t_ours}


def bench_vs_bincount(n: int) -> dict:
    import fairscan
    from fairscan.engines.base import Decision, Label
    from fairscan.engines.memory import MemoryEngine
    from fairscan.groups import GroupSpec, resolve

    df = make_frame(n)
    codes = df["group"].cat.codes.to_numpy()
    y = df["y"].to_numpy()
    score = df["score"].to_numpy()
    read_bytes = codes.nbytes + y.nbytes + score.nbytes

    def floor():
        cell = codes.astype(np.int64) * 4 + y * 2 + (score >= 0.5)
        return np.bincount(cell, minlength=40)

    def aggregate():
        eng = MemoryEngine(df)
        groupings = resolve(GroupSpec(sensitive=["group"]), eng)
        return eng.aggregate(groupings, Label("y", True), Decision("threshold", "score", threshold=0.5), None)

    agg = aggregate()
    assert np.array_equal(agg.stats[0].n.ravel(), floor())
    t_floor = best_of(floor, 3)
    t_agg = best_of(aggregate, 3)
    t_audit = best_of(lambda: fairscan.audit(df, target="y", score="score", threshold=0.5,
                                             sensitive="group"), 2)
    gc.collect()
    tracemalloc.start()
    fairscan.audit(df, target="y", score="score", threshold=0.5, sensitive="group")
    _, peak_threshold = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gc.collect()
    tracemalloc.start()
    fairscan.audit(df, target="y", score="score", budget=0.1, sensitive="group")
    _, peak_budget = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "rows": n, "bincount_floor_s": t_floor, "aggregate_s": t_agg, "ratio_to_floor": t_agg / t_floor,
        "full_audit_s": t_audit, "columns_read_MB": read_bytes / 1e6,
        "peak_extra_MB_threshold": peak_threshold / 1e6, "peak_extra_MB_budget": peak_budget / 1e6,
        "peak_ratio_threshold": peak_threshold / read_bytes, "peak_ratio_budget": peak_budget / read_bytes,
    }


def bench_cli(n: int) -> dict:
    """End to end: `fairscan audit FILE.parquet --score --budget` in a fresh process."""
    import os
    import resource
    import subprocess
    import sys
    from pathlib import Path

    path = Path(__file__).parent / "_data" / f"scores-{n}.parquet"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        make_frame(n).to_parquet(path, compression="zstd")
    cmd = [sys.executable, "-m", "fairscan.cli", "audit", str(path), "--target", "y", "--score", "score",
           "--budget", "0.1", "--sensitive", "group", "--format", "json", "--out", os.devnull]
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t
    base = subprocess.run([sys.executable, "-c", "import fairscan.cli, pandas, pyarrow.parquet"], check=True)
    assert base.returncode == 0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"rows": n, "file_MB": path.stat().st_size / 1e6, "wall_s": wall, "peak_rss_MB": peak_kb / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--big-rows", type=int, default=10_000_000)
    ap.add_argument("--skip-big", action="store_true")
    a = ap.parse_args()
    r = bench_vs_fairlearn(a.rows)
    print(f"[1] {r['rows']:,} rows, 10 groups: fairscan.audit (all metrics, 1000 bootstrap, tests) "
          f"{r['fairscan_s'] * 1000:.1f} ms; fairlearn MetricFrame (6 point estimates) "
          f"{r['fairlearn_s']:.2f} s; speed-up {r['speedup']:.0f}x (target >= 300x)")
    if not a.skip_big:
        b = bench_vs_bincount(a.big_rows)
        print(f"[2] {b['rows']:,} rows, categorical group: aggregate {b['aggregate_s'] * 1000:.0f} ms vs bare "
              f"np.bincount {b['bincount_floor_s'] * 1000:.0f} ms = {b['ratio_to_floor']:.2f}x (target <= 3x); "
              f"full audit {b['full_audit_s'] * 1000:.0f} ms")
        print(f"    columns read {b['columns_read_MB']:.0f} MB; extra peak (tracemalloc) threshold "
              f"{b['peak_extra_MB_threshold']:.0f} MB = {b['peak_ratio_threshold']:.2f}x, budget "
              f"{b['peak_extra_MB_budget']:.0f} MB = {b['peak_ratio_budget']:.2f}x (target < 2x)")
        c = bench_cli(a.big_rows)
        print(f"[3] CLI on a {c['rows']:,}-row Parquet file ({c['file_MB']:.0f} MB, zstd): "
              f"{c['wall_s']:.2f} s end to end (process start, read, audit with 1000 bootstrap, JSON); "
              f"peak RSS {c['peak_rss_MB']:.0f} MB")


if __name__ == "__main__":
    main()
