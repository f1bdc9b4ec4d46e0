"""Reference recommenders for implicit feedback, and the recommendation presets.

What is here, and the conventions (all documented for users):

- **Interactions** are a long table ``user, item[, weight][, time]`` (one row per event, e.g.
  an invoice line). They become a *sparse* ``users x items`` CSR matrix (scipy); no dense
  ``users x items`` matrix is ever built: scores are computed for blocks of users
  (:data:`BLOCK_USERS` at a time) and only each block's top ``k`` is kept.
- **Split** (:func:`temporal_split`): with a time column, a *global temporal* split — the
  cut-off is the ``1 - test_fraction`` quantile of the interaction times (``method="lower"``,
  so it is an observed time); interactions at or before it train, those after it are held
  out. Without a time column (or with ``leave_last_out=True``): *leave-last-out per user* —
  each user's latest interaction (ties, and all rows when there is no time, broken by a
  seeded random draw) is held out, for users with at least two interactions. The held-out
  **truth** is the distinct ``(user, item)`` pairs of the held-out rows, kept only for users
  seen in training (the held-out metrics measure the model on users it has a history for;
  cold-start users, below, get the popularity list, whatever the model), and by default
  only items the user had *not* interacted with in training (``new_items_only=True``: the
  recommenders never re-recommend seen items, so repeats could never be hits). Held-out
  items that are not in the training catalog stay in the truth: they count as relevant but
  can never be hit. Every removal is counted in :attr:`Split.counts`.
- **Popularity** (:class:`PopularityRecommender`): items ranked by how many distinct
  training users interacted with them. **Item-kNN** (:class:`ItemKNNRecommender`):
  cosine similarity between the item columns of the *binary* user x item matrix,
  ``sim(i, j) = |U_i ∩ U_j| / sqrt(|U_i| |U_j|)``, no self-similarity; each item keeps its
  ``n_neighbours`` most similar items (row ``j`` of the similarity matrix keeps its top
  ``n_neighbours`` entries, ties to the lower item index); a user's score for item ``i`` is
  the sum of ``sim(j, i)`` over the items ``j`` they interacted with. Both exclude the
  user's training items. Ties in score — including the items with score 0 that fill a list
  when a user's neighbourhood is small — are broken by popularity, then by item id order.
  Unknown users get the popularity list (score 0 for item-kNN).
- **Every user gets a list** (:func:`train_recommender`): every distinct user of the
  interactions, not only the users of the training period. Users with no training
  interaction (*cold start*: with a temporal split, customers whose every interaction falls
  after the cut-off) get the popularity baseline's top ``k`` (nothing excluded: they have no
  history; ``score`` = the item's popularity). The lists have a ``source`` column (``model``
  / ``popularity``), the USERS table a ``history`` column (``with history`` / ``cold
  start``) to audit the cold-start users as their own group (``user_group="history"``), and
  the card says how many (``cold_start_users``).
- **Evaluation** (:func:`evaluate`): ``hit_rate@k``, ``recall@k``, ``ndcg@k`` and
  ``precision@k`` with the conventions of :mod:`fairscan.recs` (binary relevance, ndcg
  discount ``1/log2(1+rank)`` over the ideal DCG of ``min(|relevant|, k)`` hits, averaged over
  the users with at least one relevant item; a user with relevant items and no list scores
  0) — computed by :func:`fairscan.metrics.ranking.user_utilities`, the function the audit
  uses.
- **Saving** (:func:`save_recommender`): ``recommendations.parquet``, ``truth.parquet``,
  ``card.json``, the training interactions, the USERS table (every user, with ``history``)
  and the ITEMS table when there is one,
  and the model as ``model.skops``: for the kNN and popularity models a plain dict of arrays
  and scipy CSR matrices (skops stores CSR matrices with ``scipy.sparse.save_npz`` and loads
  them with ``load_npz``, which refuses pickled content; :func:`load_recommender` trusts
  exactly that type); for the coupon model a scikit-learn Pipeline. Never pickle.

Presets (:func:`train_preset_recommender`): ``"online-retail"`` (which products to show
each customer) and ``"coupon"`` (which of the five coupons to offer in a driving
context); see their docstrings for the framing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fairscan.errors import FairscanError, plain, suggest
from fairscan.metrics import ranking

__all__ = [
    "COLD_START",
    "COUPON_CONTEXT_COLUMNS",
    "COUPON_PRICE_ORDER",
    "HISTORY",
    "SOURCE",
    "ItemKNNRecommender",
    "PopularityRecommender",
    "Split",
    "TrainedRecommender",
    "coupon_design",
    "coupon_recommender",
    "evaluate",
    "load_recommender",
    "online_retail_recommender",
    "save_recommender",
    "temporal_split",
    "train_preset_recommender",
    "train_recommender",
]

USER, ITEM, RANK, SCORE, WEIGHT = "user", "item", "rank", "score", "weight"
#: the lists' column saying where a list comes from, and its values
SOURCE, FROM_MODEL, FROM_POPULARITY = "source", "model", "popularity"
#: the USERS column saying whether a user has training interactions, and its values
HISTORY, WITH_HISTORY, COLD_START = "history", "with history", "cold start"
#: users scored at a time: a block's dense score matrix is BLOCK_USERS x n_items floats
BLOCK_USERS = 1024
MODEL_FILE = "model.skops"
CARD_FILE = "card.json"
RECS_FILE = "recommendations.parquet"
TRUTH_FILE = "truth.parquet"
USERS_FILE = "users.parquet"
ITEMS_FILE = "items.parquet"
INTERACTIONS_FILE = "interactions.parquet"
#: the only type beyond skops' defaults that a saved kNN/popularity model holds
SPARSE_TYPES = ("scipy.sparse._csr.csr_matrix",)
PRESETS = ("online-retail", "coupon")
METRICS = ("hit_rate", "recall", "ndcg", "precision")


# ----------------------------------------------------------------------------- split


@dataclass
class Split:
    """A train / held-out split of interactions (see the module docstring).

    ``train`` and ``test`` are the interaction rows (original index kept); ``truth`` the
    held-out relevant pairs with columns ``user, item``; ``cutoff`` the cut-off time of a
    temporal split (None for leave-last-out); ``counts`` what was held out and removed.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    truth: pd.DataFrame
    method: Literal["temporal", "leave_last_out"]
    cutoff: Any
    counts: dict[str, int]
    test_fraction: float | None
    seed: int
    new_items_only: bool

    def describe(self) -> dict[str, Any]:
        """The split as the model card records it."""
        text = {
            "temporal": "global temporal split: interactions after the cut-off time are held out",
            "leave_last_out": "leave-last-out per user (users with at least two interactions; ties and "
                              "untimed rows broken by a seeded random draw)",
        }[self.method]
        return {
            "method": self.method,
            "description": text + "; truth = distinct held-out (user, item) pairs of users seen in training"
            + (", items the user had not interacted with in training" if self.new_items_only else ""),
            "cutoff": None if self.cutoff is None else str(self.cutoff),
            "test_fraction": self.test_fraction,
            "seed": self.seed,
            "new_items_only": self.new_items_only,
            **self.counts,
        }


def _check_columns(df: pd.DataFrame, cols: Sequence[str | None], role: str) -> None:
    names = [str(c) for c in df.columns]
    for c in cols:
        if c is not None and c not in df.columns:
            raise FairscanError(f"{role} has no column '{c}'{suggest(str(c), names)}")


def _no_missing(df: pd.DataFrame, cols: Sequence[str | None], role: str) -> None:
    for c in cols:
        if c is None:
            continue
        bad = int(df[c].isna().sum())
        if bad:
            raise FairscanError(f"{role} column '{c}' has {bad:,} missing value(s); every interaction needs a "
                                f"{c} — fix or remove those rows first")


def _times(values: pd.Series, col: str) -> np.ndarray:
    """Interaction times as int64 (datetimes as nanoseconds, numbers as they are)."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=float)
    try:
        when = pd.to_datetime(values)
    except (TypeError, ValueError) as err:
        raise FairscanError(f"time column '{col}' cannot be read as dates/times: {err}") from None
    return when.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def temporal_split(
    interactions: pd.DataFrame,
    user: str,
    item: str,
    time: str | None = None,
    *,
    test_fraction: float = 0.2,
    leave_last_out: bool = False,
    seed: int = 0,
    new_items_only: bool = True,
) -> Split:
    """Split interactions into training rows and held-out truth.

    With ``time`` (and ``leave_last_out=False``): the interactions after the cut-off time,
    the ``1 - test_fraction`` quantile of the times, are held out (a global temporal split:
    no training interaction is later than any held-out one). Otherwise each user's last
    interaction is held out (by ``time`` when given, else a seeded random one). The truth
    keeps the distinct held-out ``(user, item)`` pairs of users seen in training and, with
    ``new_items_only``, only items the user had not interacted with in training.
    """
    if not isinstance(interactions, pd.DataFrame):
        raise FairscanError(f"interactions: give a pandas DataFrame, got {type(interactions).__name__}")
    _check_columns(interactions, [user, item, time], "interactions")
    _no_missing(interactions, [user, item, time], "interactions")
    if len(interactions) == 0:
        raise FairscanError("interactions has no rows")
    n = len(interactions)
    rng = np.random.default_rng(seed)
    u_codes, _ = pd.factorize(interactions[user])
    if time is not None and not leave_last_out:
        if not 0 < test_fraction < 1:
            raise FairscanError(f"test_fraction must be between 0 and 1, got {plain(test_fraction)}")
        t = _times(interactions[time], time)
        cut = np.quantile(t, 1 - test_fraction, method="lower")
        held = t > cut
        if not held.any():
            raise FairscanError(f"no interaction is later than the {1 - test_fraction:.0%} quantile of '{time}' "
                                "(too many tied times): use leave_last_out=True or a larger test_fraction")
        method: Literal["temporal", "leave_last_out"] = "temporal"
        cutoff: Any = pd.Timestamp(int(cut)) if t.dtype == np.int64 and not pd.api.types.is_numeric_dtype(
            interactions[time].dtype) else float(cut)
        frac: float | None = float(test_fraction)
    else:
        # per user: the row with the largest (time, random tie-break); untimed: a random row
        tie = rng.random(n)
        keys = [tie] if time is None else [tie, _times(interactions[time], time)]
        order = np.lexsort([*keys, u_codes])
        last = np.ones(n, dtype=bool)
        last[:-1] = u_codes[order][1:] != u_codes[order][:-1]
        size = np.bincount(u_codes)
        held = np.zeros(n, dtype=bool)
        pick = order[last]
        held[pick[size[u_codes[pick]] >= 2]] = True
        method, cutoff, frac = "leave_last_out", None, None
    train = interactions.loc[~held]
    test = interactions.loc[held]
    pairs = test[[user, item]].drop_duplicates()
    seen_user = pairs[user].isin(pd.Index(train[user].unique()))
    new_user_pairs = int((~seen_user).sum())
    pairs = pairs[seen_user.to_numpy()]
    repeats = 0
    if new_items_only and len(pairs):
        known = pd.MultiIndex.from_frame(train[[user, item]].drop_duplicates())
        rep = pd.MultiIndex.from_frame(pairs).isin(known)
        repeats = int(rep.sum())
        pairs = pairs[~rep]
    truth = pairs.rename(columns={user: USER, item: ITEM}).reset_index(drop=True)
    counts = {
        "rows": n,
        "train_rows": len(train),
        "test_rows": len(test),
        "train_users": int(train[user].nunique()),
        "train_items": int(train[item].nunique()),
        "test_pairs_new_users": new_user_pairs,
        "test_pairs_repeat": repeats,
        "truth_pairs": len(truth),
        "truth_users": int(truth[USER].nunique()),
        "truth_items_outside_catalog": int((~truth[ITEM].isin(pd.Index(train[item].unique()))).sum()),
    }
    return Split(train, test, truth, method, cutoff, counts, frac, seed, new_items_only)


# ----------------------------------------------------------------------------- models


def _interaction_matrix(users: np.ndarray, items: np.ndarray, weights: np.ndarray | None, n_users: int,
                        n_items: int) -> sp.csr_matrix:
    """CSR users x items with duplicate pairs summed (a row count when ``weights`` is None)."""
    w = np.ones(len(users)) if weights is None else np.asarray(weights, dtype=float)
    m = sp.csr_matrix((w, (users, items)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.sort_indices()
    return m


class _Base:
    """Shared fitting and batched top-k ranking; subclasses define ``_block_scores``."""

    kind = "base"

    def __init__(self) -> None:
        self.users_: pd.Index | None = None
        self.items_: pd.Index | None = None
        self.user_items_: sp.csr_matrix | None = None
        self.popularity_: np.ndarray | None = None

    # -- fitting
    def fit(self, train: pd.DataFrame, *, user: str = USER, item: str = ITEM, weight: str | None = None) -> Any:
        """Fit on interaction rows ``user, item[, weight]`` (duplicates summed)."""
        if not isinstance(train, pd.DataFrame):
            raise FairscanError(f"train: give a pandas DataFrame, got {type(train).__name__}")
        _check_columns(train, [user, item, weight], "train")
        _no_missing(train, [user, item, weight], "train")
        if len(train) == 0:
            raise FairscanError("train has no rows")
        u, users = pd.factorize(train[user], sort=True)
        i, items = pd.factorize(train[item], sort=True)
        w = None if weight is None else train[weight].to_numpy(dtype=float)
        if w is not None and (~np.isfinite(w) | (w < 0)).any():
            raise FairscanError(f"train column '{weight}' has negative or non-finite weights")
        self._set(pd.Index(users), pd.Index(items), _interaction_matrix(u, i, w, len(users), len(items)))
        self._fit_model()
        return self

    def _set(self, users: pd.Index, items: pd.Index, user_items: sp.csr_matrix) -> None:
        self.users_, self.items_, self.user_items_ = users, items, user_items
        binary = user_items.copy()
        binary.data[:] = 1.0
        self._binary = binary
        self.popularity_ = np.bincount(binary.indices, minlength=len(items)).astype(float)
        # items by popularity (desc), then id order: the tie-break order of every list
        self._pop_order = np.lexsort((np.arange(len(items)), -self.popularity_))

    def _fit_model(self) -> None:
        pass

    def _check_fitted(self) -> None:
        if self.users_ is None:
            raise FairscanError(f"the {self.kind} recommender is not fitted: call fit(train) first")

    def _user_codes(self, users: Any) -> np.ndarray:
        assert self.users_ is not None
        if users is None:
            return np.arange(len(self.users_))
        return np.asarray(self.users_.get_indexer(pd.Index(list(users) if not isinstance(
            users, pd.Index | pd.Series | np.ndarray) else users)), dtype=np.int64)

    def _block_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def _history(self, codes: np.ndarray) -> sp.csr_matrix:
        """Binary history rows of the given user codes (-1: an unknown user, empty row)."""
        known = codes >= 0
        if known.all():
            return self._binary[codes]
        pick = sp.csr_matrix((np.ones(int(known.sum())), (np.flatnonzero(known), codes[known])),
                             shape=(len(codes), self._binary.shape[0]))
        return sp.csr_matrix(pick @ self._binary)

    # -- scoring and ranking
    def scores(self, users: Any = None) -> np.ndarray:
        """Dense (users x items) scores in ``items_`` order, for small cases and tests only."""
        self._check_fitted()
        return self._block_scores(self._history(self._user_codes(users)))

    def recommend(self, users: Any = None, k: int = 10, *, exclude_seen: bool = True) -> pd.DataFrame:
        """Top-``k`` lists ``user, item, rank, score`` (rank 1 = top) for ``users`` (default:
        every training user), computed in blocks of :data:`BLOCK_USERS` users."""
        self._check_fitted()
        assert self.users_ is not None and self.items_ is not None
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise FairscanError(f"k must be a whole number >= 1, got {plain(k)}")
        user_ids = self.users_ if users is None else pd.Index(list(users) if not isinstance(
            users, pd.Index | pd.Series | np.ndarray) else users)
        codes = self._user_codes(user_ids)
        n_items = len(self.items_)
        k = int(min(k, n_items))
        inv = np.empty(n_items, dtype=np.int64)
        inv[self._pop_order] = np.arange(n_items)
        out_u, out_i, out_r, out_s = [], [], [], []
        for start in range(0, len(codes), BLOCK_USERS):
            c = codes[start:start + BLOCK_USERS]
            hist = self._history(c)
            sc = self._block_scores(hist)[:, self._pop_order]
            if exclude_seen and hist.nnz:
                r = np.repeat(np.arange(len(c)), np.diff(hist.indptr))
                sc[r, inv[hist.indices]] = -np.inf
            top = np.argsort(-sc, axis=1, kind="stable")[:, :k]
            top_s = np.take_along_axis(sc, top, axis=1)
            ok = np.isfinite(top_s)
            out_u.append(np.broadcast_to(np.arange(start, start + len(c))[:, None], top.shape)[ok])
            out_i.append(self._pop_order[top[ok]])
            out_r.append(np.broadcast_to(np.arange(1, k + 1), top.shape)[ok])
            out_s.append(top_s[ok])
        if not out_u:
            return pd.DataFrame({USER: user_ids[:0], ITEM: self.items_[:0], RANK: np.zeros(0, dtype=np.int64),
                                 SCORE: np.zeros(0)})
        u = np.concatenate(out_u)
        return pd.DataFrame({
            USER: user_ids[u],
            ITEM: self.items_[np.concatenate(out_i)],
            RANK: np.concatenate(out_r).astype(np.int64),
            SCORE: np.concatenate(out_s),
        })

    # -- persistence
    def state(self) -> dict[str, Any]:
        """A skops-safe dict: ids, the training matrix, popularity and model parameters."""
        self._check_fitted()
        assert self.users_ is not None and self.items_ is not None

        def ids(idx: pd.Index) -> Any:
            if idx.dtype.kind in "iu":
                return idx.to_numpy(dtype=np.int64)
            return [str(x) for x in idx]

        return {"kind": self.kind, "users": ids(self.users_), "items": ids(self.items_),
                "user_items": sp.csr_matrix(self.user_items_), "params": self.params()}

    def params(self) -> dict[str, Any]:
        return {}


class PopularityRecommender(_Base):
    """Most popular items first: popularity = number of distinct training users of an item;
    the user's training items are excluded."""

    kind = "popularity"

    def _block_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        assert self.popularity_ is not None
        return np.broadcast_to(self.popularity_, (rows.shape[0], len(self.popularity_))).copy()


class ItemKNNRecommender(_Base):
    """Item-item cosine kNN on the binary user x item matrix (see the module docstring).

    ``n_neighbours``: how many most similar items each item keeps (None: all).
    ``similarity_`` (after ``fit``): the pruned items x items CSR matrix, row ``j`` holding
    the neighbours of item ``j``; scores are ``history @ similarity_``.
    """

    kind = "itemknn"

    def __init__(self, n_neighbours: int | None = 100) -> None:
        super().__init__()
        if n_neighbours is not None and (isinstance(n_neighbours, bool) or int(n_neighbours) < 1):
            raise FairscanError(f"n_neighbours must be a whole number >= 1 or None, got {plain(n_neighbours)}")
        self.n_neighbours = None if n_neighbours is None else int(n_neighbours)
        self.similarity_: sp.csr_matrix | None = None

    def params(self) -> dict[str, Any]:
        return {"n_neighbours": self.n_neighbours, "similarity": "cosine on the binary user x item matrix"}

    def _fit_model(self) -> None:
        x = self._binary.tocsc()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        inv = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
        xn = sp.csr_matrix(self._binary @ sp.diags(inv))
        sim = sp.csr_matrix(xn.T @ xn)
        sim.setdiag(0.0)
        sim.eliminate_zeros()
        self.similarity_ = _prune_rows(sim, self.n_neighbours)

    def _block_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        assert self.similarity_ is not None
        return np.asarray((rows @ self.similarity_).toarray())

    def state(self) -> dict[str, Any]:
        out = super().state()
        out["similarity"] = sp.csr_matrix(self.similarity_)
        return out


def _prune_rows(m: sp.csr_matrix, n: int | None) -> sp.csr_matrix:
    """Keep the ``n`` largest entries of each row (ties: lower column index first)."""
    m = sp.csr_matrix(m)
    m.sort_indices()
    n_rows, n_cols = m.shape
    if n is None or n >= n_cols:
        return m
    # dense blocks of rows: the n-th largest value of each row by partition, then the
    # entries above it plus, among those equal to it, the first ones by column
    step = max(1, 4_000_000 // max(n_cols, 1))
    rows, cols, vals = [], [], []
    for start in range(0, n_rows, step):
        d = m[start:start + step].toarray()
        nth = -np.partition(-d, n - 1, axis=1)[:, n - 1:n]
        above = d > nth
        tied = d == nth
        room = n - above.sum(axis=1, keepdims=True)
        keep = (above | (tied & (np.cumsum(tied, axis=1) <= room))) & (d != 0)
        r, c = np.nonzero(keep)
        rows.append(r + start)
        cols.append(c)
        vals.append(d[r, c])
    out = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=m.shape)
    out.sort_indices()
    return out


def _from_state(state: dict[str, Any]) -> _Base:
    kind = state.get("kind")
    if kind == "itemknn":
        model: _Base = ItemKNNRecommender(state["params"].get("n_neighbours"))
    elif kind == "popularity":
        model = PopularityRecommender()
    else:
        raise FairscanError(f"unknown recommender kind {plain(kind)} in the model file")
    model._set(pd.Index(state["users"]), pd.Index(state["items"]), sp.csr_matrix(state["user_items"]))
    if isinstance(model, ItemKNNRecommender):
        model.similarity_ = sp.csr_matrix(state["similarity"])
    return model


# ----------------------------------------------------------------------------- evaluation


def evaluate(recs: pd.DataFrame, truth: pd.DataFrame, k: int, *, user: str = USER, item: str = ITEM,
             rank: str = RANK) -> dict[str, float]:
    """``hit_rate@k``, ``recall@k``, ``ndcg@k``, ``precision@k`` of ``recs`` on held-out
    ``truth`` (``user, item``), averaged over the truth users (all have a relevant item), and
    ``users``: how many. Conventions as :mod:`fairscan.recs`; computed by
    :func:`fairscan.metrics.ranking.user_utilities`."""
    _check_columns(recs, [user, item, rank], "RECS")
    _check_columns(truth, [user, item], "TRUTH")
    t = truth[[user, item]].drop_duplicates()
    tu = pd.Index(t[user].drop_duplicates())
    n_rel = np.bincount(tu.get_indexer(t[user]), minlength=len(tu))
    top = recs.loc[recs[rank] <= k, [user, item, rank]]
    hit = top.merge(t, on=[user, item], how="inner")
    hits = np.zeros((len(tu), k), dtype=bool)
    hits[tu.get_indexer(hit[user]), hit[rank].to_numpy(dtype=np.int64) - 1] = True
    util = ranking.user_utilities(hits, n_rel, k)
    out = {f"{m}@{k}": float(np.mean(util[m])) if len(tu) else float("nan") for m in METRICS}
    out["users"] = len(tu)
    return out


# ----------------------------------------------------------------------------- training


@dataclass
class TrainedRecommender:
    """A fitted recommender, its lists for every user, the held-out truth and its card.

    ``recommendations``: ``user, item, rank, score, source`` (``source``: ``model``, or
    ``popularity`` for the cold-start users' popularity lists); ``truth``: ``user, item``;
    ``interactions``: the training interactions ``user, item, weight`` (for calibration
    and the bias source of an audit; None for the coupon preset); ``users``: the USERS table,
    one row per user (``user, history`` and, for a preset, its user groups); ``items``: the
    ITEMS table of a preset (None otherwise); ``metrics``: the model's and the popularity
    baseline's held-out metrics; ``card``: what ``card.json`` records.
    """

    name: str
    model: Any
    recommendations: pd.DataFrame
    truth: pd.DataFrame
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    card: dict[str, Any]
    interactions: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    baseline: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def audit(self, *, user_group: str, item_group: str, k: int | None = None, **kwargs: Any) -> Any:
        """:func:`fairscan.recs.audit_recs` of these lists with this truth and interactions."""
        from fairscan.recs import audit_recs

        if self.users is None or self.items is None:
            raise FairscanError("this recommender has no ITEMS table (only the presets have one): call "
                                "fairscan.recs.audit_recs with your own, and its .users for the 'history' group")
        past = None if self.interactions is None else self.interactions
        return audit_recs(self.recommendations, self.users, self.items, user_group=user_group,
                          item_group=item_group, k=k or int(self.card["k"]), truth=self.truth,
                          interactions=past, **kwargs)


def _card(name: str, *, dataset: str | None, model: str, features: list[str], split: dict[str, Any], seed: int,
          sizes: dict[str, int], metrics: dict[str, Any], data_sha: str, k: int, params: dict[str, Any],
          notes: list[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    from fairscan.version import __version__

    return {
        "name": name,
        "kind": "recommender",
        "dataset": dataset,
        "model": model,
        "params": params,
        "features": features,
        "split": split,
        "seed": seed,
        "k": k,
        "sizes": sizes,
        "metrics": {m: {key: (round(v, 6) if isinstance(v, float) else v) for key, v in vals.items()}
                    for m, vals in metrics.items()},
        "data_sha256": data_sha,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "fairscan_version": __version__,
        "files": {"recommendations": RECS_FILE, "truth": TRUTH_FILE, "model": MODEL_FILE},
        "notes": notes,
        **(extra or {}),
    }


def _make_model(model: str, n_neighbours: int | None) -> _Base:
    if model == "itemknn":
        return ItemKNNRecommender(n_neighbours)
    if model == "popularity":
        return PopularityRecommender()
    raise FairscanError(f"unknown recommender '{model}'{suggest(model, ['itemknn', 'popularity'])}; "
                        "use itemknn or popularity")


def train_recommender(
    interactions: pd.DataFrame,
    *,
    user: str,
    item: str,
    weight: str | None = None,
    time: str | None = None,
    k: int = 20,
    model: Literal["itemknn", "popularity"] = "itemknn",
    seed: int = 0,
    test_fraction: float = 0.2,
    leave_last_out: bool = False,
    new_items_only: bool = True,
    n_neighbours: int | None = 100,
    name: str = "recommender",
    dataset: str | None = None,
) -> TrainedRecommender:
    """Split ``interactions`` (:func:`temporal_split`), fit ``model`` on the training rows,
    recommend ``k`` items to every user of ``interactions`` and evaluate the model and the
    popularity baseline on the held-out truth. ``weight`` (e.g. a quantity) is summed per
    (user, item) and kept in the training interactions; the models themselves use the binary
    matrix.

    Users with a training interaction get the model's list (``source = "model"``); users
    without one (cold start) get the popularity baseline's list (``source = "popularity"``).
    ``users`` is ``user, history`` (``with history`` / ``cold start``), one row per user, and
    the card's ``cold_start_users`` says how many are cold start.
    """
    from fairscan.engines.datahash import frame_sha256

    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise FairscanError(f"k must be a whole number >= 1, got {plain(k)}")
    _check_columns(interactions, [user, item, weight, time], "interactions")
    t0 = _time.perf_counter()
    split = temporal_split(interactions, user, item, time, test_fraction=test_fraction,
                           leave_last_out=leave_last_out, seed=seed, new_items_only=new_items_only)
    t_split = _time.perf_counter() - t0
    train = split.train
    agg = (train.groupby([user, item], sort=True, observed=True)[weight].sum() if weight is not None
           else train.groupby([user, item], sort=True, observed=True).size())
    past = agg.rename(WEIGHT).reset_index().rename(columns={user: USER, item: ITEM})
    t1 = _time.perf_counter()
    est = _make_model(model, n_neighbours).fit(past, weight=WEIGHT)
    t_fit = _time.perf_counter() - t1
    base = est if model == "popularity" else PopularityRecommender().fit(past, weight=WEIGHT)
    # every user of the data, in the order fit() sorts the training users
    everyone = pd.Index(pd.factorize(interactions[user], sort=True)[1])
    cold = ~everyone.isin(est.users_)
    t2 = _time.perf_counter()
    recs = _lists_for_everyone(est.recommend(None, k), base.recommend(everyone[cold], k), everyone)
    t_rec = _time.perf_counter() - t2
    metrics = evaluate(recs, split.truth, k)
    base_metrics = dict(metrics) if model == "popularity" else evaluate(base.recommend(None, k), split.truth, k)
    users = pd.DataFrame({USER: everyone, HISTORY: np.where(cold, COLD_START, WITH_HISTORY).astype(object)})
    n_cold = int(cold.sum())
    sizes = {"interactions": len(interactions), "users": len(everyone), "train_users": len(est.users_),
             "cold_start_users": n_cold, "train_items": len(est.items_), "train_pairs": int(est.user_items_.nnz),
             "truth_users": split.counts["truth_users"], "truth_pairs": split.counts["truth_pairs"],
             "recommendation_rows": len(recs)}
    params = {**est.params(), "exclude_seen": True,
              "tie_break": "popularity (distinct training users), then item id order"}
    card = _card(
        name, dataset=dataset, model={"itemknn": "item-item cosine kNN", "popularity": "popularity"}[model],
        features=[f"{user} x {item} interaction matrix (binary)"], split=split.describe(), seed=seed,
        sizes=sizes, metrics={"model": metrics, "popularity": base_metrics},
        data_sha=frame_sha256(interactions), k=int(k), params=params,
        notes=["recommendations.parquet, truth.parquet, interactions.parquet and model.skops (the training "
               "user x item matrix) hold users' interaction data (by id): keep them as protected as the "
               "training data.",
               f"Every user in the data has a list: {len(everyone) - n_cold:,} from the model (source = "
               f"'model'), {n_cold:,} cold-start user(s) with no training interaction get the popularity list "
               "(source = 'popularity', score = the item's number of distinct training users; history = "
               "'cold start' in users.parquet). The held-out truth and metrics cover users with a training "
               "history only."],
        extra={"columns": {"user": user, "item": item, "weight": weight, "time": time},
               "cold_start_users": n_cold,
               "timing_seconds": {"split": round(t_split, 3), "fit": round(t_fit, 3),
                                  "recommend": round(t_rec, 3)}},
    )
    card["files"]["users"] = USERS_FILE
    return TrainedRecommender(name, est, recs, split.truth, metrics, base_metrics, card, past, users=users,
                              baseline=base, extra={"split": split})


def _lists_for_everyone(model_recs: pd.DataFrame, popular: pd.DataFrame, everyone: pd.Index) -> pd.DataFrame:
    """The model's lists and the cold-start users' popularity lists in one table with a
    ``source`` column, ordered by user (in ``everyone`` order), then rank."""
    parts = [model_recs.assign(**{SOURCE: FROM_MODEL})]
    if len(popular):
        parts.append(popular.assign(**{SOURCE: FROM_POPULARITY}))
    recs = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    order = np.lexsort((recs[RANK].to_numpy(), everyone.get_indexer(recs[USER])))
    recs = recs.iloc[order].reset_index(drop=True)
    recs[SOURCE] = pd.Categorical(recs[SOURCE], categories=[FROM_MODEL, FROM_POPULARITY])
    return recs


# ----------------------------------------------------------------------------- presets


def train_preset_recommender(dataset: str, *, k: int | None = None, seed: int = 0,
                             model: Literal["itemknn", "popularity"] = "itemknn",
                             weight: Literal["Quantity", "amount"] = "Quantity",
                             n_neighbours: int | None = 100) -> TrainedRecommender:
    """The reference recommender of a bundled dataset: ``"online-retail"`` (see
    :func:`online_retail_recommender`) or ``"coupon"`` (see :func:`coupon_recommender`)."""
    if dataset == "online-retail":
        return online_retail_recommender(k=k or 20, seed=seed, model=model, weight=weight,
                                         n_neighbours=n_neighbours)
    if dataset == "coupon":
        return coupon_recommender(seed=seed)
    raise FairscanError(f"no reference recommender for '{dataset}'{suggest(str(dataset), PRESETS)}; presets: "
                        f"{', '.join(PRESETS)}")


def _quantile_tiers(values: np.ndarray, n: int) -> tuple[np.ndarray, tuple[str, ...], tuple[float, ...]]:
    """Codes and labels of ``n`` quantile tiers (right-closed, fairscan's tier convention)."""
    from fairscan.groups import tier_labels

    edges = tuple(float(e) for e in np.unique(np.quantile(values, np.arange(1, n) / n)))
    labels = tier_labels(edges, quantile=True)
    return np.searchsorted(np.asarray(edges), values, side="left"), labels, edges


def online_retail_recommender(*, k: int = 20, seed: int = 0, model: Literal["itemknn", "popularity"] = "itemknn",
                              weight: Literal["Quantity", "amount"] = "Quantity",
                              n_neighbours: int | None = 100, test_fraction: float = 0.2) -> TrainedRecommender:
    """Online Retail: which products to show each customer.

    Lines are cleaned with :func:`fairscan.datasets.cleaning.clean_online_retail` (removal
    counts in the card); interactions are customer (``CustomerID``) x product
    (``StockCode``) lines with ``weight`` = ``Quantity`` or ``amount`` and time
    ``InvoiceDate``; the split is the global temporal one (the last ``test_fraction`` of lines
    by time are held out).

    Every customer of the cleaned data gets a list: customers with no line in the training
    period (cold start) get the popularity list (:func:`train_recommender`).

    USERS (``user``, ``spend``, ``frequency``, ``spend_tier``, ``history``), one row per
    customer: each training customer's spend tier, 4 quantile tiers of their spend
    (:func:`fairscan.groups.purchasing.spend_tiers`) computed on the *training period only* —
    the tiers group the users the model was trained on, and computing them from the held-out
    period would leak the very purchases the truth is made of into the grouping. Cold-start
    customers have spend 0, frequency 0, no spend tier (missing) and ``history = "cold
    start"``. ITEMS (``item``, ``description``, ``median_price``,
    ``price_tier``, ``buyers``): the catalog the model knows (items bought in the training
    period), each with 4 quantile tiers of its median ``UnitPrice`` over its training lines
    (unweighted quantiles over items; labels from :func:`fairscan.groups.tier_labels`).
    """
    from fairscan import datasets
    from fairscan.datasets.cleaning import clean_online_retail
    from fairscan.groups.purchasing import spend_tiers

    t0 = _time.perf_counter()
    raw = datasets.load("online-retail")
    lines, removed = clean_online_retail(raw)
    lines = lines.assign(CustomerID=lines["CustomerID"].astype(np.int64))
    cols = ["CustomerID", "StockCode", "InvoiceDate", "Quantity", "UnitPrice", "amount"]
    if weight not in ("Quantity", "amount"):
        raise FairscanError(f"weight must be 'Quantity' or 'amount', got {plain(weight)}")
    trained = train_recommender(lines[cols], user="CustomerID", item="StockCode", weight=weight,
                                time="InvoiceDate", k=k, model=model, seed=seed, test_fraction=test_fraction,
                                n_neighbours=n_neighbours, name="online-retail", dataset="online-retail")
    split: Split = trained.extra["split"]
    train_lines = lines.loc[split.train.index]

    tiers = spend_tiers(train_lines, "CustomerID", "amount", n=4)
    spend = pd.DataFrame({USER: tiers["CustomerID"].to_numpy(dtype=np.int64), "spend": tiers["spend"].to_numpy(),
                          "frequency": tiers["frequency"].to_numpy(), "spend_tier": tiers["tier"].array})
    # every customer (trained.users): cold-start customers spent nothing in the training
    # period and are in no spend tier (missing: the audit's 'unknown' group)
    users = trained.users.merge(spend, on=USER, how="left", validate="one_to_one")
    users = users.fillna({"spend": 0.0, "frequency": 0}).astype({"frequency": spend["frequency"].dtype})
    users = users[[USER, "spend", "frequency", "spend_tier", HISTORY]]
    per_item = train_lines.groupby("StockCode", sort=True, observed=True)
    med = per_item["UnitPrice"].median()
    codes, labels, edges = _quantile_tiers(med.to_numpy(), 4)
    desc = per_item["Description"].first() if "Description" in train_lines else None
    items = pd.DataFrame({
        ITEM: med.index.to_numpy(),
        "median_price": med.to_numpy(),
        "price_tier": pd.Categorical.from_codes(codes, categories=list(labels), ordered=True),
        "buyers": per_item["CustomerID"].nunique().to_numpy(),
    })
    if desc is None:
        desc = raw.loc[split.train.index.intersection(raw.index), ["StockCode", "Description"]].groupby(
            "StockCode", sort=True)["Description"].first()
    items.insert(1, "description", desc.reindex(med.index).to_numpy())
    trained.users, trained.items = users, items
    seconds = _time.perf_counter() - t0
    trained.card.update({
        "cleaning": {"function": "fairscan.datasets.cleaning.clean_online_retail", "removed": removed,
                     "lines_kept": len(lines)},
        "users_table": {"columns": list(users.columns), "spend_tier": "4 quantile tiers of spend (sum of "
                        "Quantity*UnitPrice) over the TRAINING period only (no leakage from the held-out "
                        "period); cold-start customers (no training line) have spend 0, frequency 0 and no "
                        "spend tier", "edges": list(tiers.attrs.get("edges", ())), "users": len(users)},
        "items_table": {"columns": list(items.columns), "price_tier": "4 quantile tiers of each item's median "
                        "UnitPrice over its training lines", "edges": list(edges), "items": len(items)},
        "features": ["CustomerID x StockCode purchase matrix (binary; weight = summed " + weight + ")"],
    })
    trained.card.setdefault("timing_seconds", {})["total"] = round(seconds, 3)
    trained.card["files"].update({"users": USERS_FILE, "items": ITEMS_FILE, "interactions": INTERACTIONS_FILE})
    return trained


#: The coupon types in price order (cheapest first), as fairscan maps them to price tiers:
#: a coffee < a take-away meal < a restaurant meal under $20 a head < a bar evening (drinks,
#: typically $20+ a head) < a restaurant meal at $20-50 a head. The survey states no prices:
#: the two ends are clear, the place of Bar between the two restaurant tiers is a judgement.
COUPON_PRICE_ORDER: tuple[str, ...] = ("Coffee House", "Carry out & Take away", "Restaurant(<20)", "Bar",
                                       "Restaurant(20-50)")
#: The scenario ("context") columns: everything except the coupon, the answer Y and the
#: respondent's attributes. toCoupon_GEQ5min is constant and left out.
COUPON_CONTEXT_COLUMNS: tuple[str, ...] = (
    "destination", "passanger", "weather", "temperature", "time", "expiration", "toCoupon_GEQ15min",
    "toCoupon_GEQ25min", "direction_same", "direction_opp",
)


def coupon_design(frame: pd.DataFrame, coupon: str = "coupon") -> pd.DataFrame:
    """The coupon acceptance model's input: the context columns and the coupon as text, plus
    one ``coupon|column`` cross per context column (so that a linear model can rank the
    coupons differently in different contexts; without the crosses the ranking would be
    the same everywhere)."""
    _check_columns(frame, [*COUPON_CONTEXT_COLUMNS, coupon], "coupon data")
    out = {c: frame[c].astype(str).to_numpy(dtype=object) for c in COUPON_CONTEXT_COLUMNS}
    cpn = frame[coupon].astype(str).to_numpy(dtype=object)
    out["coupon"] = cpn
    for c in COUPON_CONTEXT_COLUMNS:
        out[f"coupon|{c}"] = cpn + "|" + out[c]
    return pd.DataFrame(out, index=frame.index)


def _coupon_pipeline(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    return Pipeline([
        ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ("model", LogisticRegression(max_iter=2000, C=1.0, random_state=seed)),
    ])


def coupon_recommender(*, seed: int = 0, test_fraction: float = 0.2) -> TrainedRecommender:
    """In-vehicle coupons: which of the five coupons to offer in each driving context.

    Framing. Each row of the survey is a driver in a scenario ("context": destination,
    passenger, weather, temperature, time, expiration, distance and direction to the venue —
    :data:`COUPON_CONTEXT_COLUMNS`, i.e. everything except the coupon, the answer ``Y`` and
    the respondent's attributes); the row is a "user" whose id is its row number. A
    LogisticRegression on the one-hot context, the coupon and coupon x context crosses
    (:func:`coupon_design`) learns P(accept | context, coupon) on a seeded stratified split
    of the rows (by coupon and answer); every context is then scored with each of the five
    coupons and the coupons are ranked by that probability (ties: cheaper first). The
    respondent's attributes, income included, are *not* features: any difference between
    income brackets comes through the contexts they were shown. The distance and direction
    columns describe the venue of the coupon actually shown; they are treated as part of
    the context, as if every coupon's venue were at the same place.

    Truth: the coupon of each held-out row answered ``Y = 1`` (accepted) — one observed coupon per
    row, so a hit at 1 means the model's first choice is the coupon the driver accepted.
    Hit rates on this truth also depend on which coupon the survey happened to show (Coffee
    House most often), so two more measures are reported: the held-out ROC AUC of the
    acceptance model and the *replay* acceptance rate at 1 (Li et al. 2011: the acceptance
    rate among held-out rows whose shown coupon is the policy's first choice).
    Training contexts are in the lists too (marked ``split = "train"`` in USERS); their
    ranks are in-sample. Metrics at k = 1, 2 and 5 (ndcg@5: where the accepted coupon sits);
    baseline: coupons ranked by their training acceptance rate, the same for everyone.

    USERS: ``user`` (row id), ``income`` (9 brackets, ordered), ``income_tier`` (low /
    middle / high, :data:`fairscan.datasets.cleaning.COUPON_INCOME_TIERS`), ``split``.
    ITEMS: ``item`` = coupon, ``coupon_type``, ``price_rank`` (1 cheapest .. 5),
    ``price_tier`` ("P1 Coffee House" .. "P5 Restaurant(20-50)", ordered) and ``price_level``
    (low: coffee, take-away; middle: restaurant under $20, bar; high: restaurant $20-50).
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    from fairscan import datasets
    from fairscan.datasets.cleaning import COUPON_INCOME_TIERS, coupon_income_order
    from fairscan.engines.datahash import frame_sha256

    t0 = _time.perf_counter()
    data = datasets.load("coupon")
    unknown = sorted(set(data["coupon"].dropna().unique()) - set(COUPON_PRICE_ORDER))
    if unknown:
        raise FairscanError(f"coupon data has coupon types without a price tier: {plain(unknown)}")
    n = len(data)
    ids = np.arange(n)
    strata = data["coupon"].astype(str) + "|" + data["Y"].astype(str)
    train_idx, test_idx = train_test_split(ids, test_size=test_fraction, random_state=seed, stratify=strata)
    X = coupon_design(data)
    y = data["Y"].to_numpy()
    pipe = _coupon_pipeline(seed)
    with threadpool_limits(limits=1):
        pipe.fit(X.iloc[train_idx], y[train_idx])
        auc = float(roc_auc_score(y[test_idx], pipe.predict_proba(X.iloc[test_idx])[:, 1]))
        # every context with every coupon: (rows x 5) probabilities
        probs = np.empty((n, len(COUPON_PRICE_ORDER)))
        for j, c in enumerate(COUPON_PRICE_ORDER):
            probs[:, j] = pipe.predict_proba(coupon_design(data.assign(coupon=c)))[:, 1]
    order = np.argsort(-probs, axis=1, kind="stable")  # ties: cheaper coupon first
    m = len(COUPON_PRICE_ORDER)
    coupons = np.asarray(COUPON_PRICE_ORDER, dtype=object)
    recs = pd.DataFrame({
        USER: np.repeat(ids, m),
        ITEM: coupons[order].ravel(),
        RANK: np.tile(np.arange(1, m + 1), n),
        SCORE: np.take_along_axis(probs, order, axis=1).ravel(),
        # every context is scored by the model: no cold start
        SOURCE: pd.Categorical(np.full(n * m, FROM_MODEL), categories=[FROM_MODEL, FROM_POPULARITY]),
    })
    held = data.iloc[test_idx]
    truth = pd.DataFrame({USER: test_idx[held["Y"].to_numpy() == 1],
                          ITEM: held.loc[held["Y"] == 1, "coupon"].to_numpy(dtype=object)})
    # baseline: training acceptance rate per coupon, the same ranking for every context
    rate = data.iloc[train_idx].groupby("coupon")["Y"].mean().reindex(list(COUPON_PRICE_ORDER))
    b_order = np.argsort(-rate.to_numpy(), kind="stable")
    base = pd.DataFrame({USER: np.repeat(ids, m), ITEM: np.tile(coupons[b_order], n),
                         RANK: np.tile(np.arange(1, m + 1), n), SCORE: np.tile(rate.to_numpy()[b_order], n)})
    test_recs = recs[recs[USER].isin(test_idx)]
    test_base = base[base[USER].isin(test_idx)]
    metrics: dict[str, float] = {"roc_auc": auc}
    base_metrics: dict[str, float] = {}
    for kk in (1, 2, 5):
        mm, bb = evaluate(test_recs, truth, kk), evaluate(test_base, truth, kk)
        metrics.update({key: v for key, v in mm.items() if key != "users"})
        base_metrics.update({key: v for key, v in bb.items() if key != "users"})
    metrics["users"] = base_metrics["users"] = len(truth)
    # replay (Li et al. 2011): acceptance among held-out rows whose shown coupon is the
    # policy's first choice — an estimate of the acceptance rate of offering that choice
    shown = held["coupon"].to_numpy(dtype=object)
    y_test = held["Y"].to_numpy()
    for top1, out in ((coupons[order[test_idx, 0]], metrics), (np.full(len(test_idx), coupons[b_order[0]]),
                                                                base_metrics)):
        match = top1 == shown
        out["replay_acceptance@1"] = float(y_test[match].mean()) if match.any() else float("nan")
        out["replay_rows@1"] = int(match.sum())

    split_col = np.full(n, "train", dtype=object)
    split_col[test_idx] = "test"
    brackets = coupon_income_order()
    users = pd.DataFrame({
        USER: ids,
        "income": pd.Categorical(data["income"], categories=brackets, ordered=True),
        "income_tier": pd.Categorical(data["income"].map(COUPON_INCOME_TIERS),
                                      categories=["low", "middle", "high"], ordered=True),
        "split": split_col,
    })
    tiers = [f"P{i + 1} {c}" for i, c in enumerate(COUPON_PRICE_ORDER)]
    level = ["low", "low", "middle", "middle", "high"]
    items = pd.DataFrame({
        ITEM: list(COUPON_PRICE_ORDER),
        "coupon_type": list(COUPON_PRICE_ORDER),
        "price_rank": np.arange(1, m + 1),
        "price_tier": pd.Categorical(tiers, categories=tiers, ordered=True),
        "price_level": pd.Categorical(level, categories=["low", "middle", "high"], ordered=True),
    })
    seconds = _time.perf_counter() - t0
    card = _card(
        "coupon", dataset="coupon", model="LogisticRegression (lbfgs, C=1) on one-hot context, coupon and "
        "coupon x context crosses", features=[*COUPON_CONTEXT_COLUMNS, "coupon",
                                              *(f"coupon|{c}" for c in COUPON_CONTEXT_COLUMNS)],
        split={"method": "stratified row split (by coupon x Y)", "test_fraction": test_fraction, "seed": seed,
               "train_rows": len(train_idx), "test_rows": len(test_idx),
               "description": "users are rows (driver x scenario); truth = the coupon of held-out rows "
                              "answered Y = 1"},
        seed=seed, sizes={"rows": n, "contexts": n, "coupons": m, "truth_pairs": len(truth),
                          "recommendation_rows": len(recs)},
        metrics={"model": metrics, "popularity": base_metrics}, data_sha=frame_sha256(data), k=m,
        params={"design": "fairscan.recommenders.coupon_design", "tie_break": "cheaper coupon first"},
        notes=["The respondent's attributes (income included) are not features; groups differ only through "
               "the contexts they were shown.",
               "toCoupon_* and direction_* describe the venue of the coupon shown; they are treated as context.",
               "Audit with k = 1 (the offer made) or 2: at k = 5 every context sees every coupon.",
               "Baseline ('popularity'): coupons ranked by training acceptance rate, the same for everyone."],
        extra={"price_order": list(COUPON_PRICE_ORDER), "income_order": brackets,
               "timing_seconds": {"total": round(seconds, 3)}, "cold_start_users": 0,
               "framing": "each row's driving context is a 'user'; items are the 5 coupon types"},
    )
    card["files"].update({"users": USERS_FILE, "items": ITEMS_FILE})
    return TrainedRecommender("coupon", pipe, recs, truth, metrics, base_metrics, card, None, users, items,
                              baseline=rate, extra={"train_idx": train_idx, "test_idx": test_idx})


# ----------------------------------------------------------------------------- save / load


def save_recommender(trained: TrainedRecommender, out_dir: str | os.PathLike) -> Path:
    """Write ``recommendations.parquet``, ``truth.parquet``, ``card.json``, ``model.skops``
    and, when present, ``users.parquet``, ``items.parquet`` and ``interactions.parquet``."""
    import skops.io as sio

    out = Path(out_dir)
    model = trained.model
    state = model.state() if isinstance(model, _Base) else model
    try:
        out.mkdir(parents=True, exist_ok=True)
        sio.dump(state, out / MODEL_FILE)
        trained.recommendations.to_parquet(out / RECS_FILE, index=False, compression="zstd")
        trained.truth.to_parquet(out / TRUTH_FILE, index=False, compression="zstd")
        for frame, fname in ((trained.users, USERS_FILE), (trained.items, ITEMS_FILE),
                             (trained.interactions, INTERACTIONS_FILE)):
            if frame is not None:
                frame.to_parquet(out / fname, index=False, compression="zstd")
        card = dict(trained.card)
        card["model_sha256"] = hashlib.sha256((out / MODEL_FILE).read_bytes()).hexdigest()
        card["model_format"] = ("skops dict: ids, user_items and similarity as scipy CSR (stored by skops with "
                                "scipy.sparse.save_npz)" if isinstance(model, _Base) else "skops Pipeline")
        (out / CARD_FILE).write_text(json.dumps(card, indent=2, default=str) + "\n", encoding="utf-8")
    except OSError as e:
        raise FairscanError(f"cannot write the recommender to '{out}': {e.strerror}") from None
    return out


def load_recommender(path: str | os.PathLike) -> Any:
    """Load a saved recommender (a directory or its ``model.skops``): a fitted
    :class:`ItemKNNRecommender` / :class:`PopularityRecommender`, or the coupon Pipeline.
    Only skops' trusted types, scipy CSR matrices and fairscan's own scikit-learn types are
    accepted."""
    import skops.io as sio

    from fairscan.modeling import ALLOWED_TYPES

    p = Path(path)
    if p.is_dir():
        p = p / MODEL_FILE
    if not p.exists():
        raise FairscanError(f"recommender file '{p}' not found")
    found = sio.get_untrusted_types(file=p)
    bad = sorted(set(found) - set(SPARSE_TYPES) - set(ALLOWED_TYPES))
    if bad:
        raise FairscanError(f"'{p}' holds types fairscan does not trust: {', '.join(bad)}; refusing to load it")
    obj = sio.load(p, trusted=list(found))
    if isinstance(obj, dict):
        return _from_state(obj)
    return obj
