"""Which engine counts a given input: the one rule, for the audit, the recommendation audit
and every face."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from fairscan.engines import ENGINES
from fairscan.engines.base import Engine
from fairscan.engines.memory import MemoryEngine
from fairscan.errors import FairscanError, suggest

__all__ = ["in_memory", "make_engine"]


def make_engine(
    data: Any,
    engine: str = "auto",
    spark_master: str | None = None,
    *,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    memory_limit: str | None = None,
    threads: int | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Engine:
    """The engine for ``data``. ``"auto"``: an Engine as is; a DuckDB relation, or a path to
    Parquet/CSV files (a file, glob or directory) -> DuckDB, which streams files larger than
    memory; a Spark DataFrame -> Spark; a frame or ``dataset:NAME`` -> memory. Or name the
    engine: ``"memory"`` reads a path into memory first, ``"duckdb"``, ``"spark"``.

    When a path or ``dataset:NAME`` is read into memory, only ``columns`` are read (all when
    None) and ``categorical`` ones as categoricals. ``memory_limit`` (default 1GB) and
    ``threads`` set the DuckDB engine and are an error for any other. ``progress(fraction,
    text)`` hears how far each DuckDB pass over the data is (the other engines' passes are
    not reported)."""
    if isinstance(data, Engine):
        return data
    if engine not in ENGINES:
        raise FairscanError(f"unknown engine '{engine}'{suggest(engine, ENGINES)}: use {', '.join(ENGINES)}")
    from fairscan.io import DATASET_PREFIX, read_table

    is_dataset = isinstance(data, str) and data.startswith(DATASET_PREFIX)
    is_path = isinstance(data, str | os.PathLike) and not is_dataset
    module = type(data).__module__.split(".")[0]
    if engine == "auto":
        engine = ("spark" if module == "pyspark" else
                  "duckdb" if is_path or module in ("duckdb", "_duckdb") else "memory")
    if (memory_limit or threads) and engine != "duckdb":
        raise FairscanError(f"--memory-limit and --threads set the DuckDB engine, not the {engine} engine")
    cols = None if columns is None else list(columns)
    if engine == "spark":
        from fairscan.engines.spark import SparkEngine

        return SparkEngine(data, master=spark_master)
    if is_dataset or (is_path and engine == "memory"):
        data = read_table(data, columns=cols, categorical=list(categorical))
    if engine == "duckdb":
        from fairscan.engines.duckdb import DuckDBEngine

        return DuckDBEngine(data, memory_limit=memory_limit or "1GB", threads=threads, progress=progress)
    return MemoryEngine(data)


def in_memory(data: Any, engine: str, why: str, *, columns: Sequence[str] | None = None,
              categorical: Sequence[str] = ()) -> Any:
    """``data`` as an in-memory frame, for work that needs every row at hand (``why``: the
    options that do, e.g. ``"--model and --infer-tier"``): a frame as is, a path or
    ``dataset:NAME`` read (only ``columns`` when given). A one-line error when the engine
    named is not the memory engine: those read the data where it is."""
    from fairscan.io import DATASET_PREFIX, read_table

    is_dataset = isinstance(data, str) and data.startswith(DATASET_PREFIX)
    if engine in ("duckdb", "spark") and not is_dataset:
        raise FairscanError(f"--engine {engine} audits the data where it is; {why} need --engine memory")
    if isinstance(data, str | os.PathLike):
        return read_table(data, columns=None if columns is None else list(columns), categorical=list(categorical))
    return data
