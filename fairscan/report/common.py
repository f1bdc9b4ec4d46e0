"""What every report shows, in one place: verdict ordering, per-attribute rows, safe text.

Renderers (markdown, html, table) only lay this out; they compute nothing themselves.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from fairscan.errors import plain
from fairscan.formatting import number

__all__ = [
    "CHARTED",
    "FORMULA_START",
    "SHOWN",
    "VERDICT_ORDER",
    "WORD_JOINER",
    "AuditLike",
    "GroupRow",
    "attribute_rows",
    "axis_max",
    "break_autolinks",
    "count_text",
    "interval",
    "md_text",
    "method_lines",
    "neutralise_formula",
    "sorted_findings",
    "suppressed_reason",
    "tolerance_lines",
    "value_interval",
]


class AuditLike(Protocol):
    """What a renderer reads of an audit's result (fairscan.audit.AuditResult is one): the
    reports depend on this shape, not on the analysis that made it."""

    meta: dict[str, Any]
    groups: pd.DataFrame
    findings: pd.DataFrame

    def verdict_counts(self) -> dict[str, int]: ...


VERDICT_ORDER = {"fail": 0, "insufficient": 1, "pass": 2}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: metrics in the per-group tables, with their reader-facing names
SHOWN = (
    ("selection_rate", "offered"),
    ("true_positive_rate", "offered if yes"),
    ("false_negative_rate", "missed if yes"),
    ("base_rate", "base rate"),
)
CHARTED = (("selection_rate", "Offered (selection rate)"), ("false_negative_rate", "Missed among those who would say yes (false negative rate)"))


def neutralise_formula(text: str) -> str:
    """Prefix a cell that a spreadsheet would run as a formula (=, +, -, @) with a quote."""
    return "'" + text if text.startswith(FORMULA_START) else text


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")
_AUTOLINK = re.compile(r"(?i)(?<=:)(?=//)|(?<=\bwww)(?=\.)|(?<=\w)(?=@\w)")
WORD_JOINER = "\u2060"


def break_autolinks(text: str) -> str:
    """An invisible word joiner inside every would-be autolink (``http://``, ``www.``,
    ``user@host``): Markdown renderers (GitHub's, Streamlit's) link those even when their
    punctuation is backslash-escaped. The text reads and prints the same."""
    return _AUTOLINK.sub(WORD_JOINER, text)


def md_text(value: Any) -> str:
    """User-supplied text made inert in Markdown: HTML escaped (&, <, >), the characters
    that make emphasis, code, links and table cells backslash-escaped, formulas
    neutralised, newlines folded (a link cannot form without brackets), and would-be
    autolinks (http://, www., e-mail) broken by an invisible word joiner."""
    import html

    text = neutralise_formula(" ".join(str(value).split()))
    text = _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))
    return break_autolinks(text)


def interval(lo: Any, hi: Any) -> str:
    """A rate's interval in percent (``12.3–15.0``); empty when undefined."""
    if lo is None or hi is None or any(isinstance(x, float) and math.isnan(x) for x in (lo, hi)):
        return ""
    return f"{100 * lo:.1f}–{100 * hi:.1f}"


def value_interval(lo: Any, hi: Any, digits: int = 2) -> str:
    """An interval in the value's own units (``2.41 to 2.97``); empty when undefined."""
    if lo is None or hi is None or any(isinstance(x, float) and math.isnan(x) for x in (lo, hi)):
        return ""
    return f"{number(lo, digits)} to {number(hi, digits)}"


def axis_max(values: list[float]) -> float:
    """A round upper end for a rate axis that holds every value (at least 5%)."""
    top = max([v for v in values if not math.isnan(v)], default=0.0)
    return next(c for c in (0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0) if c >= top - 1e-12)


@dataclass
class GroupRow:
    """One group of one attribute, as a report shows it."""

    label: str
    count: int | None
    suppressed: bool
    reference: bool
    values: dict[str, tuple[float, float, float]]  # metric -> (value, low, high)
    impact_ratio: float | None
    four_fifths: bool | None
    suppression: str | None = None

    def count_text(self, k: int) -> str:
        """The row count as a reader sees it (:func:`count_text`)."""
        return count_text(self.count, self.suppressed, self.suppression, k)


def suppressed_reason(suppression: str | None) -> str:
    """Why a group's numbers are hidden, in a reader's words."""
    return "protects a small group" if suppression == "complementary" else "too few rows"


def count_text(count: object, suppressed: bool, suppression: str | None, k: int) -> str:
    """A group's size as every report and dashboard page shows it: suppressed groups never show
    theirs; the partner hidden to protect a smaller group says so, not "fewer than k"."""
    if not suppressed:
        return f"{int(count):,}"
    return f"suppressed ({suppressed_reason(suppression)})" if suppression == "complementary" else f"fewer than {k}"


def _f(v: Any) -> float:
    return float("nan") if v is None or v is pd.NA else float(v)


def attribute_rows(result: AuditLike, attribute: str) -> list[GroupRow]:
    """The groups of one attribute, in the audit's order."""
    g = result.groups[result.groups["attribute"] == attribute]
    rows = []
    metrics = [m for m, _ in SHOWN if m in result.meta["metrics"]]
    for r in g.to_dict("records"):
        values = {m: (_f(r[m]), _f(r[f"{m}_ci_low"]), _f(r[f"{m}_ci_high"])) for m in metrics}
        ir = r.get("impact_ratio")
        ff = r.get("four_fifths")
        rows.append(GroupRow(
            label=str(r["group"]),
            count=None if r["suppressed"] else int(r["count"]),
            suppressed=bool(r["suppressed"]),
            reference=bool(r["reference"]),
            values=values,
            impact_ratio=None if ir is None or (isinstance(ir, float) and math.isnan(ir)) else float(ir),
            four_fifths=None if ff is None or ff is pd.NA else bool(ff),
            suppression=r.get("suppression"),
        ))
    return rows


def sorted_findings(result: AuditLike) -> list[dict]:
    """Findings, failures first, then insufficient, then passes."""
    f = result.findings.to_dict("records")
    return sorted(f, key=lambda r: VERDICT_ORDER[r["verdict"]])


def tolerance_lines(result: AuditLike) -> list[str]:
    out = []
    for m, t in result.meta["settings"]["tolerances"].items():
        if "min_ratio" in t:
            out.append(f"{m}: ratio to the reference between {t['min_ratio']:g} and {1 / t['min_ratio']:.3g}")
        else:
            out.append(f"{m}: difference to the reference within ±{100 * t['max_difference']:g} points")
    return out


def method_lines(result: AuditLike) -> list[str]:
    """How the numbers were made, for the report's method section."""
    m = result.meta
    s = m["settings"]
    return [
        f"Decision: {m['decision']['description']}.",
        f"Label: {m['target'] or 'none (label-free metrics only)'}"
        + (f" = {plain(m['positive_label'])}" if m["target"] else "") + ".",
        f"Rates: {round(100 * s['confidence'])}% Wilson intervals"
        + ("" if s["ci_methods"]["rates"] == "wilson" else f" ({s['ci_methods']['rates'].removeprefix('wilson ')})") + ". Differences and ratios: "
        f"{s['ci_methods']['disparities']}, {s['n_boot']} replicates, seed {s['seed']}.",
        f"Tests: {s['ci_methods']['p_values']}; verdicts at alpha = {s['alpha']}.",
        f"Groups under {s['min_group_size']} rows get no pass/fail verdict; groups under "
        f"{s['suppress_below']} rows are suppressed (shown as 'fewer than {s['suppress_below']}').",
    ]
