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
- ``data_sha256``: Spark cannot stream rows through hashlib cheaply, so the hash is the sha256
  of an order-independent multiset digest computed inside the GROUP BY: two sums of
  ``xxhash64`` over each row's audited values (modulo 2^64), the row count, the column types
  and the label. Deterministic for the same rows, but not equal to the memory engine's hash.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from typing import Any, Literal
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from fairscan.engines.base import Aggregate, Decision, Engine, Label
from fairscan.engines.duckdb import (
    MAX_JOINT_GROUPS,
    N_BINS,
    assemble_stats,
    audited_columns,
    categorical_codes,
    check_parquet_schemas,
    check_same_columns,
    expand_paths,
    fast_digest,
    label_error,
    linear_quantiles,
    locate_ranks,
    prediction_error,
    score_error,
    weight_errors,
)
from fairscan.errors import FairscanError, plain, suggest
from fairscan.groups import Attribute, Grouping

#: Collect at most this many values to the driver when locating an order statistic.
FETCH_LIMIT = 200_000
POS = "__fairscan_pos"
_NUMERIC = {"tinyint", "smallint", "int", "bigint", "float", "double"}
_FLOAT = {"float", "double"}


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


class _SparkRanks:
    """RankSource over ``CAST(expr AS DOUBLE)`` of a DataFrame's rows (already filtered)."""

    def __init__(self, df: Any, expr: Any, stats: tuple[int, int, int, float, float] | None = None) -> None:
        from pyspark.sql import functions as F

        self.F = F
        self.df = df.select(expr.cast("double").alias("v")).where(F.col("v").isNotNull() & ~F.isnan("v"))
        self._stats = stats

    def _finite(self) -> Any:
        v = self.F.col("v")
        return (v != math.inf) & (v != -math.inf)

    def summary(self) -> tuple[int, int, int, float, float]:
        if self._stats is not None:
            return self._stats
        F, v = self.F, self.F.col("v")
        r = self.df.agg(F.count(F.when(v == -math.inf, 1)), F.count(F.when(self._finite(), 1)),
                        F.count(F.when(v == math.inf, 1)), F.min(F.when(self._finite(), v)),
                        F.max(F.when(self._finite(), v))).collect()[0]
        return int(r[0]), int(r[1]), int(r[2]), r[3], r[4]

    def histogram(self, intervals: list[tuple[float, float, float]], nbins: int) -> list[tuple[int, int, float, float]]:
        F, v = self.F, self.F.col("v")
        key = None
        for i, (a, b, s) in enumerate(intervals):
            if math.isfinite(s):
                raw = (v - F.lit(a)) * F.lit(s)
            else:
                raw = (v * 0.5 - F.lit(a * 0.5)) * F.lit(nbins / (b * 0.5 - a * 0.5))
            bin_ = F.least(F.floor(raw).cast("long"), F.lit(nbins - 1)) + F.lit(i * nbins)
            cond = v.between(F.lit(a), F.lit(b))
            key = F.when(cond, bin_) if key is None else key.when(cond, bin_)
        rows = (self.df.where(self._finite()).select(key.alias("k"), v).where(F.col("k").isNotNull())
                .groupBy("k").agg(F.count(F.lit(1)), F.min("v"), F.max("v")).collect())
        return [(int(r[0]), int(r[1]), float(r[2]), float(r[3])) for r in rows]

    def fetch(self, lo: float, hi: float) -> np.ndarray:
        F = self.F
        rows = self.df.where(F.col("v").between(F.lit(lo), F.lit(hi))).orderBy("v").collect()
        return np.array([r[0] for r in rows], dtype=np.float64)


class SparkEngine(Engine):
    """Audits a Spark DataFrame, or Parquet/CSV files read with Spark.

    ``data``: a ``pyspark.sql.DataFrame`` (its session is used), or a path, glob, directory or
    list of them (read with ``spark``, or a local session on ``master``, default
    ``local[2]``, created with ``config``). ``union_by_name`` (Parquet paths) lets files differ
    in their columns (Spark's ``mergeSchema``). ``quantiles``: ``"exact"`` (equal to numpy) or
    ``"approx"`` (``approxQuantile`` with ``relative_error``). ``csv_options`` go to
    ``spark.read.csv`` (default: header, inferSchema).
    """

    name = "spark"

    def __init__(
        self,
        data: Any,
        *,
        spark: Any = None,
        master: str | None = None,
        config: dict[str, str] | None = None,
        union_by_name: bool = False,
        quantiles: Literal["exact", "approx"] = "exact",
        relative_error: float = 1e-3,
        csv_options: dict[str, Any] | None = None,
    ) -> None:
        try:
            from pyspark.sql import DataFrame
            from pyspark.sql import functions as F
        except ImportError:
            raise FairscanError("the Spark engine needs pyspark: pip install 'fairscan[spark]'") from None
        if quantiles not in ("exact", "approx"):
            raise FairscanError(f"quantiles must be 'exact' or 'approx', got {plain(quantiles)}")
        self.F = F
        self.quantile_mode = quantiles
        self.relative_error = float(relative_error)
        self.files: list[str] = []
        self.format: str | None = None
        self._cache: dict[tuple, Any] = {}
        if isinstance(data, DataFrame):
            self.df = data
            self.spark = data.sparkSession
        elif isinstance(data, str | os.PathLike | list | tuple):
            self.files, self.format = expand_paths(data)
            self.spark = spark or local_session(master, config)
            self.df = self._read(union_by_name, csv_options)
        else:
            raise FairscanError(
                f"the Spark engine audits a Spark DataFrame or Parquet/CSV paths, not a {type(data).__name__}")
        self._types = {str(name): str(t) for name, t in self.df.dtypes}

    def _read(self, union_by_name: bool, csv_options: dict[str, Any] | None) -> Any:
        try:
            if self.format == "parquet":
                check_parquet_schemas(self.files, union_by_name)
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
                        check_same_columns(first, (f, cols), union_by_name)
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

    # -- column facts ---------------------------------------------------------------------------
    def columns(self) -> list[str]:
        return list(self._types)

    def _type(self, column: str) -> str:
        if column not in self._types:
            raise FairscanError(f"column '{column}' not found{suggest(column, self.columns())}")
        return self._types[column]

    def _col(self, column: str) -> Any:
        self._type(column)
        return self.F.col("`" + column.replace("`", "``") + "`")

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

    def is_numeric(self, column: str) -> bool:
        t = self._type(column)
        return t in _NUMERIC or t.startswith("decimal")

    def _is_float(self, column: str) -> bool:
        return self._type(column) in _FLOAT

    def _missing(self, column: str) -> Any:
        c = self._col(column)
        return (c.isNull() | self.F.isnan(c)) if self._is_float(column) else c.isNull()

    def has_missing(self, column: str) -> bool:
        key = ("missing", column)
        if key not in self._cache:
            self._cache[key] = bool(self._collect(self.df.where(self._missing(column)).limit(1).select(self.F.lit(1))))
        return self._cache[key]

    def levels(self, column: str, limit: int) -> tuple[list, bool]:
        key = ("levels", column)
        cached = self._cache.get(key)
        if cached is None or (cached[2] and len(cached[0]) <= limit):
            F, c = self.F, self._col(column)
            v = F.when(F.isnan(c), F.lit(None)).otherwise(c) if self._is_float(column) else c
            rows = self._collect(self.df.select(v.alias("v")).distinct()
                                 .orderBy(F.col("v").asc_nulls_first()).limit(int(limit) + 2))
            missing = bool(rows) and rows[0][0] is None
            values = [r[0] for r in rows if r[0] is not None]
            self._cache[("missing", column)] = missing
            cached = (values, missing, len(values) > limit)
            self._cache[key] = cached
        return cached[0][: limit + 1], cached[1]

    def _require_numeric(self, column: str, role: str = "tiers and scores") -> None:
        if not self.is_numeric(column):
            raise FairscanError(f"column '{column}' is not numeric (type {self._type(column)}); {role} need numbers")

    def _num_stats(self, column: str) -> tuple[int, int, int, int, float, float]:
        key = ("stats", column)
        if key not in self._cache:
            self._require_numeric(column)
            F = self.F
            v = self._col(column).cast("double")
            finite = v.isNotNull() & ~F.isnan(v) & (v != math.inf) & (v != -math.inf)
            r = self._collect(self.df.agg(
                F.count(F.when(v.isNull() | F.isnan(v), 1)), F.count(F.when(v == -math.inf, 1)),
                F.count(F.when(finite, 1)), F.count(F.when(v == math.inf, 1)),
                F.min(F.when(finite, v)), F.max(F.when(finite, v))))[0]
            self._cache[key] = (int(r[0]), int(r[1]), int(r[2]), int(r[3]),
                                math.nan if r[4] is None else float(r[4]), math.nan if r[5] is None else float(r[5]))
            self._cache[("missing", column)] = r[0] > 0
        return self._cache[key]

    def min_max(self, column: str) -> tuple[float, float, int]:
        miss, ninf, _, pinf, lo, hi = self._num_stats(column)
        return lo, hi, miss + ninf + pinf

    def _order_stats(self, df: Any, expr: Any, ranks: list[int],
                     stats: tuple[int, int, int, float, float] | None = None) -> dict[int, float]:
        return {r: v for r, (v, _, _) in self._locate(df, expr, ranks, stats).items()}

    def _locate(self, df: Any, expr: Any, ranks: list[int],
                stats: tuple[int, int, int, float, float] | None = None) -> dict[int, tuple[float, int, int]]:
        try:
            return locate_ranks(_SparkRanks(df, expr, stats), ranks, nbins=N_BINS, fetch_limit=FETCH_LIMIT)
        except FairscanError:
            raise
        except Exception as e:
            raise self._error(e) from None

    def quantiles(self, column: str, probs: np.ndarray) -> tuple[np.ndarray, bool]:
        miss, ninf, fin, pinf, lo, hi = self._num_stats(column)
        n = ninf + fin + pinf
        if n == 0:
            raise FairscanError(f"column '{column}' has no values to cut into tiers")
        probs = np.asarray(probs, dtype=np.float64)
        if self.quantile_mode == "approx":
            c = self._col(column).cast("double")
            df = self.df.select(c.alias("v")).where(~(self.F.col("v").isNull() | self.F.isnan("v")))
            qs = df.approxQuantile("v", [float(p) for p in probs], self.relative_error)
            return np.asarray(qs, dtype=np.float64), miss > 0
        expr = self._col(column)
        return linear_quantiles(n, probs, lambda rs: self._order_stats(
            self.df, expr, rs, (ninf, fin, pinf, lo, hi))), miss > 0

    # -- row-level expressions ------------------------------------------------------------------
    def _key_expr(self, attr: Attribute) -> Any:
        F = self.F
        c = self._col(attr.column)
        if attr.kind == "categorical":
            return c  # raw values, mapped to codes after the groupBy (missing -> unknown)
        v = c.cast("double")
        missing = attr.n_levels - 1 if attr.has_unknown else len(attr.edges)
        tiers = F.lit(0)
        for e in attr.edges:
            tiers = tiers + (v > F.lit(float(e))).cast("int")
        return F.when(v.isNull() | F.isnan(v), F.lit(missing)).otherwise(tiers)

    def _label_expr(self, label: Label) -> Any:
        F = self.F
        return F.when(self._missing(label.column), F.lit(None)).otherwise(
            self._col(label.column) == F.lit(_py(label.positive)))

    def _decision_expr(self, decision: Decision) -> tuple[Any, Any]:
        """(favourable-decision indicator, the DataFrame to read it from)."""
        F = self.F
        flip = F.lit(decision.favourable == 0)
        c = decision.column
        if decision.kind == "prediction":
            cond = F.when(self._missing(c), F.lit(None)).otherwise(self._col(c) == F.lit(_py(decision.positive)))
            return cond != flip, self.df
        self._require_numeric(c)
        v = self._col(c).cast("double")
        if decision.kind == "threshold":
            cond = F.when(v.isNull() | F.isnan(v), F.lit(False)).otherwise(v >= F.lit(float(decision.threshold)))
            return cond != flip, self.df
        cut, take, ties = self.budget_cut(c, int(decision.k))
        if take == 0:
            return (F.lit(False) if math.isinf(cut) else (v > F.lit(cut))) != flip, self.df
        if take == ties:
            return (v >= F.lit(cut)) != flip, self.df
        df = self._with_positions()
        # positions are >= 0; with few ties one job collects them all
        pos_cut = self._order_stats(df.where(v == F.lit(cut)), F.col(POS), [take - 1],
                                    (0, ties, 0, 0.0, float(1 << 63)))[take - 1]
        cond = F.when(v > F.lit(cut), F.lit(True)).when(v == F.lit(cut), F.col(POS) <= F.lit(int(pos_cut))) \
            .otherwise(F.lit(False))
        return cond != flip, df

    def decisions(self, decision: Decision) -> np.ndarray:
        """In row order (see the module docstring), sorted by Spark and collected as Arrow:
        one bool per row reaches the driver."""
        F = self.F
        cond, df = self._decision_expr(decision)
        if POS not in df.columns:
            df = self._with_positions()
        try:
            table = df.select(cond.alias("d"), F.col(POS)).orderBy(POS).select("d").toArrow()
        except Exception as e:
            raise self._error(e) from None
        col = table.column("d")
        if col.null_count:  # only a prediction can be missing: scores were checked
            raise prediction_error(decision.column, col.null_count)
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=bool)

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

    def budget_cut(self, column: str, k: int) -> tuple[float, int, int]:
        """(the k-th highest score, how many rows at it are taken, how many rows are at it)."""
        miss, ninf, fin, pinf, lo, hi = self._num_stats(column)
        if miss:
            raise score_error(column, miss)
        n = ninf + fin + pinf
        k = max(0, min(k, n))
        if k == 0:
            return math.inf, 0, 0
        cut, below, equal = self._locate(self.df, self._col(column), [n - k], (ninf, fin, pinf, lo, hi))[n - k]
        return cut, k - (n - below - equal), equal

    # -- the one pass ---------------------------------------------------------------------------
    def aggregate(
        self,
        groupings: list[Grouping],
        label: Label | None,
        decision: Decision,
        weights: str | None,
    ) -> Aggregate:
        F = self.F
        attrs = audited_columns(groupings)
        order = list(attrs)
        miss_of = {c: (self.levels(c, len(a.values))[1] if a.kind == "categorical" else a.has_unknown)
                   for c, a in attrs.items()}
        kcols = [f"k{i}" for i in range(len(order))]
        y = self._label_expr(label) if label else F.lit(False)
        d, df = self._decision_expr(decision)
        sel = [self._key_expr(attrs[c]).alias(k) for c, k in zip(order, kcols, strict=True)]
        sel += [y.alias("y"), d.alias("d")]
        aggs = [F.count(F.lit(1)).alias("n")]
        if weights:
            self._require_numeric(weights, "weights")
            sel.append(self._col(weights).cast("double").alias("w"))
            w = F.col("w")
            aggs += [F.sum(w), F.sum(w * w), F.count(F.when(w.isNull() | F.isnan(w) | (w == math.inf)
                                                             | (w == -math.inf), 1)), F.count(F.when(w < 0, 1))]
        hash_cols = [c for c in dict.fromkeys([*order, decision.column, weights, label.column if label else None]) if c]
        hcols = [self._col(c) for c in hash_cols]
        sel += [F.xxhash64(*hcols).alias("h1"), F.xxhash64(F.lit("fairscan"), *hcols).alias("h2")]
        low = F.lit(0xFFFFFFFF)
        # sums of the 32-bit halves fit a long for < 2^31 rows per group (decimal sums are slow)
        aggs += [F.sum(F.col("h1").bitwiseAND(low)), F.sum(F.shiftrightunsigned("h1", 32)),
                 F.sum(F.col("h2").bitwiseAND(low)), F.sum(F.shiftrightunsigned("h2", 32))]
        sizes = [attrs[c].n_levels for c in order]
        joint = float(np.prod(sizes, dtype=np.float64)) <= MAX_JOINT_GROUPS
        sets = list(dict.fromkeys(tuple(sorted(order.index(a.column) for a in g.attributes)) for g in groupings))
        single = joint or len(sets) == 1
        rows_df = df.select(*sel)
        nk = len(order)
        if single:
            rows = self._collect(rows_df.groupBy(*kcols, "y", "d").agg(*aggs))
        elif hasattr(rows_df, "groupingSets"):  # pyspark >= 4.0: one pass for every grouping
            gsets = [[F.col(kcols[i]) for i in s] + [F.col("y"), F.col("d")] for s in sets]
            rows = self._collect(rows_df.groupingSets(gsets, *kcols, "y", "d")
                                 .agg(*aggs, *[F.grouping(k) for k in kcols]))
        else:  # older pyspark: one groupBy per grouping, rows laid out as groupingSets gives them
            rows = []
            for s in sets:
                for r in self._collect(rows_df.groupBy(*[kcols[i] for i in s], "y", "d").agg(*aggs)):
                    keys = dict(zip(s, r[: len(s)], strict=True))
                    rows.append((*[keys.get(i) for i in range(nk)], *r[len(s):],
                                 *[0 if i in s else 1 for i in range(nk)]))
        cols = list(zip(*rows, strict=True)) if rows else [()] * (nk + 2 + len(aggs) + (0 if single else nk))
        yv = np.asarray(cols[nk], dtype=object)
        dv = np.asarray(cols[nk + 1], dtype=object)
        n = np.asarray(cols[nk + 2], dtype=np.int64)
        flags = [] if single else [np.asarray(cols[nk + 2 + len(aggs) + i], dtype=np.int64) for i in range(nk)]

        def set_rows(s: tuple[int, ...]) -> np.ndarray:
            if single:
                return np.arange(len(n))
            mask = np.ones(len(n), dtype=bool)
            for i in range(nk):
                mask &= flags[i] == (0 if i in s else 1)
            return np.flatnonzero(mask)

        base = set_rows(sets[0])
        if label and any(v is None for v in yv[base]):
            raise label_error(label.column, int(n[base][[v is None for v in yv[base]]].sum()))
        if decision.kind == "prediction" and any(v is None for v in dv[base]):
            raise prediction_error(decision.column, int(n[base][[v is None for v in dv[base]]].sum()))
        w = w2 = None
        pos = nk + 3
        if weights:
            w = np.asarray([0.0 if v is None else v for v in cols[pos]], dtype=np.float64)
            w2 = np.asarray([0.0 if v is None else v for v in cols[pos + 1]], dtype=np.float64)
            weight_errors(weights, int(np.asarray(cols[pos + 2], dtype=np.int64)[base].sum()),
                          int(np.asarray(cols[pos + 3], dtype=np.int64)[base].sum()))
            pos += 4
        codes: dict[str, np.ndarray] = {}
        for i, c in enumerate(order):
            if attrs[c].kind == "categorical":
                codes[c] = categorical_codes(attrs[c], cols[i], miss_of[c])
            else:
                codes[c] = np.asarray([-1 if v is None else v for v in cols[i]], dtype=np.int64)

        def rows_of(g: Grouping) -> np.ndarray:
            return set_rows(tuple(sorted(order.index(a.column) for a in g.attributes)))

        stats = assemble_stats(groupings, codes, yv.astype(bool), dv.astype(bool), n, w, w2, rows_of)
        h1 = sum(int(cols[pos][i]) + (int(cols[pos + 1][i]) << 32) for i in base)
        h2 = sum(int(cols[pos + 2][i]) + (int(cols[pos + 3][i]) << 32) for i in base)
        header = ";".join(f"{c}:{self._types[c]}" for c in hash_cols)
        if label is not None:
            header += f";label:{label.column}={_py(label.positive)!r}"
        return Aggregate(n_rows=self.n_rows(), stats=stats, data_sha256=fast_digest(header, self.n_rows(), h1, h2))

