"""Threshold & budget explorer: every group's rates as the cut moves, from score histograms."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from fairscan.dashboard.state import get_explorer, get_setup, run_audit
from fairscan.dashboard.widgets import downloads, group_table, md, show_chart
from fairscan.report import charts


def page_explorer() -> None:
    setup = get_setup()
    st.title("Threshold & budget explorer")
    if setup["decision"] == "prediction":
        st.info("The explorer moves a cut along a score; this analysis uses a fixed decision column. Choose a score "
                "column on the Data & model page.", icon=":material/info:")
        return
    ex = get_explorer(setup)
    st.caption("Move the cut: every group's rates come at once from score histograms built once "
               f"({len(ex.thresholds):,} cut points" + (", every distinct score" if ex.exact else
                                                       ", quantiles of the scores") + ").")
    modes = {"budget": "Campaign budget", "threshold": "Score threshold"}
    mode = st.segmented_control("Move", list(modes), format_func=modes.get, key="ex_mode",
                                default="threshold" if setup["decision"] == "threshold" else "budget") or "budget"
    if mode == "budget":
        start = round(100 * setup["budget"]) if setup["decision"] == "budget" else 20
        pct_ = st.slider("Budget: share of customers offered (%)", 1, 100, start, key="ex_budget")
        cut = ex.at_budget(pct_ / 100)
    else:
        edges = [float(e) for e in ex.thresholds]
        want = setup["threshold"] if setup["decision"] == "threshold" else ex.at_budget(0.2).threshold
        start = edges[min(len(edges) - 1, int(pd.Index(edges).searchsorted(want)))]
        t = st.select_slider("Offer when score >=", edges, value=start, format_func=lambda v: f"{v:.4f}",
                             key="ex_threshold")
        cut = ex.at_threshold(t)
    c1, c2, c3 = st.columns(3)
    c1.metric("Offered", f"{cut.offered:,}", border=True, help="customers at or above the cut score")
    c2.metric("Share offered", f"{100 * cut.offered_share:.1f}%", border=True)
    c3.metric("Cut score", "—" if math.isinf(cut.threshold) else f"{cut.threshold:.4f}", border=True)
    st.caption(md(cut.note))

    labelled = ex.target is not None
    metrics = [("selection_rate", "offered (95% CI)")]
    if labelled:
        metrics += [("true_positive_rate", "offered if yes"), ("false_negative_rate", "missed if yes (95% CI)")]
    st.subheader("Every group at this cut", divider="gray")
    group_table(cut.groups, metrics, ex.suppress_below, key="ex_groups")

    st.subheader("Rates against the cut", divider="gray")
    c1, c2, c3 = st.columns(3)
    attr = c1.selectbox("Attribute", ex.attributes, key="ex_attr")
    opts = {"selection_rate": "Offered (selection rate)"}
    if labelled:
        opts["false_negative_rate"] = "Missed among those who would say yes"
    metric = c2.radio("Rate", list(opts), format_func=opts.get, key="ex_metric", horizontal=True)
    xs = {"threshold": "Cut score", "offered_share": "Share of all customers offered"}
    x = c3.radio("Horizontal axis", list(xs), format_func=xs.get, key="ex_x", horizontal=True)
    curve = ex.curve(attr, metrics=list(opts), max_points=250)
    current = cut.offered_share if x == "offered_share" else (cut.threshold if not math.isinf(cut.threshold)
                                                               else float(ex.thresholds[-1]))
    show_chart(charts.rate_curves(curve, metric, opts[metric], x, xs[x], current,
                                  cut.groups[cut.groups["attribute"] == attr]), key="ex_chart")
    if metric == "selection_rate":
        st.caption(f"Shaded: the four-fifths band, from 80% of the most-offered group's rate up to that rate. A "
                   f"group below it fails the four-fifths rule at that cut. Here: "
                   f"{md(', '.join(f'{a} {100 * b:.1f}%' for a, b in cut.band.items() if not math.isnan(b)))}.")

    def report(kind: str) -> str:
        r = run_audit(setup, threshold=cut.threshold)
        return {"html": r.to_html, "md": r.to_markdown, "json": r.to_json}[kind]()

    if math.isinf(cut.threshold):
        st.caption("Nobody is offered at this cut: no report.")
    else:
        downloads("fairscan-audit-at-cut", lambda: report("html"), lambda: report("md"), lambda: report("json"),
                  note=f"The full audit (with verdicts) at this cut: offer when score >= {cut.threshold:.6g}.")


page_explorer()
