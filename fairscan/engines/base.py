"""The one small interface every engine implements, and the statistics it returns.

An engine answers a handful of questions about the data (which columns, distinct values,
quantiles) and then does the only heavy work there is: one GROUP BY that counts rows per
(group, label, decision) cell. Everything downstream — rates, intervals, bootstrap, tests,
verdicts, reports — is a pure function of those small tables, so a new engine (DuckDB,
Spark) plugs in by implementing this class and nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import pandas as pd

from fairscan.errors import FairscanError, plain, suggest
from fairscan.types import (
    INTERSECTION_SEP,
    N_CELLS,
    PAIRED_CELLS,
    UNKNOWN,
    Aggregate,
    Attribute,
    Decision,
    Grouping,
    Label,
    ValueAggregate,
    ValueStats,
)

__all__ = [
    "MAX_JOINT_GROUPS", "Engine", "audited_columns", "cell_count", "changed_error", "cluster_codes",
    "column_not_found",
    "fits_jointly", "group_keys", "label_error", "missing_cluster_error", "missing_code", "no_values_error", "not_numeric_error",
    "offered_errors", "offered_flags", "prediction_error", "score_error", "stratum_table", "value_errors", "value_floats",
    "value_not_numeric", "value_stats", "weight_errors",
]

#: Count all attributes jointly (one dense table, or one GROUP BY, then summed out per
#: grouping) while the product of their level counts is at most this; otherwise one count per
#: grouping (sparse in memory, GROUPING SETS in SQL). Read at call time (tests lower it).
MAX_JOINT_GROUPS = 1 << 15


class Engine(ABC):
    """Interface of an aggregation engine. See the module docstring."""

    name: str = "abstract"

    @abstractmethod
    def columns(self) -> list[str]:
        """Column names of the data."""

    @abstractmethod
    def n_rows(self) -> int:
        """Number of rows."""

    @abstractmethod
    def is_numeric(self, column: str) -> bool:
        """Whether the column holds numbers (int, float, bool excluded)."""

    @abstractmethod
    def has_missing(self, column: str) -> bool:
        """Whether the column has any missing value."""

    @abstractmethod
    def levels(self, column: str, limit: int) -> tuple[list, bool]:
        """Sorted distinct non-missing values (at most ``limit + 1``) and whether any are missing."""

    @abstractmethod
    def quantiles(self, column: str, probs: np.ndarray) -> tuple[np.ndarray, bool]:
        """Quantiles (linear interpolation) of the non-missing values, and whether any are missing."""

    def quantile_note(self, column: str) -> str:
        """What the reader should know about the last quantiles of ``column`` (e.g. the
        measured error of approximate ones); empty for exact quantiles."""
        return ""

    @abstractmethod
    def min_max(self, column: str) -> tuple[float, float, int]:
        """Minimum, maximum and the number of non-finite (NaN/inf/missing) values of a numeric column."""

    @abstractmethod
    def fetch(self, columns: list[str]) -> pd.DataFrame:
        """The named columns as a pandas frame: only those leave the engine (rows in no set
        order). For inputs that are reduced in memory, such as recommendation lists."""

    def decisions(self, decision: Decision) -> np.ndarray:
        """Every row's favourable-decision indicator (True = offer), in row order: the
        decisions :meth:`aggregate` counts, for callers that need them row by row. The only
        row-sized result an engine returns (one bool per row)."""
        raise FairscanError(f"the {self.name} engine cannot return row-level decisions; use the memory engine")

    @abstractmethod
    def aggregate(
        self,
        groupings: list[Grouping],
        label: Label | None,
        decision: Decision,
        weights: str | None,
        paired: Decision | None = None,
    ) -> Aggregate:
        """Count rows per (group, cell) for every grouping, in one pass over the rows. With a
        ``paired`` second decision (two models on the same rows), each group has
        :data:`~fairscan.types.PAIRED_CELLS` cells, 4 * y + 2 * a + b, and the data hash covers
        the second decision's column too."""

    def value_aggregate(self, groupings: list[Grouping], value: str, within: list[str], weights: str | None,
                        offered: str | None, cluster: str | None = None) -> ValueAggregate:
        """Count the audited rows per (group, stratum, value) for every grouping, in one pass
        (:class:`~fairscan.types.ValueStats`): the offer value audit's only heavy work.
        ``within``: the strata columns (their cross; none: one stratum ``all``); ``offered``:
        a 0/1 column, the rows audited are those with 1 (all rows without it); ``cluster``: a
        column whose equal values mark rows that are not independent (one customer's lines),
        the cells then per (group, stratum, cluster, value). Checks the value (numeric,
        finite, not all missing), the weights and the offered flags."""
        raise FairscanError(f"the {self.name} engine cannot audit offer values; use --engine memory, duckdb or spark")


# -- rules every engine follows ---------------------------------------------------------------
def cell_count(paired: Decision | None) -> int:
    """Cells per group: 4 (2y + d), or 8 (4y + 2a + b) with a paired second decision."""
    return PAIRED_CELLS if paired is not None else N_CELLS


def fits_jointly(sizes: list[int]) -> bool:
    """Whether a key space of these level counts is small enough to count jointly."""
    return float(np.prod(sizes, dtype=np.float64)) <= MAX_JOINT_GROUPS


def audited_columns(groupings: list[Grouping]) -> dict[str, Attribute]:
    """Each audited column once, with its attribute (first grouping that uses it wins)."""
    attrs: dict[str, Attribute] = {}
    for g in groupings:
        for a in g.attributes:
            attrs.setdefault(a.column, a)
    return attrs


def missing_code(attr: Attribute, has_missing: bool) -> int:
    """The code of a missing value of a categorical ``attr``: its own ``unknown`` level, or
    the existing one of that name, else 0 (the column has no missing value)."""
    if attr.has_unknown:
        return attr.n_levels - 1
    return attr.labels.index(UNKNOWN) if has_missing and UNKNOWN in attr.labels else 0


def group_keys(codes: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    """One int64 key per row of a grouping's attribute codes (mixed radix over the attributes'
    level counts): sorted keys are the code tuples in lexicographic order."""
    key = np.zeros(len(codes[0]) if codes else 0, dtype=np.int64)
    for c, size in zip(codes, sizes, strict=True):
        key = key * size + np.asarray(c, dtype=np.int64)
    return key


def _key_codes(keys: np.ndarray, sizes: list[int]) -> np.ndarray:
    """The code tuples (one row each) of :func:`group_keys`' keys."""
    out = np.zeros((len(keys), len(sizes)), dtype=np.int64)
    rest = np.asarray(keys, dtype=np.int64)
    for i in range(len(sizes) - 1, -1, -1):
        rest, out[:, i] = np.divmod(rest, sizes[i])
    return out


def stratum_table(columns: list[pd.Series]) -> tuple[np.ndarray, list[str]]:
    """Each entry's stratum code (the cross of the strata ``columns``, one entry per row or per
    result row of a GROUP BY) and the strata's labels, in sorted order of the columns' values
    (a missing value is the stratum part ``unknown``); codes are dense and follow the labels'
    order. One rule for every engine, so that their strata and labels are equal."""
    n = len(columns[0]) if columns else 0
    if not columns:
        return np.zeros(0, dtype=np.int64), ["all"]
    combined = np.zeros(n, dtype=np.int64)
    parts: list[list[str]] = []
    for col in columns:
        codes, uniques = pd.factorize(col, sort=True)
        labels = [str(u) for u in uniques]
        if (codes < 0).any():
            codes = np.where(codes < 0, len(labels), codes)
            labels.append(UNKNOWN)
        combined = combined * max(len(labels), 1) + codes
        parts.append(labels)
    used, codes = np.unique(combined, return_inverse=True)
    names = []
    for key in used.tolist():
        label = []
        for labels in reversed(parts):
            key, i = divmod(key, max(len(labels), 1))
            label.append(labels[i])
        names.append(INTERSECTION_SEP.join(reversed(label)))
    return codes.astype(np.int64).ravel(), names


def cluster_codes(values: pd.Series, column: str) -> tuple[np.ndarray, int]:
    """Each entry's cluster code (dense, in sorted order of the values) and the number of
    clusters; a missing cluster id is a one-line error (which rows belong together is unknown)."""
    codes, uniques = pd.factorize(values, sort=True)
    if (codes < 0).any():
        raise missing_cluster_error(column, int((codes < 0).sum()))
    return codes.astype(np.int64), max(len(uniques), 1)


def value_floats(col: pd.Series, column: str) -> np.ndarray:
    """An in-memory value column as floats (NaN where missing), checked: numeric, finite, not
    all missing. The one check for every in-memory reader (the memory engine, the repair)."""
    if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        raise value_not_numeric(column, str(col.dtype))
    v = col.to_numpy(dtype=np.float64, na_value=np.nan)
    value_errors(column, int(np.isinf(v).sum()), int((~np.isnan(v)).sum()), len(v))
    return v


def offered_flags(col: pd.Series, column: str) -> np.ndarray:
    """An in-memory offered column as booleans, checked: 0/1 on every row."""
    offered_errors(column, [x for x in pd.unique(col.dropna()).tolist() if x not in (0, 1)], int(col.isna().sum()))
    return col.to_numpy().astype(bool)


def missing_cluster_error(column: str, n_missing: int) -> FairscanError:
    return FairscanError(f"cluster column '{column}' has {n_missing:,} missing values; every row needs the id of "
                         "what it belongs to (the customer)")


def value_stats(grouping: Grouping, count_key: np.ndarray, rows: np.ndarray, base: np.ndarray,
                missing: np.ndarray, cell_key: np.ndarray, stratum: np.ndarray, value: np.ndarray,
                n: np.ndarray, w: np.ndarray | None, w2: np.ndarray | None,
                cluster: np.ndarray | None = None) -> ValueStats:
    """A grouping's :class:`~fairscan.types.ValueStats` from what an engine counted: group
    counts (``rows``, ``base``, ``missing``) per :func:`group_keys` key ``count_key``
    (repeated keys are added up), and cells (``n``, ``w``, ``w2``) per (``cell_key``,
    ``stratum``, [``cluster``,] ``value``), each at most once. Groups without rows are left
    out."""
    sizes = [a.n_levels for a in grouping.attributes]
    keys, inv = np.unique(np.asarray(count_key, dtype=np.int64), return_inverse=True)
    inv = inv.ravel()

    def add(x: np.ndarray) -> np.ndarray:
        return np.bincount(inv, np.asarray(x, dtype=np.float64), len(keys)).astype(np.int64)

    r, b, m = add(rows), add(base), add(missing)
    keep = r > 0
    keys, r, b, m = keys[keep], r[keep], b[keep], m[keep]
    group = np.searchsorted(keys, np.asarray(cell_key, dtype=np.int64))
    cl = None if cluster is None else np.asarray(cluster, dtype=np.int64)
    st = np.asarray(stratum, dtype=np.int64)
    val = np.asarray(value, dtype=np.float64)
    order = np.lexsort((val, st, group) if cl is None else (val, cl, st, group))
    nn = np.asarray(n, dtype=np.int64)[order]
    ww = nn.astype(np.float64) if w is None else np.asarray(w, dtype=np.float64)[order]
    ww2 = ww.copy() if w2 is None else np.asarray(w2, dtype=np.float64)[order]
    g, st, val = group[order].astype(np.int64), st[order], val[order]
    cl = None if cl is None else cl[order]
    # one cell per (group, stratum, [cluster,] value): an engine may hand one in several rows
    # (a NaN and a NULL stratum are both "unknown"), which are added up here
    same = (g[1:] == g[:-1]) & (st[1:] == st[:-1]) & (val[1:] == val[:-1])
    if cl is not None:
        same &= cl[1:] == cl[:-1]
    if same.any():
        start = np.flatnonzero(np.r_[True, ~same])
        nn, ww, ww2 = (np.add.reduceat(x, start) for x in (nn, ww, ww2))
        g, st, val = g[start], st[start], val[start]
        cl = None if cl is None else cl[start]
    return ValueStats(grouping, _key_codes(keys, sizes), r, b, m, g, st, val, nn, ww, ww2, cl)


# -- the errors every engine raises the same way -------------------------------------------------
def column_not_found(column: str, columns: list[str]) -> FairscanError:
    return FairscanError(f"column '{column}' not found{suggest(column, columns)}")


def not_numeric_error(column: str, type_text: str, role: str) -> FairscanError:
    """``type_text`` as the engine names the type, e.g. ``dtype object`` or ``type VARCHAR``."""
    return FairscanError(f"column '{column}' is not numeric ({type_text}); {role} need numbers")


def no_values_error(column: str) -> FairscanError:
    return FairscanError(f"column '{column}' has no values to cut into tiers")


def changed_error(column: str) -> FairscanError:
    return FairscanError(f"column '{column}' changed while auditing")


def label_error(column: str, n_missing: int) -> FairscanError:
    return FairscanError(
        f"label column '{column}' has {n_missing:,} missing values; "
        "fill or remove those rows first (fairscan never drops rows silently)")


def prediction_error(column: str, n_missing: int) -> FairscanError:
    return FairscanError(
        f"prediction column '{column}' has {n_missing:,} missing values; fill or remove those rows first")


def weight_errors(column: str, n_bad: int, n_neg: int) -> None:
    """Raise for missing/infinite weights, then for negative ones; nothing when both are 0."""
    if n_bad:
        raise FairscanError(f"weight column '{column}' has {n_bad:,} missing or infinite values; fix them first")
    if n_neg:
        raise FairscanError(f"weight column '{column}' has {n_neg:,} negative values; weights must be >= 0")


def value_not_numeric(column: str, type_text: str) -> FairscanError:
    """``type_text`` as the engine names the type, e.g. ``str`` or ``VARCHAR``."""
    return FairscanError(f"value column '{column}' is not numeric ({type_text}); give the price, discount or limit "
                         "as numbers")


def value_errors(column: str, n_infinite: int, n_values: int, n_rows: int) -> None:
    """Raise for infinite values, then for a column without any value (``n_values`` of
    ``n_rows`` rows have one)."""
    if n_infinite:
        raise FairscanError(f"value column '{column}' has {n_infinite:,} infinite values; fix them first")
    if n_values == 0:
        raise FairscanError(f"value column '{column}' has no values (all {n_rows:,} are missing)")


def offered_errors(column: str, others: list, n_missing: int) -> None:
    """Raise unless every row's offered flag is 0 or 1 (``others``: the other values seen)."""
    if others or n_missing:
        bad = sorted((plain(v) for v in others), key=str)[:3]
        raise FairscanError(f"offered column '{column}' must be 0/1 for every row"
                            + (f" (found {', '.join(bad)})" if bad else f" ({n_missing:,} missing)"))


def score_error(column: str, n_bad: int) -> FairscanError:
    return FairscanError(
        f"score column '{column}' has {n_bad:,} missing, NaN or infinite values; fix or remove those rows first")
