"""Overview: the verdicts, in plain words, and every group's rates with intervals."""

from __future__ import annotations

from typing import Any

import streamlit as st

from fairscan.dashboard.state import (
    SUBGROUP,
    cached_inferred_audit,
    current_data,
    get_setup,
    run_audit,
)
from fairscan.dashboard.widgets import VERDICT_LABELS, downloads, group_table, md, show_chart
from fairscan.inferred import INFERRED
from fairscan.narrative import headlines, verdict_sentence
from fairscan.report import charts


def inference_note(setup: dict[str, Any], info: dict[str, Any]) -> None:
    """On the overview: what the inferred tier is, and how much the verdicts depend on it."""
    spec = setup.get("infer")
    if not spec:
        return
    if spec["kind"] == "spend":
        st.info(f"'{INFERRED}' is inferred: spend tiers of each {md(spec['customer'])} by total "
                f"{md(spec['amount'])} ({spec['n']} quantile tiers of customers).", icon=":material/info:")
        return
    proxy = info["proxy"]
    lo, hi = proxy.accuracy_ci
    st.info(f"'{INFERRED}' is predicted from other columns by a proxy model of {md(spec['column'])}: out-of-fold "
            f"accuracy {100 * proxy.accuracy:.1f}% (95% CI {100 * lo:.1f}–{100 * hi:.1f}%) on "
            f"{proxy.n_labelled:,} customers whose tier is known, against {100 * proxy.majority_rate:.1f}% for "
            "always guessing the largest tier.", icon=":material/info:")
    with st.expander("How much the verdicts depend on the inference (hard, soft and observed tiers)"):
        inf = cached_inferred_audit(setup)
        st.caption("Hard: everyone in their most probable tier (the audit above). Soft: everyone counted in every "
                   "tier with their probability. Observed: the customers whose tier is known.")
        st.dataframe(inf.comparison, hide_index=True, key="ov_inferred")


def subgroup_note(setup: dict[str, Any]) -> None:
    """On the overview: the discovered subgroup being audited, and the way back."""
    sub = setup.get("subgroup")
    if not sub:
        return
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.info(f"Auditing a discovered subgroup, '{SUBGROUP}': {md(sub['who'])}, against everyone else.",
            icon=":material/manage_search:")
    if c2.button("Stop auditing it", key="ov_clear_subgroup"):
        st.session_state["setup"] = {**setup, "subgroup": None}
        st.rerun()


def page_overview() -> None:
    setup = get_setup()
    r = run_audit(setup)
    st.title("Overview")
    subgroup_note(setup)
    st.caption(f"{r.meta['n_rows']:,} customers · decision: {md(r.meta['decision']['description'])} · groups "
               f"below {r.meta['settings']['min_group_size']} people get no verdict")
    counts = r.verdict_counts()
    cols = st.columns(3)
    for col, v in zip(cols, ("fail", "pass", "insufficient"), strict=True):
        col.metric(VERDICT_LABELS[v], counts[v], border=True,
                   help={"fail": "A gap outside the tolerance that is unlikely to be chance.",
                         "pass": "The whole interval is within the tolerance.",
                         "insufficient": "Too few people, or too uncertain, to tell."}[v])
    st.markdown(md(verdict_sentence(r)))
    if setup.get("infer"):
        inference_note(setup, current_data(setup)[2])
    heads = headlines(r)
    if heads:
        st.subheader("In plain words", divider="gray")
        st.markdown("\n".join(f"- {md(h.text)}" for h in heads))
    for w in r.meta["warnings"]:
        st.info(md(w), icon=":material/info:")

    labelled = "false_negative_rate" in r.meta["metrics"]
    sup = int(r.meta["settings"]["suppress_below"])
    attrs = r.meta["attributes"]
    # only the open tab is drawn (tabs that track state rerun on a switch): fewer charts to render
    for attr, tab in zip(attrs, st.tabs(attrs, key="ov_tabs", on_change="rerun"), strict=True):
        if tab.open is False:
            continue
        with tab:
            rows = r.groups[r.groups["attribute"] == attr]
            c1, c2 = st.columns(2)
            with c1:
                show_chart(charts.group_bars(rows, "selection_rate", "Offered (selection rate)", four_fifths=True),
                           f"Offered, by {attr} (95% intervals)")
            with c2:
                if labelled:
                    show_chart(charts.group_bars(rows, "false_negative_rate", "Missed among those who would say yes"),
                               f"Missed if they'd say yes, by {attr} (95% intervals)")
                else:
                    st.caption("No outcome column: miss rates need to know who would have said yes.")
            metrics = [("selection_rate", "offered (95% CI)")]
            if labelled:
                metrics += [("true_positive_rate", "offered if yes"), ("false_negative_rate", "missed if yes"),
                            ("base_rate", "would say yes")]
            group_table(rows, metrics, sup, key=f"ov_groups_{attr}")
            n_sup = int(rows["suppressed"].sum())
            if n_sup:
                st.caption(f"{n_sup} group(s) are suppressed and not charted: fewer than {sup} people, or hidden so "
                           "that a smaller group's numbers cannot be worked out from the totals.")
    with st.expander("All verdicts, with the numbers behind them"):
        f = r.findings.assign(order=r.findings["verdict"].map({"fail": 0, "insufficient": 1, "pass": 2}))
        f = f.sort_values(["order", "attribute", "metric"])
        st.dataframe(f, hide_index=True, column_order=["verdict", "attribute", "metric", "group", "message"],
                     key="ov_findings")
    downloads("fairscan-audit", r.to_html, r.to_markdown, r.to_json)


page_overview()
