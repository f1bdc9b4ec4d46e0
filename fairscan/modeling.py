"""Reference targeting models: a scikit-learn pipeline trained on a seeded, stratified split.

The held-out rows, scored, are what an audit needs: an honest picture of how the model
would treat customers it has not seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from fairscan.errors import FairscanError, suggest

SCORE = "score"


@dataclass
class TrainedModel:
    """A fitted pipeline, its features, hold-out metrics and the scored hold-out rows."""

    pipeline: Pipeline
    features: list[str]
    sensitive: list[str]
    target: str
    positive_label: object
    holdout: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    test_size: float = 0.3


def _pipeline(X: pd.DataFrame, model: str, seed: int) -> Pipeline:
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]
    categorical = [c for c in X.columns if c not in numeric]
    onehot = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5, sparse_output=False)
    if model == "gbm":
        pre = ColumnTransformer([("num", "passthrough", numeric), ("cat", onehot, categorical)])
        est = HistGradientBoostingClassifier(random_state=seed, max_iter=200, learning_rate=0.1)
    elif model == "logistic":
        pre = ColumnTransformer([("num", StandardScaler(), numeric), ("cat", onehot, categorical)])
        est = LogisticRegression(max_iter=2000)
    else:
        raise FairscanError(f"unknown model '{model}': use gbm or logistic")
    return Pipeline([("features", pre), ("model", est)])


def train_targeting(
    data: pd.DataFrame,
    target: str,
    positive_label: object,
    *,
    features: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    sensitive: Sequence[str] = (),
    model: Literal["gbm", "logistic"] = "gbm",
    seed: int = 0,
    test_size: float = 0.3,
) -> TrainedModel:
    """Train a targeting model of ``target == positive_label``.

    Features default to every column except the target, ``drop`` and ``sensitive`` (the
    sensitive attributes are kept out of the model, and kept in the scored hold-out so the
    audit can group by them).
    """
    cols = list(data.columns)
    for c in [target, *drop, *sensitive, *(features or [])]:
        if c not in cols:
            raise FairscanError(f"column '{c}' not found{suggest(c, cols)}")
    if features is None:
        features = [c for c in cols if c != target and c not in drop and c not in sensitive]
    if not features:
        raise FairscanError("no feature columns left to train on")
    y = (data[target] == positive_label).to_numpy()
    if y.all() or not y.any():
        raise FairscanError(f"label '{target}' has no {'negative' if y.all() else 'positive'} rows; cannot train")
    idx = np.arange(len(data))
    train_idx, test_idx = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    X = data[list(features)]
    pipe = _pipeline(X, model, seed)
    pipe.fit(X.iloc[train_idx], y[train_idx])
    score = pipe.predict_proba(X.iloc[test_idx])[:, 1]
    y_test = y[test_idx]
    metrics = {
        "roc_auc": float(roc_auc_score(y_test, score)),
        "accuracy": float(accuracy_score(y_test, score >= 0.5)),
        "brier": float(brier_score_loss(y_test, score)),
    }
    keep = list(dict.fromkeys([target, *sensitive]))
    holdout = data.iloc[test_idx][keep].copy()
    holdout.insert(0, "row_id", test_idx)
    holdout[SCORE] = score
    return TrainedModel(pipe, list(features), list(sensitive), target, positive_label,
                        holdout.reset_index(drop=True), metrics, seed, test_size)
