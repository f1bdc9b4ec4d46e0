"""Compare models: is the challenger fairer than the champion? Two models' decisions on the
same customers, compared pair by pair (``fairscan.compare``)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from fairscan import modeling
from fairscan.compare import HARM_SIGN
from fairscan.dashboard.state import (
    MODEL_SUFFIXES,
    REGISTRY_MODEL,
    UPLOAD_MODEL,
    cached_model_comparison,
    comparison_candidates,
    get_setup,
    max_upload_mb,
)
from fairscan.dashboard.widgets import downloads, md, registry_model_field, show_chart
from fairscan.errors import FairscanError
from fairscan.metrics.classification import DESCRIPTIONS
from fairscan.report import charts
from fairscan.report.compare import change_sentence, change_text, value_text

VERDICT_TEXT = {"worse": "Worse", "better": "Better", "not worse": "Not worse", "insufficient": "Insufficient evidence"}


def _uploaded(side: str) -> tuple[dict[str, Any] | None, bool]:
    """A model file uploaded for one side, kept in this session's temporary folder under its
    sha256 (the comparison reads, hashes and loads it safely); and the pickle consent."""
    f = st.file_uploader(f"Model file for {side} (.skops, .onnx; a pickle only from an author you trust)",
                         type=[s.lstrip(".") for s in MODEL_SUFFIXES], key=f"c_file_{side}")
    if f is None:
        return None, False
    if f.size > max_upload_mb() * 1024 * 1024:
        raise FairscanError(f"model file '{f.name}' is larger than {max_upload_mb()} MB")
    suffix = Path(f.name).suffix.lower()
    trust = False
    if suffix in modeling.PICKLE_SUFFIXES:
        st.warning("Loading a pickle runs any code its author put in it. Load it only if you trust its author "
                   "completely; better, re-save the model with skops.", icon=":material/warning:")
        trust = st.checkbox("I trust this file's author: load the pickle", key=f"c_trust_{side}")
        if not trust:
            return None, False
    data = f.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    folder = st.session_state.setdefault("compare_dir", tempfile.mkdtemp(prefix="fairscan-compare-"))
    path = Path(folder) / f"{digest[:16]}{suffix}"
    if not path.exists():
        path.write_bytes(data)
    return {"kind": "model", "model": "upload:file", "path": str(path), "sha256": digest, "name": f.name}, trust


def _registered(side: str) -> tuple[dict[str, Any] | None, bool]:
    """A model named by its MLflow URI; the comparison fetches it without running its code."""
    ref = registry_model_field(f"c_uri_{side}", f"Model URI for {side}")
    return (None, False) if ref is None else ({"kind": "model", "model": "registry", "uri": ref.uri,
                                               "name": ref.uri}, False)


def _pick(candidates: dict[str, dict[str, Any]], side: str, default: int, help_text: str) -> tuple[str, Any, bool]:
    labels = list(candidates)
    label = st.selectbox(side, labels, index=min(default, len(labels) - 1), key=f"c_pick_{side[:1]}", help=help_text)
    if label == REGISTRY_MODEL:
        cand, trust = _registered(side[:1])
        return (cand["name"] if cand else label), cand, trust
    if label != UPLOAD_MODEL:
        return label, candidates[label], False
    cand, trust = _uploaded(side[:1])
    return (cand["name"] if cand else label), cand, trust


def _table(rows: pd.DataFrame, switches: pd.DataFrame) -> pd.DataFrame:
    sw = {(s["attribute"], s["group"]): s for s in switches.to_dict("records")}
    out = []
    for r in rows.to_dict("records"):
        s = sw.get((r["attribute"], r["group"]), {})
        hidden = bool(r["suppressed"])
        out.append({
            "verdict": VERDICT_TEXT[r["verdict"]],
            "group": f"{r['attribute']} = {r['group']}",
            "people": None if hidden else int(r["count"]),
            "A (95% CI)": "suppressed" if hidden else value_text(r, "a"),
            "B (95% CI)": "" if hidden else value_text(r, "b"),
            "change, pts (paired 95% CI)": "" if hidden else change_text(r),
            "gap change, pts": "" if hidden or pd.isna(r["gap_change"]) else change_text(r, "gap_change"),
            "McNemar p (Holm)": None if hidden else round(float(r["p_value_adjusted"]), 4),
            "gained (B only)": None if hidden else s.get("gained"),
            "lost (A only)": None if hidden else s.get("lost"),
        })
    return pd.DataFrame(out)


def page_compare() -> None:
    setup = get_setup()
    st.title("Compare models")
    st.caption("Model A is the one in production (the champion), B the candidate (the challenger). Both decide for the "
               "same customers, so each change is measured pair by pair: paired bootstrap intervals, McNemar's test "
               "within each group, and who gains or loses the offer.")
    candidates = comparison_candidates(setup)
    if UPLOAD_MODEL not in candidates and len(candidates) < 2:  # decision columns only
        st.info("Comparing fixed decisions needs two decision columns in the data; or choose a budget or a threshold "
                "on the Data & model page to compare models or score columns.", icon=":material/info:")
        return
    c1, c2 = st.columns(2)
    with c1:
        label_a, a, trust_a = _pick(candidates, "A: in production (champion)", 0,
                                    "The model or score column whose decisions customers get today.")
    with c2:
        label_b, b, trust_b = _pick(candidates, "B: the candidate (challenger)", 1,
                                    "The model or score column that would replace A.")
    if a is None or b is None:
        st.info("Upload the model file, or give the model's MLflow URI, to compare.", icon=":material/upload:")
        return
    if a == b:
        st.info("A and B are the same: choose two different models or columns.", icon=":material/info:")
        return
    rule = {"budget": f"the top {100 * (setup['budget'] or 0):g}% by each model's score (the same number of offers)",
            "threshold": f"score >= {setup['threshold']} for each model",
            "prediction": "each decision column as it is"}[setup["decision"]]
    st.caption(f"Decision rule for both: {md(rule)}. Groups, outcome and rule come from the Data & model page.")
    r = cached_model_comparison(setup, a, b, [label_a, label_b], trust_pickle=trust_a or trust_b)

    counts = r.verdict_counts()
    worse = r.worse
    summary = (f"{counts['worse']} worse · {counts['insufficient']} insufficient evidence · {counts['not worse']} not "
               f"worse · {counts['better']} better, over {len(r.changes):,} group × metric pairs "
               f"({r.meta['n_rows']:,} customers)")
    if len(worse):
        st.warning(f"**B excludes some groups more than A does.** {md(summary)}", icon=":material/trending_down:")
        with st.expander(f"The {len(worse)} change(s) that make a group worse off", expanded=len(worse) <= 3):
            st.markdown("\n".join(f"- {md(change_sentence(row, ('A', 'B')))}" for row in worse.to_dict("records")))
    else:
        st.success(f"**B is not worse than A for any group.** {md(summary)}", icon=":material/check_circle:")

    metrics = list(r.meta["metrics"])
    metric = st.radio("Rate", metrics, horizontal=True, key="c_metric",
                      format_func=lambda m: f"{m.replace('_', ' ')} ({DESCRIPTIONS[m]})")
    rows = r.changes[r.changes["metric"] == metric]
    margin = float(rows["margin"].iloc[0])
    title = DESCRIPTIONS[metric]
    show_chart(charts.paired_rates(rows, ("A", "B"), title), f"{title.capitalize()}: A and B per group",
               key="c_rates")
    show_chart(charts.paired_changes(rows, title, margin, HARM_SIGN[metric]),
               f"Change B − A with its paired 95% interval (margin {100 * margin:.1f} points)", key="c_changes")
    st.dataframe(_table(rows, r.switches), hide_index=True, key="c_table")
    st.caption(f"Verdicts against a margin of {100 * margin:.1f} points: worse = harms the group by more than the "
               "margin, significantly (Holm-adjusted McNemar); not worse = the whole interval within the margin; "
               "gained/lost = customers offered by B only / by A only. Groups under the suppression size show no "
               "numbers.")
    downloads("fairscan-compare", r.to_html, r.to_markdown, r.to_json, note="This comparison as a report.")


page_compare()
