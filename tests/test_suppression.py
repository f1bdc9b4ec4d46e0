"""Every publisher of group numbers resists the subtraction attack.

One suppression rule (``fairscan.privacy.suppress``) serves every output. Here an attacker
reads what each publisher prints — the audit, the threshold explorer, the recommendation
audit, the mitigation comparison, a scheduled review's report and history, and the
dashboard — and subtracts: a line of groups whose total is published (all rows, all offers,
an intersection's marginal group) with exactly one hidden member gives that member away.
Two scenarios: one small group among larger ones (a 1,200, b 795, tiny 5, the case that
leaked from the explorer), and a small group inside an intersection (b x M, 4 people, in
attributes whose groups are all large: g = a, b; s = F, M, X). The attacker must recover nothing; and the same
attacker does recover the small group from primary suppression alone, so it is no straw man.
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest

import fairscan
from fairscan.explore import ThresholdExplorer
from fairscan.recs import audit_recs

SEP = " x "
BUDGET = 0.3
#: (group column -> labels per row), the attributes to audit, and their intersections
Tables = dict[tuple[str, ...], dict[tuple[str, ...], float | None]]


def small_among_large(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.array(["a"] * 1200 + ["b"] * 795 + ["tiny"] * 5)
    n = len(g)
    y = rng.random(n) < 0.4
    return pd.DataFrame({"g": g, "x": rng.normal(size=n) + y, "score": rng.random(n) * 0.5 + 0.5 * y,
                         "y": y.astype(int)}).sample(frac=1, random_state=seed).reset_index(drop=True)


def small_inside_intersection(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cells = {("a", "F"): 500, ("a", "M"): 500, ("a", "X"): 200, ("b", "F"): 396, ("b", "M"): 4, ("b", "X"): 400}
    g = np.concatenate([[k[0]] * v for k, v in cells.items()])
    s = np.concatenate([[k[1]] * v for k, v in cells.items()])
    n = len(g)
    y = rng.random(n) < 0.4
    return pd.DataFrame({"g": g, "s": s, "x": rng.normal(size=n) + y, "score": rng.random(n) * 0.5 + 0.5 * y,
                         "y": y.astype(int)}).sample(frac=1, random_state=seed).reset_index(drop=True)


SCENARIOS = {"small_among_large": (small_among_large, ["g"], ("tiny",)),
             "small_inside_intersection": (small_inside_intersection, ["g", "s"], ("b", "M"))}


def recover(tables: Tables, total: float) -> dict[tuple[tuple[str, ...], tuple[str, ...]], float]:
    """Everything subtraction gives away: repeatedly, a line (an attribute's groups, whose total
    is ``total``; an intersection's cells along one attribute, whose total is the published
    marginal group) with exactly one unknown member reveals it."""
    known = {cols: dict(cells) for cols, cells in tables.items()}
    found: dict[tuple[tuple[str, ...], tuple[str, ...]], float] = {}
    changed = True
    while changed:
        changed = False
        for cols, cells in known.items():
            lines: dict[tuple[tuple[str, ...], tuple[str, ...]], list[tuple[str, ...]]] = {}
            for key in cells:
                if len(cols) == 1:
                    lines.setdefault(((), ()), []).append(key)
                for axis in range(len(cols) if len(cols) > 1 else 0):
                    rest = (cols[:axis] + cols[axis + 1:], key[:axis] + key[axis + 1:])
                    lines.setdefault(rest, []).append(key)
            for (mcols, mkey), members in lines.items():
                line_total = total if not mcols else known.get(mcols, {}).get(mkey)
                unknown = [m for m in members if cells[m] is None]
                if line_total is None or len(unknown) != 1:
                    continue
                cells[unknown[0]] = line_total - sum(cells[m] for m in members if m != unknown[0])
                found[(cols, unknown[0])] = cells[unknown[0]]
                changed = True
    return found


def tables_from(rows: list[dict], value) -> Tables:
    """Published tables from (attribute, group, ...) records: ``value(row)`` or None if hidden."""
    out: Tables = {}
    for r in rows:
        cols = tuple(r["attribute"].split(SEP))
        out.setdefault(cols, {})[tuple(str(r["group"]).split(SEP))] = value(r)
    return out


def count(r: dict) -> float | None:
    return None if r.get("count") is None or pd.isna(r["count"]) else float(r["count"])


def offered_from_rate(r: dict) -> float | None:
    c = count(r)
    return None if c is None or r.get("selection_rate") is None else round(r["selection_rate"] * c)


def assert_nothing_recovered(tables: Tables, total: float, what: str) -> None:
    assert len(tables) >= 1 and all(tables.values()), f"{what}: nothing published to attack"
    assert any(v is None for cells in tables.values() for v in cells.values()), f"{what}: nothing suppressed"
    assert recover(tables, total) == {}, f"{what}: recovered by subtraction"


# ------------------------------------------------------------------------ the attacker


def test_the_attacker_recovers_primary_suppression_alone():
    """With only the small group hidden (primary suppression, as the explorer published before),
    the attacker gets its exact count; the intersection's small cell too."""
    df = small_among_large()
    counts = df.groupby("g").size()
    tables = {("g",): {("a",): float(counts["a"]), ("b",): float(counts["b"]), ("tiny",): None}}
    assert recover(tables, len(df)) == {(("g",), ("tiny",)): 5.0}
    df = small_inside_intersection()
    cells = df.groupby(["g", "s"]).size()
    tables = {("g",): {(g,): float(v) for g, v in df.groupby("g").size().items()},
              ("s",): {(s,): float(v) for s, v in df.groupby("s").size().items()},
              ("g", "s"): {k: (None if k == ("b", "M") else float(v)) for k, v in cells.items()}}
    assert recover(tables, len(df)) == {(("g", "s"), ("b", "M")): 4.0}


# ------------------------------------------------------------------------ the publishers


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_audit_and_its_reports(scenario):
    make, attrs, small = SCENARIOS[scenario]
    df = make()
    r = fairscan.audit(df, target="y", score="score", budget=BUDGET, sensitive=attrs, intersect=len(attrs) > 1,
                       n_boot=0)
    doc = json.loads(r.to_json())
    assert_nothing_recovered(tables_from(doc["groups"], count), len(df), "audit counts")
    assert_nothing_recovered(tables_from(doc["groups"], offered_from_rate), int(BUDGET * len(df)), "audit offers")
    label = SEP.join(small)
    assert str(len(df[np.logical_and.reduce([df[a] == v for a, v in zip(attrs, small, strict=True)])])) not in [
        line.split("|")[2].strip() for line in r.to_markdown().splitlines() if line.startswith(f"| {label} |")]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_threshold_explorer(scenario):
    make, attrs, _ = SCENARIOS[scenario]
    df = make()
    ex = ThresholdExplorer(df, score="score", target="y", sensitive=attrs, intersect=len(attrs) > 1)
    for cut in (ex.at_budget(BUDGET), ex.at_threshold(0.5)):
        rows = cut.groups.to_dict("records")
        assert_nothing_recovered(tables_from(rows, count), cut.n_rows, "explorer counts")
        offered = tables_from(rows, lambda r: None if pd.isna(r["offered"]) else float(r["offered"]))
        assert_nothing_recovered(offered, cut.offered, "explorer offers")
    curve = ex.curve(max_points=20)
    assert curve.loc[curve["suppressed"], "count"].isna().all()


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_recommendation_audit(scenario):
    make, attrs, _ = SCENARIOS[scenario]
    df = make()
    rng = np.random.default_rng(2)
    users = df.assign(user=np.arange(len(df)))
    if len(attrs) > 1:  # recommendation audits take one user-group column: the intersection
        users["grp"] = users["g"] + SEP + users["s"]
    items = pd.DataFrame({"item": range(6), "kind": ["x", "x", "y", "y", "z", "z"]})
    recs = pd.DataFrame({"user": np.repeat(users["user"], 2),
                         "item": np.concatenate([rng.choice(6, 2, replace=False) for _ in range(len(df))]),
                         "rank": np.tile([1, 2], len(df))})
    res = audit_recs(recs, users, items, user_group="grp" if len(attrs) > 1 else "g",
                                   item_group="kind", k=2, n_boot=0)
    doc = json.loads(res.to_json())
    per_group = {r["user_group"]: r["users"] for r in doc["exclusion"]}
    tables = {("user_group",): {(g,): (None if v is None else float(v)) for g, v in per_group.items()}}
    assert_nothing_recovered(tables, len(df), "recommendation audit users")


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_mitigation_comparison(scenario):
    from fairscan.mitigation import compare

    make, attrs, _ = SCENARIOS[scenario]
    df = make()
    res = compare(df.drop(columns=["score"]), target="y", sensitive=attrs, methods="budget", budget=BUDGET,
                  sweep=False, n_boot=0, test_size=0.5)
    doc = json.loads(res.to_json())
    n_test, k = doc["n_test"], doc["budget"]
    for point in [doc["baseline"], *doc["methods"]]:
        rows: dict[str, dict] = {}
        for d in point["disparities"]:
            if d["metric"] == "selection_rate":
                rows[d["group"]] = {"attribute": d["attribute"], "group": d["group"], "count": d["group_count"],
                                    "selection_rate": d["group_value"]}
                rows[d["reference"]] = {"attribute": d["attribute"], "group": d["reference"],
                                        "count": d["reference_count"], "selection_rate": d["reference_value"]}
        # the comparison publishes one attribute (the intersection when there are several)
        flat = [{**r, "attribute": "group", "group": r["group"].replace(SEP, "&")} for r in rows.values()]
        assert_nothing_recovered(tables_from(flat, count), n_test, "mitigation counts")
        assert_nothing_recovered(tables_from(flat, offered_from_rate), k, "mitigation offers")


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_review_report_and_history(scenario, tmp_path):
    from fairscan.review import DEFAULT_HISTORY, run_review
    from fairscan.review.history import History

    make, attrs, _ = SCENARIOS[scenario]
    df = make()
    df.to_parquet(tmp_path / "scores.parquet")
    cfg = tmp_path / "review.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        name: campaign
        data: scores.parquet
        score: score
        label: y
        sensitive: [{", ".join(attrs)}]
        intersect: {"true" if len(attrs) > 1 else "false"}
        decision: {{budget: {BUDGET}}}
        policy: {{n_boot: 0}}
        outputs: {{dir: out, formats: [json, md]}}
        """))
    run_review(cfg)
    doc = json.loads((tmp_path / "out" / "campaign.json").read_text())
    assert_nothing_recovered(tables_from(doc["groups"], count), len(df), "review report counts")
    assert_nothing_recovered(tables_from(doc["groups"], offered_from_rate), int(BUDGET * len(df)), "review offers")
    hist = History(tmp_path / DEFAULT_HISTORY)  # beside review.yaml
    record = hist.records(kind="run")[-1]["body"]
    assert_nothing_recovered(tables_from(record["groups"], count), len(df), "review history counts")


def test_dashboard_explorer_page():
    """The explorer page's table, as a product manager reads it ("fewer than 10" when hidden).
    (The dashboard audits attributes one at a time: it publishes no intersection.)"""
    from streamlit.testing.v1 import AppTest

    from fairscan.dashboard import MAIN

    make, attrs, _ = SCENARIOS["small_among_large"]
    df = make()
    at = AppTest.from_file(str(MAIN), default_timeout=120)
    at.session_state["uploads"] = {"upload:scored:t": {"df": df, "name": "scores.csv", "kind": "scored"}}
    at.session_state["setup"] = {
        "source": "upload", "dataset": None, "upload_id": "upload:scored:t", "target": "y", "positive_label": None,
        "decision": "budget", "score": "score", "budget": BUDGET, "threshold": None, "prediction": None,
        "sensitive": attrs, "tiers": {}, "infer": None}
    at.switch_page("views/explorer.py").run()
    assert not at.exception and not at.error
    shown = at.dataframe[0].value
    if "attribute" not in shown:
        shown = shown.assign(attribute=attrs[0])
    rows = [{"attribute": r["attribute"], "group": r["group"],
             "count": float(str(r["people"]).replace(",", "")) if str(r["people"]).replace(",", "").isdigit() else None}
            for r in shown.to_dict("records")]
    assert_nothing_recovered(tables_from(rows, count), len(df), "dashboard explorer")
    people = dict(zip(shown["group"], shown["people"], strict=True))
    assert people["tiny"] == "fewer than 10" and people["b"] == "suppressed (protects a small group)"


def test_a_complementary_partner_is_named_as_such_in_the_findings():
    """The partner hidden to protect a small group is not itself small: its finding says why it
    is hidden (795 users are not 'fewer than 10'), in the audit and the recommendation audit."""
    df = small_among_large()
    r = fairscan.audit(df, target="y", score="score", budget=BUDGET, sensitive="g", n_boot=0)
    f = r.findings.set_index("group")
    assert "smaller group's numbers cannot be recovered" in f.loc["b", "message"].iloc[0]
    assert "fewer than 10 rows" in f.loc["tiny", "message"].iloc[0]
    users = df.assign(user=np.arange(len(df)))
    items = pd.DataFrame({"item": range(4), "kind": ["x", "x", "y", "y"]})
    rng = np.random.default_rng(5)
    recs = pd.DataFrame({"user": np.repeat(users["user"], 2),
                         "item": np.concatenate([rng.choice(4, 2, replace=False) for _ in range(len(df))]),
                         "rank": np.tile([1, 2], len(df))})
    res = audit_recs(recs, users, items, user_group="g", item_group="kind", k=2, n_boot=0)
    msgs = res.findings.groupby("group")["message"].apply(list)
    assert msgs["b"] and all("smaller group's numbers cannot be recovered" in m for m in msgs["b"])
    assert msgs["tiny"] and all("fewer than 10 users" in m for m in msgs["tiny"])
    assert set(res.gaps.loc[res.gaps["group"] == "b", "suppression"]) == {"complementary"}
    # the reports say the same: the partner is not "fewer than 10"
    for text in (r.to_markdown(), r.to_html(), res.to_markdown(), res.to_html()):
        assert "suppressed (protects a small group)" in text and "fewer than 10" in text
    from fairscan.report.table import render_table

    assert "suppressed (protects a small group)" in render_table(r, width=200)
