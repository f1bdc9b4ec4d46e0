"""fairscan's audit numbers against independent oracles.

Every expected value here comes from a library or a direct pandas computation on the rows
(fairlearn's MetricFrame and metrics, scikit-learn, statsmodels, scipy), never from
fairscan's own code. Decisions for the oracles are recomputed from the raw scores here
(threshold: ``score >= t``; budget: a stable argsort of ``-score``), tiers with ``pd.cut`` /
``pd.qcut``, intersections with a two-column ``sensitive_features`` frame.

Conventions checked (from the docs of ``fairscan.audit``):
- a group with fewer than ``suppress_below`` rows is suppressed: null count and rates;
- a rate with an empty denominator is undefined (NaN), where fairlearn reports 0.0 or 1.0;
- the summary spread is over unsuppressed groups only.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)
from scipy import stats
from scipy.stats.contingency import expected_freq
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, precision_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

import fairscan
from fairscan import datasets

TOL = 1e-9
SUPPRESS = 10

METRIC_NAMES = (
    "base_rate",
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
    "false_negative_rate",
    "true_negative_rate",
    "precision",
    "accuracy",
)


# --------------------------------------------------------------------------------------
# oracles
# --------------------------------------------------------------------------------------
def _base_rate(y_true, y_pred, sample_weight=None):
    return float(np.average(np.asarray(y_true, dtype=float), weights=sample_weight))


FAIRLEARN_METRICS = {
    "base_rate": _base_rate,
    "selection_rate": selection_rate,
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
    "false_negative_rate": false_negative_rate,
    "true_negative_rate": true_negative_rate,
    "precision": functools.partial(precision_score, zero_division=np.nan),
    "accuracy": accuracy_score,
}


def metric_frame(y_true, y_pred, sf, w=None) -> MetricFrame:
    params = None if w is None else {m: {"sample_weight": np.asarray(w)} for m in FAIRLEARN_METRICS}
    return MetricFrame(
        metrics=FAIRLEARN_METRICS,
        y_true=np.asarray(y_true),
        y_pred=np.asarray(y_pred),
        sensitive_features=sf,
        sample_params=params,
    )


def _flat_index(idx: pd.Index) -> list[str]:
    if isinstance(idx, pd.MultiIndex):
        return [" x ".join(str(v) for v in t) for t in idx]
    return [str(v) for v in idx]


_ORACLE_CACHE: dict[str, tuple[pd.DataFrame, pd.Series, pd.Series]] = {}


def fairlearn_oracle(y, d, groups: pd.Series, w=None, key: str | None = None, sf=None):
    """fairlearn's by_group, difference() and ratio() over the rows of the groups with at
    least SUPPRESS rows (those fairscan does not suppress). Cached under ``key``: fairlearn
    takes about two seconds per MetricFrame on 45,000 rows."""
    if key is not None and key in _ORACLE_CACHE:
        return _ORACLE_CACHE[key]
    keep = (groups.map(groups.value_counts()) >= SUPPRESS).to_numpy()
    ww = None if w is None else np.asarray(w)[keep]
    sf = groups if sf is None else sf  # a Series, or a DataFrame for an intersection
    mf = metric_frame(
        np.asarray(y)[keep],
        np.asarray(d)[keep],
        sf.reset_index(drop=True)[keep].reset_index(drop=True),
        ww,
    )
    by = mf.by_group.copy()
    by.index = _flat_index(by.index)
    out = (by, mf.difference(method="between_groups"), mf.ratio(method="between_groups"))
    if key is not None:
        _ORACLE_CACHE[key] = out
    return out


def cells(y: np.ndarray, d: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per metric: (numerator mask, denominator mask) from the definitions."""
    y = np.asarray(y, dtype=bool)
    d = np.asarray(d, dtype=bool)
    every = np.ones_like(y)
    return {
        "base_rate": (y, every),
        "selection_rate": (d, every),
        "true_positive_rate": (y & d, y),
        "false_positive_rate": (~y & d, ~y),
        "false_negative_rate": (y & ~d, y),
        "true_negative_rate": (~y & ~d, ~y),
        "precision": (y & d, d),
        "accuracy": (y == d, every),
    }


def counts_by_group(y, d, groups: pd.Series, metrics=METRIC_NAMES) -> dict[str, pd.DataFrame]:
    """Per metric, a frame indexed by group with columns x (numerator) and n (denominator)."""
    out = {}
    for m, (num, den) in cells(y, d).items():
        if m not in metrics:
            continue
        f = pd.DataFrame({"g": groups.to_numpy(), "x": num & den, "n": den})
        out[m] = f.groupby("g", sort=False)[["x", "n"]].sum().astype(int)
    return out


def top_k(score: np.ndarray, k: int) -> np.ndarray:
    """The k highest scores, ties to earlier rows: stable sort of -score."""
    d = np.zeros(len(score), dtype=int)
    d[np.argsort(-np.asarray(score, dtype=float), kind="stable")[:k]] = 1
    return d


def fmt_edge(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.6g}"


def qcut_labels(x: pd.Series, q: int) -> pd.Series:
    """Quantile tiers with pandas.qcut, labelled 'Q1 (..a]', 'Q2 (a..b]', ..."""
    cats = pd.qcut(x, q, duplicates="drop")
    ivs = cats.cat.categories
    names = []
    for i, iv in enumerate(ivs):
        lo = "" if i == 0 else fmt_edge(iv.left)
        hi = "" if i == len(ivs) - 1 else fmt_edge(iv.right)
        names.append(f"Q{i + 1} ({lo}..{hi}]")
    return cats.cat.rename_categories(names).astype(str)


def cut_labels(x: pd.Series, points: list[float]) -> pd.Series:
    """Right-closed bins around cut points with pandas.cut, labelled '(..a]', '(a..b]', '(b..]'."""
    cats = pd.cut(x, [-np.inf, *points, np.inf], right=True)
    names = []
    for i, _ in enumerate(cats.cat.categories):
        lo = "" if i == 0 else fmt_edge(points[i - 1])
        hi = "" if i == len(points) else fmt_edge(points[i])
        names.append(f"({lo}..{hi}]")
    return cats.cat.rename_categories(names).astype(str)


def close(a: float, b: float, tol: float = TOL) -> bool:
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol


def check_attribute(
    r,
    attribute: str,
    y,
    d,
    groups: pd.Series,
    w=None,
    *,
    fairness_fns: bool = False,
    key: str | None = None,
    sf: pd.DataFrame | None = None,
    metrics=METRIC_NAMES,
) -> pd.DataFrame:
    """r.groups and r.summary for ``attribute`` equal fairlearn's by_group and
    MetricFrame.difference()/ratio() over the unsuppressed groups (counts from pandas).

    With ``fairness_fns``, also fairlearn's demographic_parity_* and equalized_odds_*.
    A rate with an empty denominator must be NaN in fairscan; fairlearn reports 0.0 (or
    1.0) there, so such groups are left out of the spread the oracle computes."""
    groups = groups.reset_index(drop=True)
    g = r.groups[r.groups["attribute"] == attribute].set_index("group")
    sizes = groups.value_counts()
    sizes.index = sizes.index.astype(str)
    # exactly the observed groups (empty combinations are not listed)
    assert set(g.index) == set(sizes.index), attribute
    by, diff, ratio = fairlearn_oracle(y, d, groups, w, key, sf)
    big = set(sizes[sizes >= SUPPRESS].index)
    assert set(by.dropna(how="all").index) == big
    counts = counts_by_group(y, d, groups, metrics)
    complementary: set[str] = set()
    n_checked = 0
    for label, row in g.iterrows():
        if label not in big:
            assert bool(row["suppressed"]), (attribute, label)
            assert pd.isna(row["count"])
            for m in metrics:
                assert pd.isna(row[m]) and pd.isna(row[f"{m}_ci_low"]), (attribute, label, m)
            continue
        if row.get("suppression") == "complementary":
            # suppressed so that a small group cannot be recovered from the totals
            # (tests/test_privacy.py checks that rule); its numbers are null like a small group's
            assert pd.isna(row["count"]) and all(pd.isna(row[m]) for m in metrics)
            complementary.add(label)
            continue
        assert not bool(row["suppressed"])
        assert int(row["count"]) == int(sizes[label]), (attribute, label)
        for m in metrics:
            if counts[m].loc[label, "n"] == 0:  # undefined
                assert pd.isna(row[m]), (attribute, label, m)
                continue
            want = by.loc[label, m]
            assert close(row[m], want), (attribute, label, m, row[m], want)
            n_checked += 1
    assert n_checked > 0

    s = r.summary[r.summary["attribute"] == attribute].set_index("metric")
    defined_everywhere = {}
    for m in metrics:
        empty = [lab for lab in big if counts[m].loc[lab, "n"] == 0 or lab in complementary]
        defined_everywhere[m] = not empty
        if empty:
            v = by[m].drop(index=empty)
            want_d, want_r = v.max() - v.min(), v.min() / v.max()
        else:
            want_d, want_r = diff[m], ratio[m]
        assert close(s.loc[m, "difference"], want_d), (attribute, m, s.loc[m, "difference"], want_d)
        assert close(s.loc[m, "ratio"], want_r), (attribute, m, s.loc[m, "ratio"], want_r)
    if fairness_fns and not complementary:
        keep = groups.map(groups.value_counts()).to_numpy() >= SUPPRESS
        yy, dd = np.asarray(y)[keep], np.asarray(d)[keep]
        kw = {"sensitive_features": groups[keep].reset_index(drop=True), "method": "between_groups"}
        if w is not None:
            kw["sample_weight"] = np.asarray(w)[keep]
        assert close(
            s.loc["selection_rate", "difference"], demographic_parity_difference(yy, dd, **kw)
        )
        assert close(s.loc["selection_rate", "ratio"], demographic_parity_ratio(yy, dd, **kw))
        if "equalized_odds" in s.index:
            assert (
                defined_everywhere["true_positive_rate"]
                and defined_everywhere["false_positive_rate"]
            )
            assert close(
                s.loc["equalized_odds", "difference"], equalized_odds_difference(yy, dd, **kw)
            )
            assert close(s.loc["equalized_odds", "ratio"], equalized_odds_ratio(yy, dd, **kw))
    return by


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bank() -> pd.DataFrame:
    df = datasets.load("bank")
    cols = ["age", "balance", "duration", "campaign", "pdays", "previous"]
    y = (df["y"] == "yes").astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(df[cols], y)
    df["score"] = model.predict_proba(df[cols])[:, 1]
    # a coarse score: many ties at any cut, so the budget tie-break matters
    df["score_tied"] = np.round(df["score"], 2)
    df["w_int"] = 1 + df["day"] % 4
    return df


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    df = datasets.load("adult")
    df["pred"] = ((df["education_num"] >= 13) | (df["capital_gain"] >= 5000)).astype(int)
    return df


@pytest.fixture(scope="module")
def german() -> pd.DataFrame:
    df = datasets.load("german")
    cols = [
        "duration_in_month",
        "credit_amount",
        "age_in_years",
        "installment_rate_in_percentage_of_disposable_income",
    ]
    y = (df["credit"] == 1).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(df[cols], y)
    df["risk"] = model.predict_proba(df[cols])[:, 0]  # probability of a bad credit
    return df


def _yd_bank(df: pd.DataFrame, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (df["y"] == "yes").to_numpy(dtype=int), np.asarray(d, dtype=int)


# --------------------------------------------------------------------------------------
# 1. group metrics and summary vs fairlearn
# --------------------------------------------------------------------------------------
def _bank_attributes(bank):
    return (
        ("job", bank["job"].astype(str)),
        ("balance", qcut_labels(bank["balance"], 4)),
        ("age", cut_labels(bank["age"], [24, 59])),
    )


def test_bank_threshold_vs_fairlearn(bank):
    t = 0.3
    r = fairscan.audit(
        bank,
        target="y",
        positive_label="yes",
        score="score",
        threshold=t,
        sensitive=["job"],
        tiers={"balance": 4, "age": [24, 59]},
        n_boot=100,
    )
    y, d = _yd_bank(bank, bank["score"] >= t)
    assert 0.02 < d.mean() < 0.5
    for attr, groups in _bank_attributes(bank):
        check_attribute(r, attr, y, d, groups, fairness_fns=attr == "job")


def test_bank_budget_fraction_with_ties_vs_fairlearn(bank):
    n, budget = len(bank), 0.1
    k = math.floor(budget * n)
    score = bank["score_tied"].to_numpy()
    cut = np.sort(score)[::-1][k - 1]
    assert (score > cut).sum() < k < (score >= cut).sum()  # the cut is inside a block of ties
    r = fairscan.audit(
        bank,
        target="y",
        positive_label="yes",
        score="score_tied",
        budget=budget,
        sensitive=["job"],
        tiers={"balance": 4, "age": [24, 59]},
        n_boot=100,
    )
    assert r.meta["decision"]["budget"] == k == 4521
    y, d = _yd_bank(bank, top_k(score, k))
    assert d.sum() == k
    for attr, groups in _bank_attributes(bank):
        check_attribute(r, attr, y, d, groups)


def test_bank_budget_count_vs_fairlearn(bank):
    r = fairscan.audit(
        bank,
        target="y",
        positive_label="yes",
        score="score",
        budget=500,
        sensitive=["job"],
        n_boot=100,
    )
    y, d = _yd_bank(bank, top_k(bank["score"].to_numpy(), 500))
    check_attribute(r, "job", y, d, bank["job"].astype(str), key="bank-score-500-job")


def test_budget_ties_go_to_earlier_rows():
    df = pd.DataFrame({"g": ["first"] * 40 + ["second"] * 40, "s": 1.0})
    r = fairscan.audit(df, score="s", budget=40, sensitive="g", n_boot=0)
    sr = r.groups.set_index("group")["selection_rate"]
    assert sr["first"] == 1.0
    assert sr["second"] == 0.0


def test_adult_prediction_vs_fairlearn(adult):
    r = fairscan.audit(
        adult,
        target="income",
        positive_label=">50K",
        prediction="pred",
        sensitive=["sex", "race", "workclass"],
        n_boot=100,
    )
    y = (adult["income"] == ">50K").to_numpy(dtype=int)
    d = adult["pred"].to_numpy()
    for attr in ("sex", "race"):
        check_attribute(r, attr, y, d, adult[attr].astype(str))
    # missing values form the group "unknown"
    groups = (
        adult["workclass"].astype(object).where(adult["workclass"].notna(), "unknown").astype(str)
    )
    assert (groups == "unknown").sum() == 2799
    check_attribute(r, "workclass", y, d, groups)


def test_german_risk_score_vs_fairlearn(german):
    # risk score: the rows at or above the threshold are refused (favourable decision 0)
    t = 0.35
    r = fairscan.audit(
        german,
        target="credit",
        positive_label=1,
        score="risk",
        threshold=t,
        favourable_decision=0,
        sensitive=["personal_status_and_sex", "purpose", "job"],
        tiers={"age_in_years": [25]},
        n_boot=100,
    )
    y = (german["credit"] == 1).to_numpy(dtype=int)
    d = (german["risk"] < t).to_numpy(dtype=int)
    assert 0.3 < d.mean() < 0.95
    for attr, groups in (
        ("personal_status_and_sex", german["personal_status_and_sex"].astype(str)),
        ("purpose", german["purpose"].astype(str)),
        ("job", german["job"].astype(str)),
        ("age_in_years", cut_labels(german["age_in_years"], [25])),
    ):
        check_attribute(r, attr, y, d, groups, fairness_fns=True)
    # purpose "retraining" has 9 rows: suppressed
    g = r.groups.set_index(["attribute", "group"])
    assert bool(g.loc[("purpose", "retraining"), "suppressed"])


# --------------------------------------------------------------------------------------
# 2. weighted
# --------------------------------------------------------------------------------------
def _check_weighted(r, attr, y, d, groups, w, fairness_fns=False):
    check_attribute(r, attr, y, d, groups, w=w, fairness_fns=fairness_fns)
    g = r.groups[r.groups["attribute"] == attr].set_index("group")
    f = pd.DataFrame({"g": groups.to_numpy(), "w": np.asarray(w, dtype=float)})
    f["w2"] = f["w"] ** 2
    agg = f.groupby("g")[["w", "w2"]].sum()
    neff = agg["w"] ** 2 / agg["w2"]
    sizes = groups.value_counts()
    for label in g.index:
        if sizes[label] < SUPPRESS:
            assert pd.isna(g.loc[label, "effective_n"])
            continue
        assert math.isclose(g.loc[label, "weight_sum"], agg.loc[label, "w"], rel_tol=1e-12)
        assert math.isclose(g.loc[label, "effective_n"], neff[label], rel_tol=1e-12)
    # Wilson intervals on the Kish effective size of each rate's denominator
    yb, db = np.asarray(y, bool), np.asarray(d, bool)
    for m, (_, den) in cells(yb, db).items():
        fd = pd.DataFrame({"g": groups.to_numpy(), "w": np.where(den, w, 0.0)})
        fd["w2"] = fd["w"] ** 2
        a = fd.groupby("g")[["w", "w2"]].sum()
        for label in g.index:
            if sizes[label] < SUPPRESS or a.loc[label, "w2"] == 0:
                continue
            n_eff = a.loc[label, "w"] ** 2 / a.loc[label, "w2"]
            lo, hi = proportion_confint(g.loc[label, m] * n_eff, n_eff, alpha=0.05, method="wilson")
            assert close(g.loc[label, f"{m}_ci_low"], max(lo, 0.0)), (attr, label, m)
            assert close(g.loc[label, f"{m}_ci_high"], min(hi, 1.0)), (attr, label, m)


def test_weighted_real_weights_vs_fairlearn(adult):
    r = fairscan.audit(
        adult,
        target="income",
        positive_label=">50K",
        prediction="pred",
        sensitive=["race"],
        weights="fnlwgt",
        n_boot=100,
    )
    y = (adult["income"] == ">50K").to_numpy(dtype=int)
    d = adult["pred"].to_numpy()
    w = adult["fnlwgt"].to_numpy(dtype=float)
    _check_weighted(r, "race", y, d, adult["race"].astype(str), w, fairness_fns=True)
    # the weights matter: weighted and unweighted base rates differ
    ru = fairscan.audit(
        adult,
        target="income",
        positive_label=">50K",
        prediction="pred",
        sensitive=["race"],
        n_boot=0,
    )
    a = r.groups["base_rate"].to_numpy()
    b = ru.groups["base_rate"].to_numpy()
    assert np.abs(a - b).max() > 1e-3


def test_weighted_integer_weights_vs_fairlearn(bank):
    t = 0.3
    r = fairscan.audit(
        bank,
        target="y",
        positive_label="yes",
        score="score",
        threshold=t,
        sensitive=["job"],
        weights="w_int",
        n_boot=100,
    )
    y, d = _yd_bank(bank, bank["score"] >= t)
    w = bank["w_int"].to_numpy(dtype=float)
    _check_weighted(r, "job", y, d, bank["job"].astype(str), w)


# --------------------------------------------------------------------------------------
# 3. intersections
# --------------------------------------------------------------------------------------
def test_intersection_vs_fairlearn_two_columns(adult):
    r = fairscan.audit(
        adult,
        target="income",
        positive_label=">50K",
        prediction="pred",
        sensitive=["sex", "race"],
        intersect=True,
        n_boot=100,
    )
    y = (adult["income"] == ">50K").to_numpy(dtype=int)
    d = adult["pred"].to_numpy()
    sf = adult[["sex", "race"]].astype(str).reset_index(drop=True)
    attr = "sex x race"
    assert attr in r.meta["attributes"]
    joint = sf["sex"] + " x " + sf["race"]
    by = check_attribute(r, attr, y, d, joint, sf=sf)
    assert len(by) == 10
    assert set(r.groups.loc[r.groups["attribute"] == attr, "group"]) == set(by.index)


def test_intersection_lists_no_empty_combination(bank):
    t = 0.3
    r = fairscan.audit(
        bank,
        target="y",
        positive_label="yes",
        score="score",
        threshold=t,
        sensitive=["job"],
        tiers={"age": [24, 59]},
        intersect=True,
        n_boot=100,
    )
    attr = "job x age"
    sf = pd.DataFrame(
        {"job": bank["job"].astype(str), "age": cut_labels(bank["age"], [24, 59])}
    ).reset_index(drop=True)
    joint = sf["job"] + " x " + sf["age"]
    observed = set(joint.unique())
    g = r.groups[r.groups["attribute"] == attr]
    assert set(g["group"]) == observed
    assert (g["suppressed"] | (g["count"] > 0)).all()
    # some combinations are empty, so "only observed combinations" is exercised
    assert len(observed) < bank["job"].nunique() * 3
    y, d = _yd_bank(bank, bank["score"] >= t)
    by = check_attribute(r, attr, y, d, joint, sf=sf)
    # fairlearn lists the empty cells of the cartesian product (as NaN); fairscan does not
    assert len(by) > len(by.dropna(how="all"))
    assert g["suppressed"].any()  # tiny combinations exist and are suppressed


# --------------------------------------------------------------------------------------
# 4. differences and ratios vs the reference
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("reference", [None, {"job": "admin."}])
def test_disparities_vs_fairlearn_by_group(bank, reference):
    r = fairscan.audit(
        bank,
        target="y",
        positive_label="yes",
        score="score",
        budget=500,
        sensitive=["job"],
        reference=reference,
        n_boot=100,
    )
    y, d = _yd_bank(bank, top_k(bank["score"].to_numpy(), 500))
    groups = bank["job"].astype(str)
    by, _, _ = fairlearn_oracle(y, d, groups, key="bank-score-500-job")
    counts = counts_by_group(y, d, groups)
    ref = "admin." if reference else groups.value_counts().idxmax()
    assert r.meta["reference"]["job"] == ref
    assert r.groups.set_index("group").loc[ref, "reference"]
    dis = r.disparities[r.disparities["attribute"] == "job"]
    assert set(dis["reference"]) == {ref}
    assert len(dis) == (len(by) - 1) * len(METRIC_NAMES)
    n_checked = 0
    for row in dis.itertuples():
        if counts[row.metric].loc[row.group, "n"] == 0 or counts[row.metric].loc[ref, "n"] == 0:
            assert pd.isna(row.difference)
            continue
        a, b = by.loc[row.group, row.metric], by.loc[ref, row.metric]
        assert close(row.difference, a - b), (row.group, row.metric)
        want_ratio = a / b if b > 0 else np.nan
        assert close(row.ratio, want_ratio), (row.group, row.metric, row.ratio, want_ratio)
        n_checked += 1
    assert n_checked > 50


# --------------------------------------------------------------------------------------
# 5. Wilson intervals
# --------------------------------------------------------------------------------------
def test_wilson_intervals_vs_statsmodels(bank, german):
    k = math.floor(0.1 * len(bank))
    d0 = top_k(bank["score_tied"].to_numpy(), k)
    r = fairscan.audit(
        bank,
        target="y",
        positive_label="yes",
        score="score_tied",
        budget=0.1,
        sensitive=["job"],
        tiers={"balance": 4},
        n_boot=0,
    )
    y, d = _yd_bank(bank, d0)
    cases = [
        (r, "job", y, d, bank["job"].astype(str)),
        (r, "balance", y, d, qcut_labels(bank["balance"], 4)),
    ]
    t = 0.35
    rg = fairscan.audit(
        german,
        target="credit",
        positive_label=1,
        score="risk",
        threshold=t,
        favourable_decision=0,
        sensitive=["purpose"],
        n_boot=0,
    )
    cases.append(
        (
            rg,
            "purpose",
            (german["credit"] == 1).to_numpy(int),
            (german["risk"] < t).to_numpy(int),
            german["purpose"].astype(str),
        )
    )
    checked = 0
    for res, attr, yy, dd, groups in cases:
        g = res.groups[res.groups["attribute"] == attr].set_index("group")
        for m, xn in counts_by_group(yy, dd, groups).items():
            for label, (x, n) in xn.iterrows():
                if g.loc[label, "suppressed"]:
                    continue
                if n == 0:
                    assert pd.isna(g.loc[label, f"{m}_ci_low"])
                    continue
                lo, hi = proportion_confint(x, n, alpha=0.05, method="wilson")
                assert close(g.loc[label, m], x / n)
                assert close(g.loc[label, f"{m}_ci_low"], lo), (attr, label, m)
                assert close(g.loc[label, f"{m}_ci_high"], hi), (attr, label, m)
                checked += 1
    assert checked > 150


# --------------------------------------------------------------------------------------
# 6. p-values and Holm
# --------------------------------------------------------------------------------------
def _check_p_values(r, attr, y, d, groups) -> dict[str, int]:
    counts = counts_by_group(y, d, groups)
    dis = r.disparities[r.disparities["attribute"] == attr]
    used = {"z": 0, "fisher": 0}
    for row in dis.itertuples():
        if row.suppressed:
            assert pd.isna(row.p_value) and row.test == ""
            continue
        c = counts[row.metric]
        xg, ng = c.loc[row.group]
        xr, nr = c.loc[row.reference]
        if ng == 0 or nr == 0:
            assert pd.isna(row.p_value), (attr, row.group, row.metric)
            continue
        table = np.array([[xg, ng - xg], [xr, nr - xr]])
        fisher = expected_freq(table).min() < 5  # Cochran's rule
        assert row.test == ("fisher" if fisher else "z"), (attr, row.group, row.metric, table)
        if fisher:
            want = stats.fisher_exact(table).pvalue
        else:
            want = stats.chi2_contingency(table, correction=False).pvalue
        assert close(row.p_value, want), (attr, row.group, row.metric, table, row.p_value, want)
        used[row.test] += 1
    return used


def _check_holm(r):
    p = r.disparities["p_value"].to_numpy(dtype=float)
    adj = r.disparities["p_value_adjusted"].to_numpy(dtype=float)
    ok = ~np.isnan(p)
    assert np.isnan(adj[~ok]).all()
    want = multipletests(p[ok], method="holm")[1]
    np.testing.assert_allclose(adj[ok], want, rtol=0, atol=TOL)


def test_p_values_and_holm_real_data(bank, german):
    t = 0.3
    r = fairscan.audit(
        bank,
        target="y",
        positive_label="yes",
        score="score",
        threshold=t,
        sensitive=["job"],
        tiers={"age": [24, 59]},
        n_boot=0,
    )
    y, d = _yd_bank(bank, bank["score"] >= t)
    used = _check_p_values(r, "job", y, d, bank["job"].astype(str))
    used2 = _check_p_values(r, "age", y, d, cut_labels(bank["age"], [24, 59]))
    assert used["z"] + used2["z"] > 50
    _check_holm(r)

    tg = 0.35
    rg = fairscan.audit(
        german,
        target="credit",
        positive_label=1,
        score="risk",
        threshold=tg,
        favourable_decision=0,
        sensitive=["purpose", "job", "foreign_worker"],
        n_boot=0,
    )
    yg = (german["credit"] == 1).to_numpy(int)
    dg = (german["risk"] < tg).to_numpy(int)
    total = {"z": 0, "fisher": 0}
    for attr in ("purpose", "job", "foreign_worker"):
        u = _check_p_values(rg, attr, yg, dg, german[attr].astype(str))
        total = {k: total[k] + u[k] for k in total}
    assert total["fisher"] >= 3 and total["z"] >= 3, total
    _check_holm(rg)


def test_p_values_crafted_fisher_case():
    # a big reference offering to 10%, a small group offered 50%: an expected count of the
    # 2x2 table is below 5 (12 * 36 / 312 = 1.4), so Fisher's exact test
    df = pd.DataFrame(
        {
            "g": ["big"] * 300 + ["small"] * 12,
            "pred": [1] * 30 + [0] * 270 + [1] * 6 + [0] * 6,
            "y": ([1, 0] * 150) + [1, 0] * 6,
        }
    )
    r = fairscan.audit(
        df,
        target="y",
        positive_label=1,
        prediction="pred",
        sensitive="g",
        min_group_size=10,
        n_boot=0,
    )
    row = r.disparities.set_index("metric").loc["selection_rate"]
    assert row["test"] == "fisher"
    table = np.array([[6, 6], [30, 270]])
    assert close(row["p_value"], stats.fisher_exact(table).pvalue)
    used = _check_p_values(r, "g", df["y"].to_numpy(), df["pred"].to_numpy(), df["g"])
    assert used["fisher"] >= 3
    _check_holm(r)


# --------------------------------------------------------------------------------------
# 7. bootstrap and Wilson coverage by simulation
# --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_bootstrap_and_wilson_coverage():
    n_sim, n, p_a, p_b = 300, 400, 0.3, 0.4
    rng = np.random.default_rng(20240607)
    groups = np.array(["a"] * n + ["b"] * n)
    cover_diff = cover_wilson = 0
    for i in range(n_sim):
        pred = np.r_[rng.random(n) < p_a, rng.random(n) < p_b].astype(int)
        df = pd.DataFrame({"g": groups, "pred": pred})
        r = fairscan.audit(
            df, prediction="pred", sensitive="g", reference={"g": "a"}, n_boot=500, seed=i
        )
        dis = r.disparities.iloc[0]
        assert dis["group"] == "b" and dis["metric"] == "selection_rate"
        cover_diff += dis["difference_ci_low"] <= p_b - p_a <= dis["difference_ci_high"]
        ga = r.groups.set_index("group").loc["a"]
        cover_wilson += ga["selection_rate_ci_low"] <= p_a <= ga["selection_rate_ci_high"]
    assert 0.90 <= cover_diff / n_sim <= 0.99, cover_diff / n_sim
    assert 0.90 <= cover_wilson / n_sim <= 0.99, cover_wilson / n_sim


# --------------------------------------------------------------------------------------
# 8. real-data facts through the audit
# --------------------------------------------------------------------------------------
def test_bank_facts_by_balance_and_age(bank):
    r = fairscan.audit(
        bank,
        target="y",
        positive_label="yes",
        score="score",
        threshold=0.3,
        tiers={"balance": 4, "age": [24, 59]},
        n_boot=0,
    )
    bal = r.groups[r.groups["attribute"] == "balance"]
    assert bal["group"].iloc[0].startswith("Q1 (..72]")
    assert list(bal["group"]) == ["Q1 (..72]", "Q2 (72..448]", "Q3 (448..1428]", "Q4 (1428..]"]
    np.testing.assert_allclose(bal["base_rate"], [0.072, 0.109, 0.125, 0.162], atol=0.0005)
    age = r.groups[r.groups["attribute"] == "age"]
    assert list(age["group"]) == ["(..24]", "(24..59]", "(59..]"]
    np.testing.assert_allclose(age["base_rate"], [0.256, 0.105, 0.336], atol=0.0005)


def test_adult_train_facts_by_sex():
    df = datasets.load("adult", split="train")
    df["pred"] = (df["education_num"] >= 13).astype(int)
    r = fairscan.audit(
        df, target="income", positive_label=">50K", prediction="pred", sensitive="sex", n_boot=0
    )
    g = r.groups.set_index("group")["base_rate"]
    assert abs(g["Female"] - 0.109) <= 0.0005
    assert abs(g["Male"] - 0.306) <= 0.0005


# --------------------------------------------------------------------------------------
# 9. verdicts, suppression, label-free audits, polars
# --------------------------------------------------------------------------------------
def _block(name: str, n: int, sel: float, pos: float = 0.5) -> pd.DataFrame:
    """n rows of group ``name``: the first round(sel*n) offered; every (1/pos)-th row positive."""
    k = round(sel * n)
    y = (np.arange(n) % round(1 / pos) == 0).astype(int)
    return pd.DataFrame({"g": name, "pred": (np.arange(n) < k).astype(int), "y": y})


def test_verdicts_on_crafted_groups():
    df = pd.concat(
        [
            _block("ref", 4000, 0.5),
            _block("same", 4000, 0.5),
            _block("low", 2000, 0.05),
            _block("small", 15, 0.2),
            _block("tiny", 5, 0.4),
            # a second small group: with two suppressed groups neither can be recovered from the
            # row total, so no complementary suppression hides "small" (tests/test_privacy.py)
            _block("tiny2", 6, 0.3),
        ],
        ignore_index=True,
    )
    r = fairscan.audit(
        df,
        target="y",
        positive_label=1,
        prediction="pred",
        sensitive="g",
        reference={"g": "ref"},
        n_boot=500,
        seed=1,
    )
    f = r.findings[r.findings["metric"] == "selection_rate"].set_index("group")["verdict"]
    assert f["low"] == "fail"
    assert f["same"] == "pass"
    assert f["small"] == "insufficient"
    assert f["tiny"] == "insufficient"

    g = r.groups.set_index("group")
    assert not g.loc["small", "suppressed"] and g.loc["small", "count"] == 15
    assert g.loc["tiny", "suppressed"] and pd.isna(g.loc["tiny", "count"])
    for m in METRIC_NAMES:
        assert pd.isna(g.loc["tiny", m])
        assert pd.isna(g.loc["tiny", f"{m}_ci_low"]) and pd.isna(g.loc["tiny", f"{m}_ci_high"])
        assert not pd.isna(g.loc["small", m])
    dis = r.disparities[r.disparities["group"] == "tiny"]
    assert len(dis) == len(METRIC_NAMES)
    assert dis["suppressed"].all()
    for col in (
        "difference",
        "ratio",
        "difference_ci_low",
        "difference_ci_high",
        "ratio_ci_low",
        "ratio_ci_high",
        "p_value",
        "p_value_adjusted",
        "group_value",
    ):
        assert dis[col].isna().all(), col
    # the tiny group does not enter the summary spread
    s = r.summary.set_index("metric")
    assert s.loc["selection_rate", "difference"] == pytest.approx(0.5 - 0.05, abs=TOL)
    # identical groups: exactly zero difference on every metric
    same = r.disparities[r.disparities["group"] == "same"]
    assert (same["difference"] == 0).all() and (same["ratio"] == 1).all()


def test_target_none_only_selection_rate():
    df = pd.concat([_block("a", 500, 0.3), _block("b", 500, 0.4)], ignore_index=True)
    r = fairscan.audit(df, prediction="pred", sensitive="g", n_boot=100)
    assert r.meta["metrics"] == ["selection_rate"]
    assert set(r.meta["unavailable_metrics"]) == set(METRIC_NAMES) - {"selection_rate"}
    for m in METRIC_NAMES:
        present = m == "selection_rate"
        assert (m in r.groups.columns) == present, m
        assert (f"{m}_ci_low" in r.groups.columns) == present, m
    assert set(r.disparities["metric"]) == {"selection_rate"}
    assert set(r.findings["metric"]) == {"selection_rate"}
    by = MetricFrame(
        metrics=selection_rate, y_true=df["pred"], y_pred=df["pred"], sensitive_features=df["g"]
    ).by_group
    g = r.groups.set_index("group")
    assert close(g.loc["a", "selection_rate"], by["a"]) and close(
        g.loc["b", "selection_rate"], by["b"]
    )


def test_polars_input_same_tables(adult):
    pl = pytest.importorskip("polars")
    sub = adult.iloc[:8000].reset_index(drop=True)
    kw = {
        "target": "income",
        "positive_label": ">50K",
        "prediction": "pred",
        "sensitive": ["workclass", "sex"],
        "tiers": {"age": 4},
        "intersect": True,
        "n_boot": 200,
        "seed": 3,
    }
    rp = fairscan.audit(sub, **kw)
    rl = fairscan.audit(pl.from_pandas(sub), **kw)
    assert "unknown" in set(rp.groups["group"])
    pd.testing.assert_frame_equal(rp.groups, rl.groups)
    pd.testing.assert_frame_equal(rp.disparities, rl.disparities)
    pd.testing.assert_frame_equal(rp.summary, rl.summary)
    pd.testing.assert_frame_equal(rp.findings, rl.findings)
