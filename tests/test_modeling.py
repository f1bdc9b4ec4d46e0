"""Reference models: training, cards, safe loading (skops allow-list, pickle refusal), scoring."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pandas as pd
import pytest

import fairscan
from fairscan import datasets, modeling
from fairscan.errors import FairscanError


@pytest.fixture(scope="module")
def small_bank_model(tmp_path_factory):
    bank = datasets.load("bank").sample(6000, random_state=0).reset_index(drop=True)
    trained = modeling.train_targeting(bank, "y", "yes", drop=["duration"], sensitive=["age", "balance", "job"],
                                       name="bank-sample")
    out = modeling.save_model(trained, tmp_path_factory.mktemp("m") / "bank-sample")
    return bank, trained, out


def test_training_writes_model_card_and_scores(small_bank_model):
    bank, _, out = small_bank_model
    assert {p.name for p in out.iterdir()} == {"model.skops", "card.json", "card.md", "scores.parquet"}
    card = json.loads((out / "card.json").read_text())
    for key in ("features", "sensitive", "metrics", "data_sha256", "split", "seed", "created", "fairscan_version"):
        assert key in card
    assert set(card["metrics"]) == {"roc_auc", "accuracy", "brier"}
    assert "duration" not in card["features"] and not set(card["sensitive"]) & set(card["features"])
    assert card["sensitive_are_features"] is False and "not features" in card["notes"][0]
    scores = pd.read_parquet(out / "scores.parquet")
    # the held-out rows: row id, label, score and the sensitive columns only
    assert list(scores.columns) == ["row_id", "y", "age", "balance", "job", "score"]
    assert len(scores) == card["split"]["n_test"] == 1800
    assert scores["row_id"].is_unique and scores["score"].between(0, 1).all()
    # the hold-out metrics are what sklearn says about the saved scores
    from sklearn.metrics import roc_auc_score

    assert card["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(scores["y"] == "yes", scores["score"]), abs=1e-6)
    assert (bank.loc[scores["row_id"], "y"].to_numpy() == scores["y"].to_numpy()).all()


def test_model_loaded_from_disk_scores_like_the_one_in_memory(small_bank_model):
    bank, trained, out = small_bank_model
    loaded = modeling.load_model(out / "model.skops")  # no flag needed for fairscan's own models
    a = modeling.score(loaded, bank)
    b = trained.estimator.predict_proba(bank[trained.features])[:, 1]
    np.testing.assert_array_equal(a, b)


def test_crafted_pickle_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    p = tmp_path / "model.pkl"
    p.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(FairscanError, match=r"runs any code it contains.*--trust-pickle"):
        modeling.load_model(p)
    assert not marker.exists()
    # the CLI says the same on one line, exit 2
    from fairscan.cli import main

    assert main(["audit", "dataset:german", "--model", str(p), "--budget", "0.3", "--tiers", "age_in_years=25,"]) == 2
    assert not marker.exists()
    # with explicit consent it is loaded (and the file's code runs: that is what consent means)
    modeling.load_model(p, trust_pickle=True)
    assert marker.exists()


class Doubler:
    """A custom type skops does not know."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X * 2


def test_skops_type_outside_allow_list_is_refused(tmp_path):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X = np.random.default_rng(0).normal(size=(50, 2))
    pipe = make_pipeline(Doubler(), LogisticRegression()).fit(X, X[:, 0] > 0)
    p = tmp_path / "custom.skops"
    sio.dump(pipe, p)
    name = f"{Doubler.__module__}.Doubler"
    with pytest.raises(FairscanError, match=rf"does not trust: {re.escape(name)}.*--trust TYPE"):
        modeling.load_model(p)
    loaded = modeling.load_model(p, trust=[name])
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))


def test_missing_feature_columns_are_listed(small_bank_model):
    bank, _, out = small_bank_model
    with pytest.raises(FairscanError, match=r"lacks 2 feature column\(s\) the model needs: housing, loan"):
        fairscan.audit(bank.drop(columns=["housing", "loan"]), model=out / "model.skops", budget=0.1, sensitive="job")


def test_audit_with_any_object_with_predict_proba(bank):
    class Rule:
        def predict_proba(self, X):
            p = (X["balance"].rank(pct=True)).to_numpy()
            return np.c_[1 - p, p]

    r = fairscan.audit(bank, target="y", positive_label="yes", model=Rule(), budget=0.1, tiers={"balance": 4},
                       n_boot=0)
    g = r.groups.set_index("group")
    # the top 10% (4,521 rows) by balance all fall in the top quartile; the others get nothing
    assert g["selection_rate"].iloc[-1] == pytest.approx(4521 / g["count"].iloc[-1], abs=1e-12)
    assert (g["selection_rate"].iloc[:3] == 0.0).all()


def test_reference_model_from_checkout_and_cache(tmp_path, monkeypatch):
    # the checkout's models/ resolves without training
    assert modeling.resolve_model_path("reference:bank") == modeling.repo_models_dir() / "bank" / "model.skops"
    # an installed fairscan with no checkout trains the preset once and caches it
    monkeypatch.setattr(modeling, "repo_models_dir", lambda: tmp_path / "no-checkout")
    monkeypatch.setenv("FAIRSCAN_CACHE", str(tmp_path / "cache"))
    path = modeling.resolve_model_path("reference:german")
    assert path == tmp_path / "cache" / "fairscan" / "models" / "german" / "model.skops" and path.exists()
    mtime = path.stat().st_mtime_ns
    assert modeling.resolve_model_path("reference:german").stat().st_mtime_ns == mtime
    with pytest.raises(FairscanError, match="did you mean: german"):
        modeling.resolve_model_path("reference:germn")


def test_cli_audit_with_reference_model_warns_about_training_rows(cli):
    r = cli("audit", "dataset:german", "--model", "reference:german", "--budget", "0.3",
            "--tiers", "age_in_years=25,", "--format", "json", "--n-boot", "50")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["model"]["name"] == "german" and len(out["model"]["sha256"]) == 64
    assert any("trained on" in w for w in out["warnings"])


@pytest.mark.slow
@pytest.mark.parametrize("name", modeling.PRESETS)
def test_committed_reference_models_reproduce(name):
    """Re-train each preset: same data hash, hold-out metrics within 0.02 of the committed card."""
    card = json.loads((modeling.repo_models_dir() / name / "card.json").read_text())
    trained = modeling.train_preset(name)
    fresh = trained.card()
    assert fresh["data_sha256"] == card["data_sha256"]
    assert fresh["features"] == card["features"] and fresh["sensitive"] == card["sensitive"]
    for k in ("roc_auc", "accuracy", "brier"):
        assert fresh["metrics"][k] == pytest.approx(card["metrics"][k], abs=0.02), k
    if name == "bank":
        assert fresh["metrics"]["roc_auc"] >= 0.78  # the bar for the bank preset


def test_onnx_model_scores_like_the_sklearn_one(tmp_path):
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    bank = datasets.load("bank")
    cols = ["age", "balance", "campaign", "pdays"]
    X = bank[cols].astype("float32")
    clf = LogisticRegression(max_iter=1000).fit(X, bank["y"] == "yes")
    onx = skl2onnx.convert_sklearn(clf, initial_types=[("input", FloatTensorType([None, len(cols)]))],
                                   options={id(clf): {"zipmap": False}})
    p = tmp_path / "model.onnx"
    p.write_bytes(onx.SerializeToString())
    loaded = modeling.load_model(p)
    got = modeling.score(loaded, X)
    np.testing.assert_allclose(got, clf.predict_proba(X)[:, 1], atol=1e-5)
    # a single-tensor model on a wider frame needs its feature list: a clear error, then a card
    with pytest.raises(FairscanError, match=r"card\.json"):
        fairscan.audit(bank, target="y", positive_label="yes", model=p, budget=0.1, sensitive="job")
    (tmp_path / "card.json").write_text(json.dumps({"name": "onnx", "features": cols}))
    a = fairscan.audit(bank[[*cols, "y", "job"]].astype({c: "float32" for c in cols}), target="y",
                       positive_label="yes", model=p, budget=0.1, sensitive="job", n_boot=0)
    assert a.meta["model"]["type"] == "OnnxModel" and a.groups["count"].sum() == len(bank)
