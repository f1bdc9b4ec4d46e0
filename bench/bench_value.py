"""The value audit against a naive pandas + scipy pipeline, in the same run.

Not a test: run it by hand on an idle machine::

    python bench/bench_value.py [--rows 5000000] [--repeats 3]

1. Writes (seeded, once) ``bench/_data/value-N.parquet``: N rows with three attributes
   (region: 4 groups, segment: 3, age: cut into 3 quantile tiers), a product stratum (3
   levels) and a price drawn from about 17,000 distinct values.
2. ``fairscan value FILE --value price --favourable lower --sensitive region --sensitive
   segment --tiers age=3 --within product --format json`` as a whole process: point estimates,
   every interval (1,000 bootstrap replicates where there is no closed form), tests,
   decomposition, findings, suppression.
3. The naive pipeline, also a whole process reading the same file: pandas group-bys of the
   means and medians per group, ``scipy.stats.ks_2samp`` and ``wasserstein_distance`` of every
   group against its reference, and a group-by per (group, product) for the decomposition's
   point estimates — the same point estimates and no interval at all.

Prints each median wall time and, last, the ratio naive / fairscan (target >= 3).

With ``--big-rows N`` (e.g. 100000000) it then writes N rows of the same kind as 5M-row
Parquet files (``bench/_data/value-big-N/``, seeded per file, kept for the next run) and runs
the same command on them with ``--engine duckdb --memory-limit 512MB`` in a fresh process:
its wall time and peak resident memory (target: under 1 GiB), against the floor, a bare
DuckDB ``GROUP BY`` of the same cells in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _child import run_json  # noqa: E402


def levels() -> np.ndarray:
    """The about 17,000 distinct base prices (seeded)."""
    return np.round(np.random.default_rng(0).lognormal(3, 0.8, 17_000), 2)


def big_table(rng: np.random.Generator, n: int, prices: np.ndarray) -> object:
    """One file's rows of the big data (Arrow; dictionary-encoded labels, as a warehouse
    export would write them)."""
    import pyarrow as pa

    def labels(names: list[str], p: list[float] | None = None) -> tuple[object, np.ndarray]:
        codes = rng.choice(len(names), n, p=p).astype(np.int32)
        return pa.DictionaryArray.from_arrays(codes, pa.array(names)), codes

    region, rcode = labels(["north", "south", "east", "west"], [0.4, 0.3, 0.2, 0.1])
    return pa.table({
        "region": region, "segment": labels(["a", "b", "c"])[0],
        "age": rng.integers(18, 80, n, dtype=np.int32), "product": labels(["p1", "p2", "p3"])[0],
        "price": rng.choice(prices, n) * np.where(rcode == 3, 1.03, 1.0),
    })


def floor(files: str) -> None:
    """The floor (runs in a child): a bare DuckDB GROUP BY of the same cells (each attribute
    with product and price), no tiers, intervals or anything else."""
    import duckdb

    t = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET memory_limit = '512MB'")
    n = con.sql(f"SELECT region, segment, CAST(age > 40 AS INT) AS age3, product, price, count(*) AS n "
                f"FROM read_parquet('{files}') GROUP BY GROUPING SETS ((region, product, price), "
                f"(segment, product, price), (age3, product, price))").to_arrow_table().num_rows
    print(json.dumps({"seconds": time.perf_counter() - t, "cells": n}))


def big(rows: int) -> None:
    """100M rows through DuckDB: wall time and peak memory of the CLI, against the floor."""
    import resource

    sys.path.insert(0, str(ROOT / "bench"))
    from _chunks import write_chunks

    out = ROOT / "bench" / "_data" / f"value-big-{rows}"
    prices = levels()
    t = time.perf_counter()
    files = write_chunks(out, rows, lambda rng, n: big_table(rng, n, prices), seed=1)
    print(f"{rows:,} rows in {len(files)} files ready ({time.perf_counter() - t:.0f} s)", flush=True)
    glob = str(out / "*.parquet")
    cmd = [str(Path(sys.executable).with_name("fairscan")), "value", glob, "--value", "price", "--favourable",
           "lower", "--sensitive", "region", "--sensitive", "segment", "--tiers", "age=3", "--within", "product",
           "--engine", "duckdb", "--memory-limit", "512MB", "--format", "json", "--out", str(out / "result.json"),
           "--quiet"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far: this one
    doc = json.loads((out / "result.json").read_text())
    bare = run_json([sys.executable, __file__, "--child", "floor", "--file", glob], "floor")
    print(f"fairscan value, {doc['n_values']:,} values through DuckDB (512MB): {wall:.1f} s, peak RSS "
          f"{peak:.0f} MiB (target < 1024 MiB)")
    print(f"bare DuckDB GROUP BY of the same cells: {bare['seconds']:.1f} s in process, "
          f"{bare['process_wall_seconds']:.1f} s as a process; fairscan is {wall / bare['process_wall_seconds']:.1f}x "
          "the floor")


def make(rows: int) -> Path:
    path = ROOT / "bench" / "_data" / f"value-{rows}.parquet"
    if path.exists():
        return path
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    levels = np.round(rng.lognormal(3, 0.8, 17_000), 2)
    region = rng.choice(["north", "south", "east", "west"], rows, p=[0.4, 0.3, 0.2, 0.1])
    pd.DataFrame({
        "region": region, "segment": rng.choice(["a", "b", "c"], rows), "age": rng.integers(18, 80, rows),
        "product": rng.choice(["p1", "p2", "p3"], rows),
        "price": rng.choice(levels, rows) * np.where(region == "west", 1.03, 1.0),
    }).to_parquet(path, index=False)
    return path


def naive(path: str) -> None:
    """The naive pipeline (runs in a child): the same point estimates, no intervals."""
    import pandas as pd
    from scipy import stats

    t = time.perf_counter()
    df = pd.read_parquet(path)
    df["age_tier"] = pd.qcut(df["age"], 3).astype(str)
    out = {}
    for attr in ("region", "segment", "age_tier"):
        g = df.groupby(attr)["price"]
        means, medians = g.mean(), g.median()
        ref = g.size().idxmax()
        ref_values = df.loc[df[attr] == ref, "price"].to_numpy()
        by_stratum = df.groupby([attr, "product"])["price"].agg(["mean", "size"])
        for name, part in df.groupby(attr)["price"]:
            if name == ref:
                continue
            x = part.to_numpy()
            ks = stats.ks_2samp(x, ref_values).statistic
            w1 = stats.wasserstein_distance(x, ref_values)
            sg, sr = by_stratum.loc[name], by_stratum.loc[ref]
            pg, pr = sg["size"] / sg["size"].sum(), sr["size"] / sr["size"].sum()
            within = (0.5 * (pg + pr) * (sg["mean"] - sr["mean"])).sum()
            out[f"{attr}={name}"] = [means[name] - means[ref], medians[name] - medians[ref], ks, w1, within]
    print(json.dumps({"seconds": time.perf_counter() - t, "groups": len(out)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--big-rows", type=int, help="also run N rows (e.g. 100000000) through DuckDB")
    ap.add_argument("--skip-small", action="store_true", help="only the --big-rows run")
    ap.add_argument("--child", choices=["naive", "floor"], help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        (naive if a.child == "naive" else floor)(a.file)
        return
    if a.big_rows:  # first, so that the peak memory of the children is this run's
        big(a.big_rows)
    if a.skip_small:
        return
    path = make(a.rows)
    fairscan = [str(Path(sys.executable).with_name("fairscan")), "value", str(path), "--value", "price",
                "--favourable", "lower", "--sensitive", "region", "--sensitive", "segment", "--tiers", "age=3",
                "--within", "product", "--format", "json", "--out", str(path.with_suffix(".json")), "--quiet"]
    ours, theirs = [], []
    for _ in range(a.repeats):  # alternating, so both see the same machine
        t = time.perf_counter()
        subprocess.run(fairscan, check=True, capture_output=True)
        ours.append(time.perf_counter() - t)
        theirs.append(run_json([sys.executable, __file__, "--child", "naive", "--file", str(path)], "naive")
                      ["process_wall_seconds"])
    doc = json.loads(path.with_suffix(".json").read_text())
    print(f"{a.rows:,} rows, {len(doc['groups'])} groups in 3 attributes, 3 strata, "
          f"{doc['n_values']:,} values")
    print(f"fairscan value (CLI, intervals, tests, decomposition, findings): median {statistics.median(ours):.2f} s "
          f"({', '.join(f'{x:.2f}' for x in ours)})")
    print(f"naive pandas + scipy, point estimates only: median {statistics.median(theirs):.2f} s "
          f"({', '.join(f'{x:.2f}' for x in theirs)})")
    print(f"naive / fairscan = {statistics.median(theirs) / statistics.median(ours):.2f}x (target >= 3x)")


if __name__ == "__main__":
    main()
