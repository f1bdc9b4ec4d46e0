"""Spark engine: a Spark DataFrame (or Parquet/CSV files read by Spark), counted by groupBy.

The same small interface as the other engines, with the DataFrame API: every fact is one
small job (``agg`` of counts, minima and maxima, ``distinct().limit()``), and the counting is
ONE ``groupBy(keys, y, d).agg(count, sum(w), sum(w*w))`` (``groupingSets`` when the
attributes' joint key space is large). Only small aggregated results are collected, as Rows:
no ``toPandas``, nothing row-sized in the driver, except what a caller asks for by name
(``fetch`` of columns, ``decisions``: one bool per row, as Arrow).

Conventions (the same results as the in-memory and DuckDB engines):

- Quantiles equal ``numpy.quantile`` (linear interpolation). Spark's
  ``approxQuantile(..., relativeError=0)`` returns a data element, the value at rank
  ceil(p*n) (no interpolation: 2.0, not 2.5, for the median of 1..4). The SQL ``percentile``
  does interpolate like numpy (equal on our checks) but keeps every distinct value in an
  in-memory map. So the engine finds the exact order statistics by histogram refinement
  (``groupBy`` over narrowing value ranges, then collecting at most ``FETCH_LIMIT`` values)
  and interpolates exactly as numpy does, in bounded memory.
  ``quantiles="approx"`` uses ``approxQuantile`` with ``relative_error`` (its guarantee: the
  rank is within ``relative_error * n`` of the exact one).
- Row order (it breaks budget ties, and orders :meth:`SparkEngine.decisions`): for paths read
  here, the files sorted by name, then each file's rows, as in the DuckDB engine (Parquet:
  ``_metadata.row_index``; CSV: the row's piece of the file, ``_metadata.file_block_start``,
  then its place in the piece). For a DataFrame you pass the order is
  ``monotonically_increasing_id()``: partition index, then position within the partition;
  that is the DataFrame's order only if its partitioning is deterministic (a file scan is; a
  shuffle is not).
- Missing values (null, and NaN in float columns) go to the ``unknown`` group; nulls in the
  label or prediction, NaN scores and negative weights are the same one-line errors.
- ``data_sha256`` (``data_hash="sha256"``, the default) is the one data hash of
  :mod:`fairscan.engines.datahash`, equal to the memory and DuckDB engines' for the same rows
  in the same order: after the GROUP BY, the hashed columns' canonical values are sorted into
  row order by Spark and collected to the driver as Arrow (a few bytes per row and column).
  For data too large for that, ``data_hash="fast"`` is an order-independent digest computed
  inside the GROUP BY (two sums of ``xxhash64`` over each row's audited values, modulo
  2^64, the row count, the column types and the label): deterministic, no extra pass, but
  not equal to the one data hash (the output's ``data_hash`` says which was computed).

What Spark does alike with DuckDB lives in :mod:`fairscan.engines.sql`: expressions are its
SQL text, read with ``F.expr``; this module says how Spark runs them.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from fairscan.engines import sql as shared
from fairscan.engines.base import missing_code
from fairscan.engines.datahash import DataHasher, arrow_codes, arrow_numbers, hashed_columns
from fairscan.engines.sql import POS, GroupQuery, RankSource, SqlEngine, SqlRanks, ValueQuery
from fairscan.errors import FairscanError
from fairscan.types import Decision

__all__ = ["FETCH_LIMIT", "SparkEngine", "local_session"]

#: Collect at most this many values to the driver when locating an order statistic.
FETCH_LIMIT = 200_000
_NUMERIC = frozenset({"tinyint", "smallint", "int", "bigint", "float", "double"})


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def local_session(master: str | None = None, config: dict[str, str] | None = None) -> Any:
    """A local SparkSession (``local[2]`` by default): no UI, 4 shuffle partitions."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise FairscanError("the Spark engine needs pyspark: pip install 'fairscan[spark]'") from None
    builder = (SparkSession.builder.master(master or "local[2]").appName("fairscan")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4"))
    for k, v in (config or {}).items():
        builder = builder.config(k, v)
    try:
        with warnings.catch_warnings():  # we never convert to pandas, so its version does not matter
            warnings.filterwarnings("ignore", message=".*does not yet fully support pandas.*")
            return builder.getOrCreate()
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FairscanError(f"Spark could not start ({first}); it needs Java 17 or later on PATH or JAVA_HOME") from None


class _SparkRanks(SqlRanks):
    """RankSource over ``CAST(expr AS DOUBLE)`` of a DataFrame's rows (already filtered)."""

    def __init__(self, df: Any, expr: str, stats: tuple[int, int, int, float, float]) -> None:
        from pyspark.sql import functions as F

        super().__init__(stats)
        self.F = F
        self.df = df.select(F.expr(f"CAST({expr} AS DOUBLE)").alias("v")).where(F.expr("v IS NOT NULL AND NOT isnan(v)"))

    def histogram(self, intervals: list[tuple[float, float, float]], nbins: int) -> list[tuple[int, int, float, float]]:
        F = self.F
        key = F.expr(shared.histogram_key(intervals, nbins, covers=self.stats[3:])).alias("k")
        finite = self.df.where(F.expr("abs(v) <> CAST('inf' AS DOUBLE)"))
        rows = (finite.select(key, "v").where(F.col("k").isNotNull())
                .groupBy("k").agg(F.count(F.lit(1)), F.min("v"), F.max("v")).collect())
        return [(int(r[0]), int(r[1]), float(r[2]), float(r[3])) for r in rows]

    def fetch(self, lo: float, hi: float) -> np.ndarray:
        F = self.F
        rows = self.df.where(F.col("v").between(F.lit(lo), F.lit(hi))).orderBy("v").collect()
        return np.array([r[0] for r in rows], dtype=np.float64)


class SparkEngine(SqlEngine):
    """Audits a Spark DataFrame, or Parquet/CSV files read with Spark.

    ``data``: a ``pyspark.sql.DataFrame`` (its session is used), or a path, glob, directory or
    list of them (read with ``spark``, or a local session on ``master``, default
    ``local[2]``, created with ``config``). ``union_by_name`` (Parquet paths) lets files differ
    in their columns (Spark's ``mergeSchema``). ``quantiles``: ``"exact"`` (equal to numpy) or
    ``"approx"`` (``approxQuantile`` with ``relative_error``). ``csv_options`` go to
    ``spark.read.csv`` (default: header, inferSchema).
    """

    name = "spark"
    _numeric_types = _NUMERIC
    _max_position = float(1 << 63)

    def __init__(self, data: Any, *, spark: Any = None, master: str | None = None,
                 config: dict[str, str] | None = None, union_by_name: bool = False,
                 quantiles: Literal["exact", "approx"] = "exact", relative_error: float = 1e-3,
                 csv_options: dict[str, Any] | None = None,
                 data_hash: Literal["sha256", "fast"] = "sha256") -> None:
        try:
            from pyspark.sql import DataFrame
            from pyspark.sql import functions as F
        except ImportError:
            raise FairscanError("the Spark engine needs pyspark: pip install 'fairscan[spark]'") from None
        self._setup(quantiles, data_hash)
        self.F = F
        self.relative_error = float(relative_error)
        if isinstance(data, DataFrame):
            self.df = data
            self.spark = data.sparkSession
        elif isinstance(data, str | os.PathLike | list | tuple):
            self.files, self.format = shared.expand_paths(data)
            self.spark = spark or local_session(master, config)
            self.df = self._read(union_by_name, csv_options)
        else:
            raise FairscanError(
                f"the Spark engine audits a Spark DataFrame or Parquet/CSV paths, not a {type(data).__name__}")
        self._types = {str(name): str(t) for name, t in self.df.dtypes}
        self._source = self.df

    def _read(self, union_by_name: bool, csv_options: dict[str, Any] | None) -> Any:
        try:
            if self.format == "parquet":
                shared.check_parquet_schemas(self.files, union_by_name)
                reader = self.spark.read.option("mergeSchema", "true") if union_by_name else self.spark.read
                return reader.parquet(*self.files)
            opts = {"header": True, "inferSchema": True, **(csv_options or {})}
            if not {"sep", "delimiter"} & set(opts):  # the in-memory reader's checks and separator
                from fairscan.io import files_separator

                opts["sep"] = files_separator(self.files)
            if len(self.files) > 1 and opts.get("header"):
                import csv

                first = None
                for f in self.files:
                    with open(f, newline="", encoding="utf-8") as fh:
                        sep = str(opts.get("sep", opts.get("delimiter", ",")))
                        names = next(csv.reader(fh, delimiter=sep), [])
                    cols = {c: "" for c in names}
                    if first is None:
                        first = (f, cols)
                    else:
                        shared.check_same_columns(first, (f, cols), union_by_name)
            return self.spark.read.csv(self.files, **opts)
        except FairscanError:
            raise
        except Exception as e:
            raise self._error(e) from None

    def _error(self, e: Exception) -> FairscanError:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        where = (f"file '{self.files[0]}'" if len(self.files) == 1 else f"{len(self.files)} files") \
            if self.files else "the DataFrame"
        return FairscanError(f"Spark could not read {where} ({first[:300]})")

    def _collect(self, df: Any) -> list:
        try:
            return df.collect()
        except FairscanError:
            raise
        except Exception as e:
            raise self._error(e) from None

    # -- running queries (the SqlEngine hooks) ----------------------------------------------------
    def _col(self, column: str) -> Any:
        self._type(column)
        return self.F.col(self._quote(column))

    def _quote(self, column: str) -> str:
        return "`" + column.replace("`", "``") + "`"

    def _expr(self, sql: str) -> Any:
        return self.F.expr(sql)

    def _finite(self, v: str) -> str:
        return f"({v} IS NOT NULL AND NOT isnan({v}) AND abs({v}) <> CAST('inf' AS DOUBLE))"

    def _fetch_limit(self) -> int:
        return FETCH_LIMIT

    def n_rows(self) -> int:
        if ("n",) not in self._cache:
            try:
                self._cache[("n",)] = int(self.df.count())
            except Exception as e:
                raise self._error(e) from None
        return self._cache[("n",)]

    def fetch(self, columns: list[str]) -> pd.DataFrame:
        """Collected as Arrow (``DataFrame.toArrow``, PySpark 4), then converted by pyarrow:
        ``toPandas`` is avoided because PySpark's pandas support lags pandas 3."""
        cols = [self._col(c) for c in columns]
        try:
            table = self.df.select(*cols).toArrow()
        except Exception as e:
            raise self._error(e) from None
        return table.to_pandas()

    def _any_row(self, where: str) -> bool:
        return bool(self._collect(self.df.where(self.F.expr(where)).limit(1).select(self.F.lit(1))))

    def _distinct_sorted(self, value: str, limit: int) -> list:
        F = self.F
        rows = self._collect(self.df.select(F.expr(value).alias("v")).distinct()
                             .orderBy(F.col("v").asc_nulls_first()).limit(limit))
        return [r[0] for r in rows]

    def _agg_row(self, value: str, aggs: list[str], where: str = "TRUE") -> tuple:
        F = self.F
        df = self.df.select(F.expr(value).alias("v")).where(F.expr(where))
        return tuple(self._collect(df.agg(*[F.expr(a) for a in aggs]))[0])

    def _approx_quantiles(self, column: str, probs: np.ndarray, n: int) -> np.ndarray:
        df = self.df.select(self._col(column).cast("double").alias("v")).where(self.F.expr("NOT (v IS NULL OR isnan(v))"))
        return np.asarray(df.approxQuantile("v", [float(p) for p in probs], self.relative_error), dtype=np.float64)

    def _ranks(self, expr: str, source: Any, where: str,
               stats: tuple[int, int, int, float, float]) -> RankSource:
        return _SparkRanks(source if where == "TRUE" else source.where(self.F.expr(where)), expr, stats)

    def _locate(self, src: RankSource, ranks: list[int]) -> dict[int, tuple[float, int, int]]:
        try:
            return super()._locate(src, ranks)
        except FairscanError:
            raise
        except Exception as e:
            raise self._error(e) from None

    # -- row-level expressions ------------------------------------------------------------------
    def _eq(self, column: str, value: Any) -> Any:
        F = self.F
        return F.when(F.expr(self._missing(column)), F.lit(None)).otherwise(self._col(column) == F.lit(_py(value)))

    def _negate(self, cond: Any) -> Any:
        return ~cond

    def _positioned(self) -> Any:
        return self._with_positions()

    def _decision_table(self, decision: Decision) -> Any:
        """In row order (see the module docstring), sorted by Spark and collected as Arrow:
        one bool per row reaches the driver."""
        cond, df = self._decision_expr(decision)
        if POS not in df.columns:
            df = self._with_positions()
        try:
            return df.select(cond.alias("d"), self.F.col(POS)).orderBy(POS).select("d").toArrow()
        except Exception as e:
            raise self._error(e) from None

    def _with_positions(self) -> Any:
        """The DataFrame with a row position column (see the module docstring)."""
        F = self.F
        if not self.files:
            return self.df.withColumn(POS, F.monotonically_increasing_id())
        meta = F.col("_metadata")
        shift = max(20, 53 - len(self.files).bit_length())  # positions stay exact in a double
        if len(self.files) == 1:
            rank = F.lit(0)
        else:
            # inputFiles() gives file:///a/b where _metadata.file_path has file:/a/b (same encoding)
            uris = sorted({re.sub(r"^file:///", "file:/", u) for u in self.df.inputFiles()},
                          key=lambda u: unquote(urlparse(u).path))
            rank = F.array_position(F.array(*[F.lit(u) for u in uris]), meta.getField("file_path")) - 1
        base = rank.cast("long") * F.lit(1 << shift)
        if self.format == "parquet":
            return self.df.withColumn(POS, base + meta.getField("row_index"))
        return self._csv_positions(base, shift)

    def _csv_positions(self, base: Any, shift: int) -> Any:
        """CSV files have no row index, and Spark packs their pieces into partitions by size,
        not by name. A row's position in its file is its piece's first byte plus its place in
        the piece (monotonically_increasing_id minus the piece's first id): increasing, and
        below the file's size (each row takes at least one byte of its piece)."""
        F = self.F
        big = max(os.path.getsize(f) for f in self.files)
        if big >= 1 << shift:
            raise FairscanError(f"CSV files of {big:,} bytes are too large to keep their row order with the Spark "
                                "engine; convert them to Parquet")
        meta = F.col("_metadata")
        path, start, rid = "__fairscan_path", "__fairscan_start", "__fairscan_id"
        df = self.df.select("*", meta.getField("file_path").alias(path), meta.getField("file_block_start").alias(start),
                            base.alias(POS), F.monotonically_increasing_id().alias(rid))
        first = df.groupBy(path, start).agg(F.min(rid).alias("__fairscan_first"))
        df = df.join(F.broadcast(first), [path, start])
        pos = F.col(POS) + F.col(start) + F.col(rid) - F.col("__fairscan_first")
        return df.withColumn(POS, pos).drop(path, start, rid, "__fairscan_first")


    # -- the one pass ---------------------------------------------------------------------------
    def _hash_value(self, value: Any) -> Any:
        return _py(value)

    def _fast_hash(self) -> bool:
        return self.data_hash == "fast"

    def _start_hash(self, q: GroupQuery) -> Callable[[bool], tuple[str, dict[str, str]]] | None:
        """The data hash of :mod:`fairscan.engines.datahash` (the memory and DuckDB engines'):
        the hashed columns' canonical values, sorted into row order by Spark and collected as
        Arrow to the driver after the GROUP BY (``data_hash="fast"``: an order-independent
        digest inside the GROUP BY instead, for data too large to bring to the driver)."""
        if self.data_hash != "sha256":
            return None
        F = self.F
        hasher = DataHasher(hashed_columns(q.attrs, q.label, q.decision, q.weights, self.is_numeric, q.paired),
                            q.label)
        d, df = self._decision_expr(q.decision)
        d2 = self._decision_expr(q.paired)[0] if q.paired is not None else None
        if POS not in df.columns:
            df = self._with_positions()
        cols, encode = [], []
        for i, (c, kind, _) in enumerate(hasher.columns):
            a = q.attrs.get(c)
            if kind == "number":
                cols.append(self._col(c).cast("double"))
                encode.append(arrow_numbers)
            elif kind == "codes" and a is not None and a.kind == "tiers":
                cols.append(self._expr(f"CAST({self._key_expr(a)} AS INT)"))
                encode.append(lambda arr: arr.to_numpy(zero_copy_only=False))
            elif kind == "codes" and a is not None:
                cols.append(self._col(c))
                encode.append(lambda arr, a=a: arrow_codes(a, arr, missing_code(a, q.miss_of[a.column])))
            else:
                cond = (self._label_expr(q.label) if q.label is not None and c == q.label.column
                        else d if q.paired is None or c == q.decision.column else d2)
                cols.append(F.coalesce(cond, F.lit(False)))
                encode.append(lambda arr: arr.to_numpy(zero_copy_only=False))
            cols[-1] = cols[-1].alias(f"c{i}")

        def finish(stop: bool) -> tuple[str, dict[str, str]]:
            if stop:
                hasher.cancel()
                return "", {}
            try:
                table = df.select(*cols, F.col(POS)).orderBy(POS).drop(POS).toArrow()
            except Exception as e:
                raise self._error(e) from None
            for batch in table.to_batches(1 << 20):
                hasher.update({c: f(batch.column(i)) for i, ((c, _, _), f)
                               in enumerate(zip(hasher.columns, encode, strict=True))})
            return hasher.digests(self.n_rows())

        return finish

    def _value_table(self, q: ValueQuery) -> Any:
        """One ``groupingSets`` (or ``groupBy`` for one set) over the keys, strata, offered flag
        and value; its cells (not rows) are collected as Arrow."""
        import pyarrow as pa

        F = self.F
        kcols = [f"k{i}" for i in range(len(q.order))]
        sel = [*(F.expr(k).alias(c) for k, c in zip(q.keys, kcols, strict=True)),
               *(self._col(c).alias(f"s{i}") for i, c in enumerate(q.within)),
               *([self._col(q.cluster).alias("k_c")] if q.cluster else []),
               *([self._col(q.offered).alias("o")] if q.offered else []), F.expr(q.value).alias("v"),
               *([F.expr(q.raw).alias("x")] if q.raw else [])]
        if q.weights:
            sel.append(self._col(q.weights).cast("double").alias("w"))
        aggs, names = zip(*q.aggregates(self._cell_aggregates(q.weights)), strict=True)
        rows_df = self._source.select(*sel)
        try:
            if q.single:
                out = rows_df.groupBy(*kcols, *q.rest).agg(*(F.expr(a).alias(n) for a, n in zip(aggs, names,
                                                                                                   strict=True)))
                table = out.toArrow()
                return table.append_column("gid", pa.array(np.zeros(table.num_rows, dtype=np.int64)))
            sets = [[F.col(kcols[i]) for i in s] + [F.col(c) for c in q.rest] for s in q.sets]
            out = rows_df.groupingSets(sets, *kcols, *q.rest).agg(
                *(F.expr(a).alias(n) for a, n in zip(aggs, names, strict=True)),
                *(F.grouping(k).alias(f"g{i}") for i, k in enumerate(kcols)))
            table = out.toArrow()
        except Exception as e:
            raise self._error(e) from None
        nk = len(kcols)
        gid = sum(table.column(f"g{i}").to_numpy(zero_copy_only=False).astype(np.int64) << (nk - 1 - i)
                  for i in range(nk))
        return table.append_column("gid", pa.array(np.asarray(gid, dtype=np.int64)))

    def _grouped_rows(self, q: GroupQuery) -> list[tuple]:
        F = self.F
        nk = len(q.order)
        kcols = [f"k{i}" for i in range(nk)]
        sel = [F.expr(k).alias(c) for k, c in zip(q.keys, kcols, strict=True)]
        sel += [q.y.alias("y"), q.d.alias("d")]
        if q.paired is not None:
            sel.append(q.d2.alias("d2"))
        dcols = q.decision_columns
        nd = len(dcols)
        aggs = [F.expr(a) for a in self._cell_aggregates(q.weights)]
        if q.weights:
            sel.append(self._col(q.weights).cast("double").alias("w"))
        hcols = [self._col(c) for c in q.hash_cols]
        sel += [F.xxhash64(*hcols).alias("h1"), F.xxhash64(F.lit("fairscan"), *hcols).alias("h2")]
        low = F.lit(0xFFFFFFFF)
        # sums of the 32-bit halves fit a long for < 2^31 rows per group (decimal sums are slow)
        aggs += [F.sum(F.col("h1").bitwiseAND(low)), F.sum(F.shiftrightunsigned("h1", 32)),
                 F.sum(F.col("h2").bitwiseAND(low)), F.sum(F.shiftrightunsigned("h2", 32))]
        rows_df = q.source.select(*sel)
        if q.single:
            rows = [(*r, *[0] * nk) for r in self._collect(rows_df.groupBy(*kcols, "y", *dcols).agg(*aggs))]
        elif hasattr(rows_df, "groupingSets"):  # pyspark >= 4.0: one pass for every grouping
            gsets = [[F.col(kcols[i]) for i in s] + [F.col("y"), *map(F.col, dcols)] for s in q.sets]
            rows = self._collect(rows_df.groupingSets(gsets, *kcols, "y", *dcols)
                                 .agg(*aggs, *[F.grouping(k) for k in kcols]))
        else:  # older pyspark: one groupBy per grouping, rows laid out as groupingSets gives them
            rows = []
            for s in q.sets:
                for r in self._collect(rows_df.groupBy(*[kcols[i] for i in s], "y", *dcols).agg(*aggs)):
                    keys = dict(zip(s, r[: len(s)], strict=True))
                    rows.append((*[keys.get(i) for i in range(nk)], *r[len(s):],
                                 *[0 if i in s else 1 for i in range(nk)]))
        na = len(aggs)  # (keys, y, d.., aggregates, grouping flags) -> (keys, y, d.., gid, aggregates, h1, h2)
        m = nk + 1 + nd  # where the aggregates start
        return [(*r[:m], sum(int(f) << (nk - 1 - i) for i, f in enumerate(r[m + na:])),
                 *r[m: m + na - 4], r[m + na - 4] + (r[m + na - 3] << 32), r[m + na - 2] + (r[m + na - 1] << 32))
                for r in rows]
