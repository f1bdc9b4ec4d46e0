"""The dashboard's widgets: Markdown made inert, tables, charts, downloads, links, the sidebar.

Pages lay out library results with these; nothing here computes a number.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd
import streamlit as st

from fairscan.dashboard import PAGES_DIR
from fairscan.dashboard.state import RegistryRef, counts_of_setup, current_data, groups_of
from fairscan.errors import FairscanError
from fairscan.formatting import pct
from fairscan.report.common import break_autolinks, count_text, interval

__all__ = [
    "PAGES", "VERDICT_LABELS", "downloads", "group_table", "md", "page", "rate_text",
    "registry_model_field", "show_chart", "sidebar",
]

#: URL path -> (title, navigation section); the page's script is views/<URL path>.py
PAGES: dict[str, tuple[str, str]] = {
    "overview": ("Overview", "Targeting"),
    "excluded": ("Who is excluded?", "Targeting"),
    "why": ("Why?", "Targeting"),
    "compare": ("Compare models", "Targeting"),
    "explorer": ("Threshold & budget", "Targeting"),
    "mitigations": ("Mitigations", "Targeting"),
    "value": ("Offer value", "Targeting"),
    "data": ("Data & model", "Setup"),
    "recommendations": ("Recommendations", "More"),
    "reviews": ("Reviews", "More"),
}
VERDICT_LABELS = {"fail": "Fail", "pass": "Pass", "insufficient": "Insufficient evidence"}


def md(text: Any) -> str:
    """User-supplied or data-derived text made inert in Markdown: every ASCII punctuation mark
    backslash-escaped (CommonMark allows it for all of them), so no emphasis, link, autolink
    (http://, www., e-mail: see break_autolinks), HTML, LaTeX ($) or directive can form; it still
    reads the same."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", break_autolinks(" ".join(str(text).split())))


def downloads(stem: str, html: Any = None, markdown: Any = None, js: Any = None, note: str = "") -> None:
    """Download buttons for a report; each argument is text or a callable making it on click."""
    st.subheader("Download the report", divider="gray")
    if note:
        st.caption(note)
    cols = st.columns(3)
    for col, (label, data, ext, mime) in zip(cols, (
            ("HTML report", html, "html", "text/html"), ("Markdown report", markdown, "md", "text/markdown"),
            ("JSON (all numbers)", js, "json", "application/json")), strict=True):
        if data is not None:
            col.download_button(label, data, file_name=f"{stem}.{ext}", mime=mime, icon=":material/download:",
                                key=f"dl_{stem}_{ext}", on_click="ignore")


def registry_model_field(uri_key: str = "d_model_uri", label: str = "Model URI") -> RegistryRef | None:
    """A model by its MLflow URI (``models:/NAME@ALIAS``, ``/VERSION``, ``/latest``,
    ``runs:/RUN/PATH``), fetched without running its code, as on the command line; None until
    a URI is given. The tracking server is the app's own (``fairscan app --tracking-uri`` or
    ``$MLFLOW_TRACKING_URI`` when it starts), never one a visitor types: a shared dashboard
    must not fetch from, or read, a server of a visitor's choosing."""
    import os

    from fairscan import registry

    server = os.environ.get("MLFLOW_TRACKING_URI")
    uri = st.text_input(label, key=uri_key, placeholder="models:/bank@champion",
                        help="models:/NAME@ALIAS, models:/NAME/VERSION, models:/NAME/latest or runs:/RUN_ID/PATH")
    st.caption(f"Tracking server: {md(server)}" if server else
               "No tracking server set: start the app with `fairscan app --tracking-uri URI`.")
    uri = (uri or "").strip()
    if not uri:
        return None
    registry.parse_uri(uri)  # the one check, with its one message
    return RegistryRef(uri)


def rate_text(v: Any, lo: Any, hi: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "—"
    ci = interval(lo, hi)
    return f"{pct(v)} ({ci})" if ci else pct(v)


def group_table(rows: pd.DataFrame, metrics: list[tuple[str, str]], suppress_below: int, key: str) -> None:
    """Per-group table: numbers as they are (for export and tests), shown as 'rate (CI)' text."""
    df = rows.copy()
    shown = ["attribute", "group", "people"] if df["attribute"].nunique() > 1 else ["group", "people"]
    why = df["suppression"] if "suppression" in df else [None] * len(df)
    df["people"] = [count_text(c, s, w, suppress_below)
                    for c, s, w in zip(df["count"], df["suppressed"], why, strict=True)]
    for m, label in metrics:
        if m in df:
            df[label] = [rate_text(v, lo, hi) for v, lo, hi in zip(df[m], df[f"{m}_ci_low"], df[f"{m}_ci_high"],
                                                                   strict=True)]
            shown.append(label)
    if "impact_ratio" in df:
        df["vs most offered"] = [("—" if pd.isna(v) else f"{v:.2f}" + ("" if f else " · below 4/5"))
                                 for v, f in zip(df["impact_ratio"], df["four_fifths"].fillna(True), strict=True)]
        shown.append("vs most offered")
    if "reference" in df:
        df["reference"] = df["reference"].astype(bool)
        shown.append("reference")
    st.dataframe(df, hide_index=True, column_order=shown, key=key,
                 column_config={"reference": st.column_config.CheckboxColumn("reference group")})


def show_chart(spec: dict[str, Any] | None, heading: str = "", empty: str = "No group is large enough to chart.",
               key: str | None = None) -> None:
    """A Vega-Lite chart from fairscan.report.charts under a bold heading (or a note if None)."""
    if heading:
        st.markdown(f"**{md(heading)}**")
    if spec is None:
        st.caption(empty)
    else:
        st.vega_lite_chart(spec=spec, width="stretch", key=key)


def sidebar(setup: dict[str, Any]) -> None:
    with st.sidebar:
        st.caption("Current analysis")
        try:
            if setup["source"] == "counts":
                info = counts_of_setup(setup)
                st.markdown(f"**{md(info['name'])}** (counts file) · {info['counts'].n_rows:,} customers")
            else:
                _, df, info = current_data(setup)
                src = info.get("title") or info.get("name", "uploaded data")
                st.markdown(f"**{md(src)}** · {len(df):,} rows")
        except FairscanError as e:
            st.markdown(md(e))
            info = {}
        rule = {"budget": f"top {100 * (setup['budget'] or 0):g}% by score",
                "threshold": f"score >= {setup['threshold']}",
                "prediction": f"decision column '{setup['prediction']}'",
                "counts": (info.get("counts").meta["decision_description"]["description"]
                           if info.get("counts") else "from the counts file")}[setup["decision"]]
        groups = [*groups_of(setup), *[f"{c} in {v} quantile tiers" if isinstance(v, int) else
                                         f"{c} cut at {', '.join(f'{x:g}' for x in v)}" for c, v in setup["tiers"].items()]]
        st.markdown(f"Decision: {md(rule)}  \nGroups: {md('; '.join(groups) or '—')}")
        st.caption("Runs locally: no data or usage statistics leave this machine.")


def page(name: str) -> Any:
    """The st.Page of the page at URL path ``name`` (for navigation, links and switching)."""
    title, _ = PAGES[name]
    return st.Page(PAGES_DIR / f"{name}.py", title=title, url_path=name)
