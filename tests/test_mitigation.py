"""Mitigations on real data: each reduces its held-out disparity; budgets hold; fairlearn parity."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fairscan import datasets
from fairscan.errors import FairscanError
from fairscan.mitigation import SWEEP, compare, save_mitigated
from fairscan.mitigation.budget import allocate, largest_remainder


def test_budget_allocation_toy_from_reference():
    # recsys-metrics.md: H .9/.8/.7/.6/.5, L .65/.55/.4/.3/.2, B = 4 -> 2/2 quota, total score 2.90
    s = np.array([.9, .8, .7, .6, .5, .65, .55, .4, .3, .2])
    g = np.array(["H"] * 5 + ["L"] * 5)
    d = allocate(s, g, 4, "demographic_parity")
    assert d.sum() == 4 and d[:5].sum() == 2 and s[d].sum() == pytest.approx(2.90)
    d0 = allocate(s, g, 4, "demographic_parity", strength=0.0)
    assert s[d0].sum() == pytest.approx(3.05) and d0[:5].sum() == 3
    assert largest_remainder(np.array([1, 1, 1]), 10).tolist() == [4, 3, 3]


def test_tpr_budget_equalises_expected_tpr():
    rng = np.random.default_rng(0)
    s = np.r_[rng.beta(5, 2, 500), rng.beta(2, 5, 500)]
    g = np.repeat(["rich", "poor"], 500)
    d = allocate(s, g, 300, "true_positive_rate_parity")
    assert d.sum() == 300
    tpr = [s[(g == x) & d].sum() / s[g == x].sum() for x in ("rich", "poor")]
    assert abs(tpr[0] - tpr[1]) < 0.01


@pytest.fixture(scope="module")
def bank_age():
    return compare(datasets.load("bank"), "y", tiers={"age": [24, 59]}, positive_label="yes", drop=["duration"],
                   sweep=False, n_boot=100)


@pytest.mark.slow
def test_every_method_reduces_its_held_out_disparity_on_bank(bank_age):
    base = bank_age.baseline.summary["difference"]
    assert base > 0.1  # the unmitigated model calls the old and the young far more: a real disparity
    for p in bank_age.methods:
        assert p.summary["difference"] < 0.75 * base, (p.method, p.summary["difference"], base)
    # the budget method re-allocates exactly the baseline's number of offers
    budget = next(p for p in bank_age.methods if p.method == "budget")
    assert budget.utility["selected"] == bank_age.baseline.utility["selected"]
    assert budget.summary["selection_rate_ratio"] > 0.9
    out = json.loads(json.dumps(bank_age.to_dict()))
    assert set(out) >= {"schema_version", "baseline", "methods", "curve", "recommended"}
    assert set(out["baseline"]["utility"]) == {"roc_auc", "accuracy", "true_positives", "selected"}
    assert {m["method"] for m in out["methods"]} == {"threshold", "budget", "expgrad", "gridsearch", "reweigh",
                                                      "correlation"}
    assert all({"method", "constraint", "strength", "utility", "disparities", "pareto"} <= set(m)
               for m in out["methods"])


@pytest.mark.slow
def test_budget_case_keeps_offers_and_tpr_parity_on_balance_tiers():
    r = compare(datasets.load("bank"), "y", tiers={"balance": 4}, positive_label="yes", drop=["duration"],
                methods=["budget", "reweigh"], constraint="true_positive_rate_parity", budget=0.1, n_boot=100)
    k = r.meta["budget"]
    assert k == int(0.1 * r.meta["n_test"])
    for p in [r.baseline, *r.methods, *r.curve]:
        assert p.utility["selected"] == k  # every scored method decides by the same top-K
    b = next(p for p in r.methods if p.method == "budget")
    assert b.summary["difference"] < r.baseline.summary["difference"]
    strengths = [p.strength for p in r.curve if p.method == "budget"]
    assert strengths == [0.25, 0.5, 0.75, 1.0]


@pytest.mark.slow
def test_threshold_path_matches_fairlearn_directly():
    from fairlearn.postprocessing import ThresholdOptimizer
    from sklearn.model_selection import train_test_split

    from fairscan import modeling

    adult = datasets.load("adult", split="train").sample(8000, random_state=1).reset_index(drop=True)
    model = modeling.train_targeting(adult, "income", ">50K", sensitive=["sex", "race"], model="logistic").estimator
    r = compare(adult, "income", ["sex"], positive_label=">50K", model=model, methods="threshold",
                constraint="equalized_odds", sweep=False, n_boot=50)
    # fairlearn on the same split, by hand
    y = (adult["income"] == ">50K").to_numpy()
    tr, te = train_test_split(np.arange(len(adult)), test_size=0.3, random_state=0, stratify=y)
    to = ThresholdOptimizer(estimator=model, constraints="equalized_odds", objective="accuracy_score",
                            prefit=True, predict_method="predict_proba")
    to.fit(adult.iloc[tr], y[tr], sensitive_features=adult["sex"].iloc[tr])
    p = to._pmf_predict(adult.iloc[te], sensitive_features=adult["sex"].iloc[te])[:, 1]
    point = r.methods[0]
    assert point.utility["selected"] == pytest.approx(p.sum(), rel=1e-9)
    assert point.utility["true_positives"] == pytest.approx((p * y[te]).sum(), rel=1e-9)
    # and the expected selection rate per group, through the audit's weighted counts
    sr = next(d for d in point.disparities if d["metric"] == "selection_rate")
    by = pd.Series(p).groupby(adult["sex"].iloc[te].to_numpy()).mean()
    assert sr["group_value"] == pytest.approx(by[sr["group"]], abs=1e-9)
    assert sr["reference_value"] == pytest.approx(by[sr["reference"]], abs=1e-9)


def test_saving_needs_a_savable_method(bank_age, tmp_path):
    with pytest.raises(FairscanError, match="cannot save the 'budget' mitigation"):
        save_mitigated(bank_age, "budget", tmp_path)
    out = save_mitigated(bank_age, "gridsearch", tmp_path / "gs")
    card = json.loads((out / "card.json").read_text())
    assert card["mitigation"]["method"] == "gridsearch"
    from fairscan import modeling

    m = modeling.load_model(out / "model.skops")
    scores = modeling.score(m, datasets.load("bank").head(50))
    assert ((scores >= 0) & (scores <= 1)).all()


def test_unknown_method_or_constraint():
    df = datasets.load("german")
    with pytest.raises(FairscanError, match="did you mean: threshold"):
        compare(df, "credit", ["foreign_worker"], positive_label=1, methods="treshold")
    with pytest.raises(FairscanError, match="unknown constraint"):
        compare(df, "credit", ["foreign_worker"], positive_label=1, constraint="parity")


# -- the attribute each disparity names: as the audit names it ------------------------------------
@pytest.mark.parametrize(("flags", "method", "attribute"), [
    (["--sensitive", "foreign_worker"], "threshold", "foreign_worker"),
    (["--tiers", "age_in_years=30,45"], "threshold", "age_in_years"),
    (["--sensitive", "telephone", "--tiers", "age_in_years=30,45"], "budget", "telephone x age_in_years"),
])
def test_mitigation_json_names_the_attribute_as_the_audit_does(cli, flags, method, attribute):
    r = cli("mitigate", "dataset:german", "--target", "credit", "--positive-label", "1", *flags,
            "--method", method, "--no-sweep", "--format", "json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    points = [out["baseline"], *out["methods"], *out["curve"]]
    assert all(p["disparities"] for p in points)
    assert {d["attribute"] for p in points for d in p["disparities"]} == {attribute}
    assert out["attribute"] == attribute
    # the audit of the same columns writes the same name, so the two JSON documents join on it
    intersect = ["--intersect"] if " x " in attribute else []
    a = cli("audit", "dataset:german", "--score", "credit_amount", "--threshold", "3000", *flags, *intersect,
            "--n-boot", "0", "--format", "json")
    assert a.code == 0, a.err
    assert attribute in {d["attribute"] for d in json.loads(a.out)["disparities"]}


def _toy(n: int = 1500) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    grp = rng.choice(["a", "b"], n, p=[0.6, 0.4])
    x1 = rng.normal(size=n) + (grp == "a")
    x2 = rng.normal(size=n)
    target = (rng.random(n) < 1 / (1 + np.exp(-(x1 + 0.5 * x2)))).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "grp": grp, "target": target})


@pytest.fixture(scope="module")
def toy_grp():
    return compare(_toy(), "target", ["grp"], positive_label=1, methods="threshold", sweep=False, n_boot=0)


@pytest.mark.parametrize("name", ["y", "d", "w"])
def test_an_attribute_named_like_an_internal_column(toy_grp, name):
    """The evaluation's own columns (label, decision, weight) never take the attribute's name:
    renaming the sensitive column changes the attribute's name and nothing else."""
    from fairscan.report.mitigation import render_mitigation_html, render_mitigation_markdown

    r = compare(_toy().rename(columns={"grp": name}), "target", [name], positive_label=1, methods="threshold",
                sweep=False, n_boot=0)
    assert r.meta["attribute"] == name
    threshold = r.methods[0]
    assert threshold.utility["selected"] % 1 > 0  # randomised: the weighted evaluation ran
    for got, want in zip([r.baseline, *r.methods], [toy_grp.baseline, *toy_grp.methods], strict=True):
        assert got.disparities and {d["attribute"] for d in got.disparities} == {name}
        assert [{**d, "attribute": "grp"} for d in got.disparities] == want.disparities
        assert (got.utility, got.summary) == (want.utility, want.summary)
    assert f"Attribute: {name} ·" in render_mitigation_markdown(r)
    assert f"<p>Attribute: {name} ·" in render_mitigation_html(r)


def test_group_thresholds_need_both_outcomes_in_every_group(cli):
    """fairlearn cannot fit a threshold for a group whose training outcomes are all alike (here
    german's foreign workers over 45: 5 people, all good credit, counted independently): one line
    naming the group and what to do, exit 2 — not an internal error."""
    from conftest import assert_plain_message

    from fairscan import datasets

    g = datasets.load("german")
    old_foreign = g[(g["foreign_worker"] == "no") & (g["age_in_years"] > 45)]
    assert old_foreign["credit"].nunique() == 1  # the data fact behind the case
    r = cli("mitigate", "dataset:german", "--target", "credit", "--positive-label", "1", "--sensitive",
            "foreign_worker", "--tiers", "age_in_years=30,45", "--method", "threshold", "--no-sweep")
    assert r.code == 2, r.err
    message = r.err.removeprefix("fairscan: error: ").strip()
    assert_plain_message(message)
    assert message.startswith("group 'no x (45..]' has only positive outcomes in the training split")
    assert "--method budget" in message


def test_progress_is_reported_per_method_and_the_cli_bar_only_in_a_terminal(monkeypatch):
    """mitigation.compare says what it is doing before the base model and each method (the
    fractions only grow, the last is 1); the CLI's bar draws on a terminal's stderr and never
    with --quiet or in a pipe."""
    import io
    import sys

    from fairscan.cli import _progress, build_parser

    seen: list[tuple[float, str]] = []
    compare(datasets.load("german"), "credit", ["foreign_worker"], positive_label=1,
            methods=["threshold", "reweigh"], sweep=False, n_boot=0, progress=lambda f, t: seen.append((f, t)))
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    texts = " ".join(t for _, t in seen)
    assert "base model" in texts and "method 1 of 2: threshold" in texts and "method 2 of 2: reweigh" in texts
    seen.clear()  # with the sweep, every setting of a method is announced before it is fitted
    compare(datasets.load("german"), "credit", ["foreign_worker"], positive_label=1,
            methods=["budget"], n_boot=0, progress=lambda f, t: seen.append((f, t)))
    settings = [t for _, t in seen if "setting" in t]
    assert len(settings) == len(SWEEP["budget"]) and "setting 1 of 4 (strength 1)" in settings[0]
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    args = build_parser().parse_args(["mitigate", "dataset:german", "--target", "credit"])
    show = _progress(args)
    show(0.0, "fitting the base model")
    show(1.0, "compared 1 method(s)")
    assert "compared 1 method(s)" in err.getvalue() and "100%" in err.getvalue()
    quiet = build_parser().parse_args(["mitigate", "dataset:german", "--target", "credit", "--quiet"])
    assert _progress(quiet) is None
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe: no bar
    assert _progress(args) is None


def test_training_and_the_recommendation_audit_report_their_steps():
    """train and recs tell what they are doing (the CLI draws it as a bar on a terminal)."""
    from fairscan import modeling
    from fairscan.recs import audit_recs

    seen: list[tuple[float, str]] = []
    modeling.train_preset("german", model="logistic", progress=lambda f, t: seen.append((f, t)))
    assert seen[0][0] == 0.0 and seen[-1][0] == 1.0 and [f for f, _ in seen] == sorted(f for f, _ in seen)
    assert any("fitting the logistic model" in t for _, t in seen) and "held-out ROC AUC" in seen[-1][1]
    rng = np.random.default_rng(0)
    recs = pd.DataFrame({"user": np.repeat(np.arange(200), 3), "item": rng.integers(0, 30, 600),
                         "rank": np.tile([1, 2, 3], 200)}).drop_duplicates(["user", "item"])
    users = pd.DataFrame({"user": np.arange(200), "g": rng.choice(["a", "b"], 200)})
    items = pd.DataFrame({"item": np.arange(30), "c": rng.choice(["x", "y"], 30)})
    steps: list[tuple[float, str]] = []
    audit_recs(recs, users, items, user_group="g", item_group="c", k=3, n_boot=50,
               progress=lambda f, t: steps.append((f, t)))
    assert [f for f, _ in steps] == sorted(f for f, _ in steps) and steps[0][0] == 0.0 and steps[-1][0] == 1.0
