"""Which engine counts a given input: the one rule, for the audit, the recommendation audit
and every face."""

from __future__ import annotations

import os
from typing import Any

from fairscan.engines import ENGINES
from fairscan.engines.base import Engine
from fairscan.engines.memory import MemoryEngine
from fairscan.errors import FairscanError

__all__ = ["make_engine"]


def make_engine(data: Any, engine: str = "auto", spark_master: str | None = None) -> Engine:
    """The engine for ``data``. ``"auto"``: an Engine as is; a DuckDB relation, or a path to
    Parquet/CSV files (a file, glob or directory) -> DuckDB, which streams files larger than
    memory; a Spark DataFrame -> Spark; a frame or ``dataset:NAME`` -> memory. Or name the
    engine: ``"memory"`` reads a path into memory first, ``"duckdb"``, ``"spark"``."""
    if isinstance(data, Engine):
        return data
    if engine not in ENGINES:
        raise FairscanError(f"unknown engine '{engine}': use auto, memory, duckdb or spark")
    from fairscan.io import DATASET_PREFIX

    is_path = isinstance(data, str | os.PathLike) and not str(data).startswith(DATASET_PREFIX)
    module = type(data).__module__.split(".")[0]
    if engine == "spark" or (engine == "auto" and module == "pyspark"):
        from fairscan.engines.spark import SparkEngine

        return SparkEngine(data, master=spark_master)
    if engine == "duckdb" or (engine == "auto" and (is_path or module in ("duckdb", "_duckdb"))):
        from fairscan.engines.duckdb import DuckDBEngine

        return DuckDBEngine(data)
    if isinstance(data, str | os.PathLike):
        from fairscan.io import read_table

        data = read_table(data)
    return MemoryEngine(data)
