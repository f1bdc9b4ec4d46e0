"""fairscan dashboard: ``streamlit run app.py``.

Thin by design: every number on screen comes from the ``fairscan`` library (audit,
ThresholdExplorer, narrative, mitigation, recs); this file only lays it out. Each page has
its own URL and opens on its own: a deep link or a reload starts from the defaults (the
bank dataset with its reference model's held-out scores, budget 20%, tiers age=[24,59]
and balance=4). Nothing leaves the machine: see .streamlit/config.toml.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

import fairscan
from fairscan import datasets, modeling
from fairscan.errors import FairscanError
from fairscan.explore import ThresholdExplorer, before_after, coupon_recs_example
from fairscan.inferred import INFERRED, infer_tiers
from fairscan.narrative import headlines, verdict_sentence
from fairscan.report import charts
from fairscan.report.common import break_autolinks, interval, pct

DEFAULT_SETUP: dict[str, Any] = {
    "source": "dataset", "dataset": "bank", "upload_id": None,
    "target": "y", "positive_label": "yes",
    "decision": "budget", "score": "score", "budget": 0.2, "threshold": None, "prediction": None,
    "sensitive": [], "tiers": {"age": [24, 59], "balance": 4}, "infer": None,
}
DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
MODEL_SUFFIXES = (".skops", ".onnx", *modeling.PICKLE_SUFFIXES)
MAX_UPLOAD_MB = 200  # as server.maxUploadSize in .streamlit/config.toml
QUICK_METHODS = ("budget",)
VERDICT_LABELS = {"fail": "Fail", "pass": "Pass", "insufficient": "Insufficient evidence"}

# no page_icon: a Material icon favicon would be fetched from fonts.gstatic.com
st.set_page_config(page_title="fairscan", layout="wide")


# =============================================================================== state
def get_setup() -> dict[str, Any]:
    """This session's analysis settings, or the defaults (a deep link starts with those)."""
    return copy.deepcopy(st.session_state.get("setup", DEFAULT_SETUP))


def md(text: Any) -> str:
    """User-supplied or data-derived text made inert in Markdown: every ASCII punctuation mark
    backslash-escaped (CommonMark allows it for all of them), so no emphasis, link, autolink
    (http://, www., e-mail: see break_autolinks), HTML, LaTeX ($) or directive can form; it still
    reads the same."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", break_autolinks(" ".join(str(text).split())))


def jsonable(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


@st.cache_resource(show_spinner="Loading the reference model's held-out scores…")
def reference_data(name: str) -> tuple[dict[str, Any], pd.DataFrame]:
    return modeling.reference_scores(name)


@st.cache_resource(show_spinner="Loading the dataset…")
def full_dataset(name: str) -> pd.DataFrame:
    return datasets.load(name)


@st.cache_resource(show_spinner="Inferring purchasing power…", max_entries=8)
def cached_inference(data_id: str, _df: pd.DataFrame, spec_json: str) -> tuple[pd.DataFrame, Any]:
    spec = json.loads(spec_json)
    tiers, proxy = infer_tiers(_df, spec, exclude=spec.get("exclude"))
    return _df.assign(**{INFERRED: tiers}), proxy


def with_inferred(data_id: str, df: pd.DataFrame, setup: dict[str, Any]) -> tuple[str, pd.DataFrame, Any]:
    """The rows with the inferred purchasing-power column when the settings ask for one."""
    spec = setup.get("infer")
    if not spec:
        return data_id, df, None
    # a proxy model learns from every other column except the outcome, decision and groups
    exclude = [c for c in (setup["target"], setup["score"], setup["prediction"], modeling.ROW_ID,
                           *setup["sensitive"], *setup["tiers"]) if c]
    spec_json = json.dumps({**spec, "exclude": exclude}, sort_keys=True, default=jsonable)
    out, proxy = cached_inference(data_id, df, spec_json)
    return f"{data_id}+{spec_json}", out, proxy


def current_data(setup: dict[str, Any]) -> tuple[str, pd.DataFrame, dict[str, Any]]:
    """(data id, scored rows, what we know about them) for the current settings."""
    if setup["source"] == "dataset":
        card, df = reference_data(setup["dataset"])
        info = {"title": datasets.card(setup["dataset"])["title"], "model_card": card, "dataset": setup["dataset"]}
        data_id = f"reference:{setup['dataset']}"
    else:
        info = st.session_state.get("uploads", {}).get(setup["upload_id"])
        if info is None:
            raise FairscanError("the uploaded file is no longer in this session (uploads are not kept across "
                                "reloads): upload it again on the Data & model page")
        data_id, df = setup["upload_id"], info["df"]
    data_id, df, proxy = with_inferred(data_id, df, setup)
    return data_id, df, {**info, "proxy": proxy}


def groups_of(setup: dict[str, Any]) -> list[str]:
    """The categorical attributes to audit by, with the inferred tier when there is one."""
    return [*setup["sensitive"], *([INFERRED] if setup.get("infer") else [])]


def audit_kwargs(setup: dict[str, Any]) -> dict[str, Any]:
    """fairscan.audit keyword arguments of the current settings (JSON-serialisable)."""
    kw: dict[str, Any] = {"target": setup["target"], "positive_label": setup["positive_label"],
                          "sensitive": groups_of(setup), "tiers": setup["tiers"]}
    if setup["decision"] == "prediction":
        kw["prediction"] = setup["prediction"]
    else:
        kw["score"] = setup["score"]
        kw[setup["decision"]] = setup[setup["decision"]]
    return kw


@st.cache_data(show_spinner="Auditing…", max_entries=32)
def cached_audit(data_id: str, _df: pd.DataFrame, kwargs_json: str) -> fairscan.AuditResult:
    return fairscan.audit(_df, **json.loads(kwargs_json))


def run_audit(setup: dict[str, Any], **override: Any) -> fairscan.AuditResult:
    data_id, df, _ = current_data(setup)
    kw = {**audit_kwargs(setup), **override}
    if "threshold" in override:
        kw.pop("budget", None)
    return cached_audit(data_id, df, json.dumps(kw, sort_keys=True, default=jsonable))


@st.cache_resource(show_spinner="Building the score histograms…", max_entries=16)
def cached_explorer(data_id: str, _df: pd.DataFrame, kwargs_json: str) -> ThresholdExplorer:
    return ThresholdExplorer(_df, **json.loads(kwargs_json))


def get_explorer(setup: dict[str, Any]) -> ThresholdExplorer:
    data_id, df, _ = current_data(setup)
    kw = {"score": setup["score"], "target": setup["target"], "positive_label": setup["positive_label"],
          "sensitive": groups_of(setup), "tiers": setup["tiers"]}
    return cached_explorer(data_id, df, json.dumps(kw, sort_keys=True, default=jsonable))


# =========================================================================== widgets
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


def rate_text(v: Any, lo: Any, hi: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "—"
    ci = interval(lo, hi)
    return f"{pct(v)} ({ci})" if ci else pct(v)


def group_table(rows: pd.DataFrame, metrics: list[tuple[str, str]], suppress_below: int, key: str) -> None:
    """Per-group table: numbers as they are (for export and tests), shown as 'rate (CI)' text."""
    df = rows.copy()
    shown = ["attribute", "group", "people"] if df["attribute"].nunique() > 1 else ["group", "people"]
    df["people"] = [f"fewer than {suppress_below}" if s else f"{int(c):,}"
                    for s, c in zip(df["suppressed"], df["count"], strict=True)]
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
            _, df, info = current_data(setup)
            src = info.get("title") or info.get("name", "uploaded data")
            st.markdown(f"**{md(src)}** · {len(df):,} rows")
        except FairscanError as e:
            st.markdown(md(e))
        rule = {"budget": f"top {100 * (setup['budget'] or 0):g}% by score",
                "threshold": f"score >= {setup['threshold']}",
                "prediction": f"decision column '{setup['prediction']}'"}[setup["decision"]]
        groups = [*groups_of(setup), *[f"{c} in {v} quantile tiers" if isinstance(v, int) else
                                         f"{c} cut at {', '.join(f'{x:g}' for x in v)}" for c, v in setup["tiers"].items()]]
        st.markdown(f"Decision: {md(rule)}  \nGroups: {md('; '.join(groups) or '—')}")
        st.caption("Runs locally: no data or usage statistics leave this machine.")


def guarded(body: Callable[[], None]) -> Callable[[], None]:
    """A page whose user mistakes show as one clear error line, never a traceback."""

    def page() -> None:
        try:
            body()
        except FairscanError as e:
            st.error(f"{e}", icon=":material/error:")
            st.page_link(PAGES["data"], label="Change the data or settings", icon=":material/tune:")

    page.__name__ = body.__name__
    return page


# ====================================================================== Data & model
def default_groups(card: dict[str, Any], columns: list[str]) -> tuple[list[str], dict[str, Any]]:
    """A dataset card's default groups: its default tiers, else its purchasing-power column."""
    tiers = {c: v for c, v in (card.get("default_tiers") or {}).items() if c in columns}
    if tiers:
        return [], tiers
    pp = [p["column"] for p in card.get("purchasing_power", []) if p.get("column") in columns]
    sens = [c for c in card.get("sensitive", []) if c in columns]
    return (pp[:1] or sens[:1]), {}


def parse_tiers(column: str, text: str) -> Any:
    """'4' -> 4 quantile tiers, '24,59' -> cut points (the CLI's --tiers syntax)."""
    from fairscan.groups import parse_tier_specs

    return parse_tier_specs([f"{column}={text}"])[column]


def tiers_text(spec: Any) -> str:
    """The text a tier spec is typed as: 4 -> '4'; [24, 59] -> '24,59'; [25] -> '25,' (one cut point)."""
    if isinstance(spec, int):
        return str(spec)
    return ",".join(f"{v:g}" for v in spec) + ("," if len(spec) == 1 else "")


def upload_key(kind: str, files: dict[str, Any]) -> str:
    """A session-wide id of uploaded file(s): their kind and a hash of their bytes."""
    h = hashlib.sha256()
    for f in files.values():
        h.update(f.getvalue())
    return f"upload:{kind}:{h.hexdigest()[:16]}"


def read_upload(f: Any) -> pd.DataFrame:
    """An uploaded CSV/Parquet file read by fairscan.io (known types only, size-checked)."""
    from fairscan.io import read_table

    suffix = Path(f.name).suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise FairscanError(f"file '{f.name}': unsupported type '{suffix}'; upload a .csv or .parquet file")
    if f.size > MAX_UPLOAD_MB * 1024 * 1024:
        raise FairscanError(f"file '{f.name}' is larger than {MAX_UPLOAD_MB} MB")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(f.getvalue())
        try:
            return read_table(path)
        except FairscanError as e:  # name the user's file, not our temporary copy
            raise FairscanError(str(e).replace(str(path), f.name)) from None


def load_uploaded_model(f: Any, trust_pickle: bool) -> Any:
    suffix = Path(f.name).suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise FairscanError(f"model file '{f.name}': unsupported type '{suffix}'; use .skops (or .onnx, or a "
                            "pickle you trust)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"model{suffix}"
        path.write_bytes(f.getvalue())
        try:
            return modeling.load_model(path, trust_pickle=trust_pickle)
        except FairscanError as e:
            raise FairscanError(str(e).replace(str(path), f.name)) from None


def page_data() -> None:
    setup = get_setup()
    st.title("Data & model")
    st.caption("Choose the scored customers to audit, how the offer is decided, and which groups to compare.")
    source = st.radio("Source", ["Bundled dataset with its reference model", "Upload scored data",
                                 "Upload a model and data"], horizontal=True, key="d_source", persist_state="session",
                      index=0 if setup["source"] == "dataset" else 1)
    new = copy.deepcopy(setup)
    report: dict[str, Any] = {}
    if source.startswith("Bundled"):
        names = list(modeling.PRESETS)
        name = st.selectbox("Dataset", names, index=names.index(setup["dataset"]) if setup["source"] == "dataset"
                            else 0, format_func=lambda n: f"{n} — {datasets.card(n)['title']}", key="d_dataset",
                            persist_state="session")
        card = datasets.card(name)
        model_card, df = reference_data(name)
        st.markdown(md(card["description"]))
        m = model_card["metrics"]
        st.caption(f"Reference model: {md(model_card['model'])}; held-out ROC AUC {m['roc_auc']:.3f} on "
                   f"{len(df):,} customers it never saw in training. Sensitive attributes are not model features.")
        if name != setup.get("dataset") or setup["source"] != "dataset":
            sens, tiers = default_groups(card, list(df.columns))
            new.update(source="dataset", dataset=name, upload_id=None, target=card["target"],
                       positive_label=jsonable(card["positive_label"]), score=modeling.SCORE,
                       decision="budget", budget=0.2, threshold=None, prediction=None, sensitive=sens, tiers=tiers)
        data_id = f"reference:{name}"
        report = {"model card (Markdown)": (modeling.card_markdown(model_card), f"{name}-model-card.md"),
                  "data card (JSON)": (json.dumps(card, indent=2), f"{name}-data-card.json")}
        columns_from = df
    else:
        with_model = source.startswith("Upload a model")
        if with_model:
            mf = st.file_uploader("Model file (.skops recommended; .onnx; pickle only if you trust its author)",
                                  type=[s.lstrip(".") for s in MODEL_SUFFIXES], key="d_model_file")
            trust_pickle = False
            if mf is not None and Path(mf.name).suffix.lower() in modeling.PICKLE_SUFFIXES:
                st.warning("This is a pickle file: loading it runs whatever code it contains. Only load it if you "
                           "trust its author completely; better, re-save the model with skops.",
                           icon=":material/warning:")
                trust_pickle = st.checkbox("I trust this file's author: load the pickle", key="d_trust_pickle")
        f = st.file_uploader("Data (CSV or Parquet, at most 200 MB)" + (" with the model's feature columns"
                             if with_model else " with a score or decision column"),
                             type=[s.lstrip(".") for s in DATA_SUFFIXES], key="d_data_file")
        if f is not None and (not with_model or mf is not None):
            files = {"model": mf, "data": f} if with_model else {"data": f}
            upload_id = upload_key("model" if with_model else "scored", files)
            uploads = st.session_state.setdefault("uploads", {})
            is_pickle = with_model and Path(mf.name).suffix.lower() in modeling.PICKLE_SUFFIXES
            if upload_id not in uploads and is_pickle and not trust_pickle:
                st.info("The pickle is not loaded until you tick the box above.", icon=":material/lock:")
            elif upload_id not in uploads:  # read (and score) once per file, not on every rerun
                try:
                    with st.spinner("Reading the upload…"):
                        df = read_upload(f)
                        extra: dict[str, Any] = {}
                        if with_model:
                            model = load_uploaded_model(mf, trust_pickle)
                            col = "score" if "score" not in df.columns else "model_score"
                            df = df.assign(**{col: modeling.score(model, df)})
                            extra = {"model": model, "score_column": col}
                    uploads[upload_id] = {"df": df, "name": " + ".join(x.name for x in files.values()),
                                          "kind": "model" if with_model else "scored", **extra}
                except FairscanError as e:
                    st.error(str(e), icon=":material/error:")
            if upload_id in uploads and setup.get("upload_id") != upload_id:
                df = uploads[upload_id]["df"]
                num = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])
                       and not pd.api.types.is_bool_dtype(df[c])]
                new.update(source="upload", dataset=None, upload_id=upload_id, target=None, positive_label=None,
                           decision="budget", score=uploads[upload_id].get("score_column") or (num[-1] if num else None),
                           budget=0.2, threshold=None, prediction=None, sensitive=[], tiers={})
        if new["source"] != "upload":
            st.info("Upload a file to continue; until then the dashboard keeps showing the current analysis.")
            return
        data_id, columns_from, _ = current_data(new)
    cols = [str(c) for c in columns_from.columns]

    st.subheader("Outcome and decision", divider="gray")
    c1, c2 = st.columns(2)
    none = "(no outcome column)"
    target = c1.selectbox("Outcome (label) column", [none, *cols], key=f"d_target_{data_id}", persist_state="session",
                          index=(cols.index(new["target"]) + 1) if new["target"] in cols else 0,
                          help="Who would have said yes. Without it only the share offered can be audited.")
    new["target"] = None if target == none else target
    if new["target"] is not None and new["source"] == "upload":
        values = list(pd.unique(columns_from[new["target"]].dropna()))[:20]
        auto = "(recognise 0/1, False/True, no/yes)"
        pos = c2.selectbox("Positive value (would say yes)", [auto, *map(str, values)], key=f"d_pos_{data_id}",
                           persist_state="session")
        new["positive_label"] = None if pos == auto else jsonable(values[[str(v) for v in values].index(pos)])
    elif new["target"] is None:
        new["positive_label"] = None
    kinds = {"budget": "Campaign budget (top share by score)", "threshold": "Score threshold",
             "prediction": "Decision column (0/1)"}
    kind = st.radio("How the offer is decided", list(kinds), format_func=kinds.get, horizontal=True,
                    index=list(kinds).index(new["decision"]), key=f"d_decision_{data_id}", persist_state="session")
    new["decision"] = kind
    numeric = [c for c in cols if pd.api.types.is_numeric_dtype(columns_from[c])
               and not pd.api.types.is_bool_dtype(columns_from[c])]
    if kind in ("budget", "threshold"):
        if not numeric:
            raise FairscanError("the data has no numeric column to use as a score")
        c1, c2 = st.columns(2)
        new["score"] = c1.selectbox("Score column (higher = offered first)", numeric, key=f"d_score_{data_id}",
                                    index=numeric.index(new["score"]) if new["score"] in numeric else 0,
                                    persist_state="session")
        if kind == "budget":
            new["budget"] = c2.slider("Budget: share of customers offered (%)", 1, 100,
                                      round(100 * (new["budget"] or 0.2)), key=f"d_budget_{data_id}",
                                      persist_state="session") / 100
        else:
            s = columns_from[new["score"]]
            lo, hi = float(s.min()), float(s.max())
            default = new["threshold"] if new["threshold"] is not None else float(s.quantile(0.8))
            new["threshold"] = c2.number_input("Offer when score >=", min_value=lo, max_value=hi,
                                               value=min(max(default, lo), hi), format="%.4f",
                                               key=f"d_threshold_{data_id}", persist_state="session")
    else:
        new["prediction"] = st.selectbox("Decision column", cols, key=f"d_prediction_{data_id}",
                                         index=cols.index(new["prediction"]) if new["prediction"] in cols else 0,
                                         persist_state="session")

    st.subheader("Customer groups", divider="gray")
    taken = {new["target"], new["score"] if kind != "prediction" else None, new["prediction"], modeling.ROW_ID}
    candidates = [c for c in cols if c not in taken]
    sens = st.multiselect("Categorical attributes (each value is a group)", candidates, key=f"d_sensitive_{data_id}",
                          default=[c for c in new["sensitive"] if c in candidates], persist_state="session")
    tier_cols = st.multiselect("Numeric attributes in tiers", [c for c in candidates if c in numeric],
                               default=[c for c in new["tiers"] if c in candidates], key=f"d_tiercols_{data_id}",
                               persist_state="session")
    tiers: dict[str, Any] = {}
    bad = False
    for c, col in zip(tier_cols, st.columns(max(1, len(tier_cols))), strict=False):
        text = col.text_input(f"{c}: quantile tiers N, or cut points a,b", tiers_text(new["tiers"].get(c, 4)),
                              key=f"d_tier_{data_id}_{c}", persist_state="session")
        try:
            tiers[c] = parse_tiers(c, text)
        except FairscanError as e:
            col.error(str(e).replace("--tiers ", ""), icon=":material/error:")
            bad = True
    new["sensitive"] = [c for c in sens if c not in tiers]
    new["tiers"] = tiers
    st.caption("Tiers are right-closed: '24,59' gives (..24], (24..59], (59..]; '25,' is one cut point; '4' gives "
               "quartiles. Missing values "
               "form an 'unknown' group. Groups under 10 people are suppressed; under 30 get no verdict.")

    purchasing_power(new, candidates, numeric, data_id)

    if not groups_of(new) and not new["tiers"]:
        st.warning("Choose at least one attribute to compare groups by.", icon=":material/warning:")
        return
    if bad:
        return
    st.session_state["setup"] = new
    try:
        r = run_audit(new)
        c = r.verdict_counts()
        st.success(f"Ready: {r.meta['n_rows']:,} customers, decision by {md(r.meta['decision']['description'])}. "
                   f"{c['fail']} fail · {c['pass']} pass · {c['insufficient']} insufficient evidence.",
                   icon=":material/check_circle:")
        st.page_link(PAGES["overview"], label="See the overview", icon=":material/insights:")
        downloads("fairscan-audit", r.to_html, r.to_markdown, r.to_json,
                  note="The audit of these settings (what the overview shows).")
    except FairscanError as e:
        st.error(str(e), icon=":material/error:")
    if report:
        st.subheader("Download the cards", divider="gray")
        cols2 = st.columns(len(report))
        for col, (label, (text, fname)) in zip(cols2, report.items(), strict=True):
            col.download_button(label, text, file_name=fname, key=f"dl_{fname}", on_click="ignore",
                                icon=":material/download:")


def purchasing_power(new: dict[str, Any], candidates: list[str], numeric: list[str], data_id: str) -> None:
    """Choose how purchasing power is inferred when it is not a column (sets new["infer"])."""
    st.subheader("Purchasing power", divider="gray")
    kinds = {"none": "Not inferred (a wealth column may be tiered above, e.g. bank: balance)",
             "spend": "Spend tiers: each customer's total spend over these rows",
             "model": "Predicted: a proxy model of an income column known for some customers"}
    current = (new.get("infer") or {}).get("kind", "none")
    kind = st.radio("Infer purchasing power", list(kinds), format_func=kinds.get, key=f"d_pp_{data_id}",
                    index=list(kinds).index(current), persist_state="session")
    old = new.get("infer") or {}
    if kind == "spend":
        c1, c2, c3 = st.columns(3)
        customer = c1.selectbox("Customer id column", candidates, key=f"d_pp_customer_{data_id}",
                                index=candidates.index(old["customer"]) if old.get("customer") in candidates else 0)
        amounts = [c for c in numeric if c in candidates and c != customer]
        if not amounts:
            st.error("No numeric column to sum as spend.", icon=":material/error:")
            new["infer"] = None
            return
        amount = c2.selectbox("Amount column (summed per customer)", amounts, key=f"d_pp_amount_{data_id}",
                              index=amounts.index(old["amount"]) if old.get("amount") in amounts else 0)
        n = int(c3.number_input("Tiers (quantiles of customers' spend)", 2, 10, int(old.get("n", 4)),
                                key=f"d_pp_n_{data_id}"))
        new["infer"] = {"kind": "spend", "customer": customer, "amount": amount, "n": n}
        st.caption("Each row gets its customer's tier: quantiles of the customers' total spend, so every tier "
                   "holds about as many customers.")
    elif kind == "model":
        c1, c2 = st.columns(2)
        column = c1.selectbox("Income (tier) column, known for some customers — missing for the others",
                              candidates, key=f"d_pp_column_{data_id}",
                              index=candidates.index(old["column"]) if old.get("column") in candidates else 0)
        none = "(one row per customer)"
        people = [none, *[c for c in candidates if c != column]]
        person = c2.selectbox("Customer id column, if customers have several rows", people,
                              key=f"d_pp_person_{data_id}",
                              index=people.index(old["person"]) if old.get("person") in people else 0,
                              help="Keeps each customer's rows in one cross-validation fold and out of the "
                                   "features, so that the accuracy measures inference, not recognition.")
        new["infer"] = {"kind": "model", "column": column, "person": None if person == none else person}
        st.caption("A gradient-boosting model learns the tier from the other columns (never the outcome, the "
                   "score or the groups) where it is known; everyone is then assigned their most probable tier, "
                   "known customers by a model that never saw them (out-of-fold). The overview shows how much the "
                   "verdicts depend on this inference.")
    else:
        new["infer"] = None


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


@st.cache_resource(show_spinner="Auditing by hard, soft and observed tiers…", max_entries=8)
def _inferred_audit(key: str, _df: pd.DataFrame, _proxy: Any) -> Any:
    from fairscan.inferred import audit_inferred

    kw = json.loads(key)
    kw.pop("data_id")
    return audit_inferred(_df, _proxy, **kw)


def cached_inferred_audit(setup: dict[str, Any]) -> Any:
    data_id, df, info = current_data(setup)
    kw = {**audit_kwargs(setup), "sensitive": setup["sensitive"]}  # audit_inferred adds the tier itself
    return _inferred_audit(json.dumps({"data_id": data_id, **kw}, sort_keys=True, default=jsonable),
                           df.drop(columns=[INFERRED]), info["proxy"])


# =========================================================================== Overview
def page_overview() -> None:
    setup = get_setup()
    r = run_audit(setup)
    st.title("Overview")
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
                st.caption(f"{n_sup} group(s) with fewer than {sup} people are suppressed (not charted).")
    with st.expander("All verdicts, with the numbers behind them"):
        f = r.findings.assign(order=r.findings["verdict"].map({"fail": 0, "insufficient": 1, "pass": 2}))
        f = f.sort_values(["order", "attribute", "metric"])
        st.dataframe(f, hide_index=True, column_order=["verdict", "attribute", "metric", "group", "message"],
                     key="ov_findings")
    downloads("fairscan-audit", r.to_html, r.to_markdown, r.to_json)


# ======================================================================== Explorer
def page_explorer() -> None:
    setup = get_setup()
    st.title("Threshold & budget explorer")
    if setup["decision"] == "prediction":
        st.info("The explorer moves a cut along a score; this analysis uses a fixed decision column. Choose a score "
                "column on the Data & model page.", icon=":material/info:")
        return
    ex = get_explorer(setup)
    st.caption("Move the cut: every group's rates come at once from score histograms built once "
               f"({len(ex.thresholds):,} cut points" + (", every distinct score" if ex.exact else
                                                       ", quantiles of the scores") + ").")
    modes = {"budget": "Campaign budget", "threshold": "Score threshold"}
    mode = st.segmented_control("Move", list(modes), format_func=modes.get, key="ex_mode",
                                default="threshold" if setup["decision"] == "threshold" else "budget") or "budget"
    if mode == "budget":
        start = round(100 * setup["budget"]) if setup["decision"] == "budget" else 20
        pct_ = st.slider("Budget: share of customers offered (%)", 1, 100, start, key="ex_budget")
        cut = ex.at_budget(pct_ / 100)
    else:
        edges = [float(e) for e in ex.thresholds]
        want = setup["threshold"] if setup["decision"] == "threshold" else ex.at_budget(0.2).threshold
        start = edges[min(len(edges) - 1, int(pd.Index(edges).searchsorted(want)))]
        t = st.select_slider("Offer when score >=", edges, value=start, format_func=lambda v: f"{v:.4f}",
                             key="ex_threshold")
        cut = ex.at_threshold(t)
    c1, c2, c3 = st.columns(3)
    c1.metric("Offered", f"{cut.offered:,}", border=True, help="customers at or above the cut score")
    c2.metric("Share offered", f"{100 * cut.offered_share:.1f}%", border=True)
    c3.metric("Cut score", "—" if math.isinf(cut.threshold) else f"{cut.threshold:.4f}", border=True)
    st.caption(md(cut.note))

    labelled = ex.target is not None
    metrics = [("selection_rate", "offered (95% CI)")]
    if labelled:
        metrics += [("true_positive_rate", "offered if yes"), ("false_negative_rate", "missed if yes (95% CI)")]
    st.subheader("Every group at this cut", divider="gray")
    group_table(cut.groups, metrics, ex.suppress_below, key="ex_groups")

    st.subheader("Rates against the cut", divider="gray")
    c1, c2, c3 = st.columns(3)
    attr = c1.selectbox("Attribute", ex.attributes, key="ex_attr")
    opts = {"selection_rate": "Offered (selection rate)"}
    if labelled:
        opts["false_negative_rate"] = "Missed among those who would say yes"
    metric = c2.radio("Rate", list(opts), format_func=opts.get, key="ex_metric", horizontal=True)
    xs = {"threshold": "Cut score", "offered_share": "Share of all customers offered"}
    x = c3.radio("Horizontal axis", list(xs), format_func=xs.get, key="ex_x", horizontal=True)
    curve = ex.curve(attr, metrics=list(opts), max_points=250)
    current = cut.offered_share if x == "offered_share" else (cut.threshold if not math.isinf(cut.threshold)
                                                               else float(ex.thresholds[-1]))
    show_chart(charts.rate_curves(curve, metric, opts[metric], x, xs[x], current,
                                  cut.groups[cut.groups["attribute"] == attr]), key="ex_chart")
    if metric == "selection_rate":
        st.caption(f"Shaded: the four-fifths band, from 80% of the most-offered group's rate up to that rate. A "
                   f"group below it fails the four-fifths rule at that cut. Here: "
                   f"{md(', '.join(f'{a} {100 * b:.1f}%' for a, b in cut.band.items() if not math.isnan(b)))}.")

    def report(kind: str) -> str:
        r = run_audit(setup, threshold=cut.threshold)
        return {"html": r.to_html, "md": r.to_markdown, "json": r.to_json}[kind]()

    if math.isinf(cut.threshold):
        st.caption("Nobody is offered at this cut: no report.")
    else:
        downloads("fairscan-audit-at-cut", lambda: report("html"), lambda: report("md"), lambda: report("json"),
                  note=f"The full audit (with verdicts) at this cut: offer when score >= {cut.threshold:.6g}.")


# ======================================================================= Mitigations
@st.cache_resource(show_spinner=False, max_entries=8)
def cached_compare(key: str, _data: pd.DataFrame, _model: Any) -> Any:
    from fairscan.mitigation import compare

    kw = json.loads(key)
    kw.pop("data_id")
    return compare(_data, model=_model, **kw)


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
        min_ratio = c2.slider("Policy: selection-rate ratio at least", 0.5, 1.0, 0.8, 0.05, key="mit_ratio")
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


# =================================================================== Recommendations
@st.cache_resource(show_spinner="Ranking coupons with the coupon reference model…")
def recs_example(k: int) -> dict[str, Any]:
    return coupon_recs_example(k)


@st.cache_resource(show_spinner="Auditing the recommendation lists…")
def recs_audit(k: int) -> Any:
    from fairscan.recs import audit_recs

    ex = recs_example(k)
    return audit_recs(ex["recs"], ex["users"], ex["items"], user_group="income", item_group="coupon", k=k,
                      truth=ex["truth"])


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


@st.cache_resource(show_spinner=False, max_entries=8)
def cached_tradeoff(method: str, focus: str, k: int) -> pd.DataFrame:
    from fairscan.mitigation.rerank import tradeoff_curve

    ex = recs_example(k)
    return tradeoff_curve(ex["candidates"], ex["users"], ex["items"], ex["truth"], user_group="income",
                          item_group="coupon", method=method, k=k, focus_item_group=focus,
                          protected_item_group=focus if method == "floor" else None)


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


# ============================================================================ Reviews
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


# ========================================================================= navigation
# Pages carry no icon: Streamlit would fetch a Material-icon favicon from fonts.gstatic.com.
def page_home() -> None:
    """The root URL: go to the overview, so that the overview keeps its own URL (/overview)."""
    st.switch_page(PAGES["overview"])


PAGES = {
    "home": st.Page(page_home, title="fairscan", url_path="home", default=True, visibility="hidden"),
    "overview": st.Page(guarded(page_overview), title="Overview", url_path="overview"),
    "data": st.Page(guarded(page_data), title="Data & model", url_path="data"),
    "explorer": st.Page(guarded(page_explorer), title="Threshold & budget",
                        url_path="explorer"),
    "mitigations": st.Page(guarded(page_mitigations), title="Mitigations",
                           url_path="mitigations"),
    "recommendations": st.Page(guarded(page_recs), title="Recommendations",
                               url_path="recommendations"),
    "reviews": st.Page(guarded(page_reviews), title="Reviews", url_path="reviews"),
}

nav = st.navigation({"Targeting": [PAGES["home"], PAGES["overview"], PAGES["explorer"], PAGES["mitigations"]],
                     "Setup": [PAGES["data"]],
                     "More": [PAGES["recommendations"], PAGES["reviews"]]})
nav.run()
sidebar(get_setup())  # after the page: it shows the settings the page may just have changed
