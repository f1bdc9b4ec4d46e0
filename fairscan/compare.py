"""Is the challenger fairer than the champion? Two models' decisions on the same customers,
compared pair by pair.

Both decisions of a row are counted together: per group, 8 cells over (outcome, decision A,
decision B). Each model's rates are sums of those cells (its 4-cell table), so A's values
equal a single-model audit's exactly; the change B - A and the change in the gap to the
reference are differences of the same cells. Intervals come from the **paired bootstrap**: a
multinomial draw over each group's 8 cells (the pairing kept), one matrix product per
replicate. Within a group, **McNemar's exact test** asks whether the customers A offers and B
does not (lost) are as many as those B offers and A does not (gained), among the metric's
denominator (everyone for the selection rate; those with a positive outcome for the true
positive and false negative rates; the others for the false positive rate). p-values are
Holm-adjusted across the table.

**Verdict on each change**, with ``margin`` (default: a quarter of the width of the metric's
tolerance: 0.05 for a four-fifths ratio, 0.025 for a 10-point difference):

- ``worse``: the change harms the group (a lower selection or true positive rate, a higher
  false negative rate, a lower false positive rate) by more than the margin, and the
  adjusted p-value is below ``alpha``;
- ``better``: it helps the group and the adjusted p-value is below ``alpha``;
- ``not worse``: the whole interval is within the margin on the harmful side;
- ``insufficient``: none of these (or a group too small, or suppressed).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairscan.engines.choose import make_engine
from fairscan.engines.counts import Counts, is_counts_file, refuse_row_options
from fairscan.errors import FairscanError, suggest
from fairscan.formatting import jsonable
from fairscan.groups import TierSpec, resolve, resolve_references
from fairscan.metrics.classification import EXCLUSION_SIGN, masks, paired_projections, rates
from fairscan.metrics.stats import bootstrap_cells, group_streams, holm, percentile_interval, wilson
from fairscan.metrics.tables import count_tables
from fairscan.params import audit_params, check_column, group_spec
from fairscan.policy import AuditPolicy
from fairscan.privacy import suppress
from fairscan.schemas import SCHEMA_VERSION
from fairscan.tracking import LogsToMlflow
from fairscan.types import CellStats, Label
from fairscan.validation import binary_positive
from fairscan.version import __version__

__all__ = ["COMPARED_METRICS", "HARM_SIGN", "ComparisonResult", "compare", "compare_cells", "mcnemar_exact"]

#: the metrics compared, and the sign of a change that harms the group (one rule for every analysis)
COMPARED_METRICS = ("selection_rate", "true_positive_rate", "false_negative_rate", "false_positive_rate")
HARM_SIGN = {m: EXCLUSION_SIGN[m] for m in COMPARED_METRICS}
#: which outcomes form each metric's denominator (None: everyone)
_POPULATION = {"selection_rate": None, "true_positive_rate": 1, "false_negative_rate": 1, "false_positive_rate": 0}
VERDICTS = ("worse", "insufficient", "not worse", "better")


def mcnemar_exact(lost: np.ndarray, gained: np.ndarray) -> np.ndarray:
    """Two-sided exact McNemar p-values: the binomial test of ``lost`` among the discordant
    pairs ``lost + gained`` at 1/2 (1 when there are none)."""
    from scipy.special import betainc

    b, c = np.asarray(lost, dtype=float), np.asarray(gained, dtype=float)
    n = b + c
    k = np.floor(np.minimum(b, c))
    # P(X <= k) for X ~ Binomial(n, 1/2) as the regularised incomplete beta I_1/2(n - k, k + 1)
    # (scipy's bdtr without its deprecated non-integer n); 1 when k = n
    with np.errstate(invalid="ignore", divide="ignore"):
        cdf = np.where(n - k > 0, betainc(np.maximum(n - k, 1e-300), k + 1, 0.5), 1.0)
    return np.where(n > 0, np.minimum(1.0, 2 * cdf), 1.0)


@dataclass
class ComparisonResult(LogsToMlflow):
    """Champion (A) against challenger (B) on the same rows: ``changes`` per (attribute,
    metric, group), ``switches`` per (attribute, group), ``meta`` how it was made."""

    changes: pd.DataFrame
    switches: pd.DataFrame
    meta: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON structure (``fairscan/schemas/compare.schema.json``)."""
        changes = []
        for r in self.changes.to_dict("records"):
            obj = {k: jsonable(r[k]) for k in ("attribute", "group", "metric", "count", "denominator", "value_a",
                                                 "value_b", "change", "gap_change", "p_value", "p_value_adjusted",
                                                 "verdict", "suppressed", "reference")}
            for side in ("a", "b"):
                obj[f"value_{side}_ci"] = [jsonable(r[f"value_{side}_ci_low"]), jsonable(r[f"value_{side}_ci_high"])]
            obj["change_ci"] = [jsonable(r["change_ci_low"]), jsonable(r["change_ci_high"])]
            obj["gap_change_ci"] = [jsonable(r["gap_change_ci_low"]), jsonable(r["gap_change_ci_high"])]
            changes.append(obj)
        switches = [{k: jsonable(v) for k, v in r.items()} for r in self.switches.to_dict("records")]
        return {"schema_version": SCHEMA_VERSION, **{k: jsonable(v) for k, v in self.meta.items()},
                "changes": changes, "switches": switches}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_markdown(self, title: str = "fairscan: champion against challenger") -> str:
        from fairscan.report.compare import render_compare_markdown

        return render_compare_markdown(self, title)

    def to_html(self, title: str = "fairscan: champion against challenger") -> str:
        from fairscan.report.compare import render_compare_html

        return render_compare_html(self, title)

    def verdict_counts(self) -> dict[str, int]:
        vc = self.changes["verdict"].value_counts()
        return {v: int(vc.get(v, 0)) for v in VERDICTS}

    @property
    def worse(self) -> pd.DataFrame:
        """The changes that make a group worse off."""
        return self.changes[self.changes["verdict"] == "worse"]


def compare(
    data: Any,
    *,
    models: Sequence[Any] | None = None,
    scores: Sequence[str] | None = None,
    predictions: Sequence[str] | None = None,
    threshold: float | None = None,
    budget: int | float | str | None = None,
    target: str | None = None,
    positive_label: object = None,
    sensitive: str | Sequence[str] | None = None,
    tiers: Mapping[str, TierSpec] | None = None,
    intersect: bool | Sequence[Sequence[str]] = False,
    reference: Mapping[str, str] | str | None = None,
    metrics: Sequence[str] | None = None,
    margin: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    min_group_size: int = 30,
    suppress_below: int = 10,
    confidence: float = 0.95,
    alpha: float = 0.05,
    favourable_decision: int = 1,
    names: Sequence[str] | None = None,
    trust: Sequence[str] = (),
    trust_pickle: bool = False,
    engine: str = "auto",
    spark_master: str | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> ComparisonResult:
    """Compare model A (the champion) with model B (the challenger) on the same rows (see the
    module docstring). Give two ``models`` (files, ``reference:NAME`` or fitted objects),
    two ``scores`` columns or two ``predictions`` columns; the one decision rule
    (``threshold`` or ``budget``: the same number of offers for both) applies to each. Groups,
    label and policy as for :func:`fairscan.audit`. ``metrics`` default to the selection rate,
    and with a ``target`` the true positive, false negative and false positive rates.

    ``data`` and ``engine`` as for :func:`fairscan.audit`: score or prediction columns are
    counted where the data lives (in memory, by DuckDB for Parquet/CSV paths, or by Spark) in
    one pass; models are scored in memory."""
    if isinstance(data, Counts) or is_counts_file(data):
        refuse_row_options({"models": models, "scores": scores, "predictions": predictions, "threshold": threshold,
                            "budget": budget, "target": target, "sensitive": sensitive, "tiers": tiers},
                           "two decisions, label and groups", "give only the policy (margin, bootstrap, sizes)")
        policy = AuditPolicy(min_group_size=min_group_size, suppress_below=suppress_below, n_boot=n_boot, seed=seed,
                             confidence=confidence, alpha=alpha)
        return _compare_counts(data if isinstance(data, Counts) else Counts.read(data), policy, reference, metrics,
                               margin, names)
    given = [x for x in (models, scores, predictions) if x is not None]
    if len(given) != 1 or len(given[0]) != 2:
        raise FairscanError("give two models (--model A --model B), two score columns or two prediction columns")
    a_name, b_name = list(names) if names else ["A", "B"]
    model_meta: list[dict[str, Any]] = []
    warnings: list[str] = []
    if models is not None:
        from fairscan import modeling

        if engine not in ("auto", "memory"):
            raise FairscanError(f"scoring models needs the rows in memory, not the {engine} engine; score the "
                                "data first and compare the two score columns (--score A --score B)")
        if isinstance(data, str | os.PathLike):
            from fairscan.io import read_table

            data = read_table(data)
        if not isinstance(data, pd.DataFrame):
            data = data.to_pandas() if hasattr(data, "to_pandas") else pd.DataFrame(data)
        frame = data
        cols = []
        for i, m in enumerate(models):
            column = f"__score_{'ab'[i]}__"
            scored, col, scoring = modeling.score_frame(data, m, positive_label, trust=trust, trust_pickle=trust_pickle)
            if scoring.get("warning"):
                warnings.append(f"model {(a_name, b_name)[i]} ({m}): {scoring['warning']}")
            frame = frame.assign(**{column: scored[col].to_numpy()})
            cols.append(column)
            model_meta.append({"name": (a_name, b_name)[i], "model": str(m) if isinstance(m, str | os.PathLike)
                               else type(m).__name__, "sha256": scoring.get("sha256")})  # the artifact's, hashed once
        data, kind = frame, "score"
    else:
        cols = list(scores if scores is not None else predictions)  # type: ignore[arg-type]
        kind = "score" if scores is not None else "prediction"
    rule_kw = dict(threshold=threshold, budget=budget) if kind == "score" else {}
    params = [audit_params(target=target, positive_label=positive_label, sensitive=sensitive, tiers=tiers,
                           intersect=intersect, reference=reference, min_group_size=min_group_size,
                           suppress_below=suppress_below, n_boot=n_boot, seed=seed, confidence=confidence,
                           alpha=alpha, favourable_decision=favourable_decision, engine=engine,
                           spark_master=spark_master, **{kind: c}, **rule_kw)
              for c in cols]
    policy = params[0].policy
    chosen = _chosen_metrics(metrics, target is not None)
    needed = list(dict.fromkeys(c for p in params for c in p.columns()))
    eng = make_engine(data, engine, spark_master, columns=needed, memory_limit=memory_limit, threads=threads)
    if eng.n_rows() == 0:
        raise FairscanError("the data has no rows")
    if models is None:
        for c in cols:
            check_column(eng, c, kind)
    check_column(eng, target, "target")
    decisions = [p.decision.resolve(eng) for p in params]
    label = None
    if target is not None:
        label = Label(target, binary_positive(eng, target, positive_label, "label", "--positive-label"))
    groupings = resolve(params[0].groups, eng)
    # one pass: per group, 8 cells over (outcome, decision A, decision B)
    agg = eng.aggregate(groupings, label, decisions[0][0], None, paired=decisions[1][0])
    if models is None:
        for i, c in enumerate(cols):
            # the column's own stream digest from the data hash (None with a fast digest)
            model_meta.append({"name": (a_name, b_name)[i], "column": c, "sha256": agg.column_sha256.get(c)})
    changes, switches, used_refs = compare_cells(agg.stats, policy, dict(params[0].groups.reference), chosen,
                                                 margin)
    describe = [p.decision.describe(d, None) for p, (d, _) in zip(params, decisions, strict=True)]
    meta = {
        "fairscan_version": __version__,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "engine": eng.name,
        "n_rows": agg.n_rows,
        "data_sha256": agg.data_sha256,
        "data_hash": agg.data_hash,
        "models": model_meta,
        "decision": {"a": describe[0], "b": describe[1]},
        "target": target,
        "metrics": chosen,
        "reference": used_refs,
        "settings": {"n_boot": n_boot, "seed": seed, "confidence": policy.confidence, "alpha": policy.alpha,
                     "min_group_size": policy.min_group_size, "suppress_below": policy.suppress_below,
                     "margin": margin, "interval": "paired bootstrap (multinomial over each group's 8 cells)",
                     "test": "McNemar exact, within the group, Holm-adjusted across the table"},
        "warnings": warnings,
    }
    return ComparisonResult(changes, switches, meta)


def _chosen_metrics(metrics: Sequence[str] | None, labelled: bool) -> list[str]:
    chosen = list(metrics) if metrics else (list(COMPARED_METRICS) if labelled else ["selection_rate"])
    for m in chosen:
        if m not in COMPARED_METRICS:
            raise FairscanError(f"metric '{m}' cannot be compared{suggest(m, COMPARED_METRICS)}; use "
                                f"{', '.join(COMPARED_METRICS)}")
        if m != "selection_rate" and not labelled:
            raise FairscanError(f"metric '{m}' needs the outcome: give the label column (--target COL)")
    return chosen


def _compare_counts(cts: Counts, policy: AuditPolicy, reference: Mapping[str, str] | str | None,
                    metrics: Sequence[str] | None, margin: float | None, names: Sequence[str] | None,
                    ) -> ComparisonResult:
    """The comparison from a counts file with two decisions counted pair by pair."""
    paired = cts.meta.get("paired")
    if not paired:
        raise FairscanError("the counts file holds one decision: count it with --paired-score COL (or "
                            "--paired-prediction COL) to compare two models from it")
    if cts.protection.get("kind") == "differential privacy":
        raise FairscanError("comparing two models from differentially private counts is not supported yet: count "
                            "the pair without --epsilon")
    chosen = _chosen_metrics(metrics, cts.label is not None)
    # the audit's one reading of a reference (ATTRIBUTE=GROUP, or GROUP with one attribute)
    ref = group_spec([g.name for g in cts.groupings], None, True, reference).reference if reference else {}
    changes, switches, used_refs = compare_cells(cts.audited, policy, ref, chosen, margin, cts.masks(policy.suppress_below))
    a_name, b_name = list(names) if names else ["A", "B"]
    models = [{**m, "name": n} for m, n in zip(paired["models"], (a_name, b_name), strict=True)]
    meta = {
        "fairscan_version": __version__,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "engine": "counts", "n_rows": cts.n_rows, "data_sha256": cts.meta.get("data_sha256"),
        "data_hash": cts.meta.get("data_hash"), "models": models,
        "decision": {"a": cts.meta["decision_description"], "b": paired["decision_description"]},
        "target": cts.meta.get("target"), "metrics": chosen, "reference": used_refs,
        "settings": {"n_boot": policy.n_boot, "seed": policy.seed, "confidence": policy.confidence,
                     "alpha": policy.alpha, "min_group_size": policy.min_group_size,
                     "suppress_below": policy.suppress_below, "margin": margin,
                     "interval": "paired bootstrap (multinomial over each group's 8 cells)",
                     "test": "McNemar exact, within the group, Holm-adjusted across the table"},
        "warnings": [*cts.meta.get("warnings", []), f"compared from a counts file ({cts.protection_text()})"],
    }
    return ComparisonResult(changes, switches, meta)


def compare_cells(stats: list[CellStats], policy: AuditPolicy, reference: Mapping[str, str], chosen: Sequence[str],
                  margin: float | None, masks: list[tuple[np.ndarray, np.ndarray]] | None = None,
                  ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """The comparison from paired counts (8 cells per group): the changes, the switches and
    each attribute's reference group. ``masks``: the suppressed groups when already decided
    (a counts file that withholds them); else the audit's one suppression rule decides. Each
    group's bootstrap draws from its own stream (:func:`~fairscan.metrics.stats.group_streams`)."""
    n_boot, seed = policy.n_boot, policy.seed
    ref_names = resolve_references({st.grouping.name: st.labels for st in stats}, dict(reference))
    if masks is None:
        masks = suppress(count_tables(stats, ref_names), policy.suppress_below)
    default_margin = margin
    rows, switch_rows = [], []
    used_refs: dict[str, str] = {}
    for st, (sup, _) in zip(stats, masks, strict=True):
        g, labels, n8 = st.grouping, st.labels, st.n
        count = n8.sum(axis=1)
        ref = labels.index(ref_names[g.name]) if g.name in ref_names else int(np.argmax(np.where(sup, -1, count)))
        used_refs[g.name] = labels[ref]
        reps = (bootstrap_cells(n8, None, None, n_boot, group_streams(seed, g.name, labels)) if n_boot
                else np.zeros((0, len(labels), 8)))
        for i, lab in enumerate(labels):
            gained, lost = int(n8[i, [1, 5]].sum()), int(n8[i, [2, 6]].sum())
            switch_rows.append({"attribute": g.name, "group": lab, "count": None if sup[i] else int(count[i]),
                                "gained": None if sup[i] else gained, "lost": None if sup[i] else lost,
                                "suppressed": bool(sup[i])})
        for m in chosen:
            va, vb, den, disc = _rates(n8, m)
            ra, rb, _, _ = _rates(reps, m) if n_boot else (None, None, None, None)
            a_lo, a_hi = wilson(va, den, policy.confidence)
            b_lo, b_hi = wilson(vb, den, policy.confidence)
            change = vb - va
            gap_change = (vb - vb[ref]) - (va - va[ref])
            if n_boot:
                c_lo, c_hi = percentile_interval(rb - ra, policy.confidence)
                gc = (rb - rb[:, [ref]]) - (ra - ra[:, [ref]])
                g_lo, g_hi = percentile_interval(gc, policy.confidence)
            else:
                c_lo = c_hi = g_lo = g_hi = np.full(len(labels), np.nan)
            p = mcnemar_exact(disc[:, 0], disc[:, 1])
            tol = policy.tolerances.get(m)
            mg = default_margin if default_margin is not None else (
                (1 - tol.bound) / 4 if tol is not None and tol.kind == "ratio" else (tol.bound / 4 if tol else 0.025))
            for i, lab in enumerate(labels):
                hidden = bool(sup[i])
                rows.append({
                    "attribute": g.name, "group": lab, "metric": m, "reference": i == ref,
                    "count": None if hidden else int(count[i]), "suppressed": hidden,
                    "value_a": np.nan if hidden else va[i], "value_b": np.nan if hidden else vb[i],
                    "value_a_ci_low": np.nan if hidden else a_lo[i], "value_a_ci_high": np.nan if hidden else a_hi[i],
                    "value_b_ci_low": np.nan if hidden else b_lo[i], "value_b_ci_high": np.nan if hidden else b_hi[i],
                    "denominator": None if hidden else int(den[i]),
                    "change": np.nan if hidden else change[i],
                    "change_ci_low": np.nan if hidden else c_lo[i], "change_ci_high": np.nan if hidden else c_hi[i],
                    "gap_change": np.nan if hidden or i == ref else gap_change[i],
                    "gap_change_ci_low": np.nan if hidden or i == ref else g_lo[i],
                    "gap_change_ci_high": np.nan if hidden or i == ref else g_hi[i],
                    "p_value": np.nan if hidden else p[i], "margin": mg,
                    "small": count[i] < policy.min_group_size,
                })
    changes = pd.DataFrame(rows)
    changes["p_value_adjusted"] = holm(changes["p_value"].to_numpy())
    changes["verdict"] = _verdicts(changes, policy.alpha)
    changes = changes.drop(columns=["small"])
    switches = pd.DataFrame(switch_rows).drop_duplicates(["attribute", "group"]).reset_index(drop=True)
    return changes, switches, used_refs


_TO_A, _TO_B = paired_projections()


def _rates(cells: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A's and B's rate of ``metric`` from 8-cell counts, by the audit's cell algebra
    (:func:`fairscan.metrics.classification.rates` on each model's 4-cell table), the size of
    its denominator, and the discordant (lost, gained) counts among the denominator's rows."""
    c = np.asarray(cells, dtype=float)
    va, _, den = (x[..., 0] for x in rates(c @ _TO_A, [metric]))
    vb = rates(c @ _TO_B, [metric])[0][..., 0]
    _, den_mask = (m[:, 0] for m in masks([metric]))
    # the denominator is a set of outcomes for every compared metric (everyone, y = 1 or y = 0)
    outcomes = [y for y in (0, 1) if den_mask[2 * y] and den_mask[2 * y + 1]]
    lost = sum(c[..., 4 * y + 2] for y in outcomes)  # offered by A only
    gained = sum(c[..., 4 * y + 1] for y in outcomes)  # offered by B only
    return va, vb, den, np.stack([lost, gained], axis=-1)


def _verdicts(changes: pd.DataFrame, alpha: float) -> list[str]:
    out = []
    for r in changes.itertuples(index=False):
        sign = HARM_SIGN[r.metric]
        if r.suppressed or r.small or math.isnan(r.change):
            out.append("insufficient")
            continue
        harm = sign * r.change
        harm_hi = max(sign * r.change_ci_low, sign * r.change_ci_high)
        significant = not math.isnan(r.p_value_adjusted) and r.p_value_adjusted < alpha
        if harm > r.margin and significant:
            out.append("worse")
        elif harm < 0 and significant:
            out.append("better")
        elif not math.isnan(harm_hi) and harm_hi <= r.margin:
            out.append("not worse")
        else:
            out.append("insufficient")
    return out

