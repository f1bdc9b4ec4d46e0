"""Subgroup discovery against independent oracles: pandas groupby for every count and value,
statsmodels and scipy for intervals, tests and the Benjamini-Yekutieli adjustment, a
subtraction attack for suppression, and the seeded synthetic data's known answer."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from fairscan import datasets
from fairscan.datasets.synthetic import PLANTED, planted_subgroups
from fairscan.discover import discover
from fairscan.errors import FairscanError

ATTRS = ["job", "marital", "housing", "loan", "education"]


@pytest.fixture(scope="module")
def bank_offers() -> pd.DataFrame:
    df = datasets.load("bank")
    # the decision, made independently of fairscan: offer when the balance is at least 1,000
    return df.assign(offer=(df["balance"] >= 1000).astype(int))


@pytest.fixture(scope="module")
def everything(bank_offers):
    """Every subgroup tested and published: no minimum size, no suppression."""
    return discover(bank_offers, prediction="offer", target="y", positive_label="yes", attributes=ATTRS,
                    tiers={"age": [30, 50]}, max_depth=3, min_size=1, suppress_below=0, top=10_000,
                    direction="both")


def _oracle_groups(df: pd.DataFrame, max_depth: int) -> dict[tuple, tuple[int, float]]:
    """(count, selection rate) of every conjunction, by pandas groupby."""
    frame = df[ATTRS].astype(str).assign(
        age=pd.cut(df["age"], [-np.inf, 30, 50, np.inf], labels=["(..30]", "(30..50]", "(50..]"]).astype(str),
        offer=df["offer"])
    cols = ["job", "marital", "housing", "loan", "education", "age"]
    out = {}
    for d in range(1, max_depth + 1):
        for combo in itertools.combinations(cols, d):
            g = frame.groupby(list(combo), observed=True)["offer"].agg(["size", "mean"])
            for key, row in g.iterrows():
                key = key if isinstance(key, tuple) else (key,)
                out[tuple(sorted(zip(combo, map(str, key), strict=True)))] = (int(row["size"]), float(row["mean"]))
    return out


def test_every_count_and_value_equals_a_pandas_groupby(bank_offers, everything):
    oracle = _oracle_groups(bank_offers, 3)
    got = {tuple(sorted(c)): (int(n), v) for c, n, v in zip(everything.subgroups["conditions"],
                                                              everything.subgroups["count"],
                                                              everything.subgroups["value"], strict=True)}
    assert set(got) == set(oracle)  # every conjunction with a row, none more
    assert everything.meta["tested"] == len(oracle)
    for key, (n, v) in oracle.items():
        assert got[key][0] == n
        assert got[key][1] == pytest.approx(v, abs=1e-12)
    assert everything.meta["overall"]["value"] == pytest.approx(bank_offers["offer"].mean(), abs=1e-12)


def test_statistics_equal_statsmodels_and_scipy(bank_offers, everything):
    s = everything.subgroups
    overall_n, overall_x = len(bank_offers), int(bank_offers["offer"].sum())
    n = s["count"].to_numpy(dtype=float)
    x = np.round(s["value"].to_numpy() * n)
    nc, xc = overall_n - n, overall_x - x
    ok = nc > 0
    lo, hi = proportion_confint(x[ok], n[ok], method="wilson")
    assert np.allclose(s["value_ci_low"][ok], lo, atol=1e-12) and np.allclose(s["value_ci_high"][ok], hi, atol=1e-12)
    d = confint_proportions_2indep(x[ok], n[ok], xc[ok], nc[ok], method="newcomb", compare="diff")
    r = confint_proportions_2indep(x[ok], n[ok], xc[ok], nc[ok], method="log-adjusted", compare="ratio")
    assert np.allclose(s["difference_ci_low"][ok], d[0], atol=1e-12)
    assert np.allclose(s["difference_ci_high"][ok], d[1], atol=1e-12)
    assert np.allclose(s["ratio_ci_low"][ok], r[0], rtol=1e-10)
    assert np.allclose(s["ratio_ci_high"][ok], r[1], rtol=1e-10)
    # p-values: scipy's Fisher test where it was used, the pooled z-test otherwise
    from statsmodels.stats.proportion import proportions_ztest

    for i in np.flatnonzero(ok)[::25]:
        if s["test"].iloc[i] == "fisher":
            want = stats.fisher_exact([[x[i], n[i] - x[i]], [xc[i], nc[i] - xc[i]]]).pvalue
        else:
            want = proportions_ztest([x[i], xc[i]], [n[i], nc[i]])[1]
        assert s["p_value"].iloc[i] == pytest.approx(want, rel=1e-9, abs=1e-15)
    p = s["p_value"].to_numpy()
    defined = ~np.isnan(p)
    assert np.allclose(s["p_value_adjusted"].to_numpy()[defined], multipletests(p[defined], method="fdr_by")[1],
                       rtol=1e-12)
    assert everything.meta["fdr_method"] == "benjamini-yekutieli"


def test_population_comparison_maps_the_complement_exactly(bank_offers, everything):
    pop = discover(bank_offers, prediction="offer", attributes=["job"], min_size=1, suppress_below=0,
                   reference="population", top=100, direction="both").subgroups.set_index("who")
    comp = everything.subgroups[everything.subgroups["depth"] == 1].set_index("who").loc[pop.index]
    overall = bank_offers["offer"].mean()
    f = 1 - comp["count"].astype(float) / len(bank_offers)
    assert np.allclose(pop["difference"], comp["value"] - overall, atol=1e-12)
    assert np.allclose(pop["ratio"], comp["value"] / overall, atol=1e-12)
    assert np.allclose(pop["difference_ci_low"], comp["difference_ci_low"] * f, atol=1e-12)
    assert np.allclose(pop["p_value"], comp["p_value"], rtol=1e-12)  # the same null hypothesis


def test_no_small_group_is_recoverable_by_subtraction(bank_offers):
    """For every published parent (or everyone) and every attribute, the children it splits
    into: if exactly one of them is not published, its size is parent - published ones, so it
    must not be a small group."""
    k = 10
    for min_size in (10, 30):
        r = discover(bank_offers, prediction="offer", attributes=["job", "education", "marital", "default"],
                     max_depth=3, min_size=min_size, suppress_below=k, top=10_000, direction="both")
        s = r.subgroups
        published = {tuple(sorted(c)): int(n) for c, n, sup in zip(s["conditions"], s["count"], s["suppressed"],
                                                                   strict=True) if not sup}
        frame = bank_offers[["job", "education", "marital", "default"]].astype(str)
        truth = {}
        for d in range(1, 4):
            for combo in itertools.combinations(frame.columns, d):
                for key, n in frame.groupby(list(combo), observed=True).size().items():
                    key = key if isinstance(key, tuple) else (key,)
                    truth[tuple(sorted(zip(combo, key, strict=True)))] = int(n)
        parents = [()] + [p for p in truth if len(p) <= 2]
        checked = 0
        for parent in parents:
            if parent and parent not in published:
                continue
            used = {a for a, _ in parent}
            for attr in frame.columns:
                if attr in used:
                    continue
                children = [c for c in truth if len(c) == len(parent) + 1 and set(parent) <= set(c)
                            and attr in {a for a, _ in c}]
                hidden = [c for c in children if c not in published]
                checked += 1
                if len(hidden) == 1:
                    assert truth[hidden[0]] >= k, (min_size, parent, hidden[0], truth[hidden[0]])
        assert checked > 100
        assert s["suppressed"].any()  # the data has small groups: the rule had work to do


def test_the_planted_subgroup_comes_first():
    df = planted_subgroups(200_000, seed=3)
    r = discover(df, prediction="offer", target="y", attributes=[f"a{i}" for i in range(1, 9)] + ["spend"])
    top = r.listed.iloc[0]
    assert sorted(top["conditions"]) == sorted(PLANTED)
    assert top["verdict"] == "fail" and top["parent"] is pd.NA
    assert r.meta["tested"] == r.subgroups["p_value"].notna().sum() > 1000


def test_no_fail_on_data_without_an_effect():
    """False discovery control: with nothing planted, a fail is a false discovery; BY keeps
    the chance of any at alpha, so at most 1 or 2 of 20 seeded datasets may have one."""
    with_fail = 0
    for seed in range(20):
        r = discover(planted_subgroups(20_000, seed=100 + seed, planted=False), prediction="offer",
                     attributes=[f"a{i}" for i in range(1, 9)] + ["spend"], max_depth=3)
        with_fail += r.meta["verdict_counts"]["fail"] > 0
    assert with_fail <= 2


def test_folding_lists_a_child_under_the_parent_it_does_not_differ_from():
    rates = {("a0", "b0"): 0.1, ("a0", "b1"): 0.1, ("a0", "b2"): 0.1,  # a0 is excluded, whatever b
             ("a1", "b0"): 0.3, ("a1", "b1"): 0.3, ("a1", "b2"): 0.02}  # one child of a1 on its own
    rows = []
    for (a, b), rate in rates.items():  # exact rates, 5,000 people per cell
        offered = round(5000 * rate)
        rows += [(a, b, 1)] * offered + [(a, b, 0)] * (5000 - offered)
    df = pd.DataFrame(rows, columns=["a", "b", "offer"])
    r = discover(df, prediction="offer", max_depth=2, top=50, direction="both").subgroups.set_index("who")
    parent = r.loc["customers with a = a0"]
    assert parent["parent"] is pd.NA
    for child in ("b0", "b1", "b2"):
        assert r.loc[f"customers with a = a0 and b = {child}", "parent"] == parent["id"]
    assert r.loc["customers with a = a1 and b = b2", "parent"] is pd.NA  # it adds something to a1


def test_candidates_skip_identifiers_and_wide_text_and_say_so():
    rng = np.random.default_rng(1)
    n = 3_000
    df = pd.DataFrame({
        "customer_id": np.arange(n), "note": [f"n{i % 60}" for i in range(n)],
        "children": rng.integers(0, 4, n), "spend": rng.gamma(2, 50, n), "region": rng.choice(["N", "S"], n),
        "offer": rng.integers(0, 2, n),
    })
    r = discover(df, prediction="offer", max_depth=2)
    kinds = {a["attribute"]: a["kind"] for a in r.meta["attributes"]}
    assert kinds == {"children": "categorical", "spend": "tiers", "region": "categorical"}
    assert {(s["column"], s["reason"]) for s in r.meta["skipped"]} == {
        ("customer_id", "identifier-like name"), ("note", "more than 50 values")}
    with pytest.raises(FairscanError, match="'note' has more than 50 values"):
        discover(df, prediction="offer", attributes=["note"])
    with pytest.raises(FairscanError, match=r"attribute column 'regoin' not found.*region"):
        discover(df, prediction="offer", attributes=["regoin"])


def test_duckdb_finds_the_same_subgroups(tmp_path):
    df = planted_subgroups(30_000, seed=5)
    path = tmp_path / "s.parquet"
    df.to_parquet(path)
    kw = dict(prediction="offer", target="y", max_depth=3, direction="both", top=5000)
    mem = discover(df, **kw).subgroups
    duck = discover(str(path), engine="duckdb", **kw).subgroups
    assert list(mem["who"]) == list(duck["who"])
    for c in ("count", "value", "difference_ci_low", "ratio_ci_high", "p_value_adjusted"):
        assert np.allclose(mem[c].to_numpy(dtype=float), duck[c].to_numpy(dtype=float), equal_nan=True, atol=1e-12)
    assert list(mem["verdict"]) == list(duck["verdict"])


def test_json_follows_the_schema_and_the_cli_writes_every_format(cli, tmp_path):
    import jsonschema

    from fairscan import schemas

    r = cli("discover", "dataset:bank", "--score", "balance", "--budget", "0.2", "--attributes", "job", "marital",
            "housing", "age", "--max-depth", "2", "--format", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    jsonschema.validate(doc, schemas.load("discover"))
    assert doc["tested"] > 50 and doc["fdr_method"] == "benjamini-yekutieli" and doc["comparison"] == "complement"
    first = doc["subgroups"][0]
    assert first["direction"] == "excluded" and first["description"].startswith(first["who"])
    for fmt, marker in (("md", "## Findings"), ("html", "<svg"), ("table", "who is excluded")):
        out = tmp_path / f"d.{fmt}"
        r = cli("discover", "dataset:bank", "--score", "balance", "--budget", "0.2", "--attributes", "job", "age",
                "--format", fmt, "--out", str(out))
        assert r.code == 0, r.err
        assert marker in out.read_text()


@pytest.mark.parametrize(("args", "words"), [
    (["--metric", "selection_rat"], "did you mean: selection_rate?"),
    (["--metric", "precision", "--target", "nope"], "target column 'nope' not found"),
    (["--max-depth", "0"], "max_depth must be a whole number >= 1"),
    (["--attributes", "jbo"], "attribute column 'jbo' not found"),
])
def test_bad_options_are_one_line(cli, args, words):
    from tests.conftest import assert_plain_message

    r = cli("discover", "dataset:bank", "--score", "balance", "--budget", "0.2", *args)
    assert r.code == 2 and words in r.err
    assert_plain_message(r.err.strip().removeprefix("fairscan: error: "))


def test_weights_and_an_inferred_spend_tier():
    """Weighted values equal a weighted pandas mean; --infer-tier makes purchasing power a
    candidate attribute, the tiers as fairscan.groups.purchasing assigns them."""
    from fairscan.groups.purchasing import INFERRED, assign_spend_tiers

    rng = np.random.default_rng(4)
    n = 6_000
    df = pd.DataFrame({"customer": rng.integers(0, 800, n).astype(str), "amount": rng.gamma(2, 30, n).round(2),
                       "region": rng.choice(["N", "S", "E"], n), "w": rng.uniform(0.5, 2, n),
                       "offer": rng.integers(0, 2, n)})
    r = discover(df, prediction="offer", weights="w", attributes=["region"], infer_tier="spend:customer,amount,3",
                 max_depth=2, min_size=1, suppress_below=0, top=1000, direction="both")
    tiers = assign_spend_tiers(df, "customer", "amount", 3).astype(str)
    frame = df.assign(**{INFERRED: tiers})
    got = {tuple(sorted(c)): v for c, v in zip(r.subgroups["conditions"], r.subgroups["value"], strict=True)}
    for cols in (["region"], [INFERRED], ["region", INFERRED]):
        for key, g in frame.groupby(cols, observed=True):
            key = key if isinstance(key, tuple) else (key,)
            want = np.average(g["offer"], weights=g["w"])
            assert got[tuple(sorted(zip(cols, map(str, key), strict=True)))] == pytest.approx(want, abs=1e-12)
    assert INFERRED in {a["attribute"] for a in r.meta["attributes"]}
