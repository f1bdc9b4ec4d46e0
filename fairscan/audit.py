"""Orchestration: data + decision rule + groups -> sufficient statistics -> AuditResult."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairscan.engines.base import Engine
from fairscan.engines.choose import make_engine
from fairscan.errors import FairscanError, plain, suggest
from fairscan.formatting import jsonable
from fairscan.groups import GroupSpec, TierSpec, resolve, resolve_references
from fairscan.metrics.classification import LABEL_FREE, METRICS
from fairscan.metrics.tables import Settings, analyse
from fairscan.policy import parse_tolerances
from fairscan.schemas import SCHEMA_VERSION
from fairscan.types import Decision, Label
from fairscan.validation import binary_positive, resolve_budget

__all__ = ["AuditResult", "audit", "decide"]


@dataclass
class AuditResult:
    """What an audit found: aggregates only, JSON-serialisable.

    ``groups``: one row per (attribute, group) with counts, every rate and its interval.
    ``disparities``: each group against its attribute's reference group, per metric:
    difference, ratio, bootstrap intervals, raw and Holm-adjusted p-values.
    ``summary``: between-groups spread per attribute and metric (as fairlearn reports it).
    ``findings``: the verdicts (pass / fail / insufficient) with plain-language messages.
    ``meta``: how the audit was made (decision rule, settings, data hash, versions).
    """

    groups: pd.DataFrame
    disparities: pd.DataFrame
    summary: pd.DataFrame
    findings: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> pd.DataFrame:
        """The findings whose verdict is ``fail``."""
        return self.findings[self.findings["verdict"] == "fail"]

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON structure (see ``fairscan/schemas/audit.schema.json``)."""
        metrics = self.meta["metrics"]
        groups = []
        for row in self.groups.to_dict("records"):
            obj = {k: jsonable(row[k]) for k in ("attribute", "group", "count", "suppressed", "suppression", "reference")}
            for k in ("weight_sum", "effective_n"):
                if k in row:
                    obj[k] = jsonable(row[k])
            for m in METRICS:
                if m in metrics:
                    obj[m] = jsonable(row[m])
                    obj[f"{m}_ci"] = [jsonable(row[f"{m}_ci_low"]), jsonable(row[f"{m}_ci_high"])]
                else:
                    obj[m] = None
                    obj[f"{m}_ci"] = [None, None]
            for k in ("impact_ratio", "four_fifths"):
                if k in row:
                    obj[k] = jsonable(row[k])
            groups.append(obj)
        disparities = []
        for row in self.disparities.to_dict("records"):
            obj = {k: jsonable(v) for k, v in row.items() if not k.endswith(("_ci_low", "_ci_high"))}
            obj["difference_ci"] = [jsonable(row["difference_ci_low"]), jsonable(row["difference_ci_high"])]
            obj["ratio_ci"] = [jsonable(row["ratio_ci_low"]), jsonable(row["ratio_ci_high"])]
            disparities.append(obj)
        return {
            "schema_version": SCHEMA_VERSION,
            **{k: jsonable(v) for k, v in self.meta.items()},
            "groups": groups,
            "disparities": disparities,
            "summary": [{k: jsonable(v) for k, v in r.items()} for r in self.summary.to_dict("records")],
            "findings": [{k: jsonable(v) for k, v in r.items()} for r in self.findings.to_dict("records")],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The result as a JSON string (NaN written as null)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_markdown(self, title: str = "fairscan audit report") -> str:
        """A readable Markdown report (verdicts first, tables, text charts, method)."""
        from fairscan.report.markdown import render_markdown

        return render_markdown(self, title)

    def to_html(self, title: str = "fairscan audit report") -> str:
        """A self-contained HTML report: no script, no external resource, strict CSP."""
        from fairscan.report.html import render_html

        return render_html(self, title)

    def verdict_counts(self) -> dict[str, int]:
        """How many findings are pass / fail / insufficient."""
        vc = self.findings["verdict"].value_counts()
        return {v: int(vc.get(v, 0)) for v in ("fail", "insufficient", "pass")}

    def _repr_html_(self) -> str:
        counts = self.verdict_counts()
        head = (
            f"<h4>fairscan audit: {self.meta['n_rows']:,} rows, decision by "
            f"{_escape(self.meta['decision']['description'])}</h4>"
            f"<p>{counts['fail']} fail · {counts['insufficient']} insufficient · {counts['pass']} pass</p>"
        )
        f = self.findings[["attribute", "metric", "group", "verdict", "message"]]
        shown = ["attribute", "group", "count", *[m for m in ("selection_rate", "true_positive_rate",
                 "false_negative_rate") if m in self.groups]]
        return head + f.to_html(index=False, escape=True) + self.groups[shown].to_html(
            index=False, escape=True, float_format=lambda x: f"{x:.3f}"
        )


def _escape(s: str) -> str:
    import html

    return html.escape(str(s))


def _check_column(engine: Engine, column: str | None, role: str) -> None:
    if column is not None and column not in engine.columns():
        raise FairscanError(f"{role} column '{column}' not found{suggest(column, engine.columns())}")


def audit(
    data: Any,
    *,
    target: str | None = None,
    prediction: str | None = None,
    score: str | None = None,
    threshold: float | None = None,
    budget: int | float | None = None,
    sensitive: str | Sequence[str] | None = None,
    tiers: Mapping[str, TierSpec] | None = None,
    intersect: bool | Sequence[Sequence[str]] = False,
    reference: Mapping[str, str] | str | None = None,
    weights: str | None = None,
    favourable_decision: int = 1,
    min_group_size: int = 30,
    suppress_below: int = 10,
    n_boot: int = 1000,
    seed: int = 0,
    positive_label: object = None,
    tolerances: Mapping[str, object] | None = None,
    confidence: float = 0.95,
    alpha: float = 0.05,
    model: Any = None,
    trust: Sequence[str] = (),
    trust_pickle: bool = False,
    dp_epsilon: float | None = None,
    engine: str = "auto",
    spark_master: str | None = None,
) -> AuditResult:
    """Audit binary decisions for disparate exclusion across customer groups.

    The decision comes from ``prediction`` (a binary column), or from ``score`` with a
    ``threshold`` (offer when score >= threshold) or a ``budget`` (the top K rows by score,
    or the top fraction rounded down; ties go to earlier rows). ``favourable_decision=0``
    marks decision 0 as the favourable one (risk scores). ``target`` (the outcome) may be
    omitted: then only label-free metrics are computed. Groups come from ``sensitive``
    columns and ``tiers`` ({column: N quantile tiers | [cut points]}); ``intersect`` adds
    their cross. ``reference`` names each attribute's reference group (default: largest).
    Groups with fewer than ``suppress_below`` rows are suppressed; fewer than
    ``min_group_size`` get no pass/fail verdict. See :mod:`fairscan.policy` for verdicts.

    ``model`` scores the data instead of a score column: a model file (``.skops``, ``.onnx``,
    a pickle only with ``trust_pickle=True``), ``"reference:NAME"``, or any object with
    ``predict_proba``, ``decision_function`` or ``predict``; decide with ``threshold`` or
    ``budget``.

    ``dp_epsilon`` adds ``meta["dp_release"]``: the groups' row, offer and positive counts with
    Laplace noise, epsilon-differentially private in total (see :func:`_dp_release`).
    """
    model_meta = None
    if model is not None:
        if isinstance(data, str | os.PathLike):  # scoring needs the feature columns in memory
            from fairscan.io import read_table

            data = read_table(data)
        data, score, model_meta = _score_with_model(data, model, score, prediction, positive_label,
                                                    trust, trust_pickle)
    engine_name = engine
    engine = make_engine(data, engine_name, spark_master)
    n = engine.n_rows()
    if n == 0:
        raise FairscanError("the data has no rows")
    for v, name in ((min_group_size, "min_group_size"), (suppress_below, "suppress_below"), (n_boot, "n_boot")):
        if not isinstance(v, int | np.integer) or v < 0:
            raise FairscanError(f"{name} must be a whole number >= 0, got {plain(v)}")
    if not 0 < confidence < 1 or not 0 < alpha < 1:
        raise FairscanError("confidence and alpha must be between 0 and 1")
    for col, role in ((target, "target"), (prediction, "prediction"), (score, "score"), (weights, "weight")):
        _check_column(engine, col, role)

    decision, score_range = _decision(engine, prediction, score, threshold, budget, favourable_decision, n)
    label = None
    if target is not None:
        label = Label(target, binary_positive(engine, target, positive_label, "label", "--positive-label"))

    if isinstance(sensitive, str):
        sensitive = [sensitive]
    spec = GroupSpec(sensitive=list(sensitive or []), tiers=dict(tiers or {}), intersect=intersect)
    if isinstance(reference, str):
        if "=" in reference:
            k, _, v = reference.partition("=")
            reference = {k: v}
        elif len(spec.columns()) == 1:
            reference = {spec.columns()[0]: reference}
        else:
            raise FairscanError("with several attributes, name the reference as ATTRIBUTE=GROUP")
    groupings = resolve(spec, engine)
    names = [g.name for g in groupings]
    for attr in reference or {}:
        if attr not in names:
            raise FairscanError(f"reference names attribute '{attr}', which is not audited{suggest(attr, names)}")

    agg = engine.aggregate(groupings, label, decision, weights)
    metrics = list(METRICS) if label else list(LABEL_FREE)
    tol = {m: t for m, t in parse_tolerances(tolerances).items() if m in metrics}
    settings = Settings(
        metrics=metrics,
        reference=resolve_references({st.grouping.name: st.labels for st in agg.stats}, reference or {}),
        tolerances=tol,
        min_group_size=int(min_group_size),
        suppress_below=int(suppress_below),
        n_boot=int(n_boot),
        seed=int(seed),
        confidence=confidence,
        alpha=alpha,
    )
    groups, disparities, summary, findings = analyse(agg.stats, settings)

    warnings = [a.note for g in groupings for a in g.attributes if a.note]
    if model_meta and model_meta.get("warning"):
        warnings.append(model_meta["warning"])
    warnings = list(dict.fromkeys(warnings))
    n_sup = int(groups["suppressed"].sum())
    if n_sup:
        warnings.append(f"{n_sup} group(s) with fewer than {suppress_below} rows are suppressed")
    for m in metrics:
        if m in groups and groups[m].isna().all():
            warnings.append(f"{m} is undefined for every group (its denominator is empty)")
    if decision.kind != "prediction" and groups["selection_rate"].notna().any():
        sr = groups["selection_rate"].dropna()
        if ((sr == 0) | (sr == 1)).all():
            warnings.append("every group gets the same decision for everyone: the decisions are constant")

    from fairscan.version import __version__

    meta = {
        "fairscan_version": __version__,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "engine": engine.name,
        "n_rows": agg.n_rows,
        "data_sha256": agg.data_sha256,
        "data_hash": agg.data_hash,
        "target": target,
        "positive_label": label.positive if label else None,
        "decision": _describe(decision, budget, score_range),
        "weights": weights,
        "model": model_meta,
        "attributes": names,
        "metrics": metrics,
        "unavailable_metrics": {m: "no target column: outcomes unknown" for m in METRICS if m not in metrics},
        "reference": {g.name: r for g, r in zip(groupings, _refs(groups, names), strict=True)},
        "settings": {
            "min_group_size": min_group_size,
            "suppress_below": suppress_below,
            "n_boot": n_boot,
            "seed": seed,
            "confidence": confidence,
            "alpha": alpha,
            "tolerances": {m: t.to_dict() for m, t in tol.items()},
            "ci_methods": {
                "rates": "wilson",
                "disparities": "bootstrap percentile (multinomial over cells, stratified by group)"
                if n_boot else "none (n_boot=0)",
                "p_values": "fisher exact if any expected count < 5, else pooled two-proportion z; holm-adjusted",
            },
        },
        "warnings": warnings,
    }
    if dp_epsilon is not None:
        meta["dp_release"] = _dp_release(agg.stats, groups, float(dp_epsilon), seed)
    return AuditResult(groups, disparities, summary, findings, meta)


def decide(
    data: Any,
    *,
    prediction: str | None = None,
    score: str | None = None,
    threshold: float | None = None,
    budget: int | float | None = None,
    favourable_decision: int = 1,
    engine: str = "auto",
    spark_master: str | None = None,
) -> np.ndarray:
    """Each row's favourable decision (True = offer) under the same rules as :func:`audit`,
    in row order, on any engine (``data`` and ``engine`` as for :func:`audit`)."""
    eng = make_engine(data, engine, spark_master)
    decision, _ = _decision(eng, prediction, score, threshold, budget, favourable_decision, eng.n_rows())
    return eng.decisions(decision)


def _dp_release(stats: list, groups: pd.DataFrame, epsilon: float, seed: int) -> dict[str, Any]:
    """Laplace-noised counts (rows, offered, positives) of every unsuppressed group.

    One person changes each count of one group per table by at most 1, so each (table, count
    kind) release has sensitivity 1; the ``epsilon`` budget is split evenly over the
    (tables x 3 count kinds) releases (basic composition), each noised with Laplace(1 / eps_i),
    then rounded and clipped at 0 (post-processing). Suppressed groups are not released.
    """
    from fairscan.privacy import laplace_counts

    if not epsilon > 0:
        raise FairscanError(f"dp epsilon must be > 0, got {epsilon}")
    rng = np.random.default_rng(seed + 7919)
    per = epsilon / (3 * len(stats))
    out = []
    for st in stats:
        labels = st.labels
        sup = groups[groups["attribute"] == st.grouping.name].set_index("group")["suppressed"]
        rows = st.n.sum(axis=1)
        offered = st.n[:, 1] + st.n[:, 3]
        positives = st.n[:, 2] + st.n[:, 3]
        noisy = [laplace_counts(x, per, rng) for x in (rows, offered, positives)]
        for g, label in enumerate(labels):
            if not bool(sup.get(label, True)):
                out.append({"attribute": st.grouping.name, "group": label, "rows": int(noisy[0][g]),
                            "offered": int(noisy[1][g]), "positives": int(noisy[2][g])})
    return {"mechanism": "laplace", "epsilon": epsilon, "epsilon_per_release": per,
            "releases": 3 * len(stats), "groups": out}


def _score_with_model(
    data: Any, model: Any, score: str | None, prediction: str | None, positive_label: object,
    trust: Sequence[str], trust_pickle: bool,
) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    """Score ``data`` with ``model``; return the frame with a score column, its name, and
    what the result records about the model (path, sha256, card name)."""
    import hashlib

    from fairscan import modeling

    if score is not None or prediction is not None:
        raise FairscanError("give a model or a score/prediction column, not both")
    if isinstance(data, str | os.PathLike):
        from fairscan.io import read_table

        data = read_table(data)
    if not isinstance(data, pd.DataFrame):
        data = data.to_pandas() if hasattr(data, "to_pandas") else pd.DataFrame(data)
    meta: dict[str, Any] = {"type": type(model).__name__}
    card = None
    if isinstance(model, str | os.PathLike):
        path = modeling.resolve_model_path(model)
        card = modeling.load_card(path)
        model_obj = modeling.load_model(path, trust=trust, trust_pickle=trust_pickle)
        meta = {"path": str(model), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "type": type(model_obj).__name__, "name": card.get("name") if card else None}
        if card and card.get("data_sha256") and card["data_sha256"] == modeling.data_sha256(data):
            meta["warning"] = ("these are the data the model was trained on: the audit includes its "
                               "training rows; for an honest picture audit its held-out scores.parquet")
        model = model_obj
    values = modeling.score(model, data, positive_label=positive_label, card=card)
    column = "score" if "score" not in data.columns else "model_score"
    return data.assign(**{column: values}), column, meta


def _refs(groups: pd.DataFrame, names: list[str]) -> list[str]:
    ref = groups[groups["reference"]]
    return [str(ref.loc[ref["attribute"] == n, "group"].iloc[0]) for n in names]


def _decision(
    engine: Engine,
    prediction: str | None,
    score: str | None,
    threshold: float | None,
    budget: Any,
    favourable: int,
    n: int,
) -> tuple[Decision, tuple[float, float] | None]:
    """The decision rule, validated against the data, and the score's range (if any)."""
    if favourable not in (0, 1):
        raise FairscanError(f"favourable decision must be 0 or 1, got {plain(favourable)}")
    for col, role in ((prediction, "prediction"), (score, "score")):
        _check_column(engine, col, role)
    if (prediction is None) == (score is None):
        raise FairscanError("give exactly one of a prediction column or a score column (with a threshold or budget)")
    if prediction is not None:
        if threshold is not None or budget is not None:
            raise FairscanError("a threshold or budget applies to a score column, not to a prediction column")
        positive = binary_positive(engine, prediction, None, "prediction", "a 0/1 prediction")
        return Decision("prediction", prediction, favourable, positive=positive), None
    if (threshold is None) == (budget is None):
        raise FairscanError(f"score column '{score}' needs exactly one of --threshold T or --budget K")
    if not engine.is_numeric(score):
        raise FairscanError(f"score column '{score}' is not numeric; scores must be numbers")
    lo, hi, bad = engine.min_max(score)
    if bad:
        raise FairscanError(
            f"score column '{score}' has {bad:,} missing, NaN or infinite values; fix or remove those rows first"
        )
    if threshold is not None:
        try:
            t = float(threshold)
        except (TypeError, ValueError):
            raise FairscanError(f"threshold {plain(threshold)} is not a number") from None
        if not math.isfinite(t):
            raise FairscanError(f"threshold {plain(threshold)} must be a finite number")
        if t > hi or t < lo:
            where = "above every" if t > hi else "below every"
            raise FairscanError(
                f"threshold {t:g} is {where} score in '{score}' (range {lo:g} to {hi:g}): everyone would get "
                "the same decision; choose a threshold within the range, or use --budget"
            )
        return Decision("threshold", score, favourable, threshold=t), (lo, hi)
    return Decision("budget", score, favourable, k=resolve_budget(budget, n)), (lo, hi)


def _outward(r: tuple[float, float], digits: int = 3) -> list[float]:
    """A range rounded outward to ``digits`` significant digits: the scale of the scores
    without publishing the lowest and highest customer's own score."""
    from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

    def rnd(v: float, up: bool) -> float:  # in decimal: exact for every float, subnormals included
        if v == 0 or not math.isfinite(v):
            return float(v)
        d = Decimal(v)
        step = Decimal(1).scaleb(d.adjusted() - digits + 1)
        return float(d.quantize(step, rounding=ROUND_CEILING if up else ROUND_FLOOR))

    lo, hi = float(r[0]), float(r[1])
    return [rnd(lo, False), rnd(hi, True)]


def _describe(d: Decision, budget: Any, score_range: tuple[float, float] | None) -> dict[str, Any]:
    fav = "offer" if d.favourable == 1 else "no refusal"
    if d.kind == "prediction":
        text = f"prediction column '{d.column}' (favourable decision = {d.favourable})"
    elif d.kind == "threshold":
        text = f"score '{d.column}' >= {d.threshold:g}" + ("" if d.favourable == 1 else " means refusal")
    else:
        text = f"top {d.k:,} rows by score '{d.column}' (budget {budget})" + (
            "" if d.favourable == 1 else "; those are refused")
    return {
        "kind": d.kind,
        "column": d.column,
        "threshold": d.threshold,
        "budget": d.k,
        "favourable_decision": d.favourable,
        "favourable_meaning": fav,
        "score_range": _outward(score_range) if score_range else None,
        "description": text,
    }
