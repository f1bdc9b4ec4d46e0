"""Who is excluded? Subgroups nobody named, found by searching every combination of conditions;
selecting one audits it in full on the overview."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from fairscan.dashboard.state import cached_discovery, get_setup
from fairscan.dashboard.widgets import VERDICT_LABELS, downloads, md, page
from fairscan.discover import DISCOVER_METRICS
from fairscan.formatting import pct
from fairscan.metrics.classification import DESCRIPTIONS
from fairscan.report.common import interval


def _table(listed: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in listed.to_dict("records"):
        child = r["parent"] is not pd.NA and r["parent"] is not None
        rows.append({
            "verdict": VERDICT_LABELS[r["verdict"]],
            "subgroup": ("└ " if child else "") + r["who"].removeprefix("customers with "),
            "people": None if r["suppressed"] else int(r["count"]),
            "value": "suppressed" if r["suppressed"] else f"{pct(r['value'])} "
                                                          f"({interval(r['value_ci_low'], r['value_ci_high'])})",
            "everyone else": None if r["suppressed"] else pct(r["comparison_value"]),
            "ratio": None if r["suppressed"] or pd.isna(r["ratio"]) else round(float(r["ratio"]), 2),
        })
    return pd.DataFrame(rows)


def page_excluded() -> None:
    setup = get_setup()
    st.title("Who is excluded?")
    st.caption("Every combination of up to three conditions (attribute = group) is tested against everyone else, "
               "with the false discovery rate controlled over all of them. Select a row to audit that subgroup "
               "in full on the overview.")
    metrics = [m for m in DISCOVER_METRICS if setup["target"] is not None or m == "selection_rate"]
    c1, c2, c3, c4 = st.columns(4)
    metric = c1.selectbox("Measure", metrics, format_func=lambda m: DESCRIPTIONS[m].capitalize(), key="dx_metric")
    depth = c2.select_slider("Conditions per subgroup", [1, 2, 3], value=3, key="dx_depth")
    min_size = c3.number_input("Smallest subgroup (people)", 10, 100_000, 30, step=10, key="dx_min")
    direction = c4.segmented_control("Show", ["excluded", "favoured", "both"], default="excluded",
                                     key="dx_direction") or "excluded"
    r = cached_discovery(setup, metric=metric, max_depth=depth, min_size=int(min_size), direction=direction)
    m = r.meta
    counts = m["verdict_counts"]
    cols = st.columns(4)
    cols[0].metric("Subgroups tested", f"{m['tested']:,}", border=True,
                   help="Every subgroup with at least the smallest size: the number of tests the adjustment covers.")
    cols[1].metric(VERDICT_LABELS["fail"], counts["fail"], border=True,
                   help="A gap outside the tolerance that stays significant after the Benjamini-Yekutieli adjustment.")
    cols[2].metric("Folded", f"{m['folded']:,}", border=True,
                   help="Subgroups that do not differ from the rest of a parent: listed under it, not beside it.")
    cols[3].metric("Overall", pct(m["overall"]["value"]), border=True, help=DESCRIPTIONS[metric].capitalize())
    if m["skipped"]:
        st.caption("Not searched: " + md("; ".join(f"{s['column']} ({s['reason']})" for s in m["skipped"])) + ".")
    listed = r.listed
    if listed.empty:
        st.info("No subgroup to list with these settings.", icon=":material/info:")
        return
    first = listed.iloc[0]
    if first["verdict"] == "fail":
        st.markdown(f"**{md(first['description'])}**")
    event = st.dataframe(_table(listed), hide_index=True, on_select="rerun", selection_mode="single-row",
                         key="dx_table", width="stretch",
                         column_config={"people": st.column_config.NumberColumn(format="localized")})
    st.caption("└ folded: not significantly different from the rest of the subgroup above it. "
               f"Rates with 95% intervals; p-values {m['fdr_method']}-adjusted over every subgroup tested.")
    chosen = event.selection.rows if event and event.selection else []
    if chosen:
        row = listed.iloc[chosen[0]]
        if row["suppressed"]:
            st.warning("This subgroup's numbers are suppressed to protect a small group; it cannot be audited.",
                       icon=":material/lock:")
        else:
            tiers = {a["attribute"]: 4 for a in m["attributes"] if a["kind"] == "tiers"}
            st.session_state["setup"] = {**setup, "subgroup": {
                "conditions": [list(c) for c in row["conditions"]], "who": row["who"], "tiers": tiers}}
            st.switch_page(page("overview"))
    with st.expander("Every message"):
        st.markdown("\n".join(f"- {md(x)}" for x in listed["message"].dropna()))
    downloads("fairscan-discover", r.to_html, r.to_markdown, r.to_json, note="This search as a report.")


page_excluded()
