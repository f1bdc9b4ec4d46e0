"""Tolerances and verdicts: when is a disparity a finding?

Per (attribute, metric, group), against the reference group:

- ``fail``: the point estimate breaches the tolerance **and** the Holm-corrected p-value of
  the difference is below ``alpha`` (the breach is unlikely to be chance);
- ``pass``: the whole confidence interval lies within the tolerance;
- ``insufficient``: anything else — the interval straddles the bound, the group (or the
  reference) has fewer than ``min_group_size`` rows, or the rate is undefined/suppressed.

Ratio tolerances are symmetric: ``min_ratio=0.8`` accepts ratios in [0.8, 1/0.8], since a
group rated far *above* the reference means the reference is the one left out (this matches
fairlearn's min/max ratios). Difference tolerances bound the absolute difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from fairscan.errors import FairscanError, plain, suggest
from fairscan.formatting import NA, is_missing, number, p_value, pct
from fairscan.metrics.classification import METRICS

__all__ = [
    "DEFAULT_TOLERANCES",
    "FOUR_FIFTHS",
    "AuditPolicy",
    "Gap",
    "Tolerance",
    "Verdict",
    "four_fifths_flags",
    "four_fifths_line",
    "impact_ratios",
    "interval_verdict",
    "judge",
    "parse_tolerances",
    "verdict",
    "verdicts",
]

Verdict = Literal["pass", "fail", "insufficient"]


@dataclass(frozen=True)
class Tolerance:
    """A bound on a disparity: ``ratio`` >= bound (symmetric) or |``difference``| <= bound."""

    kind: Literal["ratio", "difference", "relative"]
    bound: float

    @property
    def on_ratio(self) -> bool:
        """Whether the tolerance bounds the ratio (``ratio`` and ``relative``), not the difference."""
        return self.kind != "difference"

    def _range(self) -> tuple[float, float]:
        if self.kind == "ratio":
            return self.bound, 1 / self.bound
        if self.kind == "relative":  # within ±bound of the reference's value: ratio in [1 - b, 1 + b]
            return 1 - self.bound, 1 + self.bound
        return -self.bound, self.bound

    def breached(self, difference: np.ndarray, ratio: np.ndarray) -> np.ndarray:
        """Where the disparity lies outside the tolerance (False where it is undefined)."""
        x = np.asarray(ratio if self.on_ratio else difference, dtype=float)
        low, high = self._range()
        with np.errstate(invalid="ignore"):
            return (x < low) | (x > high)

    def contains(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Where the interval [lo, hi] lies entirely within the tolerance (False if undefined)."""
        lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
        low, high = self._range()
        with np.errstate(invalid="ignore"):
            return (low <= lo) & (hi <= high)

    def excludes(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Where the interval [lo, hi] lies entirely outside the tolerance, on one side."""
        lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
        low, high = self._range()
        with np.errstate(invalid="ignore"):
            return (hi < low) | (lo > high)

    def describe(self) -> str:
        if self.kind == "ratio":
            return f"ratio between {self.bound:g} and {1 / self.bound:.3g}"
        if self.kind == "relative":
            return f"within ±{100 * self.bound:g}% of the reference"
        return f"difference within ±{100 * self.bound:g} points"

    def to_dict(self) -> dict:
        return {{"ratio": "min_ratio", "difference": "max_difference", "relative": "max_relative"}[self.kind]: self.bound}


FOUR_FIFTHS = 0.8
"""The four-fifths rule (EEOC Uniform Guidelines): a group offered at under 0.8 x the rate of
the most-offered group shows adverse impact. The default selection-rate tolerance too."""


def four_fifths_line(top: float) -> float:
    """Where the four-fifths line lies, given the most-offered group's selection rate."""
    return FOUR_FIFTHS * top


def impact_ratios(selection_rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each group's selection rate over the most-offered group's, along the last axis (one row
    of groups, or one row per threshold), and that top rate; NaN where undefined."""
    sr = np.asarray(selection_rates, dtype=float)
    finite = np.isfinite(sr)
    top = np.where(finite.any(axis=-1), np.max(np.where(finite, sr, -np.inf), axis=-1), np.nan)
    t = np.expand_dims(top, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        impact = np.where(t > 0, sr / np.where(t > 0, t, 1.0), np.nan)
    return impact, top


def four_fifths_flags(impact: np.ndarray) -> list[bool | None]:
    """Whether each impact ratio meets the four-fifths rule (None where it is undefined)."""
    return [None if math.isnan(v) else bool(v >= FOUR_FIFTHS) for v in np.asarray(impact, dtype=float).ravel()]


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "selection_rate": Tolerance("ratio", FOUR_FIFTHS),
    "true_positive_rate": Tolerance("ratio", FOUR_FIFTHS),
    "false_positive_rate": Tolerance("difference", 0.1),
    "false_negative_rate": Tolerance("difference", 0.1),
}


def parse_tolerances(spec: Mapping[str, object] | None) -> dict[str, Tolerance]:
    """Tolerances from ``{metric: {"min_ratio": x} | {"max_difference": x} | Tolerance}``.

    ``None`` gives the defaults; a metric mapped to ``None`` is not judged.
    """
    if spec is None:
        return dict(DEFAULT_TOLERANCES)
    out: dict[str, Tolerance] = {}
    for metric, t in spec.items():
        if metric not in METRICS:
            raise FairscanError(f"tolerance for unknown metric '{metric}'{suggest(metric, METRICS)}")
        if t is None:
            continue
        if isinstance(t, Tolerance):
            out[metric] = t
            continue
        if not isinstance(t, Mapping) or len(t) != 1:
            raise FairscanError(
                f"tolerance for '{metric}': give {{'min_ratio': 0.8}} or {{'max_difference': 0.1}}"
            )
        (key, value), = t.items()
        try:
            bound = float(value)
        except (TypeError, ValueError):
            raise FairscanError(f"tolerance for '{metric}': {key} must be a number, got {plain(value)}") from None
        if key == "min_ratio" and 0 < bound <= 1:
            out[metric] = Tolerance("ratio", bound)
        elif key == "max_difference" and 0 <= bound <= 1:
            out[metric] = Tolerance("difference", bound)
        else:
            raise FairscanError(
                f"tolerance for '{metric}': use min_ratio in (0, 1] or max_difference in [0, 1], got {key}={plain(value)}"
            )
    return out


def _whole(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise FairscanError(f"{name} must be a whole number >= 0, got {plain(value)}")
    return int(value)


@dataclass(frozen=True)
class AuditPolicy:
    """What turns counts into verdicts, for every analysis: the tolerance per judged metric,
    the sizes below which a group is suppressed (``suppress_below``) or gets no pass/fail
    verdict (``min_group_size``), the bootstrap (``n_boot`` replicates from ``seed``), the
    interval level (``confidence``) and the tests' ``alpha``. Checked when built."""

    tolerances: Mapping[str, Tolerance] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    min_group_size: int = 30
    suppress_below: int = 10
    n_boot: int = 1000
    seed: int = 0
    confidence: float = 0.95
    alpha: float = 0.05

    def __post_init__(self) -> None:
        for name in ("min_group_size", "suppress_below", "n_boot", "seed"):
            object.__setattr__(self, name, _whole(getattr(self, name), name))
        for name in ("confidence", "alpha"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) or not 0 < v < 1:
                raise FairscanError("confidence and alpha must be between 0 and 1")
            object.__setattr__(self, name, float(v))


def verdicts(
    tol: Tolerance,
    difference: np.ndarray,
    ratio: np.ndarray,
    ci_low: np.ndarray,
    ci_high: np.ndarray,
    p_adjusted: np.ndarray,
    alpha: float,
) -> np.ndarray:
    """The three-way verdict (see the module docstring) for many disparities at once: "fail"
    where the estimate breaches the tolerance and the adjusted p-value is below ``alpha``,
    "pass" where the whole interval lies within it, else "insufficient"."""
    d, r, p = (np.asarray(x, dtype=float) for x in (difference, ratio, p_adjusted))
    defined = ~np.isnan(r if tol.on_ratio else d)
    with np.errstate(invalid="ignore"):
        fail = defined & tol.breached(d, r) & (p < alpha)
    ok = defined & ~fail & tol.contains(ci_low, ci_high)
    return np.where(fail, "fail", np.where(ok, "pass", "insufficient")).astype(object)


def verdict(
    tol: Tolerance,
    difference: float,
    ratio: float,
    ci: tuple[float, float],
    p_adjusted: float | None,
    alpha: float,
) -> Verdict:
    """The three-way verdict for one disparity (:func:`verdicts` for one)."""
    def num(x: object) -> float:
        return math.nan if x is None else float(x)  # type: ignore[arg-type]

    return str(verdicts(tol, num(difference), num(ratio), num(ci[0]), num(ci[1]), num(p_adjusted),
                        alpha)[()])  # type: ignore[return-value]


def interval_verdict(tol: Tolerance, ci: tuple[float, float]) -> Verdict:
    """The verdict on an estimate that has an interval but no test of its own (such as the
    parts of a decomposition): "fail" when the whole interval lies outside the tolerance,
    "pass" when it lies inside, else "insufficient". ``ci`` on the tolerance's scale."""
    lo, hi = (math.nan if x is None else float(x) for x in ci)
    if bool(tol.excludes(lo, hi)):
        return "fail"
    return "pass" if bool(tol.contains(lo, hi)) else "insufficient"


@dataclass(frozen=True)
class Gap:
    """One gap between a group and its reference, as a finding tells it.

    ``who`` names the group ("sex = F", "user group Q1 for item group cheap"); ``unit`` what
    is counted ("rows", "users"); ``what`` the measure ("offered (selection rate)"); values
    and counts of the group and the reference; the disparity with its interval
    (``ci_ratio``, ``ci_difference``) and multiplicity-adjusted p-value; ``suppression``:
    None, "primary" or "complementary"; ``as_rate``: values are rates shown as percentages
    (else numbers to two decimals); ``suppressed_unit``: what a suppressed group has too few
    of, when that differs from ``unit``.
    """

    who: str
    unit: str
    what: str
    reference: str
    group_count: object
    reference_count: object
    group_value: float
    reference_value: float
    difference: float
    ratio: float
    ci_ratio: tuple[float, float]
    ci_difference: tuple[float, float]
    p_adjusted: float
    suppression: str | None = None
    as_rate: bool = True
    suppressed_unit: str | None = None


def judge(gap: Gap, tol: Tolerance, *, min_group_size: int, suppress_below: int, confidence: float,
          alpha: float, adjustment: str, test: str | None = None) -> tuple[Verdict, str]:
    """The verdict on one gap and the sentence that explains it: the one wording of every
    finding (the audit's and the recommendation audit's). ``adjustment`` names the p-value
    correction ("Holm", "BH"); ``test`` the test, when the sentence should name it."""
    who = gap.who
    if gap.suppression == "complementary":
        return "insufficient", (f"{who}: suppressed so that a smaller group's numbers cannot be recovered from "
                                "the published totals; no verdict.")
    if gap.suppression:
        return "insufficient", (f"{who}: fewer than {suppress_below} {gap.suppressed_unit or gap.unit}, so its "
                                "numbers are suppressed to protect privacy; no verdict.")
    small = [(n, label) for n, label in ((gap.group_count, "it"), (gap.reference_count, f"the reference {gap.reference}"))
             if is_missing(n) or n < min_group_size]
    if small:
        n, label = small[0]
        return "insufficient", (f"{who}: {label} has only {n} {gap.unit} (minimum {min_group_size}); too few to "
                                "tell whether it is treated differently.")
    level = f"{round(100 * confidence)}%"
    ci = gap.ci_ratio if tol.on_ratio else gap.ci_difference
    v = verdict(tol, gap.difference, gap.ratio, ci, gap.p_adjusted, alpha)
    est = (f"ratio {number(gap.ratio, missing=NA)} ({level} CI {number(ci[0], missing=NA)}–"
           f"{number(ci[1], missing=NA)})" if tol.on_ratio else
           f"difference {number(100 * gap.difference, 1, missing=NA)} points ({level} CI "
           f"{number(100 * ci[0], 1, missing=NA)} to {number(100 * ci[1], 1, missing=NA)})")
    shown = pct if gap.as_rate else number
    facts = (f"{who} ({gap.group_count:,} {gap.unit}): {gap.what} {shown(gap.group_value, missing=NA)} vs "
             f"{shown(gap.reference_value, missing=NA)} for {gap.reference} ({gap.reference_count:,} {gap.unit}); "
             f"{est}")
    p = f"{adjustment}-adjusted {p_value(gap.p_adjusted, sentence=True)}"
    if v == "fail":
        return v, (f"{facts}, outside the tolerance ({tol.describe()}) and unlikely to be chance "
                   f"({p}{', ' + test if test else ''}).")
    if v == "pass":
        return v, f"{facts}: the whole interval is within the tolerance ({tol.describe()})."
    if is_missing(gap.difference):
        return v, f"{facts}: undefined (no one in the rate's denominator), no verdict."
    if tol.on_ratio and is_missing(gap.ratio):
        return v, f"{facts}: undefined (the reference value is 0), no verdict."
    return v, f"{facts}: not enough evidence either way for the tolerance ({tol.describe()}; {p})."

