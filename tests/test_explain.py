"""Explaining a gap against a case with a known answer, and the Shapley properties that must
hold whatever the data: contributions add up to the explained gap, the gap equals the audit's."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import fairscan
from fairscan.errors import FairscanError
from fairscan.explain import explain


class TwoFeatureModel:
    """Scores from x1 and x2 only; x3 is read but ignored."""

    feature_names_in_ = np.array(["x1", "x2", "x3"])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        z = 1 / (1 + np.exp(-(2 * X["x1"].to_numpy() + X["x2"].to_numpy())))
        return np.column_stack([1 - z, z])


@pytest.fixture(scope="module")
def known() -> pd.DataFrame:
    """Only x1's distribution differs between the groups among the features the model uses;
    x3 differs too, but the model ignores it."""
    rng = np.random.default_rng(0)
    n = 12_000
    g = rng.choice(["A", "B"], n)
    return pd.DataFrame({"x1": rng.normal(np.where(g == "A", -1.0, 0.0), 1.0), "x2": rng.normal(0, 1, n),
                         "x3": rng.normal(np.where(g == "A", 1.0, 0.0), 1.0), "g": g})


def test_the_known_answer(known):
    r = explain(known, model=TwoFeatureModel(), group={"g": "A"}, threshold=0.5, seed=1)
    c = r.contributions.set_index("feature")
    m = r.meta
    assert m["method"]["enumeration"] == "exact"
    # the gap is the audit's: the same rows, decision and rule
    scores = TwoFeatureModel().predict_proba(known)[:, 1]
    audit = fairscan.audit(known.assign(s=scores), score="s", threshold=0.5, sensitive="g", n_boot=0)
    rates = audit.groups.set_index("group")["selection_rate"]
    assert m["gap"] == pytest.approx(rates["A"] - rates["B"], abs=1e-12)
    # x1 carries the whole gap, within its interval; x2 about 0; x3 exactly 0 (never read)
    assert c.loc["x1", "contribution_ci_low"] <= m["gap"] <= c.loc["x1", "contribution_ci_high"]
    assert abs(c.loc["x2", "contribution"]) < 0.01 and c.loc["x2", "contribution_ci_low"] <= 0
    assert c.loc["x3", "contribution"] == 0
    # efficiency: the contributions add up to the explained gap (exact enumeration)
    assert c["contribution"].sum() == pytest.approx(m["explained"], abs=1e-9)
    assert m["explained"] + m["remainder"] == pytest.approx(m["gap"], abs=1e-12)
    # x3 differs between the groups: a proxy of the group, though the model ignores it
    assert c.loc["x3", "proxy_auc"] > 0.7 and c.loc["x2", "proxy_auc"] < 0.55


def test_permutations_add_up_exactly_and_agree_with_exact_enumeration(known, monkeypatch):
    exact = explain(known, model=TwoFeatureModel(), group="g=A", threshold=0.5, n_permutations=4, seed=2,
                    proxies=False)
    import sys

    monkeypatch.setattr(sys.modules["fairscan.explain"], "EXACT_BUDGET", 0)  # force the permutation estimator
    perm = explain(known, model=TwoFeatureModel(), group="g=A", threshold=0.5, n_permutations=4, seed=2,
                   proxies=False)
    assert perm.meta["method"]["enumeration"] == "permutations"
    assert perm.contributions["contribution"].sum() == pytest.approx(perm.meta["explained"], abs=1e-9)
    e = exact.contributions.set_index("feature")["contribution"]
    p = perm.contributions.set_index("feature")
    for f in ("x1", "x2", "x3"):  # within four Monte Carlo standard errors, plus donor noise
        assert abs(p.loc[f, "contribution"] - e[f]) <= 4 * p.loc[f, "mc_error"] + 0.01


def test_a_budget_keeps_its_cut_and_the_json_follows_the_schema(known):
    import jsonschema

    from fairscan import schemas

    r = explain(known, model=TwoFeatureModel(), group="g=A", reference="g=B", budget=0.3, proxies=False, n_boot=50)
    scores = TwoFeatureModel().predict_proba(known)[:, 1]
    cut = np.sort(scores)[::-1][int(0.3 * len(known)) - 1]
    a = known["g"].to_numpy() == "A"
    assert r.meta["selection_rate"]["group"] == pytest.approx((scores[a] >= cut).mean(), abs=1e-12)
    lo, hi = r.meta["decision"]["cut_score_range"]
    assert lo <= cut <= hi and hi - lo < 0.01  # published rounded: not one customer's exact score
    doc = json.loads(r.to_json())
    jsonschema.validate(doc, schemas.load("explain"))
    assert {"feature", "contribution", "ci"} <= set(doc["contributions"][0])
    assert "<svg" in r.to_html() and "Waterfall" in r.to_markdown()


def test_cli_on_the_bundled_adult_model(cli, tmp_path):
    out = tmp_path / "why.json"
    r = cli("explain", "dataset:adult", "--model", "reference:adult", "--group", "sex=Female", "--reference",
            "sex=Male", "--budget", "0.2", "--n-permutations", "1", "--n-boot", "50", "--no-proxies",
            "--format", "json", "--out", str(out))
    assert r.code == 0, r.err
    doc = json.loads(out.read_text())
    assert doc["gap"] < 0 and doc["group"]["count"] > 10_000
    assert sum(c["contribution"] for c in doc["contributions"]) == pytest.approx(doc["explained"], abs=1e-9)


@pytest.mark.parametrize(("kw", "words"), [
    (dict(group="g=C"), "group 'C' not found in attribute 'g'; groups are: A, B"),
    (dict(group="h=A"), "attribute column 'h' not found"),
    (dict(group="g=A", reference="g=A"), "overlap"),
    (dict(group="g=A", features=["x9"]), "'x9' is not an input of the model"),
])
def test_bad_requests_are_one_line(known, kw, words):
    with pytest.raises(FairscanError) as e:
        explain(known, model=TwoFeatureModel(), threshold=0.5, proxies=False, **kw)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_without_bootstrap_the_intervals_are_null(known):
    r = explain(known, model=TwoFeatureModel(), group="g=A", threshold=0.5, n_boot=0, proxies=False)
    assert r.contributions["contribution_ci_low"].isna().all() and r.what_if["selection_rate_ci_high"].isna().all()
    assert json.loads(r.to_json())["gap_ci"] == [None, None]


def test_a_small_group_is_never_explained(known):
    tiny = known.assign(g=np.where(np.arange(len(known)) < 5, "tiny", known["g"]))
    with pytest.raises(FairscanError, match="fewer than 10 people"):
        explain(tiny, model=TwoFeatureModel(), group="g=tiny", threshold=0.5)
