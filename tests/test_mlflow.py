"""MLflow: registry models in (safely), results out as runs, fairscan as an MLflow evaluator.

Everything runs against a real local MLflow (SQLite backend, artifacts in a temporary
folder): models are logged, registered and aliased, runs are read back. No mocks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")

import fairscan  # noqa: E402
from fairscan import modeling  # noqa: E402
from fairscan.errors import FairscanError  # noqa: E402
from fairscan.integrations.mlflow import metric_name, result_metrics  # noqa: E402
from tests.conftest import assert_plain_message  # noqa: E402

AUDIT = dict(budget=0.2, tiers={"age": [24, 59], "balance": 4}, n_boot=50)


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """A fresh SQLite tracking server in a temporary folder, with the reference bank model
    registered in skops format as version 1 (alias champion) and a logistic challenger as
    version 2 (alias challenger)."""
    import skops.io as sio

    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    old_cwd, old_uri = os.getcwd(), os.environ.get("MLFLOW_TRACKING_URI")
    os.chdir(folder)  # MLflow's default artifact root is ./mlruns
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    try:
        client = mlflow.MlflowClient()
        champion = modeling.load_model(modeling.resolve_model_path("reference:bank"))
        challenger = modeling.train_preset("bank", model="logistic").estimator
        runs = {}
        for alias, model in (("champion", champion), ("challenger", challenger)):
            with mlflow.start_run() as run:
                trusted = sorted(set(sio.get_untrusted_types(data=sio.dumps(model))))
                mlflow.sklearn.log_model(model, name="model", serialization_format="skops",
                                         registered_model_name="bank", skops_trusted_types=trusted)
            runs[alias] = run.info.run_id
        client.set_registered_model_alias("bank", "champion", "1")
        client.set_registered_model_alias("bank", "challenger", "2")
        yield {"uri": uri, "folder": folder, "runs": runs, "client": client}
    finally:
        os.chdir(old_cwd)
        if old_uri is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old_uri
        mlflow.set_tracking_uri(old_uri or "")


def test_the_registered_bank_model_gives_the_reference_audit(tracking):
    via_registry = fairscan.audit("dataset:bank:holdout", model="models:/bank@champion", **AUDIT)
    via_reference = fairscan.audit("dataset:bank:holdout", model="reference:bank", **AUDIT)
    pd.testing.assert_frame_equal(via_registry.groups, via_reference.groups)
    pd.testing.assert_frame_equal(via_registry.disparities, via_reference.disparities)
    m = via_registry.meta["model"]
    assert (m["uri"], m["registered_name"], m["version"], m["alias"]) == ("models:/bank@champion", "bank", "1",
                                                                          "champion")
    assert m["run_id"] == tracking["runs"]["champion"] and m["flavor"] == "skops"
    local = Path(mlflow.artifacts.download_artifacts("models:/bank/1", dst_path=str(tracking["folder"] / "dl")))
    assert m["sha256"] == hashlib.sha256((local / "model.skops").read_bytes()).hexdigest()
    for uri in ("models:/bank/1", "models:/bank/latest", f"runs:/{tracking['runs']['champion']}/model"):
        _, _, meta = modeling.open_model(uri)
        assert meta["sha256"] == m["sha256"] if uri != "models:/bank/latest" else meta["version"] == "2"


def test_unknown_names_aliases_and_versions_are_one_line_errors(tracking, cli):
    for uri, expect in (("models:/bnak@champion", "did you mean: bank"), ("models:/bank@champ", "champion"),
                        ("models:/bank/7", "its versions: 1, 2"), ("models:/bank", "models:/NAME@ALIAS")):
        r = cli("audit", "dataset:bank:holdout", "--model", uri, "--budget", "0.2", "--tiers", "age=24,59",
                "--tracking-uri", tracking["uri"])
        assert r.code == 2 and expect in r.err, (uri, r.err)
        assert_plain_message(r.err.strip().removeprefix("fairscan: error: "))


def test_a_cloudpickle_model_is_refused_and_never_unpickled(tracking, tmp_path):
    marker = tmp_path / "pwned.txt"

    class Evil(mlflow.pyfunc.PythonModel):
        def __reduce__(self):  # unpickling this object opens (creates) the marker file
            return (open, (str(marker), "w"))

        def predict(self, context, model_input):
            return np.zeros(len(model_input))

    with mlflow.start_run():
        mlflow.pyfunc.log_model(name="model", python_model=Evil(), registered_model_name="evil")
    marker.unlink(missing_ok=True)  # MLflow itself loads the model once while logging it (pip inference)
    with pytest.raises(FairscanError, match="refuses it by default") as e:
        fairscan.audit("dataset:bank:holdout", model="models:/evil/1", **AUDIT)
    assert "--trust-pickle" in str(e.value) and "skops" in str(e.value)
    assert not marker.exists()
    champion = modeling.load_model(modeling.resolve_model_path("reference:bank"))
    with mlflow.start_run():  # a scikit-learn model pickled the default way
        mlflow.sklearn.log_model(champion, name="model", serialization_format="cloudpickle",
                                 registered_model_name="pickled")
    with pytest.raises(FairscanError, match="cloudpickled scikit-learn model"):
        modeling.open_model("models:/pickled/1")
    model, _, meta = modeling.open_model("models:/pickled/1", trust_pickle=True)  # consent: loads
    assert meta["flavor"] == "sklearn-pickle" and hasattr(model, "predict_proba")


def test_a_skops_model_whose_mlmodel_trusts_a_foreign_type_is_refused(tracking):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 3)), rng.integers(0, 2, 200)
    model = make_pipeline(FunctionTransformer(np.abs), LogisticRegression()).fit(X, y)
    model[0].func = os.system  # never called here; loading would hand it over to whoever scores
    untrusted = sorted(set(sio.get_untrusted_types(data=sio.dumps(model))))
    assert untrusted  # the MLmodel will declare these trusted
    with mlflow.start_run():
        mlflow.sklearn.log_model(model, name="model", serialization_format="skops", registered_model_name="crafted",
                                 skops_trusted_types=untrusted)
    with pytest.raises(FairscanError, match="types fairscan does not trust") as e:
        modeling.open_model("models:/crafted/1")
    assert any(t in str(e.value) for t in untrusted)


def test_an_mlmodel_that_points_outside_its_folder_is_refused(tracking, tmp_path):
    local = Path(mlflow.artifacts.download_artifacts("models:/bank/1", dst_path=str(tmp_path / "copy")))
    text = (local / "MLmodel").read_text()
    (local / "MLmodel").write_text(text.replace("pickled_model: model.skops", "pickled_model: ../../outside.skops"))
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(local), "crafted")
    with pytest.raises(FairscanError, match="points outside the model's folder"):
        modeling.open_model(f"runs:/{run.info.run_id}/crafted")


def test_hostile_group_names_become_valid_distinct_metric_names():
    from mlflow.utils.validation import _validate_metric_name

    hostile = ["../../etc/passwd", "a/b", "..", ".", "", "x" * 400, "ünïcode ✓", "a\nb", "q:1 - (2)", "a/b ", "a_b"]
    names = [metric_name("sex", g, "selection_rate") for g in hostile]
    for n in names:
        _validate_metric_name(n)  # MLflow's own rule: raises on an invalid name
        assert n.startswith("fairscan/sex/") and n.count("/") == 3 and len(n) <= 250
    assert len(set(names)) == len(names)  # never two groups under one name
    assert metric_name("sex", "a_b", "rate") == "fairscan/sex/a_b/rate"  # a safe name is kept as it is


def test_an_audit_logged_as_a_run_has_the_groups_numbers_tags_and_reports(tracking, tmp_path):
    data = fairscan.datasets.load("bank").head(3000).copy()
    data["job"] = data["job"].astype(str)
    data.loc[data.index[:4], "job"] = "../tiny/group"  # 4 rows: suppressed, never logged
    result = fairscan.audit(data, target="y", model="reference:bank", budget=0.2, sensitive="job", n_boot=20)
    run_id = result.log_to_mlflow(experiment="fairscan-tests")
    run = tracking["client"].get_run(run_id)
    groups = result.groups
    shown = groups[~groups["suppressed"]]
    assert (groups["suppressed"]).any()
    for r in shown.to_dict("records"):
        assert run.data.metrics[metric_name("job", r["group"], "selection_rate")] == pytest.approx(
            r["selection_rate"])
    assert not any("tiny" in k for k in run.data.metrics)
    counts = result.verdict_counts()
    assert run.data.metrics["fairscan/findings/fail"] == counts["fail"]
    assert run.data.tags["fairscan.verdict"] == ("fail" if counts["fail"] else
                                                 "insufficient" if counts["insufficient"] else "pass")
    assert run.data.tags["fairscan.data_sha256"] == result.meta["data_sha256"]
    assert run.data.tags["fairscan.model"] == "reference:bank"
    assert {f.path for f in tracking["client"].list_artifacts(run_id, "fairscan")} == {
        "fairscan/audit.json", "fairscan/audit.html"}
    assert tracking["client"].get_experiment(run.info.experiment_id).name == "fairscan-tests"


def test_cli_logs_compare_champion_against_challenger_into_a_given_run(tracking, cli):
    with mlflow.start_run() as run:
        pass
    r = cli("compare", "dataset:bank:holdout", "--model", "models:/bank@champion", "--model",
            "models:/bank@challenger", "--budget", "0.2", "--tiers", "age=24,59", "--n-boot", "50", "--mlflow",
            "--mlflow-run-id", run.info.run_id, "--tracking-uri", tracking["uri"], "--format", "json")
    assert r.code == 0, r.err
    assert f"logged to MLflow run {run.info.run_id}" in r.err
    logged = tracking["client"].get_run(run.info.run_id)
    assert any(k.endswith("selection_rate_change") for k in logged.data.metrics)
    worse = [c for c in __import__("json").loads(r.out)["changes"] if c["verdict"] == "worse"]
    assert worse  # a data fact of bank: the logistic challenger offers some age groups less
    assert logged.data.tags["fairscan.verdict"] == "fail"  # a worse group fails the release gate
    assert logged.data.metrics["fairscan/findings/fail"] == len(worse)
    assert "fairscan/compare.json" in {f.path for f in tracking["client"].list_artifacts(run.info.run_id,
                                                                                         "fairscan")}


def _evaluation_frame() -> tuple[pd.DataFrame, np.ndarray]:
    _, rows = modeling.reference_scores("bank")
    data = modeling.with_features("bank", rows.head(4000))
    return data, data["age"].to_numpy()


def test_the_evaluator_gives_the_audits_numbers_with_a_score_column_and_a_registered_model(tracking):
    data, age = _evaluation_frame()
    model, card, _ = modeling.open_model("reference:bank")
    features = list(card["features"])
    frame = data[features].assign(y=(data["y"] == "yes").astype(int), score=modeling.score(model, data, card=card))
    config = {"sensitive": {"age_band": np.where(age < 30, "young", np.where(age < 60, "middle", "older"))},
              "budget": 0.2, "n_boot": 50}
    want = fairscan.audit(frame.assign(age_band=config["sensitive"]["age_band"]), target="y", score="score",
                          sensitive="age_band", budget=0.2, n_boot=50)
    want_metrics = result_metrics(want)
    with mlflow.start_run():
        res = mlflow.models.evaluate(data=frame, targets="y", predictions="score", model_type="classifier",
                                     evaluators=["fairscan"],
                                     evaluator_config={"fairscan": config})
    for k, v in want_metrics.items():
        assert res.metrics[k] == pytest.approx(v), k
    with mlflow.start_run():
        res = mlflow.models.evaluate("models:/bank@champion", data=frame.drop(columns="score"), targets="y",
                                     model_type="classifier", evaluators=["fairscan"],
                                     evaluator_config={"fairscan": config})
    for k, v in want_metrics.items():
        assert res.metrics[k] == pytest.approx(v), k
    from mlflow.models import MetricThreshold

    fails = want.verdict_counts()["fail"]
    ok = {"fairscan/findings/fail": MetricThreshold(threshold=fails, greater_is_better=False)}
    mlflow.validate_evaluation_results(ok, res)  # at the threshold: passes
    strict = {"fairscan/findings/fail": MetricThreshold(threshold=fails - 0.5, greater_is_better=False)}
    with pytest.raises(Exception, match="fairscan/findings/fail"):
        mlflow.validate_evaluation_results(strict, res)


def test_a_plain_evaluate_is_untouched_by_fairscan(tracking):
    data, _ = _evaluation_frame()
    model, card, _ = modeling.open_model("reference:bank")
    frame = data[list(card["features"])].assign(y=(data["y"] == "yes").astype(int),
                                                score=modeling.score(model, data, card=card))
    frame["pred"] = (frame["score"] > 0.5).astype(int)
    frame = frame.select_dtypes("number")  # MLflow's own evaluator does not read pandas 3's str columns
    from fairscan.integrations.mlflow import FairscanEvaluator

    for config in (None, {"pos_label": 1}):
        assert not FairscanEvaluator().can_evaluate(model_type="classifier", evaluator_config=config or {})
        with mlflow.start_run() as run:
            res = mlflow.models.evaluate(data=frame.drop(columns="score"), targets="y", predictions="pred",
                                         model_type="classifier", evaluator_config=config)
        assert not any(k.startswith("fairscan") for k in res.metrics)
        logged = tracking["client"].get_run(run.info.run_id)
        assert not any(k.startswith("fairscan") for k in logged.data.tags)
        assert not [f for f in tracking["client"].list_artifacts(run.info.run_id) if f.path.startswith("fairscan")]


def test_a_review_gates_the_challenger_on_the_registry_champion_and_logs_its_run(tracking, cli, tmp_path):
    (tmp_path / "review.yaml").write_text(
        "name: bank-release\ndata: dataset:bank:holdout\nlabel: y\npositive_label: 'yes'\n"
        "model: models:/bank@challenger\nbaseline: {model: models:/bank@champion}\n"
        "tiers: {age: [24, 59]}\ndecision: {budget: 0.2}\npolicy: {n_boot: 50}\n")
    r = cli("review", "run", str(tmp_path / "review.yaml"), "--mlflow", "--mlflow-experiment", "releases",
            "--tracking-uri", tracking["uri"])
    doc = __import__("json").loads((tmp_path / "reports" / "bank-release.json").read_text())
    assert r.code == {"pass": 0, "fail": 1, "insufficient": 3}[doc["review"]["status"]], r.err
    worse = [c for c in doc["review"]["baseline_comparison"]["changes"] if c["verdict"] == "worse"]
    assert worse and doc["review"]["status"] == "fail"  # the challenger is worse for some group: no release
    from fairscan.review import DEFAULT_HISTORY
    from fairscan.review.history import History

    body = History(tmp_path / DEFAULT_HISTORY).last_run("bank-release")["body"]
    local = {v: Path(mlflow.artifacts.download_artifacts(f"models:/bank/{v}", dst_path=str(tmp_path / f"v{v}")))
             for v in ("1", "2")}
    assert body["model_sha256"] == hashlib.sha256((local["2"] / "model.skops").read_bytes()).hexdigest()
    assert body["baseline"]["sha256"] == hashlib.sha256((local["1"] / "model.skops").read_bytes()).hexdigest()
    assert doc["model"]["uri"] == "models:/bank@challenger" and doc["model"]["version"] == "2"
    assert doc["review"]["baseline_comparison"]["changes"]
    run_id = r.err.split("logged to MLflow run ")[1].split()[0]
    run = tracking["client"].get_run(run_id)
    assert run.data.tags["fairscan.analysis"] == "review"
    assert run.data.tags["fairscan.verdict"] == doc["review"]["status"]
    assert run.data.tags["fairscan.model"] == "models:/bank@challenger"
    assert tracking["client"].get_experiment(run.info.experiment_id).name == "releases"


def test_the_dashboard_compares_registry_models_by_their_uris(tracking):
    """The compare page's registry field: champion against challenger by their URIs gives the
    library's comparison of the same two registered models."""
    from tests.test_app import BANK_TIERS, fresh, no_errors

    at = fresh("compare")
    no_errors(at)
    for side, uri in (("A", "models:/bank@champion"), ("B", "models:/bank@challenger")):
        at.selectbox(key=f"c_pick_{side}").set_value("A model from an MLflow registry…").run()
        at.text_input(key=f"c_uri_{side}").set_value(uri).run()  # the app's server: $MLFLOW_TRACKING_URI
    no_errors(at)
    want = fairscan.compare(fairscan.datasets.load("bank", split="holdout"),
                            models=["models:/bank@champion", "models:/bank@challenger"], target="y",
                            positive_label="yes", budget=0.2, tiers=BANK_TIERS)
    table = at.dataframe[0].value
    sw = want.switches
    age = sw[sw["attribute"] == "age"].set_index("group")
    for grp in ["(..24]", "(24..59]", "(59..]"]:
        row = table[table["group"] == f"age = {grp}"].iloc[0]
        assert row["gained (B only)"] == age.loc[grp, "gained"]
        assert row["lost (A only)"] == age.loc[grp, "lost"]


def test_a_value_audit_and_a_registry_audit_log_with_their_data_hash_and_follow_their_schemas(tracking):
    import jsonschema

    from fairscan import schemas
    from fairscan.engines.datahash import frame_sha256
    from tests.test_value import prices

    df = prices(2000)
    value = fairscan.audit_value(df, value="price", favourable="lower", sensitive="tier", within="product", n_boot=20)
    assert value.meta["data_sha256"] == frame_sha256(df[["price", "tier", "product"]])
    run = tracking["client"].get_run(value.log_to_mlflow())
    assert run.data.tags["fairscan.data_sha256"] == value.meta["data_sha256"]
    assert run.data.tags["fairscan.analysis"] == "value"
    for r in value.groups.to_dict("records"):
        assert run.data.metrics[metric_name("tier", r["group"], "mean")] == pytest.approx(r["mean"])
    audit = fairscan.audit("dataset:bank:holdout", model="models:/bank@champion", **AUDIT)
    jsonschema.validate(__import__("json").loads(audit.to_json()), schemas.load("audit"))


def test_the_base_install_never_imports_mlflow():
    """An audit from a file, a value audit and the command line's start leave MLflow out."""
    import subprocess
    import sys

    code = ("import sys, fairscan, fairscan.cli\n"
            "fairscan.audit('dataset:bank:holdout', model='reference:bank', budget=0.2, tiers={'age': 3}, n_boot=10)\n"
            "from tests.test_value import prices\n"
            "fairscan.audit_value(prices(500), value='price', favourable='lower', sensitive='tier', n_boot=0)\n"
            "assert 'mlflow' not in sys.modules, 'mlflow was imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=str(Path(__file__).resolve().parents[1]))
    assert r.returncode == 0, r.stderr[-2000:]


def test_recommendation_and_discovery_results_log_their_published_numbers(tracking):
    from fairscan.recs import audit_recs
    from tests.test_recs import lists_frame

    rng = np.random.default_rng(4)
    users = pd.DataFrame({"user": [f"u{i}" for i in range(300)], "tier": rng.choice(["H", "L"], 300)})
    items = pd.DataFrame({"item": [f"i{j}" for j in range(40)], "price": ["P"] * 20 + ["S"] * 20})
    lists = {u: [f"i{j}" for j in rng.choice(40, 5, replace=False)] for u in users["user"]}
    recs = audit_recs(lists_frame(lists), users, items, user_group="tier", item_group="price", k=5, n_boot=50)
    run = tracking["client"].get_run(recs.log_to_mlflow())
    gaps = recs.gaps[~recs.gaps["suppressed"]]
    assert len(gaps)
    for r in gaps.to_dict("records"):
        key = metric_name(r["item_group"] or "all", r["group"], r["metric"])
        assert run.data.metrics[key] == pytest.approx(r["group_value"])
    assert run.data.tags["fairscan.analysis"] == "recs"
    disc = fairscan.discover("dataset:bank:holdout", model="reference:bank", budget=0.2, top=5)
    run = tracking["client"].get_run(disc.log_to_mlflow())
    for r in disc.listed.to_dict("records"):
        if not r["suppressed"]:
            assert run.data.metrics[metric_name("subgroups", r["id"], "difference")] == pytest.approx(r["difference"])
    assert {f.path for f in tracking["client"].list_artifacts(run.info.run_id, "fairscan")} == {
        "fairscan/discover.json", "fairscan/discover.html"}


def test_the_data_page_takes_a_model_from_the_registry(tracking):
    """The Data & model page: 'Upload a model and data' with the model from a registry; the
    model it loads scores as the reference model does, and a URI that is not one gets one line."""
    from fairscan.dashboard.state import RegistryRef, load_uploaded_model
    from tests.test_app import fresh

    at = fresh("data")
    at.radio(key="d_source").set_value("Upload a model and data").run()
    at.radio(key="d_model_from").set_value("an MLflow registry").run()
    assert not [t for t in at.text_input if "server" in (t.label or "").lower()]  # never a visitor's choice
    at.text_input(key="d_model_uri").set_value("bank@champion").run()
    assert any("is not one fairscan reads" in e.value for e in at.error)
    at.text_input(key="d_model_uri").set_value("models:/bank@champion").run()
    assert not at.exception and not at.error
    held = fairscan.datasets.load("bank", split="holdout").head(500)
    model = load_uploaded_model(RegistryRef("models:/bank@champion"), trust_pickle=False)
    reference, card, _ = modeling.open_model("reference:bank")
    np.testing.assert_array_equal(modeling.score(model, held), modeling.score(reference, held, card=card))
