"""DuckDB engine: Parquet or CSV files larger than memory (globs, directories), counted by SQL.

Every question the audit asks (columns, distinct values, quantiles, ranges) is one small SQL
query over a view of the files, and the counting is ONE ``GROUP BY`` over (attribute keys,
label indicator, decision indicator) with ``count(*)``, ``sum(w)`` and ``sum(w*w)``. Nothing
row-sized is ever held in Python; DuckDB streams the files under ``memory_limit`` and spills
to ``temp_directory`` when it must.

Conventions (the same results as :class:`~fairscan.engines.memory.MemoryEngine`):

- Row order (it breaks budget ties): the files sorted by name, then each file's row order
  (Parquet: DuckDB's ``file_row_number``; CSV, relations and data frames: insertion order,
  ``row_number() OVER ()`` with ``preserve_insertion_order``, which runs single-threaded and
  is only used when a budget cuts through tied scores).
- Missing values are NULL, and NaN in a float column; both go to the ``unknown`` group.
- Quantiles are exact and equal to ``numpy.quantile`` (linear interpolation): the order
  statistics are found by histogram refinement (a few GROUP BY passes over narrowing value
  ranges, then a sort of at most ``FETCH_LIMIT`` values), so memory stays bounded. With
  ``quantiles="approx"`` DuckDB's ``approx_quantile`` (T-Digest) is used instead: one pass,
  no hard error bound (typically well under 1% of the rank on smooth data).
- The budget cut (the k-th highest score) is found the same way, without sorting the data;
  ties at the cut go to the earliest rows. For Parquet the final sort of candidate scores
  also returns their row positions, so breaking the ties costs no extra pass; otherwise the
  same refinement runs over the positions of the tied rows.
- ``data_sha256`` (``data_hash="sha256"``, the default) is the one data hash of
  :mod:`fairscan.engines.datahash`, equal to the memory and Spark engines' for the same rows
  in the same order: the hashed columns' canonical values (numbers cast to DOUBLE, group
  codes and indicators computed by DuckDB) streamed in row order, on a second connection
  while the GROUP BY runs. ``data_hash="fast"`` instead folds DuckDB's 64-bit ``hash()`` of
  every row into the GROUP BY (two sums modulo 2^64 plus the row count, under sha256): no
  extra pass, independent of row order, deterministic, but not equal to the one data hash
  (the output's ``data_hash`` says which was computed).

What DuckDB and Spark do alike lives in :mod:`fairscan.engines.sql`; this module says how
DuckDB runs it (SQL text over a view of the data) and what only DuckDB does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairscan.engines.base import missing_code
from fairscan.engines.datahash import DataHasher, arrow_codes, arrow_numbers, hashed_columns
from fairscan.engines.sql import (
    POS,
    GroupQuery,
    RankSource,
    SqlEngine,
    SqlRanks,
    ValueQuery,
    check_parquet_schemas,
    check_same_columns,
    double_literal,
    expand_paths,
    histogram_key,
    sql_literal,
)
from fairscan.errors import FairscanError
from fairscan.types import Attribute, Decision, Label

__all__ = ["FETCH_LIMIT", "FILE_COL", "SRC", "DuckDBEngine", "quote"]

#: Sort at most this many values in one piece when locating an order statistic.
FETCH_LIMIT = 1 << 20
SRC = "__fairscan_src"
FILE_COL = "__fairscan_file"

_NUMERIC = frozenset({"tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint",
                      "uinteger", "ubigint", "uhugeint", "float", "double"})


def quote(name: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + str(name).replace('"', '""') + '"'


class _SQLRanks(SqlRanks):
    """RankSource over ``CAST(expr AS DOUBLE)`` of the rows of ``source`` matching ``where``.

    With ``pos`` (a row-position expression), ``fetch`` also keeps the positions of the
    fetched rows (``self.fetched``), so a budget cut through tied scores needs no extra pass.
    """

    def __init__(self, engine: DuckDBEngine, expr: str, source: str, where: str,
                 stats: tuple[int, int, int, float, float], pos: str | None = None) -> None:
        super().__init__(stats)
        self.e = engine
        self.pos = pos
        self.fetched: tuple[float, float, np.ndarray, np.ndarray] | None = None
        extra = f", {pos} AS p" if pos else ""
        self.inner = f"SELECT CAST({expr} AS DOUBLE) AS v{extra} FROM {source} WHERE {where}"

    def histogram(self, intervals: list[tuple[float, float, float]], nbins: int) -> list[tuple[int, int, float, float]]:
        return self.e._rows(
            f"SELECT k, count(*), min(v), max(v) FROM (SELECT v, {histogram_key(intervals, nbins, covers=self.stats[3:])} AS k "
            f"FROM ({self.inner}) WHERE isfinite(v)) WHERE k IS NOT NULL GROUP BY k")

    def fetch(self, lo: float, hi: float) -> np.ndarray:
        cols = "v, p" if self.pos else "v"
        res = self.e._relation(
            f"SELECT {cols} FROM ({self.inner}) WHERE v BETWEEN {double_literal(lo)} AND {double_literal(hi)} "
            f"ORDER BY {cols}").fetchnumpy()
        v = np.asarray(res["v"], dtype=np.float64)
        if self.pos:
            self.fetched = (lo, hi, v, np.asarray(res["p"], dtype=np.int64))
        return v


class DuckDBEngine(SqlEngine):
    """Audits Parquet/CSV files (or a DuckDB relation, or an in-memory frame) through DuckDB.

    ``data``: a file path, a glob (``"scores/*.parquet"``), a directory (searched recursively
    for .parquet/.csv files), a list of those, a ``duckdb.DuckDBPyRelation`` (run on its own
    connection; the settings below are then left to that connection), or a pandas/polars
    DataFrame or Arrow table (registered, not copied).

    ``memory_limit`` (DuckDB's ``SET memory_limit``, e.g. ``"1GB"``), ``threads`` (default: all
    cores) and ``temp_directory`` (where DuckDB spills; default a private temporary directory,
    removed with the engine). ``union_by_name=True`` lets files differ in their columns (a
    column a file lacks reads as missing there); otherwise any difference is an error that
    names the file and the column. ``quantiles``: ``"exact"`` (equal to numpy) or
    ``"approx"`` (T-Digest, one pass). ``data_hash``: ``"sha256"`` (memory-engine compatible,
    one extra streaming pass) or ``"fast"`` (inside the GROUP BY; see the module docstring).
    ``csv_options`` are passed to DuckDB's ``read_csv`` (e.g. ``{"delim": ";"}``).
    """

    name = "duckdb"
    _numeric_types = _NUMERIC

    def __init__(
        self,
        data: Any,
        *,
        memory_limit: str | None = "1GB",
        threads: int | None = None,
        temp_directory: str | os.PathLike | None = None,
        union_by_name: bool = False,
        quantiles: Literal["exact", "approx"] = "exact",
        data_hash: Literal["sha256", "fast"] = "sha256",
        csv_options: dict[str, Any] | None = None,
        progress: Callable[[float, str], None] | None = None,
    ) -> None:
        try:
            import duckdb
        except ImportError:
            raise FairscanError("the DuckDB engine needs the duckdb package: pip install 'fairscan[duckdb]'") from None
        self._setup(quantiles, data_hash)
        self._duckdb = duckdb
        self.memory_limit = memory_limit
        self._source = SRC
        self._rel = None
        self._frame = None
        self._notes: dict[str, str] = {}
        self.progress = progress
        self._passes = 0
        if isinstance(data, duckdb.DuckDBPyRelation):
            self._rel = data
            self._con = None
            self._where = "the DuckDB relation"
        else:
            self._con = duckdb.connect()
            settings = {"preserve_insertion_order": "true"}
            if progress is not None:  # DuckDB tracks a query's progress only with its bar on
                settings |= {"enable_progress_bar": "true", "enable_progress_bar_print": "false",
                             "progress_bar_time": "500"}
            if memory_limit:
                settings["memory_limit"] = f"'{memory_limit}'"
            if threads:
                settings["threads"] = str(int(threads))
            if temp_directory is None:
                temp_directory = tempfile.mkdtemp(prefix="fairscan-duckdb-")
                weakref.finalize(self, shutil.rmtree, temp_directory, True)
            settings["temp_directory"] = sql_literal(os.fspath(temp_directory))
            for k, v in settings.items():
                try:
                    self._con.execute(f"SET {k} = {v}")
                except duckdb.Error as e:
                    raise FairscanError(f"DuckDB setting {k}={v} was refused ({str(e).splitlines()[0]})") from None
            if isinstance(data, str | os.PathLike | list | tuple):
                self.files, self.format = expand_paths(data)
                self._where = f"file '{self.files[0]}'" if len(self.files) == 1 else f"{len(self.files)} files"
                try:  # DuckDB sniffs a CSV (and reads Parquet metadata) when the view is made
                    self._setup_files(union_by_name, csv_options or {})
                except duckdb.Error as e:
                    raise self._error(e, None) from None
            else:
                from fairscan.engines.memory import frame_kind

                frame_kind(data)  # one-line error for anything that is not a frame or table
                self._frame = data
                self._con.register("__fairscan_data", data)
                self._con.execute(f"CREATE VIEW {SRC} AS SELECT * FROM __fairscan_data")
                self._where = "the data frame"
        desc = self._rows(f"DESCRIBE SELECT * FROM {SRC}")
        self._types = {str(r[0]): str(r[1]) for r in desc}
        if self._rel is not None or self._frame is not None or self.format == "csv":
            self._pos_source = f"(SELECT *, row_number() OVER () - 1 AS {POS} FROM {SRC})"

    def close(self) -> None:
        """Close the engine's own DuckDB connection (a relation's connection is left alone)."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> DuckDBEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sources ----------------------------------------------------------------------------------
    def _setup_files(self, union_by_name: bool, csv_options: dict[str, Any]) -> None:
        files = "[" + ", ".join(sql_literal(f) for f in self.files) + "]"
        if self.format == "parquet":
            check_parquet_schemas(self.files, union_by_name)
            reader = f"read_parquet({files}, union_by_name = {sql_literal(union_by_name)}"
            self._con.execute(f"CREATE VIEW {SRC} AS SELECT * FROM {reader})")
            shift = max(20, 53 - len(self.files).bit_length())  # positions stay exact in a double
            fidx = "0" if len(self.files) == 1 else f"(list_position({files}, {FILE_COL}) - 1)"
            self._pos_source = (
                f"(SELECT *, CAST({fidx} AS BIGINT) * {1 << shift} + file_row_number AS {POS} "
                f"FROM {reader}, filename = '{FILE_COL}', file_row_number = true))")
            return
        if not {"delim", "sep"} & set(csv_options):  # the in-memory reader's checks and separator
            from fairscan.io import files_separator

            csv_options = {**csv_options, "delim": files_separator(self.files)}
        opts = "".join(f", {k} = {sql_literal(v)}" for k, v in csv_options.items())
        if not {"types", "dtypes", "column_types", "auto_type_candidates", "all_varchar"} & set(csv_options):
            opts += self._pandas_like_types(opts)
        if len(self.files) > 1:
            first = None
            for f in self.files:
                desc = self._rows(f"DESCRIBE SELECT * FROM read_csv({sql_literal(f)}{opts})", where=f"file '{f}'")
                types = {str(r[0]): str(r[1]) for r in desc}
                if first is None:
                    first = (f, types)
                else:
                    check_same_columns(first, (f, types), union_by_name)
        self._con.execute(
            f"CREATE VIEW {SRC} AS SELECT * FROM read_csv({files}, union_by_name = {sql_literal(union_by_name)}{opts})")

    def _pandas_like_types(self, opts: str) -> str:
        """read_csv options that type columns as pandas does, so that both engines see the same
        values (labels, groups, data hash): integers, decimals and text — no dates — and
        booleans only for true/false text (DuckDB would also read yes/no and t/f as booleans,
        turning bank's 'yes'/'no' label into True/False). Decided on the first file's first
        20,480 rows, DuckDB's own sniffing sample."""
        first, where = sql_literal(self.files[0]), f"file '{self.files[0]}'"
        typing = ", auto_type_candidates = ['BOOLEAN', 'BIGINT', 'DOUBLE', 'VARCHAR']"
        desc = self._rows(f"DESCRIBE SELECT * FROM read_csv({first}{opts}{typing})", where=where)
        bools = [str(r[0]) for r in desc if str(r[1]) == "BOOLEAN"]
        if not bools:
            return typing
        distinct = ", ".join(f"list_distinct(list(lower(trim({quote(c)}))))" for c in bools)
        (seen,) = self._rows(f"SELECT {distinct} FROM (SELECT * FROM read_csv({first}{opts}, all_varchar = true) "
                             "LIMIT 20480)", where=where)
        types = {}
        for c, values in zip(bools, seen, strict=True):
            text = {v for v in values if v}
            if not text <= {"true", "false"}:
                types[c] = "BIGINT" if text <= {"0", "1"} else "VARCHAR"
        if types:
            typing += ", types = {" + ", ".join(f"{sql_literal(c)}: {sql_literal(t)}" for c, t in types.items()) + "}"
        return typing

    def _relation(self, sql: str, where: str | None = None) -> Any:
        try:
            if self._rel is not None:
                return self._rel.query(SRC, sql)
            return self._con.sql(sql)
        except self._duckdb.Error as e:
            raise self._error(e, where) from None

    def _rows(self, sql: str, where: str | None = None) -> list[tuple]:
        try:
            with self._watched():
                return self._relation(sql, where).fetchall()
        except self._duckdb.Error as e:
            raise self._error(e, where) from None

    @contextlib.contextmanager
    def _watched(self) -> Iterator[None]:
        """Tell ``progress`` how far the running query is, from a thread that asks DuckDB
        every 0.2 s (DuckDB answers once a query has run for half a second)."""
        if self.progress is None or self._con is None:
            yield
            return
        self._passes += 1
        con, report, text = self._con, self.progress, f"DuckDB pass {self._passes} over {self._where}"
        error = self._duckdb.Error
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.2):
                try:
                    done = float(con.query_progress())
                except error:  # the query ended meanwhile: nothing to report
                    return
                if done >= 0:
                    report(min(done / 100, 0.99), text)

        watcher = threading.Thread(target=watch, name="fairscan-duckdb-progress", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()

    def _error(self, e: Exception, where: str | None) -> FairscanError:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, self._duckdb.OutOfMemoryException) or "Out of Memory" in str(e):
            return FairscanError(
                f"DuckDB ran out of memory (memory_limit={self.memory_limit}): raise memory_limit or "
                f"lower threads ({first})")
        return FairscanError(f"DuckDB could not read {where or self._where} ({first})")


    # -- running queries (the SqlEngine hooks) ----------------------------------------------------
    def n_rows(self) -> int:
        if ("n",) not in self._cache:
            n = int(self._rows(f"SELECT count(*) FROM {SRC}")[0][0])
            if n == 0 and self.files:  # as the in-memory reader says of an empty file
                raise FairscanError(f"{self._where} {'has a header but' if self.format == 'csv' else 'has'} no rows")
            self._cache[("n",)] = n
        return self._cache[("n",)]

    def fetch(self, columns: list[str]) -> pd.DataFrame:
        for c in columns:
            self._type(c)
        sql = f"SELECT {', '.join(quote(c) for c in columns)} FROM {SRC}"
        try:
            return self._relation(sql).df()
        except self._duckdb.Error as e:
            raise self._error(e, None) from None

    def quantile_note(self, column: str) -> str:
        return self._notes.get(column, "")

    def _quote(self, column: str) -> str:
        return quote(column)

    def _finite(self, v: str) -> str:
        return f"isfinite({v})"

    def _fetch_limit(self) -> int:
        return FETCH_LIMIT

    def _any_row(self, where: str) -> bool:
        return bool(self._rows(f"SELECT 1 FROM {SRC} WHERE {where} LIMIT 1"))

    def _distinct_sorted(self, value: str, limit: int) -> list:
        return [r[0] for r in self._rows(f"SELECT DISTINCT {value} AS v FROM {SRC} ORDER BY v NULLS FIRST LIMIT {limit}")]

    def _agg_row(self, value: str, aggs: list[str], where: str = "TRUE") -> tuple:
        return self._rows(f"SELECT {', '.join(aggs)} FROM (SELECT {value} AS v FROM {SRC}) WHERE {where}")[0]

    def _level_value(self, column: str) -> Callable[[Any], Any]:
        """How a value of ``column`` looks in the memory engine (numpy scalars for numbers)."""
        dt = self.pandas_dtype(column)
        if isinstance(dt, np.dtype) and dt.kind in "iuf":
            return dt.type
        if isinstance(dt, pd.api.extensions.ExtensionDtype) and getattr(dt, "numpy_dtype", None) is not None \
                and dt.numpy_dtype.kind in "iuf":
            return dt.numpy_dtype.type
        return lambda v: v

    def _approx_quantiles(self, column: str, probs: np.ndarray, n: int) -> np.ndarray:
        plist = "[" + ", ".join(f"CAST({double_literal(p)} AS FLOAT)" for p in probs) + "]"
        present = "NOT (v IS NULL OR isnan(v))"
        value = f"CAST({quote(column)} AS DOUBLE)"
        qs = np.asarray(self._agg_row(value, [f"approx_quantile(v, {plist})"], present)[0], dtype=np.float64)
        # state the error: one more pass measures the share of rows at or below each cut
        counts = self._agg_row(value, [f"count(*) FILTER (WHERE v <= {double_literal(q)})" for q in qs], present)
        shares = np.asarray(counts, dtype=np.float64) / n
        self._notes[column] = (
            f"tiers of '{column}' use approximate quantiles (DuckDB approx_quantile): the cuts hold "
            f"{', '.join(f'{s:.2%}' for s in shares)} of the rows at or below them, for targets "
            f"{', '.join(f'{p:.2%}' for p in probs)} (largest error {np.max(np.abs(shares - probs)):.2%} "
            "of the rows; ties make exact quantiles miss too)")
        return qs

    def _ranks(self, expr: str, source: Any, where: str,
               stats: tuple[int, int, int, float, float]) -> RankSource:
        return _SQLRanks(self, expr, source, where, stats)

    # -- row-level expressions ------------------------------------------------------------------
    def _eq(self, column: str, value: Any) -> str:
        eq = f"{quote(column)} = {self._lit(column, value)}"
        return f"CASE WHEN isnan({quote(column)}) THEN NULL ELSE {eq} END" if self._is_float(column) else f"({eq})"

    def _negate(self, cond: Any) -> Any:
        return f"(NOT {cond})"

    def _is_text(self, column: str) -> bool:
        t = self._type(column)
        return t == "VARCHAR" or t.startswith("ENUM(")

    def _lit(self, column: str, value: Any) -> str:
        t = self._type(column)
        return sql_literal(value, None if self._is_text(column) or isinstance(value, float | np.floating) else t)

    def _positioned(self) -> Any:
        if self.format == "parquet" and "file_row_number" in self._types:
            raise FairscanError(
                "a column named 'file_row_number' hides the row order that breaks budget ties; rename it")
        return self._pos_source

    def _decision_table(self, decision: Decision) -> Any:
        """In row order (the files by name, then each file's rows; see the module docstring),
        sorted by DuckDB (which spills under ``memory_limit``)."""
        if self.format == "parquet" and "file_row_number" in self._types:
            raise FairscanError("a column named 'file_row_number' hides the files' row order; rename it")
        d, _ = self._decision_expr(decision)  # its source's columns are all in the positioned source
        try:
            return self._relation(f"SELECT {d} AS d FROM {self._pos_source} ORDER BY {POS}").to_arrow_table()
        except self._duckdb.Error as e:
            raise self._error(e, None) from None

    def _cut_source(self, column: str, stats: tuple[int, int, int, float, float]) -> RankSource:
        # Parquet: the final sort of candidate scores also returns their row positions
        pos = POS if self.format == "parquet" and "file_row_number" not in self._types else None
        return _SQLRanks(self, self._dbl(column), self._pos_source if pos else SRC, "TRUE", stats, pos=pos)

    def _known_position(self, src: RankSource, cut: float, take: int, equal: int) -> int | None:
        fetched = getattr(src, "fetched", None)
        if fetched is not None and fetched[0] <= cut <= fetched[1] and 0 < take < equal:
            tied = fetched[3][fetched[2] == cut]  # sorted by (score, position)
            if len(tied) == equal:
                return int(tied[take - 1])
        return None

    # -- the one pass ---------------------------------------------------------------------------
    def _fast_hash(self) -> bool:
        return self.data_hash == "fast"

    def _grouped_rows(self, q: GroupQuery) -> list[tuple]:
        kcols = [f"k{i}" for i in range(len(q.order))]
        dcols = q.decision_columns
        sel = [*(f"{k} AS {c}" for k, c in zip(q.keys, kcols, strict=True)), f"{q.y} AS y", f"{q.d} AS d"]
        if q.paired is not None:
            sel.append(f"{q.d2} AS d2")
        aggs = self._cell_aggregates(q.weights)
        if q.weights:
            sel.append(f"CAST({quote(q.weights)} AS DOUBLE) AS w")
        if self._fast_hash():
            cols = ", ".join(quote(c) for c in q.hash_cols)
            sel += [f"hash({cols}) AS h1", f"hash({cols}, 'fairscan') AS h2"]
            aggs += ["sum(CAST(h1 AS HUGEINT))", "sum(CAST(h2 AS HUGEINT))"]
        if q.single:
            group_by, gid = ", ".join([*kcols, "y", *dcols]), "0"
        else:
            group_by = "GROUPING SETS (" + ", ".join(
                "(" + ", ".join([*(kcols[i] for i in s), "y", *dcols]) + ")" for s in q.sets) + ")"
            gid = f"GROUPING({', '.join(kcols)})"
        return self._rows(f"SELECT {', '.join([*kcols, 'y', *dcols])}, {gid} AS gid, {', '.join(aggs)} "
                          f"FROM (SELECT {', '.join(sel)} FROM {q.source}) GROUP BY {group_by}")

    def _value_table(self, q: ValueQuery) -> Any:
        kcols = [f"k{i}" for i in range(len(q.order))]
        sel = [*(f"{k} AS {c}" for k, c in zip(q.keys, kcols, strict=True)),
               *(f"{quote(c)} AS s{i}" for i, c in enumerate(q.within)),
               *([f"{quote(q.cluster)} AS k_c"] if q.cluster else []),
               *([f"{quote(q.offered)} AS o"] if q.offered else []), f"{q.value} AS v",
               *([f"{q.raw} AS x"] if q.raw else [])]
        if q.weights:
            sel.append(f"CAST({quote(q.weights)} AS DOUBLE) AS w")
        aggs, names = zip(*q.aggregates(self._cell_aggregates(q.weights)), strict=True)
        if q.hash_cols:  # the fast digest of the audited columns, in the same pass
            cols = ", ".join(quote(c) for c in q.hash_cols)
            sel.append(f"hash({cols}) AS h1")  # one hash a row; its sum and its xor (cheap, order-free)
            aggs, names = (*aggs, "sum(CAST(h1 AS HUGEINT))", "bit_xor(h1)"), (*names, "h1", "h2")
        if q.single:
            group_by, gid = ", ".join([*kcols, *q.rest]), "0"
        else:
            group_by = "GROUPING SETS (" + ", ".join(
                "(" + ", ".join([*(kcols[i] for i in s), *q.rest]) + ")" for s in q.sets) + ")"
            gid = f"GROUPING({', '.join(kcols)})"
        sql = (f"SELECT {', '.join([*kcols, *q.rest])}, {gid} AS gid, "
               f"{', '.join(f'{a} AS {n}' for a, n in zip(aggs, names, strict=True))} "
               f"FROM (SELECT {', '.join(sel)} FROM {self._source}) GROUP BY {group_by}")
        try:
            with self._watched():
                return self._relation(sql).to_arrow_table()
        except self._duckdb.Error as e:
            raise self._error(e, None) from None

    def _start_hash(self, q: GroupQuery) -> Callable[[bool], tuple[str, dict[str, str]]] | None:
        if self.data_hash != "sha256":
            return None
        return self._start_sha256(q.hash_cols, q.attrs, q.miss_of, q.label, q.decision, q.d, q.source,
                                  q.weights, q.paired, q.d2)

    # -- the data hash (fairscan.engines.datahash) -------------------------------------------------
    def pandas_dtype(self, column: str) -> Any:
        """The dtype the memory engine would see for ``column`` (pandas reading the same data)."""
        key = ("dtype", column)
        if key in self._cache:
            return self._cache[key]
        self._type(column)
        if self._frame is not None:
            from fairscan.engines.memory import MemoryEngine

            dt = MemoryEngine(self._frame).series(column).dtype
        else:
            if self.format == "parquet":
                import pyarrow.parquet as pq

                schema = pq.read_schema(self.files[0])
                if column in schema.names:
                    empty = schema.empty_table().select([column])
                else:
                    empty = self._relation(f"SELECT {quote(column)} FROM {SRC} LIMIT 0").to_arrow_table()
            else:
                empty = self._relation(f"SELECT {quote(column)} FROM {SRC} LIMIT 0").to_arrow_table()
            try:
                dt = empty.to_pandas()[column].dtype
            except (ValueError, KeyError, TypeError, IndexError) as e:  # damaged b"pandas" metadata (JSON)
                why = f"{type(e).__name__}: {str(e).splitlines()[0][:80]}" if str(e) else type(e).__name__
                raise FairscanError(f"file '{self.files[0]}' is not a readable Parquet file (damaged pandas "
                                    f"metadata, {why}); re-export it".replace("\n", " ")) from None
            if isinstance(dt, np.dtype) and dt.kind in "iub" and self.has_missing(column):
                dt = np.dtype(np.float64) if dt.kind in "iu" else np.dtype(object)
        self._cache[key] = dt
        return dt

    def _start_sha256(self, cols: list[str], attrs: dict[str, Attribute], miss_of: dict[str, bool],
                      label: Label | None, decision: Decision, d_expr: str, source: str,
                      weights: str | None = None, paired: Decision | None = None,
                      d2_expr: str | None = None) -> Callable[[bool], tuple[str, dict[str, str]]]:
        """Start the data hash (:mod:`fairscan.engines.datahash`, the memory engine's too): the
        canonical stream of each hashed column — numbers cast to DOUBLE, group codes and
        label/decision indicators computed by DuckDB — fed in row order. For file inputs it
        runs on a second connection while the GROUP BY runs; the returned function waits for
        it (or cancels it, given True) and returns the hex digest and each column's."""
        import threading

        import pyarrow as pa

        hasher = DataHasher(hashed_columns(attrs, label, decision, weights, self.is_numeric, paired), label)
        exprs: list[str] = []
        encode: list[Callable[[pa.Array], np.ndarray]] = []

        def as_numpy(arr: pa.Array) -> np.ndarray:
            return arr.to_numpy(zero_copy_only=False)

        for c, kind, _ in hasher.columns:
            q = quote(c)
            a = attrs.get(c)
            if kind == "number":
                exprs.append(f"CAST({q} AS DOUBLE)")
                encode.append(arrow_numbers)
            elif kind == "codes" and a is not None and a.kind == "tiers":
                exprs.append(f"CAST({self._key_expr(a)} AS INTEGER)")
                encode.append(as_numpy)
            elif kind == "codes" and a is not None and self._is_text(c) and a.values \
                    and all(isinstance(v, str) for v in a.values):
                enum = "ENUM(" + ", ".join(sql_literal(v) for v in a.values) + ")"
                text = q if self._type(c) == "VARCHAR" else f"CAST({q} AS VARCHAR)"
                exprs.append(f"coalesce(CAST(enum_code(CAST({text} AS {enum})) AS INTEGER), "
                             f"{missing_code(a, miss_of[c])})")
                encode.append(as_numpy)
            elif kind == "codes" and a is not None:
                exprs.append(q)
                encode.append(lambda arr, a=a: arrow_codes(a, arr, missing_code(a, miss_of[a.column])))
            elif label is not None and c == label.column:
                exprs.append(f"coalesce({self._label_expr(label)}, FALSE)")
                encode.append(as_numpy)
            else:  # a text prediction: the favourable-decision indicator
                first = paired is None or c == decision.column
                exprs.append(f"coalesce({d_expr if first else d2_expr}, FALSE)")
                encode.append(as_numpy)
        sql = f"SELECT {', '.join(f'{e} AS c{i}' for i, e in enumerate(exprs))} FROM {source}"
        names = [c for c, _, _ in hasher.columns]
        cancel = threading.Event()

        def stream(relation: Any) -> None:
            reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader  # older duckdb
            for batch in reader(1 << 20):
                if cancel.is_set():
                    return
                hasher.update({c: f(batch.column(i)) for i, (c, f) in enumerate(zip(names, encode, strict=True))})

        if self._con is None or self._frame is not None:  # relation / registered frame: inline, later
            def finish_inline(stop: bool) -> tuple[str, dict[str, str]]:
                if stop:
                    hasher.cancel()
                    return "", {}
                try:
                    stream(self._relation(sql))
                except self._duckdb.Error as e:
                    raise self._error(e, None) from None
                return hasher.digests(self.n_rows())

            return finish_inline

        errors: list[BaseException] = []
        cursor = self._con.cursor()

        def work() -> None:
            try:
                stream(cursor.sql(sql))
            except BaseException as e:
                errors.append(e)

        thread = threading.Thread(target=work, name="fairscan-duckdb-hash", daemon=True)
        thread.start()

        def finish(stop: bool) -> tuple[str, dict[str, str]]:
            if stop:
                cancel.set()
                cursor.interrupt()
            thread.join()
            cursor.close()
            if stop:
                hasher.cancel()
                return "", {}
            if errors:
                e = errors[0]
                raise (self._error(e, None) if isinstance(e, self._duckdb.Error) else e) from None
            return hasher.digests(self.n_rows())

        return finish
