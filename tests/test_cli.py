"""The `fairscan` command: contracts (flags, JSON keys, exit codes) and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_console

GROUP_KEYS = {"attribute", "group", "count", "suppressed"}
METRICS = ["base_rate", "selection_rate", "true_positive_rate", "false_positive_rate",
           "false_negative_rate", "true_negative_rate", "precision", "accuracy"]
DISPARITY_KEYS = {"attribute", "metric", "group", "reference", "difference", "ratio",
                  "difference_ci", "ratio_ci", "p_value"}
FINDING_KEYS = {"attribute", "metric", "group", "verdict", "message"}


@pytest.fixture
def scored_csv(tmp_path, bank):
    """The bank data with a deterministic score, written as a real CSV file."""
    df = bank[["age", "job", "balance", "y"]].copy()
    df["score"] = np.clip((df["balance"].rank(pct=True) + (df["y"] == "yes")) / 2, 0, 1)
    df["decision"] = (df["score"] >= 0.5).astype(int)
    p = tmp_path / "scored.csv"
    df.to_csv(p, index=False)
    return p, df


def test_json_contract_on_bundled_dataset(cli):
    r = cli("audit", "dataset:bank", "--prediction", "y", "--sensitive", "job", "--tiers", "age=24,59",
            "--tiers", "balance=4", "--intersect", "--format", "json", "--n-boot", "200")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["schema_version"] == "1.0"
    assert out["n_rows"] == 45211
    for g in out["groups"]:
        assert set(g) >= GROUP_KEYS
        for m in METRICS:
            assert m in g and f"{m}_ci" in g and len(g[f"{m}_ci"]) == 2
    attrs = {g["attribute"] for g in out["groups"]}
    assert attrs == {"job", "age", "balance", "job x age x balance"}
    inter = [g for g in out["groups"] if g["attribute"] == "job x age x balance"]
    assert all(len(g["group"].split(" x ")) == 3 for g in inter)
    assert all(set(d) >= DISPARITY_KEYS for d in out["disparities"])
    assert all(set(f) >= FINDING_KEYS and f["verdict"] in {"pass", "fail", "insufficient"}
               for f in out["findings"])
    # the card supplied the target: y == "yes" is 11.70% of bank
    bal = [g for g in out["groups"] if g["attribute"] == "balance"]
    assert [g["group"] for g in bal] == ["Q1 (..72]", "Q2 (72..448]", "Q3 (448..1428]", "Q4 (1428..]"]
    assert [round(100 * g["base_rate"], 1) for g in bal] == [7.2, 10.9, 12.5, 16.2]


def test_file_with_score_budget_and_out(cli, scored_csv, tmp_path):
    path, _ = scored_csv
    out = tmp_path / "audit.json"
    r = cli("audit", str(path), "--target", "y", "--score", "score", "--budget", "1000",
            "--sensitive", "job", "--format", "json", "--out", str(out))
    assert r.code == 0, r.err
    assert r.out == ""
    res = json.loads(out.read_text())
    sel = sum(g["selection_rate"] * g["count"] for g in res["groups"] if g["attribute"] == "job")
    assert round(sel) == 1000
    assert res["decision"]["kind"] == "budget" and res["decision"]["budget"] == 1000


def test_table_output_and_no_target(cli, scored_csv):
    path, _ = scored_csv
    r = cli("audit", str(path), "--prediction", "decision", "--sensitive", "job")
    assert r.code == 0, r.err
    assert "Findings" in r.out and "blue-collar" in r.out
    r = cli("audit", str(path), "--prediction", "decision", "--sensitive", "job", "--format", "json")
    out = json.loads(r.out)
    assert out["unavailable_metrics"].keys() == set(METRICS) - {"selection_rate"}
    assert all(g["true_positive_rate"] is None for g in out["groups"])
    assert {f["metric"] for f in out["findings"]} == {"selection_rate"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--prediction", "decision", "--sensitive", "jb"], "'jb' not found (did you mean: job?)"),
        (["--target", "yy", "--prediction", "decision", "--sensitive", "job"], "'yy' not found (did you mean: y?)"),
        (["--score", "score", "--sensitive", "job"], "needs exactly one of --threshold T or --budget K"),
        (["--score", "score", "--budget", "99999999", "--sensitive", "job"], "larger than the data"),
        (["--score", "score", "--threshold", "7", "--sensitive", "job"], "above every score"),
        (["--target", "job", "--prediction", "decision", "--sensitive", "age"], "is not binary"),
        (["--prediction", "decision", "--tiers", "balance=x"], "--tiers 'balance=x'"),
        (["--prediction", "decision", "--sensitive", "balance"], "--tiers balance=4"),
        (["--prediction", "decision", "--sensitive", "job", "--reference", "job=astronaut"],
         "reference group 'astronaut' not found"),
        (["--prediction", "decision"], "at least one sensitive attribute"),
        (["--prediction", "decision", "--sensitive", "job", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_input_errors_are_one_line_exit_2(cli, scored_csv, args, needle):
    path, _ = scored_csv
    r = cli("audit", str(path), *args)
    assert r.code == 2
    assert needle in r.err
    assert r.err.count("\n") == 1 and "Traceback" not in r.err


def test_label_needs_positive_value(cli, tmp_path):
    df = pd.DataFrame({"g": ["a", "b"] * 20, "label": ["good", "bad"] * 20, "p": [1, 0] * 20})
    p = tmp_path / "d.csv"
    df.to_csv(p, index=False)
    r = cli("audit", str(p), "--target", "label", "--prediction", "p", "--sensitive", "g")
    assert r.code == 2 and "--positive-label" in r.err
    r = cli("audit", str(p), "--target", "label", "--prediction", "p", "--sensitive", "g",
            "--positive-label", "good", "--format", "json")
    assert r.code == 0
    assert json.loads(r.out)["positive_label"] == "good"


def test_favourable_decision_zero_flips(cli, tmp_path):
    df = pd.DataFrame({"g": ["a"] * 50 + ["b"] * 50, "risk": np.r_[np.linspace(0, 1, 50), np.linspace(0, 1, 50)]})
    p = tmp_path / "risk.parquet"
    df.to_parquet(p)
    r = cli("audit", str(p), "--score", "risk", "--threshold", "0.8", "--sensitive", "g",
            "--favourable-decision", "0", "--format", "json")
    out = json.loads(r.out)
    # scores >= 0.8 are refused: 10 of 50 per group; the favourable share is 40/50
    assert [g["selection_rate"] for g in out["groups"]] == [0.8, 0.8]


def test_missing_file_and_unsupported_type(cli, tmp_path):
    r = cli("audit", str(tmp_path / "nope.csv"), "--prediction", "p", "--sensitive", "g")
    assert r.code == 2 and "not found" in r.err
    (tmp_path / "x.xlsx").write_text("hello")
    r = cli("audit", str(tmp_path / "x.xlsx"), "--prediction", "p", "--sensitive", "g")
    assert r.code == 2 and "unsupported type" in r.err


def test_datasets_commands(cli):
    r = cli("datasets", "list")
    assert r.code == 0 and "online-retail" in r.out and "541,909" in r.out
    r = cli("datasets", "show", "adult")
    assert r.code == 0 and "CC BY 4.0" in r.out and "income" in r.out
    r = cli("datasets", "show", "adlt")
    assert r.code == 2 and "did you mean: adult" in r.err


def test_console_script_subprocess_has_no_traceback(scored_csv):
    path, _ = scored_csv
    p = run_console("audit", str(path), "--prediction", "decision", "--sensitive", "nope")
    assert p.returncode == 2
    assert p.stderr.startswith("fairscan: error:") and "Traceback" not in p.stderr


def test_proxies_command_json_contract(cli):
    r = cli("proxies", "dataset:adult", "--sensitive", "sex", "--features", "relationship", "fnlwgt",
            "--format", "json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    feats = {f["feature"]: f for f in out["features"]}
    assert set(feats["relationship"]) >= {"feature", "score", "score_ci", "proxy"}
    assert feats["relationship"]["proxy"] is True and feats["fnlwgt"]["proxy"] is False
    assert out["combined"]["score"] >= feats["relationship"]["score"] - 0.005
    r = cli("proxies", "dataset:adult", "--sensitive", "sexx")
    assert r.code == 2 and "did you mean: sex" in r.err


def test_recs_command_on_the_reference_toy(cli, tmp_path):
    """The position-weighted tier-share toy of recsys-metrics.md through the CLI."""
    lists = {"h1": "abc", "h2": "acd", "h3": "bae", "l1": "cde", "l2": "cda", "l3": "dec"}
    recs = pd.DataFrame([(u, it, r + 1) for u, s in lists.items() for r, it in enumerate(s)],
                        columns=["user", "item", "rank"])
    users = pd.DataFrame({"user": list(lists), "power": ["H"] * 3 + ["L"] * 3})
    items = pd.DataFrame({"item": list("abcde"), "tier": ["P", "P", "S", "S", "S"]})
    for name, df in (("recs", recs), ("users", users), ("items", items)):
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    r = cli("recs", str(tmp_path / "recs.csv"), "--users", str(tmp_path / "users.csv"), "--items",
            str(tmp_path / "items.csv"), "--user-group", "power", "--item-group", "tier", "--k", "3",
            "--reference", "H", "--format", "json", "--n-boot", "100", "--suppress-below", "0")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    share = {(e["user_group"], e["item_group"]): e["share"] for e in out["exposure"]}
    assert share[("H", "P")] == pytest.approx(0.6667, abs=1e-4) and share[("L", "P")] == pytest.approx(0.0782, abs=1e-4)
    excl = {(e["user_group"], e["item_group"]): e["rate"] for e in out["exclusion"]}
    assert excl[("H", "P")] == 0 and excl[("L", "P")] == pytest.approx(2 / 3)
    for fmt in ("md", "html"):
        r = cli("recs", str(tmp_path / "recs.csv"), "--users", str(tmp_path / "users.csv"), "--items",
                str(tmp_path / "items.csv"), "--user-group", "power", "--item-group", "tier", "--k", "3",
                "--format", fmt, "--n-boot", "50", "--suppress-below", "0")
        assert r.code == 0 and "Exclusion" in r.out


def test_rerank_command_floor_guarantees_the_protected_group(cli, tmp_path):
    rng = np.random.default_rng(0)
    users = pd.DataFrame({"user": [f"u{i}" for i in range(40)], "power": ["low"] * 20 + ["high"] * 20})
    items = pd.DataFrame({"item": [f"i{j}" for j in range(30)], "tier": ["premium"] * 10 + ["basic"] * 20})
    rows = []
    for u in users["user"]:
        order = rng.permutation(30)
        # premium items ranked at the bottom of every candidate list
        order = np.r_[order[order >= 10], order[order < 10]]
        rows += [(u, f"i{j}", r + 1, 1.0 - r / 30) for r, j in enumerate(order)]
    recs = pd.DataFrame(rows, columns=["user", "item", "rank", "score"])
    for name, df in (("recs", recs), ("users", users), ("items", items)):
        df.to_parquet(tmp_path / f"{name}.parquet")
    out = tmp_path / "new.csv"
    r = cli("rerank", str(tmp_path / "recs.parquet"), "--users", str(tmp_path / "users.parquet"), "--items",
            str(tmp_path / "items.parquet"), "--user-group", "power", "--item-group", "tier", "--method", "floor",
            "--strength", "0.5", "--protected-item-group", "premium", "--k", "10", "--out", str(out))
    assert r.code == 0, r.err
    new = pd.read_csv(out).merge(items, on="item")
    assert (new.groupby("user")["rank"].max() == 10).all()
    # FA*IR table for p = 0.5, alpha = 0.1: at least 3 premium items in every top 10
    assert (new[new["tier"] == "premium"].groupby("user").size() >= 3).all()


def test_train_recommender_command_gives_cold_start_users_the_popularity_list(cli, tmp_path):
    # t = 1..10, test fraction 0.2: the cut-off is t = 8, so d (t = 9, 10) has no training line;
    # training buyers per item: x 4, y 2, w 1, z 1 -> d's top 3 is x, y, w
    lines = pd.DataFrame([("a", "x", 1), ("a", "y", 2), ("b", "x", 3), ("b", "z", 4), ("c", "x", 5),
                          ("c", "y", 6), ("c", "w", 7), ("e", "x", 8), ("d", "y", 9), ("d", "z", 10)],
                         columns=["u", "i", "t"])
    lines.to_csv(tmp_path / "lines.csv", index=False)
    out = tmp_path / "recs"
    r = cli("train", "recommender", str(tmp_path / "lines.csv"), "--user", "u", "--item", "i", "--time", "t",
            "--k", "3", "--out", str(out))
    assert r.code == 0, r.err
    assert "lists for 5 users: 4 from the model, 1 with no training history (cold start) got the popularity " \
           "list" in r.out
    recs = pd.read_parquet(out / "recommendations.parquet")
    assert sorted(recs["user"].unique()) == ["a", "b", "c", "d", "e"]
    d = recs[recs["user"] == "d"]
    assert list(d["item"]) == ["x", "y", "w"] and (d["source"] == "popularity").all()
    assert set(recs.loc[recs["user"] != "d", "source"]) == {"model"}
    assert json.loads((out / "card.json").read_text())["cold_start_users"] == 1
    users = pd.read_parquet(out / "users.parquet")
    assert dict(zip(users["user"], users["history"], strict=True))["d"] == "cold start"


def test_engines_agree_through_the_cli(cli, tmp_path, bank):
    pytest.importorskip("duckdb")
    p = tmp_path / "bank.parquet"
    bank.to_parquet(p)
    outs = {}
    for engine in ("memory", "duckdb"):
        r = cli("audit", str(p), "--engine", engine, "--target", "y", "--score", "balance", "--budget", "0.2",
                "--sensitive", "job", "--tiers", "age=24,59", "--format", "json", "--n-boot", "0")
        assert r.code == 0, r.err
        outs[engine] = json.loads(r.out)
    for a, b in zip(outs["memory"]["groups"], outs["duckdb"]["groups"], strict=True):
        assert (a["attribute"], a["group"], a["count"]) == (b["attribute"], b["group"], b["count"])
        assert a["selection_rate"] == pytest.approx(b["selection_rate"], abs=1e-12)


@pytest.mark.parametrize("address", ["no.such.host.invalid", "10.254.254.254"])
def test_app_address_that_is_not_this_machines(cli, address):
    """`fairscan app --address` with a name that does not resolve, or an address this machine
    does not have: one line saying what to use, exit 2 (before any server starts)."""
    r = cli("app", "--address", address, "--no-browser", "--port", "8599")
    assert r.code == 2
    assert r.err == (f"fairscan: error: --address '{address}' is not a name or address of this machine: use "
                     "localhost, 0.0.0.0 (every interface) or one of its addresses\n")
