"""The dashboard's state: this session's analysis settings, and every cached computation.

Everything here is a call into the library (``fairscan.audit``, ``ThresholdExplorer``,
``infer_tiers``, ``mitigation.compare``, ``recs.audit_recs``) behind Streamlit's caches, keyed by
a data id and the JSON of the settings: pages read state from here and never compute.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

import fairscan
from fairscan import datasets, modeling
from fairscan.audit import run_audit as audit_by_params
from fairscan.errors import FairscanError
from fairscan.explore import ThresholdExplorer, coupon_recs_example
from fairscan.inferred import INFERRED, infer_tiers
from fairscan.params import AuditParams, audit_params

__all__ = [
    "DATA_SUFFIXES", "DEFAULT_SETUP", "EVERYONE_ELSE", "IN_SUBGROUP", "MODEL_SUFFIXES", "REGISTRY_MODEL", "SUBGROUP", "UPLOAD_MODEL", "RegistryRef",
    "audit_kwargs", "cached_audit", "cached_compare", "cached_discovery", "cached_explanation", "cached_explorer",
    "cached_inference", "cached_inferred_audit", "cached_model_comparison", "cached_recs_audit", "cached_tradeoff",
    "cached_value_audit", "cached_value_repair",
    "checked_params", "comparison_candidates", "counts_of_setup", "current_data", "default_groups",
    "discover_kwargs", "full_dataset", "get_explorer", "get_setup", "groups_of", "jsonable", "load_uploaded_model",
    "max_upload_mb", "model_of", "parse_tiers", "preset_model", "read_counts_upload", "read_upload", "recs_audit",
    "recs_example", "reference_data", "retail_audit_key", "retail_example", "retail_lines", "run_audit",
    "spend_tiers_of",
    "tiers_text", "upload_key", "warm_up", "with_inferred", "with_progress", "with_subgroup",
]

DEFAULT_SETUP: dict[str, Any] = {
    "source": "dataset", "dataset": "bank", "upload_id": None,
    "target": "y", "positive_label": "yes",
    "decision": "budget", "score": "score", "budget": 0.2, "threshold": None, "prediction": None,
    "sensitive": [], "tiers": {"age": [24, 59], "balance": 4}, "infer": None, "reference": {},
}
DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
MODEL_SUFFIXES = (".skops", ".onnx", *modeling.PICKLE_SUFFIXES)


def get_setup() -> dict[str, Any]:
    """This session's analysis settings, or the defaults (a deep link starts with those)."""
    return copy.deepcopy(st.session_state.get("setup", DEFAULT_SETUP))


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
    if setup["source"] == "counts":
        raise FairscanError("this page needs the customers' rows, and the current analysis is a counts file (counts "
                            "only): the overview audits it; upload scored data on the Data & model page for this page")
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
    data_id, df = with_subgroup(data_id, df, setup)
    return data_id, df, {**info, "proxy": proxy}


def groups_of(setup: dict[str, Any]) -> list[str]:
    """The categorical attributes to audit by, with the inferred tier when there is one and
    the discovered subgroup when one is being audited."""
    return [*setup["sensitive"], *([INFERRED] if setup.get("infer") else []),
            *([SUBGROUP] if setup.get("subgroup") else [])]


#: the column that marks a discovered subgroup audited on the overview, and its two groups
SUBGROUP = "subgroup"
IN_SUBGROUP, EVERYONE_ELSE = "in the subgroup", "everyone else"


def with_subgroup(data_id: str, df: pd.DataFrame, setup: dict[str, Any]) -> tuple[str, pd.DataFrame]:
    """The rows with a column marking the discovered subgroup being audited, if any: each row's
    groups resolved as the discovery resolved them (fairscan.groups.assign_groups)."""
    sub = setup.get("subgroup")
    if not sub:
        return data_id, df
    from fairscan.groups import assign_groups

    conditions = [tuple(c) for c in sub["conditions"]]
    cols = [a for a, _ in conditions]
    tiers = {c: t for c, t in sub["tiers"].items() if c in cols}
    groups = assign_groups(df, [c for c in cols if c not in tiers], tiers)
    inside = np.ones(len(df), dtype=bool)
    for attr, group in conditions:
        inside &= groups[attr].astype(str).to_numpy() == group
    marks = pd.Categorical(np.where(inside, IN_SUBGROUP, EVERYONE_ELSE), categories=[IN_SUBGROUP, EVERYONE_ELSE])
    return f"{data_id}+{json.dumps(sub, sort_keys=True)}", df.assign(**{SUBGROUP: marks})


def with_progress(what: str, work: Callable[[Callable[[float, str], None]], Any]) -> Any:
    """Run ``work(progress)`` under a progress bar that says ``what`` and each step the library
    reports (``progress(fraction, text)``); the bar goes once the work is done or stopped."""
    bar = st.progress(0.0, text=f"{what}…")
    try:
        return work(lambda fraction, text: bar.progress(min(1.0, max(0.0, fraction)), text=f"{what}: {text}"))
    finally:
        bar.empty()


def discover_kwargs(setup: dict[str, Any]) -> dict[str, Any]:
    """fairscan.discover keyword arguments of the current settings' data, label and decision."""
    kw: dict[str, Any] = {"target": setup["target"], "positive_label": setup["positive_label"]}
    if setup["decision"] == "prediction":
        kw["prediction"] = setup["prediction"]
    else:
        kw["score"] = setup["score"]
        kw[setup["decision"]] = setup[setup["decision"]]
    return kw


@st.cache_resource(show_spinner=False, max_entries=16)
def _discovery(key: str, _df: pd.DataFrame) -> Any:
    from fairscan.discover import discover

    kw = json.loads(key)
    kw.pop("data_id")
    return with_progress("Searching the subgroups", lambda progress: discover(_df, progress=progress, **kw))


def model_of(setup: dict[str, Any]) -> Any:
    """The model behind the current scores: the bundled dataset's reference model, an uploaded
    model, or None (uploaded scores without their model)."""
    if setup["source"] == "dataset":
        return f"reference:{setup['dataset']}"
    return st.session_state.get("uploads", {}).get(setup["upload_id"], {}).get("model")


@st.cache_resource(show_spinner=False, max_entries=16)
def _explanation(key: str, _df: pd.DataFrame, _model: Any) -> Any:
    from fairscan.explain import explain

    kw = json.loads(key)
    kw.pop("data_id")
    return with_progress("Explaining the gap", lambda progress: explain(_df, model=_model, progress=progress, **kw))


def cached_explanation(setup: dict[str, Any], group: dict[str, str], reference: dict[str, str] | None) -> Any:
    """The gap of ``group`` against ``reference`` (None: everyone else) attributed to the
    model's features, cached per settings."""
    data_id, df, _ = current_data(setup)
    if setup["source"] == "dataset":  # the held-out scores carry the groups; the model reads every feature
        df = modeling.with_features(setup["dataset"], df, full_dataset(setup["dataset"]))
    kw = {"group": group, "reference": reference or None, "tiers": setup["tiers"],
          setup["decision"]: setup[setup["decision"]], "data_id": data_id}
    return _explanation(json.dumps(kw, sort_keys=True, default=jsonable), df, model_of(setup))


def cached_discovery(setup: dict[str, Any], **options: Any) -> Any:
    """Subgroup discovery on the current rows (without an audited subgroup's marks), cached per
    settings; ``options``: metric, max_depth, min_size, direction, reference."""
    data_id, df, _ = current_data({**setup, "subgroup": None})
    drop = [c for c in (modeling.ROW_ID,) if c in df.columns]
    kw = {**discover_kwargs(setup), **options, "exclude": drop, "data_id": data_id}
    return _discovery(json.dumps(kw, sort_keys=True, default=jsonable), df)


def audit_kwargs(setup: dict[str, Any]) -> dict[str, Any]:
    """fairscan.audit keyword arguments of the current settings (JSON-serialisable)."""
    kw: dict[str, Any] = {"target": setup["target"], "positive_label": setup["positive_label"],
                          "sensitive": groups_of(setup), "tiers": setup["tiers"]}
    if setup["decision"] == "prediction":
        kw["prediction"] = setup["prediction"]
    else:
        kw["score"] = setup["score"]
        kw[setup["decision"]] = setup[setup["decision"]]
    audited = {*kw["sensitive"], *kw["tiers"]}
    reference = {a: g for a, g in (setup.get("reference") or {}).items() if a in audited}
    if setup.get("subgroup"):  # the discovered subgroup is compared with everyone else, as it was found
        reference[SUBGROUP] = EVERYONE_ELSE
    if reference:  # a group's name, or a tier's short name (Q4): fairscan.audit resolves it
        kw["reference"] = reference
    return kw


def checked_params(setup: dict[str, Any]) -> AuditParams:
    """The current settings through the validator the CLI and reviews use: a FairscanError
    names what to change before anything is computed."""
    return audit_params(**audit_kwargs(setup))


@st.cache_data(show_spinner="Auditing…", max_entries=32)
def cached_audit(data_id: str, _df: pd.DataFrame, kwargs_json: str) -> fairscan.AuditResult:
    return audit_by_params(_df, audit_params(**json.loads(kwargs_json)))


def read_counts_upload(f: Any) -> Any:
    """An uploaded counts file, read and checked by ``Counts.read`` (errors name the user's file)."""
    from fairscan.engines.counts import Counts

    if f.size > max_upload_mb() * 1024 * 1024:
        raise FairscanError(f"file '{f.name}' is larger than {max_upload_mb()} MB")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "counts.parquet"
        path.write_bytes(f.getvalue())
        try:
            return Counts.read(path)
        except FairscanError as e:
            raise FairscanError(str(e).replace(str(path), f.name)) from None


def counts_of_setup(setup: dict[str, Any]) -> Any:
    """The uploaded counts file of a counts analysis (a one-line error once it is gone)."""
    info = st.session_state.get("uploads", {}).get(setup["upload_id"])
    if info is None:
        raise FairscanError("the uploaded counts file is no longer in this session (uploads are not kept across "
                            "reloads): upload it again on the Data & model page")
    return info


@st.cache_data(show_spinner="Auditing the counts…", max_entries=16)
def _counts_audit(upload_id: str, _counts: Any, kwargs_json: str) -> fairscan.AuditResult:
    return fairscan.audit(_counts, **json.loads(kwargs_json))


def run_audit(setup: dict[str, Any], **override: Any) -> fairscan.AuditResult:
    if setup["source"] == "counts":  # the file holds the rule, label and groups
        info = counts_of_setup(setup)
        kw = {"reference": setup.get("reference") or None, **override}
        return _counts_audit(setup["upload_id"], info["counts"], json.dumps(kw, sort_keys=True, default=jsonable))
    data_id, df, _ = current_data(setup)
    kw = {**audit_kwargs(setup), **override}
    if "threshold" in override:
        kw.pop("budget", None)
    return cached_audit(data_id, df, json.dumps(kw, sort_keys=True, default=jsonable))


@st.cache_resource(show_spinner="Building the score histograms…", max_entries=16)
def cached_explorer(data_id: str, _df: pd.DataFrame, kwargs_json: str) -> ThresholdExplorer:
    return ThresholdExplorer(_df, **json.loads(kwargs_json))


@st.cache_resource(show_spinner=False, max_entries=8)
def _counts_explorer(upload_id: str, _counts: Any) -> ThresholdExplorer:
    return ThresholdExplorer.from_counts(_counts)


def get_explorer(setup: dict[str, Any]) -> ThresholdExplorer:
    if setup["source"] == "counts":  # its score histograms, if it has them
        return _counts_explorer(setup["upload_id"], counts_of_setup(setup)["counts"])
    data_id, df, _ = current_data(setup)
    kw = {"score": setup["score"], "target": setup["target"], "positive_label": setup["positive_label"],
          "sensitive": groups_of(setup), "tiers": setup["tiers"]}
    return cached_explorer(data_id, df, json.dumps(kw, sort_keys=True, default=jsonable))


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


@st.cache_resource(show_spinner=False, max_entries=8)
def cached_compare(key: str, _data: pd.DataFrame, _model: Any) -> Any:
    from fairscan.mitigation import compare

    kw = json.loads(key)
    kw.pop("data_id")
    return with_progress("Comparing the mitigations",
                         lambda progress: compare(_data, model=_model, progress=progress, **kw))


#: the candidate of the model comparison that asks for a model file
UPLOAD_MODEL = "Upload a model file…"
REGISTRY_MODEL = "A model from an MLflow registry…"


def comparison_candidates(setup: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What the current data can compare, label -> candidate: ``{"kind": "model", "model":
    ID}`` (a bundled reference model, its logistic-regression preset, the model uploaded with
    the data, or a file uploaded for the comparison) or ``{"kind": "score" | "prediction",
    "column": COL}``. With a decision column, only decision columns (a model needs a score rule)."""
    _, df, info = current_data(setup)
    skip = {setup["target"], modeling.ROW_ID, *groups_of(setup), *setup["tiers"]}
    cols = [str(c) for c in df.columns if c not in skip]
    if setup["decision"] == "prediction":
        return {f"decision column '{c}'": {"kind": "prediction", "column": c} for c in cols
                if df[c].nunique(dropna=True) <= 2}
    out: dict[str, dict[str, Any]] = {}
    if setup["source"] == "dataset":
        name = setup["dataset"]
        out[f"reference model ({name}, gradient boosting)"] = {"kind": "model", "model": f"reference:{name}"}
        out[f"logistic regression ({name} preset: same features and training rows)"] = {
            "kind": "model", "model": f"preset:{name}:logistic"}
    else:
        if info.get("model") is not None:
            out["the model uploaded with the data"] = {"kind": "model", "model": "upload:data"}
        for c in cols:
            if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]):
                out[f"score column '{c}'"] = {"kind": "score", "column": c}
    out[UPLOAD_MODEL] = {"kind": "model", "model": "upload:file"}
    out[REGISTRY_MODEL] = {"kind": "model", "model": "registry"}
    return out


@st.cache_resource(show_spinner="Training the logistic-regression preset on the reference model's training rows…")
def preset_model(dataset: str, kind: str) -> Any:
    """A bundled dataset's preset model of another kind, trained on the same split and seed as
    its reference model (so the reference's held-out rows are held out for it too)."""
    return modeling.train_preset(dataset, model=kind).estimator  # type: ignore[arg-type]


def _model(setup: dict[str, Any], cand: dict[str, Any]) -> Any:
    """The model a candidate names: a reference spec or file path (read, hashed and loaded by
    the comparison), or a fitted object."""
    ident = cand["model"]
    if ident.startswith("preset:"):
        _, dataset, kind = ident.split(":")
        return preset_model(dataset, kind)
    if ident == "upload:data":
        return st.session_state.get("uploads", {}).get(setup["upload_id"], {}).get("model")
    if ident == "upload:file":
        return cand["path"]
    if ident == "registry":  # a models:/ or runs:/ URI, fetched and checked by the comparison
        return cand["uri"]
    return ident


@st.cache_resource(show_spinner="Comparing the two models on the same customers…", max_entries=8)
def _model_comparison(key: str, _df: pd.DataFrame, _a: Any, _b: Any) -> Any:
    from fairscan.compare import compare

    kw = json.loads(key)
    kinds, names = kw.pop("kinds"), kw.pop("names")
    kw.pop("sides")  # in the key only: which models or columns
    trust_pickle = kw.pop("trust_pickle")
    kw.pop("data_id")
    df = _df
    if kinds == ["model", "model"]:
        return compare(df, models=[_a, _b], names=names, trust_pickle=trust_pickle, **kw)
    if "model" in kinds:  # a model against a score column: score it into a column of its own
        cols = []
        for i, (kind, x) in enumerate(zip(kinds, (_a, _b), strict=True)):
            if kind == "model":
                scored, col, _ = modeling.score_frame(df, x, kw.get("positive_label"), trust_pickle=trust_pickle)
                column = f"score of {names[i]}"
                df = df.assign(**{column: scored[col].to_numpy()})
                cols.append(column)
            else:
                cols.append(x)
        return compare(df, scores=cols, names=names, **kw)
    return compare(df, **{"scores" if kinds[0] == "score" else "predictions": [_a, _b]}, names=names, **kw)


def cached_model_comparison(setup: dict[str, Any], a: dict[str, Any], b: dict[str, Any], names: list[str],
                            trust_pickle: bool = False) -> Any:
    """Champion ``a`` against challenger ``b`` (candidates of :func:`comparison_candidates`)
    on the current rows, groups and decision rule, cached per settings."""
    data_id, df, _ = current_data(setup)
    if setup["source"] == "dataset" and "model" in (a["kind"], b["kind"]):
        df = modeling.with_features(setup["dataset"], df, full_dataset(setup["dataset"]))
    audit_kw = audit_kwargs(setup)
    kw = {k: audit_kw[k] for k in ("target", "positive_label", "sensitive", "tiers", "reference") if k in audit_kw}
    if setup["decision"] != "prediction":
        kw[setup["decision"]] = setup[setup["decision"]]
    side = [c.get("sha256") or c.get("uri") or c.get("model") or c.get("column") for c in (a, b)]
    kinds = ["model" if c["kind"] == "model" else c["kind"] for c in (a, b)]
    if "model" in kinds and setup["decision"] == "prediction":
        raise FairscanError("a model needs a score rule: choose a budget or a threshold on the Data & model page")
    if "model" in kinds and "prediction" in kinds:
        raise FairscanError("compare a model with a model or a score column, not with a decision column")
    key = json.dumps({**kw, "data_id": data_id, "kinds": kinds, "names": names, "trust_pickle": trust_pickle,
                      "sides": side}, sort_keys=True, default=jsonable)
    x = [_model(setup, c) if c["kind"] == "model" else c["column"] for c in (a, b)]
    return _model_comparison(key, df, *x)


@st.cache_resource(show_spinner="Ranking coupons with the coupon reference model…")
def recs_example(k: int) -> dict[str, Any]:
    return coupon_recs_example(k)


# The two caches below show no spinner of their own (the page shows one around the call):
# the warm-up thread fills them without a page to draw on.
@st.cache_resource(show_spinner=False)
def retail_example() -> dict[str, Any]:
    """The online-retail case (the reference recommender's lists, spend and price tiers)."""
    from fairscan.explore import retail_recs_example

    return retail_recs_example()


def retail_audit_key(case: dict[str, Any], k: int) -> str:
    """The :func:`cached_recs_audit` key of the online-retail case at list length ``k``."""
    return json.dumps({"case": "retail", "user_group": case["user_group"], "item_group": case["item_group"],
                       "k": k}, sort_keys=True)


@st.cache_resource(show_spinner=False, max_entries=16)
def cached_recs_audit(key: str, _case: dict[str, Any]) -> Any:
    """fairscan.recs.audit_recs of a case's lists (``_case``: recs, users, items, truth,
    interactions), with the keywords in ``key`` (JSON; its ``case`` names the inputs)."""
    from fairscan.recs import audit_recs

    kw = json.loads(key)
    kw.pop("case")
    return audit_recs(_case["recs"], _case["users"], _case["items"], truth=_case.get("truth"),
                      interactions=_case.get("interactions"), **kw)


@st.cache_resource(show_spinner=False)
def retail_lines() -> pd.DataFrame:
    """The bundled online-retail invoice lines, cleaned (the value page's bundled case)."""
    from fairscan.datasets.cleaning import clean_online_retail

    return clean_online_retail(datasets.load("online-retail"))[0]


@st.cache_resource(show_spinner=False, max_entries=16)
def cached_value_audit(key: str, _df: pd.DataFrame) -> Any:
    """fairscan.audit_value of ``_df`` with the keywords in ``key`` (JSON; its ``data`` names
    the rows)."""
    from fairscan.value import audit_value

    kw = json.loads(key)
    kw.pop("data")
    return with_progress("Auditing the values", lambda progress: audit_value(_df, progress=progress, **kw))


@st.cache_resource(show_spinner=False, max_entries=16)
def cached_value_repair(key: str, _df: pd.DataFrame) -> Any:
    """The value repair of ``_df`` (every amount) with the keywords in ``key`` (JSON, as for
    :func:`cached_value_audit`)."""
    from fairscan.mitigation.value_repair import repair_values

    kw = json.loads(key)
    kw.pop("data")
    kw.pop("offered", None)  # the repair moves every value, offered or not
    return with_progress("Repairing", lambda progress: repair_values(_df, progress=progress, **kw))


_warm_up_lock = threading.Lock()
_warm_up_started = False


def warm_up(delay: float = 0.5) -> bool:
    """Once per server process, ``delay`` seconds after the first page has run: compute the
    Recommendations page's default view (training the online-retail recommender, then its
    audit; about 3 s) on a background thread, into the caches every session shares, so that
    nobody waits for it on their first visit. A visit during the warm-up waits for the same
    computation rather than starting a second. Returns whether this call started it."""
    global _warm_up_started
    with _warm_up_lock:
        if _warm_up_started:
            return False
        _warm_up_started = True

    def work() -> None:
        import time

        from fairscan.explore import RETAIL_K

        time.sleep(delay)  # let the first page reach the browser first
        try:
            case = retail_example()
            cached_recs_audit(retail_audit_key(case, RETAIL_K), case)
        except Exception:  # a failed warm-up only means the page computes (and reports) it on its visit
            return

    threading.Thread(target=work, name="fairscan-warm-up", daemon=True).start()
    return True


def spend_tiers_of(transactions: pd.DataFrame, customer: str, amount: str, n: int, users: pd.DataFrame,
                   user_col: str) -> pd.DataFrame:
    """The users table with each user's spend tier (``spend_tier``): quantile tiers of each
    customer's total ``amount`` (:func:`fairscan.groups.purchasing.assign_spend_tiers`, the
    rule of the audit's --infer-tier spend); users without transactions have no tier, and the
    recommendation audit counts them as ``unknown``."""
    from fairscan.groups.purchasing import assign_spend_tiers

    tx = transactions.rename(columns={customer: user_col}) if customer != user_col else transactions
    return users.assign(spend_tier=assign_spend_tiers(users, user_col, amount, n, transactions=tx).to_numpy())


@st.cache_resource(show_spinner="Auditing the recommendation lists…")
def recs_audit(k: int) -> Any:
    from fairscan.recs import audit_recs

    ex = recs_example(k)
    return audit_recs(ex["recs"], ex["users"], ex["items"], user_group="income", item_group="coupon", k=k,
                      truth=ex["truth"])


@st.cache_resource(show_spinner=False, max_entries=8)
def cached_tradeoff(method: str, focus: str, k: int) -> pd.DataFrame:
    from fairscan.mitigation.rerank import tradeoff_curve

    ex = recs_example(k)
    return tradeoff_curve(ex["candidates"], ex["users"], ex["items"], ex["truth"], user_group="income",
                          item_group="coupon", method=method, k=k, focus_item_group=focus,
                          protected_item_group=focus if method == "floor" else None)


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


def max_upload_mb() -> int:
    """The upload limit in MB: Streamlit's server.maxUploadSize (.streamlit/config.toml), checked here too."""
    return int(st.get_option("server.maxUploadSize"))


def read_upload(f: Any) -> pd.DataFrame:
    """An uploaded CSV/Parquet file read by fairscan.io (known types only, size-checked)."""
    from fairscan.io import read_table

    suffix = Path(f.name).suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise FairscanError(f"file '{f.name}': unsupported type '{suffix}'; upload a .csv or .parquet file")
    if f.size > max_upload_mb() * 1024 * 1024:
        raise FairscanError(f"file '{f.name}' is larger than {max_upload_mb()} MB")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(f.getvalue())
        try:
            return read_table(path)
        except FairscanError as e:  # name the user's file, not our temporary copy
            raise FairscanError(str(e).replace(str(path), f.name)) from None


@dataclass(frozen=True)
class RegistryRef:
    """A model named by its MLflow URI, standing where an uploaded model file would: its
    ``name`` is the URI and its bytes (for the upload's id) the URI's."""

    uri: str

    @property
    def name(self) -> str:
        return self.uri

    def getvalue(self) -> bytes:
        return self.uri.encode()


def load_uploaded_model(f: Any, trust_pickle: bool) -> Any:
    """An uploaded model file, or a :class:`RegistryRef`, loaded safely (pickles only with
    consent)."""
    if isinstance(f, RegistryRef):
        return modeling.open_model(f.uri, trust_pickle=trust_pickle)[0]
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
