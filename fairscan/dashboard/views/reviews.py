"""Reviews: scheduled model reviews' verdicts and how the gaps moved run by run."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from fairscan.dashboard.widgets import downloads, md, show_chart
from fairscan.report import charts


def page_reviews() -> None:
    st.title("Reviews")
    st.caption("Scheduled model reviews (`fairscan review run review.yaml` from cron or CI): each run's verdict and "
               "how the gaps moved since the previous one.")
    from fairscan.report.history import render_history_html, render_history_markdown
    from fairscan.review import DEFAULT_HISTORY, history_table
    from fairscan.review.history import History

    path = st.text_input("Review history file (SQLite)", os.environ.get("FAIRSCAN_HISTORY", DEFAULT_HISTORY),
                         key="rv_path", persist_state="session",
                         help="Written by fairscan review run, next to its review.yaml unless the file says otherwise.")
    p = Path(path).expanduser()
    if not p.is_file():
        st.info(f"No review history at '{md(p)}' yet.", icon=":material/info:")
        st.markdown(WHAT_REVIEWS_SHOW)
        st.caption("Nothing to download yet: there is no review history.")
        return
    hist = History(p)
    ok, why = hist.verify()
    (st.success if ok else st.error)(f"History chain: {md(why)}", icon=":material/verified:" if ok else None)
    names = list(dict.fromkeys(r["name"] for r in hist.records(kind="run")))
    if not names:
        st.info("The history file has no review runs yet.", icon=":material/info:")
        return
    name = st.selectbox("Review", names, key="rv_name")
    table = history_table(p, name)
    runs = pd.DataFrame([{"run": r["seq"], "when": r["created"], "status": r["status"],
                          "fail": r["verdict_counts"].get("fail"), "pass": r["verdict_counts"].get("pass"),
                          "insufficient": r["verdict_counts"].get("insufficient"),
                          "regressions": len(r["regressions"]), "data sha256": r["data_sha256"][:12],
                          "record sha256": r["hash"][:12]} for r in table["runs"]])
    st.dataframe(runs, hide_index=True, key="rv_runs")
    trend = pd.DataFrame([{"run": r["seq"], "when": r["created"], **d} for r in table["runs"]
                          for d in r["disparities"]])
    if len(trend):
        c1, c2 = st.columns(2)
        metric = c1.selectbox("Metric", list(dict.fromkeys(trend["metric"])), key="rv_metric")
        attr = c2.selectbox("Attribute", list(dict.fromkeys(trend["attribute"])), key="rv_attr")
        t = trend[(trend["metric"] == metric) & (trend["attribute"] == attr) & trend["difference"].notna()].copy()
        show_chart(charts.trend(t, "difference to the reference (points)"), f"{metric.replace('_', ' ')} gap to the reference, {attr}, run by run")
    downloads(f"fairscan-review-{re.sub(r'[^A-Za-z0-9_-]+', '-', name)}", lambda: render_history_html(table),
              lambda: render_history_markdown(table), json.dumps(table, indent=2, default=str))


WHAT_REVIEWS_SHOW = (
    "Once `fairscan review run review.yaml` has run (from cron or CI), this page lists every review: when it ran, "
    "which model and data (by hash), the policy's verdict — **pass**, **fail** or **insufficient evidence** — and "
    "how each group's gap to its reference moved since the previous run, with significant regressions flagged. "
    "The history holds aggregates only, chained by sha256 so that an edited record shows.")


page_reviews()
