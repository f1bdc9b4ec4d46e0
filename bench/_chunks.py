"""Seeded Parquet files for the out-of-core benchmarks: one rule for chunking, seeding per
chunk (so any prefix is reproducible), reuse of files already written, and atomic writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

CHUNK = 5_000_000


def write_chunks(out: Path, rows: int, make_table: Callable[[np.random.Generator, int], object], seed: int = 0,
                 chunk: int = CHUNK) -> list[Path]:
    """``rows`` rows in ``chunk``-row files under ``out``: ``make_table(rng, n)`` builds each
    file's Arrow table from its own seeded generator; a file with the right row count is kept."""
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    files = []
    for i, start in enumerate(range(0, rows, chunk)):
        n = min(chunk, rows - start)
        path = out / f"part-{i:05d}.parquet"
        files.append(path)
        if path.exists() and pq.read_metadata(path).num_rows == n:
            continue
        tmp = path.with_suffix(".tmp")
        pq.write_table(make_table(np.random.default_rng([seed, i]), n), tmp, row_group_size=1 << 20,
                       compression="zstd")
        tmp.rename(path)
    return files
