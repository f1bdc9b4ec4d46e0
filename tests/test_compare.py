"""Champion against challenger on the same rows: McNemar against statsmodels, the paired
bootstrap's coverage in a seeded simulation, identical models, and A's values against the
single-model audit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import mcnemar

import fairscan
from fairscan.compare import compare, mcnemar_exact
from fairscan.errors import FairscanError


def test_mcnemar_equals_statsmodels():
    rng = np.random.default_rng(0)
    lost, gained = rng.integers(0, 40, 200), rng.integers(0, 40, 200)
    lost[:5] = 0
    gained[:5] = 0  # no discordant pair
    got = mcnemar_exact(lost, gained)
    for b, c, p in zip(lost, gained, got, strict=True):
        want = mcnemar([[10, b], [c, 10]], exact=True).pvalue if b + c else 1.0
        assert p == pytest.approx(want, rel=1e-12, abs=1e-15)


def _pair(n: int, rng: np.random.Generator, shift: float) -> pd.DataFrame:
    """Two strongly correlated scores; B lowers group g1's scores by ``shift``."""
    g = rng.choice(["g0", "g1"], n)
    base = rng.normal(0, 1, n)
    a = base + rng.normal(0, 0.3, n)
    b = base + rng.normal(0, 0.3, n) - np.where(g == "g1", shift, 0.0)
    return pd.DataFrame({"g": g, "a": a, "b": b, "y": (base + rng.normal(0, 1, n) > 0).astype(int)})


def test_identical_models_change_nothing_and_equal_the_audit():
    df = _pair(4000, np.random.default_rng(1), 0.0)
    r = compare(df, scores=["a", "a"], threshold=0.2, target="y", sensitive="g", n_boot=200)
    assert (r.changes["change"] == 0).all() and (r.changes["verdict"] == "not worse").all()
    assert (r.switches[["gained", "lost"]] == 0).all().all()
    audit = fairscan.audit(df, score="a", threshold=0.2, target="y", sensitive="g", n_boot=0)
    for m in ("selection_rate", "true_positive_rate", "false_negative_rate", "false_positive_rate"):
        got = r.changes[r.changes["metric"] == m].set_index("group")["value_a"]
        want = audit.groups.set_index("group")[m]
        assert np.allclose(got.loc[want.index], want, atol=1e-12)


def test_paired_bootstrap_covers_the_true_change():
    """500 seeded repetitions: the 95% paired interval of g1's change in selection rate covers
    the true change (computed on a million rows of the same process) about 95% of the time."""
    rng = np.random.default_rng(2)
    big = _pair(1_000_000, rng, 0.15)
    truth = ((big["b"] >= 0.3) & (big["g"] == "g1")).sum() / (big["g"] == "g1").sum() - (
        (big["a"] >= 0.3) & (big["g"] == "g1")).sum() / (big["g"] == "g1").sum()
    covered = 0
    reps = 500
    for i in range(reps):
        df = _pair(600, np.random.default_rng(1000 + i), 0.15)
        r = compare(df, scores=["a", "b"], threshold=0.3, sensitive="g", n_boot=400, seed=i, min_group_size=1,
                    suppress_below=0)
        row = r.changes[(r.changes["group"] == "g1")].iloc[0]
        covered += row["change_ci_low"] <= truth <= row["change_ci_high"]
    assert 0.92 <= covered / reps <= 0.975, covered / reps


def test_the_paired_interval_is_narrower_than_the_unpaired_one():
    df = _pair(5000, np.random.default_rng(3), 0.3)
    r = compare(df, scores=["a", "b"], threshold=0.3, sensitive="g", n_boot=1000)
    row = r.changes[r.changes["group"] == "g1"].iloc[0]
    paired = row["change_ci_high"] - row["change_ci_low"]
    g1 = df[df["g"] == "g1"]
    pa, pb, n = (g1["a"] >= 0.3).mean(), (g1["b"] >= 0.3).mean(), len(g1)
    unpaired = 2 * 1.96 * np.sqrt(pa * (1 - pa) / n + pb * (1 - pb) / n)  # independent samples
    assert paired < 0.6 * unpaired
    assert row["verdict"] == "worse" and row["change"] < 0  # g1 offered less by B
    sw = r.switches.set_index("group").loc["g1"]
    assert sw["lost"] > sw["gained"]


def test_cli_json(cli, tmp_path):
    df = _pair(3000, np.random.default_rng(4), 0.2)
    path = tmp_path / "two.parquet"
    df.to_parquet(path)
    r = cli("compare", str(path), "--score", "a", "--score", "b", "--budget", "0.3", "--sensitive", "g",
            "--target", "y", "--n-boot", "200", "--format", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    import jsonschema

    from fairscan import schemas

    jsonschema.validate(doc, schemas.load("compare"))
    first = doc["changes"][0]
    assert {"attribute", "group", "metric", "value_a", "value_b", "change", "change_ci", "gap_change",
            "gap_change_ci", "p_value", "p_value_adjusted", "verdict"} <= set(first)
    assert {"attribute", "group", "count", "gained", "lost"} <= set(doc["switches"][0])
    # a budget gives both models the same number of offers
    assert doc["decision"]["a"]["budget"] == doc["decision"]["b"]["budget"] == 900
    worse = [c for c in doc["changes"] if c["verdict"] == "worse"]
    for fmt, marker in (("md", "## Who gains and who loses the offer"), ("html", "<table>")):
        out = tmp_path / f"c.{fmt}"
        r = cli("compare", str(path), "--score", "a", "--score", "b", "--budget", "0.3", "--sensitive", "g",
                "--target", "y", "--n-boot", "200", "--format", fmt, "--out", str(out))
        text = out.read_text()
        assert r.code == 0 and marker in text
        assert text.count("worse") >= len(worse)


def test_bad_requests_are_one_line():
    df = _pair(500, np.random.default_rng(5), 0.0)
    with pytest.raises(FairscanError, match="give two models"):
        compare(df, scores=["a"], threshold=0.2, sensitive="g")
    with pytest.raises(FairscanError, match="score column 'c' not found"):
        compare(df, scores=["a", "c"], threshold=0.2, sensitive="g")
    with pytest.raises(FairscanError, match="needs the outcome"):
        compare(df, scores=["a", "b"], threshold=0.2, sensitive="g", metrics=["true_positive_rate"])


def test_values_intervals_and_switches_equal_pandas_and_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    df = _pair(3000, np.random.default_rng(6), 0.2)
    r = compare(df, scores=["a", "b"], threshold=0.3, target="y", sensitive="g", n_boot=0)
    oa, ob = df["a"] >= 0.3, df["b"] >= 0.3
    for g in ("g0", "g1"):
        rows = df["g"] == g
        pops = {"selection_rate": rows, "true_positive_rate": rows & (df["y"] == 1),
                "false_negative_rate": rows & (df["y"] == 1), "false_positive_rate": rows & (df["y"] == 0)}
        for m, pop in pops.items():
            got = r.changes[(r.changes["group"] == g) & (r.changes["metric"] == m)].iloc[0]
            xa, xb, n = int(oa[pop].sum()), int(ob[pop].sum()), int(pop.sum())
            if m == "false_negative_rate":
                xa, xb = n - xa, n - xb
            assert got["value_a"] == pytest.approx(xa / n, abs=1e-12) and got["value_b"] == pytest.approx(xb / n)
            assert got["denominator"] == n
            lo, hi = proportion_confint(xa, n, method="wilson")
            assert (got["value_a_ci_low"], got["value_a_ci_high"]) == pytest.approx((lo, hi), abs=1e-12)
            lost, gained = int((oa & ~ob & pop).sum()), int((~oa & ob & pop).sum())
            want = mcnemar([[0, lost], [gained, 0]], exact=True).pvalue if lost + gained else 1.0
            assert got["p_value"] == pytest.approx(want, rel=1e-12)
        sw = r.switches.set_index("group").loc[g]
        assert (sw["gained"], sw["lost"]) == (int((~oa & ob & rows).sum()), int((oa & ~ob & rows).sum()))


def test_missing_labels_are_an_error_not_negatives():
    df = _pair(500, np.random.default_rng(7), 0.0).astype({"y": "float64"})
    df.loc[[3, 9], "y"] = np.nan
    with pytest.raises(FairscanError, match="label column 'y' has 2 missing values"):
        compare(df, scores=["a", "b"], threshold=0.2, sensitive="g", target="y")


# -- counting where the data lives: the paired aggregation of every engine ----------------------
def _tied(n: int = 3000, seed: int = 5) -> pd.DataFrame:
    """Scores on a coarse grid (many ties at any budget cut), text predictions, a label, and
    two attributes; deliberately unsorted."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "sex": rng.choice(["F", "M", "X"], n, p=[0.45, 0.5, 0.05]),
        "region": rng.choice(["north", "south", "east", "west"], n),
        "balance": rng.lognormal(7, 1, n),
        "a": rng.integers(0, 20, n) / 20, "b": rng.integers(0, 20, n) / 20,
        "pa": rng.choice(["yes", "no"], n), "pb": rng.choice(["yes", "no"], n),
        "y": rng.integers(0, 2, n),
    })


def _top_k(score: pd.Series, k: int) -> np.ndarray:
    """Oracle: the k highest scores, ties in row order (a stable pandas sort)."""
    order = score.sort_values(ascending=False, kind="stable").index[:k]
    out = np.zeros(len(score), dtype=bool)
    out[order] = True
    return out


def _pandas_cells(df: pd.DataFrame, by: list[str], a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
    cell = 4 * df["y"].to_numpy() + 2 * a + b
    t = df.assign(cell=cell).groupby([*by, "cell"]).size().unstack(fill_value=0)
    return t.reindex(columns=range(8), fill_value=0)


def _engines(df: pd.DataFrame, tmp_path):
    from fairscan.engines.duckdb import DuckDBEngine
    from fairscan.engines.memory import MemoryEngine

    df.to_parquet(tmp_path / "d.parquet")
    df.to_csv(tmp_path / "d.csv", index=False)
    return {"memory": MemoryEngine(df), "duckdb-frame": DuckDBEngine(df),
            "duckdb-parquet": DuckDBEngine(tmp_path / "d.parquet"), "duckdb-csv": DuckDBEngine(tmp_path / "d.csv")}


@pytest.mark.parametrize("joint", [True, False])
def test_paired_cells_of_every_engine_equal_a_pandas_groupby(tmp_path, monkeypatch, joint):
    """The 8 cells per group, budget ties broken in row order for A and a threshold for B,
    counted jointly and through grouping sets, equal an independent pandas groupby."""
    from fairscan.engines import base
    from fairscan.groups import resolve
    from fairscan.params import audit_params
    from fairscan.types import Label

    if not joint:
        monkeypatch.setattr(base, "MAX_JOINT_GROUPS", 1)
    df = _tied()
    a, b = _top_k(df["a"], 700), (df["b"] >= 0.5).to_numpy()
    want = {"sex": _pandas_cells(df, ["sex"], a, b), "region": _pandas_cells(df, ["region"], a, b),
            "sex x region": _pandas_cells(df, ["sex", "region"], a, b)}
    pa = audit_params(score="a", budget=700, sensitive=["sex", "region"], intersect=True)
    pb = audit_params(score="b", threshold=0.5, sensitive=["sex", "region"])
    digests = set()
    for name, eng in _engines(df, tmp_path).items():
        groupings = resolve(pa.groups, eng)
        agg = eng.aggregate(groupings, Label("y", 1), pa.decision.resolve(eng)[0], None,
                            paired=pb.decision.resolve(eng)[0])
        for st in agg.stats:
            got = pd.DataFrame(st.n, index=[tuple(a.labels[int(k)] for a, k in zip(st.grouping.attributes, c,
                                                                                   strict=True)) for c in st.codes])
            exp = want[st.grouping.name]
            exp.index = [i if isinstance(i, tuple) else (i,) for i in exp.index]
            assert got.shape[1] == 8, name
            assert (got.loc[exp.index].to_numpy() == exp.to_numpy()).all(), (name, st.grouping.name)
        digests.add(agg.data_sha256)
        # a score column's own digest: the sha256 of its float64 values in row order
        import hashlib
        assert agg.column_sha256["a"] == hashlib.sha256(df["a"].to_numpy("<f8").tobytes()).hexdigest(), name
    assert len(digests) == 1  # one data hash, whichever engine counted


def test_compare_through_duckdb_equals_memory(tmp_path):
    df = _tied()
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    kw = dict(scores=["a", "b"], budget=0.25, target="y", sensitive=["sex", "region"], n_boot=200, seed=3)
    mem = compare(df, **kw)
    duck = compare(str(path), **kw)
    assert duck.meta["engine"] == "duckdb" and mem.meta["engine"] == "memory"
    assert duck.meta["data_sha256"] == mem.meta["data_sha256"]
    assert [m["sha256"] for m in duck.meta["models"]] == [m["sha256"] for m in mem.meta["models"]]
    pd.testing.assert_frame_equal(mem.changes, duck.changes)
    pd.testing.assert_frame_equal(mem.switches, duck.switches)
    preds = dict(predictions=["pa", "pb"], target="y", sensitive="sex", n_boot=0)
    pd.testing.assert_frame_equal(compare(df, **preds).changes, compare(str(path), **preds).changes)


def test_missing_predictions_are_named_by_every_engine(tmp_path):
    df = _tied(500)
    df.loc[[3, 9], "pb"] = None
    for name, eng in _engines(df, tmp_path).items():
        with pytest.raises(FairscanError, match=r"prediction column 'pb' has 2 missing values") as e:
            compare(eng, predictions=["pa", "pb"], sensitive="sex", n_boot=0)
        assert "\n" not in str(e.value), name


def test_models_need_rows_in_memory(tmp_path):
    with pytest.raises(FairscanError, match="score the data first"):
        compare(_tied(100), models=["reference:logistic", "reference:logistic"], sensitive="sex",
                engine="duckdb")


def test_a_model_file_is_named_by_the_sha256_of_its_bytes():
    import hashlib

    from fairscan import datasets
    from fairscan.modeling import resolve_model_path

    r = compare(datasets.load("german", split="holdout"), models=["reference:german", "reference:german"],
                threshold=0.5, sensitive="foreign_worker", n_boot=0)
    want = hashlib.sha256(resolve_model_path("reference:german").read_bytes()).hexdigest()
    assert [m["sha256"] for m in r.meta["models"]] == [want, want]
    assert (r.changes["change"] == 0).all()
