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
- ``data_sha256`` (``data_hash="sha256"``, the default) streams the columns the audit reads
  through hashlib in row order, exactly as the in-memory engine does, so the hash equals the
  memory engine's for the same data when the pandas dtypes agree (Parquet written by pandas
  or Arrow: numbers, booleans and text; not pandas categoricals, whose categories are not in
  the file). It costs one extra streaming pass (attribute codes and indicators computed by
  DuckDB, so only fixed-width columns reach Python), run on a second connection while the
  GROUP BY runs. ``data_hash="fast"`` instead folds DuckDB's
  64-bit ``hash()`` of every row into the GROUP BY (two sums modulo 2^64 plus the row count,
  under sha256): no extra pass, independent of row order, deterministic, but not equal to
  the memory engine's hash.

Some helpers here (path expansion, schema checks, order statistics, assembling
:class:`CellStats`) are shared with the Spark engine.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import math
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from fairscan.engines.base import N_CELLS, Aggregate, CellStats, Decision, Engine, Label
from fairscan.errors import FairscanError, plain, suggest
from fairscan.groups import UNKNOWN, Attribute, Grouping

#: Sort at most this many values in one piece when locating an order statistic.
FETCH_LIMIT = 1 << 20
#: Equal-width bins per refinement pass (one GROUP BY each) when locating order statistics.
N_BINS = 4096
#: One GROUP BY over all attributes jointly (then summed out per grouping) while the product
#: of their level counts is at most this; otherwise GROUPING SETS, one set per grouping.
MAX_JOINT_GROUPS = 1 << 15
SRC = "__fairscan_src"
POS = "__fairscan_pos"
FILE_COL = "__fairscan_file"

_NUMERIC = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE"}
_FLOAT = {"FLOAT", "DOUBLE"}


# -- helpers shared with the Spark engine -------------------------------------------------------
def quote(name: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + str(name).replace('"', '""') + '"'


def sql_literal(v: Any, sqltype: str | None = None) -> str:
    """A SQL literal for a Python/numpy value (floats exactly, via their shortest repr)."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v) if sqltype is None else f"CAST({v} AS {sqltype})"
    if isinstance(v, float):
        return f"CAST('{v!r}' AS DOUBLE)"
    text = "'" + str(v).replace("'", "''") + "'"
    return text if isinstance(v, str) or sqltype is None else f"CAST({text} AS {sqltype})"


def file_format(path: str | os.PathLike) -> str | None:
    """'parquet', 'csv' or None, from the file name's suffixes."""
    from fairscan.io import SUFFIXES

    suffixes = [s.lower() for s in Path(path).suffixes]
    return next((SUFFIXES[s] for s in reversed(suffixes) if s in SUFFIXES), None)


def expand_paths(data: str | os.PathLike | Sequence[str | os.PathLike]) -> tuple[list[str], str]:
    """Files named by a path, a glob, a directory (searched recursively, skipping names that
    start with '.' or '_') or a list of those, sorted by name (that order is the row order),
    and their common format."""
    items = [data] if isinstance(data, str | os.PathLike) else list(data)
    if not items:
        raise FairscanError("no input files given")
    files: list[str] = []
    for item in items:
        text = os.fspath(item)
        if any(ch in text for ch in "*?["):
            found = [p for p in globlib.glob(text, recursive=True) if os.path.isfile(p)]
            if not found:
                raise FairscanError(f"no files match '{text}'")
        elif os.path.isdir(text):
            root = Path(text)
            found = [str(p) for p in root.rglob("*") if p.is_file() and file_format(p)
                     and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)]
            if not found:
                raise FairscanError(f"directory '{text}' holds no .parquet or .csv files")
        elif os.path.isfile(text):
            found = [text]
        else:
            raise FairscanError(f"file '{text}' not found")
        files += found
    files = sorted(dict.fromkeys(files))
    kinds = {f: file_format(f) for f in files}
    for f, k in kinds.items():
        if k is None:
            raise FairscanError(f"file '{f}': unsupported type '{Path(f).suffix or '(none)'}'; give .csv or .parquet files")
    if len(set(kinds.values())) > 1:
        raise FairscanError("the input mixes Parquet and CSV files; give files of one format")
    return files, next(iter(kinds.values()))


def _arrow_type_text(t: Any) -> str:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        t = pa.string()
    return str(t)


def check_parquet_schemas(files: list[str], union_by_name: bool = False) -> None:
    """One-line errors for unreadable files and for files whose columns or types differ from
    the first file's (missing/extra columns are allowed with ``union_by_name``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    first: tuple[str, dict[str, str]] | None = None
    for f in files:
        try:
            schema = pq.read_schema(f)
        except (pa.ArrowException, OSError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise FairscanError(f"file '{f}' is not a readable Parquet file ({msg}); re-export it") from None
        types = {name: _arrow_type_text(schema.field(name).type) for name in schema.names}
        if first is None:
            first = (f, types)
            continue
        check_same_columns(first, (f, types), union_by_name)


def check_same_columns(first: tuple[str, dict[str, str]], other: tuple[str, dict[str, str]],
                       union_by_name: bool) -> None:
    """Compare one file's {column: type} with the first file's; raise a one-line error."""
    f0, t0 = first
    f, t = other
    if not union_by_name:
        for c in t0:
            if c not in t:
                raise FairscanError(
                    f"file '{f}' has no column '{c}' (file '{f0}' has it): give files with the same "
                    "columns, or union_by_name=True to read it as missing in that file")
        for c in t:
            if c not in t0:
                raise FairscanError(
                    f"file '{f}' has a column '{c}' that file '{f0}' does not have: give files with "
                    "the same columns, or union_by_name=True")
    for c, typ in t.items():
        if c in t0 and t0[c] != typ:
            raise FairscanError(
                f"column '{c}' is {t0[c]} in file '{f0}' but {typ} in file '{f}': re-export the "
                "files with one type for it")


def numpy_quantile_ranks(n: int, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (previous, next) ranks and weights numpy.quantile(method='linear') interpolates
    (numpy's own index arithmetic, including its clamping, so results match bit for bit)."""
    q = np.asarray(probs, dtype=np.float64)
    virtual = (n - 1) * q
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above] = -1  # numpy indexes the last element as -1, and computes gamma from it
    nxt[above] = -1
    below = virtual < 0
    prev[below] = 0
    nxt[below] = 0
    gamma = np.asarray(virtual - prev, dtype=np.float64)
    prev[above] = n - 1
    nxt[above] = n - 1
    return prev.astype(np.int64), nxt.astype(np.int64), gamma


def numpy_lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's own linear interpolation (``_lerp``), so results match it bit for bit."""
    with np.errstate(invalid="ignore"):  # inf - inf at infinite order statistics, as in numpy
        diff = b - a
        out = np.add(a, diff * t)
        np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5, casting="unsafe", dtype=out.dtype)
    return out


def linear_quantiles(n: int, probs: np.ndarray, order_stats: Callable[[list[int]], dict[int, float]]) -> np.ndarray:
    """``numpy.quantile(values, probs)`` from the order statistics of ``n`` values."""
    prev, nxt, gamma = numpy_quantile_ranks(n, probs)
    vals = order_stats(sorted({*prev.tolist(), *nxt.tolist()}))
    a = np.array([vals[r] for r in prev.tolist()], dtype=np.float64)
    b = np.array([vals[r] for r in nxt.tolist()], dtype=np.float64)
    return numpy_lerp(a, b, gamma)


class RankSource(Protocol):
    """What :func:`order_statistics` asks of an engine about one numeric expression."""

    def summary(self) -> tuple[int, int, int, float, float]:
        """(count of -inf, count of finite, count of +inf, finite min, finite max); no NaN/NULL."""

    def histogram(self, intervals: list[tuple[float, float, float]], nbins: int) -> list[tuple[int, int, float, float]]:
        """For finite values v in each interval (lo, hi, scale): rows (interval*nbins + bin,
        count, min, max) with bin = min(floor((v - lo) * scale), nbins - 1)."""

    def fetch(self, lo: float, hi: float) -> np.ndarray:
        """The finite values in [lo, hi], sorted."""


def order_statistics(src: RankSource, ranks: list[int], nbins: int = N_BINS,
                     fetch_limit: int | None = None) -> dict[int, float]:
    """The values at 0-based ascending ``ranks`` (ties count separately, as in a sort)."""
    return {r: v for r, (v, _, _) in locate_ranks(src, ranks, nbins, fetch_limit).items()}


def locate_ranks(src: RankSource, ranks: list[int], nbins: int = N_BINS,
                 fetch_limit: int | None = None) -> dict[int, tuple[float, int, int]]:
    """For each 0-based ascending rank: (its value, how many values are below it, how many
    equal it).

    Histogram refinement: each pass counts the values of every still-open range in ``nbins``
    equal-width bins (with each bin's min and max), keeps the bin holding the rank, and stops
    once a range holds one distinct value or at most ``fetch_limit`` values (then sorted).
    The lowest and highest values of a range always fall in different bins, so every pass
    makes progress; on real data one or two passes suffice.
    """
    fetch_limit = FETCH_LIMIT if fetch_limit is None else fetch_limit
    n_ninf, n_fin, n_pinf, lo, hi = src.summary()
    out: dict[int, tuple[float, int, int]] = {}
    # rank -> (lo, hi, values below lo, rank within [lo, hi], values in [lo, hi])
    todo: dict[int, tuple[float, float, int, int, int]] = {}
    for r in dict.fromkeys(ranks):
        if r < n_ninf:
            out[r] = (-math.inf, 0, n_ninf)
        elif r >= n_ninf + n_fin:
            out[r] = (math.inf, n_ninf + n_fin, n_pinf)
        else:
            todo[r] = (lo, hi, n_ninf, r - n_ninf, n_fin)
    while todo:
        for r, (a, b, below, _, cnt) in list(todo.items()):
            if a == b:
                out[r] = (a, below, cnt)
                del todo[r]
        small: dict[tuple[float, float], list[int]] = {}
        for r, (a, b, _, _, cnt) in todo.items():
            if cnt <= fetch_limit or not math.isfinite(nbins / (b - a) if math.isfinite(b - a) else 1.0):
                small.setdefault((a, b), []).append(r)
        for (a, b), rs in small.items():
            vals = src.fetch(a, b)
            for r in rs:
                _, _, below, within, cnt = todo.pop(r)
                if len(vals) != cnt:
                    raise FairscanError("the data changed while the audit was reading it; run it again")
                v = vals[within]
                left, right = np.searchsorted(vals, v, "left"), np.searchsorted(vals, v, "right")
                out[r] = (float(v), below + int(left), int(right - left))
        if not todo:
            break
        ranges = list(dict.fromkeys((a, b) for a, b, _, _, _ in todo.values()))
        intervals = [(a, b, nbins / (b - a) if math.isfinite(b - a) else math.nan) for a, b in ranges]
        bins: dict[int, list[tuple[int, int, float, float]]] = {}
        for key, cnt, mn, mx in src.histogram(intervals, nbins):
            bins.setdefault(int(key) // nbins, []).append((int(key) % nbins, int(cnt), float(mn), float(mx)))
        for r, (a, b, below, within, _) in list(todo.items()):
            cum = 0
            for _, cnt, mn, mx in sorted(bins.get(ranges.index((a, b)), [])):
                if within < cum + cnt:
                    todo[r] = (mn, mx, below + cum, within - cum, cnt)
                    break
                cum += cnt
            else:
                raise FairscanError("the data changed while the audit was reading it; run it again")
    return out


def bin_expression(v: str, lo: float, hi: float, scale: float, nbins: int, lit: Callable[[float], str]) -> str:
    """SQL for the bin of ``v`` within [lo, hi] (monotone in v, so bins are value ranges)."""
    if math.isfinite(scale):
        raw = f"({v} - {lit(lo)}) * {lit(scale)}"
    else:  # hi - lo overflows: work on halves
        raw = f"({v} * 0.5 - {lit(lo * 0.5)}) * {lit(nbins / (hi * 0.5 - lo * 0.5))}"
    return f"least(CAST(floor({raw}) AS BIGINT), {nbins - 1})"


def missing_code(attr: Attribute, has_missing: bool) -> int:
    """The code of a missing value of ``attr`` (as the memory engine assigns it)."""
    if attr.has_unknown:
        return attr.n_levels - 1
    return attr.labels.index(UNKNOWN) if has_missing and UNKNOWN in attr.labels else 0


def is_missing_value(v: Any) -> bool:
    return v is None or (isinstance(v, float | np.floating) and math.isnan(v))


def categorical_codes(attr: Attribute, raw: Sequence[Any], has_missing: bool) -> np.ndarray:
    """Codes of raw (grouped) values of a categorical attribute."""
    index = {(v.item() if isinstance(v, np.generic) else v): i for i, v in enumerate(attr.values)}
    miss = missing_code(attr, has_missing)
    out = np.empty(len(raw), dtype=np.int64)
    for i, v in enumerate(raw):
        if is_missing_value(v):
            out[i] = miss
            continue
        code = index.get(v.item() if isinstance(v, np.generic) else v)
        if code is None:
            raise FairscanError(f"column '{attr.column}' changed while auditing")
        out[i] = code
    return out


def assemble_stats(groupings: list[Grouping], codes: dict[str, np.ndarray], y: np.ndarray, d: np.ndarray,
                   n: np.ndarray, w: np.ndarray | None, w2: np.ndarray | None,
                   rows_of: Callable[[Grouping], np.ndarray]) -> list[CellStats]:
    """CellStats per grouping from GROUP BY rows, exactly as the memory engine lays them out:
    non-empty groups sorted by their code tuple; ``rows_of(g)`` selects g's result rows."""
    out = []
    cell = 2 * y.astype(np.int64) + d.astype(np.int64)
    for g in groupings:
        sel = rows_of(g)
        k = len(g.attributes)
        if not len(sel):
            out.append(CellStats(g, np.zeros((0, k), dtype=np.int64), np.zeros((0, N_CELLS), dtype=np.int64),
                                 None if w is None else np.zeros((0, N_CELLS)),
                                 None if w2 is None else np.zeros((0, N_CELLS))))
            continue
        mat = np.stack([codes[a.column][sel] for a in g.attributes], axis=1)
        uniq, inv = np.unique(mat, axis=0, return_inverse=True)
        inv = inv.ravel()

        def red(x: np.ndarray | None, dtype: Any, sel: np.ndarray = sel, inv: np.ndarray = inv,
                size: int = len(uniq)) -> np.ndarray | None:
            if x is None:
                return None
            acc = np.zeros((size, N_CELLS), dtype=dtype)
            np.add.at(acc, (inv, cell[sel]), x[sel])
            return acc

        out.append(CellStats(g, uniq.astype(np.int64), red(n, np.int64), red(w, np.float64), red(w2, np.float64)))
    return out


def label_error(column: str, n_missing: int) -> FairscanError:
    return FairscanError(
        f"label column '{column}' has {n_missing:,} missing values; "
        "fill or remove those rows first (fairscan never drops rows silently)")


def prediction_error(column: str, n_missing: int) -> FairscanError:
    return FairscanError(
        f"prediction column '{column}' has {n_missing:,} missing values; fill or remove those rows first")


def weight_errors(column: str, n_bad: int, n_neg: int) -> None:
    if n_bad:
        raise FairscanError(f"weight column '{column}' has {n_bad:,} missing or infinite values; fix them first")
    if n_neg:
        raise FairscanError(f"weight column '{column}' has {n_neg:,} negative values; weights must be >= 0")


def score_error(column: str, n_bad: int) -> FairscanError:
    return FairscanError(
        f"score column '{column}' has {n_bad:,} missing, NaN or infinite values; fix or remove those rows first")


def fast_digest(header: str, n_rows: int, h1: int, h2: int) -> str:
    """sha256 of an order-independent multiset hash (two 64-bit row-hash sums and the count)."""
    text = f"{header}|rows={n_rows}|h1={int(h1) % (1 << 64)}|h2={int(h2) % (1 << 64)}"
    return hashlib.sha256(text.encode()).hexdigest()


def audited_columns(groupings: list[Grouping]) -> dict[str, Attribute]:
    attrs: dict[str, Attribute] = {}
    for g in groupings:
        for a in g.attributes:
            attrs.setdefault(a.column, a)
    return attrs


# -- the engine -----------------------------------------------------------------------------------
class _SQLRanks:
    """RankSource over ``CAST(expr AS DOUBLE)`` of the rows of ``source`` matching ``where``.

    With ``pos`` (a row-position expression), ``fetch`` also keeps the positions of the
    fetched rows (``self.fetched``), so a budget cut through tied scores needs no extra pass.
    """

    def __init__(self, engine: DuckDBEngine, expr: str, source: str, where: str = "TRUE",
                 pos: str | None = None) -> None:
        self.e = engine
        self.pos = pos
        self.fetched: tuple[float, float, np.ndarray, np.ndarray] | None = None
        extra = f", {pos} AS p" if pos else ""
        self.inner = f"SELECT CAST({expr} AS DOUBLE) AS v{extra} FROM {source} WHERE {where}"

    def summary(self) -> tuple[int, int, int, float, float]:
        (r,) = self.e._rows(
            f"SELECT count(*) FILTER (WHERE v = '-inf'::DOUBLE), count(*) FILTER (WHERE isfinite(v)), "
            f"count(*) FILTER (WHERE v = 'inf'::DOUBLE), min(v) FILTER (WHERE isfinite(v)), "
            f"max(v) FILTER (WHERE isfinite(v)) FROM ({self.inner}) WHERE v IS NOT NULL AND NOT isnan(v)")
        return int(r[0]), int(r[1]), int(r[2]), r[3], r[4]

    def histogram(self, intervals: list[tuple[float, float, float]], nbins: int) -> list[tuple[int, int, float, float]]:
        lit = _double
        cases = " ".join(
            f"WHEN v BETWEEN {lit(a)} AND {lit(b)} THEN {i * nbins} + {bin_expression('v', a, b, s, nbins, lit)}"
            for i, (a, b, s) in enumerate(intervals))
        return self.e._rows(
            f"SELECT k, count(*), min(v), max(v) FROM (SELECT v, CASE {cases} END AS k FROM ({self.inner}) "
            f"WHERE isfinite(v)) WHERE k IS NOT NULL GROUP BY k")

    def fetch(self, lo: float, hi: float) -> np.ndarray:
        cols = "v, p" if self.pos else "v"
        res = self.e._relation(
            f"SELECT {cols} FROM ({self.inner}) WHERE v BETWEEN {_double(lo)} AND {_double(hi)} "
            f"ORDER BY {cols}").fetchnumpy()
        v = np.asarray(res["v"], dtype=np.float64)
        if self.pos:
            self.fetched = (lo, hi, v, np.asarray(res["p"], dtype=np.int64))
        return v


def _double(x: float) -> str:
    return sql_literal(float(x))


class DuckDBEngine(Engine):
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
    ) -> None:
        try:
            import duckdb
        except ImportError:
            raise FairscanError("the DuckDB engine needs the duckdb package: pip install 'fairscan[duckdb]'") from None
        if quantiles not in ("exact", "approx"):
            raise FairscanError(f"quantiles must be 'exact' or 'approx', got {plain(quantiles)}")
        if data_hash not in ("sha256", "fast"):
            raise FairscanError(f"data_hash must be 'sha256' or 'fast', got {plain(data_hash)}")
        self._duckdb = duckdb
        self.memory_limit = memory_limit
        self.quantile_mode = quantiles
        self.data_hash = data_hash
        self.files: list[str] = []
        self.format: str | None = None
        self._rel = None
        self._frame = None
        self._cache: dict[tuple, Any] = {}
        self._notes: dict[str, str] = {}
        if isinstance(data, duckdb.DuckDBPyRelation):
            self._rel = data
            self._con = None
            self._where = "the DuckDB relation"
        else:
            self._con = duckdb.connect()
            settings = {"preserve_insertion_order": "true"}
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
            return self._relation(sql, where).fetchall()
        except self._duckdb.Error as e:
            raise self._error(e, where) from None

    def _error(self, e: Exception, where: str | None) -> FairscanError:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, self._duckdb.OutOfMemoryException) or "Out of Memory" in str(e):
            return FairscanError(
                f"DuckDB ran out of memory (memory_limit={self.memory_limit}): raise memory_limit or "
                f"lower threads ({first})")
        return FairscanError(f"DuckDB could not read {where or self._where} ({first})")

    # -- column facts ---------------------------------------------------------------------------
    def columns(self) -> list[str]:
        return list(self._types)

    def _type(self, column: str) -> str:
        if column not in self._types:
            raise FairscanError(f"column '{column}' not found{suggest(column, self.columns())}")
        return self._types[column]

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

    def is_numeric(self, column: str) -> bool:
        t = self._type(column)
        return t in _NUMERIC or t.startswith("DECIMAL")

    def _is_float(self, column: str) -> bool:
        return self._type(column) in _FLOAT

    def _missing(self, column: str) -> str:
        q = quote(column)
        return f"({q} IS NULL OR isnan({q}))" if self._is_float(column) else f"({q} IS NULL)"

    def has_missing(self, column: str) -> bool:
        key = ("missing", column)
        if key not in self._cache:
            self._type(column)
            self._cache[key] = bool(self._rows(f"SELECT 1 FROM {SRC} WHERE {self._missing(column)} LIMIT 1"))
        return self._cache[key]

    def _scalar_type(self, column: str) -> Callable[[Any], Any]:
        """How a value of ``column`` looks in the memory engine (numpy scalars for numbers)."""
        dt = self.pandas_dtype(column)
        if isinstance(dt, np.dtype) and dt.kind in "iuf":
            return dt.type
        if isinstance(dt, pd.api.extensions.ExtensionDtype) and getattr(dt, "numpy_dtype", None) is not None \
                and dt.numpy_dtype.kind in "iuf":
            return dt.numpy_dtype.type
        return lambda v: v

    def levels(self, column: str, limit: int) -> tuple[list, bool]:
        key = ("levels", column)
        cached = self._cache.get(key)
        if cached is None or (cached[2] and len(cached[0]) <= limit):
            q = quote(column)
            v = f"CASE WHEN isnan({q}) THEN NULL ELSE {q} END" if self._is_float(column) else q
            rows = self._rows(f"SELECT DISTINCT {v} AS v FROM {SRC} ORDER BY v NULLS FIRST LIMIT {int(limit) + 2}")
            missing = bool(rows) and rows[0][0] is None  # NULL sorts first: seen even if truncated
            values = [r[0] for r in rows if r[0] is not None]
            truncated = len(values) > limit
            self._cache[("missing", column)] = missing
            conv = self._scalar_type(column)
            cached = ([conv(x) for x in values], missing, truncated)
            self._cache[key] = cached
        return cached[0][: limit + 1], cached[1]

    def _require_numeric(self, column: str, role: str = "tiers and scores") -> None:
        if not self.is_numeric(column):
            raise FairscanError(
                f"column '{column}' is not numeric (type {self._type(column)}); {role} need numbers")

    def _num_stats(self, column: str) -> tuple[int, int, int, int, float, float]:
        """(missing, -inf, finite, +inf, finite min, finite max) of a numeric column, cached."""
        key = ("stats", column)
        if key not in self._cache:
            self._require_numeric(column)
            v = f"CAST({quote(column)} AS DOUBLE)"
            (r,) = self._rows(
                f"SELECT count(*) FILTER (WHERE v IS NULL OR isnan(v)), count(*) FILTER (WHERE v = '-inf'::DOUBLE), "
                f"count(*) FILTER (WHERE isfinite(v)), count(*) FILTER (WHERE v = 'inf'::DOUBLE), "
                f"min(v) FILTER (WHERE isfinite(v)), max(v) FILTER (WHERE isfinite(v)) FROM (SELECT {v} AS v FROM {SRC})")
            self._cache[key] = (int(r[0]), int(r[1]), int(r[2]), int(r[3]),
                                math.nan if r[4] is None else float(r[4]), math.nan if r[5] is None else float(r[5]))
            self._cache[("missing", column)] = r[0] > 0
        return self._cache[key]

    def min_max(self, column: str) -> tuple[float, float, int]:
        miss, ninf, _, pinf, lo, hi = self._num_stats(column)
        return lo, hi, miss + ninf + pinf

    def quantiles(self, column: str, probs: np.ndarray) -> tuple[np.ndarray, bool]:
        miss, ninf, fin, pinf, lo, hi = self._num_stats(column)
        n = ninf + fin + pinf
        if n == 0:
            raise FairscanError(f"column '{column}' has no values to cut into tiers")
        probs = np.asarray(probs, dtype=np.float64)
        if self.quantile_mode == "approx":
            v = f"CAST({quote(column)} AS DOUBLE)"
            plist = "[" + ", ".join(f"CAST({_double(p)} AS FLOAT)" for p in probs) + "]"
            (r,) = self._rows(f"SELECT approx_quantile({v}, {plist}) FROM {SRC} WHERE NOT ({v} IS NULL OR isnan({v}))")
            qs = np.asarray(r[0], dtype=np.float64)
            # state the error: one more pass measures the share of rows at or below each cut
            (c,) = self._rows("SELECT " + ", ".join(f"count(*) FILTER (WHERE {v} <= {_double(q)})" for q in qs) +
                              f" FROM {SRC} WHERE NOT ({v} IS NULL OR isnan({v}))")
            shares = np.asarray(c, dtype=np.float64) / n
            self._notes[column] = (
                f"tiers of '{column}' use approximate quantiles (DuckDB approx_quantile): the cuts hold "
                f"{', '.join(f'{s:.2%}' for s in shares)} of the rows at or below them, for targets "
                f"{', '.join(f'{p:.2%}' for p in probs)} (largest error {np.max(np.abs(shares - probs)):.2%} "
                "of the rows; ties make exact quantiles miss too)")
            return qs, miss > 0
        ranks = self._ranks(self._dbl(column), SRC, stats=(ninf, fin, pinf, lo, hi))
        return linear_quantiles(n, probs, lambda rs: order_statistics(ranks, rs)), miss > 0

    def _ranks(self, expr: str, source: str, where: str = "TRUE",
               stats: tuple[int, int, int, float, float] | None = None) -> RankSource:
        src = _SQLRanks(self, expr, source, where)
        if stats is not None:
            src.summary = lambda: stats  # type: ignore[method-assign]
        return src

    # -- row-level expressions ------------------------------------------------------------------
    def _dbl(self, column: str) -> str:
        """The column as DOUBLE (no cast when it already is one)."""
        return quote(column) if self._type(column) == "DOUBLE" else f"CAST({quote(column)} AS DOUBLE)"

    def _clean(self, column: str) -> bool:
        """Known to hold no missing value (from cached facts), so no guard is needed."""
        stats = self._cache.get(("stats", column))
        return (stats is not None and stats[0] == 0) or self._cache.get(("missing", column)) is False

    def _key_expr(self, attr: Attribute) -> str:
        if attr.kind == "categorical":
            return quote(attr.column)  # raw values, mapped to codes after the GROUP BY (missing -> unknown)
        v = self._dbl(attr.column)
        missing = attr.n_levels - 1 if attr.has_unknown else len(attr.edges)
        tiers = " + ".join(f"CAST({v} > {_double(e)} AS INTEGER)" for e in attr.edges) or "0"
        if self._clean(attr.column):
            return tiers
        return f"CASE WHEN {self._missing(attr.column)} THEN {missing} ELSE {tiers} END"

    def _eq(self, column: str, value: Any) -> str:
        """``column = value``, NULL where the column is missing (NULL or NaN)."""
        eq = f"{quote(column)} = {self._lit(column, value)}"
        return f"CASE WHEN isnan({quote(column)}) THEN NULL ELSE {eq} END" if self._is_float(column) else f"({eq})"

    def _label_expr(self, label: Label) -> str:
        return self._eq(label.column, label.positive)

    def _is_text(self, column: str) -> bool:
        t = self._type(column)
        return t == "VARCHAR" or t.startswith("ENUM(")

    def _lit(self, column: str, value: Any) -> str:
        t = self._type(column)
        return sql_literal(value, None if self._is_text(column) or isinstance(value, float | np.floating) else t)

    def _decision_expr(self, decision: Decision) -> tuple[str, str]:
        """(SQL of the favourable-decision indicator, the source to read it from)."""
        flip = decision.favourable == 0
        c = decision.column
        if decision.kind == "prediction":
            cond = self._eq(c, decision.positive)  # NULL where missing: counted, then reported
            return (f"(NOT {cond})" if flip else cond), SRC
        self._require_numeric(c)
        v = self._dbl(c)
        source = SRC
        if decision.kind == "threshold":
            cond = f"{v} >= {_double(float(decision.threshold))}"
            if not self._clean(c):  # missing / NaN scores get no favourable decision (as in numpy)
                cond = f"coalesce(NOT isnan({v}) AND {cond}, FALSE)"
        else:
            cut, take, ties = self.budget_cut(c, int(decision.k))
            if take == 0:
                cond = "FALSE" if math.isinf(cut) else f"{v} > {_double(cut)}"
            elif take == ties:
                cond = f"{v} >= {_double(cut)}"
            else:
                if self.format == "parquet" and "file_row_number" in self._types:
                    raise FairscanError(
                        "a column named 'file_row_number' hides the row order that breaks budget ties; rename it")
                pos_cut = self._pos_cut(c, v, cut, int(decision.k), take, ties)
                cond = (f"CASE WHEN {v} > {_double(cut)} THEN TRUE WHEN {v} = {_double(cut)} "
                        f"THEN {POS} <= {int(pos_cut)} ELSE FALSE END")
                source = self._pos_source
        return (f"(NOT ({cond}))" if flip else f"({cond})"), source

    def decisions(self, decision: Decision) -> np.ndarray:
        """In row order (the files by name, then each file's rows; see the module docstring),
        sorted by DuckDB (which spills under ``memory_limit``)."""
        if self.format == "parquet" and "file_row_number" in self._types:
            raise FairscanError("a column named 'file_row_number' hides the files' row order; rename it")
        d, _ = self._decision_expr(decision)  # its source's columns are all in the positioned source
        try:
            table = self._relation(f"SELECT {d} AS d FROM {self._pos_source} ORDER BY {POS}").to_arrow_table()
        except self._duckdb.Error as e:
            raise self._error(e, None) from None
        col = table.column("d")
        if col.null_count:  # only a prediction can be missing: scores were checked
            raise prediction_error(decision.column, col.null_count)
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=bool)

    def budget_cut(self, column: str, k: int) -> tuple[float, int, int]:
        """(the k-th highest score, how many rows at it are taken, how many rows are at it)."""
        key = ("budget", column, k)
        if key in self._cache:
            return self._cache[key][:3]
        miss, ninf, fin, pinf, lo, hi = self._num_stats(column)
        if miss:
            raise score_error(column, miss)
        n = ninf + fin + pinf
        k = max(0, min(k, n))
        if k == 0:
            return math.inf, 0, 0
        v = self._dbl(column)
        # Parquet: the final sort of candidate scores also returns their row positions
        pos = POS if self.format == "parquet" and "file_row_number" not in self._types else None
        src = _SQLRanks(self, v, self._pos_source if pos else SRC, pos=pos)
        src.summary = lambda: (ninf, fin, pinf, lo, hi)  # type: ignore[method-assign]
        cut, below, equal = locate_ranks(src, [n - k])[n - k]
        take = k - (n - below - equal)
        pos_cut = None
        if src.fetched is not None and src.fetched[0] <= cut <= src.fetched[1] and 0 < take < equal:
            tied = src.fetched[3][src.fetched[2] == cut]  # sorted by (score, position)
            if len(tied) == equal:
                pos_cut = int(tied[take - 1])
        self._cache[key] = (cut, take, equal, pos_cut)
        return cut, take, equal

    def _pos_cut(self, column: str, v: str, cut: float, k: int, take: int, ties: int) -> int:
        """Row position of the take-th row (1-based, in row order) whose score equals ``cut``."""
        known = self._cache.get(("budget", column, k), (None,) * 4)[3]
        if known is not None:
            return known
        # positions are >= 0 and below 2^53; with few ties one query fetches them all
        src = self._ranks(POS, self._pos_source, f"{v} = {_double(cut)}", stats=(0, ties, 0, 0.0, float(1 << 53)))
        return int(order_statistics(src, [take - 1])[take - 1])

    # -- the one pass ---------------------------------------------------------------------------
    def aggregate(
        self,
        groupings: list[Grouping],
        label: Label | None,
        decision: Decision,
        weights: str | None,
    ) -> Aggregate:
        attrs = audited_columns(groupings)
        order = list(attrs)
        miss_of = {c: (self.levels(c, len(a.values))[1] if a.kind == "categorical" else a.has_unknown)
                   for c, a in attrs.items()}
        keys = [f"{self._key_expr(attrs[c])} AS k{i}" for i, c in enumerate(order)]
        y = self._label_expr(label) if label else "FALSE"
        d, source = self._decision_expr(decision)
        sel = [*keys, f"{y} AS y", f"{d} AS d"]
        aggs = ["count(*) AS n"]
        if weights:
            self._require_numeric(weights, "weights")
            sel.append(f"CAST({quote(weights)} AS DOUBLE) AS w")
            aggs += ["sum(w)", "sum(w * w)", "count(*) FILTER (WHERE w IS NULL OR NOT isfinite(w))",
                     "count(*) FILTER (WHERE w < 0)"]
        hash_cols = [c for c in dict.fromkeys([*order, decision.column, weights, label.column if label else None]) if c]
        if self.data_hash == "fast":
            cols = ", ".join(quote(c) for c in hash_cols)
            sel += [f"hash({cols}) AS h1", f"hash({cols}, 'fairscan') AS h2"]
            aggs += ["sum(CAST(h1 AS HUGEINT))", "sum(CAST(h2 AS HUGEINT))"]
        kcols = [f"k{i}" for i in range(len(order))]
        sizes = [attrs[c].n_levels for c in order]
        joint = float(np.prod(sizes, dtype=np.float64)) <= MAX_JOINT_GROUPS
        sets = list(dict.fromkeys(tuple(sorted(order.index(a.column) for a in g.attributes)) for g in groupings))
        if joint or len(sets) == 1:
            group_by = ", ".join([*kcols, "y", "d"])
            gid = "0"
        else:
            group_by = "GROUPING SETS (" + ", ".join(
                "(" + ", ".join([*(kcols[i] for i in s), "y", "d"]) + ")" for s in sets) + ")"
            gid = f"GROUPING({', '.join(kcols)})"
        sql = (f"SELECT {', '.join([*kcols, 'y', 'd'])}, {gid} AS gid, {', '.join(aggs)} "
               f"FROM (SELECT {', '.join(sel)} FROM {source}) GROUP BY {group_by}")
        finish = (self._start_sha256(hash_cols, attrs, miss_of, label, decision, d, source)
                  if self.data_hash == "sha256" else None)
        try:
            rows = self._rows(sql)
        except BaseException:
            if finish is not None:
                finish(True)
            raise
        try:
            stats, digest = self._assemble(rows, groupings, order, attrs, miss_of, label, decision, weights,
                                           aggs, sets, joint, hash_cols)
        except BaseException:
            if finish is not None:
                finish(True)
            raise
        if finish is not None:
            digest = finish(False)
        return Aggregate(n_rows=self.n_rows(), stats=stats, data_sha256=digest)

    def _assemble(self, rows: list[tuple], groupings: list[Grouping], order: list[str],
                  attrs: dict[str, Attribute], miss_of: dict[str, bool], label: Label | None,
                  decision: Decision, weights: str | None, aggs: list[str], sets: list[tuple[int, ...]],
                  joint: bool, hash_cols: list[str]) -> tuple[list[CellStats], str]:
        """CellStats from the GROUP BY rows (and the fast digest, if that is the hash)."""

        cols = list(zip(*rows, strict=True)) if rows else [()] * (len(order) + 3 + len(aggs))
        nk = len(order)
        single = joint or len(sets) == 1
        gids = np.asarray(cols[nk + 2], dtype=np.int64)

        def set_rows(s: tuple[int, ...]) -> np.ndarray:
            if single:
                return np.arange(len(gids))
            mask = sum(1 << (nk - 1 - i) for i in range(nk) if i not in s)
            return np.flatnonzero(gids == mask)

        base = set_rows(sets[0])  # every row is counted once in each grouping set
        yv = np.asarray(cols[nk], dtype=object)
        dv = np.asarray(cols[nk + 1], dtype=object)
        n = np.asarray(cols[nk + 3], dtype=np.int64)
        if label and any(v is None for v in yv[base]):
            raise label_error(label.column, int(n[base][[v is None for v in yv[base]]].sum()))
        if decision.kind == "prediction" and any(v is None for v in dv[base]):
            raise prediction_error(decision.column, int(n[base][[v is None for v in dv[base]]].sum()))
        w = w2 = None
        pos = nk + 4
        if weights:
            w = np.asarray(cols[pos], dtype=np.float64)
            w2 = np.asarray(cols[pos + 1], dtype=np.float64)
            weight_errors(weights, int(np.asarray(cols[pos + 2], dtype=np.int64)[base].sum()),
                          int(np.asarray(cols[pos + 3], dtype=np.int64)[base].sum()))
            pos += 4
        codes: dict[str, np.ndarray] = {}
        for i, c in enumerate(order):
            raw = cols[i]
            if attrs[c].kind == "categorical":
                codes[c] = categorical_codes(attrs[c], raw, miss_of[c])
            else:
                codes[c] = np.asarray([-1 if v is None else v for v in raw], dtype=np.int64)

        def rows_of(g: Grouping) -> np.ndarray:
            return set_rows(tuple(sorted(order.index(a.column) for a in g.attributes)))

        stats = assemble_stats(groupings, codes, yv.astype(bool), dv.astype(bool), n, w, w2, rows_of)
        n_rows = self.n_rows()
        if self.data_hash == "fast":
            h1 = sum(int(cols[pos][i]) for i in base)
            h2 = sum(int(cols[pos + 1][i]) for i in base)
            header = ";".join(f"{c}:{self._types[c]}" for c in hash_cols)
            if label is not None:
                header += f";label:{label.column}={label.positive!r}"
            return stats, fast_digest(header, n_rows, h1, h2)
        return stats, ""

    # -- the data hash (memory-engine compatible) -------------------------------------------------
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

    def _raw_dtype(self, column: str) -> np.dtype | None:
        """The numpy dtype whose bytes the memory engine hashes for ``column``, or None."""
        dt = self.pandas_dtype(column)
        if isinstance(dt, pd.CategoricalDtype):
            return None
        try:
            s = pd.Series([None] if self.has_missing(column) else [], dtype=dt)
        except (TypeError, ValueError):
            return None
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        if s.dtype == bool or numeric:
            arr = s.to_numpy()
            return None if arr.dtype == object else arr.dtype
        return None

    def _start_sha256(self, cols: list[str], attrs: dict[str, Attribute], miss_of: dict[str, bool],
                      label: Label | None, decision: Decision, d_expr: str, source: str) -> Callable[[bool], str]:
        """Start the sha256 of the data exactly as memory.py's _Hasher computes it.

        Hashed, in row order and in chunks of the memory engine's CHUNK_ROWS: each column's
        name and pandas dtype, the label's positive value, then per chunk the raw values of
        numeric/boolean columns, the level codes of other attribute columns (their levels
        hashed up front) and the packed indicator of a text label or prediction. Codes and
        indicators are computed by DuckDB, so only fixed-width columns are streamed. For
        file inputs it runs on a second connection while the GROUP BY runs; the returned
        function waits for it (or cancels it, given True) and returns the hex digest.
        """
        import threading

        import pyarrow as pa
        import pyarrow.compute as pc

        from fairscan.engines import memory

        h = hashlib.sha256()
        raw: dict[str, np.dtype] = {}
        for c in cols:
            h.update(f"{c}:{self.pandas_dtype(c)}".encode())
            rd = self._raw_dtype(c)
            if rd is not None:
                raw[c] = rd
        if label is not None:
            h.update(f"label:{label.column}={label.positive!r}".encode())
        for c, a in attrs.items():
            if c not in raw:
                values = list(a.values) if a.kind == "categorical" else self.levels(c, 1 << 62)[0]
                h.update(repr([str(v) for v in values]).encode())

        exprs: list[str] = []
        kinds: list[tuple[str, Any]] = []
        for c in cols:
            q = quote(c)
            a = attrs.get(c)
            if c in raw:
                exprs.append(q)
                kinds.append(("raw", raw[c]))
            elif a is not None and a.kind == "tiers":
                exprs.append(f"CAST({self._key_expr(a)} AS INTEGER)")
                kinds.append(("int32", None))
            elif a is not None and self._is_text(c) and a.values and all(isinstance(v, str) for v in a.values):
                enum = "ENUM(" + ", ".join(sql_literal(v) for v in a.values) + ")"
                text = q if self._type(c) == "VARCHAR" else f"CAST({q} AS VARCHAR)"
                exprs.append(f"coalesce(CAST(enum_code(CAST({text} AS {enum})) AS INTEGER), {missing_code(a, miss_of[c])})")
                kinds.append(("int32", None))
            elif a is not None:
                exprs.append(q)
                kinds.append(("codes", a))
            elif label is not None and c == label.column:
                exprs.append(f"coalesce({self._label_expr(label)}, FALSE)")
                kinds.append(("bits", None))
            else:  # a text prediction: the favourable-decision indicator
                exprs.append(f"coalesce({d_expr}, FALSE)")
                kinds.append(("bits", None))
        sql = f"SELECT {', '.join(f'{e} AS c{i}' for i, e in enumerate(exprs))} FROM {source}"

        def codes_of(a: Attribute, arr: pa.Array) -> np.ndarray:
            if pa.types.is_dictionary(arr.type):
                arr = arr.dictionary_decode()
            vs = pa.array([v.item() if isinstance(v, np.generic) else v for v in a.values])
            if vs.type != arr.type:
                vs = vs.cast(arr.type)
            idx = pc.index_in(arr, value_set=vs)
            if pa.types.is_floating(arr.type):
                idx = pc.if_else(pc.is_nan(arr), pa.scalar(None, pa.int32()), idx)
            return idx.fill_null(missing_code(a, miss_of[a.column])).to_numpy(zero_copy_only=False).astype(np.int32)

        def feed(tbl: pa.Table) -> None:
            for i, (kind, info) in enumerate(kinds):
                arr = tbl.column(i).combine_chunks()
                if kind == "raw":
                    buf = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=info)
                elif kind == "int32":
                    buf = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.int32)
                elif kind == "codes":
                    buf = codes_of(info, arr)
                else:
                    buf = np.packbits(np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool))
                h.update(np.ascontiguousarray(buf).data)

        chunk = memory.CHUNK_ROWS
        cancel = threading.Event()

        def stream(relation: Any) -> None:
            pending: list[pa.RecordBatch] = []
            size = 0
            reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader  # older duckdb
            for batch in reader(chunk):
                if cancel.is_set():
                    return
                pending.append(batch)
                size += batch.num_rows
                while size >= chunk:
                    tbl = pa.Table.from_batches(pending)
                    feed(tbl.slice(0, chunk))
                    rest = tbl.slice(chunk)
                    pending = rest.to_batches()
                    size = rest.num_rows
            if size:
                feed(pa.Table.from_batches(pending))

        if self._con is None or self._frame is not None:  # relation / registered frame: inline, later
            def finish_inline(stop: bool) -> str:
                if not stop:
                    try:
                        stream(self._relation(sql))
                    except self._duckdb.Error as e:
                        raise self._error(e, None) from None
                return h.hexdigest()

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

        def finish(stop: bool) -> str:
            if stop:
                cancel.set()
                cursor.interrupt()
            thread.join()
            cursor.close()
            if errors and not stop:
                e = errors[0]
                raise (self._error(e, None) if isinstance(e, self._duckdb.Error) else e) from None
            return h.hexdigest()

        return finish
