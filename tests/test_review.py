"""Scheduled reviews with a real SQLite history: exit codes, regressions, tamper evidence."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from fairscan.review import run_review
from fairscan.review.history import History


def _scores(path, gap: float, seed: int = 0) -> None:
    """A scored customer file: group 'low' gets scores lowered by ``gap``."""
    rng = np.random.default_rng(seed)
    n = 4000
    tier = rng.choice(["low", "mid", "high"], n)
    y = rng.random(n) < 0.3
    s = np.clip(0.5 * y + rng.random(n) * 0.5 - np.where(tier == "low", gap, 0.0), 0, 1)
    pd.DataFrame({"tier": tier, "y": y.astype(int), "score": s}).to_parquet(path)


def _config(folder, data="scores.parquet", extra=""):
    p = folder / "review.yaml"
    p.write_text(textwrap.dedent(f"""\
        name: campaign
        data: {data}
        score: score
        label: y
        sensitive: [tier]
        decision: {{threshold: 0.5}}
        policy:
          n_boot: 300
          metrics:
            selection_rate: {{min_ratio: 0.5}}
        outputs: {{dir: out, formats: [json, md, html, junit]}}
        """) + extra)
    return p


def test_pass_then_regression_and_fail(tmp_path, cli):
    _scores(tmp_path / "scores.parquet", gap=0.0)
    cfg = _config(tmp_path)
    r = cli("review", "run", str(cfg))
    assert r.code == 0, r.out + r.err
    assert "PASS" in r.out
    for ext in ("json", "md", "html", "junit.xml"):
        assert (tmp_path / "out" / f"campaign.{ext}").exists()
    # the next model excludes the low tier more
    _scores(tmp_path / "scores.parquet", gap=0.3, seed=1)
    r = cli("review", "run", str(cfg))
    assert r.code == 1
    assert "REGRESSION tier = low" in r.out and "FAIL" in r.out
    junit = (tmp_path / "out" / "campaign.junit.xml").read_text()
    assert "<failure" in junit and "regression" in junit
    h = cli("review", "history", "campaign", "--history", str(tmp_path / "fairscan-history.sqlite"),
            "--format", "json")
    import json

    doc = json.loads(h.out)  # nothing else on stdout
    assert set(doc) == {"name", "runs"} and [x["status"] for x in doc["runs"]] == ["pass", "fail"]
    assert doc["runs"][1]["regressions"][0]["group"] == "low"
    # the same history as Markdown and HTML reports: runs, then each group's trend in points
    hist = str(tmp_path / "fairscan-history.sqlite")
    assert cli("review", "history", "campaign", "--history", hist, "--format", "md",
               "--out", str(tmp_path / "h.md")).code == 0
    md = (tmp_path / "h.md").read_text()
    assert "| 1 |" in md and "| pass |" in md and "| fail |" in md
    low = next(d for d in doc["runs"][1]["disparities"] if d["group"] == "low")
    assert f"{100 * low['difference']:+.1f}" in md.split("| low |")[1].split("\n")[0]
    html = cli("review", "history", "campaign", "--history", hist, "--format", "html").out
    assert html.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in html and "<script" not in html


def test_regression_flagged_below_the_threshold(tmp_path):
    """A significant worsening is flagged even when the tolerance is not crossed yet."""
    _scores(tmp_path / "scores.parquet", gap=0.0)
    cfg = _config(tmp_path, extra="  # policy is tolerant\n")
    cfg.write_text(cfg.read_text().replace("min_ratio: 0.5", "min_ratio: 0.2"))
    assert run_review(cfg).exit_code == 0
    _scores(tmp_path / "scores.parquet", gap=0.12, seed=1)
    o = run_review(cfg)
    assert o.exit_code == 0 and o.result.verdict_counts()["fail"] == 0
    assert [r["group"] for r in o.regressions if r["metric"] == "selection_rate"] == ["low"]
    cfg.write_text(cfg.read_text().replace("  n_boot: 300", "  n_boot: 300\n  regression: fail"))
    _scores(tmp_path / "scores.parquet", gap=0.25, seed=2)
    assert run_review(cfg).exit_code == 1


def test_insufficient_exit_code_when_policy_says_so(tmp_path):
    pd.DataFrame({"tier": ["a"] * 40 + ["b"] * 15, "y": [0, 1] * 27 + [1],
                  "score": np.linspace(0, 1, 55)}).to_parquet(tmp_path / "scores.parquet")
    cfg = _config(tmp_path)
    assert run_review(cfg).exit_code == 0  # insufficient warns by default
    cfg.write_text(cfg.read_text().replace("  n_boot: 300", "  n_boot: 300\n  insufficient: fail"))
    assert run_review(cfg).exit_code == 3


def test_edited_and_deleted_records_fail_verify(tmp_path, cli):
    _scores(tmp_path / "scores.parquet", gap=0.0)
    cfg = _config(tmp_path)
    for _ in range(4):
        run_review(cfg)
    db = tmp_path / "fairscan-history.sqlite"
    assert cli("review", "verify", "--history", str(db)).code == 0
    con = sqlite3.connect(db)
    body = con.execute("SELECT body FROM records WHERE seq = 2").fetchone()[0]
    con.execute("UPDATE records SET body = ? WHERE seq = 2", (body.replace('"pass"', '"fail"', 1),))
    con.commit()
    r = cli("review", "verify", "--history", str(db))
    assert r.code != 0 and "record 2" in r.err and "modified" in r.err
    con.execute("UPDATE records SET body = ? WHERE seq = 2", (body,))
    con.commit()
    assert cli("review", "verify", "--history", str(db)).code == 0
    con.execute("DELETE FROM records WHERE seq = 3")
    con.commit()
    r = cli("review", "verify", "--history", str(db))
    assert r.code != 0 and "record 3 is missing" in r.err
    con.close()


def test_pruning_keeps_a_verifiable_chain(tmp_path):
    h = History(tmp_path / "h.sqlite")
    for i in range(5):
        h.append("run", "x", {"i": i})
    con = sqlite3.connect(tmp_path / "h.sqlite")
    con.execute("UPDATE records SET created = '2020-01-01T00:00:00+00:00' WHERE seq <= 3")
    con.commit()
    con.close()
    # changing 'created' is an edit: the chain notices it
    assert not h.verify()[0]
    h2 = History(tmp_path / "h2.sqlite")
    for i in range(5):
        h2.append("run", "x", {"i": i})
    assert h2.prune(keep_days=0) == 5
    ok, msg = h2.verify()
    assert ok, msg
    h2.append("run", "x", {"i": 5})
    assert h2.verify()[0] and [r["body"]["i"] for r in h2.records("x", "run")] == [5]


def test_concurrent_reviews_share_one_history(tmp_path):
    _scores(tmp_path / "scores.parquet", gap=0.0)
    cfgs = []
    for i in range(4):
        d = tmp_path / f"r{i}"
        d.mkdir()
        _scores(d / "scores.parquet", gap=0.0, seed=i)
        cfgs.append(_config(d))
    hist = tmp_path / "shared.sqlite"
    procs = [subprocess.Popen([sys.executable, "-m", "fairscan.cli", "review", "run", str(c), "--history", str(hist)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in cfgs]
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0, 0, 0, 0], [p.stderr.read() for p in procs]
    h = History(hist)
    assert len(h.records(kind="run")) == 4
    ok, msg = h.verify()
    assert ok, msg


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("name: x\ndata: [unclosed\n", "not valid YAML"),
        ("name: x\ndata: scores.parquet\nscore: score\nlabel: y\ndecision: {threshold: 0.5}\n"
         "policy: {metrics: {selection_rte: {min_ratio: 0.8}}}\n", "selection_rte"),
        ("name: x\ndata: missing.parquet\nscore: score\nlabel: y\nsensitive: [tier]\ndecision: {threshold: 0.5}\n",
         "not found"),
        ("name: x\ndata: ../outside.parquet\nscore: score\nlabel: y\nsensitive: [tier]\n"
         "decision: {threshold: 0.5}\n", "outside the config's folder"),
        ("a: &x [1, 2]\nb: *x\n", "anchors are not allowed"),
        ("name: x\ndata: !!python/object/apply:os.system ['touch pwned']\nlabel: y\n", "not valid YAML"),
        ("name: x\ndata: scores.parquet\nlabel: y\nscore: s\nprediction: p\n", "exactly one of model, score"),
        ("name: x\ndatta: s.parquet\nlabel: y\n", "unknown setting 'datta' (did you mean: data?)"),
    ],
)
def test_bad_configs_exit_2_with_one_line(tmp_path, cli, content, needle):
    _scores(tmp_path / "scores.parquet", gap=0.0)
    (tmp_path / "review.yaml").write_text(content)
    r = cli("review", "run", str(tmp_path / "review.yaml"))
    assert r.code == 2, (r.out, r.err)
    assert needle in r.err and r.err.count("\n") == 1
    assert not (tmp_path / "pwned").exists()


def test_init_prints_a_working_starter(tmp_path, cli):
    r = cli("review", "init", "--dataset", "german")
    assert r.code == 0 and r.err == ""
    (tmp_path / "review.yaml").write_text(r.out)
    o = run_review(tmp_path / "review.yaml")
    assert o.exit_code in (0, 1) and o.record["seq"] == 1


def test_data_from_a_duckdb_query(tmp_path):
    pytest.importorskip("duckdb")
    _scores(tmp_path / "scores.parquet", gap=0.0)
    path = (tmp_path / "scores.parquet").as_posix()
    cfg = _config(tmp_path, data=f'{{sql: "SELECT * FROM read_parquet(\'{path}\') WHERE tier <> \'mid\'"}}')
    o = run_review(cfg)
    groups = set(o.result.groups["group"])
    assert groups == {"low", "high"} and o.result.meta["n_rows"] < 4000


def test_a_baseline_fails_the_review_when_the_new_model_is_worse(tmp_path, cli):
    """baseline: {score: ...}: the reviewed scores are compared pair by pair with the champion's;
    a significantly worse group fails the review (exit 1), the same scores pass."""
    import json

    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 6000
    g = rng.choice(["g0", "g1"], n)
    base = rng.normal(0, 1, n)
    y = (base + rng.normal(0, 1, n) > 0).astype(int)
    old = base + rng.normal(0, 0.3, n)
    new = base + rng.normal(0, 0.3, n) - np.where(g == "g1", 0.6, 0.0)
    pd.DataFrame({"g": g, "y": y, "old": old, "new": new}).to_parquet(tmp_path / "scores.parquet")
    body = ("data: scores.parquet\nlabel: y\nsensitive: [g]\ndecision: {budget: 0.3}\n"
            "policy: {n_boot: 200, metrics: {selection_rate: {min_ratio: 0.5}}}\n")
    (tmp_path / "worse.yaml").write_text("name: worse\nscore: new\nbaseline: {score: old}\n" + body)
    r = cli("review", "run", str(tmp_path / "worse.yaml"))
    assert r.code == 1, r.out + r.err
    doc = json.loads((tmp_path / "reports" / "worse.json").read_text())
    worse = [c for c in doc["review"]["baseline_comparison"]["changes"] if c["verdict"] == "worse"]
    assert [(c["group"], c["metric"]) for c in worse] == [("g1", "selection_rate")]
    assert "Against the baseline" in (tmp_path / "reports" / "worse.md").read_text()
    (tmp_path / "same.yaml").write_text("name: same\nscore: old\nbaseline: {score: old}\n" + body)
    assert cli("review", "run", str(tmp_path / "same.yaml")).code == 0
    from fairscan.review.history import History

    rec = History(tmp_path / "fairscan-history.sqlite").last_run("worse")
    assert rec["body"]["baseline"]["verdict_counts"]["worse"] == 1
    assert len(rec["body"]["baseline"]["models"]) == 2


def test_a_value_block_audits_the_price_and_can_fail_the_review(tmp_path, cli):
    """With ``value:``, the review also audits the price by the same groups: the same numbers
    as fairscan.audit_value, a failing within-product gap fails the review (exit 1), and the
    JSON, Markdown, HTML and JUnit reports and the history carry it."""
    import json

    from fairscan.value import audit_value

    rng = np.random.default_rng(5)
    n = 4000
    tier = rng.choice(["low", "mid", "high"], n)
    product = rng.choice(["a", "b"], n)
    price = np.where(product == "a", 10.0, 40.0) * np.where(tier == "low", 1.2, 1.0) * rng.uniform(0.95, 1.05, n)
    frame = pd.DataFrame({"tier": tier, "y": (rng.random(n) < 0.3).astype(int), "score": rng.random(n),
                          "product": product, "price": price})
    frame.to_parquet(tmp_path / "scores.parquet")
    cfg = _config(tmp_path, extra="value: {column: price, favourable: lower, within: [product]}\n")
    r = cli("review", "run", str(cfg))
    assert r.code == 1, r.err
    doc = json.loads((tmp_path / "out" / "campaign.json").read_text())
    want = audit_value(frame, value="price", favourable="lower", sensitive="tier", within="product", n_boot=300)
    got = pd.DataFrame(doc["value"]["disparities"]).set_index(["group", "metric"])["difference"]
    exp = want.disparities.set_index(["group", "metric"])["difference"]
    assert got.loc[("low", "mean")] == pytest.approx(exp.loc[("low", "mean")], rel=1e-12)
    assert any(f["metric"] == "within" and f["group"] == "low" and f["verdict"] == "fail"
               for f in doc["value"]["findings"])
    assert "## fairscan: the offer's value by group" in (tmp_path / "out" / "campaign.md").read_text()
    assert (tmp_path / "out" / "campaign.value.html").exists()
    junit = (tmp_path / "out" / "campaign.junit.xml").read_text()
    assert "fairscan.campaign.value.tier" in junit and "within [low]" in junit
    record = History(tmp_path / "fairscan-history.sqlite").last_run("campaign")
    assert record["body"]["value"]["verdict_counts"]["fail"] >= 1
    bad = _config(tmp_path, extra="value: {column: price, favourable: cheaper}\n")
    r = cli("review", "run", str(bad))
    assert r.code == 2 and "favourable" in r.err and len(r.err.strip().splitlines()) == 1


def test_a_review_of_the_value_alone_needs_no_label(tmp_path, cli):
    """A pricing review without decisions: ``value:`` and no ``label``. Its judged value findings
    set the exit code, every report is the value audit's, the history records a hash of the
    audited columns; a decision setting without label is one clear line."""
    import json

    from fairscan.engines.datahash import frame_sha256

    rng = np.random.default_rng(6)
    n = 3000
    tier = rng.choice(["low", "high"], n)
    frame = pd.DataFrame({"tier": tier, "price": np.where(tier == "low", 11.0, 10.0) * rng.uniform(0.98, 1.02, n)})
    frame.to_parquet(tmp_path / "prices.parquet")
    cfg = tmp_path / "review.yaml"
    cfg.write_text(textwrap.dedent("""\
        name: pricing
        data: prices.parquet
        sensitive: [tier]
        value: {column: price, favourable: lower}
        policy: {n_boot: 100}
        outputs: {dir: out}
        """))
    r = cli("review", "run", str(cfg))
    assert r.code == 1, r.err  # low pays 10% more: outside ±5%
    assert "review 'pricing': FAIL" in r.out and "FAIL tier = low" in r.out
    doc = json.loads((tmp_path / "out" / "pricing.json").read_text())
    assert doc["analysis"] == "value" and doc["review"]["status"] == "fail"
    assert "# fairscan review 'pricing': FAIL" in (tmp_path / "out" / "pricing.md").read_text()
    junit = (tmp_path / "out" / "pricing.junit.xml").read_text()
    assert 'failures="1"' in junit and "mean [low]" in junit
    record = History(tmp_path / "fairscan-history.sqlite").last_run("pricing")
    assert record["body"]["data_sha256"] == frame_sha256(frame[["price", "tier"]])
    from fairscan.review import history_table

    trend = history_table(tmp_path / "fairscan-history.sqlite", "pricing")["runs"][0]["disparities"]
    low = frame.loc[frame["tier"] == "low", "price"].mean() / frame.loc[frame["tier"] == "high", "price"].mean()
    assert trend == [pytest.approx({"attribute": "value.tier", "metric": "relative mean gap", "group": "low",
                                    "reference": "high", "difference": low - 1, "ratio": low,
                                    "p_value_adjusted": trend[0]["p_value_adjusted"]})]
    cfg.write_text(cfg.read_text() + "score: price\n")
    r = cli("review", "run", str(cfg))
    assert r.code == 2 and "score reviews decisions and needs label" in r.err


def test_a_value_review_with_clusters_judges_with_cluster_robust_intervals(tmp_path, cli):
    """value: {cluster: customer} in review.yaml: the review's value audit is the cluster-robust
    one (the same numbers as fairscan.audit_value with cluster=)."""
    import json

    from fairscan.value import audit_value
    from tests.test_value import clustered_prices

    df = clustered_prices()
    df.to_parquet(tmp_path / "lines.parquet")
    (tmp_path / "review.yaml").write_text(
        "name: prices\ndata: lines.parquet\nsensitive: [tier]\npolicy: {n_boot: 0}\n"
        "value: {column: price, favourable: lower, cluster: customer}\n")
    r = cli("review", "run", str(tmp_path / "review.yaml"))
    doc = json.loads((tmp_path / "reports" / "prices.json").read_text())
    assert r.code == {"pass": 0, "fail": 1, "insufficient": 3}[doc["review"]["status"]], r.err
    judged = [f for f in doc["findings"] if f["metric"] in ("mean", "within")]
    shown = {v: sum(f["verdict"] == v for f in judged) for v in ("fail", "insufficient", "pass")}
    assert f"{shown['fail']} fail, {shown['insufficient']} insufficient, {shown['pass']} pass" in r.out
    want = audit_value(df, value="price", favourable="lower", sensitive="tier", cluster="customer", n_boot=0)
    assert doc["n_clusters"] == df["customer"].nunique()
    got = {g["group"]: g["mean_ci"] for g in doc["groups"]}
    for row in want.groups.to_dict("records"):
        assert got[row["group"]] == pytest.approx([row["mean_ci_low"], row["mean_ci_high"]])
