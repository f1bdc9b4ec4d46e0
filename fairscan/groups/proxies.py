"""Proxy detection: can a model rebuild a sensitive attribute it was never given?

Leaving ``sex`` out of a model does not stop it from using sex: a column such as
``relationship`` (Husband / Wife) carries nearly the same information. :func:`detect_proxies`
measures, for each feature alone and for all features together, how well the sensitive
attribute can be predicted from them (the "unethical inference" check).

Conventions (documented for users):
- The score is an out-of-fold ROC AUC (``StratifiedKFold``, ``cv`` folds, shuffled with
  ``seed``; the same folds for every feature and for the combined model). 0.5 means the
  feature says nothing about the groups, 1.0 that it separates them perfectly. Scores are
  reported as they are: an out-of-fold score is a predicted probability of the positive
  group, so a value below 0.5 only arises from noise (a useless feature with many rare
  values typically lands slightly below 0.5).
- Binary sensitive attribute: the positive group is ``positive``, or else the second of the
  sorted values (``Male`` for ``Female``/``Male``); AUC is symmetric in meaning, so the choice
  does not change the score. Multi-class: the macro average of the one-vs-rest AUCs. Giving
  ``positive`` for a multi-class attribute analyses that group against all the others.
- Single feature: a cheap predictor that captures non-monotone relations. A categorical
  feature is target-encoded out of fold (the class frequencies of its value in the training
  folds, smoothed towards the overall frequencies with ``SMOOTHING`` pseudo-rows, so rare and
  unseen values fall back to the overall frequencies). A numeric feature with more than
  ``MAX_BINS`` distinct values is first cut into up to ``MAX_BINS`` quantile bins
  (right-closed, as for tiers; tied edges merged); one with fewer keeps each value. Missing
  values (and infinities) are a category of their own, never dropped.
- Interval: DeLong's variance of the AUC (fast midrank algorithm of Sun & Xu 2014) and a
  normal interval at level ``confidence``, clipped to [0, 1]. For multi-class, the variance of
  the macro average assumes the per-class AUCs are independent: an approximation (they share
  rows, so the true interval is usually somewhat wider). A perfect separation (AUC 1.0) has
  zero DeLong variance, hence the interval [1, 1].
- Combined: out-of-fold class probabilities of a ``HistGradientBoostingClassifier`` on all
  features (``HGB_MAX_ITER`` iterations, no early stopping, one thread; categorical features
  natively, missing values natively; a categorical feature keeps its
  ``MAX_HGB_CATEGORIES - 1`` most frequent values, the rest are pooled). Proxies
  that are weak one by one can be strong together: compare ``combined`` with the singles.
- ``proxy`` is True when the LOWER bound of the interval exceeds ``threshold``.
- Rows with a missing sensitive value cannot be scored: they are dropped from this analysis
  and counted in ``dropped_missing_sensitive`` (and in ``notes``).
- ``nmi``: normalised mutual information (arithmetic normalisation) between the binned
  feature and the sensitive attribute, on all rows; descriptive only (no interval, and it
  grows with the number of distinct values, unlike the out-of-fold score).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fairscan.errors import FairscanError, plain, suggest
from fairscan.groups import value_label
from fairscan.metrics.stats import z_value

__all__ = ["ProxyReport", "delong_auc", "detect_proxies"]

METRIC = "roc_auc"
# A feature alone that separates the groups with AUC 0.7 ("acceptable discrimination" in
# Hosmer & Lemeshow's scale) already lets a model act on the sensitive attribute; requiring
# the interval's lower bound to clear it keeps small samples from raising false alarms.
DEFAULT_THRESHOLD = 0.7
MAX_BINS = 20
SMOOTHING = 10.0
MAX_HGB_CATEGORIES = 250
HGB_MAX_ITER = 100


@dataclass
class ProxyReport:
    """Result of :func:`detect_proxies`.

    ``features``: one row per feature (feature, score, score_ci_low, score_ci_high, nmi,
    proxy), sorted by score, highest first. ``combined``: ``{"score", "score_ci"}`` for all
    features together. ``n_rows``: rows analysed; ``dropped_missing_sensitive``: rows left
    out because their sensitive value is missing (also said in ``notes``). ``positive``: label of the positive group, or None for a multi-class macro AUC.
    """

    sensitive: str
    metric: str
    threshold: float
    features: pd.DataFrame
    combined: dict
    n_rows: int
    dropped_missing_sensitive: int
    confidence: float = 0.95
    cv: int = 5
    positive: str | None = None
    classes: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def proxies(self) -> list[str]:
        """Names of the features flagged as proxies, strongest first."""
        return [str(f) for f in self.features.loc[self.features["proxy"], "feature"]]

    def to_dict(self) -> dict:
        """JSON-ready dict; the keys features/feature/score/score_ci/proxy/combined are a contract."""
        rows = [
            {
                "feature": str(r.feature),
                "score": _num(r.score),
                "score_ci": [_num(r.score_ci_low), _num(r.score_ci_high)],
                "nmi": _num(r.nmi),
                "proxy": bool(r.proxy),
            }
            for r in self.features.itertuples(index=False)
        ]
        return {
            "sensitive": self.sensitive,
            "metric": self.metric,
            "threshold": float(self.threshold),
            "confidence": float(self.confidence),
            "cv": int(self.cv),
            "positive": self.positive,
            "classes": list(self.classes),
            "n_rows": int(self.n_rows),
            "dropped_missing_sensitive": int(self.dropped_missing_sensitive),
            "features": rows,
            "combined": {
                "score": _num(self.combined["score"]),
                "score_ci": [_num(v) for v in self.combined["score_ci"]],
            },
            "notes": list(self.notes),
        }


def _num(x: object) -> float | None:
    x = float(x)  # type: ignore[arg-type]
    return None if math.isnan(x) else x


# --------------------------------------------------------------------------------------------
# DeLong


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` with ties given the average of their positions (midranks)."""
    n = x.shape[0]
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    first = np.ones(n, dtype=bool)
    first[1:] = xs[1:] != xs[:-1]
    starts = np.flatnonzero(first)
    ends = np.append(starts[1:], n)
    ranks = np.empty(n, dtype=float)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def delong_auc(
    y_true: Sequence | np.ndarray, y_score: Sequence | np.ndarray
) -> tuple[float, float]:
    """ROC AUC of ``y_score`` for the binary labels ``y_true`` and DeLong's variance of it.

    Fast O(n log n) algorithm with midranks (Sun & Xu 2014): the structural components are
    ``V10_i = (Tz_i - Tx_i) / n0`` for each positive and ``V01_j = 1 - (Tz_j - Ty_j) / n1``
    for each negative (T = midranks in the combined sample, among positives, among
    negatives); variance = var(V10) / n1 + var(V01) / n0 (sample variances). Ties count 1/2.
    ``y_true``: booleans or 0/1, with both classes present. The variance is NaN when a class
    has a single row.
    """
    y = np.asarray(y_true)
    if y.dtype != bool:
        if not np.isin(y, (0, 1)).all():
            raise ValueError("y_true must be booleans or 0/1")
        y = y == 1
    s = np.asarray(y_score, dtype=float)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError("y_true and y_score must be 1-d arrays of the same length")
    if np.isnan(s).any():
        raise ValueError("y_score has missing values")
    pos, neg = s[y], s[~y]
    m, n = pos.shape[0], neg.shape[0]
    if m == 0 or n == 0:
        raise ValueError("y_true needs both classes to define an AUC")
    tz = _midranks(np.concatenate([pos, neg]))
    tx, ty = _midranks(pos), _midranks(neg)
    auc = (tz[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    if m < 2 or n < 2:
        return float(auc), math.nan
    var = v10.var(ddof=1) / m + v01.var(ddof=1) / n
    return float(auc), float(var)


def _auc_and_variance(y: np.ndarray, proba: np.ndarray) -> tuple[float, float]:
    """Binary (2 columns): AUC of column 1. Multi-class: macro one-vs-rest AUC; the variance
    of the mean assumes independent per-class AUCs (sum of variances / K^2)."""
    k = proba.shape[1]
    if k == 2:
        return delong_auc(y == 1, proba[:, 1])
    parts = [delong_auc(y == c, proba[:, c]) for c in range(k)]
    aucs = np.array([a for a, _ in parts])
    variances = np.array([v for _, v in parts])
    return float(aucs.mean()), float(variances.sum() / k**2)


def _interval(auc: float, var: float, z: float) -> tuple[float, float]:
    if math.isnan(var):
        return 0.0, 1.0
    half = z * math.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


# --------------------------------------------------------------------------------------------
# Features


def _numeric_values(col: pd.Series) -> np.ndarray | None:
    """Float values of a numeric / datetime / timedelta column (non-finite -> NaN), else None."""
    if pd.api.types.is_bool_dtype(col.dtype):
        return None
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        values = ((col - col.min()) / pd.Timedelta(1, "s")).to_numpy(dtype=float, na_value=np.nan)
    elif pd.api.types.is_timedelta64_dtype(col.dtype):
        values = (col / pd.Timedelta(1, "s")).to_numpy(dtype=float, na_value=np.nan)
    elif pd.api.types.is_numeric_dtype(col.dtype):
        values = col.to_numpy(dtype=float, na_value=np.nan)
    else:
        return None
    values = values.copy()
    values[~np.isfinite(values)] = np.nan
    return values


def _bin_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes 0..k-1: each distinct value if at most MAX_BINS, else up to MAX_BINS right-closed
    quantile bins; missing values get the last code."""
    missing = np.isnan(values)
    present = values[~missing]
    codes = np.empty(values.shape[0], dtype=np.int64)
    if present.size == 0:
        codes[:] = 0
        return codes, 1
    distinct = np.unique(present)
    if distinct.size <= MAX_BINS:
        codes[~missing] = np.searchsorted(distinct, present)
        k = distinct.size
    else:
        edges = np.unique(np.quantile(present, np.arange(1, MAX_BINS) / MAX_BINS))
        codes[~missing] = np.searchsorted(edges, present, side="left")
        k = edges.size + 1
    codes[missing] = k
    return codes, k + int(missing.any())


def _feature_codes(col: pd.Series) -> tuple[np.ndarray, int, np.ndarray | None]:
    """Codes 0..k-1 for the single-feature predictor, k, and the raw floats if numeric."""
    values = _numeric_values(col)
    if values is not None:
        codes, k = _bin_codes(values)
        return codes, k, values
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    k = len(uniques)
    if (codes < 0).any():
        codes[codes < 0] = k
        k += 1
    return codes, max(k, 1), None


def _oof_target_encoding(
    codes: np.ndarray, k: int, y: np.ndarray, n_classes: int, folds: list
) -> np.ndarray:
    """Out-of-fold smoothed class frequencies of each row's category, shape (n, n_classes)."""
    proba = np.empty((codes.shape[0], n_classes), dtype=float)
    for train, test in folds:
        counts = np.bincount(codes[train] * n_classes + y[train], minlength=k * n_classes)
        counts = counts.reshape(k, n_classes).astype(float)
        prior = np.bincount(y[train], minlength=n_classes) / train.shape[0]
        table = (counts + SMOOTHING * prior) / (counts.sum(axis=1, keepdims=True) + SMOOTHING)
        proba[test] = table[codes[test]]
    return proba


def _hgb_column(col: pd.Series, values: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """A column for the gradient-boosting model: raw floats, or category codes (most frequent
    first, rare ones pooled) with NaN for missing values."""
    if values is not None:
        return values, False
    codes, _ = pd.factorize(col, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    out = np.full(codes.shape[0], np.nan)
    present = codes >= 0
    if present.any():
        counts = np.bincount(codes[present])
        rank = np.empty(counts.size, dtype=np.int64)
        rank[np.argsort(-counts, kind="stable")] = np.arange(counts.size)
        out[present] = np.minimum(rank[codes[present]], MAX_HGB_CATEGORIES - 1)
    return out, True


def _oof_boosting(
    columns: list[np.ndarray],
    categorical: list[bool],
    y: np.ndarray,
    n_classes: int,
    folds: list,
    seed: int,
) -> np.ndarray:
    """Out-of-fold class probabilities of a HistGradientBoostingClassifier on all features.

    Fitted on one OpenMP thread: on a machine whose cores are busy with other work, the
    boosting's many short parallel regions spin-wait and one fit can take minutes instead of
    seconds (measured: a 5-class fit on adult went from 4 s to over 300 s on 2 shared cores).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier  # heavy import, only here
    from threadpoolctl import threadpool_limits

    x = np.column_stack(columns)
    mask = np.array(categorical, dtype=bool)
    proba = np.empty((x.shape[0], n_classes), dtype=float)
    for train, test in folds:
        model = HistGradientBoostingClassifier(
            max_iter=HGB_MAX_ITER,
            early_stopping=False,
            categorical_features=mask if mask.any() else None,
            random_state=seed,
        )
        x_train, x_test = x[train], x[test]
        # a column with no value in the training rows carries nothing to learn (and sklearn
        # cannot bin an all-missing numeric column): make it constant for this fold
        empty = np.isnan(x_train).all(axis=0)
        if empty.any():
            x_train, x_test = x_train.copy(), x_test.copy()
            x_train[:, empty] = 0.0
            x_test[:, empty] = 0.0
        with threadpool_limits(limits=1, user_api="openmp"):
            model.fit(x_train, y[train])
            proba[test] = model.predict_proba(x_test)
    return proba


# --------------------------------------------------------------------------------------------
# Entry point


def _sorted_values(values: list) -> list:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=lambda v: (type(v).__name__, str(v)))


def _check_options(threshold: float, cv: int, confidence: float) -> None:
    if isinstance(cv, bool) or not isinstance(cv, int | np.integer) or cv < 2:
        raise FairscanError(f"proxy detection: cv must be a whole number of folds >= 2, got {plain(cv)}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise FairscanError(
            f"proxy detection: threshold is an AUC between 0 and 1, got {plain(threshold)}"
        )
    if not 0.0 < float(confidence) < 1.0:
        raise FairscanError(
            f"proxy detection: confidence must be between 0 and 1, got {plain(confidence)}"
        )


def _resolve_features(
    data: pd.DataFrame, sensitive: str, features: Sequence[str] | None
) -> list[str]:
    columns = [str(c) for c in data.columns]
    if sensitive not in data.columns:
        raise FairscanError(
            f"sensitive column '{sensitive}' not found{suggest(sensitive, columns)}"
        )
    if features is None:
        chosen = [c for c in data.columns if c != sensitive]
    else:
        if isinstance(features, str):
            features = [features]
        chosen = list(dict.fromkeys(features))
        for f in chosen:
            if f not in data.columns:
                raise FairscanError(f"feature column '{f}' not found{suggest(str(f), columns)}")
        if sensitive in chosen:
            raise FairscanError(
                f"'{sensitive}' is the sensitive column: leave it out of the features to test"
            )
    if not chosen:
        raise FairscanError(f"no feature columns to test as proxies of '{sensitive}'")
    return chosen


def _resolve_positive(sensitive: str, values: list, positive: object) -> object:
    matches = [v for v in values if v == positive]
    if not matches:
        matches = [v for v in values if value_label(v) == str(positive)]
    if len(matches) != 1:
        labels = [value_label(v) for v in values]
        raise FairscanError(
            f"positive group {plain(positive)} does not occur in '{sensitive}'"
            f"{suggest(str(positive), labels)}; values: {', '.join(labels)}"
        )
    return matches[0]


def detect_proxies(
    data: pd.DataFrame,
    sensitive: str,
    features: Sequence[str] | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    cv: int = 5,
    seed: int = 0,
    confidence: float = 0.95,
    positive: object | None = None,
) -> ProxyReport:
    """Score how well each feature, and all of them together, predict ``sensitive``.

    Why: a model that never sees the sensitive attribute can still act on it through proxies;
    a high score means excluding the attribute does not make the model blind to it.

    ``features``: columns to test (default: every column except ``sensitive``).
    ``threshold``: a feature is flagged as a proxy when the lower bound of its AUC interval
    exceeds it (default 0.7, see ``DEFAULT_THRESHOLD``). ``cv``/``seed``: stratified folds for
    the out-of-fold scores. ``confidence``: level of the DeLong intervals. ``positive``: the
    positive group of a binary attribute (default: the second of the sorted values); for a
    multi-class attribute it selects one group to test against all the others (default: macro
    one-vs-rest AUC over all groups). Rows with a missing sensitive value are dropped and
    counted. See the module docstring for the conventions.
    """
    _check_options(threshold, cv, confidence)
    if not isinstance(data, pd.DataFrame):
        raise FairscanError("proxy detection needs a pandas DataFrame")
    chosen = _resolve_features(data, sensitive, features)

    target = data[sensitive]
    missing = target.isna().to_numpy()
    dropped = int(missing.sum())
    notes: list[str] = []
    if dropped == len(data):
        raise FairscanError(f"sensitive column '{sensitive}' has no non-missing values")
    if dropped:
        notes.append(
            f"dropped {dropped} of {len(data)} rows with a missing '{sensitive}' value "
            "from the proxy analysis"
        )
    keep = np.flatnonzero(~missing)
    target = target.iloc[keep]
    frame = data.iloc[keep]

    values = _sorted_values(list(pd.unique(target)))
    if len(values) < 2:
        raise FairscanError(
            f"sensitive column '{sensitive}' has a single value ({plain(value_label(values[0]))}"
            f"{' after dropping missing values' if dropped else ''}): there are no groups to infer"
        )
    target_values = target.to_numpy()
    if positive is not None or len(values) == 2:
        pos = _resolve_positive(sensitive, values, positive) if positive is not None else values[1]
        y = (target_values == pos).astype(np.int64)
        n_classes = 2
        positive_label: str | None = value_label(pos)
        if len(values) == 2:
            classes = (*(value_label(v) for v in values if v != pos), positive_label)
        else:
            classes = (f"not {positive_label}", positive_label)
    else:
        lookup = {v: i for i, v in enumerate(values)}
        y = np.array([lookup[v] for v in target_values], dtype=np.int64)
        n_classes = len(values)
        positive_label = None
        classes = tuple(value_label(v) for v in values)

    counts = np.bincount(y, minlength=n_classes)
    if counts.min() < cv:
        small = classes[int(np.argmin(counts))]
        raise FairscanError(
            f"group '{small}' of '{sensitive}' has only {int(counts.min())} rows: proxy detection "
            f"needs at least cv={cv} rows per group; merge rare groups or lower cv"
        )

    from sklearn.metrics import normalized_mutual_info_score
    from sklearn.model_selection import StratifiedKFold

    folds = list(StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed).split(y, y))
    z = z_value(confidence)

    rows = []
    hgb_columns: list[np.ndarray] = []
    hgb_categorical: list[bool] = []
    for name in chosen:
        col = frame[name]
        codes, k, raw = _feature_codes(col)
        proba = _oof_target_encoding(codes, k, y, n_classes, folds)
        auc, var = _auc_and_variance(y, proba)
        low, high = _interval(auc, var, z)
        rows.append(
            {
                "feature": str(name),
                "score": auc,
                "score_ci_low": low,
                "score_ci_high": high,
                "nmi": float(normalized_mutual_info_score(y, codes)),
                "proxy": bool(low > threshold),
            }
        )
        column, is_categorical = _hgb_column(col, raw)
        hgb_columns.append(column)
        hgb_categorical.append(is_categorical)

    table = pd.DataFrame(
        rows, columns=["feature", "score", "score_ci_low", "score_ci_high", "nmi", "proxy"]
    )
    table = table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)

    proba = _oof_boosting(hgb_columns, hgb_categorical, y, n_classes, folds, seed)
    auc, var = _auc_and_variance(y, proba)
    combined = {"score": auc, "score_ci": list(_interval(auc, var, z))}

    return ProxyReport(
        sensitive=sensitive,
        metric=METRIC,
        threshold=float(threshold),
        features=table,
        combined=combined,
        n_rows=int(y.shape[0]),
        dropped_missing_sensitive=dropped,
        confidence=float(confidence),
        cv=int(cv),
        positive=positive_label,
        classes=classes,
        notes=tuple(notes),
    )
