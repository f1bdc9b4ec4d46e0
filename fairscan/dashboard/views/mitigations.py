"""Mitigations: each method fitted on a training split and compared on held-out customers."""

from __future__ import annotations

import json
import math

import streamlit as st

from fairscan import modeling
from fairscan.dashboard.state import (
    cached_compare,
    current_data,
    full_dataset,
    get_setup,
    groups_of,
    jsonable,
    with_inferred,
)
from fairscan.dashboard.widgets import downloads, md, show_chart
from fairscan.explore import before_after
from fairscan.policy import FOUR_FIFTHS
from fairscan.report import charts

QUICK_METHODS = ("budget",)


def page_mitigations() -> None:
    from fairscan.mitigation import CONSTRAINTS, METHODS
    from fairscan.report.mitigation import render_mitigation_html, render_mitigation_markdown

    setup = get_setup()
    st.title("Mitigations")
    st.caption("Fit each mitigation on a training split and compare them on held-out customers: how much fairer, "
               "at what cost. The recommendation is the most useful setting that meets the policy.")
    if setup["target"] is None:
        st.info("Mitigations need an outcome column (who would have said yes). Choose one on the Data & model page.",
                icon=":material/info:")
        return
    data_id, df, info = current_data(setup)
    if setup["source"] == "dataset":
        name = setup["dataset"]
        _, data, _ = with_inferred(f"full:{name}", full_dataset(name), setup)
        model, drop = f"reference:{name}", []
        st.caption(f"Base model: the {md(name)} reference model, on the same held-out split as the overview.")
    else:
        data, model = df, info.get("model")
        drop = [c for c in (setup["score"], setup["prediction"], info.get("score_column"), modeling.ROW_ID) if c]
        if model is None:
            st.caption("No model was uploaded: fairscan trains its own base model on the other columns "
                       f"(leaving out {md(', '.join(drop))}).")
    presets = {"quick": "Quick: budget re-allocation (seconds)",
               "standard": "Budget re-allocation and group thresholds (about a minute on bank)",
               "all": "All six methods (a few minutes on bank)", "custom": "Choose methods"}
    with st.form("mit_form"):
        preset = st.radio("Methods", list(presets), format_func=presets.get, key="mit_preset")
        chosen = st.multiselect("Methods (when choosing)", list(METHODS), default=["budget", "threshold"],
                                key="mit_methods")
        c1, c2, c3 = st.columns(3)
        constraint = c1.selectbox("Constraint", list(CONSTRAINTS), key="mit_constraint",
                                  format_func=lambda c: c.replace("_", " "))
        min_ratio = c2.slider("Policy: selection-rate ratio at least", 0.5, 1.0, FOUR_FIFTHS, 0.05, key="mit_ratio")
        sweep = c3.checkbox("Sweep strengths (the trade-off curve)", True, key="mit_sweep")
        run = st.form_submit_button("Run comparison", type="primary", icon=":material/play_arrow:")
    methods = {"quick": list(QUICK_METHODS), "standard": ["budget", "threshold"], "all": list(METHODS)}.get(
        preset, chosen)
    budget = setup["budget"] if setup["decision"] == "budget" else None
    key = json.dumps({"data_id": data_id, "target": setup["target"], "positive_label": setup["positive_label"],
                      "sensitive": groups_of(setup), "tiers": setup["tiers"], "methods": methods,
                      "constraint": constraint, "budget": budget, "sweep": sweep, "min_ratio": min_ratio,
                      "drop": drop, "dataset": setup.get("dataset")}, sort_keys=True, default=jsonable)
    if run:
        if not methods:
            st.warning("Choose at least one method.", icon=":material/warning:")
            return
        with st.spinner(f"Comparing {', '.join(methods)} on held-out customers…"):
            cached_compare(key, data, model)
        st.session_state["mit_key"] = key
    key = st.session_state.get("mit_key")
    if key is None or json.loads(key)["data_id"] != data_id:
        st.info("Choose the methods and press **Run comparison**. Results are kept for this session.",
                icon=":material/info:")
        return
    with st.spinner("Loading the comparison…"):
        res = cached_compare(key, data, model)
    rec = res.recommended
    if rec.get("method") in (None, "none"):
        (st.success if rec.get("method") == "none" else st.warning)(md(rec["why"]))
    else:
        strength = "" if rec.get("strength") is None else f" at strength {rec['strength']:g}"
        st.success(f"Recommended: **{md(rec['method'])}**{strength} — {md(rec['why'])}.", icon=":material/thumb_up:")
    meta = res.meta
    st.caption(f"Attribute: {md(meta['attribute'])} · held-out customers: {meta['n_test']:,} · " +
               (f"budget: {meta['budget']:,} offers" if meta["budget"] else "offer when score >= 0.5") +
               f" · utility: {meta['utility_metric'].replace('_', ' ')}")
    table = res.table()
    st.subheader("Trade-off: utility against disparity", divider="gray")
    show_chart(charts.pareto(table, meta["utility_metric"],
                             f"between-groups {meta['headline_metric'].replace('_', ' ')} difference"))
    st.caption("Each point is a method at a strength; the unmitigated model and each method's default are labelled "
               "(disparity, utility), the other strengths' values are in the table and the tooltips. The dashed line "
               "joins the Pareto front — no other setting is both fairer and more useful.")
    notes = [f"{p.method}: {n}" for p in res.methods for n in p.notes]
    if notes:
        st.markdown("\n".join(f"- {md(n)}" for n in notes))
    st.dataframe(table, hide_index=True, key="mit_table")

    st.subheader("Before and after, per group", divider="gray")
    options = list(dict.fromkeys((p.method, p.strength) for p in [*res.methods, *res.curve]))
    default = next((i for i, (m, s) in enumerate(options) if m == rec.get("method") and s == rec.get("strength")),
                   next((i for i, (m, _) in enumerate(options) if m == rec.get("method")), 0))
    m, s = st.selectbox("Mitigation", options, index=default, key="mit_pick",
                        format_func=lambda o: o[0] + ("" if o[1] is None or
                                                      (isinstance(o[1], float) and math.isnan(o[1]))
                                                      else f" (strength {o[1]:g})"))
    ba = before_after(res, m, s)
    c1, c2 = st.columns([1, 1])
    with c1:
        show_chart(charts.before_after(ba, "offered (selection rate), held-out"))
    c2.dataframe(ba, hide_index=True, key="mit_before_after",
                 column_config={c: st.column_config.NumberColumn(format="percent")
                                for c in ("before", "after", "change")})
    downloads("fairscan-mitigation", lambda: render_mitigation_html(res), lambda: render_mitigation_markdown(res),
              res.to_json)


page_mitigations()
