"""Purchasing power inferred when it is not a column: spend tiers and proxy models of tiers.

Purchasing power is rarely observed. fairscan infers it in two ways:

1. **From transactions** (:func:`spend_tiers`, :func:`assign_spend_tiers`): each customer's
   spend (monetary value) is summed over their transaction rows and cut into tiers.
2. **From a proxy model** (:func:`fit_tier_model`): where a labelled subset has a tier (an
   income bracket, an income label), a classifier of the tier is trained on allowed features
   and applied to everyone; each person keeps a probability of membership in every tier.

Conventions (documented for users):

- Spend tiers are tiers of the per-*customer* spend, never of the rows: a customer with many
  lines counts once. ``n`` alone means ``n`` quantile tiers (unweighted quantiles of the
  customers' spend, ``np.quantile`` linear interpolation, as in ``pandas.qcut``; duplicate
  edges are merged, with a warning, so heavy ties may give fewer tiers); a sequence of one or
  more increasing numbers means cut points. Bins are right-closed ``(a..b]``, the first
  open below and the last open above; labels come from :func:`fairscan.groups.tier_labels`
  ("Q1 (..307.415]" for quantile tiers, "(..500]" for cut points).
- ``spend`` is the sum of ``amount`` (or of ``amount * quantity``) over a customer's rows;
  ``frequency`` is the number of rows (pass one row per basket to count baskets);
  ``recency`` is the number of days, fractional, from the customer's last purchase to
  ``reference_time`` (default: the latest time in the data).
- Nothing is dropped silently: rows without a customer id raise :class:`FairscanError` unless
  ``drop_missing_customers=True``, and then ``.attrs["dropped_rows"]`` counts them; missing
  amounts or quantities always raise (:func:`fairscan.datasets.cleaning.clean_online_retail`, the
  bundled Online Retail data's cleaning, returns its removal counts).
- Proxy-model tiers are ordered: the categories of an ordered pandas Categorical keep their
  order; otherwise money brackets such as ``"$12500 - $24999"``, ``"Less than $12500"`` and
  ``"$100000 or More"`` are sorted by their lower bound in dollars, numbers numerically, and
  any other labels alphabetically. Rows with a missing tier are the unlabelled ones: they are
  not used for fitting but get predictions. A category of an ordered tier column with no
  labelled rows keeps its column, with probability 0.
- A tier model's accuracy is out-of-fold (seeded ``StratifiedKFold``, or
  ``StratifiedGroupKFold`` when ``groups`` names the columns identifying a person) on the
  labelled rows, with a Wilson 95% interval. When one person has several rows (the coupon
  survey: about 22 scenarios per respondent, income fixed per respondent) a row-level split
  lets the model recognise people it has already seen and the estimate is inflated (1.00 on
  coupon); pass ``groups`` for an estimate that holds for new people (0.21 on coupon). With
  ``groups`` the interval uses an effective number of rows (design effect from the spread of
  accuracy across persons), since one person's rows are not independent.
- Membership probabilities are a DataFrame aligned to the input rows, one column per tier
  label in tier order, rows summing to 1. :func:`collapse_tiers` merges fine tiers into
  coarse ones by summing their probabilities.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairscan.errors import FairscanError, plain, suggest
from fairscan.groups import tier_edges, tier_labels, value_label
from fairscan.types import UNKNOWN
from fairscan.validation import require_columns

__all__ = [
    "INFERRED",
    "TierModel",
    "assign_spend_tiers",
    "collapse_tiers",
    "fit_tier_model",
    "hard_tiers",
    "income_bracket_lower_bound",
    "infer_tiers",
    "membership",
    "parse_infer_tier",
    "spend_tiers",
    "wilson_interval",
]

_Z95 = 1.959963984540054


# --------------------------------------------------------------------------------------------
# Transactions -> spend tiers
# --------------------------------------------------------------------------------------------


def _edges(values: np.ndarray, n: int | Sequence[float], what: str) -> tuple[tuple[float, ...], bool, str]:
    """Interior cut points for ``n`` (quantile tiers of ``values``, or cut points), and a note."""
    def quantiles(probs: np.ndarray) -> np.ndarray:
        if len(values) == 0:
            raise FairscanError(f"tiers of {what}: no customers to compute quantiles from")
        return np.quantile(values, probs)

    return tier_edges(n, quantiles, what)


def _cut(values: np.ndarray, edges: Sequence[float], labels: Sequence[str]) -> pd.Categorical:
    """Right-closed bins: ``v`` goes to the first bin whose upper edge satisfies ``v <= edge``."""
    codes = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    return pd.Categorical.from_codes(codes, categories=list(labels), ordered=True)


def spend_tiers(
    transactions: pd.DataFrame,
    customer: str,
    amount: str,
    n: int | Sequence[float] = 4,
    *,
    quantity: str | None = None,
    time: str | None = None,
    reference_time: object = None,
    drop_missing_customers: bool = False,
) -> pd.DataFrame:
    """Per-customer spend, frequency, [recency] and spend tier, one row per customer.

    Spend is the inferred purchasing power: the sum of ``amount`` (times ``quantity`` when
    given) over the customer's rows. ``tier`` is an ordered Categorical of quantile tiers of
    the customers' spend (``n`` an int) or of cut points (``n`` a sequence). The returned
    frame's ``attrs`` hold ``edges``, ``quantile``, ``dropped_rows`` and ``note``.
    """
    require_columns(transactions, [customer, amount, quantity, time])
    missing_customer = transactions[customer].isna()
    n_missing = int(missing_customer.sum())
    if n_missing and not drop_missing_customers:
        raise FairscanError(
            f"{n_missing} of {len(transactions)} rows have no '{customer}': their spend cannot be "
            "attributed to anyone; drop them first or pass drop_missing_customers=True"
        )
    tx = transactions.loc[~missing_customer] if n_missing else transactions

    def numeric(col: str) -> pd.Series:
        s = tx[col]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            raise FairscanError(f"column '{col}' must be numeric to compute spend (it is {s.dtype})")
        if s.isna().any():
            raise FairscanError(
                f"column '{col}' has {int(s.isna().sum())} missing values among customers' rows; "
                "fill or drop them first"
            )
        return s.astype("float64")

    value = numeric(amount)
    if quantity is not None:
        value = value * numeric(quantity)
    grouped = value.groupby(tx[customer], sort=True)
    out = pd.DataFrame({"spend": grouped.sum(), "frequency": grouped.size().astype("int64")})
    if time is not None:
        try:
            when = pd.to_datetime(tx[time])
        except (TypeError, ValueError) as err:
            raise FairscanError(f"column '{time}' cannot be read as dates/times: {err}") from None
        if when.isna().any():
            raise FairscanError(f"column '{time}' has {int(when.isna().sum())} missing times; fill or drop them first")
        ref = when.max() if reference_time is None else pd.Timestamp(reference_time)
        last = when.groupby(tx[customer], sort=True).max()
        out["recency"] = (ref - last) / pd.Timedelta(days=1)
    edges, quantile, note = _edges(out["spend"].to_numpy(), n, f"spend per '{customer}'")
    if note:
        warnings.warn(note, UserWarning, stacklevel=2)
    labels = tier_labels(edges, quantile=quantile)
    out["tier"] = _cut(out["spend"].to_numpy(), edges, labels)
    out.index.name = customer
    out = out.reset_index()
    out.attrs.update(edges=edges, quantile=quantile, dropped_rows=n_missing, note=note)
    return out


def assign_spend_tiers(
    data: pd.DataFrame,
    customer: str,
    amount: str,
    n: int | Sequence[float] = 4,
    *,
    quantity: str | None = None,
    transactions: pd.DataFrame | None = None,
    drop_missing_customers: bool = False,
) -> pd.Series:
    """Each row's customer spend tier, aligned to ``data`` (for an audit table's tier column).

    Spend is computed from ``transactions`` when given (``data`` then needs only the
    ``customer`` column, e.g. one row per customer-decision), else from ``data`` itself.
    Rows whose customer is missing, or has no transactions, get a missing tier (the audit
    counts them in the ``unknown`` group; ``attrs["unmatched_rows"]`` counts the latter, and
    an error is raised when no customer matches at all); missing customers in the spend
    data still raise unless ``drop_missing_customers=True``.
    """
    source = data if transactions is None else transactions
    require_columns(data, [customer])
    table = spend_tiers(source, customer, amount, n, quantity=quantity,
                        drop_missing_customers=drop_missing_customers)
    tiers = table.set_index(customer)["tier"]
    codes = data[customer].map(tiers.cat.codes).astype("float64").fillna(-1).astype(int).to_numpy()
    has_id = data[customer].notna().to_numpy()
    unmatched = int((has_id & (codes < 0)).sum())
    if has_id.any() and unmatched == int(has_id.sum()):
        raise FairscanError(
            f"no customer of '{customer}' in the data appears in the transactions; check that "
            f"both columns hold the same ids and type ({data[customer].dtype} vs "
            f"{source[customer].dtype})"
        )
    result = pd.Categorical.from_codes(codes, categories=tiers.cat.categories, ordered=True)
    out = pd.Series(result, index=data.index, name=f"{amount} tier")
    out.attrs.update(table.attrs, unmatched_rows=unmatched)
    return out


# --------------------------------------------------------------------------------------------
# Proxy model of a tier
# --------------------------------------------------------------------------------------------

_MONEY = r"\$\s*([\d,]+(?:\.\d+)?)\s*(k|K)?"


def income_bracket_lower_bound(label: str) -> float | None:
    """Lower bound in dollars of a money bracket label, or None if it is not one.

    "Less than $12500" -> 0, "$12500 - $24999" -> 12500, "$100000 or More" -> 100000.
    """
    text = str(label).strip()
    if re.fullmatch(rf"(?i)(less than|under|below)\s*{_MONEY}", text):
        return 0.0
    m = re.fullmatch(rf"(?i){_MONEY}\s*(?:-|–|to)\s*{_MONEY}", text) or re.fullmatch(
        rf"(?i){_MONEY}\s*(?:or more|or over|and over|\+)", text
    )
    if not m:
        return None
    value = float(m.group(1).replace(",", ""))
    return value * 1000 if m.group(2) else value


def _tier_order(tier: pd.Series) -> list:
    """Tier values in their natural order (see the module docstring)."""
    if isinstance(tier.dtype, pd.CategoricalDtype) and tier.dtype.ordered:
        return list(tier.dtype.categories)
    values = list(pd.unique(tier.dropna()))
    bounds = [income_bracket_lower_bound(v) if isinstance(v, str) else None for v in values]
    if values and all(b is not None for b in bounds):
        return [v for _, v in sorted(zip(bounds, values, strict=True), key=lambda p: p[0])]
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _as_text(X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Categorical features as text, missing values as the explicit level 'unknown'."""
    frame = pd.DataFrame(X)
    return frame.astype(object).where(frame.notna(), UNKNOWN).astype(str).to_numpy(dtype=object)


def _as_float(X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Numeric features as float64 (nullable integers' missing values become NaN)."""
    return pd.DataFrame(X).astype("float64").to_numpy()


def _pipeline(X: pd.DataFrame, model: str, seed: int) -> Any:
    # scikit-learn is imported here: it costs more than a second, and spend tiers need none of it
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    categorical = [c for c in X.columns if c not in numeric]
    cat = Pipeline([
        ("text", FunctionTransformer(_as_text, feature_names_out="one-to-one")),
        ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=50,
                                 sparse_output=False)),
    ])
    to_float = FunctionTransformer(_as_float, feature_names_out="one-to-one")
    if model == "gbm":
        num: Any = to_float
        est = HistGradientBoostingClassifier(random_state=seed)
    elif model == "logistic":
        num = Pipeline([("float", to_float), ("impute", SimpleImputer(strategy="median")),
                        ("scale", StandardScaler())])
        est = LogisticRegression(max_iter=2000)
    else:
        raise FairscanError(f"unknown model '{model}': use gbm or logistic")
    pre = ColumnTransformer([("num", num, numeric), ("cat", cat, categorical)])
    return Pipeline([("features", pre), ("model", est)])


def wilson_interval(successes: float, n: float, z: float = _Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default); ``n`` may be an effective size.
    A thin wrapper of :func:`fairscan.metrics.stats.wilson` for one proportion."""
    from scipy.special import ndtr

    from fairscan.metrics.stats import wilson

    if n <= 0:
        return (0.0, 1.0)
    lo, hi = wilson(successes / n, n, confidence=float(2 * ndtr(z) - 1))
    return (float(lo), float(hi))


def _effective_n(hits: np.ndarray, group_id: np.ndarray) -> float:
    """Effective number of independent rows behind a clustered proportion (design effect).

    Rows of one person are not independent: the variance of the accuracy is estimated from
    per-group totals (ratio estimator), and ``n_eff = p(1-p) / var``, at most the row count.
    One row per person gives every row; persons whose rows are all right or all wrong count
    about once each.
    """
    n = len(hits)
    p = hits.mean()
    totals = np.bincount(group_id, weights=hits.astype(float))
    sizes = np.bincount(group_id).astype(float)
    g = len(sizes)
    if g < 2 or p in (0.0, 1.0):
        return float(n)
    var = float(((totals - p * sizes) ** 2).sum()) / n**2
    if var <= 0:
        return float(n)
    return float(min(n, p * (1 - p) / var))


@dataclass
class TierModel:
    """A fitted classifier of a tier, its tier labels in order and out-of-fold quality.

    ``classes`` are the tier labels (text), lowest first; ``accuracy`` and ``confusion`` are
    out-of-fold on the ``n_labelled`` labelled rows; ``accuracy_ci`` is a Wilson 95% interval
    on ``n_effective`` rows (``n_labelled``, or fewer when ``groups`` makes rows of one person
    count together); ``majority_rate`` is the accuracy of always guessing the largest tier,
    the baseline to beat; ``oof_proba`` holds the out-of-fold probabilities of the labelled
    rows.
    """

    pipeline: Any  # a fitted scikit-learn Pipeline
    tier: str
    classes: tuple[str, ...]
    features: tuple[str, ...]
    accuracy: float
    accuracy_ci: tuple[float, float]
    confusion: pd.DataFrame
    n_labelled: int
    n_effective: float
    majority_rate: float
    cv: int
    seed: int
    model: str
    groups: tuple[str, ...] = ()
    oof_proba: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def _X(self, data: pd.DataFrame) -> pd.DataFrame:
        require_columns(data, self.features)
        return data[list(self.features)]

    def predict_proba(self, data: pd.DataFrame) -> pd.DataFrame:
        """Membership probabilities: rows aligned to ``data``, one column per tier, summing to 1."""
        raw = self.pipeline.predict_proba(self._X(data))
        proba = np.zeros((len(data), len(self.classes)))
        proba[:, self.pipeline.classes_.astype(int)] = raw
        proba /= proba.sum(axis=1, keepdims=True)
        out = pd.DataFrame(proba, index=data.index, columns=list(self.classes))
        out.columns.name = self.tier
        return out

    def predict(self, data: pd.DataFrame) -> pd.Series:
        """Hard assignment: the most probable tier of each row (ordered Categorical)."""
        proba = self.predict_proba(data).to_numpy()
        codes = proba.argmax(axis=1)
        cats = pd.Categorical.from_codes(codes, categories=list(self.classes), ordered=True)
        return pd.Series(cats, index=data.index, name=self.tier)

    def membership(self, data: pd.DataFrame) -> pd.DataFrame:
        """Like :meth:`predict_proba`, but rows whose tier is known keep it with probability 1."""
        proba = self.predict_proba(data)
        if self.tier not in data.columns:
            return proba
        known = data[self.tier].map(lambda v: None if pd.isna(v) else value_label(v))
        for label in self.classes:
            rows = (known == label).to_numpy()
            if rows.any():
                proba.loc[rows, :] = 0.0
                proba.loc[rows, label] = 1.0
        return proba


def fit_tier_model(
    data: pd.DataFrame,
    tier: str,
    features: Sequence[str] | None = None,
    *,
    exclude: Sequence[str] = (),
    model: Literal["gbm", "logistic"] = "gbm",
    seed: int = 0,
    cv: int = 5,
    order: Sequence[object] | None = None,
    groups: str | Sequence[str] | None = None,
) -> TierModel:
    """Train a classifier of ``tier`` on the labelled rows, to infer it for everyone.

    Features default to every column except ``tier`` and ``exclude`` (exclude the outcome,
    the score and sensitive columns). Rows with a missing ``tier`` are not used for fitting.
    ``order`` overrides the tier order; ``groups`` names the column(s) identifying a person,
    so that cross-validation never splits one person's rows across folds (use it whenever a
    person has several rows, or the accuracy measures recognition, not inference).
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict

    require_columns(data, [tier, *exclude, *(features or [])])
    group_cols = (groups,) if isinstance(groups, str) else tuple(groups or ())
    require_columns(data, list(group_cols))
    if features is None:
        features = [c for c in data.columns if c != tier and c not in exclude]
    features = list(features)
    if tier in features:
        raise FairscanError(f"the tier column '{tier}' cannot also be a feature")
    if not features:
        raise FairscanError("no feature columns left to train the tier model on")
    if cv < 2:
        raise FairscanError(f"cv must be at least 2 folds, got {cv}")

    labelled = data[tier].notna().to_numpy()
    raw_order = list(order) if order is not None else _tier_order(data[tier])
    classes = tuple(value_label(v) for v in raw_order)
    if len(set(classes)) != len(classes):
        raise FairscanError(f"tier column '{tier}': distinct values share a label; convert it to text first")
    y_text = data.loc[labelled, tier].map(value_label).to_numpy(dtype=object)
    position = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(y_text) - set(position))
    if unknown:
        raise FairscanError(f"tier column '{tier}' has values missing from the tier order: {plain(unknown[:5])}")
    y = np.array([position[v] for v in y_text], dtype=int)
    counts = np.bincount(y, minlength=len(classes))
    if (counts > 0).sum() < 2:
        raise FairscanError(f"tier column '{tier}' needs at least 2 observed tiers among labelled rows")
    small = [classes[i] for i in np.flatnonzero((counts > 0) & (counts < cv))]
    if small:
        raise FairscanError(
            f"tiers {small} of '{tier}' have fewer labelled rows than cv={cv} folds; "
            "merge them with a neighbour or lower cv"
        )

    X = data.loc[labelled, features]
    pipe = _pipeline(X, model, seed)
    if group_cols:
        key = data.loc[labelled, list(group_cols)].astype(object)
        group_id = pd.MultiIndex.from_frame(key.where(key.notna(), UNKNOWN).astype(str)).factorize()[0]
        splitter = StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=seed)
        oof = cross_val_predict(pipe, X, y, groups=group_id, cv=splitter, method="predict_proba")
    else:
        group_id = None
        splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
        oof = cross_val_predict(pipe, X, y, cv=splitter, method="predict_proba")
    observed = np.flatnonzero(counts > 0)
    full = np.zeros((len(y), len(classes)))
    full[:, observed] = oof
    pred = full.argmax(axis=1)
    hits = pred == y
    n = len(y)
    n_eff = float(n) if group_id is None else _effective_n(hits, group_id)
    accuracy = float(hits.mean())
    confusion = pd.DataFrame(
        np.zeros((len(classes), len(classes)), dtype=int),
        index=pd.Index(classes, name=f"true {tier}"),
        columns=pd.Index(classes, name=f"predicted {tier}"),
    )
    np.add.at(confusion.values, (y, pred), 1)
    pipe.fit(X, y)
    oof_frame = pd.DataFrame(full, index=X.index, columns=list(classes))
    return TierModel(
        pipeline=pipe,
        tier=tier,
        classes=classes,
        features=tuple(features),
        accuracy=accuracy,
        accuracy_ci=wilson_interval(accuracy * n_eff, n_eff),
        confusion=confusion,
        n_labelled=n,
        n_effective=n_eff,
        majority_rate=float(counts.max() / n),
        cv=cv,
        seed=seed,
        model=model,
        groups=group_cols,
        oof_proba=oof_frame,
    )


def collapse_tiers(proba: pd.DataFrame, mapping: Mapping[str, str]) -> pd.DataFrame:
    """Merge fine tiers into coarse ones by summing membership probabilities.

    Every column of ``proba`` must be mapped; coarse tiers are ordered by their first fine
    tier, so ordered fine tiers give ordered coarse tiers (e.g. fairscan.datasets.cleaning.COUPON_INCOME_TIERS).
    """
    unmapped = [c for c in proba.columns if c not in mapping]
    if unmapped:
        raise FairscanError(
            f"collapse_tiers: no coarse tier for {plain(unmapped[:5])}{suggest(str(unmapped[0]), mapping)}"
        )
    coarse = list(dict.fromkeys(mapping[c] for c in proba.columns))
    out = pd.DataFrame(
        {g: proba[[c for c in proba.columns if mapping[c] == g]].sum(axis=1) for g in coarse},
        index=proba.index,
    )
    return out


def membership(data: pd.DataFrame, tier_model: Any) -> pd.DataFrame:
    """Membership probabilities for every row: out-of-fold for the labelled rows."""
    proba = tier_model.predict_proba(data)
    oof = getattr(tier_model, "oof_proba", None)
    if oof is not None and len(oof):
        common = oof.index.intersection(proba.index)
        proba.loc[common, list(oof.columns)] = oof.loc[common].to_numpy()
    return proba


#: the column name of an inferred purchasing-power tier
INFERRED = "purchasing_power"


def hard_tiers(proba: pd.DataFrame) -> pd.Categorical:
    """Each row's most probable tier."""
    classes = [str(c) for c in proba.columns]
    return pd.Categorical(np.asarray(classes, dtype=object)[proba.to_numpy().argmax(axis=1)], categories=classes)


def infer_tiers(data: pd.DataFrame, spec: dict[str, Any], *, exclude: list[str] | None = None,
                seed: int = 0) -> tuple[pd.Series, Any]:
    """Every row's inferred purchasing-power tier (a column to audit by), and the proxy model.

    ``spec``: ``{"kind": "spend", "customer": COL, "amount": COL, "n": 4}`` — each customer's
    spend tier (quantiles of the customers' total ``amount`` over the rows; no model), or
    ``{"kind": "model", "column": COL, "person": ID_COL or None}`` — the most probable tier
    from a proxy model of COL trained where it is known
    (:func:`fairscan.groups.purchasing.fit_tier_model`, features: every column but
    ``exclude`` and the person id; one person's rows stay in one cross-validation fold, so
    the accuracy is not inflated by recognising people); rows with a known COL get their
    *out-of-fold* prediction, as in :func:`fairscan.inferred.audit_inferred`'s hard audit. Returns (tiers,
    TierModel or None).
    """
    kind = spec.get("kind")
    if kind == "spend":
        tiers = assign_spend_tiers(data, spec["customer"], spec["amount"], spec.get("n", 4))
        return tiers.rename(INFERRED), None
    if kind == "model":
        person = spec.get("person")
        drop = [c for c in [*(exclude or []), person] if c and c in data.columns]
        model = fit_tier_model(data, spec["column"], exclude=drop, seed=seed, groups=person)
        return pd.Series(hard_tiers(membership(data, model)), index=data.index, name=INFERRED), model
    raise FairscanError(f"unknown kind of inferred tier {plain(kind)}: use spend or model")


def parse_infer_tier(spec: str | dict[str, Any] | None) -> dict[str, Any]:
    """An inferred tier as typed (``--infer-tier``): ``spend:CUSTOMER_COL,AMOUNT_COL[,N]`` or
    ``model:TIER_COL[,PERSON_COL]``; a dict as :func:`infer_tiers` takes passes through.
    ``columns`` lists the columns it reads. ``{}`` when there is none."""
    if not spec:
        return {}
    if isinstance(spec, dict):
        return {**spec, "columns": spec.get("columns") or [c for c in (spec.get("customer"), spec.get("amount"),
                                                                      spec.get("column"), spec.get("person")) if c]}
    kind, _, rest = str(spec).partition(":")
    parts = [p.strip() for p in rest.split(",") if p.strip()]
    if kind == "spend" and len(parts) in (2, 3):
        try:
            n = int(parts[2]) if len(parts) == 3 else 4
        except ValueError:
            raise FairscanError(f"--infer-tier {plain(spec)}: N must be a whole number of tiers") from None
        return {"kind": "spend", "customer": parts[0], "amount": parts[1], "n": n, "columns": parts[:2]}
    if kind == "model" and len(parts) in (1, 2):
        return {"kind": "model", "column": parts[0], "person": parts[1] if len(parts) == 2 else None,
                "columns": parts}
    raise FairscanError(f"--infer-tier {plain(spec)}: write spend:CUSTOMER_COL,AMOUNT_COL[,N] or "
                        "model:TIER_COL[,PERSON_COL]")
