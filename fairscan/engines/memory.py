"""In-memory engine: pandas, polars or Arrow data, counted with numpy.bincount in chunks.

Every row-level step (group codes, label, decision, cell index, hash) runs chunk by chunk,
so the extra memory is a few chunk-sized temporaries, never full-size int64 arrays. The
only whole-column work is finding distinct values (a hash pass with a small result) and,
for a budget, locating the score cut.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from fairscan.engines import base
from fairscan.engines.base import Engine
from fairscan.engines.datahash import DEFINITION, DataHasher, hashed_columns
from fairscan.errors import FairscanError
from fairscan.metrics import values as mv
from fairscan.types import (
    N_CELLS,
    Aggregate,
    Attribute,
    CellStats,
    Decision,
    Grouping,
    Label,
    ValueAggregate,
)

__all__ = ["CHUNK_ROWS", "Encoder", "MemoryEngine", "frame_kind", "top_k_mask"]

CHUNK_ROWS = 1 << 20

Encoder = Callable[[slice], np.ndarray]


def frame_kind(data: Any) -> str:
    """'pandas', 'polars' or 'arrow': the kind of an in-memory table (one-line error otherwise)."""
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


class _Levels:
    """Distinct values of a column and how to encode a chunk of it against them."""

    def __init__(self, values: list, has_missing: bool, encode: Callable[[slice, np.ndarray], np.ndarray]):
        self.values = values
        self.has_missing = has_missing
        # encode(slice, remap): codes of the chunk, via remap[index into values] (-1 = missing)
        self.encode = encode


class MemoryEngine(Engine):
    """Aggregates data that fits in memory. Columns are converted lazily, one at a time."""

    name = "memory"

    def __init__(self, data: Any) -> None:
        self._data = data
        self._kind = frame_kind(data)
        self._series: dict[str, pd.Series] = {}
        self._levels: dict[str, _Levels] = {}

    # -- column access -------------------------------------------------------------------
    def columns(self) -> list[str]:
        if self._kind == "pandas":
            return [str(c) for c in self._data.columns]
        if self._kind == "polars":
            return list(self._data.columns)
        return list(self._data.column_names)

    def n_rows(self) -> int:
        return int(self._data.num_rows if self._kind == "arrow" else self._data.shape[0])

    def fetch(self, columns: list[str]) -> pd.DataFrame:
        for c in columns:
            if c not in self.columns():
                raise base.column_not_found(c, self.columns())
        if self._kind == "pandas":
            return self._data[columns]
        return self._data.select(columns).to_pandas()  # polars and Arrow alike

    def series(self, column: str) -> pd.Series:
        """The column as a pandas Series (converted once and cached)."""
        if column not in self._series:
            if column not in self.columns():
                raise base.column_not_found(column, self.columns())
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

    def _get_levels(self, column: str) -> _Levels:
        if column not in self._levels:
            self._levels[column] = _find_levels(self.series(column))
        return self._levels[column]

    def levels(self, column: str, limit: int) -> tuple[list, bool]:
        lv = self._get_levels(column)
        return lv.values[: limit + 1], lv.has_missing

    def _float_chunk(self, column: str, sl: slice) -> np.ndarray:
        return self.series(column).iloc[sl].to_numpy(dtype=np.float64, na_value=np.nan)

    def _require_numeric(self, column: str, role: str = "tiers and scores") -> None:
        if not self.is_numeric(column):
            raise base.not_numeric_error(column, f"dtype {self.series(column).dtype}", role)

    def quantiles(self, column: str, probs: np.ndarray) -> tuple[np.ndarray, bool]:
        self._require_numeric(column)
        v = self.series(column).to_numpy(dtype=np.float64, na_value=np.nan)
        finite = ~np.isnan(v)
        if not finite.any():
            raise base.no_values_error(column)
        return np.quantile(v[finite] if not finite.all() else v, probs), bool((~finite).any())

    def min_max(self, column: str) -> tuple[float, float, int]:
        self._require_numeric(column)
        lo, hi, bad = np.inf, -np.inf, 0
        for sl in self._chunks():
            v = self._float_chunk(column, sl)
            ok = np.isfinite(v)
            bad += int(len(v) - np.count_nonzero(ok))
            if ok.any():
                vv = v if bad == 0 else v[ok]
                lo, hi = min(lo, float(vv.min())), max(hi, float(vv.max()))
        if lo > hi:
            return float("nan"), float("nan"), bad
        return lo, hi, bad

    def _chunks(self) -> list[slice]:
        n = self.n_rows()
        return [slice(i, min(i + CHUNK_ROWS, n)) for i in range(0, n, CHUNK_ROWS)]

    # -- row-level encoders (chunk -> array) ----------------------------------------------
    def _attribute_encoder(self, attr: Attribute) -> Encoder:
        if attr.kind == "categorical":
            lv = self._get_levels(attr.column)
            if len(lv.values) != len(attr.values):
                raise base.changed_error(attr.column)
            missing = base.missing_code(attr, lv.has_missing)
            # remap[i] = code of value i; remap[-1] (index -1) = code of missing
            remap = np.append(np.arange(len(lv.values), dtype=np.int32), np.int32(missing))
            return lambda sl: lv.encode(sl, remap)
        edges = np.asarray(attr.edges)
        unknown = attr.n_levels - 1

        def tiers(sl: slice) -> np.ndarray:
            v = self._float_chunk(attr.column, sl)
            codes = np.searchsorted(edges, v, side="left").astype(np.int32)
            if attr.has_unknown:
                codes[np.isnan(v)] = unknown
            return codes

        return tiers

    def attribute_codes(self, attr: Attribute) -> np.ndarray:
        """Every row's code of ``attr`` (an index into ``attr.labels``), as one array."""
        enc = self._attribute_encoder(attr)
        return np.concatenate([enc(sl) for sl in self._chunks()] or [np.zeros(0, np.int32)])

    def _label_encoder(self, label: Label) -> Encoder:
        s = self.series(label.column)
        n_missing = int(s.isna().sum())
        if n_missing:
            raise base.label_error(label.column, n_missing)
        if pd.api.types.is_bool_dtype(s) and s.dtype == bool and label.positive is True:
            values = s.to_numpy()
            return lambda sl: values[sl]
        return lambda sl: (s.iloc[sl] == label.positive).to_numpy(dtype=bool)

    def _decision_encoder(self, decision: Decision) -> Encoder:
        """Favourable-decision indicator per chunk."""
        flip = decision.favourable == 0
        if decision.kind == "prediction":
            s = self.series(decision.column)
            n_missing = int(s.isna().sum())
            if n_missing:
                raise base.prediction_error(decision.column, n_missing)
            return lambda sl: (s.iloc[sl] == decision.positive).to_numpy(dtype=bool) ^ flip
        self._require_numeric(decision.column)
        if decision.kind == "threshold":
            t = float(decision.threshold)
            return lambda sl: (self._float_chunk(decision.column, sl) >= t) ^ flip
        score = self.series(decision.column).to_numpy(dtype=np.float64, na_value=np.nan)
        cut, take = _top_k_cut(score, int(decision.k))
        state = {"ties_left": take}

        def budget(sl: slice) -> np.ndarray:
            v = score[sl]
            d = v > cut
            if state["ties_left"] > 0:
                ties = np.flatnonzero(v == cut)[: state["ties_left"]]
                d[ties] = True
                state["ties_left"] -= len(ties)
            return d ^ flip

        return budget

    def decisions(self, decision: Decision) -> np.ndarray:
        enc = self._decision_encoder(decision)
        return np.concatenate([enc(sl) for sl in self._chunks()] or [np.zeros(0, dtype=bool)]).astype(bool)

    def _weight_encoder(self, column: str) -> Encoder:
        self._require_numeric(column, "weights")
        lo, _, bad = self.min_max(column)
        base.weight_errors(column, bad, int((self.series(column) < 0).sum()) if not bad and lo < 0 else 0)
        return lambda sl: self._float_chunk(column, sl)

    # -- the one pass ---------------------------------------------------------------------
    def aggregate(self, groupings: list[Grouping], label: Label | None, decision: Decision,
                  weights: str | None, paired: Decision | None = None) -> Aggregate:
        attrs = base.audited_columns(groupings)
        enc = {c: self._attribute_encoder(a) for c, a in attrs.items()}
        y_enc = self._label_encoder(label) if label else None
        d_enc = self._decision_encoder(decision)
        d2_enc = self._decision_encoder(paired) if paired is not None else None
        w_enc = self._weight_encoder(weights) if weights else None

        sizes = {c: a.n_levels for c, a in attrs.items()}
        order = list(attrs)
        joint = base.fits_jointly([sizes[c] for c in order])
        keyspaces = [order] if joint else [[a.column for a in g.attributes] for g in groupings]
        counters = [_Counter([sizes[c] for c in ks], weighted=w_enc is not None, n_cells=base.cell_count(paired))
                    for ks in keyspaces]
        hasher = DataHasher(hashed_columns(attrs, label, decision, weights, self.is_numeric, paired), label)

        for sl in self._chunks():
            codes = {c: e(sl) for c, e in enc.items()}
            y = y_enc(sl) if y_enc else np.zeros(sl.stop - sl.start, dtype=bool)
            d = d_enc(sl)
            d2 = d2_enc(sl) if d2_enc else None
            w = w_enc(sl) if w_enc else None
            for ks, counter in zip(keyspaces, counters, strict=True):
                counter.add([codes[c] for c in ks], y, d, w, d2)
            bits = {c: v for c, v in ((paired.column if paired else None, d2), (decision.column, d),
                                      (label.column if label else None, y)) if c is not None}
            hasher.update({c: (self.series(c).iloc[sl].to_numpy(dtype=np.float64, na_value=np.nan)
                               if kind == "number" else codes[c] if kind == "codes" else bits[c])
                           for c, kind, _ in hasher.columns})

        if joint:
            stats = [counters[0].marginal(g, order) for g in groupings]
        else:
            stats = [c.marginal(g, ks) for g, ks, c in zip(groupings, keyspaces, counters, strict=True)]
        digest, per_column = hasher.digests(self.n_rows())
        return Aggregate(n_rows=self.n_rows(), stats=stats, data_sha256=digest, data_hash=DEFINITION,
                         column_sha256=per_column)

    def value_aggregate(self, groupings: list[Grouping], value: str, within: list[str], weights: str | None,
                        offered: str | None, cluster: str | None = None) -> ValueAggregate:
        v = base.value_floats(self.series(value), value)
        nan = np.isnan(v)
        w = None
        if weights:
            self._weight_encoder(weights)  # the checks
            w = self.series(weights).to_numpy(dtype=np.float64, na_value=np.nan)
        in_base = None
        if offered:
            in_base = base.offered_flags(self.series(offered), offered)
        strata, names = base.stratum_table([self.series(c) for c in within])
        n_strata = len(names)
        if not within:
            strata = np.zeros(len(v), dtype=np.int64)
        n_clusters = 0
        if cluster:  # clusters nest in strata for counting: (stratum, cluster) is one key
            cl, n_clusters = base.cluster_codes(self.series(cluster), cluster)
            strata = strata * n_clusters + cl
            n_strata *= n_clusters
        valid = ~nan if in_base is None else in_base & ~nan
        audited = None if in_base is None else in_base
        coded = mv.code_values(v[valid])  # one sort of the values, shared by every grouping
        # binned or not: counted over every row with a value, as the SQL engines count it
        binned = (len(coded[0]) if audited is None else len(np.unique(v[~nan]))) > mv.EXACT_VALUES
        if binned:  # too many distinct values to keep: fine bins, each cell at its rows' mean
            coded = np.unique(mv.value_bins(v[valid]), return_inverse=True)
        codes = {c: self.attribute_codes(a) for c, a in base.audited_columns(groupings).items()}
        stats = []
        for g in groupings:
            sizes = [a.n_levels for a in g.attributes]
            key = base.group_keys([codes[a.column] for a in g.attributes], sizes)
            space = int(np.prod(sizes, dtype=np.float64))
            if space <= 1 << 22:
                rows = np.bincount(key, minlength=space)
                in_b = rows if audited is None else np.bincount(key[audited], minlength=space)
                count_key = np.arange(space)
            else:
                count_key, key = np.unique(key, return_inverse=True)
                rows = np.bincount(key, minlength=len(count_key))
                in_b = rows if audited is None else np.bincount(key[audited], minlength=len(count_key))
            miss = np.bincount(key[nan if audited is None else audited & nan], minlength=len(count_key))
            count = mv.binned_cells if binned else mv.value_cells
            cell, cells = count(key[valid] * n_strata + strata[valid], v[valid], None if w is None else w[valid],
                                coded)
            sub = cell % n_strata
            stats.append(base.value_stats(g, count_key, rows, in_b, miss, count_key[cell // n_strata],
                                          sub // n_clusters if cluster else sub, cells.u, cells.n, cells.w, cells.w2,
                                          sub % n_clusters if cluster else None))
        return ValueAggregate(self.n_rows(), names, stats, mv.VALUE_PRECISION if binned else None, n_clusters)


def _find_levels(s: pd.Series) -> _Levels:
    """Sorted distinct values (category order for categoricals) and a chunk encoder.

    For a categorical column every category is a level, observed or not: unobserved ones
    simply produce empty groups, which the counting step leaves out. That keeps this step
    free of a pass over the rows.
    """
    if isinstance(s.dtype, pd.CategoricalDtype):
        cat_codes = s.cat.codes.to_numpy()
        values = list(s.cat.categories)
        has_missing = bool(s.hasnans)

        def enc_cat(sl: slice, remap: np.ndarray) -> np.ndarray:
            c = cat_codes[sl]
            if not has_missing and remap[len(values) - 1] == len(values) - 1:
                return c  # codes are already the level codes
            return remap[c]  # -1 (missing) picks remap[-1]

        return _Levels(values, has_missing, enc_cat)
    if s.dtype == bool:
        arr = s.to_numpy()
        any_true = bool(arr.any())
        values = [v for v, present in ((False, not arr.all()), (True, any_true)) if present]
        pos = {v: i for i, v in enumerate(values)}
        lut = np.array([pos.get(False, -1), pos.get(True, -1)], dtype=np.int64)

        def enc_bool(sl: slice, remap: np.ndarray) -> np.ndarray:
            return remap[lut[arr[sl].view(np.uint8)]]

        return _Levels(values, False, enc_bool)
    uniq = pd.unique(s)
    mask = pd.isna(uniq)
    has_missing = bool(np.asarray(mask).any())
    vals = [v for v, m in zip(uniq, mask, strict=True) if not m]
    try:
        values = sorted(vals)
    except TypeError:  # mixed types that do not compare: sort by their text
        values = sorted(vals, key=str)
    index = pd.Index(values, dtype=object if values and isinstance(values[0], str) else None)

    def enc_any(sl: slice, remap: np.ndarray) -> np.ndarray:
        return remap[index.get_indexer(s.iloc[sl])]

    return _Levels(values, has_missing, enc_any)


def _top_k_cut(score: np.ndarray, k: int) -> tuple[float, int]:
    """The k-th highest score and how many rows *at* it are taken (earliest rows first)."""
    n = len(score)
    k = max(0, min(k, n))
    if k == 0:
        return np.inf, 0
    cut = float(np.partition(score, n - k)[n - k])
    above = int(np.count_nonzero(score > cut))
    return cut, k - above


def top_k_mask(score: np.ndarray, k: int) -> np.ndarray:
    """Mask of the k highest scores; ties at the cut go to earlier rows. O(n), no full sort."""
    cut, take = _top_k_cut(score, k)
    mask = score > cut
    mask[np.flatnonzero(score == cut)[:take]] = True
    return mask


class _Counter:
    """Accumulates rows (and weights) per (key, cell) over chunks; dense or sparse. ``n_cells``
    cells per key: 4 (2y + d), or 8 for a paired second decision (4y + 2a + b)."""

    def __init__(self, sizes: list[int], weighted: bool, n_cells: int = N_CELLS) -> None:
        self.sizes = sizes
        self.n_cells = n_cells
        self.n_keys = int(np.prod(sizes, dtype=np.float64))
        self.dense = base.fits_jointly(sizes)
        self.weighted = weighted
        if self.dense:
            size = self.n_keys * self.n_cells
            self.n = np.zeros(size, dtype=np.int64)
            self.w = np.zeros(size) if weighted else None
            self.w2 = np.zeros(size) if weighted else None
        else:
            self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, codes: list[np.ndarray], y: np.ndarray, d: np.ndarray, w: np.ndarray | None,
            d2: np.ndarray | None = None) -> None:
        cell = codes[0].astype(np.int64)
        for c, size in zip(codes[1:], self.sizes[1:], strict=True):
            cell *= size
            cell += c
        cell *= self.n_cells
        if d2 is None:
            np.add(cell, y, out=cell, casting="unsafe")  # + 2 * y, without a temporary
            np.add(cell, y, out=cell, casting="unsafe")
            np.add(cell, d, out=cell, casting="unsafe")
        else:  # + 4y + 2a + b, one byte per row
            np.add(cell, (y.astype(np.uint8) << 2) | (d.astype(np.uint8) << 1) | d2.astype(np.uint8), out=cell,
                   casting="unsafe")
        if self.dense:
            size = self.n_keys * self.n_cells
            self.n += np.bincount(cell, minlength=size)
            if w is not None:
                self.w += np.bincount(cell, weights=w, minlength=size)
                self.w2 += np.bincount(cell, weights=w * w, minlength=size)
            return
        uniq, inv = np.unique(cell, return_inverse=True)
        part = [uniq, np.bincount(inv)]
        if w is not None:
            part += [np.bincount(inv, weights=w), np.bincount(inv, weights=w * w)]
        self.parts.append(tuple(part))

    def _tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(keys, n, w, w2) for the non-empty keys, each table (K, 4)."""
        if self.dense:
            n = self.n.reshape(-1, self.n_cells)
            keys = np.flatnonzero(n.sum(axis=1) > 0)
            w = None if self.w is None else self.w.reshape(-1, self.n_cells)[keys]
            w2 = None if self.w2 is None else self.w2.reshape(-1, self.n_cells)[keys]
            return keys, n[keys], w, w2
        cells = np.concatenate([p[0] for p in self.parts]) if self.parts else np.zeros(0, np.int64)
        uniq, inv = np.unique(cells, return_inverse=True)
        keys, kinv = np.unique(uniq // self.n_cells, return_inverse=True)
        slot = kinv * self.n_cells + uniq % self.n_cells

        def gather(i: int, dtype: Any) -> np.ndarray:
            vals = np.concatenate([p[i] for p in self.parts]) if self.parts else np.zeros(0)
            per_cell = np.bincount(inv, weights=vals, minlength=len(uniq))
            out = np.zeros(len(keys) * self.n_cells)
            out[slot] = per_cell
            return out.reshape(-1, self.n_cells).astype(dtype)

        n = gather(1, np.int64)
        w = gather(2, float) if self.weighted else None
        w2 = gather(3, float) if self.weighted else None
        return keys, n, w, w2

    def marginal(self, g: Grouping, order: list[str]) -> CellStats:
        """Statistics of grouping ``g``, summing out the key attributes it does not use."""
        keys, n, w, w2 = self._tables()
        codes = np.stack(np.unravel_index(keys, self.sizes), axis=1) if len(keys) else np.zeros(
            (0, len(self.sizes)), dtype=np.int64)
        cols = [order.index(a.column) for a in g.attributes]
        sub = codes[:, cols]
        if len(cols) == len(order) and cols == sorted(cols):
            return CellStats(g, sub, n, w, w2)
        uniq, inv = np.unique(sub, axis=0, return_inverse=True)
        inv = inv.ravel()

        def red(x: np.ndarray | None) -> np.ndarray | None:
            if x is None:
                return None
            out = np.zeros((len(uniq), self.n_cells), dtype=x.dtype)
            np.add.at(out, inv, x)
            return out

        return CellStats(g, uniq, red(n), red(w), red(w2))
