"""Recommendations: who is never shown what, exposure, and the lists' usefulness by group."""

from __future__ import annotations

import streamlit as st

from fairscan.dashboard.state import cached_tradeoff, recs_audit, recs_example
from fairscan.dashboard.widgets import VERDICT_LABELS, downloads, md, show_chart
from fairscan.report import charts


def page_recs() -> None:
    st.title("Recommendations")
    st.caption("Who is never shown what: exclusion and exposure by user group and item group, and how useful the "
               "lists are for each group.")
    k = st.select_slider("List length k (coupons recommended per scenario)", [1, 2, 3], value=2, key="rec_k")
    ex = recs_example(k)
    st.info(md(ex["description"]), icon=":material/info:")
    res = recs_audit(k)
    counts = res.verdict_counts()
    cols = st.columns(3)
    for col, v in zip(cols, ("fail", "pass", "insufficient"), strict=True):
        col.metric(VERDICT_LABELS[v], counts[v], border=True)
    users = [str(c) for c in ex["users"]["income"].cat.categories]
    users = [u for u in users if u in set(res.exclusion["user_group"])] + sorted(
        set(res.exclusion["user_group"]) - set(users))
    items = list(dict.fromkeys(res.exclusion["item_group"]))
    axes = {"x_title": "coupon type", "y_title": "income bracket"}
    c1, c2 = st.columns(2)
    with c1:
        show_chart(charts.heatmap(res.exclusion, "rate", "never shown", users, items, **axes),
                   f"Never shown in the top {k} (exclusion rate)")
    with c2:
        show_chart(charts.heatmap(res.exposure, "share", "exposure share", users, items, **axes),
                   "Share of position-weighted exposure")
    st.caption("Exclusion: share of a group's scenarios whose top-k list never contains the coupon type. Exposure: "
               "how a group's attention is split across coupon types (rows sum to 100%).")
    with st.expander("The numbers behind the heatmaps, with 95% intervals and group sizes"):
        st.dataframe(res.exclusion, hide_index=True, key="rec_exclusion",
                     column_order=["user_group", "item_group", "users", "excluded", "rate", "rate_ci_low",
                                   "rate_ci_high", "inclusion_ratio", "four_fifths", "reference"])
        st.dataframe(res.exposure, hide_index=True, key="rec_exposure",
                     column_order=["user_group", "item_group", "users", "share", "share_ci_low", "share_ci_high",
                                   "bias_ratio", "reference"])
    st.subheader("Usefulness of the lists by income bracket", divider="gray")
    util = res.utility[~res.utility["suppressed"].astype(bool)]
    metric = st.radio("Metric", list(dict.fromkeys(util["metric"])), horizontal=True, key="rec_metric")
    u = util[util["metric"] == metric].rename(columns={"user_group": "group", "value": metric,
                                                        "ci_low": f"{metric}_ci_low", "ci_high": f"{metric}_ci_high",
                                                        "users": "count"})
    u = u.set_index("group").reindex([g for g in users if g in set(u["group"])]).reset_index()
    show_chart(charts.group_bars(u, metric, metric), f"{metric} by income bracket (scenarios with an accepted coupon; "
               "95% intervals)")
    with st.expander("All verdicts"):
        st.dataframe(res.findings, hide_index=True, column_order=["verdict", "metric", "item_group", "group",
                                                                   "message"], key="rec_findings")
    rerank_section(k)
    downloads("fairscan-recs-audit", res.to_html, res.to_markdown, res.to_json)


def rerank_section(k: int) -> None:
    """The effect of a re-ranking strength (fairscan.mitigation.rerank) on the coupon lists."""
    from fairscan.explore import COUPON_TYPES

    st.subheader("Re-ranking: what a fairer list costs", divider="gray")
    st.caption("Re-rank each scenario's five scored coupon types into its top k and re-audit on the same held-out "
               "truth, at strengths 0 (the model's own lists), 0.25, 0.5, 0.75 and 1.")
    methods = {"floor": "Minimum share of one coupon type (FA*IR)",
               "calibrated": "Match the catalogue's mix (Steck's calibration)"}
    with st.form("rr_form"):
        c1, c2 = st.columns(2)
        method = c1.radio("Re-ranker", list(methods), format_func=methods.get, key="rr_method")
        focus = c2.selectbox("Coupon type to watch", list(COUPON_TYPES), index=COUPON_TYPES.index("Restaurant(20-50)"),
                             key="rr_focus")
        run = st.form_submit_button("Compute the trade-off (about half a minute)", icon=":material/play_arrow:")
    key = (method, focus, k)
    if run:
        with st.spinner("Re-ranking and re-auditing at five strengths…"):
            cached_tradeoff(*key)
        st.session_state["rr_key"] = key
    key = st.session_state.get("rr_key")
    if key is None or key[2] != k:
        st.caption("Press the button to compute it.")
        return
    tc = cached_tradeoff(*key)
    users = [g for g in dict.fromkeys(tc["user_group"]) if g != "(all)"]
    order = [str(c) for c in recs_example(k)["users"]["income"].cat.categories]
    users = [u for u in order if u in users] + [u for u in users if u not in order]
    lines = {"group_title": "income bracket", "everyone": "all scenarios"}
    c1, c2 = st.columns(2)
    with c1:
        show_chart(charts.strength_lines(tc, "exclusion", f"never shown {key[1]}", users, **lines),
                   f"Never shown {key[1]} in the top {k}, by strength")
    with c2:
        show_chart(charts.strength_lines(tc, "ndcg", f"ndcg@{k}", users, **lines), f"Usefulness (ndcg@{k}), by strength")
    st.dataframe(tc, hide_index=True, key="rr_table",
                 column_order=["strength", "user_group", "users", "exclusion", "exclusion_gap", "exposure_share",
                               "ndcg", "ndcg_change"],
                 column_config={c: st.column_config.NumberColumn(format="percent")
                                for c in ("exclusion", "exclusion_gap", "exposure_share")})


page_recs()
