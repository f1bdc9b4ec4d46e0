"""Small-group protection: recovery attempts against published totals, and no raw rows out."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import fairscan


def _frame(sizes: dict[str, int], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(list(sizes), list(sizes.values()))
    n = len(g)
    return pd.DataFrame({"g": g, "y": rng.integers(0, 2, n), "s": rng.random(n)})


def _published(r, attribute):
    t = r.groups[r.groups["attribute"] == attribute].set_index("group")
    return t


def test_one_small_group_gets_a_complementary_partner():
    df = _frame({"a": 400, "b": 300, "c": 50, "tiny": 4})
    r = fairscan.audit(df, target="y", score="s", budget=200, sensitive="g", n_boot=0)
    t = _published(r, "g")
    assert t.loc["tiny", "suppression"] == "primary"
    assert t.loc["c", "suppression"] == "complementary"  # the smallest other group
    # recovery attempt 1: rows minus the published counts gives only the SUM of the two
    remainder = r.meta["n_rows"] - t["count"].dropna().sum()
    assert remainder == 54 and t["count"].isna().sum() == 2
    # recovery attempt 2: offers (the budget) minus the published offers: again only a sum
    published_offers = round((t["selection_rate"] * t["count"]).dropna().sum())
    offered = np.zeros(len(df), bool)
    offered[np.argsort(-df["s"].to_numpy(), kind="stable")[:200]] = True
    hidden = df["g"].isin(["c", "tiny"]).to_numpy()
    assert r.meta["decision"]["budget"] - published_offers == offered[hidden].sum()
    assert t.loc[["c", "tiny"], "selection_rate"].isna().all()
    # and no disparity of either group is published
    d = r.disparities[r.disparities["group"].isin(["c", "tiny"])]
    assert d[["difference", "ratio", "group_value", "p_value"]].isna().all().all()
    msg = r.findings[r.findings["group"] == "c"]["message"].iloc[0]
    assert "cannot be recovered" in msg


def test_two_small_groups_need_no_partner():
    df = _frame({"a": 400, "b": 300, "c": 50, "t1": 4, "t2": 6})
    r = fairscan.audit(df, target="y", prediction="y", sensitive="g", n_boot=0)
    t = _published(r, "g")
    assert t["suppression"].fillna("").tolist() == ["", "", "", "primary", "primary"]


def _lines_are_safe(r, a, b):
    """Every line of the a x b table whose total is published has 0 or >= 2 suppressed
    cells, or its published total is itself suppressed."""
    inter = r.groups[r.groups["attribute"] == f"{a} x {b}"].copy()
    inter[[a, b]] = inter["group"].str.split(" x ", expand=True)
    for axis, other in ((a, b), (b, a)):
        marg = _published(r, other)
        for key, line in inter.groupby(other):
            n_sup = int(line["suppressed"].sum())
            if n_sup == 1:
                assert bool(marg.loc[key, "suppressed"]) and len(line) == 1, (axis, key)
    return inter


def test_intersections_cannot_be_differenced_from_marginals():
    rng = np.random.default_rng(4)
    n = 3000
    df = pd.DataFrame({"region": rng.choice(["n", "s", "e", "w"], n, p=[.4, .3, .2, .1]),
                       "tier": rng.choice(["low", "mid", "high"], n, p=[.5, .45, .05]),
                       "y": rng.integers(0, 2, n), "p": rng.integers(0, 2, n)})
    # a rare combination: only 3 people are (w, high)
    df = df[~((df["region"] == "w") & (df["tier"] == "high"))]
    extra = pd.DataFrame({"region": ["w"] * 3, "tier": ["high"] * 3, "y": [1, 0, 1], "p": [1, 1, 0]})
    df = pd.concat([df, extra], ignore_index=True)
    r = fairscan.audit(df, target="y", prediction="p", sensitive=["region", "tier"], intersect=True, n_boot=0)
    inter = _lines_are_safe(r, "region", "tier")
    cell = inter.set_index("group").loc["w x high"]
    assert cell["suppression"] == "primary"
    assert inter["suppression"].eq("complementary").sum() >= 2  # one in its row, one in its column


@pytest.mark.parametrize("seed", range(5))
def test_random_tables_are_always_safe(seed):
    rng = np.random.default_rng(seed)
    n = 800
    df = pd.DataFrame({"a": rng.choice(list("abcde"), n, p=[.5, .3, .15, .04, .01]),
                       "b": rng.choice(list("xyz"), n, p=[.7, .25, .05]),
                       "y": rng.integers(0, 2, n), "p": rng.integers(0, 2, n)})
    r = fairscan.audit(df, target="y", prediction="p", sensitive=["a", "b"], intersect=True, n_boot=0,
                       suppress_below=10)
    for attr in ("a", "b"):
        t = _published(r, attr)
        assert t["suppressed"].sum() != 1  # never a single suppressed group on a line
    _lines_are_safe(r, "a", "b")


def assert_no_raw_values(outputs: dict[str, str], identifiers: list[str], values, scores) -> None:
    """No identifier, raw feature value (to 3 decimals) or score (exact repr) in any output."""
    for fmt, text in outputs.items():
        for v in identifiers:
            assert v not in text, (fmt, v)
        for v in values:
            assert f"{v:.3f}" not in text, (fmt, v)
        for v in scores:
            assert repr(float(v)) not in text, (fmt, v)


def test_no_identifier_or_raw_value_in_any_output(tmp_path):
    rng = np.random.default_rng(9)
    n = 500
    ids = [f"CUST-{i:06d}-{rng.integers(1e9)}" for i in range(n)]
    emails = [f"person{i}@example.org" for i in range(n)]
    spend = np.round(rng.lognormal(6, 1, n), 2) + 0.001  # distinctive raw values
    df = pd.DataFrame({"customer_id": ids, "email": emails, "spend": spend,
                       "region": rng.choice(["north", "south", "east"], n), "y": rng.integers(0, 2, n),
                       "score": rng.random(n)})
    r = fairscan.audit(df, target="y", score="score", budget=100, sensitive="region", n_boot=50)
    from fairscan.report.table import render_table

    outputs = {"json": r.to_json(), "md": r.to_markdown(), "html": r.to_html(), "table": render_table(r),
               "repr": r._repr_html_()}
    from fairscan.report.junit import render_junit

    outputs["junit"] = render_junit(r, "x")
    assert_no_raw_values(outputs, ids[:50] + emails[:50], spend[:50], df["score"].head(50))
    assert json.loads(outputs["json"])["groups"]  # aggregates are there


def test_no_identifier_in_reviews_recs_mitigation_or_cli_output(tmp_path, cli):
    """The same scan over everything else fairscan writes: a scheduled review's reports and its
    SQLite history (raw bytes), the CLI's stdout/stderr, the recommendation audit (JSON,
    Markdown, HTML) and a mitigation comparison (JSON, Markdown, HTML)."""
    import textwrap

    from fairscan.mitigation import compare
    from fairscan.recs import audit_recs
    from fairscan.report.mitigation import render_mitigation_html, render_mitigation_markdown
    from fairscan.review import run_review

    rng = np.random.default_rng(11)
    n = 600
    ids = [f"CUST-{i:06d}-{rng.integers(1e9)}" for i in range(n)]
    emails = [f"person{i}@example.org" for i in range(n)]
    spend = np.round(rng.lognormal(6, 1, n), 2) + 0.007
    region = rng.choice(["north", "south", "east"], n)
    y = rng.integers(0, 2, n)
    df = pd.DataFrame({"customer_id": ids, "email": emails, "spend": spend, "region": region, "y": y,
                       "score": np.round(rng.random(n), 6) + 1e-7})
    df.to_parquet(tmp_path / "scores.parquet")
    (tmp_path / "review.yaml").write_text(textwrap.dedent("""\
        name: privacy
        data: scores.parquet
        score: score
        label: y
        sensitive: [region]
        decision: {budget: 0.2}
        policy: {n_boot: 50}
        outputs: {dir: out, formats: [json, md, html, junit]}
        """))
    run_review(tmp_path / "review.yaml")
    outputs = {p.name: p.read_bytes().decode("utf-8", "replace") for p in (tmp_path / "out").iterdir()}
    outputs["history.sqlite"] = (tmp_path / "fairscan-history.sqlite").read_bytes().decode("latin-1")
    r = cli("audit", str(tmp_path / "scores.parquet"), "--target", "y", "--score", "score", "--budget", "0.2",
            "--sensitive", "region", "--n-boot", "50", "--format", "json")
    outputs["cli"] = r.out + r.err
    users = pd.DataFrame({"user": ids, "region": region})
    items = pd.DataFrame({"item": [f"SKU-{j}" for j in range(20)], "kind": ["a", "b"] * 10})
    recs = pd.DataFrame([(u, f"SKU-{j}", k + 1) for u in ids for k, j in enumerate(rng.choice(20, 3, False))],
                        columns=["user", "item", "rank"])
    res = audit_recs(recs, users, items, user_group="region", item_group="kind", k=3, n_boot=50)
    outputs |= {"recs.json": res.to_json(), "recs.md": res.to_markdown(), "recs.html": res.to_html()}
    m = compare(df, "y", ["region"], methods=["budget"], budget=0.2, sweep=False, n_boot=20,
                drop=["customer_id", "email"])
    outputs |= {"mit.json": m.to_json(), "mit.md": render_mitigation_markdown(m),
                "mit.html": render_mitigation_html(m)}
    assert_no_raw_values(outputs, ids[:100] + emails[:100], spend[:100], df["score"].head(100))


def test_laplace_release_is_calibrated():
    from fairscan.privacy import laplace_counts

    rng = np.random.default_rng(0)
    eps = 0.5
    noisy = laplace_counts(np.full(200_000, 1000), eps, rng) - 1000
    # Laplace(b = 1/eps): variance 2 b^2 = 8 (before rounding, which adds about 1/12)
    assert noisy.var() == pytest.approx(2 / eps**2 + 1 / 12, rel=0.03)
    assert abs(noisy.mean()) < 0.05


def test_dp_release_in_the_audit_output():
    df = _frame({"a": 4000, "b": 3000, "tiny": 4, "tiny2": 5})
    r = fairscan.audit(df, target="y", prediction="y", sensitive="g", n_boot=0, dp_epsilon=1.0)
    rel = r.meta["dp_release"]
    assert rel["epsilon_per_release"] == pytest.approx(1 / 3)
    assert {g["group"] for g in rel["groups"]} == {"a", "b"}  # suppressed groups are not released
    true = df.groupby("g").size()
    for g in rel["groups"]:
        assert abs(g["rows"] - true[g["group"]]) < 60  # Laplace(3): |noise| < 60 with overwhelming odds
    assert json.loads(r.to_json())["dp_release"]["mechanism"] == "laplace"


def test_a_named_reference_is_not_used_as_the_complementary_partner():
    df = _frame({"a": 100, "b": 400, "c": 300, "tiny": 4})
    r = fairscan.audit(df, target="y", prediction="y", sensitive="g", reference="a", n_boot=0)
    t = _published(r, "g")
    assert not t.loc["a", "suppressed"] and t.loc["c", "suppression"] == "complementary"
