"""Markdown report: verdicts first, then per attribute a group table and a text chart.

Every user-supplied string (attribute, group, column names) is escaped with
:func:`~fairscan.report.common.md_text`: HTML and Markdown markup are inert and cells that
start like a spreadsheet formula are neutralised.
"""

from __future__ import annotations

import math

from fairscan.audit import SCHEMA_VERSION, AuditResult
from fairscan.report.common import (
    CHARTED,
    SHOWN,
    GroupRow,
    attribute_rows,
    axis_max,
    interval,
    md_text,
    method_lines,
    pct,
    sorted_findings,
    tolerance_lines,
)

ICON = {"fail": "FAIL", "insufficient": "INSUFFICIENT", "pass": "pass"}
BAR_WIDTH = 30


def _bar_chart(rows: list[GroupRow], metric: str, title: str, four_fifths: bool) -> list[str]:
    """A fixed-width text chart: bar = value, [ ] = the 95% interval, | = 4/5 of the top."""
    vals = [r.values[metric] for r in rows if not r.suppressed]
    finite = [v for v, _, _ in vals if not math.isnan(v)]
    if not finite:
        return []
    top = max(finite)
    scale = axis_max([v for trio in vals for v in trio])
    mark = 0.8 * top if four_fifths else None
    width = max(len(r.label) for r in rows)
    lines = [f"{title}; each bar spans 0–{100 * scale:.0f}%, [ ] is the 95% interval"
             + (f", | marks four-fifths of the most-offered group ({pct(mark)})" if mark is not None else "")]
    for r in rows:
        if r.suppressed:
            lines.append(f"{r.label:<{width}}  (suppressed: fewer than the minimum rows)")
            continue
        v, lo, hi = r.values[metric]
        if math.isnan(v):
            lines.append(f"{r.label:<{width}}  (undefined)")
            continue
        cells = [" "] * (BAR_WIDTH + 1)
        for i in range(round(v / scale * BAR_WIDTH)):
            cells[i] = "█"
        if not math.isnan(lo):
            cells[min(BAR_WIDTH, round(lo / scale * BAR_WIDTH))] = "["
            cells[min(BAR_WIDTH, round(hi / scale * BAR_WIDTH))] = "]"
        if mark is not None:
            cells[min(BAR_WIDTH, round(mark / scale * BAR_WIDTH))] = "|"
        lines.append(f"{r.label:<{width}}  {''.join(cells)} {pct(v)} ({interval(lo, hi)})")
    return ["```text", *lines, "```"]


def render_markdown(result: AuditResult, title: str = "fairscan audit report") -> str:
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
                     f"fewer than {k}" if r.suppressed else f"{r.count:,}"]
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
