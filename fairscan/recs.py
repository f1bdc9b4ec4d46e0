
"""Audit recommendation lists for disparate exclusion: who is never shown what.

Data flow (as everywhere in fairscan): the sparse impression log ``(user, item, rank)`` is
read once and reduced to small sufficient statistics — per user a row of exposure and slot
counts over the item groups (never a user x item matrix), per user utility values when
held-out truth is given, per user Steck's C_KL when past interactions are given, per catalog
item an exposure count — and every metric, bootstrap replicate and test is computed from
those. The metric conventions are in :mod:`fairscan.metrics.ranking`.

Users and items:

- the audited users are USERS ∪ the users in RECS. Users in USERS without any list are
  counted as excluded from every item group with zero exposure (reported as
  ``users_without_list``); users in RECS missing from USERS (or with a missing group value)
  form the user group ``"unknown"`` — reported, never dropped;
- the catalog is ITEMS ∪ the items in RECS; items missing from ITEMS (or with a missing
  group value) are in the item group ``"unknown"``. ``P(c)`` (for bias ratios) is the share
  of the catalog in c;
- only ranks ``<= k`` count. Missing ids or ranks, ranks that are not positive integers,
  duplicate (user, rank) and duplicate (user, item) pairs (anywhere in RECS) are errors.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairscan.errors import FairscanError, plain, suggest
from fairscan.formatting import jsonable
from fairscan.groups import match_group
from fairscan.metrics import ranking
from fairscan.metrics.stats import (
    benjamini_hochberg,
    percentile_interval,
    two_proportion_test,
    wilson,
)
from fairscan.policy import FOUR_FIFTHS, AuditPolicy, Gap, Tolerance, four_fifths_flags, judge
from fairscan.privacy import CountTable, suppress
from fairscan.schemas import SCHEMA_VERSION
from fairscan.tracking import LogsToMlflow

__all__ = [
    "TOLERANCES", "UNKNOWN", "UTILITY_METRICS", "RecsAuditResult", "RecsStats", "analyse_recs",
    "audit_recs", "build_stats",
]

UNKNOWN = "unknown"
#: the judged gaps: inclusion ratio (four-fifths rule) per item group, and the ndcg ratio
TOLERANCES: dict[str, Tolerance] = {"inclusion_rate": Tolerance("ratio", FOUR_FIFTHS),
                                    "ndcg": Tolerance("ratio", FOUR_FIFTHS)}
UTILITY_METRICS = ("ndcg", "recall", "precision", "hit_rate")
#: a (users x max rank) matrix is used to check duplicates when it has at most this many cells
_DENSE_CELLS = 64_000_000


# ----------------------------------------------------------------------------- result


@dataclass
class RecsAuditResult(LogsToMlflow):
    """What a recommendation audit found: aggregates only, JSON-serialisable.

    ``exclusion``: per (user group, item group) the users, how many were never shown the item
    group in their top k, the rate with intervals, and the inclusion ratio to the reference.
    ``exposure``: per (user group, item group) the position-weighted exposure share with its
    interval, the exposure distribution, and the bias ratio (and bias disparity with PAST).
    ``utility``: per (user group, metric@k) the mean over users with a relevant item.
    ``calibration``: per user group the mean Steck C_KL. ``items``: per item group the
    catalog size, coverage and exposure. ``gaps``: every group against the reference.
    ``findings``: verdicts (pass / fail / insufficient) with plain-language messages.
    """

    exclusion: pd.DataFrame
    exposure: pd.DataFrame
    utility: pd.DataFrame
    calibration: pd.DataFrame
    items: pd.DataFrame
    gaps: pd.DataFrame
    findings: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> pd.DataFrame:
        """The findings whose verdict is ``fail``."""
        return self.findings[self.findings["verdict"] == "fail"]

    def verdict_counts(self) -> dict[str, int]:
        """How many findings are pass / fail / insufficient."""
        vc = self.findings["verdict"].value_counts()
        return {v: int(vc.get(v, 0)) for v in ("fail", "insufficient", "pass")}

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure (keys ``exclusion``, ``exposure``, ``utility``, ``gaps``... as
        documented in the module and in ``audit_recs``)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "recommendations",
            **{k: jsonable(v) for k, v in self.meta.items()},
            "exclusion": _records(self.exclusion, {"rate_ci": "rate_ci", "rate_ci_wilson": "rate_ci_wilson"}),
            "exposure": _records(self.exposure, {"share_ci": "share_ci", "bias_ratio_ci": "bias_ratio_ci"}),
            "utility": _records(self.utility, {"ci": "ci"}),
            "calibration": _records(self.calibration, {"ci": "ci"}),
            "items": _records(self.items, {}),
            "gaps": _records(self.gaps, {"difference_ci": "difference_ci", "ratio_ci": "ratio_ci"}),
            "findings": _records(self.findings, {}),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The result as a JSON string (NaN written as null)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_markdown(self, title: str = "fairscan recommendation audit") -> str:
        """A Markdown report: verdicts, then the exclusion and exposure heatmaps, utility,
        calibration, item side and method. User-supplied names are escaped."""
        from fairscan.report.recs import render_recs_markdown

        return render_recs_markdown(self, title)

    def to_html(self, title: str = "fairscan recommendation audit") -> str:
        """A self-contained HTML report (no scripts, strict CSP) of the same content."""
        from fairscan.report.recs import render_recs_html

        return render_recs_html(self, title)


def _records(df: pd.DataFrame, pairs: dict[str, str]) -> list[dict[str, Any]]:
    """Rows as JSON objects; ``X_low``/``X_high`` columns folded into ``X: [low, high]``."""
    out = []
    folded = {f"{p}_low" for p in pairs} | {f"{p}_high" for p in pairs}
    for row in df.to_dict("records"):
        obj = {k: jsonable(v) for k, v in row.items() if k not in folded}
        for p, key in pairs.items():
            obj[key] = [jsonable(row.get(f"{p}_low")), jsonable(row.get(f"{p}_high"))]
        out.append(obj)
    return out


# ----------------------------------------------------------------------------- inputs


def _frame(data: Any, role: str, columns: list[str], ids: list[str]) -> pd.DataFrame:
    """A pandas frame for one input: a DataFrame (Arrow/polars via to_pandas), a CSV/Parquet
    file, or — through DuckDB or Spark, which send only the needed columns — a glob, a
    directory or list of files, a DuckDB relation or a Spark DataFrame."""
    module = type(data).__module__.split(".")[0]
    if isinstance(data, str | os.PathLike) and not any(ch in str(data) for ch in "*?[") \
            and not os.path.isdir(data):
        from fairscan.io import read_table

        return read_table(data, categorical=ids) if not columns else read_table(
            data, columns=columns, categorical=ids)
    if isinstance(data, str | os.PathLike | list | tuple) or module in ("duckdb", "_duckdb", "pyspark"):
        from fairscan.engines.choose import make_engine

        engine = make_engine(data)
        try:
            return engine.fetch(columns or engine.columns())
        except FairscanError as e:
            raise FairscanError(f"{role}: {e}") from None
    if isinstance(data, pd.DataFrame):
        df = data
    elif hasattr(data, "to_pandas"):
        df = data.to_pandas()
    else:
        raise FairscanError(f"{role}: give a pandas DataFrame or a CSV/Parquet path, got {type(data).__name__}")
    for c in columns:
        if c not in df.columns:
            raise FairscanError(f"{role} has no column '{c}'{suggest(c, [str(x) for x in df.columns])}")
    return df


def _no_missing(df: pd.DataFrame, col: str, role: str) -> None:
    bad = int(df[col].isna().sum())
    if bad:
        raise FairscanError(
            f"{role} column '{col}' has {bad:,} missing value(s); every row needs a {col} — fix or remove those rows")


def _unique(values: pd.Series, role: str, col: str) -> pd.Index:
    idx = pd.Index(values)
    if not idx.is_unique:
        dup = idx[idx.duplicated()]
        raise FairscanError(
            f"{role} has {len(dup):,} duplicate '{col}' value(s), e.g. {plain(dup[0])}; give one row per {col}")
    return idx


def _lookup(values: pd.Series, known: pd.Index) -> np.ndarray:
    """Positions of ``values`` in ``known`` (-1 when absent), fast for categoricals and
    compact integer ids."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        m = _lookup(pd.Series(values.cat.categories), known)
        return m[values.cat.codes.to_numpy()]
    arr = values.to_numpy()
    kv = known.to_numpy()
    if len(kv) and len(arr) and arr.dtype.kind in "iu" and kv.dtype.kind in "iu":
        lo = int(min(kv.min(), arr.min()))
        hi = int(max(kv.max(), arr.max()))
        if hi - lo <= max(4 * (len(kv) + len(arr)), 1 << 20) and hi - lo < (1 << 28):
            lut = np.full(hi - lo + 1, -1, dtype=np.int64)
            lut[kv.astype(np.int64) - lo] = np.arange(len(kv))
            return lut[arr.astype(np.int64) - lo]
    return np.asarray(known.get_indexer(arr), dtype=np.int64)


def _encode(values: pd.Series, known: pd.Index, extra: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """Codes of ``values`` in ``known`` followed by ``extra`` labels; values in neither are
    appended to ``extra`` (returned)."""
    codes = _lookup(values, known)
    miss = codes < 0
    if miss.any():
        ext = pd.Index(extra) if extra else pd.Index([])
        sub = values[miss].astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values[miss]
        pos = np.asarray(ext.get_indexer(sub.to_numpy()), dtype=np.int64) if len(ext) else np.full(int(miss.sum()), -1)
        new = pos < 0
        if new.any():
            try:
                inv, uniq = pd.factorize(sub.to_numpy()[new], sort=True)
            except TypeError:  # ids of mixed types: first-seen order
                inv, uniq = pd.factorize(sub.to_numpy()[new])
            pos[new] = len(extra) + inv
            extra = [*extra, *list(uniq)]
        codes[miss] = len(known) + pos
    return codes, extra


def _by_id(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """Rows in ``col`` order (stable; text order when ids of mixed types cannot be compared)."""
    try:
        return df.sort_values(col, kind="stable")
    except TypeError:
        return df.sort_values(col, kind="stable", key=lambda s: s.astype(str))


def _group_labels(values: pd.Series) -> tuple[np.ndarray, list[str], int]:
    """Group codes (missing -> 'unknown'), their labels as text (sorted, 'unknown' last)
    and how many were missing."""
    codes, uniq = pd.factorize(values, use_na_sentinel=True)
    text = [str(v) for v in uniq]
    labels = sorted(set(text) - {UNKNOWN})
    n_missing = int((codes < 0).sum())
    if n_missing or UNKNOWN in text:
        labels.append(UNKNOWN)
    pos = {v: i for i, v in enumerate(labels)}
    lut = np.array([pos[t] for t in text] + [pos.get(UNKNOWN, 0)], dtype=np.int64)
    return lut[codes], labels, n_missing


def _ranks(values: pd.Series, col: str) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        raise FairscanError(f"RECS rank column '{col}' is not numeric; ranks must be whole numbers 1, 2, 3, ...")
    arr = values.to_numpy()
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.floor(arr))
        if bad.any():
            raise FairscanError(
                f"RECS rank column '{col}' has {int(bad.sum()):,} value(s) that are not whole numbers, "
                f"e.g. {plain(arr[bad][0])}; ranks must be 1, 2, 3, ...")
    arr = arr.astype(np.int64)
    if len(arr) and arr.min() < 1:
        raise FairscanError(
            f"RECS rank column '{col}' has {int((arr < 1).sum()):,} rank(s) below 1, e.g. {int(arr.min())}; "
            "rank 1 is the top of the list")
    return arr


def _duplicate_error(what: str, users: pd.Series, second: pd.Series, first_col: str, second_col: str) -> FairscanError:
    df = pd.DataFrame({"u": users.to_numpy(), "x": second.to_numpy()})
    d = df[df.duplicated(keep=False)]
    n = int(df.duplicated().sum())
    ex = d.iloc[0] if len(d) else None
    eg = f", e.g. {first_col} {plain(ex['u'])} {second_col} {plain(ex['x'])}" if ex is not None else ""
    return FairscanError(
        f"RECS has {n:,} duplicate ({first_col}, {second_col}) pair(s){eg}; {what}")


# ----------------------------------------------------------------------------- statistics


@dataclass
class RecsStats:
    """The sufficient statistics of a recommendation audit (no impression row inside).

    Per user (``n_users`` rows, small width): group code, whether they have a list,
    position-weighted exposure share and slot counts per item group, utility values and
    C_KL. Per catalog item: group and exposure count. Per (user group, item group): past
    interaction weight (for BS).
    """

    user_labels: list[str]
    item_labels: list[str]
    ug: np.ndarray  # (U,) user group code
    has_list: np.ndarray  # (U,) bool
    expo: np.ndarray  # (U, C) exposure share per item group
    slots: np.ndarray  # (U, C) number of top-k slots per item group
    n_relevant: np.ndarray | None  # (U,)
    util: dict[str, np.ndarray] | None  # metric -> (U,) (NaN without relevant items)
    ckl: np.ndarray | None  # (U,) (NaN without history or list)
    item_group: np.ndarray  # (I,) item group code per catalog item
    item_exposures: np.ndarray  # (I,) top-k impressions per catalog item
    past: np.ndarray | None  # (G, C) past interaction weight
    k: int
    weights: np.ndarray  # (k,) position weights
    notes: list[str]
    counts: dict[str, int]


def build_stats(
    recs: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame, *, user_group: str, item_group: str,
    k: int, truth: pd.DataFrame | None, interactions: pd.DataFrame | None, user_col: str, item_col: str,
    rank_col: str, discount: ranking.Discount,
) -> RecsStats:
    """One pass over the inputs to :class:`RecsStats` (see the module docstring)."""
    notes: list[str] = []
    for col in (user_col, item_col, rank_col):
        _no_missing(recs, col, "RECS")
    _no_missing(users, user_col, "USERS")
    _no_missing(items, item_col, "ITEMS")
    if len(recs) == 0:
        raise FairscanError("RECS has no rows")

    # users: USERS first, then RECS users missing from USERS ("unknown" group); each in id
    # order, so that the bootstrap (which resamples users) does not depend on row order
    users = _by_id(users, user_col)
    known_u = _unique(users[user_col], "USERS", user_col)
    ug_known, user_labels, miss_ug = _group_labels(users[user_group])
    u_code, extra_u = _encode(recs[user_col], known_u, [])
    n_users = len(known_u) + len(extra_u)
    if extra_u and UNKNOWN not in user_labels:
        user_labels.append(UNKNOWN)
    ug = np.concatenate([ug_known, np.full(len(extra_u), user_labels.index(UNKNOWN) if extra_u else 0,
                                           dtype=np.int64)])
    if miss_ug:
        notes.append(f"{miss_ug:,} user(s) in USERS have no '{user_group}' value: user group '{UNKNOWN}'")
    if extra_u:
        notes.append(f"{len(extra_u):,} user(s) in RECS are not in USERS: user group '{UNKNOWN}'"
                     + (" (no RECS user is in USERS: do the id types match?)" if len(known_u) and
                        (u_code < len(known_u)).sum() == 0 else ""))

    # items: ITEMS first, then RECS items missing from ITEMS ("unknown" group)
    known_i = _unique(items[item_col], "ITEMS", item_col)
    ig_known, item_labels, miss_ig = _group_labels(items[item_group])
    i_code, extra_i = _encode(recs[item_col], known_i, [])
    if miss_ig:
        notes.append(f"{miss_ig:,} item(s) in ITEMS have no '{item_group}' value: item group '{UNKNOWN}'")
    if extra_i:
        notes.append(f"{len(extra_i):,} item(s) in RECS are not in ITEMS: item group '{UNKNOWN}'")

    # past interactions may bring more unknown items; they need the label, not the catalog
    past_df = None
    if interactions is not None:
        past_df = interactions
        for col in (user_col, item_col):
            _no_missing(past_df, col, "PAST")
        if (_user_codes(past_df[item_col], known_i, extra_i) < 0).any() and UNKNOWN not in item_labels:
            item_labels.append(UNKNOWN)
    if extra_i and UNKNOWN not in item_labels:
        item_labels.append(UNKNOWN)
    n_items = len(known_i) + len(extra_i)
    item_grp = np.concatenate([ig_known, np.full(len(extra_i), item_labels.index(UNKNOWN) if extra_i else 0,
                                                 dtype=np.int64)])
    n_cat = len(item_labels)

    # the top-k matrix: users x k item codes (-1 = empty), duplicates checked on all rows
    rank = _ranks(recs[rank_col], rank_col)
    max_rank = int(rank.max())
    width = max(max_rank, k)
    cdtype = np.int32 if n_items < 2**31 - 1 else np.int64
    if n_users * width <= _DENSE_CELLS:
        mat = np.full((n_users, width), -1, dtype=cdtype)
        mat.ravel()[u_code * width + (rank - 1)] = i_code
        if int((mat >= 0).sum()) != len(recs):
            raise _duplicate_error("each user's list must have one item per rank", recs[user_col],
                                   recs[rank_col], user_col, rank_col)
        srt = np.sort(mat, axis=1)
        if ((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)).any():
            raise _duplicate_error("an item may appear once in a user's list", recs[user_col],
                                   recs[item_col], user_col, item_col)
        del srt
        top = mat[:, :k]
    else:
        pair = pd.DataFrame({"u": u_code, "r": rank})
        if pair.duplicated().any():
            raise _duplicate_error("each user's list must have one item per rank", recs[user_col],
                                   recs[rank_col], user_col, rank_col)
        pair = pd.DataFrame({"u": u_code, "i": i_code})
        if pair.duplicated().any():
            raise _duplicate_error("an item may appear once in a user's list", recs[user_col],
                                   recs[item_col], user_col, item_col)
        keep = rank <= k
        top = np.full((n_users, k), -1, dtype=cdtype)
        top.ravel()[u_code[keep] * k + (rank[keep] - 1)] = i_code[keep]
    has_list = np.zeros(n_users, dtype=bool)
    has_list[u_code] = True

    # per-user exposure and slot counts per item group
    v = ranking.discount_weights(k, discount)
    filled = top >= 0
    slot_group = np.where(filled, item_grp[np.where(filled, top, 0)], n_cat)
    idx = (np.arange(n_users, dtype=np.int64)[:, None] * (n_cat + 1) + slot_group).ravel()
    cells = n_users * (n_cat + 1)
    slots = np.bincount(idx, minlength=cells).reshape(n_users, n_cat + 1)[:, :n_cat]
    expo = np.bincount(idx, weights=np.tile(v, n_users), minlength=cells).reshape(n_users, n_cat + 1)[:, :n_cat]
    del idx
    expo /= v.sum()
    item_exposures = np.bincount(top[filled], minlength=n_items)
    counts = {
        "users_without_list": int((~has_list[: len(known_u)]).sum()),
        "users_not_in_users_table": len(extra_u),
        "items_not_in_items_table": len(extra_i),
        "users_short_list": int((filled.sum(axis=1) < k)[has_list].sum()),
    }

    # utility from held-out truth
    n_rel = util = None
    if truth is not None:
        n_rel, util = _utility(truth, known_u, extra_u, known_i, extra_i, top, filled, n_users, n_items, k,
                               user_col, item_col, notes)

    # calibration and bias source from past interactions
    ckl = past = None
    if past_df is not None:
        ckl, past = _calibration(past_df, known_u, extra_u, known_i, extra_i, item_grp, item_labels, ug,
                                 expo, len(user_labels), user_col, item_col, notes)
    return RecsStats(user_labels, item_labels, ug, has_list, expo, slots, n_rel, util, ckl, item_grp,
                     item_exposures, past, k, v, notes, counts)


def _user_codes(values: pd.Series, known_u: pd.Index, extra_u: list[Any]) -> np.ndarray:
    """Codes of users in the audited population, -1 for users outside it."""
    codes = _lookup(values, known_u)
    miss = codes < 0
    if miss.any() and extra_u:
        sub = values[miss]
        if isinstance(sub.dtype, pd.CategoricalDtype):
            sub = sub.astype(object)
        pos = np.asarray(pd.Index(extra_u).get_indexer(sub.to_numpy()), dtype=np.int64)
        codes[miss] = np.where(pos >= 0, len(known_u) + pos, -1)
    return codes


def _utility(truth: pd.DataFrame, known_u: pd.Index, extra_u: list[Any], known_i: pd.Index,
             extra_i: list[Any], top: np.ndarray, filled: np.ndarray, n_users: int, n_items: int, k: int,
             user_col: str, item_col: str, notes: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    for col in (user_col, item_col):
        _no_missing(truth, col, "TRUTH")
    t = truth
    if "relevance" in t.columns:
        rel = pd.to_numeric(t["relevance"], errors="coerce")
        if rel.isna().any():
            raise FairscanError(f"TRUTH column 'relevance' has {int(rel.isna().sum()):,} missing or non-numeric "
                                "value(s); give a number (> 0 means relevant)")
        t = t[(rel > 0).to_numpy()]
    tu = _user_codes(t[user_col], known_u, extra_u)
    outside = tu < 0
    if outside.any():
        notes.append(f"{int(outside.sum()):,} TRUTH row(s) are for users neither in USERS nor in RECS; "
                     "they are not part of the audited population and are not used")
    tu = tu[~outside]
    # items outside the catalog can never be hits, but count as relevant: code them after it
    ti, _ = _encode(t[item_col][~outside], known_i, list(extra_i))
    # relevant items per user, duplicates collapsed (repeat purchases are one relevant item)
    n_all = int(ti.max()) + 1 if len(ti) else 1
    key = np.sort(tu * np.int64(n_all) + ti)
    first = np.concatenate([[True], key[1:] != key[:-1]]) if len(key) else np.zeros(0, dtype=bool)
    if not first.all():
        notes.append(f"{int((~first).sum()):,} duplicate (user, item) row(s) in TRUTH counted once")
    key = key[first]
    tu, ti = key // n_all, key % n_all
    n_rel = np.bincount(tu, minlength=n_users)
    # hits: for each relevant (user, item) in the catalog, where it sits in the user's top k
    hits = np.zeros(top.shape, dtype=bool)
    in_cat = ti < n_items
    tu, ti = tu[in_cat], ti[in_cat]
    step = max(1, 4_000_000 // max(k, 1))
    for start in range(0, len(tu), step):
        u, i = tu[start:start + step], ti[start:start + step]
        r, c = np.nonzero(top[u] == i[:, None])
        hits[u[r], c] = True
    return n_rel, ranking.user_utilities(hits, n_rel, k)


def _calibration(past: pd.DataFrame, known_u: pd.Index, extra_u: list[Any], known_i: pd.Index,
                 extra_i: list[Any], item_grp: np.ndarray, item_labels: list[str], ug: np.ndarray,
                 expo: np.ndarray, n_groups: int, user_col: str, item_col: str,
                 notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    n_users, n_cat = expo.shape
    if "weight" in past.columns:
        w = pd.to_numeric(past["weight"], errors="coerce").to_numpy(dtype=float)
        if (~np.isfinite(w)).any() or (w < 0).any():
            raise FairscanError("PAST column 'weight' has missing, negative or non-numeric values; "
                                "give non-negative numbers")
    else:
        w = np.ones(len(past))
    pu = _user_codes(past[user_col], known_u, extra_u)
    pi = _user_codes(past[item_col], known_i, extra_i)
    pg = np.where(pi >= 0, item_grp[np.maximum(pi, 0)], item_labels.index(UNKNOWN) if UNKNOWN in item_labels else 0)
    outside = pu < 0
    if outside.any():
        notes.append(f"{int(outside.sum()):,} PAST row(s) are for users neither in USERS nor in RECS; not used")
    pu, pg, w = pu[~outside], pg[~outside], w[~outside]
    hist = np.bincount(pu * n_cat + pg, weights=w, minlength=n_users * n_cat).reshape(n_users, n_cat)
    htot = hist.sum(axis=1)
    etot = expo.sum(axis=1)
    ok = (htot > 0) & (etot > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = hist / np.where(htot > 0, htot, 1)[:, None]
        q = expo / np.where(etot > 0, etot, 1)[:, None]
    ckl = np.where(ok, ranking.steck_ckl(p, q), np.nan)
    no_list = int(((htot > 0) & (etot == 0)).sum())
    if no_list:
        notes.append(f"{no_list:,} user(s) with past interactions have nothing in their top k: no C_KL for them")
    group_past = np.stack([np.bincount(ug, weights=hist[:, c], minlength=n_groups) for c in range(n_cat)], axis=1)
    return ckl, group_past


# ----------------------------------------------------------------------------- the audit


def audit_recs(
    recs: Any,
    users: Any,
    items: Any,
    *,
    user_group: str,
    item_group: str,
    k: int = 10,
    truth: Any = None,
    interactions: Any = None,
    user_col: str = "user",
    item_col: str = "item",
    rank_col: str = "rank",
    reference: str | None = None,
    discount: str | Callable[[np.ndarray], np.ndarray] = "log",
    n_boot: int = 1000,
    seed: int = 0,
    min_group_size: int = 30,
    suppress_below: int = 10,
    confidence: float = 0.95,
    alpha: float = 0.05,
    progress: Callable[[float, str], None] | None = None,
) -> RecsAuditResult:
    """Audit top-``k`` recommendation lists for disparate exclusion across user groups.

    ``recs``: long table ``user, item, rank`` (1 = top; a ``score`` column is ignored);
    ``users``: ``user -> user_group``; ``items``: ``item -> item_group``; optional ``truth``
    (``user, item[, relevance]``: held-out relevant items, relevance > 0) and
    ``progress(fraction, text)`` is called as the work advances (reading, counting, statistics).
    ``interactions`` (``user, item[, weight]``: past interactions, for Steck's calibration
    and the bias source BS). Each may be a DataFrame, a CSV/Parquet file, glob or directory
    (several files are read through DuckDB, which sends only the needed columns), a DuckDB
    relation or a Spark DataFrame.

    Per (user group, item group): exclusion rate (never shown c in the top k) with the
    inclusion ratio to ``reference`` (default: the largest group, not 'unknown') under the
    four-fifths rule, Fisher/z test and Benjamini-Hochberg; position-weighted exposure share
    (``discount`` 'log', 'none' or a callable), its total-variation and KL divergence from
    the reference, bias ratio / disparity. Per user group: ndcg/recall/precision/hit_rate@k,
    mean C_KL. Item side: coverage, Gini, aggregate diversity. Intervals: bootstrap over
    users within groups (``n_boot`` replicates, ``seed``); verdicts (inclusion ratio and
    ndcg ratio, tolerance 0.8) as in :func:`fairscan.audit`: groups under ``min_group_size``
    users are 'insufficient', under ``suppress_below`` suppressed (null values).
    """
    for val, name in ((n_boot, "n_boot"), (min_group_size, "min_group_size"), (suppress_below, "suppress_below"),
                      (seed, "seed")):
        if isinstance(val, bool) or not isinstance(val, int | np.integer) or val < 0:
            raise FairscanError(f"{name} must be a whole number >= 0, got {plain(val)}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise FairscanError(f"k must be a whole number >= 1, got {plain(k)}")
    k = int(k)
    if not 0 < confidence < 1 or not 0 < alpha < 1:
        raise FairscanError("confidence and alpha must be between 0 and 1")
    try:
        ranking.discount_weights(k, discount)  # type: ignore[arg-type]
    except ValueError as e:
        raise FairscanError(str(e)) from None

    note = progress or (lambda fraction, text: None)
    note(0.0, "reading the lists, users and items")
    recs_df = _frame(recs, "RECS", [user_col, item_col, rank_col], [user_col, item_col])
    users_df = _frame(users, "USERS", [user_col, user_group], [user_col])
    items_df = _frame(items, "ITEMS", [item_col, item_group], [item_col])
    truth_df = None if truth is None else _frame(truth, "TRUTH", [], [])
    past_df = None if interactions is None else _frame(interactions, "PAST", [], [])
    for df, role in ((truth_df, "TRUTH"), (past_df, "PAST")):
        if df is not None:
            for c in (user_col, item_col):
                if c not in df.columns:
                    raise FairscanError(f"{role} has no column '{c}'{suggest(c, [str(x) for x in df.columns])}")

    note(0.2, "counting exposure, exclusion and usefulness per group")
    st = build_stats(recs_df, users_df, items_df, user_group=user_group, item_group=item_group, k=k,
                     truth=truth_df, interactions=past_df, user_col=user_col, item_col=item_col,
                     rank_col=rank_col, discount=discount)  # type: ignore[arg-type]
    s = AuditPolicy(TOLERANCES, min_group_size, suppress_below, n_boot, seed, confidence, alpha)
    note(0.6, "intervals, tests and verdicts")
    result = analyse_recs(st, s, reference, discount_name=ranking.discount_name(discount),  # type: ignore[arg-type]
                          columns={"user_group": user_group, "item_group": item_group})
    note(1.0, "done")
    return result


def _interval(reps: np.ndarray, s: AuditPolicy) -> tuple[np.ndarray, np.ndarray]:
    if reps.shape[0] == 0:
        nan = np.full(reps.shape[1:], np.nan)
        return nan, nan.copy()
    return percentile_interval(reps, s.confidence)


def analyse_recs(st: RecsStats, s: AuditPolicy, reference: str | None, *, discount_name: str,
                 columns: dict[str, str]) -> RecsAuditResult:
    """Tables, gaps and findings from the sufficient statistics."""
    rng = np.random.default_rng(s.seed)
    G, C = len(st.user_labels), len(st.item_labels)
    k = st.k
    n_g = np.bincount(st.ug, minlength=G)
    # primary suppression, then complementary: the groups add up to the published user count
    if reference is not None:
        reference = match_group(reference, st.user_labels, what="reference user group")
    users = CountTable(("user_group",), [(lab,) for lab in st.user_labels], n_g,
                       st.user_labels.index(reference) if reference in st.user_labels else None)
    suppressed, complementary = suppress([users], s.suppress_below)[0]
    primary = suppressed & ~complementary
    suppression = np.where(complementary, "complementary", np.where(suppressed, "primary", None)).astype(object)
    ref = _reference(st.user_labels, n_g, suppressed, reference, s)
    ulab, ilab = st.user_labels, st.item_labels

    # ---- exclusion: a binomial count per (g, c)
    shown = np.stack([np.bincount(st.ug, weights=(st.slots[:, c] > 0), minlength=G) for c in range(C)], axis=1)
    excluded = n_g[:, None] - shown
    n_gc = np.broadcast_to(n_g[:, None], (G, C))
    with np.errstate(invalid="ignore", divide="ignore"):
        excl = np.where(n_gc > 0, excluded / np.maximum(n_gc, 1), np.nan)
    excl[suppressed] = np.nan
    excl_reps = ranking.binomial_bootstrap(excluded, n_gc, s.n_boot, rng)
    excl_reps[:, suppressed] = np.nan
    e_lo, e_hi = _interval(excl_reps, s)
    w_lo, w_hi = wilson(excl, n_gc.astype(float), s.confidence)
    incl = 1 - excl
    with np.errstate(invalid="ignore", divide="ignore"):
        incl_ratio = np.where(incl[ref] > 0, incl / incl[ref], np.nan)
    exclusion = pd.DataFrame({
        "user_group": np.repeat(ulab, C),
        "item_group": np.tile(ilab, G),
        "users": pd.array(np.where(np.repeat(suppressed, C), None, n_gc.ravel()), dtype="Int64"),
        "excluded": pd.array(np.where(np.repeat(suppressed, C), None, excluded.ravel()), dtype="Int64"),
        "rate": excl.ravel(),
        "rate_ci_low": e_lo.ravel(),
        "rate_ci_high": e_hi.ravel(),
        "rate_ci_wilson_low": w_lo.ravel(),
        "rate_ci_wilson_high": w_hi.ravel(),
        "inclusion_ratio": incl_ratio.ravel(),
        "four_fifths": pd.array(four_fifths_flags(incl_ratio), dtype="boolean"),
        "reference": np.repeat(np.arange(G) == ref, C),
        "suppressed": np.repeat(suppressed, C),
        "suppression": np.repeat(suppression, C),
    })

    # ---- user-level means: exposure, slot shares, utility, calibration; bootstrap jointly
    cols: list[np.ndarray] = [st.expo, st.slots.astype(float), st.slots.sum(axis=1, keepdims=True).astype(float)]
    off_util = off_ckl = None
    if st.util is not None:
        has_rel = (st.n_relevant > 0).astype(float)
        off_util = sum(c.shape[1] for c in cols)
        cols.append(has_rel[:, None])
        cols.append(np.stack([np.nan_to_num(st.util[m]) * has_rel for m in UTILITY_METRICS], axis=1))
    if st.ckl is not None:
        has_ckl = np.isfinite(st.ckl).astype(float)
        off_ckl = sum(c.shape[1] for c in cols)
        cols.append(np.stack([has_ckl, np.nan_to_num(st.ckl) * has_ckl], axis=1))
    values = np.concatenate(cols, axis=1)
    order = np.argsort(st.ug, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(n_g)])
    B = s.n_boot
    means = np.full((G, values.shape[1]), np.nan)
    reps = np.full((B, G, values.shape[1]), np.nan)
    methods = set()
    for g in range(G):
        if suppressed[g] or n_g[g] == 0:
            continue
        vg = values[order[bounds[g]:bounds[g + 1]]]
        means[g] = vg.mean(axis=0)
        r, how = ranking.resample_means(vg, B, rng)
        reps[:, g] = r
        methods.add(how)

    def exposure_parts(m: np.ndarray) -> dict[str, np.ndarray]:
        share = m[..., :C]
        with np.errstate(invalid="ignore", divide="ignore"):
            slot_share = m[..., C:2 * C] / m[..., 2 * C:2 * C + 1]
        return {"share": share, "slot_share": slot_share}

    pt, rp = exposure_parts(means), exposure_parts(reps)
    catalog = np.bincount(st.item_group, minlength=C).astype(float)
    cat_share = catalog / catalog.sum() if catalog.sum() else np.full(C, np.nan)
    br, br_reps = ranking.bias_ratio(pt["slot_share"], cat_share), ranking.bias_ratio(rp["slot_share"], cat_share)
    s_lo, s_hi = _interval(rp["share"], s)
    b_lo, b_hi = _interval(br_reps, s)
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = pt["share"] / pt["share"].sum(axis=1, keepdims=True)
    if st.past is not None:
        ptot = st.past.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            bs = ranking.bias_ratio(np.where(ptot > 0, st.past / np.where(ptot > 0, ptot, 1), np.nan), cat_share)
        bs[suppressed] = np.nan
        bd = ranking.bias_disparity(br, bs)
    else:
        bs = bd = np.full((G, C), np.nan)
    exposure = pd.DataFrame({
        "user_group": np.repeat(ulab, C),
        "item_group": np.tile(ilab, G),
        "users": pd.array(np.where(np.repeat(suppressed, C), None, np.repeat(n_g, C)), dtype="Int64"),
        "share": pt["share"].ravel(),
        "share_ci_low": s_lo.ravel(),
        "share_ci_high": s_hi.ravel(),
        "distribution": dist.ravel(),
        "slot_share": pt["slot_share"].ravel(),
        "catalog_share": np.tile(cat_share, G),
        "bias_ratio": br.ravel(),
        "bias_ratio_ci_low": b_lo.ravel(),
        "bias_ratio_ci_high": b_hi.ravel(),
        "bias_source": bs.ravel(),
        "bias_disparity": bd.ravel(),
        "reference": np.repeat(np.arange(G) == ref, C),
        "suppressed": np.repeat(suppressed, C),
        "suppression": np.repeat(suppression, C),
    })

    # ---- utility
    util_rows = []
    util_pt = util_rp = None
    n_rel_g = None
    if off_util is not None:
        n_rel_g = np.rint(means[:, off_util] * n_g).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            util_pt = means[:, off_util + 1: off_util + 5] / means[:, [off_util]]
            util_rp = reps[..., off_util + 1: off_util + 5] / reps[..., [off_util]]
        small = ~(n_rel_g >= s.suppress_below)
        util_pt[small] = np.nan
        util_rp[:, small] = np.nan
        u_lo, u_hi = _interval(util_rp, s)
        for g in range(G):
            for j, m in enumerate(UTILITY_METRICS):
                util_rows.append({
                    "user_group": ulab[g], "metric": f"{m}@{k}", "value": util_pt[g, j],
                    "ci_low": u_lo[g, j], "ci_high": u_hi[g, j],
                    "users": None if suppressed[g] else int(n_rel_g[g]) if np.isfinite(n_rel_g[g]) else 0,
                    "reference": g == ref, "suppressed": bool(small[g]),
                })
    utility = pd.DataFrame(util_rows, columns=["user_group", "metric", "value", "ci_low", "ci_high", "users",
                                               "reference", "suppressed"])
    utility["users"] = utility["users"].astype("Int64")

    # ---- calibration
    cal_rows = []
    ckl_pt = ckl_rp = n_ckl_g = None
    if off_ckl is not None:
        n_ckl_g = np.rint(means[:, off_ckl] * n_g)
        with np.errstate(invalid="ignore", divide="ignore"):
            ckl_pt = means[:, off_ckl + 1] / means[:, off_ckl]
            ckl_rp = reps[..., off_ckl + 1] / reps[..., off_ckl]
        small = ~(n_ckl_g >= s.suppress_below)
        ckl_pt[small] = np.nan
        ckl_rp[:, small] = np.nan
        c_lo, c_hi = _interval(ckl_rp, s)
        for g in range(G):
            cal_rows.append({"user_group": ulab[g], "c_kl": ckl_pt[g], "ci_low": c_lo[g], "ci_high": c_hi[g],
                             "users": None if suppressed[g] else int(n_ckl_g[g]) if np.isfinite(n_ckl_g[g]) else 0,
                             "reference": g == ref, "suppressed": bool(small[g])})
    calibration = pd.DataFrame(cal_rows, columns=["user_group", "c_kl", "ci_low", "ci_high", "users", "reference",
                                                  "suppressed"])
    calibration["users"] = calibration["users"].astype("Int64")

    # ---- item side
    shown_items = st.item_exposures > 0
    items_tab = pd.DataFrame({
        "item_group": ilab,
        "catalog_items": catalog.astype(np.int64),
        "items_shown": np.bincount(st.item_group, weights=shown_items, minlength=C).astype(np.int64),
        "impressions": np.bincount(st.item_group, weights=st.item_exposures, minlength=C).astype(np.int64),
        "catalog_share": cat_share,
    })
    with np.errstate(invalid="ignore", divide="ignore"):
        items_tab["coverage"] = np.where(catalog > 0, items_tab["items_shown"] / np.maximum(catalog, 1), np.nan)
        items_tab["impression_share"] = items_tab["impressions"] / max(int(items_tab["impressions"].sum()), 1)
    item_summary = {
        "catalog_items": len(st.item_group),
        "items_shown": int(shown_items.sum()),
        "aggregate_diversity": ranking.aggregate_diversity(st.item_exposures),
        "gini": ranking.gini(st.item_exposures, "n-1"),
        "gini_n": ranking.gini(st.item_exposures, "n"),
        "gini_convention": "items' top-k impression counts over all catalog items, sorted ascending: "
                           "sum (2i-n-1) p_i / (n-1) (Holistic AI); gini_n divides by n (RecBole)",
    }

    # ---- gaps against the reference
    gap_rows: list[dict[str, Any]] = []
    others = [g for g in range(G) if g != ref]

    def add(metric: str, item: str | None, g: int, gv: float, rv: float, d: float, r: float,
            d_ci: tuple[float, float], r_ci: tuple[float, float], p: float, test: str, family: str,
            gn: Any, rn: Any, sup: bool) -> None:
        gap_rows.append({
            "metric": metric, "item_group": item, "group": ulab[g], "reference": ulab[ref],
            "group_users": gn, "reference_users": rn, "group_value": gv, "reference_value": rv,
            "difference": d, "difference_ci_low": d_ci[0], "difference_ci_high": d_ci[1],
            "ratio": r, "ratio_ci_low": r_ci[0], "ratio_ci_high": r_ci[1],
            "p_value": p, "test": test, "family": family, "suppressed": sup,
            # why it is hidden: too few users, or the partner of a smaller group (privacy.suppress)
            "suppression": ("complementary" if complementary[g] else "primary") if sup else None,
        })

    def diff_ratio(gv: np.ndarray, rv: np.ndarray, greps: np.ndarray, rreps: np.ndarray):
        with np.errstate(invalid="ignore", divide="ignore"):
            d = gv - rv
            r = np.where(rv > 0, gv / np.where(rv > 0, rv, 1), np.nan)
            dr = greps - rreps
            rr = np.where(rreps > 0, greps / np.where(rreps > 0, rreps, 1), np.nan)
        return d, r, _interval(dr, s), _interval(rr, s)

    def user_values(g: int, col: np.ndarray) -> np.ndarray:
        v = col[order[bounds[g]:bounds[g + 1]]]
        return v[np.isfinite(v)]

    n_perm = max(s.n_boot, 999)
    incl_reps = 1 - excl_reps
    # inclusion per item group
    pv, tv = two_proportion_test(excluded[others], n_gc[others], excluded[[ref]], n_gc[[ref]]) if others else (
        np.zeros((0, C)), np.zeros((0, C)))
    for i, g in enumerate(others):
        d, r, dci, rci = diff_ratio(incl[g], incl[ref], incl_reps[:, g], incl_reps[:, ref])
        for c in range(C):
            sup = bool(suppressed[g])
            add("inclusion_rate", ilab[c], g, incl[g, c], incl[ref, c], d[c], r[c], (dci[0][c], dci[1][c]),
                (rci[0][c], rci[1][c]), np.nan if sup else pv[i, c], "" if sup else tv[i, c], "exclusion",
                None if sup else int(n_g[g]), int(n_g[ref]), sup)
    # exposure share per item group, and the divergences of the whole distribution
    tv_pt = ranking.total_variation(pt["share"], pt["share"][ref])
    tv_rp = ranking.total_variation(rp["share"], rp["share"][:, [ref]])
    kl_pt = ranking.kl_divergence(pt["share"], pt["share"][ref])
    kl_rp = ranking.kl_divergence(rp["share"], rp["share"][:, [ref]])
    for g in others:
        sup = bool(suppressed[g])
        gn = None if sup else int(n_g[g])
        d, r, dci, rci = diff_ratio(pt["share"][g], pt["share"][ref], rp["share"][:, g], rp["share"][:, ref])
        for c in range(C):
            p, test = (np.nan, "") if sup else ranking.mean_difference_test(
                user_values(g, st.expo[:, c]), user_values(ref, st.expo[:, c]), n_perm, rng)
            add("exposure_share", ilab[c], g, pt["share"][g, c], pt["share"][ref, c], d[c], r[c],
                (dci[0][c], dci[1][c]), (rci[0][c], rci[1][c]), p, test, "exposure", gn, int(n_g[ref]), sup)
        for name, val, rep in (("exposure_tv", tv_pt, tv_rp), ("exposure_kl", kl_pt, kl_rp)):
            lo, hi = _interval(rep[:, [g]], s)
            add(name, None, g, val[g], np.nan, val[g], np.nan, (lo[0], hi[0]), (np.nan, np.nan), np.nan, "",
                "divergence", gn, int(n_g[ref]), sup)
    # utility
    if util_pt is not None:
        for g in others:
            sup = bool(suppressed[g]) or not (n_rel_g[g] >= s.suppress_below)
            d, r, dci, rci = diff_ratio(util_pt[g], util_pt[ref], util_rp[:, g], util_rp[:, ref])
            for j, m in enumerate(UTILITY_METRICS):
                p, test = (np.nan, "") if sup else ranking.mean_difference_test(
                    user_values(g, st.util[m]), user_values(ref, st.util[m]), n_perm, rng)
                add(f"{m}@{k}", None, g, util_pt[g, j], util_pt[ref, j], d[j], r[j], (dci[0][j], dci[1][j]),
                    (rci[0][j], rci[1][j]), p, test, "utility", None if sup else int(n_rel_g[g]),
                    int(n_rel_g[ref]), sup)
    # calibration
    if ckl_pt is not None:
        for g in others:
            sup = bool(suppressed[g]) or not (n_ckl_g[g] >= s.suppress_below)
            d, r, dci, rci = diff_ratio(ckl_pt[[g]], ckl_pt[[ref]], ckl_rp[:, [g]], ckl_rp[:, [ref]])
            p, test = (np.nan, "") if sup else ranking.mean_difference_test(
                user_values(g, st.ckl), user_values(ref, st.ckl), n_perm, rng)
            add("c_kl", None, g, ckl_pt[g], ckl_pt[ref], d[0], r[0], (dci[0][0], dci[1][0]), (rci[0][0], rci[1][0]),
                p, test, "calibration", None if sup else int(n_ckl_g[g]), int(n_ckl_g[ref]), sup)

    gap_cols = ["metric", "item_group", "group", "reference", "group_users", "reference_users", "group_value",
                "reference_value", "difference", "difference_ci_low", "difference_ci_high", "ratio", "ratio_ci_low",
                "ratio_ci_high", "p_value", "p_value_adjusted", "test", "family", "suppressed", "suppression", "verdict"]
    gaps = pd.DataFrame(gap_rows, columns=[c for c in gap_cols if c not in ("p_value_adjusted", "verdict")])
    gaps["p_value_adjusted"] = np.nan
    for fam in gaps["family"].unique():
        m = (gaps["family"] == fam).to_numpy()
        gaps.loc[m, "p_value_adjusted"] = benjamini_hochberg(gaps.loc[m, "p_value"].to_numpy(dtype=float))
    for col in ("group_users", "reference_users"):
        gaps[col] = gaps[col].astype("Int64")
    gaps["verdict"], findings = _judge(gaps, s, k)
    gaps = gaps[gap_cols]

    # ---- meta
    warnings = list(st.notes)
    if st.counts["users_without_list"]:
        warnings.append(f"{st.counts['users_without_list']:,} user(s) in USERS have no recommendation list: "
                        "counted as excluded from every item group, with zero exposure")
    if st.counts["users_short_list"]:
        warnings.append(f"{st.counts['users_short_list']:,} user(s) have fewer than {k} items in their top {k}: "
                        "their empty slots count as no exposure")
    if primary.any():
        warnings.append(f"{int(primary.sum())} user group(s) with fewer than {s.suppress_below} users are "
                        "suppressed")
    if complementary.any():
        warnings.append(f"{int(complementary.sum())} more user group(s) are suppressed so that a "
                        "small group's numbers cannot be recovered from the totals (complementary suppression)")
    without = np.bincount(st.ug[~st.has_list], minlength=G)
    methods_text = ("normal approximation of the mean (groups above "
                    f"{ranking.NORMAL_ABOVE:,} users)" if methods == {"normal"} else
                    "users resampled with replacement within each user group" +
                    (f"; normal approximation for groups above {ranking.NORMAL_ABOVE:,} users"
                     if "normal" in methods else ""))
    boot = f"bootstrap percentile, {B} replicates, seed {s.seed}" if B else "none (n_boot=0)"
    ci_method = {
        "exclusion": f"{boot}: binomial redraw of each (user group, item group) excluded count, the exact "
                     "nonparametric bootstrap of a proportion; rate_ci_wilson: Wilson score interval",
        "exposure": f"{boot}: {methods_text}" if B else boot,
        "utility": f"{boot}: {methods_text}" if B else boot,
        "calibration": f"{boot}: {methods_text}" if B else boot,
        "gaps": f"{boot}: replicate differences and ratios of group and reference (independent strata); "
                "p-values: inclusion_rate — Fisher's exact test if any expected count < 5 else the pooled "
                "two-proportion z-test (see 'test'), Benjamini-Hochberg across the exclusion table; "
                f"exposure_share, utility, c_kl — permutation test of the difference of means (at most "
                f"{ranking.PERMUTATION_MAX:,} users in the two groups, {n_perm} resamples) else Welch's t-test, "
                "Benjamini-Hochberg within each family; divergences: interval only",
    }
    from fairscan.version import __version__

    meta = {
        "fairscan_version": __version__,
        "n_users": len(st.ug),
        "k": k,
        "discount": discount_name,
        "position_weights": [float(x) for x in st.weights],
        "user_group": columns["user_group"],
        "item_group": columns["item_group"],
        "reference": ulab[ref],
        "users_without_list": st.counts["users_without_list"],
        "users_without_list_by_group": {ulab[g]: (None if suppressed[g] else int(without[g])) for g in range(G)},
        "users_not_in_users_table": st.counts["users_not_in_users_table"],
        "items_not_in_items_table": st.counts["items_not_in_items_table"],
        "item_summary": item_summary,
        "ci_method": ci_method,
        "conventions": {
            "exposure": "share of the maximum position-weighted exposure sum_{r<=k} v_r; users without a "
                        "list contribute zero",
            "kl": f"KL(group || reference), natural log, additive smoothing alpha = {ranking.KL_ALPHA:g} on the "
                  "normalised exposure distributions",
            "calibration": f"Steck C_KL, alpha = {ranking.STECK_ALPHA}, natural log, list weighted by the position "
                           "weights",
            "utility": "binary relevance; ndcg discount 1/log2(1+rank), ideal over min(|relevant|, k); "
                       "precision divides by k; averaged over users with at least one relevant item",
        },
        "settings": {
            "n_boot": B, "seed": s.seed, "min_group_size": s.min_group_size, "suppress_below": s.suppress_below,
            "confidence": s.confidence, "alpha": s.alpha,
            "tolerances": {("inclusion_rate" if m == "inclusion_rate" else f"{m}@{k}"): t.to_dict()
                           for m, t in TOLERANCES.items()},
        },
        "warnings": list(dict.fromkeys(warnings)),
    }
    return RecsAuditResult(exclusion, exposure, utility, calibration, items_tab, gaps, findings, meta)


def _reference(labels: list[str], n_g: np.ndarray, suppressed: np.ndarray, reference: str | None,
               s: AuditPolicy) -> int:
    if reference is not None:  # an exact label (matched in analyse_recs)
        ref = labels.index(reference)
        if suppressed[ref]:
            why = (f"has fewer than {s.suppress_below} users" if n_g[ref] < s.suppress_below else
                   f"is suppressed so that a group with fewer than {s.suppress_below} users cannot be recovered "
                   "from the total")
            raise FairscanError(f"reference user group '{reference}' {why}; choose a larger one")
        return ref
    score = np.where(suppressed, -1, n_g).astype(float)
    if UNKNOWN in labels and (score > 0).sum() > 1:
        score[labels.index(UNKNOWN)] = -0.5
    if (score < 0).all():
        if (n_g < s.suppress_below).all():
            raise FairscanError(f"every user group has fewer than {s.suppress_below} users; nothing can be "
                                "reported (lower suppress_below only for synthetic data)")
        # e.g. two groups, one small: the other's count would reveal it (complementary suppression)
        raise FairscanError(f"a user group has fewer than {s.suppress_below} users and the other groups are "
                            "suppressed so that it cannot be recovered from the total; nothing can be reported: "
                            "group the users so that every group has at least that many")
    return int(np.argmax(score))


def _judge(gaps: pd.DataFrame, s: AuditPolicy, k: int) -> tuple[list[str | None], pd.DataFrame]:
    """Verdicts for the judged gaps (inclusion ratio per item group, ndcg ratio), in the words
    of :func:`fairscan.policy.judge` with the BH-adjusted p-value; None for the others."""
    verdicts: list[str | None] = []
    rows = []
    for row in gaps.itertuples(index=False):
        base = "ndcg" if row.metric == f"ndcg@{k}" else row.metric
        tol = TOLERANCES.get(base)
        if tol is None:
            verdicts.append(None)
            continue
        item = None if pd.isna(row.item_group) else row.item_group
        where = f" for item group {item}" if item is not None else ""
        inclusion = base == "inclusion_rate"
        # utility is a mean over the users with a held-out relevant item (none for users
        # without held-out interactions, e.g. cold-start users left out of the truth)
        gap = Gap(who=f"user group {row.group}{where}", unit="users",
                  what="included (shown at least one item)" if inclusion else f"mean {row.metric}",
                  reference=row.reference, group_count=row.group_users, reference_count=row.reference_users,
                  group_value=row.group_value, reference_value=row.reference_value, difference=row.difference,
                  ratio=row.ratio, ci_ratio=(row.ratio_ci_low, row.ratio_ci_high),
                  ci_difference=(math.nan, math.nan), p_adjusted=row.p_value_adjusted,
                  suppression=row.suppression,
                  as_rate=inclusion,
                  suppressed_unit=None if inclusion else "users with a held-out relevant item")
        v, msg = judge(gap, tol, min_group_size=s.min_group_size, suppress_below=s.suppress_below,
                       confidence=s.confidence, alpha=s.alpha, adjustment="BH", test=row.test)
        verdicts.append(v)
        rows.append({"metric": row.metric, "item_group": item, "group": row.group,
                     "reference": row.reference, "verdict": v, "message": msg, "tolerance": tol.describe()})
    cols = ["metric", "item_group", "group", "reference", "verdict", "message", "tolerance"]
    return verdicts, pd.DataFrame(rows, columns=cols)
