"""Markdown report: verdicts first, then per attribute a group table and a text chart.

Every user-supplied string (attribute, group, column names) is escaped with
:func:`~fairscan.report.common.md_text`: HTML and Markdown markup are inert and cells that
start like a spreadsheet formula are neutralised.
"""

from __future__ import annotations

import math

from fairscan.formatting import pct
from fairscan.policy import four_fifths_line
from fairscan.report.common import (
    CHARTED,
    SHOWN,
    AuditLike,
    GroupRow,
    attribute_rows,
    axis_max,
    interval,
    md_text,
    method_lines,
    sorted_findings,
    suppressed_reason,
    tolerance_lines,
)
from fairscan.schemas import SCHEMA_VERSION

__all__ = ["BAR_WIDTH", "ICON", "render_markdown"]

ICON = {"fail": "FAIL", "insufficient": "INSUFFICIENT", "pass": "pass"}
BAR_WIDTH = 30


def _bar_chart(rows: list[GroupRow], metric: str, title: str, four_fifths: bool) -> list[str]:
    """A text chart as a Markdown table (so labels stay escaped like every other cell):
    the bar is the value, ⟨ ⟩ the 95% interval, ┆ four-fifths of the top group."""
    vals = [r.values[metric] for r in rows if not r.suppressed]
    finite = [v for v, _, _ in vals if not math.isnan(v)]
    if not finite:
        return []
    scale = axis_max([v for trio in vals for v in trio])
    mark = four_fifths_line(max(finite)) if four_fifths else None
    legend = (f"bar from 0 to {pct(scale, 0)}, ⟨ ⟩ = 95% interval"
              + (f", ┆ = four-fifths of the most-offered group ({pct(mark)})" if mark is not None else ""))
    lines = [f"**{title}** ({legend})", "", "| group | chart | value (95% CI) |", "|---|---|---|"]
    pos = lambda v: min(BAR_WIDTH, round(v / scale * BAR_WIDTH))  # noqa: E731
    for r in rows:
        name = md_text(r.label)
        if r.suppressed:
            lines.append(f"| {name} | (suppressed: {suppressed_reason(r.suppression)}) | |")
            continue
        v, lo, hi = r.values[metric]
        if math.isnan(v):
            lines.append(f"| {name} | (undefined) | |")
            continue
        cells = ["█" if i < pos(v) else "·" for i in range(BAR_WIDTH + 1)]
        if not math.isnan(lo):
            cells[pos(lo)], cells[pos(hi)] = "⟨", "⟩"
        if mark is not None:
            cells[pos(mark)] = "┆"
        lines.append(f"| {name} | `{''.join(cells)}` | {pct(v)} ({interval(lo, hi)}) |")
    return lines


def render_markdown(result: AuditLike, title: str = "fairscan audit report") -> str:
    """The audit as a Markdown document (GitHub-flavoured tables)."""
    m = result.meta
    counts = result.verdict_counts()
    out = [
        f"# {md_text(title)}",
        "",
        f"{m['n_rows']:,} rows · decision: {md_text(m['decision']['description'])} · "
        f"fairscan {m['fairscan_version']} · {m['created']} · schema {SCHEMA_VERSION}  ",
        f"data sha256: `{m['data_sha256']}`",
        "",
        "## Verdicts",
        "",
        f"**{counts['fail']} fail · {counts['insufficient']} insufficient · {counts['pass']} pass**",
        "",
    ]
    for f in sorted_findings(result):
        if f["verdict"] != "pass":
            out.append(f"- **{ICON[f['verdict']]}** — {md_text(f['message'])}")
    passes = [f for f in sorted_findings(result) if f["verdict"] == "pass"]
    if passes:
        out += ["", f"{len(passes)} checks pass (their whole interval is within tolerance):", ""]
        out += [f"- {md_text(f['message'])}" for f in passes]
    out += ["", "Tolerances: " + "; ".join(tolerance_lines(result)) + "."]
    shown = [(k, lab) for k, lab in SHOWN if k in m["metrics"]]
    k = m["settings"]["suppress_below"]
    for attr in m["attributes"]:
        rows = attribute_rows(result, attr)
        out += ["", f"## {md_text(attr)}", "", f"Reference group: {md_text(m['reference'][attr])}.", ""]
        head = ["group", "rows", *[f"{lab} (95% CI)" for _, lab in shown]]
        if "selection_rate" in m["metrics"]:
            head += ["vs most offered", "four-fifths"]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rows:
            cells = [md_text(r.label) + (" (reference)" if r.reference else ""),
                     r.count_text(k)]
            for key, _ in shown:
                v, lo, hi = r.values[key]
                cells.append(f"{pct(v)} ({interval(lo, hi)})" if not math.isnan(v) else "—")
            if "selection_rate" in m["metrics"]:
                cells.append("—" if r.impact_ratio is None else f"{r.impact_ratio:.2f}")
                cells.append("—" if r.four_fifths is None else ("meets" if r.four_fifths else "below"))
            out.append("| " + " | ".join(cells) + " |")
        for key, chart_title in CHARTED:
            if key in m["metrics"]:
                out += ["", *_bar_chart(rows, key, chart_title, four_fifths=key == "selection_rate")]
    if m["warnings"]:
        out += ["", "## Warnings", ""] + [f"- {md_text(w)}" for w in m["warnings"]]
    out += ["", "## Method", ""] + [f"- {md_text(x)}" for x in method_lines(result)]
    return "\n".join(out) + "\n"
