"""Recommendations: who is never shown what, exposure, and the lists' usefulness by group."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from fairscan.dashboard.state import (
    DATA_SUFFIXES,
    cached_recs_audit,
    cached_tradeoff,
    max_upload_mb,
    read_upload,
    recs_audit,
    recs_example,
    retail_audit_key,
    retail_example,
    spend_tiers_of,
    upload_key,
)
from fairscan.dashboard.widgets import VERDICT_LABELS, downloads, md, show_chart
from fairscan.report import charts

SOURCES = {
    "retail": "Online retail: customers by spend tier, items by price tier",
    "coupon": "Coupons: driving scenarios by income, the five coupon types",
    "upload": "Upload your lists",
}


def page_recs() -> None:
    st.title("Recommendations")
    st.caption("Who is never shown what: exclusion and exposure by user group and item group, and how useful the "
               "lists are for each group.")
    source = st.radio("Lists", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="rec_source")
    if source == "coupon":
        coupon_case()
    elif source == "retail":
        retail_case()
    else:
        upload_case()


def retail_case() -> None:
    from fairscan.explore import RETAIL_K

    with st.spinner("Training the online-retail reference recommender (a few seconds, once)…"):
        ex = retail_example()
    k = st.select_slider("List length k", list(range(1, RETAIL_K + 1)), value=RETAIL_K, key="rec_retail_k")
    st.info(md(ex["description"]), icon=":material/info:")
    with st.spinner("Auditing the recommendation lists…"):
        res = cached_recs_audit(retail_audit_key(ex, k), ex)
    show_audit(res, k, "spend tier", "price tier", ex["user_order"], ex["item_order"], "fairscan-recs-retail")


def coupon_case() -> None:
    k = st.select_slider("List length k (coupons recommended per scenario)", [1, 2, 3], value=2, key="rec_k")
    ex = recs_example(k)
    st.info(md(ex["description"]), icon=":material/info:")
    res = recs_audit(k)
    users = [str(c) for c in ex["users"]["income"].cat.categories]
    show_audit(res, k, "income bracket", "coupon type", users, None, "fairscan-recs-audit")
    rerank_section(k)


def _upload(label: str, key: str, required: bool = True) -> pd.DataFrame | None:
    f = st.file_uploader(label + ("" if required else " (optional)"), type=[x.lstrip(".") for x in DATA_SUFFIXES],
                         key=key)
    if f is None:
        return None
    uploads = st.session_state.setdefault("rec_uploads", {})
    ident = upload_key(key, {key: f})
    if ident not in uploads:
        uploads[ident] = read_upload(f)  # a FairscanError names the file, and the page shows it
    return uploads[ident]


def _column(frame: pd.DataFrame, label: str, want: str, key: str) -> str:
    cols = [str(c) for c in frame.columns]
    return st.selectbox(label, cols, index=cols.index(want) if want in cols else 0, key=key)


def upload_case() -> None:
    st.caption("Three files, as 'fairscan recs' takes them: the lists (one row per user, item and rank; 1 = top), "
               "the users (one row per user, with the group columns) and the items (one row per item, with the group "
               f"columns); optionally the held-out truth (user, item). CSV or Parquet, at most {max_upload_mb()} MB "
               "each.")
    c1, c2, c3 = st.columns(3)
    with c1:
        recs = _upload("Lists", "rec_up_recs")
    with c2:
        users = _upload("Users", "rec_up_users")
    with c3:
        items = _upload("Items", "rec_up_items")
    if recs is None or users is None or items is None:
        st.info("Upload the lists, the users and the items to audit them.", icon=":material/upload:")
        return
    c1, c2, c3 = st.columns(3)
    with c1:
        user_col = _column(recs, "User column (lists)", "user", "rec_col_user")
    item_col = c2.selectbox("Item column (lists)", [str(c) for c in recs.columns],
                            index=[str(c) for c in recs.columns].index("item") if "item" in recs.columns else 0,
                            key="rec_col_item")
    rank_col = c3.selectbox("Rank column (lists; 1 = top)", [str(c) for c in recs.columns],
                            index=[str(c) for c in recs.columns].index("rank") if "rank" in recs.columns else 0,
                            key="rec_col_rank")
    tx_key = ""
    with st.expander("Purchasing power from a transactions file (spend tiers, as the audit's --infer-tier spend)"):
        tx = _upload("Transactions (a customer column and an amount column)", "rec_up_tx", required=False)
        if tx is not None:
            t1, t2, t3 = st.columns(3)
            customer = t1.selectbox("Customer column", [str(c) for c in tx.columns], key="rec_tx_customer")
            amount = t2.selectbox("Amount column", [str(c) for c in tx.columns], key="rec_tx_amount")
            n = t3.number_input("Spend tiers", 2, 10, 4, key="rec_tx_n")
            users = spend_tiers_of(tx, customer, amount, int(n), users, user_col)
            tx_key = f"{customer}|{amount}|{int(n)}"
            st.caption("Each user's tier of total spend is the column 'spend_tier' of the users below; users without "
                       "transactions are 'unknown'.")
    g1, g2, g3 = st.columns(3)
    user_groups = [str(c) for c in users.columns if c != user_col]
    item_groups = [str(c) for c in items.columns if c != item_col]
    if not user_groups or not item_groups:
        st.warning("The users and items files need a group column besides the id.", icon=":material/warning:")
        return
    user_group = g1.selectbox("User group column", user_groups,
                              index=user_groups.index("spend_tier") if "spend_tier" in user_groups else 0,
                              key="rec_user_group")
    item_group = g2.selectbox("Item group column", item_groups, key="rec_item_group")
    max_rank = int(pd.to_numeric(recs[rank_col], errors="coerce").max() or 1)
    k = int(g3.number_input("List length k", 1, max(1, max_rank), min(10, max(1, max_rank)), key="rec_up_k"))
    truth = _upload("Held-out truth (user, item)", "rec_up_truth", required=False)
    case = {"recs": recs, "users": users, "items": items, "truth": truth, "interactions": None}
    ident = "|".join(upload_key(x, {x: f}) for x, f in ((k_, st.session_state.get(k_)) for k_ in
                     ("rec_up_recs", "rec_up_users", "rec_up_items", "rec_up_truth", "rec_up_tx")) if f is not None)
    kw = {"case": f"{ident}|{tx_key}", "user_group": user_group, "item_group": item_group, "k": k,
          "user_col": user_col, "item_col": item_col, "rank_col": rank_col}
    with st.spinner("Auditing the recommendation lists…"):
        res = cached_recs_audit(json.dumps(kw, sort_keys=True, default=str), case)
    order = sorted(str(v) for v in users[user_group].dropna().unique())
    show_audit(res, k, user_group, item_group, order, None, "fairscan-recs-audit")


def show_audit(res: Any, k: int, user_title: str, item_title: str, user_order: list[str] | None,
               item_order: list[str] | None, stem: str) -> None:
    """The verdicts, the exclusion and exposure heatmaps, usefulness by user group, the
    findings and the reports (the same as 'fairscan recs' writes)."""
    counts = res.verdict_counts()
    cols = st.columns(3)
    for col, v in zip(cols, ("fail", "pass", "insufficient"), strict=True):
        col.metric(VERDICT_LABELS[v], counts[v], border=True)
    seen = list(dict.fromkeys(res.exclusion["user_group"]))
    users = [u for u in (user_order or []) if u in seen] + [u for u in seen if u not in (user_order or [])]
    items_seen = list(dict.fromkeys(res.exclusion["item_group"]))
    items = [i for i in (item_order or []) if i in items_seen] + [i for i in items_seen if i not in (item_order or [])]
    axes = {"x_title": item_title, "y_title": user_title}
    c1, c2 = st.columns(2)
    with c1:
        show_chart(charts.heatmap(res.exclusion, "rate", "never shown", users, items, **axes),
                   f"Never shown in the top {k} (exclusion rate)")
    with c2:
        show_chart(charts.heatmap(res.exposure, "share", "exposure share", users, items, **axes),
                   "Share of position-weighted exposure")
    st.caption(f"Exclusion: share of a group's users whose top-{k} list never contains the item group. Exposure: how a "
               "group's attention is split across item groups (rows sum to 100%).")
    with st.expander("The numbers behind the heatmaps, with 95% intervals and group sizes"):
        st.dataframe(res.exclusion, hide_index=True, key="rec_exclusion",
                     column_order=["user_group", "item_group", "users", "excluded", "rate", "rate_ci_low",
                                   "rate_ci_high", "inclusion_ratio", "four_fifths", "reference"])
        st.dataframe(res.exposure, hide_index=True, key="rec_exposure",
                     column_order=["user_group", "item_group", "users", "share", "share_ci_low", "share_ci_high",
                                   "bias_ratio", "reference"])
    util = res.utility[~res.utility["suppressed"].astype(bool)] if len(res.utility) else res.utility
    if len(util):
        st.subheader(f"Usefulness of the lists by {user_title}", divider="gray")
        metric = st.radio("Metric", list(dict.fromkeys(util["metric"])), horizontal=True, key="rec_metric")
        u = util[util["metric"] == metric].rename(columns={"user_group": "group", "value": metric,
                                                            "ci_low": f"{metric}_ci_low",
                                                            "ci_high": f"{metric}_ci_high", "users": "count"})
        u = u.set_index("group").reindex([g for g in users if g in set(u["group"])]).reset_index()
        show_chart(charts.group_bars(u, metric, metric), f"{metric} by {user_title} (users with held-out truth; "
                   "95% intervals)")
    else:
        st.caption("No held-out truth: usefulness by group needs it.")
    with st.expander("All verdicts"):
        st.dataframe(res.findings, hide_index=True, column_order=["verdict", "metric", "item_group", "group",
                                                                   "message"], key="rec_findings")
    downloads(stem, res.to_html, res.to_markdown, res.to_json,
              note="The same reports as 'fairscan recs' writes for these inputs.")


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
