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
from dataclasses import dataclass
from typing import Literal

from fairscan.errors import FairscanError, plain, suggest
from fairscan.metrics.classification import METRICS

Verdict = Literal["pass", "fail", "insufficient"]


@dataclass(frozen=True)
class Tolerance:
    """A bound on a disparity: ``ratio`` >= bound (symmetric) or |``difference``| <= bound."""

    kind: Literal["ratio", "difference"]
    bound: float

    def breached(self, difference: float, ratio: float) -> bool:
        if self.kind == "ratio":
            return not (self.bound <= ratio <= 1 / self.bound)
        return abs(difference) > self.bound

    def contains(self, lo: float, hi: float) -> bool:
        """Whether the interval [lo, hi] lies entirely within the tolerance."""
        if self.kind == "ratio":
            return self.bound <= lo and hi <= 1 / self.bound
        return -self.bound <= lo and hi <= self.bound

    def describe(self) -> str:
        if self.kind == "ratio":
            return f"ratio between {self.bound:g} and {1 / self.bound:.3g}"
        return f"difference within ±{100 * self.bound:g} points"

    def to_dict(self) -> dict:
        return {"min_ratio" if self.kind == "ratio" else "max_difference": self.bound}


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "selection_rate": Tolerance("ratio", 0.8),
    "true_positive_rate": Tolerance("ratio", 0.8),
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


def verdict(
    tol: Tolerance,
    difference: float,
    ratio: float,
    ci: tuple[float, float],
    p_adjusted: float,
    alpha: float,
) -> Verdict:
    """The three-way verdict for one disparity (see the module docstring)."""
    value = ratio if tol.kind == "ratio" else difference
    if value is None or math.isnan(value):
        return "insufficient"
    if tol.breached(difference, ratio) and p_adjusted is not None and p_adjusted < alpha:
        return "fail"
    lo, hi = ci
    if not (math.isnan(lo) or math.isnan(hi)) and tol.contains(lo, hi):
        return "pass"
    return "insufficient"
