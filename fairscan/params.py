"""An audit's parameters as objects, and the one validator that builds them.

Every face turns what its user typed into the keywords of :func:`fairscan.audit` (the CLI's
flags, a review file, the dashboard's form, mitigation's options) and hands them to
:func:`audit_params`, which checks everything that can be checked without the data and
returns an :class:`AuditParams`: the decision rule, the groups and the policy. What depends on
the data (a column exists, a threshold lies within the scores, a budget fits the rows) is
checked by :meth:`DecisionRule.resolve` and the groups' resolution, once an engine exists.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fairscan.engines import ENGINES
from fairscan.engines.base import Engine
from fairscan.errors import FairscanError, plain, suggest
from fairscan.formatting import round_significant
from fairscan.groups import GroupSpec, TierSpec
from fairscan.policy import AuditPolicy, parse_tolerances
from fairscan.types import Decision
from fairscan.validation import binary_positive, parse_budget, parse_epsilon, resolve_budget

__all__ = [
    "AuditParams",
    "DecisionRule",
    "ModelSource",
    "audit_params",
    "check_column",
    "decision_rule",
    "group_spec",
    "outward",
]


def check_column(engine: Engine, column: str | None, role: str) -> None:
    """A one-line error, with close matches, when ``column`` is not in the data."""
    if column is not None and column not in engine.columns():
        raise FairscanError(f"{role} column '{column}' not found{suggest(column, engine.columns())}")


@dataclass(frozen=True)
class DecisionRule:
    """How each row's decision is read: a 0/1 ``prediction`` column, or a ``score`` column
    cut at a ``threshold`` (offer when score >= threshold) or at a ``budget`` (the top K rows,
    or the top fraction). ``favourable`` is the decision value that means an offer (0 for risk
    scores). With a model the score column is made by scoring, so ``score`` may be unset."""

    prediction: str | None = None
    score: str | None = None
    threshold: float | None = None
    budget: int | float | None = None
    favourable: int = 1

    def with_score(self, column: str) -> DecisionRule:
        """The same rule applied to the score column a model has just written."""
        return DecisionRule(None, column, self.threshold, self.budget, self.favourable)

    def resolve(self, engine: Engine) -> tuple[Decision, tuple[float, float] | None]:
        """The rule checked against the data: the :class:`Decision` the engines count, and the
        score's range (None for a prediction column)."""
        for col, role in ((self.prediction, "prediction"), (self.score, "score")):
            check_column(engine, col, role)
        if self.prediction is not None:
            positive = binary_positive(engine, self.prediction, None, "prediction", "a 0/1 prediction")
            return Decision("prediction", self.prediction, self.favourable, positive=positive), None
        score = str(self.score)
        if not engine.is_numeric(score):
            raise FairscanError(f"score column '{score}' is not numeric; scores must be numbers")
        lo, hi, bad = engine.min_max(score)
        if bad:
            raise FairscanError(
                f"score column '{score}' has {bad:,} missing, NaN or infinite values; fix or remove those rows first"
            )
        if self.threshold is not None:
            t = self.threshold
            if t > hi or t < lo:
                where = "above every" if t > hi else "below every"
                raise FairscanError(
                    f"threshold {t:g} is {where} score in '{score}' (range {lo:g} to {hi:g}): everyone would "
                    "get the same decision; choose a threshold within the range, or use --budget"
                )
            return Decision("threshold", score, self.favourable, threshold=t), (lo, hi)
        k = resolve_budget(self.budget if self.budget is not None else 0, engine.n_rows())
        return Decision("budget", score, self.favourable, k=k), (lo, hi)

    def describe(self, decision: Decision, score_range: tuple[float, float] | None) -> dict[str, Any]:
        """What the result records about the decision (the ``decision`` key of the JSON)."""
        d = decision
        if d.kind == "prediction":
            text = f"prediction column '{d.column}' (favourable decision = {d.favourable})"
        elif d.kind == "threshold":
            text = f"score '{d.column}' >= {d.threshold:g}" + ("" if d.favourable == 1 else " means refusal")
        else:
            text = f"top {d.k:,} rows by score '{d.column}' (budget {self.budget})" + (
                "" if d.favourable == 1 else "; those are refused")
        return {
            "kind": d.kind,
            "column": d.column,
            "threshold": d.threshold,
            "budget": d.k,
            "favourable_decision": d.favourable,
            "favourable_meaning": "offer" if d.favourable == 1 else "no refusal",
            "score_range": outward(score_range) if score_range else None,
            "description": text,
        }


@dataclass(frozen=True)
class ModelSource:
    """A model that scores the data: a file, ``reference:NAME`` or a fitted object, with the
    extra types the user trusts in a ``.skops`` file and their consent to unpickle."""

    model: Any
    trust: tuple[str, ...] = ()
    trust_pickle: bool = False


@dataclass(frozen=True)
class AuditParams:
    """Everything an audit needs besides the data; build it with :func:`audit_params`."""

    decision: DecisionRule
    groups: GroupSpec
    policy: AuditPolicy = field(default_factory=AuditPolicy)
    target: str | None = None
    positive_label: object = None
    weights: str | None = None
    model: ModelSource | None = None
    dp_epsilon: float | None = None
    engine: str = "auto"
    spark_master: str | None = None

    def columns(self) -> list[str]:
        """The columns the audit reads (without a model, which may read any)."""
        d = self.decision
        cols = [self.target, d.prediction, d.score, self.weights, *self.groups.columns()]
        return list(dict.fromkeys(c for c in cols if c is not None))


def decision_rule(
    prediction: str | None = None,
    score: str | None = None,
    threshold: object = None,
    budget: object = None,
    favourable_decision: object = 1,
    *,
    model: bool = False,
) -> DecisionRule:
    """The decision rule from its keywords, checked without the data. ``model=True``: a model
    will write the score column, so neither a prediction nor a score column may be named."""
    if isinstance(favourable_decision, bool) or favourable_decision not in (0, 1):
        raise FairscanError(f"favourable decision must be 0 or 1, got {plain(favourable_decision)}")
    if model and (prediction is not None or score is not None):
        raise FairscanError("give a model or a score/prediction column, not both")
    if not model and (prediction is None) == (score is None):
        raise FairscanError("give exactly one of a prediction column or a score column (with a threshold or budget)")
    if prediction is not None and (threshold is not None or budget is not None):
        raise FairscanError("a threshold or budget applies to a score column, not to a prediction column")
    if prediction is None and (threshold is None) == (budget is None):
        what = f"score column '{score}'" if score is not None else "a model's score"
        raise FairscanError(f"{what} needs exactly one of --threshold T or --budget K")
    t = None
    if threshold is not None:
        try:
            t = float(threshold)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise FairscanError(f"threshold {plain(threshold)} is not a number") from None
        if isinstance(threshold, bool) or not math.isfinite(t):
            raise FairscanError(f"threshold {plain(threshold)} must be a finite number")
    return DecisionRule(prediction, score, t, parse_budget(budget), int(favourable_decision))  # type: ignore[arg-type]


def group_spec(
    sensitive: str | Sequence[str] | None = None,
    tiers: Mapping[str, TierSpec] | None = None,
    intersect: bool | Sequence[Sequence[str]] = False,
    reference: Mapping[str, str] | str | None = None,
) -> GroupSpec:
    """Which groups to audit, checked without the data: at least one attribute, and each
    reference naming an audited attribute (``"GROUP"`` alone when there is one attribute,
    else ``"ATTRIBUTE=GROUP"``)."""
    if isinstance(sensitive, str):
        sensitive = [sensitive]
    spec = GroupSpec(sensitive=list(sensitive or []), tiers=dict(tiers or {}), intersect=intersect)
    names = spec.columns()
    if not names:
        raise FairscanError("name at least one sensitive attribute (--sensitive COL or --tiers COL=N)")
    if isinstance(reference, str):
        if "=" in reference:
            k, _, v = reference.partition("=")
            reference = {k: v}
        elif len(names) == 1:
            reference = {names[0]: reference}
        else:
            raise FairscanError("with several attributes, name the reference as ATTRIBUTE=GROUP")
    reference = dict(reference or {})
    if intersect is not False:  # the crossed attributes may be named too; the data decides their labels
        return GroupSpec(spec.sensitive, spec.tiers, intersect, reference)
    for attr in reference:
        if attr not in names:
            raise FairscanError(f"reference names attribute '{attr}', which is not audited{suggest(attr, names)}")
    return GroupSpec(spec.sensitive, spec.tiers, intersect, reference)


def audit_params(
    *,
    target: str | None = None,
    prediction: str | None = None,
    score: str | None = None,
    threshold: float | None = None,
    budget: int | float | str | None = None,
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
) -> AuditParams:
    """The one validator: :func:`fairscan.audit`'s keywords (same names, same meaning) checked
    without the data and built into :class:`AuditParams`. Each problem is one line that says
    what to change."""
    if engine not in ENGINES:
        raise FairscanError(f"unknown engine '{engine}'{suggest(engine, ENGINES)}: use {', '.join(ENGINES)}")
    eps = parse_epsilon(dp_epsilon)
    policy = AuditPolicy(parse_tolerances(tolerances), min_group_size, suppress_below, n_boot, seed, confidence, alpha)
    return AuditParams(
        decision=decision_rule(prediction, score, threshold, budget, favourable_decision, model=model is not None),
        groups=group_spec(sensitive, tiers, intersect, reference),
        policy=policy,
        target=target,
        positive_label=positive_label,
        weights=weights,
        model=None if model is None else ModelSource(model, tuple(trust or ()), bool(trust_pickle)),
        dp_epsilon=eps,
        engine=engine,
        spark_master=spark_master,
    )


def outward(r: tuple[float, float], digits: int = 3) -> list[float]:
    """A range rounded outward to ``digits`` significant digits: the scale of the scores
    without publishing the lowest and highest customer's own score."""
    return [round_significant(float(r[0]), digits), round_significant(float(r[1]), digits, up=True)]


