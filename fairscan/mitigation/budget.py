"""Budget-constrained group allocation: a fixed number of offers, re-allocated across groups.

Two rules, both deciding only from the scores (no labels at decision time):

- ``demographic_parity`` — **exact**: quotas proportional to group sizes, rounded by the
  largest-remainder method so they sum to the budget exactly; each group's quota goes to its
  highest scores.
- ``true_positive_rate_parity`` (also used for ``equalized_odds``) — **greedy**: offers are
  handed out one at a time to the group whose expected true positive rate is lowest, where
  the expected positives are the sum of calibrated probabilities (so the scores must be
  calibrated probabilities). Equal opportunity is the part of equalized odds a budget can
  target; the false positive rates are reported, not constrained.

``strength`` in [0, 1] interpolates the quotas between the unconstrained top-K (0) and full
parity (1); the total always stays exactly K.
"""

from __future__ import annotations

import numpy as np

__all__ = ["allocate", "largest_remainder"]


def largest_remainder(shares: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to ``shares`` that sum exactly to ``total``."""
    shares = np.asarray(shares, dtype=float)
    raw = shares / shares.sum() * total if shares.sum() > 0 else np.zeros_like(shares)
    base = np.floor(raw).astype(int)
    short = total - int(base.sum())
    order = np.argsort(-(raw - base), kind="stable")
    base[order[:short]] += 1
    return base


def _top_within(scores: np.ndarray, groups: np.ndarray, quotas: dict[int, int]) -> np.ndarray:
    d = np.zeros(len(scores), dtype=bool)
    for g, q in quotas.items():
        idx = np.flatnonzero(groups == g)
        if q > 0:
            d[idx[np.argsort(-scores[idx], kind="stable")[:q]]] = True
    return d


def allocate(
    scores: np.ndarray, groups: np.ndarray, k: int, constraint: str, strength: float = 1.0
) -> np.ndarray:
    """Decisions (True = offer) for exactly ``k`` rows; see the module docstring."""
    scores = np.asarray(scores, dtype=float)
    codes, groups = np.unique(groups, return_inverse=True)
    n_groups = len(codes)
    k = int(min(max(k, 0), len(scores)))
    top = np.zeros(len(scores), dtype=bool)
    top[np.argsort(-scores, kind="stable")[:k]] = True
    unconstrained = np.bincount(groups[top], minlength=n_groups)
    sizes = np.bincount(groups, minlength=n_groups)
    if constraint == "demographic_parity":
        parity = largest_remainder(sizes, k)
    else:
        parity = _greedy_tpr_quotas(scores, groups, n_groups, k)
    mixed = (1 - strength) * unconstrained + strength * parity
    quotas = np.minimum(largest_remainder(mixed, k), sizes)
    # a group capped at its size passes its surplus to the others, best scores first
    spare = k - int(quotas.sum())
    d = _top_within(scores, groups, dict(enumerate(quotas)))
    if spare > 0:
        rest = np.flatnonzero(~d)
        d[rest[np.argsort(-scores[rest], kind="stable")[:spare]]] = True
    return d


def _greedy_tpr_quotas(scores: np.ndarray, groups: np.ndarray, n_groups: int, k: int) -> np.ndarray:
    """Quotas that equalise expected TPR: the next offer goes to the lowest expected TPR."""
    sorted_scores = []
    totals = np.zeros(n_groups)
    for g in range(n_groups):
        s = np.sort(scores[groups == g])[::-1]
        sorted_scores.append(np.concatenate([[0.0], np.cumsum(s)]))
        totals[g] = s.sum()
    quotas = np.zeros(n_groups, dtype=int)
    sizes = np.array([len(c) - 1 for c in sorted_scores])
    for _ in range(k):
        with np.errstate(invalid="ignore", divide="ignore"):
            tpr = np.array([sorted_scores[g][quotas[g]] for g in range(n_groups)]) / np.where(totals > 0, totals, 1)
        tpr = np.where(quotas < sizes, tpr, np.inf)
        quotas[int(np.argmin(tpr))] += 1
    return quotas
