"""Out-of-core audits: DuckDB on a 100M-row Parquet dataset, Spark local[2] on 10M rows.

Not a test: run it by hand on an idle machine (all figures come from the same run)::

    python bench/bench_engines.py [--rows 100000000] [--memory-limit 512MB] [--skip-spark]

1. Generates (seeded, in 5M-row chunks with pyarrow, never committed) ``bench/_data/engines-N/``:
   one Parquet file per chunk with a float64 ``score`` (rounded to 6 decimals, so the budget
   cut falls on tied scores and row order must break the ties), an int8 ``label`` and a text
   ``region`` (8 groups of unequal size). Skipped when the files exist.
2. ``fairscan.audit(DuckDBEngine(dir), score, budget=10%, region)`` in a fresh subprocess,
   reporting its wall time and peak RSS (the child's own ``ru_maxrss`` and the parent's
   ``RUSAGE_CHILDREN``), which must stay under 1 GiB.
3. The floor: a bare DuckDB ``GROUP BY region, label, score >= cut`` of the same counts, in a
   subprocess too (the audit adds resolving the groups, locating the cut exactly with ties
   broken by row order, the sha256 of the data and the statistics).
4. fairlearn's ``MetricFrame`` (selection rate, TPR, FPR, FNR, count) on the first 1M rows,
   extrapolated linearly to 10M rows (stated as such).
5. Spark local[2] on the first 10M rows (the first two files) with its time, and the
   equality check against DuckDB on the same files.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from _child import run_json
from _chunks import CHUNK, write_chunks

HERE = Path(__file__).resolve().parent
REGIONS = ["north", "south", "east", "west", "centre", "islands", "coast", "mountains"]
REGION_P = np.array([0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.06, 0.04])
BYTES_PER_ROW = 10  # on disk, measured: ~8 for the score, the rest compresses away


def generate(out: Path, rows: int, seed: int = 0) -> list[Path]:
    """Write ``rows`` rows in 5M-row files (seeded per chunk, so any prefix is reproducible)."""
    import pyarrow as pa

    def table(rng: np.random.Generator, n: int) -> pa.Table:
        g = rng.choice(len(REGIONS), n, p=REGION_P).astype(np.int8)
        y = (rng.random(n) < 0.15 + 0.02 * g).astype(np.int8)
        z = -1.5 + 1.2 * y - 0.08 * g + rng.normal(0, 1, n)
        score = np.round(1 / (1 + np.exp(-z)), 6)
        region = pa.DictionaryArray.from_arrays(pa.array(g), pa.array(REGIONS)).cast(pa.string())
        return pa.table({"score": score, "label": y, "region": region})

    return write_chunks(out, rows, table, seed, CHUNK)


AUDIT = dict(target="label", score="score", budget=0.1, sensitive="region")


def child_duckdb(files: list[str], memory_limit: str, threads: int | None) -> dict:
    """Runs in a fresh interpreter: the audit, its time and this process's peak RSS."""
    import fairscan
    from fairscan.engines.duckdb import DuckDBEngine

    t = time.perf_counter()
    r = fairscan.audit(DuckDBEngine(files, memory_limit=memory_limit, threads=threads), **AUDIT)
    seconds = time.perf_counter() - t
    g = r.groups
    return {"seconds": seconds, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "groups": g["group"].tolist(), "count": g["count"].astype("int64").tolist(),
            "selection_rate": g["selection_rate"].tolist(), "budget": r.meta["decision"]["budget"],
            "data_sha256": r.meta["data_sha256"], "n_rows": r.meta["n_rows"]}


def child_floor(files: list[str], memory_limit: str, threads: int | None) -> dict:
    """The bare DuckDB GROUP BY of the same cells (cut from an exact quantile; ties not split)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    src = "read_parquet([" + ", ".join(f"'{f}'" for f in files) + "])"
    t = time.perf_counter()
    k = int(con.execute(f"SELECT count(*) FROM {src}").fetchall()[0][0] * 0.1)
    (cut,) = con.execute(f"SELECT min(score) FROM (SELECT score FROM {src} ORDER BY score DESC LIMIT {k})").fetchall()[0]
    rows = con.execute(f"SELECT region, label, score >= {cut!r} AS d, count(*) FROM {src} GROUP BY ALL").fetchall()
    seconds_with_cut = time.perf_counter() - t
    t = time.perf_counter()
    rows = con.execute(f"SELECT region, label, score >= 0.5 AS d, count(*) FROM {src} GROUP BY ALL").fetchall()
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "seconds_with_topk_cut": seconds_with_cut, "cells": len(rows),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(kind: str, files: list[Path], memory_limit: str, threads: int | None) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--memory-limit", memory_limit,
           *(["--threads", str(threads)] if threads else []), "--files", *map(str, files)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    res = run_json(cmd, kind)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # RUSAGE_CHILDREN is the largest child so far: meaningful when this child set a new maximum
    res["children_max_rss_mib"] = after / 1024 if after > before else None
    return res


def bench_fairlearn(files: list[Path], n: int) -> dict:
    import pyarrow.parquet as pq
    from fairlearn.metrics import (
        MetricFrame,
        count,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    from fairscan.engines.memory import top_k_mask

    df = pq.read_table(files[0]).slice(0, n).to_pandas()
    t = time.perf_counter()
    y_pred = top_k_mask(df["score"].to_numpy(), int(0.1 * len(df))).astype(int)
    mf = MetricFrame(metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
                              "false_positive_rate": false_positive_rate, "false_negative_rate": false_negative_rate,
                              "count": count},
                     y_true=df["label"].to_numpy(), y_pred=y_pred, sensitive_features=df["region"])
    _ = mf.by_group, mf.difference()
    return {"rows": len(df), "seconds": time.perf_counter() - t}


def bench_spark(files: list[Path], master: str) -> dict:
    import pandas as pd

    import fairscan
    from fairscan.engines.duckdb import DuckDBEngine
    from fairscan.engines.spark import SparkEngine, local_session

    t = time.perf_counter()
    spark = local_session(master, {"spark.ui.showConsoleProgress": "false", "spark.driver.memory": "2g"})
    spark.sparkContext.setLogLevel("ERROR")
    start = time.perf_counter() - t
    kw = dict(AUDIT, n_boot=0)
    t = time.perf_counter()
    rs = fairscan.audit(SparkEngine(files, spark=spark), **kw)
    seconds = time.perf_counter() - t
    t = time.perf_counter()
    rd = fairscan.audit(DuckDBEngine(files), **kw)
    duck_seconds = time.perf_counter() - t
    equal = True
    try:
        for table in ("groups", "disparities"):
            pd.testing.assert_frame_equal(getattr(rd, table), getattr(rs, table), check_exact=False,
                                          rtol=1e-12, atol=1e-12)
        equal = rd.groups["count"].tolist() == rs.groups["count"].tolist()
    except AssertionError as e:
        print(e)
        equal = False
    spark.stop()
    return {"rows": rs.meta["n_rows"], "seconds": seconds, "session_start_seconds": start,
            "duckdb_seconds": duck_seconds, "equal": equal}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000_000)
    ap.add_argument("--data", type=Path, default=HERE / "_data")
    ap.add_argument("--memory-limit", default="512MB", help="DuckDB memory_limit for the audit")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--fairlearn-rows", type=int, default=1_000_000)
    ap.add_argument("--spark-rows", type=int, default=10_000_000)
    ap.add_argument("--spark-master", default="local[2]")
    ap.add_argument("--skip-spark", action="store_true")
    ap.add_argument("--child", choices=["duckdb", "floor"], help=argparse.SUPPRESS)
    ap.add_argument("--files", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        fn = child_duckdb if a.child == "duckdb" else child_floor
        print(json.dumps(fn(a.files, a.memory_limit, a.threads)))
        return 0

    free = shutil.disk_usage(a.data.parent if not a.data.exists() else a.data).free
    rows = a.rows
    if rows * BYTES_PER_ROW * 2 > free:  # keep half the free space free
        rows = int(free / (2 * BYTES_PER_ROW)) // CHUNK * CHUNK
        print(f"only {free / 2**30:.0f} GiB free: using {rows:,} rows instead of {a.rows:,}")
    out = a.data / f"engines-{rows}"
    t = time.perf_counter()
    files = generate(out, rows)
    size = sum(f.stat().st_size for f in files)
    print(f"data: {rows:,} rows in {len(files)} files, {size / 2**20:,.0f} MiB ({out}); "
          f"ready in {time.perf_counter() - t:.1f} s")
    per10m = 10_000_000 / rows

    duck = run_child("duckdb", files, a.memory_limit, a.threads)
    print(f"[1] DuckDB audit, {rows:,} rows, budget 10% (k={duck['budget']:,}), memory_limit {a.memory_limit}: "
          f"{duck['seconds']:.1f} s ({duck['seconds'] * per10m:.2f} s per 10M rows); process {duck['process_wall_seconds']:.1f} s "
          f"with start-up; peak RSS {duck['peak_rss_mib']:,.0f} MiB"
          + (f" (RUSAGE_CHILDREN {duck['children_max_rss_mib']:,.0f} MiB)" if duck["children_max_rss_mib"] else "")
          + ("  OK < 1 GiB" if duck["peak_rss_mib"] < 1024 else "  OVER 1 GiB"))
    print("    groups: " + ", ".join(f"{g} {c:,} ({s:.4f})" for g, c, s in
                                     zip(duck["groups"], duck["count"], duck["selection_rate"], strict=True)))
    floor = run_child("floor", files, a.memory_limit, a.threads)
    print(f"[2] bare DuckDB GROUP BY (region, label, score >= t): {floor['seconds']:.1f} s "
          f"({floor['seconds'] * per10m:.2f} s per 10M rows); with a top-k cut by ORDER BY ... LIMIT: "
          f"{floor['seconds_with_topk_cut']:.1f} s; audit / floor = {duck['seconds'] / floor['seconds']:.1f}x, "
          f"audit / floor-with-cut = {duck['seconds'] / floor['seconds_with_topk_cut']:.1f}x; floor peak RSS "
          f"{floor['peak_rss_mib']:,.0f} MiB")
    fl = bench_fairlearn(files, a.fairlearn_rows)
    fl10 = fl["seconds"] * 10_000_000 / fl["rows"]
    print(f"[3] fairlearn MetricFrame (4 rates + count) on the first {fl['rows']:,} rows: {fl['seconds']:.2f} s, "
          f"extrapolated linearly to {fl10:.1f} s per 10M rows (not measured at 10M); DuckDB audit is "
          f"{fl10 / (duck['seconds'] * per10m):.1f}x faster per row, reading from disk")
    if not a.skip_spark:
        nfiles = max(1, min(len(files), a.spark_rows // CHUNK))
        sp = bench_spark(files[:nfiles], a.spark_master)
        print(f"[4] Spark {a.spark_master}, {sp['rows']:,} rows: audit {sp['seconds']:.1f} s "
              f"(session start {sp['session_start_seconds']:.1f} s not included); DuckDB on the same files "
              f"{sp['duckdb_seconds']:.1f} s; groups and disparities equal to DuckDB's: {sp['equal']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
