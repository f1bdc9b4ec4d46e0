"""Plain-language headlines from an audit's numbers, for people who will not read tables.

Each headline compares, within one attribute, the **least-offered** group with the
**most-offered** one: how many times less often it is offered, both selection rates with
their intervals and group sizes and — when the audit has a label — how many of those who
would have said yes each group misses (false negative rate). For example:

    Customers in the lowest balance tier, Q1 (..71] (3,407 people), are offered 2.4x less
    often than those in the top balance tier, Q4 (1425.25..] (3,391 people): 11.7% (95% CI
    10.6–12.8%) vs 28.1% (26.6–29.6%). Of those who would have said yes, 57.1% (50.5–63.5%)
    are missed vs 32.4% (28.6–36.4%). Audit verdict for Q4 (1425.25..] against the reference
    group Q1 (..71]: fail (a breach unlikely to be chance).

Rules: only groups that are neither suppressed nor below the audit's ``min_group_size``
are named (a headline about a handful of people would overstate what is known); an
attribute needs two such groups. Tier attributes (labels such as ``Q1 (..71]`` or
``(24..59]``) are described as their lowest / top tier when the compared group is the first
or last tier. Headlines are ordered by the size of the gap (largest first), and each carries
the verdict the audit gave the comparison against the attribute's reference group, if any.
Every number comes from the :class:`fairscan.AuditResult`; nothing is recomputed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["TIER_LABEL", "VERDICT_WORDS", "Headline", "headlines", "verdict_sentence"]

#: tier labels made by :func:`fairscan.groups.tier_labels`: "Q1 (..72]", "(24..59]", "(59..]"
TIER_LABEL = re.compile(r"^(Q\d+ )?\([^()]*\.\.[^()]*\]$")
VERDICT_WORDS = {
    "fail": "fail (a breach unlikely to be chance)",
    "pass": "pass (within tolerance)",
    "insufficient": "insufficient evidence (too few people or too uncertain to tell)",
}


@dataclass(frozen=True)
class Headline:
    """One headline: the facts behind it and its text (``str(h)`` is the text)."""

    attribute: str
    low_group: str
    high_group: str
    low_count: int
    high_count: int
    low_rate: float
    high_rate: float
    times_less: float  # high_rate / low_rate (inf when the low group is never offered)
    low_miss: float | None
    high_miss: float | None
    verdict: str | None
    text: str

    def __str__(self) -> str:
        return self.text


def _rate(v: float, lo: float, hi: float, level: str, first: bool) -> str:
    """'11.7% (95% CI 10.7–12.8%)' the first time, '28.1% (26.6–29.6%)' after."""
    text = f"{100 * v:.1f}%"
    if lo is None or hi is None or any(isinstance(x, float) and math.isnan(x) for x in (lo, hi)):
        return text
    return f"{text} ({level + ' CI ' if first else ''}{100 * lo:.1f}–{100 * hi:.1f}%)"


def _describe(attr: str, group: str, tiers: list[str]) -> str:
    if group in tiers and len(tiers) >= 2:
        if group == tiers[0]:
            return f"the lowest {attr} tier, {group}"
        if group == tiers[-1]:
            return f"the top {attr} tier, {group}"
        return f"the {attr} tier {group}"
    return f"the {attr} group {group}"


def _times(high: float, low: float) -> tuple[float, str]:
    if low <= 0:
        return math.inf, "never"
    ratio = high / low
    if ratio >= 1.5:
        return ratio, f"{ratio:.1f}x less often"
    share = 1 - low / high
    if share < 0.005:
        return ratio, "about as often"
    return ratio, f"{100 * share:.0f}% less often"


def headlines(
    result: Any,
    *,
    who: str = "Customers",
    offer: str | None = None,
    outcome: str = "would have said yes",
    min_count: int | None = None,
    include_intersections: bool = True,
) -> list[Headline]:
    """Headline sentences for an :class:`fairscan.AuditResult` (see the module docstring).

    ``who``: the people ("Customers", "Applicants"); ``offer``: what is offered ("the
    deposit"; default: nothing named); ``outcome``: the positive label in words ("would have
    subscribed"); ``min_count``: smallest group named (default: the audit's
    ``min_group_size``); ``include_intersections``: also compare intersection groups.
    """
    groups: pd.DataFrame = result.groups
    meta = result.meta
    settings = meta.get("settings", {})
    floor = int(settings.get("min_group_size", 0) if min_count is None else min_count)
    level = f"{round(100 * settings.get('confidence', 0.95))}%"
    labelled = "false_negative_rate" in meta.get("metrics", [])
    findings = result.findings
    out: list[Headline] = []
    for attr in meta.get("attributes", list(dict.fromkeys(groups["attribute"]))):
        if not include_intersections and " x " in attr:
            continue
        rows = groups[groups["attribute"] == attr]
        labels = [str(g) for g in rows["group"]]
        tiers = [g for g in labels if TIER_LABEL.match(g)]
        if len(tiers) < len([g for g in labels if g != "unknown"]):
            tiers = []  # not a tier attribute
        ok = rows[~rows["suppressed"].astype(bool) & rows["count"].notna()]
        ok = ok[(ok["count"].astype("float") >= floor) & ok["selection_rate"].notna()]
        if len(ok) < 2:
            continue
        high = ok.loc[ok["selection_rate"].idxmax()]
        low = ok.loc[ok["selection_rate"].idxmin()]
        if high["selection_rate"] <= 0:
            continue  # nobody offered anywhere: nothing to compare
        ratio, how = _times(float(high["selection_rate"]), float(low["selection_rate"]))
        lo_desc = _describe(attr, str(low["group"]), tiers)
        hi_desc = _describe(attr, str(high["group"]), tiers)
        n_lo, n_hi = int(low["count"]), int(high["count"])
        offer_txt = f" {offer}" if offer else ""
        r_lo = _rate(low["selection_rate"], low["selection_rate_ci_low"], low["selection_rate_ci_high"], level, True)
        r_hi = _rate(high["selection_rate"], high["selection_rate_ci_low"], high["selection_rate_ci_high"], level,
                     False)
        if how == "never":
            comma = "," if "," in lo_desc else ""
            text = (f"{who} in {lo_desc} ({n_lo:,} people){comma} are never offered{offer_txt}, while those in "
                    f"{hi_desc} ({n_hi:,} people) are offered {r_hi}.")
        elif how == "about as often":
            text = (f"{who} in every {attr} group are offered{offer_txt} about as often: from {r_lo} in "
                    f"{lo_desc} ({n_lo:,} people) to {r_hi} in {hi_desc} ({n_hi:,} people).")
        else:
            comma = "," if "," in lo_desc else ""
            text = (f"{who} in {lo_desc} ({n_lo:,} people){comma} are offered{offer_txt} {how} than those in "
                    f"{hi_desc} ({n_hi:,} people): {r_lo} vs {r_hi}.")
        low_miss = high_miss = None
        if labelled and pd.notna(low["false_negative_rate"]) and pd.notna(high["false_negative_rate"]):
            low_miss, high_miss = float(low["false_negative_rate"]), float(high["false_negative_rate"])
            m_lo = _rate(low_miss, low["false_negative_rate_ci_low"], low["false_negative_rate_ci_high"], level,
                         False)
            m_hi = _rate(high_miss, high["false_negative_rate_ci_low"], high["false_negative_rate_ci_high"], level,
                         False)
            text += f" Of those who {outcome}, {m_lo} are missed vs {m_hi}."
        verdict = None
        ref = rows.loc[rows["reference"].astype(bool), "group"]
        ref = str(ref.iloc[0]) if len(ref) else None
        other = str(low["group"]) if str(low["group"]) != ref else str(high["group"])
        f = findings[(findings["attribute"] == attr) & (findings["metric"] == "selection_rate")
                     & (findings["group"] == other)]
        if len(f) and ref is not None:
            verdict = str(f["verdict"].iloc[0])
            text += (f" Audit verdict for {other} against the reference group {ref}: "
                     f"{VERDICT_WORDS.get(verdict, verdict)}.")
        out.append(Headline(attr, str(low["group"]), str(high["group"]), n_lo, n_hi,
                            float(low["selection_rate"]), float(high["selection_rate"]), ratio,
                            low_miss, high_miss, verdict, text))
    out.sort(key=lambda h: -h.times_less)
    return out


def verdict_sentence(result: Any) -> str:
    """One sentence summing up the verdicts: 'Of 20 checks, 16 fail, 2 pass and 2 have
    insufficient evidence.'"""
    c = result.verdict_counts()
    total = sum(c.values())
    if total == 0:
        return "No checks were judged (no tolerances apply to the audited metrics)."
    parts = [f"{c['fail']:,} fail", f"{c['pass']:,} pass",
             f"{c['insufficient']:,} {'has' if c['insufficient'] == 1 else 'have'} insufficient evidence"]
    return f"Of {total:,} checks of a group against its reference, {parts[0]}, {parts[1]} and {parts[2]}."
