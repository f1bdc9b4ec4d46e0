"""The value audit (``fairscan.audit_value``, ``fairscan value``) against independent oracles:
pandas group-bys, numpy quantiles, scipy's Welch, KS and Wasserstein on the rows, a pandas
Kitagawa decomposition, a hand-built Simpson's paradox; suppression and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import fairscan
from fairscan.errors import FairscanError
from fairscan.value import audit_value
from tests.conftest import assert_plain_message
from tests.test_values import pandas_kitagawa


def prices(n: int = 6000, seed: int = 0) -> pd.DataFrame:
    """Seeded lines: a tier, a product (stratum), a price with ties, weights, an offer flag."""
    rng = np.random.default_rng(seed)
    tier = rng.choice(["low", "mid", "high"], n, p=[0.3, 0.3, 0.4])
    product = rng.choice(list("abcde"), n)
    base = {"a": 5.0, "b": 9.0, "c": 20.0, "d": 35.0, "e": 60.0}
    price = np.round(np.array([base[p] for p in product]) * rng.choice([0.9, 1.0, 1.1], n)
                     * np.where(tier == "low", 1.05, 1.0), 2)
    price[rng.random(n) < 0.02] = np.nan
    return pd.DataFrame({"tier": tier, "product": product, "price": price, "w": rng.uniform(0.5, 2.0, n),
                         "offered": (rng.random(n) < 0.8).astype(int)})


def group_row(res, attr: str, group: str) -> dict:
    g = res.groups
    return g[(g["attribute"] == attr) & (g["group"] == group)].iloc[0].to_dict()


def disparity(res, group: str, metric: str) -> dict:
    d = res.disparities
    return d[(d["group"] == group) & (d["metric"] == metric)].iloc[0].to_dict()


@pytest.mark.parametrize("weighted", [False, True])
def test_group_numbers_equal_pandas_and_numpy(weighted):
    df = prices()
    res = audit_value(df, value="price", favourable="lower", sensitive="tier", weights="w" if weighted else None,
                      n_boot=50)
    for tier, part in df.groupby("tier"):
        row = group_row(res, "tier", tier)
        vals = part["price"].dropna()
        w = part.loc[vals.index, "w"].to_numpy() if weighted else None
        assert row["count"] == len(vals) and row["missing"] == int(part["price"].isna().sum())
        assert row["mean"] == pytest.approx(np.average(vals, weights=w), rel=1e-12)
        for q, name in ((0.5, "median"), (0.1, "p10"), (0.25, "p25"), (0.75, "p75"), (0.9, "p90")):
            want = np.quantile(vals, q, weights=w, method="inverted_cdf") if weighted else np.quantile(vals, q)
            assert row[name] == pytest.approx(want, abs=0), name
        assert row["mean_ci_low"] < row["mean"] < row["mean_ci_high"]
    assert res.meta["reference"] == {"tier": "high"}  # the largest group


def test_gaps_equal_scipy_on_the_rows():
    df = prices(seed=1)
    res = audit_value(df, value="price", favourable="lower", sensitive="tier", n_boot=200)
    ref = df.loc[df["tier"] == "high", "price"].dropna()
    for g in ("low", "mid"):
        x = df.loc[df["tier"] == g, "price"].dropna()
        m = disparity(res, g, "mean")
        t = stats.ttest_ind(x, ref, equal_var=False)
        assert m["difference"] == pytest.approx(x.mean() - ref.mean(), rel=1e-12)
        assert m["p_value"] == pytest.approx(t.pvalue, rel=1e-9)
        assert (m["difference_ci_low"], m["difference_ci_high"]) == pytest.approx(t.confidence_interval(0.95), rel=1e-9)
        assert disparity(res, g, "ks")["difference"] == pytest.approx(stats.ks_2samp(x, ref).statistic, abs=1e-12)
        assert disparity(res, g, "wasserstein")["difference"] == pytest.approx(stats.wasserstein_distance(x, ref),
                                                                               rel=1e-9)
        assert disparity(res, g, "median")["difference"] == pytest.approx(x.median() - ref.median())
    p = res.disparities["p_value"].to_numpy(dtype=float)
    adj = res.disparities["p_value_adjusted"].to_numpy(dtype=float)
    ok = ~np.isnan(p)
    from statsmodels.stats.multitest import multipletests

    assert adj[ok] == pytest.approx(multipletests(p[ok], method="holm")[1], rel=1e-12)


def test_decomposition_equals_pandas_and_adds_up():
    df = prices(seed=2).dropna(subset=["price"])
    df = df[~((df["tier"] == "low") & (df["product"] == "e"))]  # a product the low tier never buys
    res = audit_value(df, value="price", favourable="lower", sensitive="tier", within="product", weights="w",
                      n_boot=200)
    oracle = df.rename(columns={"tier": "grp", "product": "s", "price": "v"})
    for g in ("low", "mid"):
        d = res.decomposition[res.decomposition["group"] == g].iloc[0]
        total, within, comp = pandas_kitagawa(oracle, g, "high")
        assert d["total"] == pytest.approx(total, rel=1e-10)
        assert d["within"] == pytest.approx(within, rel=1e-10)
        assert d["composition"] == pytest.approx(comp, rel=1e-10)
        assert d["within_ci_low"] <= d["within"] <= d["within_ci_high"]
    low = res.decomposition[res.decomposition["group"] == "low"].iloc[0]
    high = df[df["tier"] == "high"]
    assert low["unmatched_reference"] == pytest.approx(high.loc[high["product"] == "e", "w"].sum() / high["w"].sum())


def test_simpsons_paradox_is_told_in_plain_words():
    """Low-spend customers pay 10% more for each product, but are mostly shown the cheap one:
    less overall, more for the same product; the findings say both, and who is worse off."""
    rows = ([("low", "cheap", 11.0)] * 900 + [("low", "dear", 110.0)] * 100
            + [("high", "cheap", 10.0)] * 100 + [("high", "dear", 100.0)] * 900)
    df = pd.DataFrame(rows, columns=["tier", "product", "price"])
    res = audit_value(df, value="price", favourable="lower", sensitive="tier", within="product", n_boot=200)
    f = res.findings.set_index("metric")
    assert "lower overall" in f.loc["mean", "message"] and "better for them" in f.loc["mean", "message"]
    within = f.loc["within", "message"]
    # within = 1/2 (0.9 + 0.1) x 1 + 1/2 (0.1 + 0.9) x 10 = 5.5, i.e. 6.0% of the reference mean 91.0
    assert "6.0% higher for the same product" in within and "worse for them" in within
    assert f.loc["within", "verdict"] == "fail"
    assert "77.0% lower overall" in f.loc["mean", "message"]  # (20.9 - 91.0) / 91.0
    assert f.loc["composition", "verdict"] == "fail" and "from a different mix of product" in f.loc["composition",
                                                                                                      "message"]
    d = res.decomposition.iloc[0]
    assert d["total"] < 0 < d["within"]


def test_small_groups_are_suppressed_with_a_complementary_partner():
    df = prices(seed=3)
    extra = pd.DataFrame({"tier": ["tiny"] * 4, "product": "a", "price": 5.0, "w": 1.0, "offered": 1})
    df = pd.concat([df, extra], ignore_index=True)
    res = audit_value(df, value="price", favourable="lower", sensitive="tier", n_boot=50)
    tiny = group_row(res, "tier", "tiny")
    assert tiny["suppressed"] and tiny["suppression"] == "primary"
    assert all(pd.isna(tiny[k]) for k in ("count", "mean", "median", "p10", "p90", "share_favourable"))
    partners = res.groups[res.groups["suppression"] == "complementary"]
    assert len(partners) == 1 and not partners.iloc[0]["reference"]  # never the reference if avoidable
    for g in ("tiny", partners.iloc[0]["group"]):
        rows = res.disparities[res.disparities["group"] == g]
        assert rows["suppressed"].all() and rows["difference"].isna().all()
    assert (res.findings.loc[res.findings["group"] == "tiny", "verdict"] == "insufficient").all()
    published = next(g for g in res.to_dict()["groups"] if g["group"] == "tiny")
    assert published["mean"] is None and published["mean_ci"] == [None, None] and published["count"] is None


def test_offered_rows_only_and_the_offered_share():
    df = prices(seed=4)
    res = audit_value(df, value="price", favourable="lower", sensitive="tier", offered="offered", n_boot=50)
    for tier, part in df.groupby("tier"):
        row = group_row(res, "tier", tier)
        on = part[part["offered"] == 1]
        assert row["count"] == int(on["price"].notna().sum()) and row["missing"] == int(on["price"].isna().sum())
        assert row["offered_rate"] == pytest.approx(len(on) / len(part))
        assert row["mean"] == pytest.approx(on["price"].mean())


def test_the_json_has_the_documented_keys_and_the_package_exports_it():
    res = fairscan.audit_value(prices(seed=5), value="price", favourable="lower", sensitive="tier",
                               within="product", n_boot=50)
    doc = json.loads(res.to_json())
    g = doc["groups"][0]
    for key in ("count", "missing", "mean", "mean_ci", "median", "median_ci", "p10", "p25", "p75", "p90",
                "share_favourable", "share_favourable_ci", "suppressed"):
        assert key in g, key
    d = doc["disparities"][0]
    for key in ("metric", "group_value", "reference_value", "difference", "difference_ci", "ratio", "ratio_ci",
                "p_value", "p_value_adjusted", "suppressed"):
        assert key in d, key
    assert {r["metric"] for r in doc["disparities"]} == {"mean", "median", "share_favourable", "ks", "wasserstein"}
    dec = doc["decomposition"][0]
    for key in ("total", "within", "within_ci", "composition", "composition_ci", "unmatched_group",
                "unmatched_reference"):
        assert key in dec, key
    assert {f["verdict"] for f in doc["findings"]} <= {"pass", "fail", "insufficient"}


@pytest.mark.parametrize("change,expect", [
    (lambda d: d.assign(price=d["tier"]), "is not numeric"),
    (lambda d: d.assign(price=np.nan), "has no values"),
    (lambda d: d.assign(w=-d["w"]), "negative"),
    (lambda d: d.assign(offered=2), "must be 0/1"),
])
def test_bad_input_is_one_line(change, expect):
    with pytest.raises(FairscanError) as e:
        audit_value(change(prices(600)), value="price", favourable="lower", sensitive="tier", weights="w",
                    offered="offered", n_boot=0)
    assert expect in str(e.value)
    assert_plain_message(str(e.value))


def test_cli_value_needs_a_direction_and_names_columns(cli, tmp_path):
    path = tmp_path / "p.csv"
    prices(800).to_csv(path, index=False)
    r = cli("value", str(path), "--value", "price", "--sensitive", "tier")
    assert r.code == 2 and "--favourable lower for a price" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli("value", str(path), "--value", "prise", "--favourable", "lower", "--sensitive", "tier")
    assert r.code == 2 and "price" in r.err and len(r.err.strip().splitlines()) == 1
    out = tmp_path / "v.json"
    r = cli("value", str(path), "--value", "price", "--favourable", "lower", "--sensitive", "tier", "--within",
            "product", "--format", "json", "--out", str(out), "--n-boot", "50")
    assert r.code == 0
    doc = json.loads(out.read_text())
    assert doc["value"] == "price" and doc["favourable"] == "lower" and doc["decomposition"]
    r = cli("value", str(path), "--value", "price", "--favourable", "lower", "--sensitive", "tier", "--n-boot", "0")
    assert r.code == 0 and "findings" in r.out and "(reference)" in r.out


def test_reports_escape_hostile_names_and_draw_the_distributions(tmp_path, cli):
    df = prices(seed=6)
    df["tier"] = df["tier"].replace({"low": "<script>alert(1)</script>", "mid": "=HYPERLINK(\"x\")|a"})
    res = audit_value(df, value="price", favourable="lower", sensitive="tier", within="product", n_boot=50)
    html = res.to_html()
    assert "<script" not in html and "&lt;script&gt;" in html and "Content-Security-Policy" in html
    assert html.count("<svg") == 2 and "p10 to p90" in html  # the boxes and the decomposition bars
    md = res.to_markdown()
    assert "<script>" not in md and "| group | values | missing |" in md
    assert "## Within strata (discrimination) and from the strata mix (steering)" in md
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    for fmt in ("md", "html"):
        out = tmp_path / f"r.{fmt}"
        r = cli("value", str(path), "--value", "price", "--favourable", "lower", "--sensitive", "tier",
                "--format", fmt, "--out", str(out), "--n-boot", "20")
        assert r.code == 0 and out.read_text().strip()


def test_the_json_follows_its_published_schema():
    import jsonschema

    from fairscan import schemas

    df = prices(seed=7)
    df = pd.concat([df, pd.DataFrame({"tier": ["tiny"] * 3, "product": "a", "price": 5.0, "w": 1.0, "offered": 1})])
    for kw in ({}, {"within": "product", "weights": "w", "offered": "offered"}):
        doc = json.loads(audit_value(df, value="price", favourable="lower", sensitive="tier", n_boot=30, **kw).to_json())
        jsonschema.validate(doc, schemas.load("value"))


def test_progress_is_told_per_attribute_and_per_repair_amount():
    from fairscan.mitigation.value_repair import repair_values

    seen: list[tuple[float, str]] = []
    audit_value(prices(seed=12), value="price", favourable="lower", sensitive="tier", tiers={"w": 2}, n_boot=0,
                progress=lambda f, t: seen.append((f, t)))
    assert [t for _, t in seen][:3] == ["counting the values", "attribute 1 of 2: tier", "attribute 2 of 2: w"]
    assert seen[-1][0] == 1.0 and [f for f, _ in seen] == sorted(f for f, _ in seen)
    seen.clear()
    repair_values(prices(seed=12), value="price", favourable="lower", sensitive="tier",
                  progress=lambda f, t: seen.append((f, t)))
    assert len(seen) == 6 and seen[0][1] == "amount 0 (1 of 5)" and seen[-1][0] == 1.0


def test_the_frames_keep_numeric_columns_when_a_group_is_suppressed():
    df = pd.concat([prices(seed=13), pd.DataFrame({"tier": ["tiny"] * 2, "product": "a", "price": 5.0, "w": 1.0,
                                                   "offered": 1})])
    res = audit_value(df, value="price", favourable="lower", sensitive="tier", n_boot=0)
    assert pd.api.types.is_float_dtype(res.groups["mean"]) and pd.api.types.is_integer_dtype(res.groups["count"])
    assert pd.api.types.is_float_dtype(res.disparities["difference"])
    assert res.groups["mean"].isna().sum() >= 1 and res.groups["count"].isna().sum() >= 1


def test_a_small_intersection_cell_is_suppressed_with_partners_on_its_lines():
    """tier x seg: a cell of 4 rows is suppressed, and so is at least one other cell on each of
    its lines (same tier, same seg), so that the published tier and seg totals do not give it
    away: the audit's one rule (fairscan.privacy.suppress)."""
    rng = np.random.default_rng(14)
    df = prices(3000, seed=14).assign(seg=lambda d: rng.choice(["x", "y", "z"], len(d)))
    df = df[~((df["tier"] == "low") & (df["seg"] == "z"))]
    df = pd.concat([df, df[df["tier"] == "low"].head(4).assign(seg="z")], ignore_index=True)
    res = audit_value(df, value="price", favourable="lower", sensitive=["tier", "seg"], intersect=True, n_boot=0)
    cross = res.groups[res.groups["attribute"] == "tier x seg"].set_index("group")
    assert cross.loc["low x z", "suppression"] == "primary"
    hidden = set(cross.index[cross["suppressed"].astype(bool)])
    assert any(g.startswith("low x ") for g in hidden - {"low x z"})
    assert any(g.endswith(" x z") for g in hidden - {"low x z"})


def messy_prices(n: int = 5000, seed: int = 3) -> pd.DataFrame:
    """Prices with what engines may read differently: missing groups and strata, two strata
    columns (one numeric), a numeric tier column with missing values, weights, offer flags."""
    df = prices(n, seed)
    rng = np.random.default_rng(seed)
    df["region"] = rng.choice(["north", "south", None], n, p=[0.5, 0.45, 0.05])
    df["band"] = rng.choice([1, 2, 3], n).astype(float)
    df.loc[rng.random(n) < 0.03, "band"] = np.nan
    df["income"] = rng.gamma(2.0, 20_000, n)
    df.loc[rng.random(n) < 0.04, "income"] = np.nan
    return df


def comparable(res) -> dict:
    """The result's numbers, for comparing engines (not when or by which engine it ran, nor
    the data hash, which only an in-memory frame gets)."""
    doc = json.loads(res.to_json())
    for key in ("created", "engine", "data_sha256", "data_hash"):
        doc.pop(key)
    return doc


def assert_close(a, b, where: str = "") -> None:
    """Two JSON documents equal, numbers to 1e-9 relative."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float | int):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12), where
    else:
        assert a == b, where


def assert_same_result(a, b) -> None:
    for name in ("groups", "disparities", "decomposition", "findings"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=False, rtol=1e-9,
                                      check_dtype=False, obj=name)
    assert_close(comparable(a), comparable(b))


ENGINE_KW = dict(value="price", favourable="lower", sensitive=["tier", "region"], tiers={"income": 3},
                 intersect=True, within=["product", "band"], offered="offered", weights="w", n_boot=40, seed=5)


def test_duckdb_gives_the_memory_engines_numbers(tmp_path):
    """Engines equal to each other: the same frame through memory, through DuckDB registered
    in memory, and through DuckDB streaming a Parquet file."""
    df = messy_prices()
    mem = audit_value(df, engine="memory", **ENGINE_KW)
    assert mem.meta["engine"] == "memory" and mem.decomposition["within"].notna().any()
    duck = audit_value(df, engine="duckdb", **ENGINE_KW)
    assert duck.meta["engine"] == "duckdb"
    assert_same_result(mem, duck)
    path = tmp_path / "prices.parquet"
    df.to_parquet(path)
    from_file = audit_value(str(path), **ENGINE_KW)  # auto: DuckDB for a file
    assert from_file.meta["engine"] == "duckdb" and from_file.meta["n_rows"] == len(df)
    assert_same_result(mem, from_file)


def test_duckdb_unweighted_without_strata_or_offers_equals_memory():
    df = messy_prices(seed=9)
    kw = dict(value="price", favourable="higher", sensitive="tier", tiers={"income": 4}, n_boot=30)
    assert_same_result(audit_value(df, engine="memory", **kw), audit_value(df, engine="duckdb", **kw))


@pytest.mark.parametrize("change,expect", [
    (lambda d: d.assign(price=d["tier"]), "value column 'price' is not numeric"),
    (lambda d: d.assign(price=np.nan), "has no values"),
    (lambda d: d.assign(price=d["price"].where(d.index != 4, np.inf)), "1 infinite values"),
    (lambda d: d.assign(w=-d["w"]), "negative"),
    (lambda d: d.assign(offered=2), "must be 0/1 for every row (found 2)"),
    (lambda d: d.assign(offered=d["offered"].astype(float).where(d.index != 7, np.nan)), "(1 missing)"),
])
def test_duckdb_refuses_bad_input_as_the_memory_engine_does(change, expect, tmp_path):
    df = change(prices(600))
    path = tmp_path / "bad.parquet"
    df.to_parquet(path)
    messages = []
    for data, engine in ((df, "memory"), (df, "duckdb"), (str(path), "auto")):
        with pytest.raises(FairscanError) as e:
            audit_value(data, value="price", favourable="lower", sensitive="tier", weights="w", offered="offered",
                        n_boot=0, engine=engine)
        assert expect in str(e.value), (engine, str(e.value))
        assert_plain_message(str(e.value))
        messages.append(str(e.value).split(";")[0].split("(")[0])
    assert len(set(messages)) == 1, messages


def test_cli_value_engine_duckdb_equals_memory_and_infer_tier_needs_memory(cli, tmp_path):
    path = tmp_path / "p.parquet"
    messy_prices(3000).to_parquet(path)
    docs = {}
    for engine in ("memory", "duckdb"):
        out = tmp_path / f"{engine}.json"
        r = cli("value", str(path), "--value", "price", "--favourable", "lower", "--sensitive", "tier",
                "--tiers", "income=3", "--within", "product", "--offered", "offered", "--weights", "w",
                "--n-boot", "20", "--engine", engine, "--format", "json", "--out", str(out))
        assert r.code == 0, r.err
        docs[engine] = json.loads(out.read_text())
        assert docs[engine]["engine"] == engine
        for key in ("created", "engine", "data_sha256", "data_hash"):
            docs[engine].pop(key)
    assert_close(docs["memory"], docs["duckdb"])
    r = cli("value", str(path), "--value", "price", "--favourable", "lower", "--infer-tier", "spend:tier,price",
            "--engine", "duckdb")
    assert r.code == 2 and "--infer-tier need --engine memory" in r.err and len(r.err.strip().splitlines()) == 1


@pytest.mark.parametrize("weighted", [False, True])
def test_many_distinct_values_are_binned_with_exact_means_and_quantiles_within_the_stated_precision(
        weighted, monkeypatch, tmp_path):
    """Above EXACT_VALUES distinct values (lowered here) the values share fine bins: means and
    the decomposition stay exact (numpy, pandas), quantiles are within the stated relative
    precision of numpy's, and memory, DuckDB on a frame and DuckDB on a file agree."""
    from fairscan.metrics import values as mv

    monkeypatch.setattr(mv, "EXACT_VALUES", 500)
    rng = np.random.default_rng(17)
    n = 6000
    df = pd.DataFrame({"tier": rng.choice(["low", "mid", "high"], n), "product": rng.choice(list("abc"), n),
                       "price": rng.lognormal(3, 1.2, n) * np.where(rng.random(n) < 0.1, -1, 1),
                       "w": rng.uniform(0.5, 2, n)})
    df.loc[::97, "price"] = 0.0
    kw = dict(value="price", favourable="lower", sensitive="tier", within="product",
              weights="w" if weighted else None, n_boot=20)
    mem = audit_value(df, engine="memory", **kw)
    assert mem.meta["value_precision"] == mv.VALUE_PRECISION
    assert "within 0.01%" in mem.meta["methods"]["quantiles"] and "quantiles:" in mem.to_text()
    path = tmp_path / "continuous.parquet"
    df.to_parquet(path)
    for other in (audit_value(df, engine="duckdb", **kw), audit_value(str(path), **kw)):
        assert other.meta["value_precision"] == mv.VALUE_PRECISION
        assert_same_result(mem, other)
    for tier, part in df.groupby("tier"):
        row = group_row(mem, "tier", tier)
        w = part["w"].to_numpy() if weighted else None
        assert row["mean"] == pytest.approx(np.average(part["price"], weights=w), rel=1e-12)
        for q, name in ((0.5, "median"), (0.1, "p10"), (0.9, "p90")):
            want = (np.quantile(part["price"], q, weights=w, method="inverted_cdf") if weighted
                    else np.quantile(part["price"], q))
            assert abs(row[name] - want) <= 2 * mv.VALUE_PRECISION * abs(want) + 1e-12, (tier, name)
    dec = mem.decomposition.set_index("group")
    rows = df.rename(columns={"tier": "grp", "product": "s", "price": "v"}).assign(w=df["w"] if weighted else 1.0)
    ref = mem.meta["reference"]["tier"]
    for tier in {"low", "mid", "high"} - {ref}:
        total, within, composition = pandas_kitagawa(rows, tier, ref)[:3]
        assert dec.loc[tier, "total"] == pytest.approx(total, rel=1e-9)
        assert dec.loc[tier, "within"] == pytest.approx(within, rel=1e-9)
        assert dec.loc[tier, "composition"] == pytest.approx(composition, rel=1e-9)


def test_value_bins_hold_values_within_the_precision_in_order():
    from fairscan.metrics import values as mv

    rng = np.random.default_rng(3)
    v = np.sort(np.r_[rng.lognormal(0, 4, 20_000), -rng.lognormal(0, 4, 5_000), 0.0, 5e-324, 1.7e308, -1e-300])
    b = mv.value_bins(v)
    assert np.all(np.diff(b) >= 0)  # sorted values keep their bins' order
    for key in np.unique(b):
        inside = np.abs(v[b == key])
        assert inside.max() - inside.min() <= mv.VALUE_PRECISION * inside.max()
    assert b[v == 0][0] == 0 and (b[v > 0] > 0).all() and (b[v < 0] < 0).all()


def clustered_prices(n_customers: int = 400, seed: int = 21) -> pd.DataFrame:
    """Lines of customers: each customer has a tier and a price level of their own (so lines
    of one customer are strongly correlated), buys 1-12 lines of 3 products, with weights."""
    rng = np.random.default_rng(seed)
    per = rng.integers(1, 13, n_customers)
    cust = np.repeat(np.arange(n_customers), per)
    tier = np.array(["low", "mid", "high"])[rng.integers(0, 3, n_customers)][cust]
    level = rng.normal(0, 4, n_customers)[cust]
    product = rng.choice(list("abc"), len(cust))
    base = {"a": 20.0, "b": 35.0, "c": 50.0}
    price = np.array([base[p] for p in product]) + level + np.where(tier == "low", 2.0, 0.0) + rng.normal(0, 1, len(cust))
    return pd.DataFrame({"customer": cust, "tier": tier, "product": product, "price": price,
                         "w": rng.uniform(0.5, 2.0, len(cust))})


@pytest.mark.parametrize("weighted", [False, True])
def test_cluster_robust_means_equal_statsmodels(weighted):
    """With --cluster, a group's mean interval and each difference's interval and p-value are
    those of statsmodels' WLS with cov_type='cluster' (same small-sample factor, t on G - 1)."""
    import statsmodels.api as sm

    df = clustered_prices()
    w = "w" if weighted else None
    res = audit_value(df, value="price", favourable="lower", sensitive="tier", weights=w, cluster="customer",
                      n_boot=0)
    assert res.meta["n_clusters"] == df["customer"].nunique() and "cluster" in res.meta["methods"]["mean"]
    for tier, part in df.groupby("tier"):
        fit = sm.WLS(part["price"], np.ones(len(part)), weights=part["w"] if weighted else 1.0).fit(
            cov_type="cluster", cov_kwds={"groups": part["customer"]}, use_t=True)
        lo, hi = np.asarray(fit.conf_int(0.05))[0]
        row = group_row(res, "tier", tier)
        assert row["mean_ci_low"] == pytest.approx(lo, rel=1e-9) and row["mean_ci_high"] == pytest.approx(hi, rel=1e-9)
    ref = res.meta["reference"]["tier"]
    for tier in {"low", "mid", "high"} - {ref}:
        part = df[df["tier"].isin([tier, ref])]
        X = sm.add_constant((part["tier"] == tier).astype(float).to_numpy())
        fit = sm.WLS(part["price"].to_numpy(), X, weights=part["w"].to_numpy() if weighted else 1.0).fit(
            cov_type="cluster", cov_kwds={"groups": part["customer"].to_numpy()}, use_t=True)
        d = disparity(res, tier, "mean")
        assert d["difference"] == pytest.approx(fit.params[1], rel=1e-9)
        lo, hi = np.asarray(fit.conf_int(0.05))[1]
        assert (d["difference_ci_low"], d["difference_ci_high"]) == pytest.approx((lo, hi), rel=1e-9)
        assert d["p_value"] == pytest.approx(fit.pvalues[1], rel=1e-6)


def test_cluster_robust_intervals_are_wider_and_the_decomposition_agrees_with_statsmodels():
    """Correlated lines: clustering widens every interval; with one stratum the decomposition's
    within part is the difference of means, and its cluster-robust standard error is
    statsmodels' (the interval uses the normal quantile)."""
    import statsmodels.api as sm
    from scipy.stats import norm

    df = clustered_prices(seed=5)
    kw = dict(value="price", favourable="lower", sensitive="tier", n_boot=300, seed=3)
    iid = audit_value(df, **kw)
    cl = audit_value(df, cluster="customer", **kw)
    others = {"low", "mid", "high"} - {iid.meta["reference"]["tier"]}
    for metric in ("mean", "median", "ks", "wasserstein", "share_favourable"):
        for tier in others:
            a, b = disparity(iid, tier, metric), disparity(cl, tier, metric)
            if np.isnan(a["difference_ci_low"]):
                continue
            assert (b["difference_ci_high"] - b["difference_ci_low"]) > (a["difference_ci_high"] - a["difference_ci_low"]), (
                metric, tier)
    for tier in ("low", "mid", "high"):
        a, b = group_row(iid, "tier", tier), group_row(cl, "tier", tier)
        assert b["median_ci_high"] - b["median_ci_low"] > a["median_ci_high"] - a["median_ci_low"]
    one = audit_value(df.assign(stratum="all"), within="stratum", cluster="customer", **kw)
    ref = one.meta["reference"]["tier"]
    dec = one.decomposition.set_index("group")
    for tier in {"low", "mid", "high"} - {ref}:
        part = df[df["tier"].isin([tier, ref])]
        X = sm.add_constant((part["tier"] == tier).astype(float).to_numpy())
        fit = sm.OLS(part["price"].to_numpy(), X).fit(cov_type="cluster", cov_kwds={"groups": part["customer"]})
        se = (dec.loc[tier, "within_ci_high"] - dec.loc[tier, "within_ci_low"]) / (2 * norm.ppf(0.975))
        assert dec.loc[tier, "within"] == pytest.approx(fit.params[1], rel=1e-9)
        assert se == pytest.approx(fit.bse[1], rel=1e-9)
        assert dec.loc[tier, "composition"] == pytest.approx(0, abs=1e-9)


def test_clusters_through_duckdb_equal_memory_and_a_missing_id_is_one_line(tmp_path):
    df = clustered_prices(250, seed=8)
    kw = dict(value="price", favourable="lower", sensitive="tier", tiers={"w": 2}, within="product", weights="w",
              cluster="customer", n_boot=50, seed=2)  # two attributes: two grouping sets in SQL
    mem = audit_value(df, engine="memory", **kw)
    path = tmp_path / "lines.parquet"
    df.to_parquet(path)
    assert_same_result(mem, audit_value(str(path), **kw))
    bad = df.astype({"customer": float})
    bad.loc[3, "customer"] = np.nan
    for data, engine in ((bad, "memory"), (bad, "duckdb")):
        with pytest.raises(FairscanError, match="cluster column 'customer' has 1 missing values") as e:
            audit_value(data, engine=engine, **kw)
        assert_plain_message(str(e.value))


def test_a_value_audit_of_files_carries_a_digest_of_the_audited_columns(tmp_path):
    """DuckDB computes the fast digest in its one pass: equal for the same rows in any order,
    different when one value changes; an in-memory frame gets its frame fingerprint."""
    from fairscan.engines.datahash import VALUE_DIGEST

    df = prices(800)
    kw = dict(value="price", favourable="lower", sensitive="tier", within="product", n_boot=0)
    digests = []
    for name, frame in (("a", df), ("shuffled", df.sample(frac=1, random_state=3)),
                        ("changed", df.assign(price=df["price"].where(df.index != 5, 1234.5)))):
        path = tmp_path / f"{name}.parquet"
        frame.to_parquet(path)
        r = audit_value(str(path), **kw)
        assert r.meta["data_hash"] == VALUE_DIGEST and len(r.meta["data_sha256"]) == 64
        digests.append(r.meta["data_sha256"])
    assert digests[0] == digests[1] != digests[2]
    assert audit_value(df, **kw).meta["data_hash"].startswith("sha256 of the audited columns")


def test_holm_leaves_suppressed_groups_out_and_a_groups_cluster_bootstrap_is_its_own():
    """Suppressed groups are not tested: the adjusted p-values are statsmodels' Holm over the
    published tests only. A group's cluster-bootstrap intervals depend on its own customers:
    adding another group's customers changes nothing for it."""
    from statsmodels.stats.multitest import multipletests

    df = pd.concat([prices(3000, seed=3), pd.DataFrame({"tier": ["tiny"] * 4, "product": "a", "price": 5.0,
                                                         "w": 1.0, "offered": 1})], ignore_index=True)
    res = audit_value(df, value="price", favourable="lower", sensitive="tier", n_boot=0)
    d = res.disparities
    shown = d[~d["suppressed"] & d["p_value"].notna()]
    assert d["suppressed"].any() and d.loc[d["suppressed"], "p_value_adjusted"].isna().all()
    want = multipletests(shown["p_value"].to_numpy(), method="holm")[1]
    np.testing.assert_allclose(shown["p_value_adjusted"].to_numpy(), want, rtol=1e-12)
    lines = clustered_prices(200, seed=6)
    kw = dict(value="price", favourable="lower", sensitive="tier", cluster="customer", n_boot=200, seed=1)
    alone = audit_value(lines, **kw)
    more = lines[lines["tier"] == "mid"].assign(customer=lambda x: x["customer"] + 10_000)  # other customers
    both = audit_value(pd.concat([lines, more], ignore_index=True), **kw)
    for tier in ("low", "high"):
        a, b = group_row(alone, "tier", tier), group_row(both, "tier", tier)
        assert (a["median_ci_low"], a["median_ci_high"]) == (b["median_ci_low"], b["median_ci_high"])


def test_findings_tell_the_published_ratio_interval_and_settings_are_checked_as_for_the_audit():
    """The mean finding's interval is the published ratio interval (delta method), whatever
    the level; a degenerate interval is said in words, never '+nan%'; bad settings are one line."""
    res = audit_value(prices(2000, seed=4), value="price", favourable="lower", sensitive="tier", n_boot=0,
                      confidence=0.9)
    assert res.to_text().splitlines()[0].endswith("90% intervals in brackets")
    for f in res.findings[res.findings["metric"] == "mean"].to_dict("records"):
        d = disparity(res, f["group"], "mean")
        lo, hi = 100 * (d["ratio_ci_low"] - 1), 100 * (d["ratio_ci_high"] - 1)
        assert f"(90% CI {lo:+.1f}% to {hi:+.1f}%)" in f["message"]
    flat = pd.DataFrame({"tier": ["a"] * 40 + ["b"] * 60, "price": [5.0] * 40 + [6.0] * 60})
    text = " ".join(audit_value(flat, value="price", favourable="lower", sensitive="tier", n_boot=0).findings["message"])
    assert "nan%" not in text.lower()
    for bad in (dict(confidence=95), dict(n_boot=-5), dict(alpha=2), dict(min_group_size=-3)):
        with pytest.raises(FairscanError) as e:
            audit_value(prices(300), value="price", favourable="lower", sensitive="tier", **bad)
        assert_plain_message(str(e.value))


def test_engines_count_the_same_cells_with_nan_and_null_strata_and_bin_on_the_same_rows(tmp_path, monkeypatch):
    """A stratum column with both NaN and NULL (one 'unknown' stratum), and offered rows with
    few prices among many quoted ones: memory and DuckDB give the same cells, each once, and
    decide alike whether to bin."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fairscan.engines.duckdb import DuckDBEngine
    from fairscan.engines.memory import MemoryEngine
    from fairscan.groups import GroupSpec, resolve
    from fairscan.metrics import values as mv

    rng = np.random.default_rng(12)
    n = 3000
    band = rng.choice([1.0, 2.0, np.nan, -1.0], n)
    offered = (rng.random(n) < 0.5).astype(int)
    price = np.where(offered == 1, rng.choice([9.0, 10.0, 11.0], n), rng.uniform(1, 100, n))
    table = pa.table({"tier": rng.choice(["a", "b"], n), "price": price, "offered": offered,
                      "band": pa.array([None if b == -1.0 else b for b in band], type=pa.float64(), from_pandas=False)})
    assert pa.compute.sum(pa.compute.is_nan(table["band"])).as_py() > 0 and table["band"].null_count > 0
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    monkeypatch.setattr(mv, "EXACT_VALUES", 100)  # the non-offered quotes alone exceed it
    spec = GroupSpec(sensitive=["tier"])
    out = []
    for eng in (MemoryEngine(table.to_pandas()), DuckDBEngine(str(path))):
        agg = eng.value_aggregate(resolve(spec, eng), "price", ["band"], None, "offered")
        out.append(agg)
    mem, duck = out
    assert mem.precision == duck.precision == mv.VALUE_PRECISION and mem.strata == duck.strata
    for a, b in zip(mem.stats, duck.stats, strict=True):
        for f in ("group", "stratum", "value", "n"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
        keys = list(zip(b.group.tolist(), b.stratum.tolist(), b.value.tolist(), strict=True))
        assert len(keys) == len(set(keys))  # each cell once


def test_the_html_report_shows_every_gap_with_its_interval_and_the_offered_share():
    """The HTML report carries the gap table the Markdown one has (each gap with its interval,
    the ratio with its interval, the Holm p) and each group's offered share with its interval."""
    import html as htmlmod

    from fairscan.formatting import number, pct
    from fairscan.report.common import interval, value_interval

    res = audit_value(prices(3000, seed=9), value="price", favourable="lower", sensitive="tier", offered="offered",
                      n_boot=50)
    page = htmlmod.unescape(res.to_html())
    for d in res.disparities.to_dict("records"):
        gap = value_interval(d["difference_ci_low"], d["difference_ci_high"], 3)
        assert f"{number(d['difference'], 3)} ({gap})" in page
    for g in res.groups.to_dict("records"):
        ci = interval(g["offered_rate_ci_low"], g["offered_rate_ci_high"])
        assert f"offered {pct(g['offered_rate'])} ({ci})" in page
    assert "offered " in res.to_markdown()
