"""Why? A failing group's gap attributed to the model's features, with what-if rates."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from fairscan.dashboard.state import SUBGROUP, cached_explanation, get_setup, model_of, run_audit
from fairscan.dashboard.widgets import downloads, md, show_chart
from fairscan.formatting import pct
from fairscan.report import charts
from fairscan.report.common import interval
from fairscan.report.explain import headline, waterfall_steps
from fairscan.types import INTERSECTION_SEP


def _choices(setup: dict[str, Any]) -> dict[str, tuple[dict[str, str], dict[str, str] | None]]:
    """label -> (group, reference): the audit's failing groups against their reference group
    and against everyone else, and the discovered subgroup being audited."""
    r = run_audit(setup)
    out: dict[str, tuple[dict[str, str], dict[str, str] | None]] = {}
    sub = setup.get("subgroup")
    if sub:
        out[f"{sub['who']} (discovered) vs everyone else"] = ({a: g for a, g in sub["conditions"]}, None)
    failing = r.findings[r.findings["verdict"] == "fail"].drop_duplicates(["attribute", "group"])
    for f in failing.to_dict("records"):
        if f["attribute"] == SUBGROUP:
            continue
        attrs = f["attribute"].split(INTERSECTION_SEP)
        group = dict(zip(attrs, str(f["group"]).split(INTERSECTION_SEP), strict=True))
        ref = dict(zip(attrs, str(f["reference"]).split(INTERSECTION_SEP), strict=True))
        out[f"{f['attribute']} = {f['group']} vs {f['reference']}"] = (group, ref)
        out[f"{f['attribute']} = {f['group']} vs everyone else"] = (group, None)
    return out


def page_why() -> None:
    setup = get_setup()
    st.title("Why?")
    st.caption("A group's selection-rate gap split into one contribution per model feature: what changes when the "
               "group is given the reference's values of those features (Shapley decomposition, the same cut).")
    if setup["decision"] == "prediction":
        st.info("Explaining needs a score and the model that made it; this analysis uses a fixed decision column. "
                "Choose a score on the Data & model page.", icon=":material/info:")
        return
    if model_of(setup) is None:
        st.info("Explaining needs the model behind the scores: upload the model with the data on the Data & model "
                "page.", icon=":material/info:")
        return
    choices = _choices(setup)
    if not choices:
        st.success("No group fails in the current audit. Find subgroups nobody named on 'Who is excluded?', or "
                   "change the groups on the Data & model page.", icon=":material/check_circle:")
        return
    label = st.selectbox("Group to explain", list(choices), key="why_group")
    group, reference = choices[label]
    r = cached_explanation(setup, group, reference)
    m = r.meta
    st.markdown(f"**{md(headline(r))}**")
    cols = st.columns(3)
    cols[0].metric("Gap", f"{100 * m['gap']:+.1f} pts", border=True,
                   help=f"95% CI {100 * m['gap_ci'][0]:+.1f} to {100 * m['gap_ci'][1]:+.1f} points")
    cols[1].metric("Explained by the features", f"{100 * m['explained']:+.1f} pts", border=True)
    cols[2].metric("Not explained", f"{100 * m['remainder']:+.1f} pts", border=True,
                   help="What donor sampling leaves: the gap minus the sum of the contributions.")
    show_chart(charts.waterfall(waterfall_steps(r)), "From the reference's rate to the group's", key="why_waterfall")
    table = pd.DataFrame({
        "feature": r.contributions["feature"],
        "contribution (pts)": (100 * r.contributions["contribution"]).round(2),
        "95% CI (pts)": [f"{100 * a:+.1f} to {100 * b:+.1f}" for a, b in
                         zip(r.contributions["contribution_ci_low"], r.contributions["contribution_ci_high"],
                             strict=True)],
        "to the mean score": r.contributions["score_contribution"].round(4),
        "proxy of the group (AUC)": r.contributions["proxy_auc"].round(2),
    })
    st.dataframe(table, hide_index=True, key="why_table")
    st.subheader("What if", divider="gray")
    st.markdown("\n".join(
        f"- If this group's {md(w['feature'])} were distributed as the reference's, its selection rate would be "
        f"{pct(w['selection_rate'])} ({interval(w['selection_rate_ci_low'], w['selection_rate_ci_high'])}%)."
        for w in r.what_if.to_dict("records")))
    method = m["method"]
    st.caption(f"{method['enumeration'].capitalize()}: {method['passes']} pass(es) over "
               f"{method['rows_used']['group']:,} of the group's rows; intervals: {method['interval']}.")
    downloads("fairscan-explain", r.to_html, r.to_markdown, r.to_json, note="This explanation as a report.")


page_why()
