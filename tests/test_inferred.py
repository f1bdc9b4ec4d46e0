"""Audits by an inferred purchasing-power tier (fairscan.inferred), against direct oracles.

- hard: equals ``fairscan.audit`` of the data with the most probable tier as a column;
- soft: each tier's selection rate equals the probability-weighted (and row-weighted) mean of
  the decisions, computed by hand with numpy;
- observed: equals ``fairscan.audit`` of the labelled rows by their own tier;
- the proxy's cross-validation keeps a person's rows in one fold and never uses the id;
- the CLI's ``--infer-tier`` for both kinds.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import fairscan
from fairscan.audit import decide
from fairscan.groups.purchasing import fit_tier_model
from fairscan.inferred import INFERRED, audit_inferred, infer_tiers, membership


def customers(n: int = 2400, seed: int = 1) -> pd.DataFrame:
    """Several rows (offers) per customer; income known for about 60% of the rows."""
    rng = np.random.default_rng(seed)
    cust = rng.integers(0, 700, n)
    wealth = rng.lognormal(0, 0.6, 700)
    income = np.where(wealth[cust] > 1.4, "high", np.where(wealth[cust] > 0.8, "mid", "low")).astype(object)
    income[rng.random(n) < 0.4] = None
    score = np.clip(0.15 + 0.25 * np.log1p(wealth[cust]) + rng.normal(0, 0.1, n), 0, 1)
    return pd.DataFrame({"customer": cust, "visits": rng.poisson(2 + 3 * wealth[cust]),
                         "basket": np.round(wealth[cust] * rng.uniform(10, 30, n), 2), "income": income,
                         "score": score, "bought": rng.random(n) < score, "w": rng.integers(1, 4, n)})


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return customers()


@pytest.fixture(scope="module")
def proxy(data):
    return fit_tier_model(data, "income", exclude=["bought", "score", "w", "customer"], groups="customer",
                          model="logistic", seed=0)


@pytest.mark.parametrize("weights", [None, "w"])
def test_hard_soft_and_observed_equal_their_oracles(data, proxy, weights):
    kw = dict(target="bought", score="score", budget=0.3, n_boot=0, weights=weights)
    inf = audit_inferred(data, proxy, **kw)
    p = membership(data, proxy)
    hard_tier = p.columns.to_numpy()[p.to_numpy().argmax(axis=1)]
    hard = fairscan.audit(data.assign(**{INFERRED: hard_tier}), sensitive=[INFERRED], **kw)
    cols = ["group", "count", "selection_rate", "true_positive_rate"]
    pd.testing.assert_frame_equal(inf.hard.groups[cols].reset_index(drop=True), hard.groups[cols].reset_index(drop=True))

    d = decide(data, score="score", budget=0.3).astype(float)  # the decision is taken once, on all rows
    assert d.sum() == int(0.3 * len(data))
    w = data["w"].to_numpy(float) if weights else np.ones(len(data))
    soft = inf.soft.groups.set_index("group")
    for tier in p.columns:
        m = p[tier].to_numpy() * w
        assert soft.loc[tier, "selection_rate"] == pytest.approx((m * d).sum() / m.sum(), rel=1e-12)
        y = data["bought"].to_numpy(float)
        assert soft.loc[tier, "true_positive_rate"] == pytest.approx((m * d * y).sum() / (m * y).sum(), rel=1e-12)

    # the observed audit keeps those decisions (a budget is a share of everyone, not of the known)
    known = data.assign(__d__=d > 0)[data["income"].notna()]
    obs = fairscan.audit(known.assign(**{INFERRED: known["income"]}), target="bought", prediction="__d__",
                         sensitive=[INFERRED], n_boot=0, weights=weights)
    pd.testing.assert_frame_equal(inf.observed.groups[cols].reset_index(drop=True),
                                  obs.groups[cols].reset_index(drop=True))
    assert set(inf.comparison["group"]) <= set(p.columns)


def test_person_ids_stay_in_one_fold_and_out_of_the_features(data, proxy):
    assert "customer" not in proxy.features
    # a model that may use the id (and split a customer's rows across folds) recognises people
    leaky = fit_tier_model(data, "income", exclude=["bought", "score", "w"], model="gbm", seed=0)
    assert "customer" in leaky.features
    assert proxy.n_effective < proxy.n_labelled  # rows of one customer count together
    tiers, model = infer_tiers(data, {"kind": "model", "column": "income", "person": "customer"},
                               exclude=["bought", "score", "w"])
    assert "customer" not in model.features and tiers.notna().all() and set(tiers) <= set(model.classes)


def test_cli_infer_tier_model_and_spend(data, tmp_path, cli):
    path = tmp_path / "offers.parquet"
    data.to_parquet(path)
    r = cli("audit", str(path), "--target", "bought", "--score", "score", "--budget", "0.3", "--n-boot", "0",
            "--infer-tier", "model:income,customer", "--format", "json")
    assert r.code in (0, 1), r.err
    doc = json.loads(r.out)
    assert doc["inferred_tier"]["proxy"]["tier_column"] == "income"
    assert {g["group"] for g in doc["groups"] if g["attribute"] == INFERRED} <= {"high", "low", "mid"}
    r = cli("audit", str(path), "--target", "bought", "--score", "score", "--budget", "0.3", "--n-boot", "0",
            "--infer-tier", "spend:customer,basket,3", "--format", "json")
    assert r.code in (0, 1), r.err
    doc = json.loads(r.out)
    assert len([g for g in doc["groups"] if g["attribute"] == INFERRED]) == 3
    bad = cli("audit", str(path), "--target", "bought", "--score", "score", "--budget", "0.3",
              "--infer-tier", "model:income,nobody")
    assert bad.code == 2 and "nobody" in bad.err and bad.err.count("\n") == 1
