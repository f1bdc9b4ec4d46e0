"""Re-ranking: a mitigation for recommendation exclusion (top N candidates -> top k).

Two re-rankers, each with a tunable ``strength`` (0 = the original top k):

- :func:`calibrated_rerank` — **Steck's calibrated re-ranking** (Steck 2018). Each user's list
  is built greedily: at step t the candidate i that maximises
  ``(1 - λ) Σ_{j ∈ I ∪ {i}} s(j) - λ C_KL(p, q(I ∪ {i}))`` is appended, λ = ``strength``.
  ``C_KL(p, q) = Σ_c p(c) ln(p(c) / q~(c))``, ``q~ = (1 - α) q + α p``, α = 0.01, natural log
  (:func:`fairscan.metrics.ranking.steck_ckl`, the audit's function). ``p`` is the user's
  history distribution over item groups (weighted by ``weight`` when ``history`` has it, one
  per row otherwise; ``p(c|i) = 1`` for the item's one group) when ``history`` is given and
  the user has one, else ``target``: ``"catalog"`` (each group's share of the catalog),
  ``"uniform"`` or a mapping group -> weight. ``q(I)`` is the item-group distribution of the
  list, each slot weighted by ``discount`` (``"none"``: equal weights, as in Steck's
  experiments; ``"log"``: ``1/log2(1+rank)``, the audit's position weights). Scores are
  min-max normalised per user to [0, 1] (``normalize=True``), so that λ means the same for
  any model's score scale; ties go to the earlier candidate. λ = 0 returns the original
  order; λ = 1 only calibrates.
- :func:`exposure_floor_rerank` — **FA*IR** (Zehlike et al. 2017). For each user, every
  prefix of length i = 1..k of the list holds at least ``mtable[i-1]`` items of the
  protected item group, ``mtable[i-1] = binom.ppf(alpha, i, p)`` with p = ``strength`` (the
  minimum share) — **index convention: ``mtable[0]`` is for the prefix of length 1**, as in
  fairsearchcore's ``mtable_as_list``. Greedy merge: when the protected count is below the
  table, the best remaining protected candidate is taken, else the best remaining candidate
  of either kind ("the higher score"). Optionally only for the users in ``apply_to`` user
  groups. ``adjust_alpha=True`` uses FA*IR's adjusted significance (the family-wise
  correction for testing k prefixes; :func:`fair_adjust_alpha`).

Candidates are a long table ``user, item[, score][, rank]``; each user's candidates are
ordered by ``rank`` when there is one, else by ``score`` (descending). Without ``score``,
``-rank`` is used. Output: ``user, item, rank, score`` (rank 1 = top, the original score).

All re-rankers run k vectorised steps over a (users x N) candidate matrix: no Python loop
over users.

FA*IR's tables: :func:`fair_mtable`, :func:`fair_fail_probability` (exact: a dynamic
programme over the number of protected items, each position protected with probability p;
it checks all k prefixes) and :func:`fair_adjust_alpha` (fairsearchcore's bisection).
They reproduce fairsearchcore's golden values for (k, p, α) = (20, .25, .1): unadjusted
``[0]*8 + [1]*6 + [2]*5 + [3]``, adjusted ``[0]*8 + [1]*7 + [2]*5``, adjusted α = 0.078125,
fail probability of the adjusted table 0.105152; also (10, .2, .15) and (30, .3, .05).
fairsearchcore's own (30, .3, .15) test expects α = 0.0796875: its fail-probability code
skips the k-th prefix, whereas the exact probability here checks it and gives 0.075.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairscan.errors import FairscanError, plain, suggest
from fairscan.groups import match_group
from fairscan.metrics import ranking

__all__ = [
    "calibrated_rerank",
    "exposure_floor_rerank",
    "fair_adjust_alpha",
    "fair_fail_probability",
    "fair_mtable",
    "rerank",
    "tradeoff_curve",
]

UNKNOWN = "unknown"
Target = Literal["catalog", "uniform"] | Mapping[str, float]


# ----------------------------------------------------------------------------- FA*IR tables


def fair_mtable(k: int, p: float, alpha: float = 0.1, *, adjust: bool = False) -> np.ndarray:
    """FA*IR's table of the minimum number of protected items in each prefix:
    ``out[i-1] = binom.ppf(alpha, i, p)`` for prefix lengths i = 1..k (``adjust``: with
    :func:`fair_adjust_alpha`'s alpha)."""
    _check_fair(k, p, alpha)
    if adjust:
        return fair_adjust_alpha(k, p, alpha)[1]
    return _mtable(k, p, alpha)


def _mtable(k: int, p: float, alpha: float) -> np.ndarray:
    from scipy.stats import binom

    if p <= 0:
        return np.zeros(k, dtype=np.int64)
    i = np.arange(1, k + 1)
    return np.clip(np.nan_to_num(binom.ppf(alpha, i, min(p, 1.0)), nan=0.0), 0, i).astype(np.int64)


def fair_fail_probability(mtable: Sequence[int] | np.ndarray, p: float) -> float:
    """Probability that a random ranking (each position protected with probability ``p``,
    independently) fails ``mtable`` in at least one prefix — exact, by dynamic programming."""
    m = np.asarray(mtable, dtype=np.int64)
    dist = np.zeros(len(m) + 2)
    dist[0] = 1.0
    for need in m:
        new = dist * (1 - p)
        new[1:] += dist[:-1] * p
        new[:max(int(need), 0)] = 0.0
        dist = new
    return float(1.0 - dist.sum())


def fair_adjust_alpha(k: int, p: float, alpha: float = 0.1) -> tuple[float, np.ndarray, float]:
    """FA*IR's adjusted significance: the alpha whose table fails a fair (binomial) ranking
    with overall probability closest to ``alpha`` (fairsearchcore's bisection between 0 and
    ``alpha``). Returns (adjusted alpha, its mtable, its fail probability)."""
    _check_fair(k, p, alpha)
    if p <= 0:
        return alpha, np.zeros(k, dtype=np.int64), 0.0

    def bound(a: float) -> tuple[float, float, np.ndarray]:
        m = _mtable(k, p, a)
        return a, fair_fail_probability(m, p), m

    def closest(*bs: tuple[float, float, np.ndarray]) -> tuple[float, float, np.ndarray]:
        return min(bs, key=lambda b: abs(b[1] - alpha))  # first wins ties: (min, mid, max) order

    lo, hi = bound(0.0), bound(alpha)
    mid = bound(alpha / 2)
    while lo[2].sum() < hi[2].sum() and mid[1] != alpha:
        if mid[1] < alpha:
            lo = bound(mid[0])
        elif mid[1] > alpha:
            hi = bound(mid[0])
        mid = bound((lo[0] + hi[0]) / 2)
        if hi[2].sum() - lo[2].sum() == 1 or hi[0] - lo[0] <= 1e-16:
            best = closest(lo, hi)
            return best[0], best[2], best[1]
        if hi[2].sum() - mid[2].sum() == 1 and mid[2].sum() - lo[2].sum() == 1:
            d_lo, d_mid, d_hi = (abs(b[1] - alpha) for b in (lo, mid, hi))
            best = mid if d_mid <= d_hi and d_mid <= d_lo else lo if d_lo <= d_hi else hi
            return best[0], best[2], best[1]
    return mid[0], mid[2], mid[1]


def _check_fair(k: int, p: float, alpha: float) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise FairscanError(f"k must be a whole number >= 1, got {plain(k)}")
    if not 0 <= p <= 1:
        raise FairscanError(f"the floor strength p (minimum protected share) must be in [0, 1], got {plain(p)}")
    if not 0 < alpha < 1:
        raise FairscanError(f"alpha must be between 0 and 1, got {plain(alpha)}")


# ----------------------------------------------------------------------------- candidates


@dataclass
class _Candidates:
    users: pd.Index  # (U,)
    item_ids: pd.Index  # the distinct candidate items
    items: np.ndarray  # (U, N) codes into item_ids (-1 = padding)
    scores: np.ndarray  # (U, N) float (-inf = padding)
    valid: np.ndarray  # (U, N) bool
    group: np.ndarray  # (U, N) item group code (0 for padding)
    labels: list[str]  # item group labels


def _item_group_map(item_groups: Any, item_col: str = "item", group_col: str | None = None) -> pd.Series:
    """``item -> group label`` from a Series / dict / two-column DataFrame."""
    if isinstance(item_groups, pd.DataFrame):
        if group_col is None:
            others = [c for c in item_groups.columns if c != item_col]
            if item_col not in item_groups.columns or len(others) != 1:
                raise FairscanError("item_groups: give a Series item -> group, or a DataFrame with the item column "
                                    "and one group column")
            group_col = others[0]
        ser = pd.Series(item_groups[group_col].to_numpy(), index=pd.Index(item_groups[item_col]))
    elif isinstance(item_groups, pd.Series):
        ser = item_groups
    elif isinstance(item_groups, Mapping):
        ser = pd.Series(dict(item_groups))
    else:
        raise FairscanError(f"item_groups: give a Series, a dict or a DataFrame, got {type(item_groups).__name__}")
    if not ser.index.is_unique:
        dup = ser.index[ser.index.duplicated()][0]
        raise FairscanError(f"item_groups has duplicate item {plain(dup)}; give one group per item")
    return ser.astype(object).where(ser.notna(), UNKNOWN).map(str)


def _candidates(df: pd.DataFrame, groups: pd.Series, user_col: str, item_col: str, score_col: str,
                rank_col: str) -> _Candidates:
    if not isinstance(df, pd.DataFrame):
        raise FairscanError(f"candidates: give a pandas DataFrame, got {type(df).__name__}")
    cols = [str(c) for c in df.columns]
    for c in (user_col, item_col):
        if c not in df.columns:
            raise FairscanError(f"candidates have no column '{c}'{suggest(c, cols)}")
    if score_col not in df.columns and rank_col not in df.columns:
        raise FairscanError(f"candidates need a '{score_col}' or a '{rank_col}' column to order them")
    for c in (user_col, item_col, score_col, rank_col):
        if c in df.columns and df[c].isna().any():
            raise FairscanError(f"candidates column '{c}' has {int(df[c].isna().sum()):,} missing value(s)")
    if df.duplicated([user_col, item_col]).any():
        raise FairscanError("candidates have duplicate (user, item) pairs; give each item once per user")
    score = (df[score_col].to_numpy(dtype=float) if score_col in df.columns
             else -df[rank_col].to_numpy(dtype=float))
    u_code, users = pd.factorize(df[user_col], sort=False)
    i_code, item_ids = pd.factorize(df[item_col], sort=False)
    order_key = df[rank_col].to_numpy(dtype=float) if rank_col in df.columns else -score
    order = np.lexsort((order_key, u_code))
    u_sorted = u_code[order]
    n_u = len(users)
    counts = np.bincount(u_code, minlength=n_u)
    width = int(counts.max()) if n_u else 0
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(order)) - starts[u_sorted]
    items = np.full((n_u, width), -1, dtype=np.int64)
    scores = np.full((n_u, width), -np.inf)
    items[u_sorted, pos] = i_code[order]
    scores[u_sorted, pos] = score[order]
    valid = np.zeros((n_u, width), dtype=bool)
    valid[u_sorted, pos] = True
    item_lab = groups.reindex(pd.Index(item_ids)).fillna(UNKNOWN).to_numpy(dtype=object)
    labels = sorted(set(groups.unique()) | set(item_lab))
    item_gcode = pd.Index(labels).get_indexer(item_lab)
    group = np.where(valid, item_gcode[np.maximum(items, 0)], 0)
    return _Candidates(pd.Index(users), pd.Index(item_ids), items, scores, valid, group, labels)


def _output(c: _Candidates, picks: np.ndarray, user_col: str, item_col: str) -> pd.DataFrame:
    """Long ``user, item, rank, score`` from a (U, k) matrix of candidate positions (-1 = none)."""
    ok = picks >= 0
    u = np.broadcast_to(np.arange(len(c.users))[:, None], picks.shape)[ok]
    p = picks[ok]
    return pd.DataFrame({
        user_col: c.users[u],
        item_col: c.item_ids.take(c.items[u, p]),
        "rank": np.broadcast_to(np.arange(1, picks.shape[1] + 1), picks.shape)[ok].astype(np.int64),
        "score": c.scores[u, p],
    })


def _apply_mask(c: _Candidates, users: pd.DataFrame | None, user_groups: str | None, apply_to: Any,
                user_col: str) -> np.ndarray:
    """Which candidate users the re-ranking applies to (all unless ``apply_to`` is given)."""
    if apply_to is None:
        return np.ones(len(c.users), dtype=bool)
    if users is None or user_groups is None:
        raise FairscanError("apply_to needs the USERS table and its user group column")
    for col in (user_col, user_groups):
        if col not in users.columns:
            raise FairscanError(f"USERS has no column '{col}'{suggest(col, [str(x) for x in users.columns])}")
    known = sorted({str(v) for v in users[user_groups].dropna().unique()})
    wanted = {match_group(a, known, what="apply_to names user group", where=f"'{user_groups}'")
              for a in ([apply_to] if isinstance(apply_to, str) else apply_to)}
    g = pd.Series(users[user_groups].astype(object).map(str).to_numpy(), index=pd.Index(users[user_col]))
    if not g.index.is_unique:
        raise FairscanError(f"USERS has duplicate '{user_col}' values; give one row per user")
    return g.reindex(c.users).isin(wanted).to_numpy()


# ----------------------------------------------------------------------------- calibrated


def _target(target: Target, labels: list[str], groups: pd.Series) -> np.ndarray:
    if isinstance(target, str):
        if target == "uniform":
            return np.full(len(labels), 1.0 / len(labels))
        if target == "catalog":
            cnt = groups.value_counts()
            v = np.array([float(cnt.get(lab, 0)) for lab in labels])
            return v / v.sum()
        raise FairscanError(f"target must be 'catalog', 'uniform' or a mapping group -> share, got {plain(target)}")
    if not isinstance(target, Mapping):
        raise FairscanError(f"target must be 'catalog', 'uniform' or a mapping group -> share, got {plain(target)}")
    tg = {str(key): val for key, val in target.items()}
    v = np.array([float(tg.get(lab, 0.0)) for lab in labels])
    if (v < 0).any() or v.sum() <= 0 or not np.isfinite(v).all():
        raise FairscanError("target shares must be non-negative numbers, not all zero")
    return v / v.sum()


def _history_dist(history: pd.DataFrame, c: _Candidates, groups: pd.Series, user_col: str,
                  item_col: str) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate user, the item-group distribution of their history and whether they have one."""
    for col in (user_col, item_col):
        if col not in history.columns:
            raise FairscanError(f"history has no column '{col}'{suggest(col, [str(x) for x in history.columns])}")
    w = (pd.to_numeric(history["weight"], errors="coerce").to_numpy(dtype=float) if "weight" in history.columns
         else np.ones(len(history)))
    if (~np.isfinite(w) | (w < 0)).any():
        raise FairscanError("history column 'weight' has missing, negative or non-numeric values")
    u = c.users.get_indexer(history[user_col])
    g = pd.Index(c.labels).get_indexer(groups.reindex(pd.Index(history[item_col])).fillna(UNKNOWN).to_numpy())
    ok = (u >= 0) & (g >= 0)
    C = len(c.labels)
    hist = np.bincount(u[ok] * C + g[ok], weights=w[ok], minlength=len(c.users) * C).reshape(len(c.users), C)
    tot = hist.sum(axis=1)
    has = tot > 0
    return np.where(has[:, None], hist / np.where(has, tot, 1.0)[:, None], 0.0), has


def calibrated_rerank(
    candidates: pd.DataFrame,
    item_groups: Any,
    history: pd.DataFrame | None = None,
    *,
    k: int = 10,
    strength: float = 0.5,
    target: Target = "catalog",
    alpha: float = ranking.STECK_ALPHA,
    discount: Literal["none", "log"] = "none",
    normalize: bool = True,
    users: pd.DataFrame | None = None,
    user_groups: str | None = None,
    apply_to: Any = None,
    user_col: str = "user",
    item_col: str = "item",
    score_col: str = "score",
    rank_col: str = "rank",
) -> pd.DataFrame:
    """Steck's calibrated re-ranking of each user's candidates to a top ``k`` (see the module
    docstring); ``strength`` is λ in [0, 1]. Users outside ``apply_to`` groups keep their
    original top k."""
    lam = _strength(strength)
    k = _k(k)
    groups = _item_group_map(item_groups, item_col)
    c = _candidates(candidates, groups, user_col, item_col, score_col, rank_col)
    if isinstance(target, Mapping):  # a target may name groups that no item has
        c.labels = c.labels + sorted({str(x) for x in target} - set(c.labels))
    U, N = c.scores.shape
    C = len(c.labels)
    tgt = _target(target, c.labels, groups)
    p = np.broadcast_to(tgt, (U, C)).copy()
    if history is not None:
        hp, has = _history_dist(history, c, groups, user_col, item_col)
        p[has] = hp[has]
    active = _apply_mask(c, users, user_groups, apply_to, user_col)
    lam_u = np.where(active, lam, 0.0)
    s = np.where(c.valid, c.scores, 0.0)
    if normalize and N:
        lo = np.where(c.valid, c.scores, np.inf).min(axis=1, keepdims=True)
        hi = np.where(c.valid, c.scores, -np.inf).max(axis=1, keepdims=True)
        span = np.where(np.isfinite(hi - lo) & (hi > lo), hi - lo, 1.0)
        s = np.where(c.valid, np.where(hi > lo, (s - lo) / span, 1.0), 0.0)
    w = ranking.discount_weights(k, discount)
    rows = np.arange(U)
    taken = ~c.valid.copy()
    acc = np.zeros((U, C))
    total_w = 0.0
    picks = np.full((U, k), -1, dtype=np.int64)
    eye = np.eye(C)
    for t in range(min(k, N)):
        total_w += w[t]
        # C_KL of the list if one item of each group were appended: (U, C)
        q = (acc[:, None, :] + w[t] * eye[None]) / total_w
        ckl = ranking.steck_ckl(p[:, None, :], q, alpha)
        obj = (1 - lam_u)[:, None] * s - lam_u[:, None] * np.take_along_axis(ckl, c.group, axis=1)
        obj[taken] = -np.inf
        j = np.argmax(obj, axis=1)
        ok = ~taken[rows, j]
        picks[ok, t] = j[ok]
        taken[rows[ok], j[ok]] = True
        acc[rows[ok], c.group[rows[ok], j[ok]]] += w[t]
    out = _output(c, picks, user_col, item_col)
    out.attrs.update(method="calibrated", strength=lam, k=k, target=target if isinstance(target, str) else dict(
        target), alpha=alpha, discount=discount, users_reranked=int(active.sum()))
    return out


# ----------------------------------------------------------------------------- FA*IR floor


def exposure_floor_rerank(
    candidates: pd.DataFrame,
    item_groups: Any,
    users: pd.DataFrame | None = None,
    user_groups: str | None = None,
    *,
    k: int = 10,
    protected_item_group: str,
    strength: float = 0.25,
    alpha: float = 0.1,
    adjust_alpha: bool = False,
    apply_to: Any = None,
    user_col: str = "user",
    item_col: str = "item",
    score_col: str = "score",
    rank_col: str = "rank",
) -> pd.DataFrame:
    """FA*IR re-ranking of each user's candidates to a top ``k`` with at least
    ``mtable[i-1]`` items of ``protected_item_group`` in every prefix of length i (see the
    module docstring); ``strength`` = p, the minimum share. ``apply_to``: only users of
    these groups of ``users[user_groups]``. ``.attrs["floor_unmet_users"]`` counts users
    whose candidates hold too few protected items to meet the table."""
    p = _strength(strength)
    k = _k(k)
    groups = _item_group_map(item_groups, item_col)
    protected_item_group = match_group(protected_item_group, sorted({str(x) for x in groups.unique()}),
                                       what="protected item group", where="the items' groups")
    c = _candidates(candidates, groups, user_col, item_col, score_col, rank_col)
    U, N = c.scores.shape
    mtable = fair_mtable(k, p, alpha, adjust=adjust_alpha)
    active = _apply_mask(c, users, user_groups, apply_to, user_col)
    prot = c.valid & (c.group == c.labels.index(str(protected_item_group)))
    rows = np.arange(U)
    remaining = c.valid.copy()
    count = np.zeros(U, dtype=np.int64)
    unmet = np.zeros(U, dtype=bool)
    picks = np.full((U, k), -1, dtype=np.int64)
    for t in range(min(k, N)):
        need = active & (count < mtable[t])
        rem_p = remaining & prot
        has_p = rem_p.any(axis=1)
        best_any = np.argmax(remaining, axis=1)
        best_p = np.argmax(rem_p, axis=1)
        j = np.where(need & has_p, best_p, best_any)
        ok = remaining[rows, j]
        picks[ok, t] = j[ok]
        remaining[rows[ok], j[ok]] = False
        count += ok & prot[rows, j]
        unmet |= active & ok & (count < mtable[t])
    out = _output(c, picks, user_col, item_col)
    out.attrs.update(method="floor", strength=p, k=k, alpha=alpha, adjust_alpha=adjust_alpha,
                     mtable=[int(x) for x in mtable], protected_item_group=str(protected_item_group),
                     users_reranked=int(active.sum()), floor_unmet_users=int(unmet.sum()))
    return out


def _strength(x: float) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float | np.integer | np.floating) or not 0 <= x <= 1:
        raise FairscanError(f"strength must be a number in [0, 1], got {plain(x)}")
    return float(x)


def _k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise FairscanError(f"k must be a whole number >= 1, got {plain(k)}")
    return int(k)


# ----------------------------------------------------------------------------- entry point


def rerank(
    recs_or_candidates: pd.DataFrame,
    users: pd.DataFrame | None,
    items: pd.DataFrame,
    *,
    user_group: str | None = None,
    item_group: str,
    method: Literal["calibrated", "floor"] = "calibrated",
    strength: float,
    k: int = 10,
    history: pd.DataFrame | None = None,
    target: Target = "catalog",
    protected_item_group: str | None = None,
    apply_to: Any = None,
    alpha: float | None = None,
    adjust_alpha: bool = False,
    discount: Literal["none", "log"] = "none",
    user_col: str = "user",
    item_col: str = "item",
    score_col: str = "score",
    rank_col: str = "rank",
) -> pd.DataFrame:
    """Re-rank recommendation candidates (top N per user) to a top ``k``:
    ``method="calibrated"`` (:func:`calibrated_rerank`, strength = λ) or ``"floor"``
    (:func:`exposure_floor_rerank`, strength = minimum protected share p;
    ``protected_item_group`` required). ``items[item_group]`` gives each item's group;
    ``users[user_group]`` is needed only with ``apply_to``. ``alpha``: Steck's smoothing
    (default 0.01) or FA*IR's significance (default 0.1). Returns ``user, item, rank, score``."""
    if not isinstance(items, pd.DataFrame):
        raise FairscanError(f"ITEMS: give a pandas DataFrame, got {type(items).__name__}")
    for col in (item_col, item_group):
        if col not in items.columns:
            raise FairscanError(f"ITEMS has no column '{col}'{suggest(col, [str(x) for x in items.columns])}")
    groups = _item_group_map(items[[item_col, item_group]], item_col, item_group)
    if method == "calibrated":
        return calibrated_rerank(recs_or_candidates, groups, history, k=k, strength=strength, target=target,
                                 alpha=ranking.STECK_ALPHA if alpha is None else alpha, discount=discount,
                                 users=users, user_groups=user_group, apply_to=apply_to, user_col=user_col,
                                 item_col=item_col, score_col=score_col, rank_col=rank_col)
    if method == "floor":
        if protected_item_group is None:
            raise FairscanError("method 'floor' needs protected_item_group: the item group every list must show")
        return exposure_floor_rerank(recs_or_candidates, groups, users, user_group, k=k,
                                     protected_item_group=protected_item_group, strength=strength,
                                     alpha=0.1 if alpha is None else alpha, adjust_alpha=adjust_alpha,
                                     apply_to=apply_to, user_col=user_col, item_col=item_col,
                                     score_col=score_col, rank_col=rank_col)
    raise FairscanError(f"unknown re-ranking method '{method}'{suggest(str(method), ['calibrated', 'floor'])}; "
                        "use calibrated or floor")


def tradeoff_curve(
    candidates: pd.DataFrame,
    users: pd.DataFrame,
    items: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    user_group: str,
    item_group: str,
    method: Literal["calibrated", "floor"],
    strengths: Sequence[float] = (0, 0.25, 0.5, 0.75, 1),
    k: int = 10,
    focus_item_group: str | None = None,
    protected_item_group: str | None = None,
    history: pd.DataFrame | None = None,
    n_boot: int = 50,
    seed: int = 0,
    reference: str | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Evaluate :func:`rerank` at each strength on held-out ``truth`` with
    :func:`fairscan.recs.audit_recs`.

    One row per (strength, user group) plus a row ``user_group = "(all)"``: ``users``;
    ``ndcg`` (ndcg@k over the group's users with a held-out relevant item, ``ndcg_users`` of
    them) with its interval and ``ndcg_change`` against the first strength (0 by default:
    the original top k);
    for the item group of interest (``focus_item_group``, default ``protected_item_group``):
    ``exclusion`` (share never shown it in the top k) with its interval, ``exclusion_gap``
    (minus the reference group's; on the "(all)" row the largest minus the smallest group),
    ``inclusion_ratio`` and ``exposure_share``; ``c_kl`` when ``history`` is given (Steck's,
    position-weighted, as the audit computes it); ``seconds`` of the re-ranking.
    ``n_boot`` is kept small for speed; the intervals are the audit's bootstrap.
    """
    from fairscan.recommenders import evaluate
    from fairscan.recs import audit_recs

    focus = focus_item_group or protected_item_group
    if focus is None:
        raise FairscanError("name the item group of interest: focus_item_group (or protected_item_group)")
    focus = match_group(focus, sorted({str(v) for v in items[item_group].dropna().unique()}),
                        what="item group", where=f"ITEMS '{item_group}'")
    rows: list[dict[str, Any]] = []
    base_ndcg: dict[str, float] = {}
    for st in strengths:
        t0 = time.perf_counter()
        out = rerank(candidates, users, items, user_group=user_group, item_group=item_group, method=method,
                     strength=st, k=k, history=history, protected_item_group=protected_item_group, **kwargs)
        seconds = time.perf_counter() - t0
        res = audit_recs(out, users, items, user_group=user_group, item_group=item_group, k=k, truth=truth,
                         interactions=history, n_boot=n_boot, seed=seed, reference=reference)
        ex = res.exclusion[res.exclusion["item_group"] == str(focus)].set_index("user_group")
        xp = res.exposure[res.exposure["item_group"] == str(focus)].set_index("user_group")
        ut = res.utility[res.utility["metric"] == f"ndcg@{k}"].set_index("user_group")
        cal = res.calibration.set_index("user_group") if len(res.calibration) else None
        ref = res.meta["reference"]
        ref_ex = float(ex.loc[ref, "rate"])
        overall = evaluate(out, truth, k)
        for g in ex.index:
            rows.append({
                "method": method, "strength": float(st), "user_group": g, "users": ex.loc[g, "users"],
                "ndcg": ut.loc[g, "value"] if g in ut.index else np.nan,
                "ndcg_ci_low": ut.loc[g, "ci_low"] if g in ut.index else np.nan,
                "ndcg_ci_high": ut.loc[g, "ci_high"] if g in ut.index else np.nan,
                "ndcg_users": ut.loc[g, "users"] if g in ut.index else pd.NA,
                "exclusion": ex.loc[g, "rate"], "exclusion_ci_low": ex.loc[g, "rate_ci_low"],
                "exclusion_ci_high": ex.loc[g, "rate_ci_high"], "exclusion_gap": ex.loc[g, "rate"] - ref_ex,
                "inclusion_ratio": ex.loc[g, "inclusion_ratio"], "exposure_share": xp.loc[g, "share"],
                "c_kl": cal.loc[g, "c_kl"] if cal is not None and g in cal.index else np.nan,
                "reference": g == ref, "seconds": seconds,
            })
        n_u = ex["users"].astype("Float64").fillna(0).to_numpy(dtype=float)
        rate = ex["rate"].to_numpy(dtype=float)
        ok = np.isfinite(rate) & (n_u > 0)
        excl_all = float((rate[ok] * n_u[ok]).sum() / n_u[ok].sum()) if ok.any() else np.nan
        share = xp["share"].to_numpy(dtype=float)
        rows.append({
            "method": method, "strength": float(st), "user_group": "(all)", "users": int(n_u.sum()),
            "ndcg": overall[f"ndcg@{k}"], "ndcg_ci_low": np.nan, "ndcg_ci_high": np.nan,
            "ndcg_users": overall["users"], "exclusion": excl_all, "exclusion_ci_low": np.nan,
            "exclusion_ci_high": np.nan,
            "exclusion_gap": float(np.nanmax(rate) - np.nanmin(rate)) if ok.any() else np.nan,
            "inclusion_ratio": np.nan,
            "exposure_share": float((share[ok] * n_u[ok]).sum() / n_u[ok].sum()) if ok.any() else np.nan,
            "c_kl": float(np.nansum(cal["c_kl"] * cal["users"].astype(float)) / cal["users"].astype(float).sum())
            if cal is not None and cal["users"].notna().any() else np.nan,
            "reference": False, "seconds": seconds,
        })
        if float(st) == float(strengths[0]):
            base_ndcg = {r["user_group"]: r["ndcg"] for r in rows if r["strength"] == float(st)}
    out_df = pd.DataFrame(rows)
    out_df["ndcg_change"] = out_df["ndcg"] - out_df["user_group"].map(base_ndcg).astype(float)
    out_df.attrs.update(method=method, k=k, focus_item_group=str(focus), n_boot=n_boot,
                        baseline_strength=float(strengths[0]) if len(strengths) else None)
    return out_df
