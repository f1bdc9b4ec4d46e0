"""Counts files: counting 100M rows to a counts file through DuckDB, and auditing from it.

Not a test: run it by hand on an idle machine::

    python bench/bench_counts.py [--rows 100000000] [--memory-limit 512MB]

1. The seeded 100M-row Parquet dataset of ``bench_engines.py`` (``bench/_data/engines-N/``,
   written once): a float64 score, an int8 label, a text region of 8 groups.
2. ``fairscan counts GLOB --target label --score score --budget 0.1 --sensitive region
   --memory-limit 512MB --out FILE`` in a fresh process: its wall time and peak RSS (the
   child's, from ``RUSAGE_CHILDREN``). Target: under 1 GiB.
3. The floor: a bare DuckDB ``GROUP BY region, label, score >= cut`` of the same files.
4. ``fairscan.audit(FILE)``: the audit from the counts file, in process, median of 20 runs
   after a warm-up (1,000 bootstrap replicates). Target: under 100 ms.
5. The same audit of the rows (DuckDB) for equality: every group's count and rate.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_engines import AUDIT, generate, run_child  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000_000)
    ap.add_argument("--memory-limit", default="512MB")
    a = ap.parse_args()
    out = HERE / "_data" / f"engines-{a.rows}"
    t = time.perf_counter()
    files = generate(out, a.rows)
    print(f"{a.rows:,} rows in {len(files)} files ready ({time.perf_counter() - t:.0f} s)", flush=True)
    counts_file = HERE / "_data" / f"counts-{a.rows}.parquet"
    cmd = [sys.executable, "-m", "fairscan", "counts", str(out / "*.parquet"), "--target", "label", "--score",
           "score", "--budget", "0.1", "--sensitive", "region", "--memory-limit", a.memory_limit,
           "--out", str(counts_file)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak = after / 1024 if after > before else float("nan")
    print(f"[2] fairscan counts (DuckDB, {a.memory_limit}): {wall:.1f} s, peak RSS {peak:.0f} MiB "
          f"(target < 1024 MiB); file {counts_file.stat().st_size / 1024:.1f} KiB", flush=True)
    floor = run_child("floor", files, a.memory_limit, None)
    print(f"[3] bare DuckDB GROUP BY with the top-10% cut: {floor['seconds_with_topk_cut']:.1f} s; "
          f"counts is {wall / floor['seconds_with_topk_cut']:.1f}x the floor", flush=True)

    import fairscan

    fairscan.audit(counts_file)  # warm-up (imports)
    times = []
    for _ in range(20):
        t = time.perf_counter()
        r = fairscan.audit(counts_file)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(f"[4] fairscan.audit(counts file), 1,000 bootstrap replicates: median {1000 * med:.0f} ms "
          f"(min {1000 * min(times):.0f}, max {1000 * max(times):.0f}; target < 100 ms)", flush=True)
    rows = run_child("duckdb", files, a.memory_limit, None)
    g = r.groups
    same = (g["group"].tolist() == rows["groups"] and g["count"].astype("int64").tolist() == rows["count"]
            and g["selection_rate"].tolist() == rows["selection_rate"])
    print(f"[5] the row-level audit ({rows['seconds']:.1f} s) and the audit from counts agree on every group's "
          f"count and selection rate: {same}; data hash equal: {r.meta['data_sha256'] == rows['data_sha256']}")
    assert AUDIT["budget"] == 0.1


if __name__ == "__main__":
    main()
