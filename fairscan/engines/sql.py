"""What the SQL engines (DuckDB and Spark) share: the engine itself up to the dialect.

:class:`SqlEngine` owns every rule the two follow alike — the caches of column facts, levels,
numeric summaries, ranges, exact quantiles by histogram refinement, the budget cut and its
ties, the attribute / label / decision expressions (SQL text both dialects read), the one
GROUP BY's aggregates and the decoding of its rows into :class:`CellStats`, and the fast
data hash's header. A subclass says only how to run a query and fetch its result, and
what its dialect does differently (quoting, finiteness, literals compared with a column,
approximate quantiles, reading files, the sha256 hash).

Also here: the helpers both use to read files (path expansion, schema checks) and to find
order statistics (:func:`locate_ranks`, :func:`linear_quantiles`).
"""

from __future__ import annotations

import glob as globlib
import hashlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from fairscan.engines.base import (
    Engine,
    audited_columns,
    changed_error,
    column_not_found,
    fits_jointly,
    group_keys,
    label_error,
    missing_cluster_error,
    missing_code,
    no_values_error,
    not_numeric_error,
    offered_errors,
    prediction_error,
    score_error,
    stratum_table,
    value_errors,
    value_not_numeric,
    value_stats,
    weight_errors,
)
from fairscan.engines.datahash import DEFINITION, FAST, VALUE_DIGEST
from fairscan.errors import FairscanError, plain
from fairscan.metrics import values as mv
from fairscan.types import (
    Aggregate,
    Attribute,
    CellStats,
    Decision,
    Grouping,
    Label,
    ValueAggregate,
)

__all__ = [
    "N_BINS", "POS", "GroupQuery", "RankSource", "SqlEngine", "SqlRanks", "ValueQuery", "assemble_stats",
    "bin_expression", "categorical_codes", "check_parquet_schemas", "check_same_columns",
    "double_literal", "expand_paths", "fast_digest", "file_format", "histogram_key",
    "is_missing_value", "linear_quantiles", "locate_ranks", "numpy_lerp",
    "numpy_quantile_ranks", "sql_literal",
]

#: Equal-width bins per refinement pass (one GROUP BY each) when locating order statistics.
N_BINS = 4096
#: The row-position column of a positioned source (it breaks budget ties).
POS = "__fairscan_pos"


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
    """What :func:`locate_ranks` asks of an engine about one numeric expression."""

    def summary(self) -> tuple[int, int, int, float, float]:
        """(count of -inf, count of finite, count of +inf, finite min, finite max); no NaN/NULL."""

    def histogram(self, intervals: list[tuple[float, float, float]], nbins: int) -> list[tuple[int, int, float, float]]:
        """For finite values v in each interval (lo, hi, scale): rows (interval*nbins + bin,
        count, min, max) with bin = min(floor((v - lo) * scale), nbins - 1)."""

    def fetch(self, lo: float, hi: float) -> np.ndarray:
        """The finite values in [lo, hi], sorted."""


def locate_ranks(src: RankSource, ranks: list[int], fetch_limit: int,
                 nbins: int = N_BINS) -> dict[int, tuple[float, int, int]]:
    """For each 0-based ascending rank: (its value, how many values are below it, how many
    equal it).

    Histogram refinement: each pass counts the values of every still-open range in ``nbins``
    equal-width bins (with each bin's min and max), keeps the bin holding the rank, and stops
    once a range holds one distinct value or at most ``fetch_limit`` values (then sorted).
    The lowest and highest values of a range always fall in different bins, so every pass
    makes progress; on real data one or two passes suffice.
    """
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

def histogram_key(intervals: list[tuple[float, float, float]], nbins: int, v: str = "v",
                  covers: tuple[float, float] | None = None) -> str:
    """SQL of the histogram key of ``v`` (interval * nbins + bin; NULL outside every interval).
    ``covers``: a range every finite ``v`` lies in; when the one interval is that range (the
    first pass of :func:`locate_ranks`), the key needs no range test (a third faster)."""
    if covers is not None and len(intervals) == 1 and intervals[0][:2] == tuple(covers):
        a, b, scale = intervals[0]
        return bin_expression(v, a, b, scale, nbins, double_literal)
    cases = " ".join(
        f"WHEN {v} BETWEEN {double_literal(a)} AND {double_literal(b)} THEN {i * nbins} + "
        f"{bin_expression(v, a, b, s, nbins, double_literal)}" for i, (a, b, s) in enumerate(intervals))
    return f"CASE {cases} END"


def double_literal(x: float) -> str:
    """A DOUBLE literal both dialects read exactly (``CAST('0.1' AS DOUBLE)``, also for inf)."""
    return sql_literal(float(x))


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
            raise changed_error(attr.column)
        out[i] = code
    return out


def assemble_stats(groupings: list[Grouping], codes: dict[str, np.ndarray], cell: np.ndarray, n_cells: int,
                   n: np.ndarray, w: np.ndarray | None, w2: np.ndarray | None,
                   rows_of: Callable[[Grouping], np.ndarray]) -> list[CellStats]:
    """CellStats per grouping from GROUP BY rows, exactly as the memory engine lays them out:
    non-empty groups sorted by their code tuple, ``n_cells`` cells each (``cell`` is each
    result row's); ``rows_of(g)`` selects g's result rows."""
    out = []
    for g in groupings:
        sel = rows_of(g)
        k = len(g.attributes)
        if not len(sel):
            out.append(CellStats(g, np.zeros((0, k), dtype=np.int64), np.zeros((0, n_cells), dtype=np.int64),
                                 None if w is None else np.zeros((0, n_cells)),
                                 None if w2 is None else np.zeros((0, n_cells))))
            continue
        mat = np.stack([codes[a.column][sel] for a in g.attributes], axis=1)
        uniq, inv = np.unique(mat, axis=0, return_inverse=True)
        inv = inv.ravel()

        def red(x: np.ndarray | None, dtype: Any, sel: np.ndarray = sel, inv: np.ndarray = inv,
                size: int = len(uniq)) -> np.ndarray | None:
            if x is None:
                return None
            acc = np.zeros((size, n_cells), dtype=dtype)
            np.add.at(acc, (inv, cell[sel]), x[sel])
            return acc

        out.append(CellStats(g, uniq.astype(np.int64), red(n, np.int64), red(w, np.float64), red(w2, np.float64)))
    return out


def fast_digest(header: str, n_rows: int, h1: int, h2: int) -> str:
    """sha256 of an order-independent multiset hash (two 64-bit row-hash sums and the count)."""
    text = f"{header}|rows={n_rows}|h1={int(h1) % (1 << 64)}|h2={int(h2) % (1 << 64)}"
    return hashlib.sha256(text.encode()).hexdigest()


class SqlRanks:
    """A :class:`RankSource` whose summary is already known (the engine's cached numeric
    summary, or the count of tied rows); the engine's subclass runs the histogram and fetch."""

    def __init__(self, stats: tuple[int, int, int, float, float]) -> None:
        self.stats = stats

    def summary(self) -> tuple[int, int, int, float, float]:
        return self.stats


@dataclass
class GroupQuery:
    """The one GROUP BY of :meth:`SqlEngine.aggregate`, ready for a dialect to run.

    ``keys`` are the attributes' key expressions (SQL text, in ``order``), ``y``/``d`` the
    label and decision indicators (native expressions) read from ``source``; ``sets`` the
    grouping sets (indices into ``order``), ``single`` whether one plain GROUP BY serves all;
    ``paired``/``d2`` a second decision and its indicator (a paired aggregation), else None.
    """

    groupings: list[Grouping]
    attrs: dict[str, Attribute]
    order: list[str]
    miss_of: dict[str, bool]
    label: Label | None
    decision: Decision
    weights: str | None
    hash_cols: list[str]
    sets: list[tuple[int, ...]]
    single: bool
    keys: list[str]
    y: Any
    d: Any
    source: Any
    paired: Decision | None = None
    d2: Any = None

    @property
    def decision_columns(self) -> list[str]:
        """The result rows' decision indicator columns: ``d``, and ``d2`` when paired."""
        return ["d", "d2"] if self.paired is not None else ["d"]

    def gid(self, grouped: tuple[int, ...]) -> int:
        """The GROUPING() bit mask of a set: bit ``nk - 1 - i`` set when key i is not grouped."""
        nk = len(self.order)
        return sum(1 << (nk - 1 - i) for i in range(nk) if i not in grouped)


@dataclass
class ValueQuery:
    """The one GROUP BY of :meth:`SqlEngine.value_aggregate`, ready for a dialect to run.

    Result columns: ``k0..`` the attributes' keys (``keys``, SQL text, in ``order``), ``s0..``
    the raw ``within`` columns, ``o`` the raw ``offered`` column (when given), ``v`` the value
    as DOUBLE (NULL when missing or NaN; the SQL text ``value``), ``gid`` (:meth:`gid`, 0 for
    a single GROUP BY), then the aggregates of :meth:`aggregates`. One grouping set per entry
    of ``sets`` (indices into ``order``), each with every stratum, offered and value column.
    """

    order: list[str]
    keys: list[str]
    sets: list[tuple[int, ...]]
    within: list[str]
    offered: str | None
    value: str
    weights: str | None
    #: binned values: the SQL of the raw value (``v`` is then its bin), summed as ``x``
    raw: str | None = None
    #: the cluster column (raw, as ``k_c``), in every grouping set
    cluster: str | None = None
    #: the audited columns the fast digest hashes (``h1``, ``h2`` sums), when the dialect does
    hash_cols: list[str] | None = None

    @property
    def single(self) -> bool:
        return len(self.sets) == 1

    @property
    def rest(self) -> list[str]:
        """The columns every grouping set has: the strata, the offered flag and the value."""
        return [*(f"s{i}" for i in range(len(self.within))), *(["k_c"] if self.cluster else []),
                *(["o"] if self.offered else []), "v"]

    def aggregates(self, cell_aggregates: list[str]) -> list[tuple[str, str]]:
        """(SQL, name) of each aggregate: ``n`` and, with weights, ``w``, ``w2``, ``w_bad``,
        ``w_neg`` (the engine's ``cell_aggregates``); with binned values also ``sx`` (the sum
        of the raw values) and, with weights, ``wx`` (their weighted sum)."""
        out = list(zip(cell_aggregates, ["n", "w", "w2", "w_bad", "w_neg"], strict=False))
        if self.raw is not None:
            out.append(("sum(x)", "sx"))
            if self.weights:
                out.append(("sum(w * x)", "wx"))
        return out

    def gid(self, grouped: tuple[int, ...]) -> int:
        """The GROUPING() bit mask over the keys of a set (as :meth:`GroupQuery.gid`)."""
        nk = len(self.order)
        return sum(1 << (nk - 1 - i) for i in range(nk) if i not in grouped)


def _arrow_values(col: Any) -> tuple[np.ndarray, list]:
    """(each entry's index into the distinct values, with -1 for null; the distinct values as
    Python objects) of an Arrow column: the few distinct values are converted, not every row."""
    import pyarrow as pa

    enc = col.combine_chunks().dictionary_encode() if isinstance(col, pa.ChunkedArray) else col.dictionary_encode()
    idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return idx, enc.dictionary.to_pylist()


class SqlEngine(Engine):
    """The engine logic DuckDB and Spark share; see the module docstring.

    A subclass sets ``_types`` (column -> type name), ``_source`` (what queries read),
    ``_numeric_types``/``_float_types`` (lower-case type names) and ``_max_position`` (a bound
    of its row positions), and implements the hooks below the ``dialect`` line. Queries
    are SQL text over a value ``v`` (or the source's columns), which the hooks run.
    """

    _numeric_types: frozenset[str] = frozenset()
    _float_types: frozenset[str] = frozenset({"float", "double"})
    _max_position: float = float(1 << 53)

    def _setup(self, quantiles: str, data_hash: str) -> None:
        """The state every SQL engine keeps, its options checked (call first in ``__init__``)."""
        if quantiles not in ("exact", "approx"):
            raise FairscanError(f"quantiles must be 'exact' or 'approx', got {plain(quantiles)}")
        if data_hash not in ("sha256", "fast"):
            raise FairscanError(f"data_hash must be 'sha256' or 'fast', got {plain(data_hash)}")
        self.quantile_mode = quantiles
        self.data_hash = data_hash
        self.files: list[str] = []
        self.format: str | None = None
        self._cache: dict[tuple, Any] = {}
        self._types: dict[str, str] = {}

    # -- dialect (what a subclass implements) ---------------------------------------------------
    def _quote(self, column: str) -> str:
        """``column`` as a quoted identifier."""
        raise NotImplementedError

    def _expr(self, sql: str) -> Any:
        """SQL expression text as the engine's native expression."""
        return sql

    def _finite(self, v: str) -> str:
        """SQL: ``v`` is neither NULL, NaN nor infinite."""
        raise NotImplementedError

    def _any_row(self, where: str) -> bool:
        """Whether any row of the source satisfies the SQL condition ``where``."""
        raise NotImplementedError

    def _distinct_sorted(self, value: str, limit: int) -> list:
        """At most ``limit`` distinct values of the SQL expression ``value``, sorted, NULL first."""
        raise NotImplementedError

    def _agg_row(self, value: str, aggs: list[str], where: str = "TRUE") -> tuple:
        """The SQL aggregates ``aggs`` over ``v`` = ``value`` of the rows where ``where`` holds."""
        raise NotImplementedError

    def _approx_quantiles(self, column: str, probs: np.ndarray, n: int) -> np.ndarray:
        """Approximate quantiles of the non-missing values of a numeric column (``n`` of them)."""
        raise NotImplementedError

    def _ranks(self, expr: str, source: Any, where: str,
               stats: tuple[int, int, int, float, float]) -> RankSource:
        """A rank source over ``CAST(expr AS DOUBLE)`` of the rows of ``source`` where ``where``."""
        raise NotImplementedError

    def _fetch_limit(self) -> int:
        """Sort at most this many values in one piece when locating an order statistic."""
        raise NotImplementedError

    def _eq(self, column: str, value: Any) -> Any:
        """``column = value`` (native), NULL where the column is missing (NULL or NaN)."""
        raise NotImplementedError

    def _negate(self, cond: Any) -> Any:
        """NOT ``cond`` (native), NULL staying NULL."""
        raise NotImplementedError

    def _positioned(self) -> Any:
        """The source with the row position column ``POS`` (see the engine's docstring)."""
        raise NotImplementedError

    def _grouped_rows(self, q: GroupQuery) -> list[tuple]:
        """Run the GROUP BY of ``q``: per result row (keys..., y, d, [d2,] gid, *aggregates of
        :meth:`_cell_aggregates`, h1, h2 when :meth:`_fast_hash`), gid as in
        :meth:`GroupQuery.gid` (0 for a single GROUP BY) and h1/h2 the rows' 64-bit hash sums."""
        raise NotImplementedError

    def _decision_table(self, decision: Decision) -> Any:
        """An Arrow table whose column ``d`` is the decision indicator, in row order."""
        raise NotImplementedError

    def _fast_hash(self) -> bool:
        """Whether the data hash is the fast one computed inside the GROUP BY."""
        return True

    def _hash_value(self, value: Any) -> Any:
        """The label's positive value as the fast hash's header writes it (``!r``)."""
        return value

    def _start_hash(self, q: GroupQuery) -> Callable[[bool], tuple[str, dict[str, str]]] | None:
        """Start a data hash computed beside the GROUP BY; the returned function waits for it
        (or cancels it, given True) and returns the hex digest and each hashed column's
        stream digest. None: the fast hash."""
        return None

    def _level_value(self, column: str) -> Callable[[Any], Any]:
        """How a distinct value of ``column`` is returned by :meth:`levels`."""
        return lambda v: v

    # -- column facts ---------------------------------------------------------------------------
    def columns(self) -> list[str]:
        return list(self._types)

    def _type(self, column: str) -> str:
        if column not in self._types:
            raise column_not_found(column, self.columns())
        return self._types[column]

    def is_numeric(self, column: str) -> bool:
        t = self._type(column).lower()
        return t in self._numeric_types or t.startswith("decimal")

    def _is_float(self, column: str) -> bool:
        return self._type(column).lower() in self._float_types

    def _missing(self, column: str) -> str:
        """SQL: the column is missing (NULL, or NaN in a float column)."""
        q = self._quote(column)
        return f"({q} IS NULL OR isnan({q}))" if self._is_float(column) else f"({q} IS NULL)"

    def has_missing(self, column: str) -> bool:
        key = ("missing", column)
        if key not in self._cache:
            self._cache[key] = self._any_row(self._missing(column))
        return self._cache[key]

    def levels(self, column: str, limit: int) -> tuple[list, bool]:
        key = ("levels", column)
        cached = self._cache.get(key)
        if cached is None or (cached[2] and len(cached[0]) <= limit):
            q = self._quote(column)
            v = f"CASE WHEN isnan({q}) THEN NULL ELSE {q} END" if self._is_float(column) else q
            rows = self._distinct_sorted(v, int(limit) + 2)
            missing = bool(rows) and rows[0] is None  # NULL sorts first: seen even if truncated
            values = [x for x in rows if x is not None]
            self._cache[("missing", column)] = missing
            conv = self._level_value(column)
            cached = ([conv(x) for x in values], missing, len(values) > limit)
            self._cache[key] = cached
        return cached[0][: limit + 1], cached[1]

    def _require_numeric(self, column: str, role: str = "tiers and scores") -> None:
        if not self.is_numeric(column):
            raise not_numeric_error(column, f"type {self._type(column)}", role)

    def _num_stats(self, column: str) -> tuple[int, int, int, int, float, float]:
        """(missing, -inf, finite, +inf, finite min, finite max) of a numeric column, cached."""
        key = ("stats", column)
        if key not in self._cache:
            self._require_numeric(column)
            fin = self._finite("v")
            value = f"CAST({self._quote(column)} AS DOUBLE)"
            # the usual case first, in the cheapest pass: no NaN or infinite value, so min and
            # max are the finite ones; otherwise a second pass tells them apart
            nulls, other, n_val, lo, hi = self._agg_row(value, [
                "count(*) - count(v)", f"count(*) FILTER (WHERE v IS NOT NULL AND NOT {fin})", "count(v)",
                "min(v)", "max(v)"])
            r = (nulls, 0, n_val, 0, lo, hi) if other == 0 else self._agg_row(value, [
                "count(*) FILTER (WHERE v IS NULL OR isnan(v))", f"count(*) FILTER (WHERE v = {double_literal(-math.inf)})",
                f"count(*) FILTER (WHERE {fin})", f"count(*) FILTER (WHERE v = {double_literal(math.inf)})",
                f"min(v) FILTER (WHERE {fin})", f"max(v) FILTER (WHERE {fin})"])
            self._cache[key] = (int(r[0]), int(r[1]), int(r[2]), int(r[3]),
                                math.nan if r[4] is None else float(r[4]), math.nan if r[5] is None else float(r[5]))
            self._cache[("missing", column)] = r[0] > 0
        return self._cache[key]

    def min_max(self, column: str) -> tuple[float, float, int]:
        miss, ninf, _, pinf, lo, hi = self._num_stats(column)
        return lo, hi, miss + ninf + pinf

    def _locate(self, src: RankSource, ranks: list[int]) -> dict[int, tuple[float, int, int]]:
        return locate_ranks(src, ranks, self._fetch_limit())

    def quantiles(self, column: str, probs: np.ndarray) -> tuple[np.ndarray, bool]:
        miss, ninf, fin, pinf, lo, hi = self._num_stats(column)
        n = ninf + fin + pinf
        if n == 0:
            raise no_values_error(column)
        probs = np.asarray(probs, dtype=np.float64)
        if self.quantile_mode == "approx":
            return self._approx_quantiles(column, probs, n), miss > 0
        src = self._ranks(self._dbl(column), self._source, "TRUE", (ninf, fin, pinf, lo, hi))
        return linear_quantiles(n, probs, lambda rs: {r: v for r, (v, _, _) in self._locate(src, rs).items()}), miss > 0

    # -- row-level expressions ------------------------------------------------------------------
    def _dbl(self, column: str) -> str:
        """SQL of the column as DOUBLE (no cast when it already is one)."""
        q = self._quote(column)
        return q if self._type(column).lower() == "double" else f"CAST({q} AS DOUBLE)"

    def _clean(self, column: str) -> bool:
        """Known to hold no missing value (from cached facts), so no guard is needed."""
        stats = self._cache.get(("stats", column))
        return (stats is not None and stats[0] == 0) or self._cache.get(("missing", column)) is False

    def _key_expr(self, attr: Attribute) -> str:
        """SQL of the attribute's key: raw values of a categorical (mapped to codes after the
        GROUP BY, missing -> unknown), the tier code of a numeric one."""
        if attr.kind == "categorical":
            return self._quote(attr.column)
        v = self._dbl(attr.column)
        missing = attr.n_levels - 1 if attr.has_unknown else len(attr.edges)
        tiers = " + ".join(f"CAST({v} > {double_literal(e)} AS INTEGER)" for e in attr.edges) or "0"
        if self._clean(attr.column):
            return tiers
        return f"CASE WHEN {self._missing(attr.column)} THEN {missing} ELSE {tiers} END"

    def _label_expr(self, label: Label) -> Any:
        return self._eq(label.column, label.positive)

    def _decision_expr(self, decision: Decision) -> tuple[Any, Any]:
        """(the favourable-decision indicator, native; the source to read it from)."""
        flip = decision.favourable == 0
        c = decision.column
        if decision.kind == "prediction":
            cond = self._eq(c, decision.positive)  # NULL where missing: counted, then reported
            return (self._negate(cond) if flip else cond), self._source
        self._require_numeric(c)
        v = self._dbl(c)
        source = self._source
        if decision.kind == "threshold":
            sql = f"{v} >= {double_literal(float(decision.threshold))}"
            if not self._clean(c):  # missing / NaN scores get no favourable decision (as in numpy)
                sql = f"coalesce(NOT isnan({v}) AND {sql}, FALSE)"
        else:
            cut, take, ties = self.budget_cut(c, int(decision.k))
            if take == 0:
                sql = "FALSE" if math.isinf(cut) else f"{v} > {double_literal(cut)}"
            elif take == ties:
                sql = f"{v} >= {double_literal(cut)}"
            else:
                source = self._positioned()
                pos_cut = self._pos_cut(c, v, cut, int(decision.k), take, ties)
                sql = (f"CASE WHEN {v} > {double_literal(cut)} THEN TRUE WHEN {v} = {double_literal(cut)} "
                       f"THEN {POS} <= {int(pos_cut)} ELSE FALSE END")
        return self._expr(f"(NOT ({sql}))" if flip else f"({sql})"), source

    def decisions(self, decision: Decision) -> np.ndarray:
        col = self._decision_table(decision).column("d")
        if col.null_count:  # only a prediction can be missing: scores were checked
            raise prediction_error(decision.column, col.null_count)
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=bool)

    def _cut_source(self, column: str, stats: tuple[int, int, int, float, float]) -> RankSource:
        """The rank source the budget cut is located in."""
        return self._ranks(self._dbl(column), self._source, "TRUE", stats)

    def _known_position(self, src: RankSource, cut: float, take: int, equal: int) -> int | None:
        """The position of the take-th tied row, when locating the cut already found it."""
        return None

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
        src = self._cut_source(column, (ninf, fin, pinf, lo, hi))
        cut, below, equal = self._locate(src, [n - k])[n - k]
        take = k - (n - below - equal)
        self._cache[key] = (cut, take, equal, self._known_position(src, cut, take, equal))
        return cut, take, equal

    def _pos_cut(self, column: str, v: str, cut: float, k: int, take: int, ties: int) -> int:
        """Row position of the take-th row (1-based, in row order) whose score equals ``cut``."""
        known = self._cache.get(("budget", column, k), (None,) * 4)[3]
        if known is not None:
            return known
        # positions are >= 0 and below _max_position; with few ties one query fetches them all
        src = self._ranks(POS, self._positioned(), f"{v} = {double_literal(cut)}",
                          (0, ties, 0, 0.0, self._max_position))
        return int(self._locate(src, [take - 1])[take - 1][0])

    def _value_table(self, q: ValueQuery) -> Any:
        """Run the GROUP BY of ``q`` and return its result as an Arrow table."""
        raise NotImplementedError

    def value_aggregate(self, groupings: list[Grouping], value: str, within: list[str], weights: str | None,
                        offered: str | None, cluster: str | None = None) -> ValueAggregate:
        import pyarrow.compute as pc

        if not self.is_numeric(value):
            raise value_not_numeric(value, self._type(value))
        for c in [*within, *([offered] if offered else []), *([cluster] if cluster else [])]:
            self._type(c)
        if weights:
            self._require_numeric(weights, "weights")
        attrs = audited_columns(groupings)
        order = list(attrs)
        miss_of = {c: (self.levels(c, len(a.values))[1] if a.kind == "categorical" else a.has_unknown)
                   for c, a in attrs.items()}
        v = self._dbl(value)
        v = f"CASE WHEN isnan({v}) THEN NULL ELSE {v} END" if self._is_float(value) else v
        # infinite values, and whether the distinct values are few enough to keep each one
        inf = f"(v = {double_literal(math.inf)} OR v = {double_literal(-math.inf)})"
        n_inf, distinct = self._agg_row(v, [f"count(*) FILTER (WHERE {inf})", "approx_count_distinct(v)"])
        value_errors(value, int(n_inf), 1, 1)
        if 0.8 * mv.EXACT_VALUES <= distinct <= 1.25 * mv.EXACT_VALUES:  # near the line: count exactly
            distinct = self._agg_row(v, ["count(DISTINCT v)"])[0]
        raw = v if distinct > mv.EXACT_VALUES else None
        if raw is not None:  # mv.value_bins in SQL
            v = (f"CASE WHEN {raw} = 0 THEN 0 ELSE (CASE WHEN {raw} > 0 THEN 1 ELSE -1 END) * "
                 f"(CAST(floor(ln(abs({raw})) / {double_literal(mv.BIN_LOG)}) AS BIGINT) + {mv.BIN_OFFSET}) END")
        sets = list(dict.fromkeys(tuple(sorted(order.index(a.column) for a in g.attributes)) for g in groupings))
        hashed = list(dict.fromkeys([value, *order, *within, *(c for c in (offered, weights, cluster) if c)]))
        q = ValueQuery(order, [self._key_expr(attrs[c]) for c in order], sets, list(within), offered, v, weights,
                       raw, cluster, hashed)
        t = self._value_table(q)
        gids = t.column("gid").to_numpy(zero_copy_only=False).astype(np.int64)
        n = t.column("n").to_numpy(zero_copy_only=False).astype(np.int64)
        vals = t.column("v").to_numpy(zero_copy_only=False).astype(np.float64)  # null -> NaN
        missing = np.isnan(vals)
        if raw is not None:  # each cell at its rows' (weighted) mean value
            sx = t.column("sx").to_numpy(zero_copy_only=False).astype(np.float64)
            wx = t.column("wx").to_numpy(zero_copy_only=False).astype(np.float64) if weights else sx
            sw = t.column("w").to_numpy(zero_copy_only=False).astype(np.float64) if weights else n.astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                vals = np.where(missing, np.nan, np.where(sw > 0, wx / np.where(sw > 0, sw, 1), sx / n))
        first = np.arange(len(n)) if q.single else np.flatnonzero(gids == q.gid(sets[0]))  # every row once
        in_base = np.ones(len(n), dtype=bool)
        if offered:
            idx, distinct = _arrow_values(t.column("o"))
            ok = np.array([x in (0, 1) and x is not None for x in distinct] + [False], dtype=bool)
            flag = np.array([bool(x) if ok[i] else False for i, x in enumerate(distinct)] + [False], dtype=bool)
            seen = np.zeros(len(distinct) + 1, dtype=bool)
            seen[np.unique(idx[first])] = True
            offered_errors(offered, [x for i, x in enumerate(distinct) if seen[i] and not ok[i]],
                           int(n[first][idx[first] < 0].sum()))
            in_base = flag[idx]
        value_errors(value, 0, int(n[first][~missing[first]].sum()), self.n_rows())
        w = w2 = None
        if weights:
            w = t.column("w").to_numpy(zero_copy_only=False).astype(np.float64)
            w2 = t.column("w2").to_numpy(zero_copy_only=False).astype(np.float64)
            weight_errors(weights, int(t.column("w_bad").to_numpy(zero_copy_only=False)[first].sum()),
                          int(t.column("w_neg").to_numpy(zero_copy_only=False)[first].sum()))
        parts = []
        for i in range(len(within)):
            idx, distinct = _arrow_values(t.column(f"s{i}"))
            parts.append(pd.Series(np.asarray([*distinct, None], dtype=object)[idx]))
        strata, names = stratum_table(parts) if within else (np.zeros(len(n), dtype=np.int64), ["all"])
        clusters, n_clusters = None, 0
        if cluster:  # the few distinct ids are coded, then indexed; missing ones counted over data rows
            idx, distinct = _arrow_values(t.column("k_c"))
            codes_of, uniques = pd.factorize(pd.Series([*distinct, None], dtype=object), sort=True)
            per_row = codes_of[idx]
            lost = int(n[first][per_row[first] < 0].sum())
            if lost:
                raise missing_cluster_error(cluster, lost)
            clusters, n_clusters = per_row.astype(np.int64), max(len(uniques), 1)
        codes: dict[str, np.ndarray] = {}
        for i, c in enumerate(order):
            col = t.column(f"k{i}")
            if attrs[c].kind == "categorical":
                idx, distinct = _arrow_values(col)
                codes[c] = categorical_codes(attrs[c], [*distinct, None], miss_of[c])[idx]
            else:
                codes[c] = pc.fill_null(col, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        cells = in_base & ~missing
        stats = []
        for g in groupings:
            sel = first if q.single else np.flatnonzero(
                gids == q.gid(tuple(sorted(order.index(a.column) for a in g.attributes))))
            key = group_keys([codes[a.column][sel] for a in g.attributes], [a.n_levels for a in g.attributes])
            b, c_ = in_base[sel], cells[sel]
            stats.append(value_stats(g, key, n[sel], n[sel] * b, n[sel] * (b & missing[sel]), key[c_], strata[sel][c_],
                                     vals[sel][c_], n[sel][c_], None if w is None else w[sel][c_],
                                     None if w2 is None else w2[sel][c_],
                                     None if clusters is None else clusters[sel][c_]))
        digest = None
        if "h1" in t.column_names:  # the digest: the sum and the xor of each row's hash
            h1 = int(pc.sum(t.column("h1").take(first)).as_py() or 0)  # every row once: the first set
            xors = t.column("h2").take(first).to_numpy(zero_copy_only=False).astype(np.uint64)
            h2 = int(np.bitwise_xor.reduce(xors)) if len(xors) else 0
            header = ";".join(f"{c}:{self._types[c]}" for c in hashed)
            digest = fast_digest(header, self.n_rows(), h1, h2)
        return ValueAggregate(self.n_rows(), names, stats, None if raw is None else mv.VALUE_PRECISION, n_clusters,
                              digest, VALUE_DIGEST if digest else "")

    # -- the one pass ---------------------------------------------------------------------------
    def _cell_aggregates(self, weights: str | None) -> list[str]:
        """SQL of the GROUP BY's aggregates: the count, then with weights ``w`` their sum, sum
        of squares, and the counts of missing/infinite and of negative weights."""
        if not weights:
            return ["count(*)"]
        return ["count(*)", "sum(w)", "sum(w * w)", f"count(*) FILTER (WHERE NOT coalesce({self._finite('w')}, FALSE))",
                "count(*) FILTER (WHERE w < 0)"]

    def aggregate(self, groupings: list[Grouping], label: Label | None, decision: Decision,
                  weights: str | None, paired: Decision | None = None) -> Aggregate:
        attrs = audited_columns(groupings)
        order = list(attrs)
        miss_of = {c: (self.levels(c, len(a.values))[1] if a.kind == "categorical" else a.has_unknown)
                   for c, a in attrs.items()}
        keys = [self._key_expr(attrs[c]) for c in order]
        y = self._label_expr(label) if label else self._expr("FALSE")
        d, source = self._decision_expr(decision)
        d2 = None
        if paired is not None:
            d2, source2 = self._decision_expr(paired)
            if source is self._source:  # the positioned source (budget ties) has every column
                source = source2
        if weights:
            self._require_numeric(weights, "weights")
        hash_cols = [c for c in dict.fromkeys([*order, decision.column, paired.column if paired else None, weights,
                                               label.column if label else None]) if c]
        sets = list(dict.fromkeys(tuple(sorted(order.index(a.column) for a in g.attributes)) for g in groupings))
        single = fits_jointly([attrs[c].n_levels for c in order]) or len(sets) == 1
        q = GroupQuery(groupings, attrs, order, miss_of, label, decision, weights, hash_cols, sets, single,
                       keys, y, d, source, paired, d2)
        finish = self._start_hash(q)
        try:
            stats, digest = self._assemble(self._grouped_rows(q), q)
        except BaseException:
            if finish is not None:
                finish(True)
            raise
        per_column: dict[str, str] = {}
        if finish is not None:
            digest, per_column = finish(False)
        return Aggregate(n_rows=self.n_rows(), stats=stats, data_sha256=digest,
                         data_hash=FAST if self._fast_hash() else DEFINITION, column_sha256=per_column)

    def _assemble(self, rows: list[tuple], q: GroupQuery) -> tuple[list[CellStats], str]:
        """CellStats from the GROUP BY rows (and the fast digest, if that is the hash)."""
        nk = len(q.order)
        nd = len(q.decision_columns)
        width = nk + 3 + nd + (4 if q.weights else 0) + (2 if self._fast_hash() else 0)
        cols = list(zip(*rows, strict=True)) if rows else [()] * width
        gids = np.asarray(cols[nk + 1 + nd], dtype=np.int64)

        def set_rows(s: tuple[int, ...]) -> np.ndarray:
            return np.arange(len(gids)) if q.single else np.flatnonzero(gids == q.gid(s))

        base = set_rows(q.sets[0])  # every row is counted once in each grouping set
        yv = np.asarray(cols[nk], dtype=object)
        dvs = [np.asarray(cols[nk + 1 + i], dtype=object) for i in range(nd)]
        n = np.asarray(cols[nk + 2 + nd], dtype=np.int64)
        if q.label and any(v is None for v in yv[base]):
            raise label_error(q.label.column, int(n[base][[v is None for v in yv[base]]].sum()))
        for dec, dv in zip([q.decision, q.paired][:nd], dvs, strict=True):
            if dec is not None and dec.kind == "prediction" and any(v is None for v in dv[base]):
                raise prediction_error(dec.column, int(n[base][[v is None for v in dv[base]]].sum()))
        w = w2 = None
        pos = nk + 3 + nd
        if q.weights:
            w = np.asarray([0.0 if v is None else v for v in cols[pos]], dtype=np.float64)
            w2 = np.asarray([0.0 if v is None else v for v in cols[pos + 1]], dtype=np.float64)
            weight_errors(q.weights, int(np.asarray(cols[pos + 2], dtype=np.int64)[base].sum()),
                          int(np.asarray(cols[pos + 3], dtype=np.int64)[base].sum()))
            pos += 4
        codes: dict[str, np.ndarray] = {}
        for i, c in enumerate(q.order):
            if q.attrs[c].kind == "categorical":
                codes[c] = categorical_codes(q.attrs[c], cols[i], q.miss_of[c])
            else:
                codes[c] = np.asarray([-1 if v is None else v for v in cols[i]], dtype=np.int64)

        def rows_of(g: Grouping) -> np.ndarray:
            return set_rows(tuple(sorted(q.order.index(a.column) for a in g.attributes)))

        cell = yv.astype(bool).astype(np.int64)
        for dv in dvs:  # 2y + d, or 4y + 2a + b
            cell = 2 * cell + dv.astype(bool).astype(np.int64)
        stats = assemble_stats(q.groupings, codes, cell, 2 * 2 ** nd, n, w, w2, rows_of)
        if not self._fast_hash():
            return stats, ""
        h1 = sum(int(cols[pos][i]) for i in base)
        h2 = sum(int(cols[pos + 1][i]) for i in base)
        header = ";".join(f"{c}:{self._types[c]}" for c in q.hash_cols)
        if q.label is not None:
            header += f";label:{q.label.column}={self._hash_value(q.label.positive)!r}"
        return stats, fast_digest(header, self.n_rows(), h1, h2)
