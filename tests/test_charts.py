"""The dashboard's Vega-Lite specs (fairscan.report.charts).

Each spec is validated against the Vega-Lite JSON schema (the copy that ships with Altair,
a Streamlit dependency: an independent oracle for the dict we build by hand), carries the
library's numbers unchanged, labels its marks with values (not colour alone), leaves out
suppressed groups and is plain JSON (no NaN, no numpy types).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

import fairscan
from fairscan.explore import ThresholdExplorer
from fairscan.modeling import reference_scores
from fairscan.report import charts

altair = pytest.importorskip("altair")
VL_SCHEMA = json.loads((Path(altair.__file__).parent / "vegalite/v6/schema/vega-lite-schema.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(VL_SCHEMA)


def valid(spec: dict) -> dict:
    errors = sorted(VALIDATOR.iter_errors(spec), key=lambda e: e.path)
    assert not errors, [f"{list(e.path)}: {e.message[:200]}" for e in errors[:3]]
    text = json.dumps(spec, allow_nan=False)  # plain JSON: would raise on NaN or numpy types
    assert json.loads(text) == spec
    return spec


def layer_marks(spec: dict) -> list[str]:
    return [ly["mark"] if isinstance(ly["mark"], str) else ly["mark"]["type"] for ly in spec["layer"]]


@pytest.fixture(scope="module")
def bank():
    df = reference_scores("bank")[1]
    return df, fairscan.audit(df, target="y", positive_label="yes", score="score", budget=0.2,
                              tiers={"age": [24, 59], "balance": 4}, sensitive="job")


def test_group_bars_carry_the_audit_numbers_and_the_four_fifths_line(bank):
    _, r = bank
    rows = r.groups[r.groups["attribute"] == "job"]
    spec = valid(charts.group_bars(rows, "selection_rate", "offered", four_fifths=True))
    shown = {v["group"]: v for v in spec["data"]["values"]}
    kept = rows[~rows["suppressed"]]
    assert set(shown) == set(kept["group"])  # suppressed groups are not charted
    for g in kept.itertuples():
        v = shown[g.group]
        assert (v["value"], v["lo"], v["hi"], v["n"]) == (g.selection_rate, g.selection_rate_ci_low,
                                                          g.selection_rate_ci_high, g.count)
        assert f"{100 * g.selection_rate:.1f}% (n={g.count:,})" in v["label"]  # the value is written out
    line = 0.8 * kept["selection_rate"].max()
    assert spec["layer"][-1]["data"]["values"] == [{"x": line}]
    below = {v["group"] for v in spec["data"]["values"] if "below 4/5" in v["label"]}
    assert below == set(kept.loc[kept["selection_rate"] < line, "group"])
    assert layer_marks(spec) == ["bar", "rule", "text", "rule"]


def test_group_bars_none_when_every_group_is_suppressed(bank):
    _, r = bank
    rows = r.groups[r.groups["attribute"] == "job"].assign(suppressed=True)
    assert charts.group_bars(rows, "selection_rate", "offered") is None


def test_rate_curves_equal_the_explorer(bank):
    df, _ = bank
    ex = ThresholdExplorer(df, score="score", target="y", positive_label="yes", tiers={"balance": 4})
    cut = ex.at_budget(0.3)
    curve = ex.curve("balance", max_points=50)
    for metric in ("selection_rate", "false_negative_rate"):
        spec = valid(charts.rate_curves(curve, metric, "rate", "offered_share", "share", cut.offered_share,
                                        cut.groups))
        line = next(ly for ly in spec["layer"] if ly["mark"]["type"] == "line")
        got = pd.DataFrame(line["data"]["values"])
        want = curve.loc[curve[metric].notna(), ["group", "threshold", "offered_share", metric]].round(5)
        np.testing.assert_allclose(got[metric].to_numpy(), want[metric].to_numpy())
        labels = next(ly for ly in spec["layer"] if ly["mark"]["type"] == "text")["data"]["values"]
        assert {v["label"] for v in labels} == {f"{g}: {100 * v:.1f}%" for g, v in
                                                 zip(cut.groups["group"], cut.groups[metric], strict=True)}
        assert ("area" in layer_marks(spec)) == (metric == "selection_rate")  # the four-fifths band


def test_pareto_before_after_heatmap_strength_and_trend_are_valid():
    table = pd.DataFrame({"method": ["unmitigated", "budget", "budget", "threshold"],
                          "kind": ["baseline", "default", "curve", "default"], "strength": [np.nan, 1.0, 0.5, 1.0],
                          "disparity": [0.2, 0.05, 0.1, np.nan], "accuracy": [0.9, 0.88, 0.89, 0.87],
                          "pareto": [True, True, True, False], "meets_policy": [False, True, False, True]})
    spec = valid(charts.pareto(table, "accuracy", "selection-rate difference"))
    assert {v["setting"] for v in spec["data"]["values"]} == {"unmitigated", "budget 1", "budget 0.5"}  # NaN dropped
    assert [v["disparity"] for v in spec["layer"][0]["data"]["values"]] == [0.05, 0.1, 0.2]  # the front, in order

    ba = pd.DataFrame({"group": ["<24", "24-59"], "before": [0.1, 0.3], "after": [0.2, np.nan]})
    spec = valid(charts.before_after(ba, "offered"))
    assert sorted(v["label"] for v in spec["data"]["values"]) == ["10.0%", "20.0%", "30.0%"]

    cells = pd.DataFrame({"user_group": ["low", "low", "high", "high"], "item_group": ["a", "b", "a", "b"],
                          "rate": [0.6, 0.1, 0.2, np.nan], "suppressed": [False, False, False, True]})
    spec = valid(charts.heatmap(cells, "rate", "never shown", ["low", "high"], ["a", "b"]))
    assert [v["label"] for v in spec["data"]["values"]] == ["60%", "10%", "20%"]

    tc = pd.DataFrame({"strength": [0, 0, 1, 1], "user_group": ["(all)", "low", "(all)", "low"],
                       "ndcg": [0.5, 0.4, 0.45, 0.42]})
    spec = valid(charts.strength_lines(tc, "ndcg", "ndcg@2", ["low"], everyone="all scenarios"))
    assert [v["label"] for v in spec["layer"][1]["data"]["values"]] == ["50.0%", "45.0%"]

    t = pd.DataFrame({"run": [1, 2], "group": ["<24", "<24"], "difference": [-0.05, -0.12]})
    assert [v["label"] for v in valid(charts.trend(t, "gap"))["data"]["values"]] == ["-5.0", "-12.0"]


def test_hostile_group_names_stay_data():
    rows = pd.DataFrame({"group": ["<script>alert(1)</script>", "=HYPERLINK(\"x\")"], "selection_rate": [0.5, 0.2],
                         "selection_rate_ci_low": [0.4, 0.1], "selection_rate_ci_high": [0.6, 0.3],
                         "count": [100, 90], "suppressed": [False, False]})
    spec = valid(charts.group_bars(rows, "selection_rate", "offered"))
    # names travel as data values (Vega renders them as text, never as markup or expressions)
    assert [v["group"] for v in spec["data"]["values"]] == list(rows["group"])
    # ... and never inside a Vega expression (filter, test, calculate), where text would run
    exprs = [v for ly in spec["layer"] for v in expressions(ly)]
    assert not any("alert" in e or "HYPERLINK" in e for e in exprs)


def expressions(node) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k in ("test", "filter", "expr", "calculate") and isinstance(v, str)] + [
            e for v in node.values() for e in expressions(v)]
    if isinstance(node, list):
        return [e for v in node for e in expressions(v)]
    return []


@pytest.fixture(scope="module")
def comparison():
    rng = np.random.default_rng(0)
    n = 6000
    g = rng.choice(["north", "south", "east", "tiny"], n, p=[0.4, 0.3, 0.299, 0.001])
    base = rng.normal(0, 1, n)
    df = pd.DataFrame({"g": g, "a": base + rng.normal(0, 0.3, n),
                       "b": base + rng.normal(0, 0.3, n) - np.where(g == "south", 0.4, 0.0)})
    return fairscan.compare(df, scores=["a", "b"], threshold=0.3, sensitive="g", n_boot=200)


def test_paired_rates_and_changes_carry_the_comparison(comparison):
    rows = comparison.changes[comparison.changes["metric"] == "selection_rate"]
    kept = rows[~rows["suppressed"]]
    assert rows["suppressed"].any()  # the tiny group (and its complement)
    rates = valid(charts.paired_rates(rows, ("A", "B"), "share offered"))
    shown = {v["who"]: v for v in rates["data"]["values"]}
    assert set(shown) == {f"g = {g}" for g in kept["group"]}  # suppressed groups are not charted
    for r in kept.itertuples():
        v = shown[f"g = {r.group}"]
        assert (v["a"], v["b"], v["verdict"], v["n"]) == (r.value_a, r.value_b, r.verdict, r.count)
        assert f"{100 * r.value_a:.1f}% → {100 * r.value_b:.1f}% (n={int(r.count):,}) · {r.verdict}" == v["label"]
    changes = valid(charts.paired_changes(rows, "share offered", 0.05, -1))
    values = {v["who"]: v for v in changes["data"]["values"]}
    for r in kept.itertuples():
        v = values[f"g = {r.group}"]
        assert (v["change"], v["lo"], v["hi"]) == (r.change, r.change_ci_low, r.change_ci_high)
        assert v["label"] == (f"{100 * r.change:+.1f} pts ({100 * r.change_ci_low:+.1f} to "
                              f"{100 * r.change_ci_high:+.1f}) · {r.verdict}")
    margin_rule = [ly for ly in changes["layer"] if ly.get("mark", {}).get("strokeDash")]
    assert margin_rule[0]["data"]["values"] == [{"x": -0.05}]  # on the harmful side: fewer offers
    assert values["g = south"]["verdict"] == "worse"
    assert charts.paired_rates(rows[rows["suppressed"]], ("A", "B"), "x") is None


def test_value_charts_are_valid_and_carry_the_value_audit():
    """The value page's box chart holds each shown group's quantiles and mean (suppressed
    groups left out); the split chart each group's total, within and mix parts."""
    from fairscan.value import audit_value
    from tests.test_value import prices

    df = prices(seed=11)
    df = pd.concat([df, pd.DataFrame({"tier": ["tiny"] * 3, "product": "a", "price": 5.0, "w": 1.0, "offered": 1})])
    r = audit_value(df, value="price", favourable="lower", sensitive="tier", within="product", n_boot=20)
    box = valid(charts.value_boxes(r.groups, "price"))
    shown = {v["group"].replace(" (reference)", ""): v for v in box["data"]["values"]}
    assert "tiny" not in shown and set(shown) == set(r.groups.loc[~r.groups["suppressed"].astype(bool), "group"])
    for g in r.groups[~r.groups["suppressed"].astype(bool)].to_dict("records"):
        assert shown[g["group"]]["median"] == g["median"] and shown[g["group"]]["mean"] == g["mean"]
    split = valid(charts.value_split(r.decomposition, "gap"))
    vals = {(v["group"], v["part"]): v["value"] for v in split["data"]["values"]}
    for d in r.decomposition[~r.decomposition["suppressed"].astype(bool)].to_dict("records"):
        assert vals[(d["group"], "within strata")] == pytest.approx(d["within"])
        assert vals[(d["group"], "from the mix")] == pytest.approx(d["composition"])
