"""Subgroup discovery: who is excluded, found without being told where to look.

Every conjunction of up to ``max_depth`` conditions (``attribute = group``) over the candidate
attributes is a subgroup; each is tested against everyone else (its complement) or against the
whole population, for one decision metric. The method:

1. **Counting** goes through the engines like an audit: one aggregation of every combination
   of ``max_depth`` attributes (the memory engine's bincounts, one ``GROUPING SETS`` query in
   DuckDB or Spark), then every shallower combination by summing those counts. Each subgroup
   is four cells (TN, FP, FN, TP); its complement is the total minus its cells. No row is
   read after that.
2. **Exact pruning**: a subgroup is tested when it has at least ``min_size`` rows; since
   counts only shrink as conditions are added, nothing with ``min_size`` rows is skipped.
3. **Statistics** per subgroup: the rate with a Wilson interval; the difference (Newcombe's
   hybrid score interval) and ratio (log interval, 0.5 added to each count) to the
   comparison; a two-sided p-value against the complement (Fisher's exact test where an
   expected count is under 5, else the pooled z-test, as the audit); Benjamini-Yekutieli
   adjustment over every subgroup tested (valid under the dependence that overlapping
   subgroups have). Against the population the p-value is the complement's (the two null
   hypotheses are the same) and the intervals are mapped exactly from it.
4. **Verdicts** as the audit's (:func:`fairscan.policy.verdicts`), with the metric's tolerance.
5. **Suppression** with the audit's rule (:func:`fairscan.privacy.suppress`): every
   combination of attributes is a published table whose lines add up to the shallower one.
6. **Folding**: a subgroup whose rate does not differ significantly from the rest of one of
   its parents (the parent without it; the largest p-value over its parents, adjusted by
   Benjamini-Yekutieli over every subgroup with a parent, >= ``alpha``) adds nothing to that
   parent; it is listed under that most similar parent instead of beside it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairscan.engines.base import Engine
from fairscan.engines.choose import make_engine
from fairscan.engines.counts import Counts, is_counts_file, refuse_row_options
from fairscan.errors import FairscanError, plain, suggest
from fairscan.formatting import jsonable, pct
from fairscan.groups import GroupSpec, TierSpec, resolve
from fairscan.metrics.classification import DESCRIPTIONS, EXCLUSION_SIGN, masks
from fairscan.metrics.stats import (
    benjamini_yekutieli,
    effective_n,
    newcombe_difference,
    ratio_interval,
    two_proportion_test,
    wilson,
)
from fairscan.params import decision_rule
from fairscan.policy import (
    DEFAULT_TOLERANCES,
    FOUR_FIFTHS,
    AuditPolicy,
    Gap,
    Tolerance,
    judge,
    parse_tolerances,
    verdicts,
)
from fairscan.privacy import CountTable, suppress
from fairscan.schemas import SCHEMA_VERSION
from fairscan.tracking import LogsToMlflow
from fairscan.types import N_CELLS, UNKNOWN, Attribute, Grouping, Label
from fairscan.validation import binary_positive
from fairscan.version import __version__

__all__ = [
    "CHILDREN_SHOWN", "COMPARISONS", "DIRECTIONS", "DISCOVER_METRICS", "EXCLUDED_SIGN", "FDR_METHOD", "MAX_LEVELS",
    "Candidates", "DiscoveryResult", "Lattice", "candidate_attributes", "count_lattice", "describe_conditions",
    "discover", "headline", "lattice_of_counts",
]

#: the decision metrics a discovery can search by (label-free: selection_rate only)
DISCOVER_METRICS = ("selection_rate", "true_positive_rate", "false_positive_rate", "false_negative_rate",
                    "true_negative_rate", "precision")
COMPARISONS = ("complement", "population")
DIRECTIONS = ("excluded", "favoured", "both")
#: the sign of a gap that leaves a subgroup worse off (one rule: metrics.classification)
EXCLUDED_SIGN = EXCLUSION_SIGN
FDR_METHOD = "benjamini-yekutieli"
#: a text column with more values than this is not a candidate attribute
MAX_LEVELS = 50
#: a whole-number column with at most this many values is a category (a flag, a count of
#: children), not a number to cut into quantile tiers
SMALL_INTEGER_LEVELS = 10
#: how many folded subgroups are listed under each listed parent
CHILDREN_SHOWN = 3
_ID_NAME = re.compile(r"(^|[_\s.-])(id|uuid|guid)$|^(id|index|uuid|guid)$", re.IGNORECASE)
_ID_CAMEL = re.compile(r"[a-z0-9]I[dD]$")
_VERDICT_ORDER = {"fail": 0, "insufficient": 1, "pass": 2}


@dataclass
class Candidates:
    """The attributes a discovery searches over, and the columns it left out (and why)."""

    spec: GroupSpec
    skipped: list[dict[str, str]] = field(default_factory=list)


def _is_identifier(name: str) -> bool:
    return bool(_ID_NAME.search(name) or _ID_CAMEL.search(name))


def candidate_attributes(
    engine: Engine,
    *,
    exclude: Sequence[str],
    attributes: Sequence[str] | None = None,
    tiers: Mapping[str, TierSpec] | None = None,
    n_tiers: int = 4,
    max_levels: int = MAX_LEVELS,
) -> Candidates:
    """Which columns are searched: ``attributes`` if given (each must exist), else every column
    but ``exclude`` and identifier-like ones. Text with more than ``max_levels`` values is
    skipped; numbers are cut into ``n_tiers`` quantile tiers (``tiers`` overrides per column)
    unless they are whole numbers with few values, which are categories."""
    columns = engine.columns()
    tiers = dict(tiers or {})
    for c in [*(attributes or []), *tiers]:
        if c not in columns:
            raise FairscanError(f"attribute column '{c}' not found{suggest(c, columns)}")
    skipped: list[dict[str, str]] = []
    if attributes is not None:
        names = list(dict.fromkeys([*attributes, *tiers]))
    else:
        names = []
        for c in columns:
            if c in exclude:
                continue
            if _is_identifier(c) and c not in tiers:
                skipped.append({"column": c, "reason": "identifier-like name"})
                continue
            names.append(c)
    sensitive: list[str] = []
    tier_specs: dict[str, TierSpec] = {}
    for c in names:
        if c in exclude and attributes is not None:
            raise FairscanError(f"column '{c}' is the label, score, prediction or weights; it cannot be a "
                                "subgroup attribute")
        if c in tiers:
            tier_specs[c] = tiers[c]
            continue
        if engine.is_numeric(c):
            values, _ = engine.levels(c, SMALL_INTEGER_LEVELS)
            whole = all(float(v).is_integer() for v in values)
            if len(values) <= SMALL_INTEGER_LEVELS and whole:
                sensitive.append(c)
            elif len(values) <= 1:
                skipped.append({"column": c, "reason": "a single value"})
            else:
                tier_specs[c] = n_tiers
            continue
        values, has_missing = engine.levels(c, max_levels)
        if len(values) > max_levels:
            if attributes is not None:
                raise FairscanError(f"attribute column '{c}' has more than {max_levels} values; group them into "
                                    "fewer categories first, or leave it out")
            skipped.append({"column": c, "reason": f"more than {max_levels} values"})
        elif len(values) + has_missing <= 1:
            skipped.append({"column": c, "reason": "a single value"})
        else:
            sensitive.append(c)
    if not sensitive and not tier_specs:
        raise FairscanError("no candidate attribute is left to search: name some with --attributes COL ...")
    return Candidates(GroupSpec(sensitive=sensitive, tiers=tier_specs, max_groups=max_levels), skipped)


@dataclass
class Lattice:
    """Cell counts of every combination of up to ``depth`` attributes: ``combos[t]`` the
    attributes' indices (increasing), ``codes[t]`` (G, d) each non-empty subgroup's group
    codes, ``n[t]`` (G, 4) its rows per cell, ``w``/``w2`` weight sums (None unweighted)."""

    attributes: list[Attribute]
    combos: list[tuple[int, ...]]
    codes: list[np.ndarray]
    n: list[np.ndarray]
    w: list[np.ndarray] | None
    w2: list[np.ndarray] | None
    #: everyone's cells (n, w, w2), when the tables may not add up to them (a counts file
    #: withholding small groups); None: the first table's sum
    totals: tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None = None


def lattice_of_counts(counts: Any, depth: int) -> Lattice:
    """The lattice of a counts file written with ``subgroups`` (every combination of up to its
    depth of attributes), and its totals."""
    stored = counts.meta.get("subgroups")
    if not stored:
        raise FairscanError("the counts file does not hold the subgroups' counts: count it with --subgroups D "
                            "(every combination of up to D attributes) to search it")
    if counts.meta.get("paired") or counts.protection.get("kind") == "differential privacy":
        raise FairscanError("subgroup discovery from a counts file needs one decision and exact or suppressed "
                            "counts (not a paired or differentially private file)")
    singles = [st.grouping.attributes[0] for st in counts.audited if len(st.grouping.attributes) == 1]
    names = [a.name for a in singles]
    by_name = {tuple(a.name for a in st.grouping.attributes): st for st in counts.audited}
    depth = min(depth, int(stored["depth"]), len(singles))
    combos, codes, ns, ws, w2s = [], [], [], [], []
    for d in range(1, depth + 1):
        for combo in itertools.combinations(range(len(singles)), d):
            st = by_name.get(tuple(names[i] for i in combo))
            if st is None:
                raise FairscanError(f"the counts file lacks the subgroups of {' x '.join(names[i] for i in combo)}")
            keep = st.n.sum(axis=1) > 0  # withheld groups hold no counts: not tested, as if empty
            combos.append(combo)
            codes.append(st.codes[keep].astype(np.int64))
            ns.append(st.n[keep])
            ws.append(st.w[keep] if st.w is not None else None)
            w2s.append(st.w2[keep] if st.w2 is not None else None)
    tot = counts.meta.get("totals") or {}
    totals = None
    if tot.get("n") is not None:
        totals = (np.asarray(tot["n"], dtype=float), None if tot.get("w") is None else np.asarray(tot["w"], dtype=float),
                  None if tot.get("w2") is None else np.asarray(tot["w2"], dtype=float))
    weighted = counts.weights is not None
    return Lattice(singles, combos, codes, ns, ws if weighted else None, w2s if weighted else None, totals)


def count_lattice(engine: Engine, attributes: list[Attribute], depth: int, label: Label | None, decision: Any,
                  weights: str | None) -> tuple[Lattice, Any]:
    """One aggregation of the deepest combinations, the shallower ones by summing them (so
    every depth is counted in the same pass). Returns the lattice and the engine's aggregate
    (row count, data hash)."""
    k = len(attributes)
    depth = min(depth, k)
    deepest = list(itertools.combinations(range(k), depth))
    agg = engine.aggregate([Grouping(tuple(attributes[i] for i in c)) for c in deepest], label, decision, weights)
    by_combo = dict(zip(deepest, agg.stats, strict=True))
    combos: list[tuple[int, ...]] = []
    codes: list[np.ndarray] = []
    ns: list[np.ndarray] = []
    ws: list[np.ndarray] | None = [] if weights else None
    w2s: list[np.ndarray] | None = [] if weights else None
    for d in range(1, depth + 1):
        for combo in itertools.combinations(range(k), d):
            source = next(c for c in deepest if set(combo) <= set(c))
            st = by_combo[source]
            if d == depth:
                c_codes, c_n, c_w, c_w2 = st.codes.astype(np.int64), st.n, st.w, st.w2
            else:
                pos = [source.index(i) for i in combo]
                dims = [attributes[i].n_levels for i in combo]
                key = np.ravel_multi_index(tuple(st.codes[:, p] for p in pos), dims)
                uniq, inv = np.unique(key, return_inverse=True)

                def total(x: np.ndarray, inv: np.ndarray = inv, g: int = len(uniq)) -> np.ndarray:
                    out = np.zeros((g, N_CELLS), dtype=x.dtype)
                    np.add.at(out, inv, x)
                    return out

                c_codes = np.stack(np.unravel_index(uniq, dims), axis=1).astype(np.int64)
                c_n = total(st.n)
                c_w = total(st.w) if st.w is not None else None
                c_w2 = total(st.w2) if st.w2 is not None else None
            combos.append(combo)
            codes.append(c_codes)
            ns.append(c_n)
            if ws is not None and w2s is not None:
                ws.append(c_w)  # type: ignore[arg-type]
                w2s.append(c_w2)  # type: ignore[arg-type]
    return Lattice(attributes, combos, codes, ns, ws, w2s), agg


def _condition_text(attr: Attribute, label: str) -> str:
    if label == UNKNOWN:
        return f"{attr.name} unknown"
    if attr.kind == "tiers":
        return f"{attr.name} in {label}"
    return f"{attr.name} = {label}"


def describe_conditions(conditions: Sequence[tuple[Attribute, str]]) -> str:
    """'customers with age in (24..59], balance in Q1 and housing = no'."""
    parts = [_condition_text(a, g) for a, g in conditions]
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"customers with {joined}"


@dataclass
class DiscoveryResult(LogsToMlflow):
    """What a discovery found: aggregates only, JSON-serialisable.

    ``subgroups``: every subgroup tested, ordered by verdict (fail, insufficient, pass), then
    by the size of the gap; ``parent`` is the id of the subgroup it is folded under (None when
    it stands on its own). ``listed``: the ``top`` subgroups that stand on their own, each
    followed by up to three subgroups folded under it (what the reports show). ``meta``: the
    decision rule, the comparison, the numbers of subgroups tested and folded, the overall
    value, the skipped columns, settings and the data hash.
    """

    subgroups: pd.DataFrame
    meta: dict[str, Any]

    @property
    def listed(self) -> pd.DataFrame:
        s = self.subgroups
        top = s[s["parent"].isna() & s["shown"]].head(self.meta["top"])
        rows = []
        for _, r in top.iterrows():
            rows.append(r)
            children = s[s["parent"] == r["id"]].head(CHILDREN_SHOWN)
            rows.extend(c for _, c in children.iterrows())
        return pd.DataFrame(rows, columns=s.columns).reset_index(drop=True)

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON structure (``fairscan/schemas/discover.schema.json``)."""
        listed = self.listed
        by_id = self.subgroups.set_index("id")["who"]
        rows = []
        for r in listed.to_dict("records"):
            rows.append({
                "id": int(r["id"]),
                "conditions": [{"attribute": a, "group": g} for a, g in r["conditions"]],
                "who": r["who"],
                "description": r["description"],
                "depth": int(r["depth"]),
                "count": jsonable(r["count"]),
                "value": jsonable(r["value"]),
                "value_ci": [jsonable(r["value_ci_low"]), jsonable(r["value_ci_high"])],
                "comparison_value": jsonable(r["comparison_value"]),
                "difference": jsonable(r["difference"]),
                "difference_ci": [jsonable(r["difference_ci_low"]), jsonable(r["difference_ci_high"])],
                "ratio": jsonable(r["ratio"]),
                "ratio_ci": [jsonable(r["ratio_ci_low"]), jsonable(r["ratio_ci_high"])],
                "p_value": jsonable(r["p_value"]),
                "test": r["test"] or None,
                "p_value_adjusted": jsonable(r["p_value_adjusted"]),
                "verdict": r["verdict"],
                "direction": r["direction"] if isinstance(r["direction"], str) else None,
                "message": r["message"],
                "suppressed": bool(r["suppressed"]),
                "suppression": r["suppression"] if isinstance(r["suppression"], str) else None,
                "parent": None if pd.isna(r["parent"]) else str(by_id[int(r["parent"])]),
                "parent_id": None if pd.isna(r["parent"]) else int(r["parent"]),
                "folded": int(r["folded"]),
            })
        return {"schema_version": SCHEMA_VERSION, **{k: jsonable(v) for k, v in self.meta.items()}, "subgroups": rows}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_markdown(self, title: str = "fairscan: who is excluded?") -> str:
        from fairscan.report.discover import render_discover_markdown

        return render_discover_markdown(self, title)

    def to_html(self, title: str = "fairscan: who is excluded?") -> str:
        from fairscan.report.discover import render_discover_html

        return render_discover_html(self, title)

    def verdict_counts(self) -> dict[str, int]:
        vc = self.subgroups["verdict"].value_counts()
        return {v: int(vc.get(v, 0)) for v in ("fail", "insufficient", "pass")}


def _whole(value: object, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise FairscanError(f"{name} must be a whole number >= {low}, got {plain(value)}")
    return int(value)


def discover(
    data: Any,
    *,
    target: str | None = None,
    prediction: str | None = None,
    score: str | None = None,
    threshold: float | None = None,
    budget: int | float | str | None = None,
    attributes: Sequence[str] | None = None,
    tiers: Mapping[str, TierSpec] | None = None,
    infer_tier: str | Mapping[str, Any] | None = None,
    metric: str = "selection_rate",
    max_depth: int = 3,
    min_size: int = 30,
    alpha: float = 0.05,
    top: int = 20,
    reference: str = "complement",
    weights: str | None = None,
    engine: str | None = None,
    seed: int = 0,
    direction: str = "excluded",
    positive_label: object = None,
    favourable_decision: int = 1,
    exclude: Sequence[str] = (),
    n_tiers: int = 4,
    suppress_below: int = 10,
    confidence: float = 0.95,
    tolerance: Mapping[str, float] | None = None,
    model: Any = None,
    trust: Sequence[str] = (),
    trust_pickle: bool = False,
    spark_master: str | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
    progress: Any = None,
) -> DiscoveryResult:
    """Find the subgroups whose decisions differ from everyone else's (see the module
    docstring for the method).

    ``data``, the label (``target``, ``positive_label``) and the decision rule (``prediction``,
    or ``score`` with ``threshold`` or ``budget``; or a ``model`` that scores the data) are as
    for :func:`fairscan.audit`. ``attributes``: the columns to search (default: every column
    but the label, score, prediction, weights, ``exclude`` and identifier-like ones; text
    with more than 50 values is skipped). ``tiers`` ({column: N | cut points}) overrides the
    ``n_tiers`` quantile tiers numbers get; ``infer_tier`` adds an inferred purchasing-power
    tier (``"spend:CUSTOMER,AMOUNT[,N]"`` or ``"model:TIER_COL[,PERSON]"``, as the audit's
    ``--infer-tier``). ``metric``: one of :data:`DISCOVER_METRICS`. ``reference``:
    ``"complement"`` (everyone else) or ``"population"``. ``direction``: list the subgroups
    worse off (``"excluded"``, the default; see :data:`EXCLUDED_SIGN`), better off
    (``"favoured"``) or ``"both"``; every subgroup is tested two-sided and adjusted either
    way. ``tolerance``: ``{"min_ratio": x}``
    or ``{"max_difference": x}`` (default: the audit's for the metric, else the four-fifths
    ratio). ``memory_limit``/``threads`` set the DuckDB engine. ``progress(fraction, text)`` is
    called as the work advances.
    """
    note = progress or (lambda fraction, text: None)
    if metric not in DISCOVER_METRICS:
        raise FairscanError(f"metric '{metric}' cannot be searched{suggest(metric, DISCOVER_METRICS)}; "
                            f"use one of {', '.join(DISCOVER_METRICS)}")
    from_counts = isinstance(data, Counts) or is_counts_file(data)
    if metric != "selection_rate" and target is None and not from_counts:
        raise FairscanError(f"metric '{metric}' needs the outcome: give the label column (--target COL)")
    if reference not in COMPARISONS:
        raise FairscanError(f"reference must be 'complement' or 'population', got {plain(reference)}"
                            f"{suggest(str(reference), COMPARISONS)}")
    if direction not in DIRECTIONS:
        raise FairscanError(f"direction must be one of {', '.join(DIRECTIONS)}, got {plain(direction)}"
                            f"{suggest(str(direction), DIRECTIONS)}")
    max_depth = _whole(max_depth, "max_depth", 1)
    min_size = _whole(min_size, "min_size", 1)
    top = _whole(top, "top", 1)
    n_tiers = _whole(n_tiers, "n_tiers", 2)
    tol = (parse_tolerances({metric: tolerance})[metric] if tolerance is not None
           else DEFAULT_TOLERANCES.get(metric, Tolerance("ratio", FOUR_FIFTHS)))
    policy = AuditPolicy({metric: tol}, min_group_size=min_size, suppress_below=suppress_below, n_boot=0,
                         seed=seed, confidence=confidence, alpha=alpha)
    if from_counts:
        given = {"target": target, "prediction": prediction, "score": score, "threshold": threshold,
                 "budget": budget, "attributes": attributes, "tiers": tiers, "infer_tier": infer_tier,
                 "weights": weights, "model": model}
        refuse_row_options(given, "decision rule, label and attributes")
        cts = data if isinstance(data, Counts) else Counts.read(data)
        note(0.3, "reading every subgroup's counts from the file")
        lattice = lattice_of_counts(cts, max_depth)
        attrs = lattice.attributes
        if metric != "selection_rate" and cts.label is None:
            raise FairscanError(f"metric '{metric}' needs the outcome, and the counts file has no label")
        source = {"engine": "counts", "n_rows": cts.n_rows, "data_sha256": cts.meta.get("data_sha256"),
                  "data_hash": cts.meta.get("data_hash"), "target": cts.meta.get("target"),
                  "positive_label": cts.meta.get("positive_label"), "decision": cts.meta["decision_description"],
                  "model": cts.meta.get("model"), "weights": cts.weights}
        skipped: Any = []
        extra_warnings = [*cts.meta.get("warnings", []),
                          f"searched from a counts file ({cts.protection_text()}); subgroups withheld in the file "
                          "are not tested"]
    else:
        rule = decision_rule(prediction, score, threshold, budget, favourable_decision, model=model is not None)

        from fairscan.groups.purchasing import INFERRED, infer_tiers, parse_infer_tier

        infer = parse_infer_tier(infer_tier)  # type: ignore[arg-type]
        model_meta = None
        if model is not None or infer:
            from fairscan.io import read_table

            if isinstance(data, str | os.PathLike):
                data = read_table(data)
            elif not isinstance(data, pd.DataFrame):
                data = data.to_pandas() if hasattr(data, "to_pandas") else pd.DataFrame(data)
        if model is not None:
            from fairscan.modeling import score_frame

            note(0.05, "scoring with the model")
            data, column, model_meta = score_frame(data, model, positive_label, trust=trust, trust_pickle=trust_pickle)
            rule = rule.with_score(column)
        if infer:
            note(0.1, "inferring purchasing-power tiers")
            used = [c for c in (target, rule.prediction, rule.score, weights) if c]
            data = data.assign(**{INFERRED: infer_tiers(data, infer, exclude=used, seed=seed)[0]})
            if attributes is not None:
                attributes = [*attributes, INFERRED]
        eng = make_engine(data, engine or "auto", spark_master, memory_limit=memory_limit, threads=threads)
        if eng.n_rows() == 0:
            raise FairscanError("the data has no rows")
        for col, role in ((target, "target"), (weights, "weight")):
            if col is not None and col not in eng.columns():
                raise FairscanError(f"{role} column '{col}' not found{suggest(col, eng.columns())}")
        note(0.15, "checking the decision rule")
        decision, _ = rule.resolve(eng)
        label = Label(target, binary_positive(eng, target, positive_label, "label", "--positive-label")) if target else None
        used = [c for c in (target, rule.prediction, rule.score, weights, *exclude) if c]
        if infer.get("kind") == "model":  # the observed tier is what the proxy predicts: not a candidate
            used += [c for c in (infer.get("column"), infer.get("person")) if c]
        note(0.2, "choosing the candidate attributes")
        cands = candidate_attributes(eng, exclude=used, attributes=attributes, tiers=tiers, n_tiers=n_tiers)
        attrs = [a for g in resolve(cands.spec, eng) for a in g.attributes]
        note(0.3, f"counting every subgroup of up to {max_depth} of {len(attrs)} attributes")
        lattice, agg = count_lattice(eng, attrs, max_depth, label, decision, weights)
        source = {"engine": eng.name, "n_rows": agg.n_rows, "data_sha256": agg.data_sha256,
                  "data_hash": agg.data_hash, "target": target, "positive_label": label.positive if label else None,
                  "decision": rule.describe(decision, None), "model": model_meta, "weights": weights}
        skipped = cands.skipped
        extra_warnings = []
    note(0.7, "testing the subgroups")
    table, overall = _analyse(lattice, metric, policy, tol, reference)
    note(0.9, "suppressing small groups and folding")
    table = _finish(table, lattice, policy, tol, reference, metric, top, direction)

    meta = {
        "fairscan_version": __version__,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        **source,
        "metric": metric,
        "metric_description": DESCRIPTIONS[metric],
        "comparison": reference,
        "direction": direction,
        "max_depth": min(max_depth, len(attrs)),
        "min_size": min_size,
        "alpha": alpha,
        "confidence": confidence,
        "top": top,
        "tolerance": tol.to_dict(),
        "attributes": [{"attribute": a.name, "kind": a.kind, "groups": list(a.labels)} for a in attrs],
        "skipped": skipped,
        "subgroups_counted": int(sum(len(c) for c in lattice.codes)),
        "tested": int(table["p_value"].notna().sum()),
        "folded": int(table["parent"].notna().sum()),
        "suppressed": int(table["suppressed"].sum()),
        "fdr_method": FDR_METHOD,
        "interval_methods": {"value": "wilson", "difference": "newcombe hybrid score",
                             "ratio": "log (katz) with 0.5 added to each count",
                             "p_value": "fisher exact if any expected count < 5, else pooled two-proportion z"},
        "overall": overall,
        "verdict_counts": {v: int((table["verdict"] == v).sum()) for v in ("fail", "insufficient", "pass")},
        "warnings": [*[a.note for a in attrs if a.note], *extra_warnings],
    }
    note(1.0, "done")
    return DiscoveryResult(table, meta)


def _analyse(lat: Lattice, metric: str, policy: AuditPolicy, tol: Tolerance,
             reference: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every subgroup's counts, value, comparison, intervals, p-values and verdict, in one
    pass of array algebra over the cells."""
    num_mask, den_mask = (m[:, 0] for m in masks([metric]))
    n = np.concatenate(lat.n).astype(float)
    count = n.sum(axis=1)
    cells = np.concatenate(lat.w) if lat.w is not None else n
    if lat.totals is not None:
        total_n = lat.totals[0]
        total = lat.totals[1] if lat.w is not None and lat.totals[1] is not None else total_n
    else:
        total_n = lat.n[0].sum(axis=0).astype(float)
        total = lat.w[0].sum(axis=0) if lat.w is not None else total_n
    num, den = cells @ num_mask, cells @ den_mask
    num_all, den_all = float(total @ num_mask), float(total @ den_mask)
    num_c, den_c = num_all - num, den_all - den
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(den > 0, num / den, np.nan)
        value_c = np.where(den_c > 0, num_c / den_c, np.nan)
        overall = num_all / den_all if den_all > 0 else math.nan
    # test and interval scale: the denominators' sizes, or their Kish effective sizes if weighted
    if lat.w is not None and lat.w2 is not None:
        w2 = np.concatenate(lat.w2)
        w2_all = lat.totals[2] if lat.totals is not None and lat.totals[2] is not None else lat.w2[0].sum(axis=0)
        size, size_c = effective_n(den, w2 @ den_mask), effective_n(den_c, float(w2_all @ den_mask) - w2 @ den_mask)
        size_all = float(effective_n(np.array(den_all), np.array(float(w2_all @ den_mask))))
    else:
        size, size_c, size_all = den, den_c, den_all
    x, x_c = value * size, value_c * size_c
    tested = (count >= policy.min_group_size) & (size > 0) & (size_c > 0)
    lo, hi = wilson(value, size, policy.confidence)
    p = np.full(len(count), np.nan)
    test = np.full(len(count), "", dtype=object)
    if tested.any():
        p[tested], test[tested] = two_proportion_test(x[tested], size[tested], x_c[tested], size_c[tested])
    d_lo, d_hi = newcombe_difference(x, size, x_c, size_c, policy.confidence)
    r_lo, r_hi = ratio_interval(x, size, x_c, size_c, policy.confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = value - value_c
        ratio = np.where(value_c > 0, value / value_c, np.nan)
    comparison = value_c
    if reference == "population":
        # p_s - p_all = f (p_s - p_c) with f the complement's share of the denominator, and
        # p_s / p_all = r / (s r + 1 - s) with s = 1 - f: both increasing, so intervals map
        share = np.where(den_all > 0, den / den_all, np.nan)
        f = 1 - share
        diff, d_lo, d_hi = diff * f, d_lo * f, d_hi * f

        def to_population(r: np.ndarray) -> np.ndarray:
            with np.errstate(invalid="ignore", divide="ignore"):
                return r / (share * r + f)

        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(overall > 0, value / overall, np.nan)
        r_lo, r_hi = to_population(r_lo), to_population(r_hi)
        comparison = np.full(len(count), overall)
    p_adj = np.full(len(count), np.nan)
    p_adj[tested] = benjamini_yekutieli(p[tested])
    ci_lo, ci_hi = (r_lo, r_hi) if tol.on_ratio else (d_lo, d_hi)
    verdict = verdicts(tol, diff, ratio, ci_lo, ci_hi, p_adj, policy.alpha)
    small_c = total_n.sum() - count < policy.min_group_size  # too few to compare with (the audit's rule)
    verdict[~tested | small_c] = "insufficient"

    table_of = np.concatenate([np.full(len(c), t) for t, c in enumerate(lat.codes)])
    row_of = np.concatenate([np.arange(len(c)) for c in lat.codes])
    depth = np.array([len(lat.combos[t]) for t in table_of])
    nan_if_untested = np.where(tested, 1.0, np.nan)
    df = pd.DataFrame({
        "table": table_of, "row": row_of, "depth": depth, "count": count.astype(np.int64),
        "value": value, "value_ci_low": lo, "value_ci_high": hi,
        "comparison_value": comparison, "comparison_count": (total_n.sum() - count).astype(np.int64),
        "difference": diff * nan_if_untested, "difference_ci_low": d_lo * nan_if_untested,
        "difference_ci_high": d_hi * nan_if_untested,
        "ratio": ratio * nan_if_untested, "ratio_ci_low": r_lo * nan_if_untested,
        "ratio_ci_high": r_hi * nan_if_untested,
        "p_value": p, "test": test, "p_value_adjusted": p_adj, "verdict": verdict, "tested": tested,
        "num": num, "den": den, "size": size,
    })
    lo_all, hi_all = wilson(np.array(overall), np.array(size_all), policy.confidence)
    overall_doc = {"count": int(total_n.sum()), "value": overall, "value_ci": [float(lo_all), float(hi_all)],
                   "denominator": den_all}
    return df, overall_doc


def _finish(df: pd.DataFrame, lat: Lattice, policy: AuditPolicy, tol: Tolerance, reference: str, metric: str,
            top: int, direction: str) -> pd.DataFrame:
    """Suppression (the audit's rule over every published table), folding, order, wording."""
    # suppression: each combination of attributes is one table; cells below the threshold
    # and their complementary partners are hidden
    tables = [CountTable(tuple(lat.attributes[i].name for i in combo),
                         [tuple(lat.attributes[i].labels[c] for i, c in zip(combo, row, strict=True))
                          for row in codes],
                         n.sum(axis=1))
              for combo, codes, n in zip(lat.combos, lat.codes, lat.n, strict=True)]
    masks_ = suppress(tables, policy.suppress_below)
    sup = np.concatenate([m[0] for m in masks_])
    comp = np.concatenate([m[1] for m in masks_])
    df["suppressed"] = sup
    df["suppression"] = np.where(comp, "complementary", np.where(sup, "primary", None))
    hidden = ["value", "value_ci_low", "value_ci_high", "comparison_value", "difference", "difference_ci_low",
              "difference_ci_high", "ratio", "ratio_ci_low", "ratio_ci_high", "p_value", "p_value_adjusted", "num",
              "den", "size"]
    df.loc[sup, hidden] = np.nan
    df.loc[sup, ["count", "comparison_count"]] = -1  # replaced by None below: never published
    df.loc[sup, "verdict"] = "insufficient"

    # only the tested (at least min_size rows) are listed; the rest were counted, never published
    df = df[df["tested"]].copy()

    # folding: a subgroup equal (p >= alpha) to the rest of a parent is listed under it
    parent_of = _fold(df, lat, policy.alpha)
    df["parent_key"] = parent_of

    order = np.lexsort((df["depth"].to_numpy(), -df["count"].to_numpy(),
                        np.nan_to_num(-np.abs(df["difference"].to_numpy()), nan=np.inf),
                        df["verdict"].map(_VERDICT_ORDER).to_numpy()))
    df = df.iloc[order].reset_index(drop=True)
    df["id"] = np.arange(len(df))
    id_of = {k: i for i, k in enumerate(zip(df["table"], df["row"], strict=True))}
    df["parent"] = pd.array([id_of.get(k) if k is not None else None for k in df["parent_key"]], dtype="Int64")
    df["folded"] = df["id"].map(df["parent"].value_counts()).fillna(0).astype(int)

    conds, descs = [], []
    for t, r in zip(df["table"], df["row"], strict=True):
        combo = lat.combos[t]
        pairs = [(lat.attributes[i], lat.attributes[i].labels[c]) for i, c in zip(combo, lat.codes[t][r], strict=True)]
        conds.append([(a.name, g) for a, g in pairs])
        descs.append(describe_conditions(pairs))
    df["conditions"] = conds
    df["who"] = descs
    df["description"] = [f"{w}: numbers suppressed to protect privacy" if sp else headline(w, c, v, cv, reference, metric)
                         for w, sp, c, v, cv in zip(descs, df["suppressed"], df["count"], df["value"],
                                                    df["comparison_value"], strict=True)]
    sign = EXCLUDED_SIGN[metric] * np.sign(df["difference"].to_numpy())
    df["direction"] = np.where(df["suppressed"], None, np.where(sign > 0, "excluded", np.where(sign < 0, "favoured",
                                                                                              "equal")))
    df["shown"] = (direction == "both") | (df["direction"] == direction) | df["suppressed"]
    df["message"] = _messages(df, policy, tol, reference, metric, top)
    for c in ("count", "comparison_count"):
        df[c] = pd.array(np.where(df["suppressed"], None, df[c]), dtype="Int64")
    return df.drop(columns=["parent_key", "tested", "num", "den", "size"])[
        ["id", "conditions", "who", "description", "depth", "count", "value", "value_ci_low", "value_ci_high",
         "comparison_value", "comparison_count", "difference", "difference_ci_low", "difference_ci_high", "ratio",
         "ratio_ci_low", "ratio_ci_high", "p_value", "test", "p_value_adjusted", "verdict", "message", "direction",
         "shown", "suppressed", "suppression", "parent", "folded", "table", "row"]]


def _fold(df: pd.DataFrame, lat: Lattice, alpha: float) -> list[tuple[int, int] | None]:
    """For each subgroup, the (table, row) of the parent it is folded under, or None: among
    its parents (one condition fewer, tested and published), the one whose rest (the parent
    without the subgroup) it differs least from, if that difference is not significant once
    adjusted (Benjamini-Yekutieli over every subgroup with a parent)."""
    index = {combo: t for t, combo in enumerate(lat.combos)}
    keys = {}
    for t, (combo, codes) in enumerate(zip(lat.combos, lat.codes, strict=True)):
        dims = [lat.attributes[i].n_levels for i in combo]
        keys[t] = (np.ravel_multi_index(tuple(codes.T), dims), dims)
    published = df[~df["suppressed"]]
    pos = {k: i for i, k in enumerate(zip(published["table"], published["row"], strict=True))}
    num = published["num"].to_numpy()
    den = published["den"].to_numpy()
    size = published["size"].to_numpy()  # the test's scale: rows, or the Kish effective size
    value = published["value"].to_numpy()
    best_p = np.full(len(published), -1.0)
    best = np.full(len(published), -1, dtype=np.int64)
    tables = published["table"].to_numpy()
    rows = published["row"].to_numpy()
    for t in np.unique(tables):
        combo = lat.combos[t]
        if len(combo) < 2:
            continue
        mine = np.flatnonzero(tables == t)
        codes = lat.codes[t][rows[mine]]
        for j in range(len(combo)):
            parent = index[combo[:j] + combo[j + 1:]]
            pkeys, dims = keys[parent]
            want = np.ravel_multi_index(tuple(np.delete(codes, j, axis=1).T), dims)
            prow = np.searchsorted(pkeys, want)  # codes are sorted by key within a table
            found = prow < len(pkeys)
            found[found] &= pkeys[prow[found]] == want[found]
            pidx = np.array([pos.get((parent, int(r)), -1) if ok else -1 for r, ok in zip(prow, found, strict=True)])
            ok = pidx >= 0
            if not ok.any():
                continue
            me, par = mine[ok], pidx[ok]
            with np.errstate(invalid="ignore", divide="ignore"):
                rest_value = (num[par] - num[me]) / (den[par] - den[me])
            rest_size = size[par] - size[me]
            valid = (rest_size > 0) & np.isfinite(rest_value)
            pv = np.full(len(me), np.nan)
            pv[den[par] == den[me]] = 1.0  # the same people as the parent: nothing to add
            if valid.any():
                pv[valid] = two_proportion_test(value[me][valid] * size[me][valid], size[me][valid],
                                                rest_value[valid] * rest_size[valid], rest_size[valid])[0]
            better = ~np.isnan(pv) & (pv > best_p[me])
            best_p[me[better]] = pv[better]
            best[me[better]] = par[better]
    # a subgroup adds something to its most similar parent only if it differs from that
    # parent's rest with the adjusted evidence a finding needs (BY over every such test)
    has = best >= 0
    adjusted = np.full(len(best), np.nan)
    adjusted[has] = benjamini_yekutieli(best_p[has])
    out: dict[tuple[int, int], tuple[int, int]] = {}
    for i in np.flatnonzero(has & (adjusted >= alpha)):
        out[(int(tables[i]), int(rows[i]))] = (int(tables[best[i]]), int(rows[best[i]]))
    return [out.get((int(t), int(r))) for t, r in zip(df["table"], df["row"], strict=True)]


def _messages(df: pd.DataFrame, policy: AuditPolicy, tol: Tolerance, reference: str, metric: str,
              top: int) -> list[str | None]:
    """The audit's sentence (policy.judge) for the subgroups a report lists; None for the rest."""
    listed = set(df.loc[df["parent"].isna() & df["shown"]].head(top)["id"])
    listed |= set(df.loc[df["parent"].isin(list(listed))].groupby("parent").head(CHILDREN_SHOWN)["id"])
    who = "everyone else" if reference == "complement" else "everyone"
    out: list[str | None] = []
    for r in df.itertuples(index=False):
        if r.id not in listed:
            out.append(None)
            continue
        gap = Gap(
            who=r.who, unit="people", what=DESCRIPTIONS[metric], reference=who,
            group_count=None if r.suppressed else int(r.count), reference_count=int(r.comparison_count),
            group_value=r.value, reference_value=r.comparison_value, difference=r.difference, ratio=r.ratio,
            ci_ratio=(r.ratio_ci_low, r.ratio_ci_high), ci_difference=(r.difference_ci_low, r.difference_ci_high),
            p_adjusted=r.p_value_adjusted, suppression=r.suppression if isinstance(r.suppression, str) else None,
        )
        out.append(judge(gap, tol, min_group_size=policy.min_group_size, suppress_below=policy.suppress_below,
                         confidence=policy.confidence, alpha=policy.alpha, adjustment="BY",
                         test=r.test or None)[1])
    return out


def headline(who: str, count: int, value: float, comparison: float, reference: str, metric: str) -> str:
    """'customers with ... (1,212 people) are offered 6.1% vs 21.4% for everyone else.'"""
    other = "everyone else" if reference == "complement" else "everyone"
    verb = "are offered" if metric == "selection_rate" else f"have a {DESCRIPTIONS[metric]} of"
    return f"{who} ({int(count):,} people) {verb} {pct(value)} vs {pct(comparison)} for {other}."
