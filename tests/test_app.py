"""The dashboard and the library pieces behind it.

- ``fairscan.explore.ThresholdExplorer`` against ``fairscan.audit`` on the same decisions
  (identical counts, rates and intervals at thresholds on the histogram edges) and against
  numpy brute force (thresholds, budgets, ties, small and empty groups, no label);
- ``fairscan.narrative`` on hand-made audit results;
- ``fairscan.explore.before_after`` and ``coupon_recs_example``;
- the dashboard (``fairscan/dashboard``, what ``fairscan app`` and ``streamlit run app.py``
  serve) driven by Streamlit's AppTest: every page opens on its own (a deep link starts
  with an empty session), and the numbers it shows equal the library's — the overview equals
  ``fairscan.audit``, the explorer after moving the slider equals ``ThresholdExplorer`` and the
  audit at that threshold, a quick mitigation equals ``fairscan.mitigation.compare``, the
  recommendations page equals ``fairscan.recs.audit_recs``, the model comparison's gained and
  lost offers equal the two models' own top-K decisions counted with pandas.

Pages are scripts named after their URL paths (``fairscan/dashboard/views/overview.py`` is
``/overview``), so ``AppTest.switch_page`` opens them as a deep link does.
"""

from __future__ import annotations

import json
import math
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from test_inferred import customers

import fairscan
from fairscan.dashboard import MAIN
from fairscan.errors import FairscanError
from fairscan.explore import ThresholdExplorer, before_after, coupon_recs_example
from fairscan.modeling import reference_scores
from fairscan.narrative import headlines, verdict_sentence

APP = str(MAIN)
BANK_TIERS = {"age": [24, 59], "balance": 4}
RATE_COLS = [f"{m}{s}" for m in ("selection_rate", "true_positive_rate", "false_negative_rate", "false_positive_rate",
                                 "precision", "base_rate") for s in ("", "_ci_low", "_ci_high")]


@pytest.fixture(scope="module")
def bank_scores() -> pd.DataFrame:
    return reference_scores("bank")[1]


@pytest.fixture(scope="module")
def bank_explorer(bank_scores) -> ThresholdExplorer:
    return ThresholdExplorer(bank_scores, score="score", target="y", positive_label="yes", sensitive=["job"],
                             tiers=BANK_TIERS)


def by_group(df: pd.DataFrame) -> pd.DataFrame:
    return df.set_index(["attribute", "group"]).sort_index()


# ------------------------------------------------------------------ ThresholdExplorer


def test_explorer_equals_audit_at_edges(bank_scores, bank_explorer):
    ex = bank_explorer
    assert not ex.exact and 100 < len(ex.thresholds) <= 1001  # 1,654 distinct scores: quantile edges
    for j in (5, 60, 150, 300, len(ex.thresholds) - 3):
        t = float(ex.thresholds[j])
        cut = ex.at_threshold(t)
        assert cut.threshold == t
        r = fairscan.audit(bank_scores, target="y", positive_label="yes", score="score", threshold=t,
                           sensitive=["job"], tiers=BANK_TIERS, n_boot=0)
        a, e = by_group(r.groups), by_group(cut.groups)
        assert list(a.index) == list(e.index)
        assert (a["count"] == e["count"]).all()
        assert (a["suppressed"] == e["suppressed"]).all()
        pd.testing.assert_frame_equal(e[[*RATE_COLS, "impact_ratio"]], a[[*RATE_COLS, "impact_ratio"]],
                                      check_exact=False, rtol=1e-12, atol=1e-12)
        assert (a["four_fifths"].astype(object) == e["four_fifths"].astype(object)).all()
        assert cut.offered == int((bank_scores["score"] >= t).sum())
        for attr, band in cut.band.items():
            assert band == pytest.approx(0.8 * a.loc[attr, "selection_rate"].max())


def brute(scores: np.ndarray, y: np.ndarray, groups: np.ndarray, t: float) -> dict[str, dict[str, float]]:
    """Per-group count, selection rate, TPR and miss rate by plain numpy masks."""
    out = {}
    for g in np.unique(groups):
        m = groups == g
        d = scores[m] >= t
        pos = y[m]
        out[str(g)] = {"count": int(m.sum()), "offered": int(d.sum()), "selection_rate": d.mean(),
                       "true_positive_rate": (d & pos).sum() / pos.sum() if pos.any() else math.nan,
                       "false_negative_rate": (~d & pos).sum() / pos.sum() if pos.any() else math.nan}
    return out


@pytest.mark.parametrize("distinct", [40, 5000])
def test_explorer_equals_brute_force(distinct):
    rng = np.random.default_rng(distinct)
    n = 6000
    g = rng.choice(["a", "b", "c", "tiny"], n, p=[0.5, 0.3, 0.1985, 0.0015])  # 'tiny' has < 10 rows
    s = np.round(rng.beta(2, 5, n) + (g == "a") * 0.1, 6)
    if distinct < 1000:
        s = np.round(s * distinct) / distinct  # heavy ties
    y = rng.random(n) < s
    df = pd.DataFrame({"s": s, "y": y.astype(int), "g": g})
    ex = ThresholdExplorer(df, score="s", target="y", sensitive="g", max_edges=301)
    assert ex.exact == (len(np.unique(s)) <= 301)
    for t in ex.thresholds[:: max(1, len(ex.thresholds) // 17)]:
        got = by_group(ex.at_threshold(float(t)).groups).loc["g"]
        want = brute(s, y, g, float(t))
        # 'tiny' (< 10 rows) and, so that it cannot be recovered from the totals, the smallest other group
        partner = min((grp for grp in want if want[grp]["count"] >= 10), key=lambda grp: want[grp]["count"])
        for grp, w in want.items():
            if w["count"] < 10 or grp == partner:
                assert got.loc[grp, "suppression"] == ("primary" if w["count"] < 10 else "complementary")
                assert got.loc[grp, "suppressed"] and pd.isna(got.loc[grp, "count"])
                assert pd.isna(got.loc[grp, "selection_rate"])
                continue
            assert got.loc[grp, "count"] == w["count"] and got.loc[grp, "offered"] == w["offered"]
            for m in ("selection_rate", "true_positive_rate", "false_negative_rate"):
                assert got.loc[grp, m] == pytest.approx(w[m], abs=1e-12, nan_ok=True)
    # budgets: the highest edge whose cumulative count reaches K; ties make offered >= K
    for k in (1, 37, 600, 3000, n):
        cut = ex.at_budget(k)
        assert cut.requested == k and cut.offered == int((s >= cut.threshold).sum()) >= k
        higher = ex.thresholds[ex.thresholds > cut.threshold]
        assert len(higher) == 0 or int((s >= higher[0]).sum()) < k
    assert ex.at_budget(0.1).requested == 600  # a fraction, rounded down


def test_explorer_between_edges_suppression_and_no_label():
    df = pd.DataFrame({"s": [0.1, 0.2, 0.2, 0.4, 0.9] * 5, "grp": ["x"] * 15 + ["y"] * 10})
    ex = ThresholdExplorer(df, score="s", sensitive="grp")
    assert ex.exact and list(ex.thresholds) == [0.1, 0.2, 0.4, 0.9]
    assert ex.metrics == ["selection_rate"]
    cut = ex.at_threshold(0.3)  # rounded up to 0.4: exact, nothing scores in [0.3, 0.4)
    assert cut.threshold == 0.4 and cut.offered == 10 and "exact" in cut.note
    assert by_group(cut.groups).loc[("grp", "y"), "selection_rate"] == pytest.approx(0.4)
    assert by_group(cut.groups)["positives"].isna().all()
    nobody = ex.at_threshold(5)
    assert nobody.offered == 0 and math.isinf(nobody.threshold) and "nobody" in nobody.note
    assert ex.at_budget(0).offered == 0
    with pytest.raises(FairscanError, match="not available without a target"):
        ex.curve(metrics=["false_negative_rate"])
    with pytest.raises(FairscanError, match="missing, NaN or infinite"):
        ThresholdExplorer(df.assign(s=[np.nan] + [0.5] * 24), score="s", sensitive="grp")
    with pytest.raises(FairscanError, match="not found"):
        ThresholdExplorer(df, score="score", sensitive="grp")


def test_explorer_curve_matches_point_queries(bank_explorer):
    ex = bank_explorer
    curve = ex.curve("balance", max_points=50)
    ts = sorted(curve["threshold"].unique())
    assert len(ts) == 50 and ts[0] == ex.thresholds[0] and ts[-1] == ex.thresholds[-1]
    for t in ts[::7]:
        c = curve[curve["threshold"] == t].set_index("group")
        q = by_group(ex.at_threshold(t).groups).loc["balance"]
        for m in ("selection_rate", "false_negative_rate", "selection_rate_ci_low"):
            np.testing.assert_allclose(c[m].to_numpy(float), q[m].to_numpy(float))
        assert c["four_fifths_line"].iloc[0] == pytest.approx(0.8 * q["selection_rate"].max())
        assert c["offered_share"].iloc[0] == pytest.approx(ex.offered_at(t) / ex.n_rows)


def test_explorer_groups_from_a_frame(bank_scores):
    from fairscan.groups import assign_groups

    groups = assign_groups(bank_scores, [], BANK_TIERS)
    a = ThresholdExplorer(bank_scores, score="score", target="y", groups=groups)
    b = ThresholdExplorer(bank_scores, score="score", target="y", tiers=BANK_TIERS)
    pd.testing.assert_frame_equal(a.at_budget(0.2).groups, b.at_budget(0.2).groups)


# ------------------------------------------------------------------------- narrative


def fake_result(rows: list[dict], labelled: bool = True, findings: list[dict] | None = None,
                min_group_size: int = 30) -> SimpleNamespace:
    groups = pd.DataFrame(rows)
    for m in ("selection_rate", "false_negative_rate"):
        if m in groups:
            groups[f"{m}_ci_low"] = groups[m] - 0.01
            groups[f"{m}_ci_high"] = groups[m] + 0.01
    groups["count"] = groups["count"].astype("Int64")
    metrics = ["selection_rate", "false_negative_rate"] if labelled else ["selection_rate"]
    f = pd.DataFrame(findings or [], columns=["attribute", "metric", "group", "reference", "verdict", "message"])
    return SimpleNamespace(
        groups=groups, findings=f,
        meta={"attributes": list(dict.fromkeys(groups["attribute"])), "metrics": metrics,
              "settings": {"min_group_size": min_group_size, "confidence": 0.95}},
        verdict_counts=lambda: {v: int((f["verdict"] == v).sum()) for v in ("fail", "insufficient", "pass")})


def g(attr, group, count, sr, fnr=None, suppressed=False, reference=False):
    return {"attribute": attr, "group": group, "count": None if suppressed else count, "suppressed": suppressed,
            "reference": reference, "selection_rate": None if suppressed else sr,
            "false_negative_rate": None if suppressed else fnr}


def test_headline_tiers_with_miss_rates_and_verdict():
    r = fake_result(
        [g("balance", "Q1 (..72]", 3390, 0.091, 0.41), g("balance", "Q2 (72..448]", 3400, 0.15, 0.3),
         g("balance", "Q3 (448..1428]", 3380, 0.18, 0.25), g("balance", "Q4 (1428..]", 3391, 0.21, 0.18, reference=True)],
        findings=[{"attribute": "balance", "metric": "selection_rate", "group": "Q1 (..72]", "reference": "Q4 (1428..]",
                   "verdict": "fail", "message": ""}])
    (h,) = headlines(r, offer="the deposit", outcome="would have subscribed")
    assert h.text == (
        "Customers in the lowest balance tier, Q1 (..72] (3,390 people), are offered the deposit 2.3x less often "
        "than those in the top balance tier, Q4 (1428..] (3,391 people): 9.1% (95% CI 8.1–10.1%) vs 21.0% "
        "(20.0–22.0%). Of those who would have subscribed, 41.0% (40.0–42.0%) are missed vs 18.0% (17.0–19.0%). "
        "Audit verdict for Q1 (..72] against the reference group Q4 (1428..]: fail (a breach unlikely to be chance).")
    assert (h.low_group, h.high_group, h.low_count, h.high_count) == ("Q1 (..72]", "Q4 (1428..]", 3390, 3391)
    assert h.times_less == pytest.approx(0.21 / 0.091) and h.verdict == "fail"


def test_headline_never_names_suppressed_or_small_groups():
    r = fake_result([g("job", "student", 0, 0, suppressed=True), g("job", "retired", 12, 0.9, 0.05),
                     g("job", "admin.", 500, 0.2, 0.3, reference=True), g("job", "services", 400, 0.15, 0.35)])
    (h,) = headlines(r)
    assert "student" not in h.text and "retired" not in h.text
    assert h.text.startswith("Customers in the job group services (400 people) are offered 25% less often than "
                             "those in the job group admin. (500 people)")
    assert "Audit verdict" not in h.text  # no finding given
    assert headlines(r, min_count=10)[0].high_group == "retired"  # allowed when the floor is lowered


def test_headline_without_label_never_offered_equal_and_order():
    r = fake_result([g("sex", "F", 300, 0.0), g("sex", "M", 320, 0.3),
                     g("region", "north", 200, 0.2), g("region", "south", 210, 0.2001),
                     g("age", "(..30]", 100, 0.1), g("age", "(30..]", 90, 0.5)], labelled=False)
    hs = headlines(r, who="Applicants")
    assert [h.attribute for h in hs] == ["sex", "age", "region"]  # largest gap first
    assert hs[0].text == ("Applicants in the sex group F (300 people) are never offered, while those in the sex "
                          "group M (320 people) are offered 30.0% (29.0–31.0%).")
    assert "lowest age tier" in hs[1].text and "5.0x less often" in hs[1].text and "missed" not in hs[1].text
    assert "about as often" in hs[2].text
    assert len(headlines(fake_result([g("sex", "F", 5, 0.1), g("sex", "M", 320, 0.3)]))) == 0


def test_verdict_sentence(bank_scores):
    r = fairscan.audit(bank_scores, target="y", positive_label="yes", score="score", budget=0.2, tiers=BANK_TIERS)
    c = r.verdict_counts()
    assert verdict_sentence(r) == (f"Of {sum(c.values())} checks of a group against its reference, {c['fail']} fail, "
                                   f"{c['pass']} pass and {c['insufficient']} have insufficient evidence.")
    texts = [h.text for h in headlines(r)]
    assert any("lowest balance tier, Q1" in t for t in texts)


# ------------------------------------------------------------- mitigation table, recs


def point(method, strength, values: dict[str, float], counts: dict[str, int], ref: str):
    recs = [{"metric": "selection_rate", "group": k, "reference": ref, "group_value": v, "reference_value": values[ref],
             "group_count": counts[k], "reference_count": counts[ref], "suppressed": False}
            for k, v in values.items() if k != ref]
    return SimpleNamespace(method=method, strength=strength, disparities=recs)


def test_before_after_from_points():
    counts = {"a": 100, "b": 50}
    res = SimpleNamespace(
        baseline=point("baseline", None, {"a": 0.3, "b": 0.1}, counts, "a"),
        methods=[point("budget", 1.0, {"a": 0.25, "b": 0.2}, counts, "a")],
        curve=[point("budget", 0.5, {"a": 0.28, "b": 0.15}, counts, "a")],
        recommended={"method": "budget", "strength": 1.0})
    df = before_after(res)
    assert df.to_dict("list") == {"group": ["a", "b"], "count": [100, 50], "reference": [True, False],
                                  "before": [0.3, 0.1], "after": [0.25, 0.2],
                                  "change": [pytest.approx(-0.05), pytest.approx(0.1)]}
    assert before_after(res, "budget", 0.5)["after"].tolist() == [0.28, 0.15]
    with pytest.raises(FairscanError, match="not in this comparison"):
        before_after(res, "expgrad")


@pytest.fixture(scope="module")
def coupon_example():
    return coupon_recs_example(2)


def test_coupon_recs_example(coupon_example):
    ex = coupon_example
    recs, users = ex["recs"], ex["users"]
    assert len(users) == 3806 and users["user"].is_unique  # the coupon model's held-out scenarios
    assert len(recs) == 2 * len(users) and (recs.groupby("user")["item"].nunique() == 2).all()
    assert (recs.groupby("user")["score"].diff().dropna() <= 0).all()  # best first
    assert len(ex["candidates"]) == 5 * len(users)
    assert users["income"].cat.categories[0] == "Less than $12500"
    assert set(ex["truth"]["user"]) <= set(users["user"])


# ---------------------------------------------------------------------- the dashboard


def goto(at, url_path: str, timeout: float = 120):
    """Open the page at ``url_path`` (its script ``views/<url_path>.py``; "home" is the root URL)."""
    if url_path != "home":
        at.switch_page(f"views/{url_path}.py")
    return at.run(timeout=timeout)


def fresh(url_path: str):
    """A deep link: a new session (empty session state) opening ``url_path``."""
    from streamlit.testing.v1 import AppTest

    return goto(AppTest.from_file(APP, default_timeout=120), url_path)


def no_errors(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def unescape(md: str) -> str:
    return re.sub(r"\\(.)", r"\1", md)


@pytest.mark.parametrize("url_path,title", [
    ("home", "Overview"), ("overview", "Overview"), ("data", "Data & model"), ("explorer", "Threshold & budget explorer"),
    ("mitigations", "Mitigations"), ("recommendations", "Recommendations"), ("reviews", "Reviews"),
    ("excluded", "Who is excluded?"), ("why", "Why?"), ("compare", "Compare models"), ("value", "Offer value")])
def test_every_page_opens_on_its_own(url_path, title):
    at = fresh(url_path)
    no_errors(at)
    assert at.title[0].value == title
    assert "bank" in at.sidebar.markdown[0].value.lower()  # the default analysis


def test_overview_equals_the_audit(bank_scores):
    at = fresh("overview")
    no_errors(at)
    r = fairscan.audit(bank_scores, target="y", positive_label="yes", score="score", budget=0.2, tiers=BANK_TIERS)
    c = r.verdict_counts()
    assert {m.label: int(m.value) for m in at.metric} == {
        "Fail": c["fail"], "Pass": c["pass"], "Insufficient evidence": c["insufficient"]}
    shown = "\n".join(unescape(m.value) for m in at.markdown)
    for h in headlines(r):
        assert h.text in shown
    assert verdict_sentence(r) in shown
    for attr in ("age", "balance"):  # one tab at a time: only the open tab is drawn
        at.session_state["ov_tabs"] = attr
        at.run()
        no_errors(at)
        tables = [d.value for d in at.dataframe]
        assert len([t for t in tables if "attribute" in t and "count" in t]) == 1
        got = next(t for t in tables if "attribute" in t and set(t["attribute"]) == {attr})
        want = r.groups[r.groups["attribute"] == attr]
        pd.testing.assert_frame_equal(got[["group", "count", *RATE_COLS, "impact_ratio"]].reset_index(drop=True),
                                      want[["group", "count", *RATE_COLS, "impact_ratio"]].reset_index(drop=True))
        # the charts draw the same numbers (Vega-Lite specs from fairscan.report.charts)
        # (Streamlit moves a spec's inline data into an Arrow table)
        drawn_tables = [pa.ipc.open_stream(e.proto.data.data).read_pandas() for e in at.main
                        if getattr(e, "type", None) == "vega_lite_chart"]
        assert len(drawn_tables) == 2
        for drawn, metric in zip(drawn_tables, ("selection_rate", "false_negative_rate"), strict=True):
            shown = want[~want["suppressed"]]
            assert list(drawn["group"]) == list(shown["group"].astype(str))
            np.testing.assert_array_equal(drawn[["value", "lo", "hi"]].to_numpy(),
                                          shown[[metric, f"{metric}_ci_low", f"{metric}_ci_high"]].to_numpy(float))
    assert len(at.get("download_button")) == 3


def test_explorer_slider_equals_library(bank_scores):
    at = fresh("explorer")
    no_errors(at)
    ex = ThresholdExplorer(bank_scores, score="score", target="y", positive_label="yes", tiers=BANK_TIERS)
    at.slider(key="ex_budget").set_value(35).run()
    no_errors(at)
    cut = ex.at_budget(0.35)
    assert [m.value for m in at.metric] == [f"{cut.offered:,}", f"{100 * cut.offered_share:.1f}%",
                                            f"{cut.threshold:.4f}"]
    shown = at.dataframe[0].value  # the cut's table plus the text columns people read
    pd.testing.assert_frame_equal(shown[cut.groups.columns].reset_index(drop=True), cut.groups.reset_index(drop=True))
    assert shown["offered (95% CI)"].iloc[0] == (f"{100 * cut.groups['selection_rate'].iloc[0]:.1f}% "
                                                 f"({100 * cut.groups['selection_rate_ci_low'].iloc[0]:.1f}–"
                                                 f"{100 * cut.groups['selection_rate_ci_high'].iloc[0]:.1f})")

    at.segmented_control(key="ex_mode").set_value("threshold").run()
    t = float(ex.thresholds[120])
    at.select_slider(key="ex_threshold").set_value(t).run()
    no_errors(at)
    shown = at.dataframe[0].value
    r = fairscan.audit(bank_scores, target="y", positive_label="yes", score="score", threshold=t, tiers=BANK_TIERS,
                       n_boot=0)
    assert shown["threshold"].eq(t).all()
    assert shown["count"].tolist() == r.groups["count"].tolist()
    np.testing.assert_allclose(shown[RATE_COLS].to_numpy(float), r.groups[RATE_COLS].to_numpy(float), rtol=1e-12)
    assert at.metric[0].value == f"{int((bank_scores['score'] >= t).sum()):,}"


def test_reference_group_by_tier_short_name(bank_scores):
    """On the data page a reference group can be typed as a tier's short name (Q4); the overview
    then compares with that group, as fairscan.audit does; an unknown name is one error line."""
    at = fresh("data")
    at.text_input(key="d_ref_reference:bank_balance").set_value("Q4").run()
    no_errors(at)
    r = fairscan.audit(bank_scores, target="y", positive_label="yes", score="score", budget=0.2, tiers=BANK_TIERS,
                       reference={"balance": "Q4"})
    want = r.groups[(r.groups["attribute"] == "balance") & r.groups["reference"]]["group"].tolist()
    assert len(want) == 1 and want[0].startswith("Q4 (")  # the top quartile, not the default (largest) group
    goto(at, "overview")
    at.session_state["ov_tabs"] = "balance"
    at.run()
    no_errors(at)
    got = next(d.value for d in at.dataframe if "attribute" in d.value and set(d.value["attribute"]) == {"balance"})
    assert got.loc[got["reference"].astype(bool), "group"].tolist() == want
    goto(at, "data")
    at.text_input(key="d_ref_reference:bank_balance").set_value("Q9").run()
    assert not at.exception
    assert [e.value for e in at.error] and "reference group 'Q9' not found" in at.error[0].value


def test_choose_a_dataset_then_overview_and_quick_mitigation():
    from fairscan import datasets
    from fairscan.mitigation import compare

    at = fresh("data")
    at.selectbox(key="d_dataset").set_value("german").run()
    no_errors(at)
    card = datasets.card("german")
    goto(at, "overview")
    no_errors(at)
    _, scores = reference_scores("german")
    r = fairscan.audit(scores, target=card["target"], positive_label=card["positive_label"], score="score",
                       budget=0.2, tiers=card["default_tiers"])
    c = r.verdict_counts()
    assert [int(m.value) for m in at.metric] == [c["fail"], c["pass"], c["insufficient"]]
    assert "German" in at.sidebar.markdown[0].value

    goto(at, "mitigations")
    no_errors(at)
    assert at.radio(key="mit_preset").value == "quick"  # budget re-allocation only
    at.button[0].click().run(timeout=180)  # the form's submit button
    no_errors(at)
    res = compare(datasets.load("german"), card["target"], [], card["default_tiers"],
                  positive_label=card["positive_label"], model="reference:german", methods=["budget"], budget=0.2,
                  sweep=True, min_ratio=0.8, dataset="german")
    shown = at.dataframe[0].value
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), res.table().reset_index(drop=True))
    ba = at.dataframe[1].value
    pd.testing.assert_frame_equal(ba.reset_index(drop=True), before_after(res).reset_index(drop=True))
    assert any(res.recommended["why"] in unescape(s.value) for s in [*at.success, *at.warning])
    # a revisit shows the cached result without pressing the button again
    goto(at, "overview")
    goto(at, "mitigations")
    assert at.dataframe[0].value.equals(shown)


def test_recommendations_page_equals_audit_recs(coupon_example):
    """The page's default, the online-retail purchasing-power case, and the coupon case each
    equal fairscan.recs.audit_recs of the same lists."""
    from fairscan.explore import retail_recs_example
    from fairscan.recs import audit_recs

    at = fresh("recommendations")
    no_errors(at)
    rx = retail_recs_example()
    rres = audit_recs(rx["recs"], rx["users"], rx["items"], user_group="spend_tier", item_group="price_tier", k=10,
                      truth=rx["truth"], interactions=rx["interactions"])
    c = rres.verdict_counts()
    assert [int(m.value) for m in at.metric] == [c["fail"], c["pass"], c["insufficient"]]
    excl = next(d.value for d in at.dataframe if "excluded" in d.value.columns)
    pd.testing.assert_frame_equal(excl.reset_index(drop=True), rres.exclusion.reset_index(drop=True))
    at.radio(key="rec_source").set_value("coupon")
    at.run()
    no_errors(at)
    ex = coupon_example
    res = audit_recs(ex["recs"], ex["users"], ex["items"], user_group="income", item_group="coupon", k=2,
                     truth=ex["truth"])
    c = res.verdict_counts()
    assert [int(m.value) for m in at.metric] == [c["fail"], c["pass"], c["insufficient"]]
    tables = [d.value for d in at.dataframe]
    excl = next(t for t in tables if "excluded" in t.columns)
    pd.testing.assert_frame_equal(excl.reset_index(drop=True), res.exclusion.reset_index(drop=True))
    expo = next(t for t in tables if "share" in t.columns and "bias_ratio" in t.columns)
    pd.testing.assert_frame_equal(expo.reset_index(drop=True), res.exposure.reset_index(drop=True))


def test_reviews_page_shows_a_history(tmp_path):
    pytest.importorskip("fairscan.review")
    from fairscan.review.history import History

    at = fresh("reviews")
    no_errors(at)
    assert any("No review history" in i.value for i in at.info)
    path = tmp_path / "h.sqlite"
    body = {"status": "fail", "exit_code": 1, "verdict_counts": {"fail": 2, "pass": 1, "insufficient": 0},
            "data_sha256": "a" * 64, "model_sha256": None, "config_sha256": "b" * 64, "fairscan_version": "0.1.0",
            "regressions": [], "findings": [{"metric": "selection_rate"}],
            "disparities": [{"attribute": "age", "metric": "selection_rate", "group": "(..24]", "reference": "x",
                             "difference": -0.1, "ratio": 0.5, "p_value_adjusted": 0.01}]}
    History(path).append("run", "bank-monthly", body)
    History(path).append("run", "bank-monthly", {**body, "status": "pass", "exit_code": 0})
    at.text_input(key="rv_path").set_value(str(path)).run()
    no_errors(at)
    runs = at.dataframe[0].value
    assert runs["status"].tolist() == ["fail", "pass"] and runs["fail"].tolist() == [2, 2]
    assert json.loads(json.dumps(runs["run"].tolist())) == [1, 2]
    assert len(at.get("download_button")) == 3  # HTML, Markdown, JSON


# ------------------------------------------------------------ inferred purchasing power
# customers(): offers to customers with several rows each and a partly known income bracket
def _with_upload(df: pd.DataFrame, infer: dict) -> object:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["uploads"] = {"upload:scored:t": {"df": df, "name": "customers.csv", "kind": "scored"}}
    at.session_state["setup"] = {
        "source": "upload", "dataset": None, "upload_id": "upload:scored:t", "target": "bought",
        "positive_label": None, "decision": "budget", "score": "score", "budget": 0.3, "threshold": None,
        "prediction": None, "sensitive": [], "tiers": {}, "infer": infer}
    return at


def test_spend_tiers_in_the_dashboard_equal_the_library():
    from fairscan.inferred import INFERRED, infer_tiers

    df = customers()
    spec = {"kind": "spend", "customer": "customer", "amount": "basket", "n": 3}
    at = goto(_with_upload(df, spec), "overview")
    no_errors(at)
    want = fairscan.audit(df.assign(**{INFERRED: infer_tiers(df, spec)[0]}), target="bought", score="score",
                          budget=0.3, sensitive=[INFERRED])
    got = next(d.value for d in at.dataframe if "attribute" in d.value and "count" in d.value)
    w = want.groups[want.groups["attribute"] == INFERRED]
    pd.testing.assert_frame_equal(got[["group", "count", "selection_rate"]].reset_index(drop=True),
                                  w[["group", "count", "selection_rate"]].reset_index(drop=True))
    assert any("spend tiers of each customer" in unescape(i.value) for i in at.info)


@pytest.mark.slow
def test_proxy_model_tiers_show_their_accuracy_and_the_soft_audit():
    from fairscan.groups.purchasing import fit_tier_model
    from fairscan.inferred import audit_inferred

    df = customers()
    at = goto(_with_upload(df, {"kind": "model", "column": "income", "person": "customer"}), "overview")
    no_errors(at)
    proxy = fit_tier_model(df, "income", exclude=["bought", "score", "customer"], groups="customer", seed=0)
    assert "customer" not in proxy.features
    note = next(unescape(i.value) for i in at.info if "proxy model of income" in unescape(i.value))
    assert f"accuracy {100 * proxy.accuracy:.1f}%" in note and f"{proxy.n_labelled:,} customers" in note
    inf = audit_inferred(df, proxy, target="bought", score="score", budget=0.3)
    shown = next(d.value for d in at.dataframe if "verdict_changes" in d.value)
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), inf.comparison.reset_index(drop=True))
    got = next(d.value for d in at.dataframe if "attribute" in d.value and "count" in d.value)
    w = inf.hard.groups[inf.hard.groups["attribute"] == "purchasing_power"]
    assert got["count"].tolist() == w["count"].tolist()


def test_purchasing_power_chosen_on_the_data_page():
    at = _with_upload(customers(), None)
    at = goto(at, "data")
    no_errors(at)
    radio = next(r for r in at.radio if r.label == "Infer purchasing power")
    radio.set_value("spend").run()
    no_errors(at)
    at.selectbox(key=next(k for k in (w.key for w in at.selectbox) if k and k.startswith("d_pp_customer"))) \
        .set_value("customer").run()
    at.selectbox(key=next(k for k in (w.key for w in at.selectbox) if k and k.startswith("d_pp_amount"))) \
        .set_value("basket").run()
    no_errors(at)
    setup = at.session_state["setup"]
    assert setup["infer"] == {"kind": "spend", "customer": "customer", "amount": "basket", "n": 4}
    assert any("Ready:" in s.value for s in at.success)
    assert len(at.get("download_button")) == 3  # the audit of these settings: HTML, Markdown, JSON


def test_who_is_excluded_equals_discover_and_a_subgroup_is_audited_on_the_overview(bank_scores):
    from fairscan.dashboard.state import DEFAULT_SETUP
    from fairscan.discover import discover

    at = fresh("excluded")
    no_errors(at)
    want = discover(bank_scores, target="y", positive_label="yes", score="score", budget=0.2, exclude=["row_id"])
    assert {m.label: m.value for m in at.metric}["Subgroups tested"] == f"{want.meta['tested']:,}"
    table = next(d.value for d in at.dataframe if "subgroup" in d.value)
    listed = want.listed
    assert list(table["subgroup"].str.removeprefix("└ ")) == [w.removeprefix("customers with ") for w in listed["who"]]
    assert list(table["people"]) == [None if s else int(c) for s, c in zip(listed["suppressed"], listed["count"],
                                                                         strict=True)]
    # what a selected row does: the overview audits the subgroup against everyone else
    row = listed[~listed["suppressed"]].iloc[0]
    tiers = {a["attribute"]: 4 for a in want.meta["attributes"] if a["kind"] == "tiers"}
    at = fresh("overview")
    at.session_state["setup"] = {**DEFAULT_SETUP, "subgroup": {
        "conditions": [list(c) for c in row["conditions"]], "who": row["who"], "tiers": tiers}}
    at.run()
    no_errors(at)
    assert any("Auditing a discovered subgroup" in i.value for i in at.info)
    # oracle: the subgroup's rows by pandas, from the groups' labels (quartile tiers: pandas qcut)
    inside = np.ones(len(bank_scores), dtype=bool)
    for attr, group in row["conditions"]:
        if attr in tiers:
            codes = pd.qcut(bank_scores[attr], 4, labels=False, duplicates="drop")
            lo_hi = group.split(" ")[0]
            inside &= (codes + 1).astype("Int64").map(lambda q: f"Q{q}").to_numpy() == lo_hi
        else:
            inside &= bank_scores[attr].astype(str).to_numpy() == group
    assert inside.sum() == row["count"]
    r = fairscan.audit(bank_scores.assign(subgroup=np.where(inside, "in the subgroup", "everyone else")),
                       target="y", positive_label="yes", score="score", budget=0.2, sensitive=["subgroup"],
                       tiers=BANK_TIERS, reference={"subgroup": "everyone else"})
    c = r.verdict_counts()
    assert {m.label: int(m.value) for m in at.metric} == {
        "Fail": c["fail"], "Pass": c["pass"], "Insufficient evidence": c["insufficient"]}


def test_why_equals_explain_for_the_first_failing_group(bank_scores):
    from fairscan.explain import explain

    at = fresh("why")
    no_errors(at)
    label = at.selectbox(key="why_group").value
    r = fairscan.audit(bank_scores, target="y", positive_label="yes", score="score", budget=0.2, tiers=BANK_TIERS)
    f = r.findings[r.findings["verdict"] == "fail"].iloc[0]
    assert label == f"{f['attribute']} = {f['group']} vs {f['reference']}"
    rows = fairscan.datasets.load("bank").iloc[bank_scores["row_id"].to_numpy()].reset_index(drop=True)
    data = rows.assign(**{c: bank_scores[c].to_numpy() for c in bank_scores.columns})  # the join, by hand
    want = explain(data, model="reference:bank", group={f["attribute"]: f["group"]},
                   reference={f["attribute"]: f["reference"]}, tiers=BANK_TIERS, budget=0.2)
    got = {m.label: m.value for m in at.metric}
    assert got["Gap"] == f"{100 * want.meta['gap']:+.1f} pts"
    assert got["Explained by the features"] == f"{100 * want.meta['explained']:+.1f} pts"
    table = next(d.value for d in at.dataframe if "feature" in d.value)
    assert list(table["feature"]) == list(want.contributions["feature"])


def test_compare_page_equals_the_two_models_decisions():
    """The default comparison (bank's reference model against its logistic preset on the
    held-out rows, budget 20%): the verdicts are the library's, and each group's gained and
    lost offers equal the two models' top 20% taken independently with pandas."""
    from fairscan import datasets, modeling

    at = fresh("compare")
    no_errors(at)
    assert [s.value for s in at.selectbox][:2] == ["reference model (bank, gradient boosting)",
                                                    "logistic regression (bank preset: same features and training rows)"]
    table = at.dataframe[0].value
    held = datasets.load("bank", split="holdout")
    k = int(0.2 * len(held))  # a budget fraction is rounded down (documented)
    offered = {}
    for side, model in (("a", "reference:bank"), ("b", modeling.train_preset("bank", model="logistic").estimator)):
        scored, col, _ = modeling.score_frame(held, model)
        order = scored[col].sort_values(ascending=False, kind="stable").index[:k]
        offered[side] = held.index.isin(order)
    age = pd.cut(held["age"], [-np.inf, 24, 59, np.inf], labels=["(..24]", "(24..59]", "(59..]"])
    for grp in ["(..24]", "(24..59]", "(59..]"]:
        inside = (age == grp).to_numpy()
        row = table[(table["group"] == f"age = {grp}")].iloc[0]
        assert row["gained (B only)"] == int((offered["b"] & ~offered["a"] & inside).sum())
        assert row["lost (A only)"] == int((offered["a"] & ~offered["b"] & inside).sum())
        assert row["people"] == int(inside.sum())
    r = fairscan.compare(held, models=["reference:bank", modeling.train_preset("bank", model="logistic").estimator],
                         target="y", positive_label="yes", budget=0.2, tiers=BANK_TIERS)
    c = r.verdict_counts()
    assert c["worse"] > 0  # a data fact of bank: the logistic preset offers older customers less
    shown = unescape(at.warning[0].value if c["worse"] else at.success[0].value)
    assert f"{c['worse']} worse · {c['insufficient']} insufficient evidence" in shown
    assert len(at.get("download_button")) == 3


def test_compare_page_with_uploaded_score_and_decision_columns():
    """Uploaded scored data: two score columns compared at the data page's budget equal the
    library's comparison; with a decision rule of fixed 0/1 columns, two decision columns."""
    from streamlit.testing.v1 import AppTest

    rng = np.random.default_rng(11)
    n = 3000
    base = rng.normal(0, 1, n)
    df = pd.DataFrame({"region": rng.choice(["n", "s", "e"], n), "bought": rng.integers(0, 2, n),
                       "old": base + rng.normal(0, 0.4, n), "new": base + rng.normal(0, 0.4, n)})
    df["offer_old"], df["offer_new"] = (df["old"] > 0.5).astype(int), (df["new"] > 0.4).astype(int)
    for decision, a, b, kw in (
            ("budget", "score column 'old'", "score column 'new'", dict(scores=["old", "new"], budget=0.3)),
            ("prediction", "decision column 'offer_old'", "decision column 'offer_new'",
             dict(predictions=["offer_old", "offer_new"]))):
        at = AppTest.from_file(APP, default_timeout=180)
        at.session_state["uploads"] = {"upload:scored:t": {"df": df, "name": "c.csv", "kind": "scored"}}
        at.session_state["setup"] = {
            "source": "upload", "dataset": None, "upload_id": "upload:scored:t", "target": "bought",
            "positive_label": None, "decision": decision, "score": "old", "budget": 0.3, "threshold": None,
            "prediction": "offer_old", "sensitive": ["region"], "tiers": {}, "infer": None}
        at = goto(at, "compare")
        no_errors(at)
        at.selectbox(key="c_pick_A").set_value(a)
        at.selectbox(key="c_pick_B").set_value(b)
        at.run()
        no_errors(at)
        r = fairscan.compare(df, target="bought", sensitive=["region"], **kw)
        table = at.dataframe[0].value
        sr = r.changes[r.changes["metric"] == "selection_rate"]
        assert list(table["group"]) == [f"region = {g}" for g in sr["group"]]
        assert list(table["people"]) == list(sr["count"])
        sw = r.switches.set_index("group")
        assert list(table["gained (B only)"]) == [sw.loc[g, "gained"] for g in sr["group"]]
        assert list(table["lost (A only)"]) == [sw.loc[g, "lost"] for g in sr["group"]]


def test_a_counts_file_is_audited_on_the_overview_and_row_pages_say_why_not(bank_scores):
    """A counts file as the current analysis: the overview's verdicts equal the row-level
    audit's; pages that need rows give one line that says so (no traceback)."""
    from streamlit.testing.v1 import AppTest

    kw = dict(target="y", positive_label="yes", score="score", budget=0.2, tiers=BANK_TIERS)
    c = fairscan.counts(bank_scores, **kw)
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["uploads"] = {"upload:counts:t": {"counts": c, "name": "bank-counts.parquet", "kind": "counts"}}
    at.session_state["setup"] = {
        "source": "counts", "dataset": None, "upload_id": "upload:counts:t", "target": "y", "positive_label": "yes",
        "decision": "counts", "score": None, "budget": None, "threshold": None, "prediction": None,
        "sensitive": ["age", "balance"], "tiers": {}, "infer": None, "reference": {}, "subgroup": None}
    at = goto(at, "overview")
    no_errors(at)
    v = fairscan.audit(bank_scores, **kw).verdict_counts()
    assert {m.label: int(m.value) for m in at.metric} == {
        "Fail": v["fail"], "Pass": v["pass"], "Insufficient evidence": v["insufficient"]}
    assert "(counts file)" in at.sidebar.markdown[0].value
    for path in ("excluded", "compare", "mitigations", "explorer"):
        at = goto(at, path)
        assert not at.exception, path
        assert [e.value for e in at.error] == ([
            "this page needs the customers' rows, and the current analysis is a counts file (counts only): the "
            "overview audits it; upload scored data on the Data & model page for this page"] if path != "explorer" else
            ["the counts file has no score histograms: count it with --histograms N to explore thresholds and "
             "budgets"]), path
    # with histograms the explorer works from the counts
    at.session_state["uploads"]["upload:counts:t"]["counts"] = fairscan.counts(bank_scores, histograms=50, **kw)
    at.session_state["setup"] = {**at.session_state["setup"], "upload_id": "upload:counts:t"}
    st_cache_clear()
    at = goto(at, "explorer")
    no_errors(at)
    assert at.metric  # the offered share at the cut


def st_cache_clear() -> None:
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()


def test_spend_tiers_for_uploaded_recommendation_users_by_hand():
    """The recommendations page's spend tiers from a transactions file (the audit's
    --infer-tier spend rule), on a case computed by hand: totals 10, 1, 30, 2, 3, 50 and 8 for
    customers 1-7; the median total is 8, so 2, 4, 5 and 7 are in the lower tier; customer 8
    bought nothing and has no tier (the recommendation audit's 'unknown')."""
    from fairscan.dashboard.state import spend_tiers_of

    tx = pd.DataFrame({"cust": [1, 1, 2, 3, 3, 3, 4, 5, 6, 7], "amt": [5, 5, 1, 10, 10, 10, 2, 3, 50, 8.0]})
    users = pd.DataFrame({"user": [1, 2, 3, 4, 5, 6, 7, 8]})
    out = spend_tiers_of(tx, "cust", "amt", 2, users, "user")
    low, high = "Q1 (..8]", "Q2 (8..]"
    assert out["spend_tier"].tolist()[:7] == [high, low, high, low, low, high, low]
    assert pd.isna(out["spend_tier"].iloc[7])


def test_offer_value_page_equals_the_value_audit_and_its_repair():
    """The bundled case: the page's counts, findings and gap table are fairscan.audit_value's on
    the cleaned Online Retail lines; the repair slider shows repair_values' numbers."""
    from fairscan import datasets
    from fairscan.datasets.cleaning import clean_online_retail
    from fairscan.formatting import number, pct
    from fairscan.mitigation.value_repair import repair_values
    from fairscan.value import audit_value

    at = fresh("value")
    no_errors(at)
    lines = clean_online_retail(datasets.load("online-retail"))[0]
    kw = dict(value="UnitPrice", favourable="lower", infer_tier="spend:CustomerID,amount", within=["StockCode"])
    r = audit_value(lines, tolerance=0.05, cluster="CustomerID", **kw)  # the page's intervals: by customer
    counts = {v: int((r.findings["verdict"] == v).sum()) for v in ("fail", "insufficient", "pass")}
    shown = {m.label: m.value for m in at.metric}
    assert shown["Values audited"] == f"{r.meta['n_values']:,}"
    assert int(shown["Fail"]) == counts["fail"] and int(shown["Pass"]) == counts["pass"]
    text = "\n".join(unescape(m.value) for m in at.markdown)
    for message in r.findings["message"]:
        assert message in text
    table = at.dataframe[0].value
    mean = r.disparities[r.disparities["metric"] == "mean"]
    assert list(table.loc[table["metric"] == "mean", "gap to the reference"]) == [number(d, 3) for d in
                                                                                  mean["difference"]]
    rep = repair_values(lines, tolerance=0.05, cluster="CustomerID", **kw)
    at.select_slider(key="val_amount").set_value(0.5).run()
    no_errors(at)
    point = next(p for p in rep.points if p["amount"] == 0.5)
    shown = {m.label: m.value for m in at.metric}
    assert int(shown["Failing gaps"]) == point["fail"]
    assert shown["Largest mean gap"] == pct(point["largest_mean_gap"])
    assert shown["Rows getting a worse value"] == pct(point["share_worse"])
