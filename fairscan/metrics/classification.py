"""Group metrics of binary decisions, as pure functions of the cell counts.

Every metric is a proportion ``numerator / denominator`` where both are sums of the four
cells (0 = TN, 1 = FP, 2 = FN, 3 = TP; see :mod:`fairscan.engines.base`). Writing them as
cell masks makes point estimates, bootstrap replicates and tests one matrix product each.
Names follow fairlearn's. A rate whose denominator is empty is undefined (NaN -> null).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DESCRIPTIONS", "EXCLUSION_SIGN", "LABEL_FREE", "METRICS", "masks", "paired_projections", "rates"]

TN, FP, FN, TP = 0, 1, 2, 3

#: metric -> (numerator cells, denominator cells)
METRICS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "base_rate": ((FN, TP), (TN, FP, FN, TP)),
    "selection_rate": ((FP, TP), (TN, FP, FN, TP)),
    "true_positive_rate": ((TP,), (FN, TP)),
    "false_positive_rate": ((FP,), (TN, FP)),
    "false_negative_rate": ((FN,), (FN, TP)),
    "true_negative_rate": ((TN,), (TN, FP)),
    "precision": ((TP,), (FP, TP)),
    "accuracy": ((TN, TP), (TN, FP, FN, TP)),
}

#: the sign of a change in the metric that leaves a group worse off, for every decision metric:
#: fewer offers (selection rate), fewer to those who would take them (true positive rate) or to
#: the others (false positive rate), more of the first missed (false negative rate) or of the
#: others refused (true negative rate), a higher bar for an offer (precision: only sure bets)
EXCLUSION_SIGN: dict[str, int] = {
    "selection_rate": -1, "true_positive_rate": -1, "false_positive_rate": -1,
    "false_negative_rate": 1, "true_negative_rate": 1, "precision": 1,
}

#: metrics that need no label (outcomes unknown for customers never offered anything)
LABEL_FREE = ("selection_rate",)

#: plain-language names for messages and reports
DESCRIPTIONS: dict[str, str] = {
    "base_rate": "share with a positive outcome",
    "selection_rate": "share offered",
    "true_positive_rate": "share offered among those who would say yes",
    "false_positive_rate": "share offered among those who would say no",
    "false_negative_rate": "share missed among those who would say yes",
    "true_negative_rate": "share not offered among those who would say no",
    "precision": "share of offers that were taken up",
    "accuracy": "share of correct decisions",
}


def masks(metrics: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(4, M) numerator and denominator masks for the given metrics."""
    num = np.zeros((4, len(metrics)))
    den = np.zeros((4, len(metrics)))
    for j, m in enumerate(metrics):
        nc, dc = METRICS[m]
        num[list(nc), j] = 1
        den[list(dc), j] = 1
    return num, den


def rates(cells: np.ndarray, metrics: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rates, numerators and denominators, shape ``cells.shape[:-1] + (M,)``.

    ``cells`` has the four cells on its last axis (counts or weight sums); a rate with a
    zero denominator is NaN.
    """
    num_m, den_m = masks(metrics)
    num = cells @ num_m
    den = cells @ den_m
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    return r, num, den


def paired_projections() -> tuple[np.ndarray, np.ndarray]:
    """(8, 4) matrices taking two decisions' paired cells 4y + 2a + b (two models on the same
    rows) to decision A's and decision B's own 4-cell tables (2y + d: TN/FP/FN/TP)."""
    pa, pb = np.zeros((8, 4)), np.zeros((8, 4))
    for y in (0, 1):
        for a in (0, 1):
            for b in (0, 1):
                pa[4 * y + 2 * a + b, 2 * y + a] = 1
                pb[4 * y + 2 * a + b, 2 * y + b] = 1
    return pa, pb
