"""Recommendation (ranking) metrics as pure functions of small statistics.

Nothing here reads impression rows: :mod:`fairscan.recs` reduces the sparse ``(user, item,
rank)`` log to per-user and per-(user group x item group) tables, and these functions turn
those tables into metrics, intervals and tests. The conventions, pinned once (sources and
golden values: ``docs/RECS_METRICS.md``):

- **Position weights** ``v_r``: ``"log"`` = ``1/log2(1+r)`` (Singh & Joachims), ``"none"`` =
  1 for every rank, or a callable mapping the ranks ``1..k`` to non-negative weights.
- **Exclusion** ``Excl_g(c)``: share of the users of group g with no item of item group c
  anywhere in their top k (users without any list count as excluded from everything).
- **Inclusion ratio** ``(1 - Excl_g) / (1 - Excl_ref)``, judged by the four-fifths rule.
- **Exposure share** ``Share_g(c) = sum_{u in g} sum_{r<=k} v_r [item at r in c] / (|g| sum_{r=1..k} v_r)``:
  the share of the *maximum possible* position-weighted exposure; users without a list (or
  with a list shorter than k) contribute zero for the missing slots, so the shares of a
  group sum to at most 1. The *exposure distribution* ``p_g(c) = Share_g(c) / sum_c Share_g(c)``
  is what divergences compare.
- **Total variation** ``1/2 sum_c |p_g(c) - p_ref(c)|``; **KL** ``KL(p_g || p_ref)`` in nats with
  additive smoothing ``p~ = (p + alpha) / (1 + C alpha)`` on both sides, ``alpha = 1e-3``
  (``alpha = 0`` reproduces Holistic AI's ``exposure_kl``, which is infinite when the
  reference has no mass where the group has some).
- **Bias disparity** (Tsintzou et al.; Elliot): ``BR(g,c) = [share of g's top-k items in c] /
  P(c)`` with *unweighted* slot counts and ``P(c)`` the catalog share of c; ``BS`` the same on
  past interactions (weighted by the interaction weight when there is one); ``BD = (BR-BS)/BS``.
- **Utility** (binary relevance): ``ndcg@k`` = DCG with gain 1 and discount ``1/log2(1+rank)``
  (always log, whatever the exposure discount) over the ideal DCG of ``min(|relevant|, k)``
  hits; ``recall@k = hits / |relevant|``; ``precision@k = hits / k`` (k, even for a shorter
  list); ``hit_rate@k = [hits > 0]``. Averaged over the users with at least one relevant item
  (as Li et al.'s UGF code does); a user without a list but with relevant items scores 0.
- **Calibration** (Steck 2018): ``C_KL(p, q) = sum_c p ln(p / q~)``, ``q~ = (1-a) q + a p``,
  ``a = 0.01``, natural log; ``p(c|i) = 1`` for the item's single group.
- **Gini** of item exposure over *all* catalog items (never-shown items count as 0), counts
  sorted ascending: ``sum_i (2i - n - 1) p_i / (n - 1)`` (Holistic AI, the default here) or
  ``/ n`` (RecBole's ``GiniIndex``).
- **Aggregate diversity** ``|items shown| / |catalog|``; **coverage** of an item group = share
  of its catalog items shown to anyone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Literal

import numpy as np

from fairscan.metrics.stats import welch_test

__all__ = [
    "KL_ALPHA", "NORMAL_ABOVE", "PERMUTATION_MAX", "STECK_ALPHA", "Discount",
    "aggregate_diversity", "bias_disparity", "bias_ratio",
    "binomial_bootstrap", "discount_name", "discount_weights", "gini", "ideal_dcg",
    "kl_divergence", "mean_difference_test", "permutation_pvalue", "resample_means", "steck_ckl",
    "total_variation",
    "user_utilities",
]

KL_ALPHA = 1e-3
STECK_ALPHA = 0.01
#: groups larger than this get a normal approximation of the bootstrap of their means
NORMAL_ABOVE = 50_000
#: permutation tests when both samples together have at most this many users, else Welch's t
PERMUTATION_MAX = 5_000

Discount = Literal["log", "none"] | Callable[[np.ndarray], np.ndarray]


def discount_weights(k: int, discount: Discount = "log") -> np.ndarray:
    """Position weights ``v_1..v_k`` (see the module docstring)."""
    ranks = np.arange(1, k + 1, dtype=float)
    if isinstance(discount, str):
        if discount == "log":
            return 1.0 / np.log2(1.0 + ranks)
        if discount == "none":
            return np.ones(k)
        raise ValueError(f"discount must be 'log', 'none' or a callable, got {discount!r}")
    if not callable(discount):
        raise ValueError(f"discount must be 'log', 'none' or a callable, got {discount!r}")
    v = np.asarray(discount(ranks), dtype=float)
    if v.shape != (k,) or not np.isfinite(v).all() or (v < 0).any() or v.sum() <= 0:
        raise ValueError(f"the discount callable must map the {k} ranks to {k} finite non-negative "
                         "weights, not all zero")
    return v


def discount_name(discount: Discount) -> str:
    """How a discount is named in results: 'log', 'none' or 'callable:NAME'."""
    if isinstance(discount, str):
        return discount
    return f"callable:{getattr(discount, '__name__', type(discount).__name__)}"


def ideal_dcg(n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Ideal DCG with binary gain: ``sum_{r=1..min(n, k)} 1/log2(1+r)`` (0 where n = 0)."""
    cum = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(2.0 + np.arange(k)))])
    return cum[np.minimum(np.asarray(n_relevant, dtype=np.int64), k)]


def user_utilities(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user ndcg, recall, precision and hit rate at k from a (U, k) boolean matrix of
    relevant hits by rank and each user's number of relevant items; NaN where a user has no
    relevant item (they are left out of group averages)."""
    hits = np.asarray(hits, dtype=bool)
    n_rel = np.asarray(n_relevant, dtype=float)
    disc = 1.0 / np.log2(2.0 + np.arange(hits.shape[1]))
    dcg = hits @ disc
    n_hits = hits.sum(axis=1).astype(float)
    idcg = ideal_dcg(n_relevant, k)
    has = n_rel > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "ndcg": np.where(has, dcg / np.where(has, idcg, 1.0), np.nan),
            "recall": np.where(has, n_hits / np.where(has, n_rel, 1.0), np.nan),
            "precision": np.where(has, n_hits / k, np.nan),
            "hit_rate": np.where(has, (n_hits > 0).astype(float), np.nan),
        }


def _normalise(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    tot = p.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, p / np.where(tot > 0, tot, 1.0), np.nan)


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``1/2 sum |p - q|`` over the last axis, after normalising each to sum 1."""
    return 0.5 * np.abs(_normalise(p) - _normalise(q)).sum(axis=-1)


def kl_divergence(p: np.ndarray, q: np.ndarray, alpha: float = KL_ALPHA) -> np.ndarray:
    """``KL(p || q)`` in nats over the last axis, each normalised to sum 1 and smoothed as
    ``(x + alpha) / (1 + C alpha)``; ``alpha = 0``: no smoothing (inf where q = 0 < p)."""
    p, q = _normalise(p), _normalise(q)
    c = p.shape[-1]
    if alpha:
        p = (p + alpha) / (1 + c * alpha)
        q = (q + alpha) / (1 + c * alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(p > 0, p * np.log(p / q), np.where(np.isnan(p) | np.isnan(q), np.nan, 0.0))
    return terms.sum(axis=-1)


def steck_ckl(p: np.ndarray, q: np.ndarray, alpha: float = STECK_ALPHA) -> np.ndarray:
    """Steck's miscalibration ``sum_c p ln(p / ((1-alpha) q + alpha p))`` over the last axis;
    ``p`` the user's history distribution, ``q`` the recommended list's (rows sum to 1)."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    qt = (1 - alpha) * q + alpha * p
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(p > 0, p * np.log(p / np.where(qt > 0, qt, 1.0)), 0.0)
    return terms.sum(axis=-1)


def gini(counts: np.ndarray, denominator: Literal["n-1", "n"] = "n-1") -> float:
    """Gini of item exposure counts over all catalog items (zeros included): counts sorted
    ascending, ``sum_i (2i - n - 1) p_i / (n - 1)`` (Holistic AI) or ``/ n`` (RecBole)."""
    c = np.sort(np.asarray(counts, dtype=float))
    n = len(c)
    tot = c.sum()
    d = n - 1 if denominator == "n-1" else n
    if tot <= 0 or d <= 0:
        return float("nan")
    w = 2 * np.arange(1, n + 1) - n - 1
    return float((w * (c / tot)).sum() / d)


def aggregate_diversity(counts: np.ndarray) -> float:
    """``|items shown| / |catalog|`` from per-catalog-item exposure counts."""
    c = np.asarray(counts)
    return float((c > 0).sum() / len(c)) if len(c) else float("nan")


def bias_ratio(slot_share: np.ndarray, catalog_share: np.ndarray) -> np.ndarray:
    """``BR = share of a group's items in c / P(c)`` (NaN where P(c) = 0)."""
    cs = np.asarray(catalog_share, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cs > 0, np.asarray(slot_share, dtype=float) / np.where(cs > 0, cs, 1.0), np.nan)


def bias_disparity(br: np.ndarray, bs: np.ndarray) -> np.ndarray:
    """``BD = (BR - BS) / BS`` (NaN where BS is 0 or undefined)."""
    br, bs = np.asarray(br, dtype=float), np.asarray(bs, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(bs > 0, (br - bs) / np.where(bs > 0, bs, 1.0), np.nan)


def binomial_bootstrap(x: np.ndarray, n: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of rates ``x / n``: shape (n_boot, *x.shape).

    Each count is redrawn as Binomial(n, x/n): the exact nonparametric bootstrap of a
    proportion (resampling the n users and recounting). NaN where n = 0.
    """
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, x / np.maximum(n, 1), 0.0)
    draws = rng.binomial(np.broadcast_to(n, (n_boot, *n.shape)), np.broadcast_to(p, (n_boot, *p.shape)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, draws / np.maximum(n, 1), np.nan)


def resample_means(
    values: np.ndarray, n_boot: int, rng: np.random.Generator, normal_above: int = NORMAL_ABOVE
) -> tuple[np.ndarray, str]:
    """Bootstrap replicates of the column means of a (n, M) per-user table: (n_boot, M).

    Up to ``normal_above`` users: users are resampled with replacement (each replicate's
    multiplicities are a Multinomial(n, 1/n) draw, made as n uniform draws counted with
    ``bincount``; large jobs on two threads with streams spawned from ``rng``), so any ratio of column means is bootstrapped jointly. Above it: the means
    are drawn from their normal approximation N(mean, cov / n) (central limit theorem),
    which keeps the covariance between columns. Returns the replicates and which was used.
    """
    v = np.asarray(values, dtype=float)
    n, m = v.shape
    if n == 0 or n_boot == 0:
        return np.full((n_boot, m), np.nan), "none"
    if n > normal_above:
        mean = v.mean(axis=0)
        cov = np.atleast_2d(np.cov(v, rowvar=False)) / n
        return rng.multivariate_normal(mean, cov, size=n_boot, method="eigh"), "normal"
    if n * n_boot < 4_000_000:
        return _resample_block(v, n_boot, rng), "resample"
    # two threads (numpy releases the GIL while drawing and counting), each with its own
    # stream spawned from rng: the result depends only on the seed, not on the machine
    from concurrent.futures import ThreadPoolExecutor

    half = n_boot // 2
    kids = rng.spawn(2)
    with ThreadPoolExecutor(2) as ex:
        parts = list(ex.map(_resample_block, (v, v), (half, n_boot - half), kids))
    return np.concatenate(parts), "resample"


def _resample_block(v: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    n, m = v.shape
    out = np.empty((n_boot, m))
    batch = max(1, min(n_boot, 2_000_000 // n))
    w = np.empty((batch, n))
    for start in range(0, n_boot, batch):
        b = min(batch, n_boot - start)
        idx = rng.integers(0, n, size=(b, n), dtype=np.int32 if n < 2**31 else np.int64)
        for j in range(b):
            w[j] = np.bincount(idx[j], minlength=n)
        out[start:start + b] = w[:b] @ v
    return out / n


def mean_difference_test(
    x: np.ndarray, y: np.ndarray, n_resamples: int, rng: np.random.Generator,
    permutation_max: int = PERMUTATION_MAX,
) -> tuple[float, str]:
    """Two-sided p-value for equal means of per-user values ``x`` (group) and ``y``
    (reference), and the test used.

    ``"permutation"``: a permutation test of the difference of means, group labels shuffled
    (:func:`permutation_pvalue`: exact when the distinct relabellings are at most
    ``n_resamples``, else ``(count + 1) / (n_resamples + 1)``), when ``len(x) + len(y) <=
    permutation_max``; otherwise ``"welch_t"``: Welch's t-test (unequal variances), which
    holds its level at large n. (NaN, "") when a side has fewer than two users.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < 2 or len(y) < 2:
        return float("nan"), ""
    if len(x) + len(y) <= permutation_max and n_resamples > 0:
        return permutation_pvalue(x, y, n_resamples, rng), "permutation"
    if np.ptp(np.concatenate([x, y])) == 0:
        return 1.0, "welch_t"
    p = welch_test(x, y)
    return (p if np.isfinite(p) else float("nan")), "welch_t"


def permutation_pvalue(x: np.ndarray, y: np.ndarray, n_resamples: int, rng: np.random.Generator) -> float:
    """Two-sided permutation p-value of the difference of means of ``x`` and ``y``, with
    scipy.stats.permutation_test's definition (``permutation_type="independent"``): exact
    over every distinct relabelling when there are at most ``n_resamples`` of them, else
    ``n_resamples`` random ones with p = (count + 1) / (n_resamples + 1); two-sided = twice
    the smaller one-sided p, at most 1; differences within 100 ulps of the observed one count
    as ties.

    Vectorised (a matrix of relabellings per batch; no scipy.stats import, which alone takes
    most of a second): a relabelling only needs the sum of the smaller side's values."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    z = np.concatenate([x, y])
    n, nx, ny = len(z), len(x), len(y)
    if np.ptp(z) == 0:
        return 1.0
    total = z.sum()
    m = min(nx, ny)  # the side whose sum is drawn

    def stat(side_sums: np.ndarray) -> np.ndarray:
        sx = side_sums if m == nx else total - side_sums
        return sx / nx - (total - sx) / ny

    # the observed difference by the very arithmetic of the relabellings, so that a relabelling
    # with the same values gives the same float (a tie), even when the means are equal
    observed = float(stat(np.array([z[:m].sum() if m == nx else z[nx:].sum()]))[0])

    gamma = abs(np.finfo(float).eps * 100 * observed)
    if math.comb(n, m) <= n_resamples:  # exact: every distinct relabelling once
        combos = np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(n), m)), dtype=np.int64)
        null = stat(z[combos.reshape(-1, m)].sum(axis=1))
        count, adjust = len(null), 0
        ge, le = int((null >= observed - gamma).sum()), int((null <= observed + gamma).sum())
    else:
        ge = le = 0
        batch = max(1, min(n_resamples, 4_000_000 // n))
        for start in range(0, n_resamples, batch):
            b = min(batch, n_resamples - start)
            picks = np.argpartition(rng.random((b, n)), m - 1, axis=1)[:, :m]  # a uniform m-subset per row
            null = stat(z[picks].sum(axis=1))
            ge += int((null >= observed - gamma).sum())
            le += int((null <= observed + gamma).sum())
        count, adjust = n_resamples, 1
    p = 2 * min((ge + adjust) / (count + adjust), (le + adjust) / (count + adjust))
    return float(min(p, 1.0))
