"""In-memory engine: pandas, polars or Arrow data, counted with numpy.bincount in chunks."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from fairscan.engines.base import N_CELLS, Aggregate, CellStats, Decision, Engine, Label
from fairscan.errors import FairscanError, suggest
from fairscan.groups import UNKNOWN, Attribute, Grouping

CHUNK_ROWS = 1 << 20
# Count over the full cross of all attributes at once (then marginalise) while it has at
# most this many cells; otherwise count each grouping on its own.
MAX_JOINT_GROUPS = 1 << 15


def _kind(data: Any) -> str:
    mod = type(data).__module__.split(".")[0]
    if isinstance(data, pd.DataFrame):
        return "pandas"
    if mod == "polars" and hasattr(data, "get_column"):
        return "polars"
    if mod == "pyarrow" and hasattr(data, "column_names"):
        return "arrow"
    raise FairscanError(
        f"cannot audit a {type(data).__name__}: pass a pandas or polars DataFrame, an Arrow "
        "table, or a CSV/Parquet path"
    )


class MemoryEngine(Engine):
    """Aggregates data that fits in memory. Columns are converted lazily, one at a time."""

    name = "memory"

    def __init__(self, data: Any) -> None:
        self._data = data
        self._kind = _kind(data)
        self._series: dict[str, pd.Series] = {}
        self._factors: dict[str, tuple[np.ndarray, list]] = {}

    # -- column access -------------------------------------------------------------------
    def columns(self) -> list[str]:
        if self._kind == "pandas":
            return [str(c) for c in self._data.columns]
        if self._kind == "polars":
            return list(self._data.columns)
        return list(self._data.column_names)

    def n_rows(self) -> int:
        return int(self._data.shape[0] if self._kind != "arrow" else self._data.num_rows)

    def series(self, column: str) -> pd.Series:
        """The column as a pandas Series (converted once and cached)."""
        if column not in self._series:
            if column not in self.columns():
                raise FairscanError(f"column '{column}' not found{suggest(column, self.columns())}")
            if self._kind == "pandas":
                s = self._data[column]
                if isinstance(s, pd.DataFrame):
                    raise FairscanError(f"column name '{column}' appears more than once; rename the duplicates")
            elif self._kind == "polars":
                s = self._data.get_column(column).to_pandas()
            else:
                s = self._data.column(column).to_pandas()
            self._series[column] = s
        return self._series[column]

    def is_numeric(self, column: str) -> bool:
        s = self.series(column)
        return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)

    def has_missing(self, column: str) -> bool:
        return bool(self.series(column).isna().any())

    def _factorize(self, column: str) -> tuple[np.ndarray, list]:
        """Codes (-1 = missing) and sorted distinct values of a column, cached."""
        if column not in self._factors:
            s = self.series(column)
            try:
                codes, uniques = pd.factorize(s, sort=True, use_na_sentinel=True)
                values = list(uniques)
            except TypeError:  # mixed types that do not sort: sort by their text
                codes, uniques = pd.factorize(s, sort=False, use_na_sentinel=True)
                order = sorted(range(len(uniques)), key=lambda i: str(uniques[i]))
                remap = np.empty(len(order) + 1, dtype=np.int64)
                remap[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
                remap[-1] = -1
                codes = remap[codes]
                values = [uniques[i] for i in order]
            self._factors[column] = (np.asarray(codes), values)
        return self._factors[column]

    def levels(self, column: str, limit: int) -> tuple[list, bool]:
        codes, values = self._factorize(column)
        return values[: limit + 1], bool((codes < 0).any())

    def _float(self, column: str) -> np.ndarray:
        s = self.series(column)
        if not self.is_numeric(column):
            raise FairscanError(
                f"column '{column}' is not numeric (dtype {s.dtype}); tiers and scores need numbers"
            )
        return s.to_numpy(dtype=np.float64, na_value=np.nan)

    def quantiles(self, column: str, probs: np.ndarray) -> tuple[np.ndarray, bool]:
        v = self._float(column)
        finite = ~np.isnan(v)
        if not finite.any():
            raise FairscanError(f"column '{column}' has no values to cut into tiers")
        return np.quantile(v[finite], probs), bool((~finite).any())

    def min_max(self, column: str) -> tuple[float, float, int]:
        v = self._float(column)
        ok = np.isfinite(v)
        bad = int(len(v) - ok.sum())
        if not ok.any():
            return float("nan"), float("nan"), bad
        return float(v[ok].min()), float(v[ok].max()), bad

    # -- row-level encodings ---------------------------------------------------------------
    def _attribute_codes(self, attr: Attribute) -> np.ndarray:
        if attr.kind == "categorical":
            codes, values = self._factorize(attr.column)
            if len(values) != len(attr.values):
                raise FairscanError(f"column '{attr.column}' changed while auditing")
            codes = codes.astype(np.int32, copy=True)
            if attr.has_unknown:
                codes[codes < 0] = attr.n_levels - 1
            elif (codes < 0).any():
                codes[codes < 0] = attr.labels.index(UNKNOWN)
            return codes
        v = self._float(attr.column)
        codes = np.searchsorted(np.asarray(attr.edges), v, side="left").astype(np.int32)
        if attr.has_unknown:
            codes[np.isnan(v)] = attr.n_levels - 1
        return codes

    def _label_array(self, label: Label) -> np.ndarray:
        s = self.series(label.column)
        if s.isna().any():
            raise FairscanError(
                f"label column '{label.column}' has {int(s.isna().sum())} missing values; "
                "fill or remove those rows first (fairscan never drops rows silently)"
            )
        return (s == label.positive).to_numpy(dtype=bool)

    def _decision_array(self, decision: Decision) -> np.ndarray:
        """Favourable-decision indicator per row."""
        if decision.kind == "prediction":
            s = self.series(decision.column)
            if s.isna().any():
                raise FairscanError(
                    f"prediction column '{decision.column}' has {int(s.isna().sum())} missing values; "
                    "fill or remove those rows first"
                )
            d1 = (s == decision.positive).to_numpy(dtype=bool)
        else:
            score = self._float(decision.column)
            if decision.kind == "threshold":
                d1 = score >= decision.threshold
            else:
                d1 = top_k_mask(score, int(decision.k))
        return d1 if decision.favourable == 1 else ~d1

    def _weights(self, column: str) -> np.ndarray:
        w = self._float(column)
        if not np.isfinite(w).all():
            raise FairscanError(f"weight column '{column}' has missing or infinite values; fix them first")
        if (w < 0).any():
            raise FairscanError(
                f"weight column '{column}' has {int((w < 0).sum())} negative values; weights must be >= 0"
            )
        return w

    # -- the one pass ---------------------------------------------------------------------
    def aggregate(
        self,
        groupings: list[Grouping],
        label: Label | None,
        decision: Decision,
        weights: str | None,
    ) -> Aggregate:
        n = self.n_rows()
        y = self._label_array(label) if label else np.zeros(n, dtype=bool)
        d = self._decision_array(decision)
        w = self._weights(weights) if weights else None
        attrs: dict[str, Attribute] = {}
        for g in groupings:
            for a in g.attributes:
                attrs.setdefault(a.column, a)
        codes = {c: self._attribute_codes(a) for c, a in attrs.items()}
        digest = _hash(self, list(attrs), label, decision, weights, y, d)

        sizes = [a.n_levels for a in attrs.values()]
        if int(np.prod(sizes, dtype=np.float64)) <= MAX_JOINT_GROUPS:
            joint = _mixed_radix([codes[c] for c in attrs], sizes)
            n_c, w_c, w2_c = count_cells(joint, int(np.prod(sizes)), y, d, w)
            shape = (*sizes, N_CELLS)
            stats = [
                _marginal(g, list(attrs), n_c.reshape(shape),
                          None if w_c is None else w_c.reshape(shape),
                          None if w2_c is None else w2_c.reshape(shape))
                for g in groupings
            ]
        else:
            stats = [self._count_grouping(g, codes, y, d, w) for g in groupings]
        score_range = None
        if decision.kind != "prediction":
            lo, hi, _ = self.min_max(decision.column)
            score_range = (lo, hi)
        return Aggregate(n_rows=n, stats=stats, data_sha256=digest, score_range=score_range)

    def _count_grouping(self, g: Grouping, codes: dict, y, d, w) -> CellStats:
        sizes = [a.n_levels for a in g.attributes]
        key = _mixed_radix([codes[a.column] for a in g.attributes], sizes)
        uniq, key = np.unique(key, return_inverse=True)
        n_c, w_c, w2_c = count_cells(key, len(uniq), y, d, w)
        combo = np.stack(np.unravel_index(uniq, sizes), axis=1) if len(sizes) > 1 else uniq[:, None]
        keep = n_c.sum(axis=1) > 0
        return CellStats(g, combo[keep], n_c[keep], *(None if x is None else x[keep] for x in (w_c, w2_c)))


def top_k_mask(score: np.ndarray, k: int) -> np.ndarray:
    """Mask of the k highest scores; ties at the cut go to earlier rows. O(n), no full sort."""
    n = len(score)
    k = max(0, min(int(k), n))
    if k == 0:
        return np.zeros(n, dtype=bool)
    if k == n:
        return np.ones(n, dtype=bool)
    cut = np.partition(score, n - k)[n - k]
    mask = score > cut
    need = k - int(mask.sum())
    ties = np.flatnonzero(score == cut)[:need]
    mask[ties] = True
    return mask


def _mixed_radix(codes: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    key = np.zeros(len(codes[0]) if codes else 0, dtype=np.int64)
    for c, size in zip(codes, sizes, strict=True):
        key *= size
        key += c
    return key


def count_cells(
    key: np.ndarray, n_keys: int, y: np.ndarray, d: np.ndarray, w: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Rows (and weight sums) per (key, 2*y + d) cell, in chunks to bound temporaries."""
    size = n_keys * N_CELLS
    n_c = np.zeros(size, dtype=np.int64)
    w_c = np.zeros(size) if w is not None else None
    w2_c = np.zeros(size) if w is not None else None
    for start in range(0, len(key), CHUNK_ROWS):
        sl = slice(start, start + CHUNK_ROWS)
        cell = key[sl] * N_CELLS
        cell += 2 * y[sl]
        cell += d[sl]
        n_c += np.bincount(cell, minlength=size)
        if w is not None:
            ws = w[sl]
            w_c += np.bincount(cell, weights=ws, minlength=size)
            w2_c += np.bincount(cell, weights=ws * ws, minlength=size)
    shape = (n_keys, N_CELLS)
    return n_c.reshape(shape), None if w_c is None else w_c.reshape(shape), None if w2_c is None else w2_c.reshape(shape)


def _marginal(g: Grouping, order: list[str], n_c, w_c, w2_c) -> CellStats:
    """Sum the joint table over the attributes not in ``g``; keep non-empty groups."""
    axes = [order.index(a.column) for a in g.attributes]
    drop = tuple(i for i in range(len(order)) if i not in axes)

    def red(x: np.ndarray | None) -> np.ndarray | None:
        if x is None:
            return None
        m = x.sum(axis=drop) if drop else x
        # bring the kept axes into the grouping's order
        kept = sorted(axes)
        m = np.moveaxis(m, [kept.index(a) for a in axes], list(range(len(axes))))
        return m.reshape(-1, N_CELLS)

    n_m = red(n_c)
    sizes = [a.n_levels for a in g.attributes]
    combo = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)
    keep = n_m.sum(axis=1) > 0
    return CellStats(g, combo[keep], n_m[keep], *(None if x is None else x[keep] for x in (red(w_c), red(w2_c))))


def _hash(engine: MemoryEngine, cols: list[str], label, decision, weights, y, d) -> str:
    """sha256 of the columns the audit read (their values, not the frame's memory layout)."""
    h = hashlib.sha256()
    for c in [*cols, decision.column, weights]:
        if c is None:
            continue
        h.update(c.encode())
        s = engine.series(c)
        if engine.is_numeric(c):
            h.update(np.ascontiguousarray(s.to_numpy(dtype=np.float64, na_value=np.nan)).tobytes())
        else:
            codes, values = engine._factorize(c)
            h.update(repr([str(v) for v in values]).encode())
            h.update(np.ascontiguousarray(codes).tobytes())
    if label is not None:
        h.update(label.column.encode())
        h.update(np.packbits(y).tobytes())
    return h.hexdigest()
