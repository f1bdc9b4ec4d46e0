"""Offer value: not only who gets an offer, but at what price, discount or limit, by group;
discrimination within strata told apart from steering, and the repair's trade-off."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from fairscan.dashboard.state import (
    DATA_SUFFIXES,
    cached_value_audit,
    cached_value_repair,
    max_upload_mb,
    parse_tiers,
    read_upload,
    retail_lines,
    upload_key,
)
from fairscan.dashboard.widgets import VERDICT_LABELS, downloads, md, show_chart
from fairscan.formatting import number, p_value, pct
from fairscan.report import charts
from fairscan.report.common import sorted_findings, value_interval

SOURCES = {"retail": "Online retail: unit price by customer spend tier, within product",
           "upload": "Upload a file"}
RETAIL = {"value": "UnitPrice", "favourable": "lower", "sensitive": [], "tiers": None,
          "infer_tier": "spend:CustomerID,amount", "within": ["StockCode"], "weights": None, "offered": None,
          "cluster": "CustomerID"}


def page_value() -> None:
    st.title("Offer value")
    st.caption("Not only who is offered, but at what price, discount or limit: each group's values, the gaps to a "
               "reference group, and — within strata such as the product — how much of a gap is another value for "
               "the same thing (discrimination) and how much another mix of things (steering).")
    source = st.radio("Data", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="val_source")
    if source == "retail":
        st.info("The bundled Online Retail lines (397,884 after cleaning), each customer's spend tier from their "
                "total spend (quartiles), unit price within product (StockCode). A lower price is better for the "
                "customer. One customer's lines are not independent: the intervals are cluster-robust by "
                "customer.", icon=":material/info:")
        data, settings, data_id = retail_lines(), dict(RETAIL), "retail"
    else:
        picked = _upload_settings()
        if picked is None:
            return
        data, settings, data_id = picked
    tolerance = st.slider("Tolerance: largest gap accepted, relative to the reference group's mean", 0.01, 0.25,
                          0.05, 0.01, key="val_tolerance", format="%.2f")
    key = json.dumps({"data": data_id, **settings, "tolerance": tolerance}, sort_keys=True, default=str)
    res = cached_value_audit(key, data)  # a progress bar per attribute while it runs
    show_result(res)
    if settings["within"] or settings["sensitive"] or settings["tiers"] or settings["infer_tier"]:
        repair_section(key, data, res)
    downloads("fairscan-value", html=res.to_html, markdown=res.to_markdown, js=res.to_json)


def _upload_settings() -> tuple[pd.DataFrame, dict[str, Any], str] | None:
    f = st.file_uploader(f"Rows with a value column and group columns (CSV or Parquet, at most {max_upload_mb()} MB)",
                         type=[x.lstrip(".") for x in DATA_SUFFIXES], key="val_upload")
    if f is None:
        st.info("Upload a file to audit its values: a price, a discount, a limit.", icon=":material/upload:")
        return None
    uploads = st.session_state.setdefault("val_uploads", {})
    ident = upload_key("value", {"f": f})
    if ident not in uploads:
        uploads[ident] = read_upload(f)  # a FairscanError names the file, and the page shows it
    data = uploads[ident]
    cols = [str(c) for c in data.columns]
    numeric = [c for c in cols if pd.api.types.is_numeric_dtype(data[c]) and not pd.api.types.is_bool_dtype(data[c])]
    if not numeric:
        st.error("The file has no numeric column to audit as a value.", icon=":material/error:")
        return None
    c1, c2 = st.columns(2)
    value = c1.selectbox("Value column", numeric, key="val_value")
    favourable = c2.radio("Better for the customer", ["lower", "higher"], horizontal=True, key="val_favourable",
                          format_func={"lower": "lower (a price, a premium, a rate)",
                                       "higher": "higher (a discount, a limit)"}.get)
    c1, c2 = st.columns(2)
    sensitive = c1.multiselect("Group columns", [c for c in cols if c != value], key="val_sensitive")
    within = c2.multiselect("Strata (optional): the product, a band, a grade", [c for c in cols if c != value],
                            key="val_within")
    tiers = None
    with st.expander("A numeric column in tiers (optional)"):
        t1, t2 = st.columns(2)
        tier_col = t1.selectbox("Column", ["(none)", *numeric], key="val_tier_col")
        tier_text = t2.text_input("Tiers: N quantile tiers, or cut points c1,c2", "4", key="val_tier_text")
        if tier_col != "(none)":
            tiers = {tier_col: parse_tiers(tier_col, tier_text)}
    offered = st.selectbox("Offered column (optional, 0/1: audit the value among the offered)", ["(none)", *cols],
                           key="val_offered")
    cluster = st.selectbox("Rows that belong together (optional): e.g. a customer id, for cluster-robust intervals",
                           ["(none)", *cols], key="val_cluster")
    if not sensitive and not tiers:
        st.info("Choose at least one group column (or a column in tiers).", icon=":material/group:")
        return None
    settings = {"value": value, "favourable": favourable, "sensitive": sensitive, "tiers": tiers, "infer_tier": None,
                "within": within, "weights": None, "offered": None if offered == "(none)" else offered,
                "cluster": None if cluster == "(none)" else cluster}
    return data, settings, ident


def show_result(res: Any) -> None:
    """Findings, each group's distribution, the gaps and the decomposition."""
    m = res.meta
    counts = res.verdict_counts()
    c = st.columns(4)
    c[0].metric("Values audited", f"{m['n_values']:,}")
    for col, v in zip(c[1:], ("fail", "insufficient", "pass"), strict=True):
        col.metric(VERDICT_LABELS[v], counts[v])
    st.subheader("Findings", divider="gray")
    icons = {"fail": ":material/error:", "insufficient": ":material/help:", "pass": ":material/check_circle:"}
    for f in sorted_findings(res):
        st.markdown(f"{icons[f['verdict']]} **{VERDICT_LABELS[f['verdict']]}** ({f['metric']}): {md(f['message'])}")
    for attr, part in res.groups.groupby("attribute", sort=False):
        st.subheader(f"By {attr}", divider="gray")
        show_chart(charts.value_boxes(part, f"{m['value']}: p10–p90, p25–p75, median (tick), mean (dot)"),
                   f"{m['value']} by {attr}", key=f"val_box_{attr}")
        gaps = res.disparities[res.disparities["attribute"] == attr]
        if len(gaps):
            st.dataframe(_gap_table(gaps), hide_index=True, width="stretch")
        dec = res.decomposition[res.decomposition["attribute"] == attr] if len(res.decomposition) else []
        if len(dec):
            show_chart(charts.value_split(dec, f"gap to the reference in {m['value']}"),
                       f"Within {', '.join(m['within'])} (discrimination) and from the mix (steering)",
                       key=f"val_split_{attr}")


def _gap_table(gaps: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in gaps.to_dict("records"):
        hidden = bool(r["suppressed"])
        rows.append({"group": r["group"], "metric": r["metric"],
                     "gap to the reference": "suppressed" if hidden else number(r["difference"], 3),
                     "95% CI": "" if hidden else value_interval(r["difference_ci_low"], r["difference_ci_high"], 3),
                     "ratio": "" if hidden or r["ratio"] is None else number(r["ratio"], 3),
                     "Holm p": "" if hidden else p_value(r["p_value_adjusted"])})
    return pd.DataFrame(rows)


def repair_section(key: str, data: pd.DataFrame, res: Any) -> None:
    """The repair towards the groups' barycenter (within strata), at the amount chosen."""
    st.subheader("Repair: move the groups' values towards each other", divider="gray")
    st.caption("Each group's values are mapped onto the groups' Wasserstein barycenter"
               + (f" within each {', '.join(res.meta['within'])}" if res.meta["within"] else "")
               + "; an amount below 1 moves them part of the way. Each amount is judged by the same value audit.")
    rep = cached_value_repair(key, data)  # a progress bar per amount while it runs
    amount = st.select_slider("Amount of repair", [p["amount"] for p in rep.points], value=rep.points[-1]["amount"],
                              key="val_amount", format_func=lambda a: f"{a:g}")
    p = next(q for q in rep.points if q["amount"] == amount)
    c = st.columns(4)
    c[0].metric("Failing gaps", p["fail"])
    c[1].metric("Largest mean gap", pct(p["largest_mean_gap"]))
    c[2].metric("Total value changes by", pct(p["total_change_relative"]))
    c[3].metric("Rows getting a worse value", pct(p["share_worse"]))
    st.caption(f"Largest change of a single value: {number(p['largest_change'])}. Recommended: "
               + (f"amount {rep.recommended['amount']:g}: {rep.recommended['why']}." if rep.recommended["amount"]
                  is not None else rep.recommended["why"] + "."))


page_value()
