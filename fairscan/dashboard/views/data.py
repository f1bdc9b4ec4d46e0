"""Data & model: the scored customers, how the offer is decided, and the groups to compare."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from fairscan import datasets, modeling
from fairscan.dashboard.state import (
    DATA_SUFFIXES,
    MODEL_SUFFIXES,
    checked_params,
    current_data,
    default_groups,
    get_setup,
    groups_of,
    jsonable,
    load_uploaded_model,
    max_upload_mb,
    parse_tiers,
    read_counts_upload,
    read_upload,
    reference_data,
    run_audit,
    tiers_text,
    upload_key,
)
from fairscan.dashboard.widgets import downloads, md, page, registry_model_field
from fairscan.errors import FairscanError


def page_data() -> None:
    setup = get_setup()
    st.title("Data & model")
    st.caption("Choose the scored customers to audit, how the offer is decided, and which groups to compare.")
    sources = ["Bundled dataset with its reference model", "Upload scored data", "Upload a model and data",
               "Upload a counts file"]
    source = st.radio("Source", sources, horizontal=True, key="d_source", persist_state="session",
                      index={"dataset": 0, "counts": 3}.get(setup["source"], 1))
    new = copy.deepcopy(setup)
    report: dict[str, Any] = {}
    if source == sources[3]:
        counts_source(setup)
        return
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
                       decision="budget", budget=0.2, threshold=None, prediction=None, sensitive=sens, tiers=tiers,
                       reference={})
        data_id = f"reference:{name}"
        report = {"model card (Markdown)": (modeling.card_markdown(model_card), f"{name}-model-card.md"),
                  "data card (JSON)": (json.dumps(card, indent=2), f"{name}-data-card.json")}
        columns_from = df
    else:
        with_model = source.startswith("Upload a model")
        if with_model:
            where = st.radio("The model", ["a file", "an MLflow registry"], horizontal=True, key="d_model_from",
                             help="A registry model is fetched without running its code, as on the command line")
            if where == "a file":
                mf = st.file_uploader("Model file (.skops recommended; .onnx; pickle only if you trust its author)",
                                      type=[s.lstrip(".") for s in MODEL_SUFFIXES], key="d_model_file")
            else:
                mf = registry_model_field()
            trust_pickle = False
            if mf is not None and Path(mf.name).suffix.lower() in modeling.PICKLE_SUFFIXES:
                st.warning("This is a pickle file: loading it runs whatever code it contains. Only load it if you "
                           "trust its author completely; better, re-save the model with skops.",
                           icon=":material/warning:")
                trust_pickle = st.checkbox("I trust this file's author: load the pickle", key="d_trust_pickle")
        f = st.file_uploader(f"Data (CSV or Parquet, at most {max_upload_mb()} MB)" + (" with the model's feature columns"
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
                           budget=0.2, threshold=None, prediction=None, sensitive=[], tiers={}, reference={})
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
    reference_groups(new, data_id)

    if not groups_of(new) and not new["tiers"]:
        st.warning("Choose at least one attribute to compare groups by.", icon=":material/warning:")
        return
    if bad:
        return
    try:
        checked_params(new)
    except FairscanError as e:
        st.error(str(e), icon=":material/error:")
        return
    if any(new.get(k) != setup.get(k) for k in ("source", "dataset", "upload_id")):
        new["subgroup"] = None  # a subgroup found in other data does not apply to these
    st.session_state["setup"] = new
    try:
        r = run_audit(new)
        c = r.verdict_counts()
        st.success(f"Ready: {r.meta['n_rows']:,} customers, decision by {md(r.meta['decision']['description'])}. "
                   f"{c['fail']} fail · {c['pass']} pass · {c['insufficient']} insufficient evidence.",
                   icon=":material/check_circle:")
        st.page_link(page("overview"), label="See the overview", icon=":material/insights:")
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


def counts_source(setup: dict[str, Any]) -> None:
    """A counts file instead of rows: its rule, label and groups are the file's; the overview
    audits it (the pages that need rows say so)."""
    st.caption("A counts file (written by 'fairscan counts') holds, per group, label and decision, only the number of "
               "customers: no rows. The overview audits it exactly as it would audit the rows; finding subgroups, "
               "explaining gaps, comparing models and mitigating need the rows themselves.")
    f = st.file_uploader(f"Counts file (Parquet, at most {max_upload_mb()} MB)", type=["parquet"], key="d_counts_file")
    if f is None:
        st.info("Upload a counts file to continue; until then the dashboard keeps showing the current analysis.")
        return
    upload_id = upload_key("counts", {"counts": f})
    uploads = st.session_state.setdefault("uploads", {})
    if upload_id not in uploads:
        try:
            uploads[upload_id] = {"counts": read_counts_upload(f), "name": f.name, "kind": "counts"}
        except FairscanError as e:
            st.error(str(e), icon=":material/error:")
            return
    c = uploads[upload_id]["counts"]
    prot = c.protection
    st.markdown(f"**{md(f.name)}**: {c.n_rows:,} customers; decision by "
                f"{md(c.meta['decision_description']['description'])}; groups: "
                f"{md(', '.join(g.name for g in c.groupings))}; protection: {md(prot['kind'])}"
                + (f" (ε = {prot['epsilon']:g})" if prot.get("epsilon") else ""))
    new = {**copy.deepcopy(setup), "source": "counts", "dataset": None, "upload_id": upload_id,
           "target": c.meta.get("target"), "positive_label": c.meta.get("positive_label"), "decision": "counts",
           "score": None, "budget": None, "threshold": None, "prediction": None,
           "sensitive": [g.name for g in c.groupings if len(g.attributes) == 1], "tiers": {}, "infer": None,
           "reference": {}, "subgroup": None}
    st.session_state["setup"] = new
    try:
        r = run_audit(new)
        v = r.verdict_counts()
        st.success(f"Ready: {r.meta['n_rows']:,} customers. {v['fail']} fail · {v['pass']} pass · "
                   f"{v['insufficient']} insufficient evidence.", icon=":material/check_circle:")
        st.page_link(page("overview"), label="See the overview", icon=":material/insights:")
    except FairscanError as e:
        st.error(str(e), icon=":material/error:")


def reference_groups(new: dict[str, Any], data_id: str) -> None:
    """Each attribute's reference group (default: its largest), typed as a group's name or a
    tier's short name (Q4): the audit resolves it and names the groups if it matches none."""
    attrs = [*groups_of(new), *new["tiers"]]
    old = new.get("reference") or {}
    with st.expander("Reference groups: whom the others are compared with (default: each attribute's largest "
                     "group)", expanded=bool(old)):
        refs = {}
        for attr, col in zip(attrs, st.columns(max(1, len(attrs))), strict=False):
            text = col.text_input(attr, old.get(attr, ""), placeholder="the largest group", key=f"d_ref_{data_id}_{attr}",
                                  persist_state="session", help="A group's name, or a tier's short name such as Q4")
            if text.strip():
                refs[attr] = text.strip()
    new["reference"] = refs


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


page_data()
