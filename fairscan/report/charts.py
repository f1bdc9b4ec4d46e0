"""Vega-Lite chart specifications (plain dicts) for the dashboard.

Built as dicts rather than with Altair: Altair validates every channel against the Vega-Lite
JSON schema on construction and again on conversion (0.2–0.4 s per page, more than the audit
itself, and again on every slider move), and importing it costs half a second at start-up.
The specs are checked against the Vega-Lite schema in the tests instead. Every chart labels
its marks with their values, so that nothing is told by colour alone.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from fairscan.formatting import number, pct, points
from fairscan.policy import four_fifths_line

__all__ = [
    "BAR", "BELOW", "BETTER", "SCHEMA", "Spec", "before_after", "group_bars", "heatmap", "paired_changes",
    "paired_rates", "pareto", "rate_curves", "strength_lines", "trend", "value_boxes", "value_split", "waterfall",
]

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
BAR = "#4c78a8"
BELOW = "#e45756"
BETTER = "#54a24b"
#: a comparison's verdicts and their colours (the verdict is also written beside each mark)
_VERDICT_COLOURS = {"domain": ["worse", "insufficient", "not worse", "better"],
                    "range": [BELOW, "#9d9d9d", BAR, BETTER]}
Spec = dict[str, Any]


def _values(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready records: native Python types, None for missing values."""
    out = []
    for rec in df.to_dict("records"):
        out.append({str(k): None if v is None or (isinstance(v, float) and math.isnan(v))
                    else v.item() if hasattr(v, "item") else v for k, v in rec.items()})
    return out


def _field(name: str, kind: str = "quantitative", **extra: Any) -> dict[str, Any]:
    return {"field": name, "type": kind, **extra}


def _chart(layers: list[Spec], height: int, data: pd.DataFrame | None = None) -> Spec:
    spec: Spec = {"$schema": SCHEMA, "height": int(height), "layer": layers}
    if data is not None:
        spec["data"] = {"values": _values(data)}
    return spec


def group_bars(rows: pd.DataFrame, metric: str, title: str, *, four_fifths: bool = False) -> Spec | None:
    """Horizontal bars per group with 95% intervals and value labels (rate and group size);
    with ``four_fifths``, a dashed line at 80% of the highest rate and the groups below it
    marked in colour *and* in their labels. None when no group may be shown."""
    df = rows[~rows["suppressed"].astype(bool) & rows[metric].notna()]
    if df.empty:
        return None
    d = pd.DataFrame({"group": df["group"].astype(str).to_numpy(),
                      "value": df[metric].astype(float).to_numpy(),
                      "lo": df[f"{metric}_ci_low"].astype(float).to_numpy(),
                      "hi": df[f"{metric}_ci_high"].astype(float).to_numpy(),
                      "n": df["count"].astype(int).to_numpy()})
    line = four_fifths_line(float(d["value"].max())) if four_fifths else None
    below = (d["value"] < line) if line is not None else pd.Series(False, index=d.index)
    d["status"] = ["below the four-fifths line" if b else "at or above" for b in below]
    d["label"] = [f"{100 * v:.1f}% (n={n:,})" + (" ▼ below 4/5" if b else "")
                  for v, n, b in zip(d["value"], d["n"], below, strict=True)]
    top = max(1e-9, float(d["hi"].max()))
    y = _field("group", "nominal", sort=list(d["group"]), title=None, axis={"labelLimit": 260})
    x_title = title + (f" · dashed: four-fifths line {100 * line:.1f}%" if line else "")
    layers: list[Spec] = [
        {"mark": {"type": "bar", "height": {"band": 0.6}},
         "encoding": {"y": y, "x": _field("value", title=x_title, axis={"format": "%"},
                                          scale={"domain": [0, min(1.0, top * 1.45 + 0.02)]}),
                      "color": _field("status", "nominal", legend=None, scale={
                          "domain": ["at or above", "below the four-fifths line"], "range": [BAR, BELOW]}),
                      "tooltip": [_field("group", "nominal"), _field("value", format=".1%", title=title),
                                  _field("lo", format=".1%", title="95% CI low"),
                                  _field("hi", format=".1%", title="95% CI high"),
                                  _field("n", format=",", title="people")]}},
        {"mark": {"type": "rule", "strokeWidth": 2, "color": "#222"},
         "encoding": {"y": y, "x": _field("lo"), "x2": {"field": "hi"}}},
        {"mark": {"type": "text", "align": "left", "dx": 5, "fontSize": 12},
         "encoding": {"y": y, "x": _field("hi"), "text": _field("label", "nominal")}},
    ]
    if line is not None:
        layers.append({"data": {"values": [{"x": line}]},
                       "mark": {"type": "rule", "strokeDash": [5, 4], "color": "#555", "strokeWidth": 1.5},
                       "encoding": {"x": _field("x")}})
    # no chart title: Streamlit collapses a titled layer chart; the page writes a heading above
    return _chart(layers, 70 + 46 * len(d), d)


def rate_curves(curve: pd.DataFrame, metric: str, label: str, x: str, x_title: str, current: float,
                at_cut: pd.DataFrame) -> Spec:
    """A rate against the cut, one line per group (colour and dash), the four-fifths band for
    the selection rate, and the current cut with each group's value labelled."""
    keep = list(dict.fromkeys(["group", "threshold", "offered_share", metric]))
    df = curve.loc[curve[metric].notna(), keep].round(5)
    x_enc = _field(x, title=x_title, axis={"format": "%" if x == "offered_share" else ".2f"})
    y_enc = _field(metric, title=label, axis={"format": "%"}, scale={"domain": [0, 1]})
    colour = _field("group", "nominal", title="group")
    layers: list[Spec] = []
    if metric == "selection_rate":
        band = curve.drop_duplicates(x)[[x, "four_fifths_line", "top_selection_rate"]].dropna().round(5)
        layers.append({"data": {"values": _values(band)}, "mark": {"type": "area", "opacity": 0.18, "color": "#999"},
                       "encoding": {"x": x_enc, "y": _field("four_fifths_line"),
                                    "y2": {"field": "top_selection_rate"}}})
    layers.append({"data": {"values": _values(df)}, "mark": {"type": "line", "strokeWidth": 2},
                   "encoding": {"x": x_enc, "y": y_enc, "color": colour,
                                "strokeDash": _field("group", "nominal", title="group"),
                                "tooltip": [_field("group", "nominal"), _field("threshold", format=".4f"),
                                            _field("offered_share", format=".1%", title="share offered"),
                                            _field(metric, format=".1%", title=label)]}})
    pts = at_cut.loc[at_cut[metric].notna(), ["group", metric]].copy()
    pts["group"] = pts["group"].astype(str)
    pts["x"] = float(current)
    pts["label"] = [f"{g}: {100 * v:.1f}%" for g, v in zip(pts["group"], pts[metric], strict=True)]
    at_x = _field("x")
    cut = {"values": _values(pts)}
    layers += [
        {"data": cut, "mark": {"type": "rule", "color": "#222", "strokeDash": [4, 3]}, "encoding": {"x": at_x}},
        {"data": cut, "mark": {"type": "point", "filled": True, "size": 60, "color": "#222"},
         "encoding": {"x": at_x, "y": y_enc}},
        {"data": cut, "mark": {"type": "text", "align": "left", "dx": 8, "fontSize": 12},
         "encoding": {"x": at_x, "y": y_enc, "text": _field("label", "nominal"), "color": colour}},
    ]
    return _chart(layers, 380)


def pareto(table: pd.DataFrame, utility: str, disparity_title: str) -> Spec:
    """Mitigation settings as points (utility against disparity), shaped by whether they are on
    the Pareto front, the front joined by a dashed line, baseline and defaults labelled."""
    df = table[table["disparity"].notna()].copy()
    d = pd.DataFrame({"method": df["method"].astype(str), "kind": df["kind"].astype(str),
                      "disparity": df["disparity"].astype(float), "utility": df[utility].astype(float),
                      "pareto": df["pareto"].astype(bool), "meets_policy": df["meets_policy"].astype(str)})
    d["setting"] = [m if k == "baseline" else f"{m} {'' if pd.isna(s) else f'{s:g}'}".strip()
                    for k, m, s in zip(d["kind"], d["method"], df["strength"], strict=True)]
    d["label"] = [f"{s} ({x:.3f}, {u:,.3g})" for s, x, u in zip(d["setting"], d["disparity"], d["utility"],
                                                                 strict=True)]
    d["point"] = ["unmitigated" if k == "baseline" else "on the Pareto front" if p else "dominated"
                  for k, p in zip(d["kind"], d["pareto"], strict=True)]
    d = d.drop_duplicates(["setting", "disparity", "utility"])
    x = _field("disparity", title=f"{disparity_title} (lower is fairer)")
    y = _field("utility", title=utility.replace("_", " ") + " (higher is better)", scale={"zero": False})
    front = d[d["pareto"]].sort_values("disparity")
    return _chart([
        {"data": {"values": _values(front)}, "mark": {"type": "line", "color": "#999", "strokeDash": [3, 3]},
         "encoding": {"x": x, "y": y}},
        {"mark": {"type": "point", "filled": True, "size": 110},
         "encoding": {"x": x, "y": y, "color": _field("method", "nominal"),
                      "shape": _field("point", "nominal", title="setting"),
                      "tooltip": [_field("setting", "nominal"), _field("disparity", format=".3f"),
                                  _field("utility", format=",.4g"), _field("meets_policy", "nominal")]}},
        {"transform": [{"filter": "datum.kind != 'curve'"}],
         "mark": {"type": "text", "align": "left", "dx": 8, "dy": -8, "fontSize": 11},
         "encoding": {"x": x, "y": y, "text": _field("label", "nominal"), "color": _field("method", "nominal")}},
    ], 420, d)


def before_after(df: pd.DataFrame, title: str) -> Spec:
    """Grouped bars: each group's rate before (grey) and after (blue) a mitigation, labelled."""
    long = df.melt(id_vars=["group"], value_vars=["before", "after"], var_name="when", value_name="rate").dropna()
    long["group"] = long["group"].astype(str)
    long["label"] = [f"{100 * v:.1f}%" for v in long["rate"]]
    y = _field("group", "nominal", sort=[str(g) for g in df["group"]], title=None)
    y_off = _field("when", "nominal", sort=["before", "after"])
    return _chart([
        {"mark": "bar", "encoding": {"y": y, "yOffset": y_off, "x": _field("rate", title=title, axis={"format": "%"}),
                                     "color": _field("when", "nominal", sort=["before", "after"],
                                                     scale={"range": ["#bbbbbb", BAR]})}},
        {"mark": {"type": "text", "align": "left", "dx": 4},
         "encoding": {"y": y, "yOffset": y_off, "x": _field("rate"), "text": _field("label", "nominal")}},
    ], max(140, 52 * len(df)), long)


def heatmap(df: pd.DataFrame, value: str, title: str, users: list[str], items: list[str],
            *, x_title: str = "item group", y_title: str = "user group") -> Spec:
    """User group x item group cells shaded by a rate in [0, 1] and labelled with it;
    suppressed cells are left out."""
    d = df.loc[~df["suppressed"].astype(bool), ["user_group", "item_group", value]].copy()
    d[["user_group", "item_group"]] = d[["user_group", "item_group"]].astype(str)
    d["label"] = [f"{100 * v:.0f}%" for v in d[value]]
    x = _field("item_group", "nominal", sort=items, title=x_title,
               axis={"labelAngle": -30, "labelLimit": 200, "labelOverlap": False})
    y = _field("user_group", "nominal", sort=users, title=y_title)
    return _chart([
        {"mark": "rect", "encoding": {"x": x, "y": y, "color": _field(value, title=title, scale={
            "scheme": "blues", "domain": [0, 1]}), "tooltip": [_field("user_group", "nominal"),
                                                               _field("item_group", "nominal"),
                                                               _field(value, format=".1%")]}},
        {"mark": {"type": "text", "fontSize": 12},
         "encoding": {"x": x, "y": y, "text": _field("label", "nominal"),
                      "color": {"condition": {"test": f"datum['{value}'] > 0.55", "value": "white"},
                                "value": "black"}}},
    ], 36 * len(users) + 110, d)


def strength_lines(tc: pd.DataFrame, value: str, title: str, users: list[str], *,
                   group_title: str = "user group", everyone: str = "all users") -> Spec:
    """A rate against the re-ranking strength, one line per user group (colour and dash), the
    all-users line labelled with its values."""
    d = tc.loc[tc[value].notna(), ["strength", "user_group", value]].copy()
    d["who"] = [everyone if g == "(all)" else str(g) for g in d["user_group"]]
    d = d.drop(columns="user_group")
    order = [everyone, *users]
    x, y = _field("strength", title="re-ranking strength"), _field(value, title=title, axis={"format": "%"})
    labelled = d[d["who"] == everyone].assign(label=lambda t: [f"{100 * v:.1f}%" for v in t[value]])
    return _chart([
        {"mark": {"type": "line", "point": True},
         "encoding": {"x": x, "y": y, "color": _field("who", "nominal", sort=order, title=group_title),
                      "strokeDash": _field("who", "nominal", sort=order, title=group_title),
                      "tooltip": [_field("who", "nominal"), _field("strength"), _field(value, format=".1%")]}},
        {"data": {"values": _values(labelled)}, "mark": {"type": "text", "dy": -10, "fontWeight": "bold"},
         "encoding": {"x": x, "y": y, "text": _field("label", "nominal")}},
    ], 340, d)


def trend(df: pd.DataFrame, title: str) -> Spec:
    """Each group's difference to the reference, review run by review run, labelled in points."""
    d = df[["run", "group", "difference"]].copy()
    d["group"] = d["group"].astype(str)
    d["label"] = [f"{100 * v:+.1f}" for v in d["difference"]]
    x, y = _field("run", "ordinal", title="review run"), _field("difference", title=title, axis={"format": "%"})
    colour = _field("group", "nominal")
    return _chart([
        {"mark": {"type": "line", "point": True},
         "encoding": {"x": x, "y": y, "color": colour, "strokeDash": _field("group", "nominal")}},
        {"mark": {"type": "text", "dy": -9}, "encoding": {"x": x, "y": y, "text": _field("label", "nominal"),
                                                          "color": colour}},
    ], 320, d)


def waterfall(steps: list[tuple[str, float, float]]) -> Spec:
    """From the reference's rate to the group's: a bar per step (label, start, end) in order,
    the two ends as totals, each feature's step red where it lowers the rate, green where it
    raises it, with its size in points."""
    rows = []
    for i, (label, start, end) in enumerate(steps):
        total = i in (0, len(steps) - 1)
        rows.append({"order": i, "step": label, "start": start, "end": end,
                     "kind": "total" if total else "lowers" if end < start else "raises",
                     "text": f"{100 * end:.1f}%" if total else f"{100 * (end - start):+.1f} pts"})
    d = pd.DataFrame(rows)
    x = _field("step", "nominal", sort={"field": "order"}, title=None, axis={"labelAngle": -30, "labelLimit": 140})
    colour = {"field": "kind", "type": "nominal", "title": None,
              "scale": {"domain": ["total", "lowers", "raises"], "range": [BAR, BELOW, "#54a24b"]}}
    return _chart([
        {"mark": {"type": "bar"}, "encoding": {
            "x": x, "y": _field("start", title="selection rate", axis={"format": "%"}), "y2": {"field": "end"},
            "color": colour,
            "tooltip": [_field("step", "nominal"), _field("text", "nominal", title="value")]}},
        {"mark": {"type": "text", "dy": -6}, "encoding": {
            "x": x, "y": {"field": "end", "type": "quantitative"}, "text": _field("text", "nominal")}},
    ], 300, d)


def _compared(rows: pd.DataFrame) -> pd.DataFrame:
    """The unsuppressed rows of one metric's comparison, each group named 'attribute = group'."""
    df = rows[~rows["suppressed"].astype(bool) & rows["value_a"].notna()]
    return df.assign(who=[f"{a} = {g}" for a, g in zip(df["attribute"], df["group"], strict=True)])


def paired_rates(rows: pd.DataFrame, names: tuple[str, str], title: str) -> Spec | None:
    """Per group, model A's rate (grey) and model B's (coloured by the verdict on the change),
    a line between them, and 'A% → B% · verdict' written beside: one metric of a paired
    comparison (``fairscan.compare``'s changes), with the group's size. None when no group may
    be shown."""
    df = _compared(rows)
    if df.empty:
        return None
    d = pd.DataFrame({"who": df["who"].to_numpy(), "a": df["value_a"].astype(float).to_numpy(),
                      "b": df["value_b"].astype(float).to_numpy(), "verdict": df["verdict"].astype(str).to_numpy(),
                      "n": df["count"].astype(int).to_numpy()})
    d["right"] = d[["a", "b"]].max(axis=1)
    d["label"] = [f"{pct(a)} → {pct(b)} (n={n:,}) · {v}"
                  for a, b, n, v in zip(d["a"], d["b"], d["n"], d["verdict"], strict=True)]
    y = _field("who", "nominal", sort=list(d["who"]), title=None, axis={"labelLimit": 260})
    top = max(1e-9, float(d["right"].max()))
    x = _field("a", title=f"{title}: {names[0]} (grey) → {names[1]} (coloured)", axis={"format": "%"},
               scale={"domain": [0, min(1.0, top * 1.6 + 0.02)]})
    tip = [_field("who", "nominal", title="group"), _field("a", format=".1%", title=names[0]),
           _field("b", format=".1%", title=names[1]), _field("verdict", "nominal"), _field("n", format=",", title="people")]
    return _chart([
        {"mark": {"type": "rule", "color": "#999", "strokeWidth": 2},
         "encoding": {"y": y, "x": x, "x2": {"field": "b"}}},
        {"mark": {"type": "point", "filled": True, "size": 90, "color": "#9d9d9d"},
         "encoding": {"y": y, "x": _field("a"), "tooltip": tip}},
        {"mark": {"type": "point", "filled": True, "size": 110, "shape": "diamond"},
         "encoding": {"y": y, "x": _field("b"), "tooltip": tip,
                      "color": _field("verdict", "nominal", legend=None, scale=_VERDICT_COLOURS)}},
        {"mark": {"type": "text", "align": "left", "dx": 9, "fontSize": 12},
         "encoding": {"y": y, "x": _field("right"), "text": _field("label", "nominal")}},
    ], 70 + 40 * len(d), d)


def paired_changes(rows: pd.DataFrame, title: str, margin: float, harm_sign: int) -> Spec | None:
    """Per group, the change B − A in points with its paired 95% interval, coloured and
    labelled by the verdict; a solid line at no change and a dashed one at the margin on the
    harmful side (``harm_sign``: -1 when a lower rate harms the group). None when no group
    may be shown."""
    df = _compared(rows)
    if df.empty:
        return None
    d = pd.DataFrame({"who": df["who"].to_numpy(), "change": df["change"].astype(float).to_numpy(),
                      "lo": df["change_ci_low"].astype(float).to_numpy(),
                      "hi": df["change_ci_high"].astype(float).to_numpy(),
                      "verdict": df["verdict"].astype(str).to_numpy()})
    d["label"] = [f"{points(c)} pts ({points(lo)} to {points(hi)}) · {v}"
                  for c, lo, hi, v in zip(d["change"], d["lo"], d["hi"], d["verdict"], strict=True)]
    y = _field("who", "nominal", sort=list(d["who"]), title=None, axis={"labelLimit": 260})
    span = max(float(np.nanmax(np.abs(d[["lo", "hi", "change"]].to_numpy()))) if d[["lo", "hi"]].notna().any().any()
               else 0.0, abs(margin), 1e-3)
    x = _field("change", title=f"{title}: change B − A · dashed: margin {number(100 * margin, 1)} pts",
               axis={"format": "+.0%"}, scale={"domain": [-1.6 * span, 1.6 * span]})
    colour = _field("verdict", "nominal", legend=None, scale=_VERDICT_COLOURS)
    return _chart([
        {"data": {"values": [{"x": 0.0}]}, "mark": {"type": "rule", "color": "#333"}, "encoding": {"x": _field("x")}},
        {"data": {"values": [{"x": float(harm_sign * margin)}]},
         "mark": {"type": "rule", "strokeDash": [5, 4], "color": "#555", "strokeWidth": 1.5},
         "encoding": {"x": _field("x")}},
        {"mark": {"type": "rule", "strokeWidth": 2}, "encoding": {"y": y, "x": _field("lo"), "x2": {"field": "hi"},
                                                                 "color": colour}},
        {"mark": {"type": "point", "filled": True, "size": 90},
         "encoding": {"y": y, "x": x, "color": colour,
                      "tooltip": [_field("who", "nominal", title="group"), _field("change", format="+.1%"),
                                  _field("lo", format="+.1%", title="95% CI low"),
                                  _field("hi", format="+.1%", title="95% CI high"), _field("verdict", "nominal")]}},
        {"mark": {"type": "text", "align": "left", "dx": 8, "dy": -8, "fontSize": 11},
         "encoding": {"y": y, "x": _field("change"), "text": _field("label", "nominal")}},
    ], 70 + 40 * len(d), d)


def value_boxes(rows: pd.DataFrame, title: str) -> Spec | None:
    """Each group's value distribution as a box: p10 to p90 (rule), p25 to p75 (bar), the
    median (tick) and the mean (dot), with the median and mean written beside it. Suppressed
    groups are left out. None when no group may be shown."""
    df = rows[~rows["suppressed"].astype(bool)]
    if df.empty:
        return None
    d = pd.DataFrame({"group": [str(g) + (" (reference)" if r else "") for g, r in
                                zip(df["group"], df["reference"], strict=True)],
                      **{k: df[k].astype(float).to_numpy() for k in ("p10", "p25", "median", "p75", "p90", "mean")},
                      "n": df["count"].astype(int).to_numpy(),
                      "mean_lo": df["mean_ci_low"].astype(float).to_numpy(),
                      "mean_hi": df["mean_ci_high"].astype(float).to_numpy()})
    d["label"] = [f"median {number(m)} · mean {number(a)} (95% CI {number(lo)} to {number(hi)}; n={n:,})"
                  for m, a, lo, hi, n in zip(d["median"], d["mean"], d["mean_lo"], d["mean_hi"], d["n"], strict=True)]
    y = _field("group", "nominal", sort=list(d["group"]), title=None, axis={"labelLimit": 260})
    tip = [_field("group", "nominal")] + [_field(k, format=",.2f") for k in ("p10", "p25", "median", "p75", "p90",
                                                                            "mean")]
    layers: list[Spec] = [
        {"mark": {"type": "rule", "color": "#555"},
         "encoding": {"y": y, "x": _field("p10", title=title, scale={"domain": [
             min(0.0, float(d["p10"].min())), float(d["p90"].max()) * 1.6 if float(d["p90"].max()) > 0 else 1.0]}),
             "x2": {"field": "p90"}, "tooltip": tip}},
        {"mark": {"type": "bar", "height": {"band": 0.5}, "color": BAR, "opacity": 0.55},
         "encoding": {"y": y, "x": _field("p25"), "x2": {"field": "p75"}, "tooltip": tip}},
        {"mark": {"type": "tick", "color": "#111", "thickness": 2}, "encoding": {"y": y, "x": _field("median")}},
        {"mark": {"type": "point", "filled": True, "color": BELOW, "size": 60}, "encoding": {"y": y, "x": _field("mean")}},
        {"mark": {"type": "text", "align": "left", "dx": 6, "fontSize": 12},
         "encoding": {"y": y, "x": _field("p90"), "text": _field("label", "nominal")}},
    ]
    return _chart(layers, 70 + 46 * len(d), d)


def value_split(rows: pd.DataFrame, title: str) -> Spec | None:
    """Per group, its gap to the reference split in two: within strata and from the strata
    mix (with their 95% intervals), beside the total (its interval is the mean's, in the gap
    table); each bar labelled with its value. None when no group may be shown."""
    df = rows[~rows["suppressed"].astype(bool)]
    if df.empty:
        return None
    parts = [("total", "total gap"), ("within", "within strata"), ("composition", "from the mix")]
    d = pd.DataFrame([{"group": str(r["group"]), "part": name, "value": float(r[k]),
                       "lo": None if k == "total" else float(r[f"{k}_ci_low"]),
                       "hi": None if k == "total" else float(r[f"{k}_ci_high"])}
                      for r in df.to_dict("records") for k, name in parts])
    d["label"] = [number(v, 3) + ("" if lo is None or (isinstance(lo, float) and math.isnan(lo)) else
                                  f" (95% CI {number(lo, 3)} to {number(hi, 3)})")
                  for v, lo, hi in zip(d["value"], d["lo"], d["hi"], strict=True)]
    y = _field("part", "nominal", sort=[p for _, p in parts], title=None)
    layers: list[Spec] = [
        {"mark": {"type": "bar"},
         "encoding": {"y": y, "x": _field("value", title=title),
                      "color": _field("part", "nominal", sort=[p for _, p in parts], legend=None,
                                      scale={"range": ["#555", BELOW, BAR]}),
                      "tooltip": [_field("group", "nominal"), _field("part", "nominal"),
                                  _field("value", format=",.3f")]}},
        {"mark": {"type": "rule", "strokeWidth": 2, "color": "#222"},
         "encoding": {"y": y, "x": _field("lo"), "x2": {"field": "hi"}}},
        {"mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 12},
         "encoding": {"y": y, "x": _field("value"), "text": _field("label", "nominal")}},
    ]
    spec = _chart(layers, 90, d)
    return {"$schema": SCHEMA, "data": spec.pop("data"), "facet": {"row": _field("group", "nominal", title=None)},
            "spec": {"height": 90, "layer": layers}}
