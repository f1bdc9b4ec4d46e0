"""Orchestration: data + decision rule + groups -> sufficient statistics -> AuditResult."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from fairscan.engines.base import fits_jointly
from fairscan.engines.choose import make_engine
from fairscan.engines.counts import (
    COUNTS_SCHEMA_VERSION,
    Counts,
    counts_attribute,
    counts_decision,
    histogram_totals,
    is_counts_file,
    private_counts,
    refuse_row_options,
)
from fairscan.engines.counts import protect as protect_counts
from fairscan.errors import FairscanError, plain, suggest
from fairscan.formatting import jsonable
from fairscan.groups import TierSpec, bin_edges, histogram_bins, resolve, resolve_references
from fairscan.metrics.classification import LABEL_FREE, METRICS, paired_projections
from fairscan.metrics.tables import Settings, analyse
from fairscan.modeling import score_frame
from fairscan.params import AuditParams, audit_params, check_column, decision_rule, group_spec
from fairscan.policy import AuditPolicy, parse_tolerances
from fairscan.schemas import SCHEMA_VERSION
from fairscan.tracking import LogsToMlflow
from fairscan.types import Aggregate, CellStats, Decision, Grouping, Label
from fairscan.validation import binary_positive, parse_epsilon
from fairscan.version import __version__

__all__ = ["AuditResult", "audit", "audit_counts", "counts", "counts_of", "decide", "run_audit"]


@dataclass
class AuditResult(LogsToMlflow):
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

    ``data`` may be a counts file (``fairscan counts``) or :class:`Counts`: the file holds the
    rule, label, weights and groups (``sensitive``/``tiers`` then pick among its attributes),
    and the numbers equal the row-level audit's for every group it lists with its cells.
    """
    if isinstance(data, Counts) or is_counts_file(data):
        policy = AuditPolicy(parse_tolerances(tolerances), min_group_size, suppress_below, n_boot, seed, confidence,
                             alpha)
        given = {"target": target, "prediction": prediction, "score": score, "threshold": threshold,
                 "budget": budget, "weights": weights, "model": model}
        return _counts_audit(data, sensitive, tiers, intersect, reference, policy, parse_epsilon(dp_epsilon), given)
    params = audit_params(
        target=target, prediction=prediction, score=score, threshold=threshold, budget=budget,
        sensitive=sensitive, tiers=tiers, intersect=intersect, reference=reference, weights=weights,
        favourable_decision=favourable_decision, min_group_size=min_group_size, suppress_below=suppress_below,
        n_boot=n_boot, seed=seed, positive_label=positive_label, tolerances=tolerances, confidence=confidence,
        alpha=alpha, model=model, trust=trust, trust_pickle=trust_pickle, dp_epsilon=dp_epsilon, engine=engine,
        spark_master=spark_master,
    )
    return run_audit(data, params)


@dataclass
class _Counted:
    """The first half of an audit: the rows counted, and what the counting decided."""

    agg: Aggregate
    groupings: list[Grouping]
    label: Label | None
    decision: Decision
    score_range: Any
    engine: str
    model_meta: dict[str, Any] | None
    notes: list[str]
    #: with histograms: the shared edges, and one grouping per audited one crossed with the bins
    edges: list[float] | None = None
    histograms: list[Grouping] = field(default_factory=list)
    #: a paired second decision (two models' columns on the same rows), and its description
    paired: Decision | None = None
    paired_description: dict[str, Any] | None = None


def _count(data: Any, params: AuditParams, joint: bool = False, histograms: int | Sequence[float] | None = None,
           paired: str | None = None, subgroups: int | None = None, **engine_options: Any) -> _Counted:
    """Score (with a model), choose the engine, resolve the rule, label and groups, and count;
    ``histograms``: also each grouping crossed with the score's bins; ``joint``: also every
    attribute (and the bins) crossed, as the last grouping; ``paired``: a second score or
    prediction column decided by the same rule, counted pair by pair (8 cells per group);
    ``subgroups``: instead of the groups asked for, every combination of up to that many of
    their attributes (the subgroups discovery tests). One pass over the rows."""
    rule, spec = params.decision, params.groups
    model_meta = None
    if params.model is not None:
        m = params.model
        data, column, model_meta = score_frame(data, m.model, params.positive_label, trust=m.trust,
                                               trust_pickle=m.trust_pickle)
        rule = rule.with_score(column)
    engine = make_engine(data, params.engine, params.spark_master, **engine_options)
    if engine.n_rows() == 0:
        raise FairscanError("the data has no rows")
    for col, role in ((params.target, "target"), (params.weights, "weight")):
        check_column(engine, col, role)
    decision, score_range = rule.resolve(engine)
    decision_b = description_b = None
    if paired is not None:
        if params.model is not None:
            raise FairscanError("pair two score or prediction columns (score the data with each model first)")
        if histograms is not None:
            raise FairscanError("histograms are of one score: leave out --histograms with a paired column")
        kind = "prediction" if rule.prediction is not None else "score"
        check_column(engine, paired, kind)
        rule_b = replace(rule, **{kind: paired})
        decision_b, range_b = rule_b.resolve(engine)
        description_b = rule_b.describe(decision_b, range_b)
    label = None
    if params.target is not None:
        label = Label(params.target, binary_positive(engine, params.target, params.positive_label, "label",
                                                     "--positive-label"))
    groupings = resolve(spec, engine)
    if subgroups is not None:
        singles = [g.attributes[0] for g in groupings if len(g.attributes) == 1]
        if subgroups < 1:
            raise FairscanError(f"subgroups must be a depth of at least 1, got {subgroups}")
        groupings = [Grouping(tuple(singles[i] for i in combo)) for d in range(1, min(subgroups, len(singles)) + 1)
                     for combo in itertools.combinations(range(len(singles)), d)]
    names = [g.name for g in groupings]
    for attr in spec.reference:
        if attr not in names:
            raise FairscanError(f"reference names attribute '{attr}', which is not audited{suggest(attr, names)}")
    counted = list(groupings)
    edges, hists = None, []
    if histograms is not None:
        if decision.kind == "prediction":
            raise FairscanError("histograms are of a score: give --score with --threshold or --budget")
        edges = bin_edges(histograms, engine, decision.column,
                          [decision.threshold] if decision.kind == "threshold" else [])
        bins = histogram_bins(decision.column, edges, engine.has_missing(decision.column))
        hists = [Grouping((*g.attributes, bins)) for g in groupings]
        counted += hists
    if joint:
        attrs = list({a.name: a for g in counted for a in g.attributes}.values())
        if not fits_jointly([a.n_levels for a in attrs]):
            raise FairscanError(f"a private release noises every combination of the attributes' groups, and "
                                f"{' x '.join(str(a.n_levels) for a in attrs)} are too many: count fewer attributes "
                                "or coarser tiers")
        counted = [*counted, Grouping(tuple(attrs))]
    agg = engine.aggregate(counted, label, decision, params.weights, paired=decision_b)
    notes = [a.note for g in groupings for a in g.attributes if a.note]
    if model_meta and model_meta.get("warning"):
        notes.append(model_meta["warning"])
    return _Counted(agg, groupings, label, decision, rule.describe(decision, score_range), engine.name,
                    model_meta, list(dict.fromkeys(notes)), edges, hists, decision_b, description_b)


def run_audit(data: Any, params: AuditParams, **engine_options: Any) -> AuditResult:
    """The audit of ``data`` under ``params`` (built by :func:`fairscan.params.audit_params`,
    the validator every face shares). ``engine_options`` go to the engine that reads a path:
    ``columns``, ``categorical``, ``memory_limit``, ``threads`` (see
    :func:`fairscan.engines.choose.make_engine`)."""
    c = _count(data, params, **engine_options)
    meta = {
        "engine": c.engine, "n_rows": c.agg.n_rows, "data_sha256": c.agg.data_sha256, "data_hash": c.agg.data_hash,
        "target": params.target, "positive_label": c.label.positive if c.label else None, "decision": c.score_range,
        "weights": params.weights, "model": c.model_meta,
    }
    return _analysed(c.agg.stats, c.label, params.policy, dict(params.groups.reference), meta, c.notes,
                     params.dp_epsilon)


def _analysed(stats: list[CellStats], label: Label | None, policy: AuditPolicy, reference_spec: dict[str, str],
              meta: dict[str, Any], notes: list[str], dp_epsilon: float | None = None,
              masks: list[tuple[np.ndarray, np.ndarray]] | None = None) -> AuditResult:
    """The second half of an audit, from counts: rates, intervals, tests, verdicts, warnings
    and the result's metadata (``meta``: how the counts were made)."""
    names = [st.grouping.name for st in stats]
    metrics = list(METRICS) if label else list(LABEL_FREE)
    reference = resolve_references({st.grouping.name: st.labels for st in stats}, reference_spec)
    settings = Settings.of(policy, metrics, reference)
    groups, disparities, summary, findings = analyse(stats, settings, masks)
    noisy = any(st.noise_var is not None for st in stats)

    warnings = list(notes)
    n_sup = int(groups["suppressed"].sum())
    if n_sup:
        warnings.append(f"{n_sup} group(s) with fewer than {policy.suppress_below} rows are suppressed")
    for m in metrics:
        if m in groups and groups[m].isna().all():
            warnings.append(f"{m} is undefined for every group (its denominator is empty)")
    if meta["decision"].get("kind") != "prediction" and groups["selection_rate"].notna().any():
        sr = groups["selection_rate"].dropna()
        if ((sr == 0) | (sr == 1)).all():
            warnings.append("every group gets the same decision for everyone: the decisions are constant")

    out = {
        "fairscan_version": __version__,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        **meta,
        "attributes": names,
        "metrics": metrics,
        "unavailable_metrics": {m: "no target column: outcomes unknown" for m in METRICS if m not in metrics},
        "reference": dict(zip(names, _refs(groups, names), strict=True)),
        "settings": {
            "min_group_size": policy.min_group_size,
            "suppress_below": policy.suppress_below,
            "n_boot": policy.n_boot,
            "seed": policy.seed,
            "confidence": policy.confidence,
            "alpha": policy.alpha,
            "tolerances": {m: t.to_dict() for m, t in settings.tolerances.items()},
            "ci_methods": {
                "rates": "wilson" if not noisy else "wilson on the size at which each rate has its variance "
                                                     "with the noise (delta method)",
                "disparities": ("bootstrap percentile (multinomial over cells, stratified by group"
                                + (", each replicate with fresh noise of the release's variance" if noisy else "")
                                + ")") if policy.n_boot else "none (n_boot=0)",
                "p_values": "fisher exact if any expected count < 5, else pooled two-proportion z; holm-adjusted",
            },
        },
        "warnings": warnings,
    }
    if dp_epsilon is not None:
        out["dp_release"] = _dp_release(stats, groups, dp_epsilon, policy.seed)
    return AuditResult(groups, disparities, summary, findings, out)


def counts(
    data: Any,
    *,
    protect: str = "suppressed",
    epsilon: float | None = None,
    histograms: int | Sequence[float] | None = None,
    paired: str | None = None,
    subgroups: int | None = None,
    **audit_options: Any,
) -> Counts:
    """The sufficient statistics of an audit of ``data``, to write with :meth:`Counts.write`
    and hand over or add up instead of rows (see :mod:`fairscan.engines.counts`).
    ``audit_options``: :func:`audit`'s keywords (label, decision rule, groups, weights, model,
    engine, and ``suppress_below``/``reference`` for the protection). ``protect``:
    ``"suppressed"`` (the default: the groups an audit suppresses are listed without their
    cells) or ``"none"`` (every cell, exact: for merging shards, not for handing over).
    ``epsilon``: instead, an epsilon-differentially private release of every cell
    (:func:`fairscan.engines.counts.private_counts`). ``paired``: a second score (or
    prediction) column decided by the same rule, counted pair by pair (8 cells per group) so
    that :func:`fairscan.compare` runs from the file. ``subgroups``: every combination of up to
    that many of the attributes, so that :func:`fairscan.discover` runs from the file.
    ``histograms``: also per group and label
    the score's histogram, on N quantile bins (edges rounded to 3 significant digits) or on
    the edges given, so that other thresholds and budgets can be cut from the file and budget
    files can be merged (:meth:`Counts.recut`)."""
    return counts_of(data, audit_params(**audit_options), protect=protect, epsilon=epsilon, histograms=histograms,
                     paired=paired, subgroups=subgroups)


def counts_of(data: Any, params: AuditParams, *, protect: str = "suppressed", epsilon: float | None = None,
              histograms: int | Sequence[float] | None = None, paired: str | None = None,
              subgroups: int | None = None, **engine_options: Any) -> Counts:
    """:func:`counts` under checked ``params`` (the CLI's path); ``engine_options`` as for
    :func:`run_audit`."""
    if protect not in ("suppressed", "none"):
        raise FairscanError(f"protect must be 'suppressed' or 'none', got {plain(protect)}")
    epsilon = parse_epsilon(epsilon, "epsilon")
    if epsilon is not None and params.weights is not None:
        raise FairscanError("a private release counts people: leave out --weights (weighted sums have no bounded "
                            "sensitivity)")
    c = _count(data, params, joint=epsilon is not None, histograms=histograms, paired=paired, subgroups=subgroups,
               **engine_options)
    first = c.agg.stats[0]
    meta = {
        "schema_version": COUNTS_SCHEMA_VERSION, "kind": "fairscan counts", "fairscan_version": __version__,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(), "engine": c.engine,
        "n_rows": c.agg.n_rows, "data_sha256": c.agg.data_sha256, "data_hash": c.agg.data_hash,
        "target": params.target, "positive_label": c.label.positive if c.label else None,
        "label": None if c.label is None else {"column": c.label.column, "positive": jsonable(c.label.positive)},
        "decision": {**counts_decision(c.decision), "budget_spec": jsonable(params.decision.budget)},
        "decision_description": c.score_range,
        "weights": params.weights, "model": c.model_meta,
        "groupings": [{"attributes": [counts_attribute(a) for a in g.attributes]} for g in [*c.groupings,
                                                                                         *c.histograms]],
        "histograms": None if c.edges is None else {"column": c.decision.column, "edges": c.edges,
                                                    "groupings": len(c.histograms)},
        "warnings": c.notes, "protection": {"kind": "none", "exact": "every group"},
        # everyone's cells (a population total, published by every audit): complements of any group
        "totals": {"n": first.n.sum(axis=0).tolist(),
                   "w": None if first.w is None else first.w.sum(axis=0).tolist(),
                   "w2": None if first.w2 is None else first.w2.sum(axis=0).tolist()},
        "subgroups": None if subgroups is None else {"depth": min(subgroups, len(c.groupings))},
        "paired": None if c.paired is None else {
            "decision": counts_decision(c.paired), "decision_description": c.paired_description,
            "models": [{"name": "A", "column": c.decision.column, "sha256": c.agg.column_sha256.get(c.decision.column)},
                       {"name": "B", "column": c.paired.column, "sha256": c.agg.column_sha256.get(c.paired.column)}]},
    }
    if c.edges is not None:  # everyone's histogram, before any group is withheld
        first_hist = c.agg.stats[len(c.groupings)]
        meta["histograms"]["all"] = histogram_totals(first_hist, len(c.edges) + 1).tolist()
    if epsilon is not None:
        return private_counts(c.agg.stats[:-1], c.agg.stats[-1], meta, epsilon)
    out = Counts(c.agg.stats, [np.zeros(len(st.codes), dtype=np.int8) for st in c.agg.stats], meta)
    if protect == "none":
        return out
    reference = resolve_references({st.grouping.name: st.labels for st in out.stats}, dict(params.groups.reference))
    return protect_counts(out, params.policy.suppress_below, reference)


def audit_counts(
    data: Counts | str | os.PathLike,
    *,
    policy: AuditPolicy | None = None,
    reference: Mapping[str, str] | None = None,
    groupings: Sequence[str] | None = None,
    dp_epsilon: float | None = None,
) -> AuditResult:
    """The audit from a counts file (or :class:`Counts`): for every group the file lists with
    its cells, the same numbers as the row-level audit. The file holds the rule, label, weights
    and groups; ``policy`` (tolerances, sizes, bootstrap, levels), ``reference`` ({attribute:
    group}) and ``dp_epsilon`` are the audit's; ``groupings`` audits only the attributes (and
    intersections) named."""
    cts = data if isinstance(data, Counts) else Counts.read(data)
    policy = policy or AuditPolicy()
    if groupings:
        cts = cts.select(groupings)
    prot = cts.protection
    masks = cts.masks(policy.suppress_below)
    meta = {
        "engine": "counts", "n_rows": cts.n_rows, "data_sha256": cts.meta.get("data_sha256"),
        "data_hash": cts.meta.get("data_hash"), "target": cts.meta.get("target"),
        "positive_label": cts.meta.get("positive_label"), "decision": cts.meta["decision_description"],
        "weights": cts.weights, "model": cts.meta.get("model"),
        "counts": {"protection": prot, "parts": cts.meta.get("parts")},
    }
    notes = [*cts.meta.get("warnings", []), f"audited from a counts file ({cts.protection_text()})"]
    stats = cts.audited
    if cts.meta.get("paired"):  # two decisions counted pair by pair: the audit is of decision A
        to_a = paired_projections()[0]
        stats = [replace(st, n=(st.n @ to_a).astype(np.int64),
                         noise_var=None if st.noise_var is None else st.noise_var @ to_a) for st in stats]
        notes.append("the file pairs two decisions; this is the audit of the first (A); compare them with "
                     "'fairscan compare FILE'")
    return _analysed(stats, cts.label, policy, dict(reference or {}), meta, notes, dp_epsilon, masks)


def _counts_audit(data: Any, sensitive: str | Sequence[str] | None, tiers: Mapping[str, TierSpec] | None,
                  intersect: bool | Sequence[Sequence[str]], reference: Mapping[str, str] | str | None,
                  policy: AuditPolicy, dp_epsilon: float | None, given: dict[str, Any]) -> AuditResult:
    """:func:`audit` of a counts file: the file's rule and label, its groups (or those named);
    a ``threshold`` or ``budget`` is cut from the file's score histograms."""
    cut = {k: given.pop(k) for k in ("threshold", "budget")}
    refuse_row_options(given, "decision rule, label and weights", "give only the groups to audit, the policy, and a "
                       "threshold or budget to cut from its histograms")
    cts = data if isinstance(data, Counts) else Counts.read(data)
    if cut["threshold"] is not None or cut["budget"] is not None:
        cts, note = cts.recut(**cut)
        cts.meta["warnings"] = [*cts.meta.get("warnings", []), note]
    wanted = [*([sensitive] if isinstance(sensitive, str) else list(sensitive or [])), *(tiers or {})]
    names = None
    if wanted:
        have = {a.name: a for g in cts.groupings for a in g.attributes}
        for w in wanted:
            if w not in have:
                raise FairscanError(f"the counts file has no attribute '{w}'{suggest(w, list(have))}; it holds "
                                    f"{', '.join(have)}")
        for col, spec in (tiers or {}).items():
            a = have[col]
            n_tiers = a.n_levels - int(a.has_unknown)
            same = (spec == n_tiers) if isinstance(spec, int) else (
                a.kind == "tiers" and tuple(float(x) for x in spec) == tuple(a.edges))
            if not same:
                raise FairscanError(f"the counts file cuts '{col}' into {', '.join(a.labels)}: tiers cannot be cut "
                                    f"again from counts; leave out --tiers {col}=... or count the rows again")
        names = [g.name for g in cts.groupings
                 if all(a.name in wanted for a in g.attributes) and (len(g.attributes) == 1 or intersect)]
    ref = group_spec([g.name for g in cts.groupings], None, True, reference).reference if reference else {}
    return audit_counts(cts, policy=policy, reference=ref, groupings=names, dp_epsilon=dp_epsilon)


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
    rule = decision_rule(prediction, score, threshold, budget, favourable_decision)
    eng = make_engine(data, engine, spark_master)
    return eng.decisions(rule.resolve(eng)[0])


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


def _refs(groups: pd.DataFrame, names: list[str]) -> list[str]:
    ref = groups[groups["reference"]]
    return [str(ref.loc[ref["attribute"] == n, "group"].iloc[0]) for n in names]
