"""Proxy detection against independent oracles.

- DeLong: the AUC against ``sklearn.metrics.roc_auc_score``; the variance against a
  brute-force DeLong (structural components from explicit pairwise comparisons) and against a
  seeded stratified bootstrap.
- Single-feature scores: recomputed here with pandas (groupby target encoding on the same
  stratified folds, ``pd.qcut`` bins) and scored with ``roc_auc_score``; NMI with sklearn on
  those bins.
- Real data (adult train): ``relationship`` is a proxy of ``sex``, ``fnlwgt`` (a sampling
  weight) is not; the combined model is at least as good as any single feature.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import normalized_mutual_info_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from fairscan import datasets
from fairscan.errors import FairscanError
from fairscan.groups.proxies import SMOOTHING, ProxyReport, delong_auc, detect_proxies

# --------------------------------------------------------------------------------------------
# Oracles


def brute_force_delong(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """DeLong (1988) with explicit pairwise comparisons: O(n1 * n0)."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10 = psi.mean(axis=1)
    v01 = psi.mean(axis=0)
    return float(psi.mean()), float(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))


def oracle_target_encoding_auc(key: pd.Series, s: pd.Series, cv: int = 5, seed: int = 0) -> float:
    """Out-of-fold smoothed target encoding of ``key`` with pandas, scored by sklearn."""
    key = key.astype(object).where(key.notna(), "__missing__").reset_index(drop=True)
    s = s.reset_index(drop=True)
    classes = sorted(s.unique())
    onehot = pd.get_dummies(s)[classes].astype(float)
    proba = pd.DataFrame(np.nan, index=s.index, columns=classes)
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed).split(s, s.to_numpy())
    for train, test in folds:
        prior = onehot.iloc[train].mean()
        grouped = onehot.iloc[train].groupby(key.iloc[train].to_numpy())
        table = (grouped.sum() + SMOOTHING * prior).div(grouped.size() + SMOOTHING, axis=0)
        rows = table.reindex(key.iloc[test].to_numpy())
        proba.iloc[test] = rows.fillna(prior).to_numpy()
    if len(classes) == 2:
        return float(roc_auc_score(s == classes[1], proba[classes[1]]))
    return float(roc_auc_score(s, proba.to_numpy(), multi_class="ovr", labels=classes))


# --------------------------------------------------------------------------------------------
# DeLong


def test_delong_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(1)
    for n, levels in [(50, 3), (1_000, 7), (20_000, 40), (5_000, 10_000)]:
        y = rng.integers(0, 2, n)
        s = rng.integers(0, levels, n) + 0.7 * y * rng.random(n).round(1)
        auc, _ = delong_auc(y, s)
        assert abs(auc - roc_auc_score(y, s)) < 1e-12


def test_delong_variance_matches_brute_force():
    rng = np.random.default_rng(2)
    for _ in range(30):
        n1, n0 = rng.integers(2, 40, 2)
        y = np.r_[np.ones(n1, int), np.zeros(n0, int)]
        rng.shuffle(y)
        s = rng.integers(0, 6, n1 + n0) + y * rng.integers(0, 3, n1 + n0)  # many ties
        auc, var = delong_auc(y, s)
        auc_bf, var_bf = brute_force_delong(y, s.astype(float))
        assert auc == pytest.approx(auc_bf, abs=1e-12)
        assert var == pytest.approx(var_bf, rel=1e-10, abs=1e-15)


def test_delong_variance_close_to_bootstrap():
    rng = np.random.default_rng(3)
    n1, n0 = 300, 500
    pos = np.round(rng.normal(0.8, 1.0, n1), 1)
    neg = np.round(rng.normal(0.0, 1.0, n0), 1)
    y = np.r_[np.ones(n1, int), np.zeros(n0, int)]
    _, var = delong_auc(y, np.r_[pos, neg])
    # stratified bootstrap (DeLong conditions on the class sizes); Mann-Whitney AUC of each
    # resample from scipy's midranks, vectorised over the 2,000 resamples
    boot_rng = np.random.default_rng(4)
    b = 2_000
    resampled = np.hstack([boot_rng.choice(pos, (b, n1)), boot_rng.choice(neg, (b, n0))])
    ranks = stats.rankdata(resampled, axis=1)
    aucs = (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    assert aucs[0] == pytest.approx(roc_auc_score(y, resampled[0]), abs=1e-12)
    assert var == pytest.approx(np.var(aucs, ddof=1), rel=0.15)


def test_delong_edge_cases():
    auc, var = delong_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert (auc, var) == (1.0, 0.0)
    auc, var = delong_auc([0, 1, 1], [0.3, 0.1, 0.9])
    assert auc == 0.5 and math.isnan(var)  # a single negative: variance undefined
    with pytest.raises(ValueError):
        delong_auc([1, 1], [0.1, 0.2])


# --------------------------------------------------------------------------------------------
# Adult: sex


@pytest.fixture(scope="module")
def adult():
    return datasets.load("adult", split="train")


@pytest.fixture(scope="module")
def sex_report(adult) -> ProxyReport:
    return detect_proxies(adult, "sex")


def _row(report: ProxyReport, feature: str) -> pd.Series:
    return report.features.set_index("feature").loc[feature]


def test_adult_sex_relationship_is_a_proxy_fnlwgt_is_not(sex_report, adult):
    assert sex_report.n_rows == len(adult) == 32_561
    assert sex_report.dropped_missing_sensitive == 0
    assert sex_report.positive == "Male"
    assert set(sex_report.features["feature"]) == set(adult.columns) - {"sex"}

    rel = _row(sex_report, "relationship")
    assert rel.score > 0.85
    assert rel.score_ci_low > 0.85 and bool(rel.proxy)
    assert sex_report.features.iloc[0]["feature"] == "relationship"

    fnl = _row(sex_report, "fnlwgt")
    assert abs(fnl.score - 0.5) < 0.03
    assert fnl.score_ci_low < 0.52 and not bool(fnl.proxy)  # interval at 0.5 or just above

    # flags follow the documented rule exactly
    assert (sex_report.features["proxy"] == (sex_report.features["score_ci_low"] > 0.7)).all()
    scores = sex_report.features["score"].to_numpy()
    assert (np.diff(scores) <= 0).all()
    low, high = sex_report.combined["score_ci"]
    assert low <= sex_report.combined["score"] <= high
    assert sex_report.combined["score"] > scores.max() - 0.005
    assert sex_report.combined["score"] > 0.9


def test_adult_sex_single_scores_match_pandas_oracle(sex_report, adult):
    rel = _row(sex_report, "relationship")
    assert rel.score == pytest.approx(
        oracle_target_encoding_auc(adult["relationship"], adult["sex"]), abs=1e-12
    )
    # occupation has missing values: they are a category of their own
    occ = _row(sex_report, "occupation")
    assert occ.score == pytest.approx(
        oracle_target_encoding_auc(adult["occupation"], adult["sex"]), abs=1e-12
    )
    # age (73 distinct values): 20 quantile bins
    age_bins = pd.qcut(adult["age"], 20, duplicates="drop")
    age = _row(sex_report, "age")
    assert age.score == pytest.approx(oracle_target_encoding_auc(age_bins, adult["sex"]), abs=1e-12)
    assert age.nmi == pytest.approx(
        normalized_mutual_info_score(adult["sex"], age_bins.cat.codes), abs=1e-12
    )
    assert rel.nmi == pytest.approx(
        normalized_mutual_info_score(adult["sex"], adult["relationship"]), abs=1e-12
    )


def test_to_dict_is_json_ready_with_contract_keys(sex_report):
    d = json.loads(json.dumps(sex_report.to_dict()))
    assert d["sensitive"] == "sex" and d["metric"] == "roc_auc" and d["threshold"] == 0.7
    assert d["n_rows"] == 32_561 and d["dropped_missing_sensitive"] == 0
    first = d["features"][0]
    assert set(first) == {"feature", "score", "score_ci", "nmi", "proxy"}
    assert first["feature"] == "relationship" and first["proxy"] is True
    assert (
        len(first["score_ci"]) == 2
        and first["score_ci"][0] <= first["score"] <= first["score_ci"][1]
    )
    assert set(d["combined"]) == {"score", "score_ci"}
    assert sex_report.proxies[0] == "relationship"


def test_positive_group_choice_does_not_change_binary_scores(adult):
    cols = ["relationship", "age"]
    sample = adult.iloc[:5_000]
    male = detect_proxies(sample, "sex", cols)
    female = detect_proxies(sample, "sex", cols, positive="Female")
    assert female.positive == "Female"
    for f in cols:
        assert _row(female, f).score == pytest.approx(_row(male, f).score, abs=1e-12)
    assert female.combined["score"] == pytest.approx(male.combined["score"], abs=0.01)


# --------------------------------------------------------------------------------------------
# Multi-class


def test_multiclass_race_macro_auc(adult):
    cols = ["native_country", "relationship", "hours_per_week"]
    report = detect_proxies(adult, "race", cols)
    assert report.positive is None and len(report.classes) == 5
    nat = _row(report, "native_country")
    assert 0.5 < nat.score < 1
    assert nat.score == pytest.approx(
        oracle_target_encoding_auc(adult["native_country"], adult["race"]), abs=1e-12
    )
    assert nat.score_ci_low < nat.score < nat.score_ci_high
    assert 0.5 < report.combined["score"] < 1
    # one group against the rest
    black = detect_proxies(adult, "race", ["native_country"], positive="Black")
    assert black.classes == ("not Black", "Black")
    black_or_not = pd.Series(np.where(adult["race"] == "Black", "Black", "other"))
    expected = oracle_target_encoding_auc(adult["native_country"], black_or_not)
    assert _row(black, "native_country").score == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------------------------
# Crafted cases


@pytest.fixture(scope="module")
def crafted() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 3_000
    group = rng.choice(["a", "b"], n, p=[0.3, 0.7])
    # non-monotone: group b sits in the middle of the range
    middle = np.where(
        group == "b", rng.normal(0, 1, n), rng.choice([-3.0, 3.0], n) + rng.normal(0, 0.5, n)
    )
    return pd.DataFrame(
        {
            "group": group,
            "copy": group,
            "noise": rng.normal(size=n),
            "noise_cat": rng.choice(list("pqrstu"), n),
            "middle": middle,
        }
    )


def test_crafted_copy_noise_and_non_monotone(crafted):
    report = detect_proxies(crafted, "group")
    copy = _row(report, "copy")
    assert copy.score == 1.0 and bool(copy.proxy) and copy.score_ci_low == 1.0
    for f in ("noise", "noise_cat"):
        row = _row(report, f)
        assert abs(row.score - 0.5) < 0.04 and not bool(row.proxy)
        assert row.score_ci_low < 0.5 + 0.01 and row.score_ci_high > 0.5 - 0.01
    middle = _row(report, "middle")
    assert middle.score > 0.9 and bool(middle.proxy)  # binning captures the non-monotone relation
    assert report.combined["score"] > 0.99


def test_missing_sensitive_rows_are_dropped_and_reported(crafted):
    data = crafted.copy()
    data.loc[data.index[:37], "group"] = None
    data.loc[data.index[40:90], "noise"] = np.nan  # missing feature values: their own bin
    report = detect_proxies(data, "group", ["copy", "noise"])
    assert report.dropped_missing_sensitive == 37 and report.n_rows == len(data) - 37
    assert "37" in report.notes[0] and "missing" in report.notes[0]
    assert report.to_dict()["dropped_missing_sensitive"] == 37
    assert math.isfinite(_row(report, "noise").score)


def test_small_sample_widens_interval_and_keeps_flag_off():
    rng = np.random.default_rng(6)
    group = np.repeat(["a", "b"], 15)
    feature = np.where(
        group == "b",
        rng.choice(["x", "y"], 30, p=[0.8, 0.2]),
        rng.choice(["x", "y"], 30, p=[0.2, 0.8]),
    )
    report = detect_proxies(pd.DataFrame({"g": group, "f": feature}), "g")
    row = _row(report, "f")
    assert row.score_ci_high - row.score_ci_low > 0.3
    assert row.proxy == (row.score_ci_low > 0.7)


# --------------------------------------------------------------------------------------------
# Errors


def test_errors(crafted):
    with pytest.raises(FairscanError, match="did you mean: group"):
        detect_proxies(crafted, "gruop")
    with pytest.raises(FairscanError, match="did you mean: noise"):
        detect_proxies(crafted, "group", ["nosie"])
    with pytest.raises(FairscanError, match="single value"):
        detect_proxies(crafted.assign(group="a"), "group")
    with pytest.raises(FairscanError, match="single value"):
        detect_proxies(crafted.assign(group=np.where(crafted["group"] == "a", "a", None)), "group")
    with pytest.raises(FairscanError, match="does not occur"):
        detect_proxies(crafted, "group", ["noise"], positive="c")
    with pytest.raises(FairscanError, match="sensitive column"):
        detect_proxies(crafted, "group", ["group", "noise"])
    with pytest.raises(FairscanError, match="at least cv=5 rows"):
        detect_proxies(crafted.iloc[:20].assign(group=["a"] * 3 + ["b"] * 17), "group", ["noise"])
    with pytest.raises(FairscanError, match="cv"):
        detect_proxies(crafted, "group", ["noise"], cv=1)
