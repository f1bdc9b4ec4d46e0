"""Self-contained HTML report: one file, no script, no external style, font or image.

A restrictive Content-Security-Policy forbids scripts and any fetch; styles are inline and
charts are inline SVG. Every user-supplied string is escaped with ``html.escape``; numbers
are formatted by us.
"""

from __future__ import annotations

import html
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
    method_lines,
    sorted_findings,
    suppressed_reason,
    tolerance_lines,
)
from fairscan.schemas import SCHEMA_VERSION

__all__ = ["COLOURS", "CSP", "STYLE", "esc", "render_html"]

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
COLOURS = {"fail": "#b00020", "insufficient": "#8a6d00", "pass": "#1b6e20"}
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1a1a1a;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{margin-top:1.8em;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:.9em} code{font-size:.85em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right;white-space:nowrap} th{background:#f3f3f3}
td.l,th.l{text-align:left}
.v{font-weight:700;padding:.1em .45em;border-radius:.3em;color:#fff;font-size:.85em}
.fail{background:#b00020}.insufficient{background:#8a6d00}.pass{background:#1b6e20}
ul.findings li{margin:.35em 0} .counts span{margin-right:1em;font-weight:600}
svg text{font-family:inherit;font-size:12px}
"""


def esc(value: object) -> str:
    """Escape any user-supplied value for HTML text or attribute context."""
    return html.escape(str(value), quote=True)


def _chart(rows: list[GroupRow], metric: str, title: str, four_fifths: bool) -> str:
    """Horizontal bars with 95% interval whiskers; values written next to each bar.

    With ``four_fifths`` a shaded band marks [4/5 of the top, top]: a bar ending left of the
    band is below four-fifths of the most-offered group.
    """
    label_w, bar_w, row_h, pad = 190, 420, 26, 8
    vals = [r.values[metric] for r in rows if not r.suppressed]
    finite = [v for v, _, _ in vals if not math.isnan(v)]
    if not finite:
        return ""
    top = max(finite)
    scale = axis_max([v for trio in vals for v in trio])
    pad = 14
    height = pad * 2 + row_h * len(rows) + 14
    width = label_w + bar_w + 150
    x = lambda v: label_w + v / scale * bar_w  # noqa: E731
    parts = [f'<svg role="img" aria-label="{esc(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{esc(title)}</title>"]
    if four_fifths:
        lo_band = four_fifths_line(top)
        parts.append(f'<rect x="{x(lo_band):.1f}" y="{pad}" width="{x(top) - x(lo_band):.1f}" '
                     f'height="{row_h * len(rows)}" fill="#2a7de1" opacity="0.12"/>')
        parts.append(f'<line x1="{x(lo_band):.1f}" x2="{x(lo_band):.1f}" y1="{pad}" y2="{pad + row_h * len(rows)}" '
                     'stroke="#2a7de1" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{x(top) + 4:.1f}" y="{pad - 1}" fill="#2a7de1">'
                     f"shaded: within four-fifths of the top ({pct(lo_band)}–{pct(top)})</text>")
    for i, r in enumerate(rows):
        y0 = pad + i * row_h
        name = esc(r.label) + (" (ref.)" if r.reference else "")
        parts.append(f'<text x="{label_w - 8}" y="{y0 + 17}" text-anchor="end">{name}</text>')
        if r.suppressed:
            parts.append(f'<text x="{label_w + 4}" y="{y0 + 17}" fill="#777">suppressed ({suppressed_reason(r.suppression)})</text>')
            continue
        v, lo, hi = r.values[metric]
        if math.isnan(v):
            parts.append(f'<text x="{label_w + 4}" y="{y0 + 17}" fill="#777">undefined</text>')
            continue
        below = four_fifths and v < four_fifths_line(top)
        fill = "#c0392b" if below else "#4a6fa5"
        parts.append(f'<rect x="{label_w}" y="{y0 + 5}" width="{max(x(v) - label_w, 1):.1f}" height="{row_h - 10}" '
                     f'fill="{fill}"/>')
        if not math.isnan(lo):
            cy = y0 + row_h / 2
            parts.append(f'<line x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{cy}" y2="{cy}" stroke="#111" stroke-width="1.5"/>')
            for end in (lo, hi):
                parts.append(f'<line x1="{x(end):.1f}" x2="{x(end):.1f}" y1="{cy - 5}" y2="{cy + 5}" stroke="#111"/>')
        note = " below 4/5" if below else ""
        parts.append(f'<text x="{max(x(v), x(hi) if not math.isnan(hi) else 0) + 6:.1f}" y="{y0 + 17}">'
                     f"{pct(v)} [{interval(lo, hi)}]{note}</text>")
    base = pad + row_h * len(rows)
    parts.append(f'<line x1="{label_w}" x2="{label_w}" y1="{pad}" y2="{base}" stroke="#333"/>')
    parts.append(f'<line x1="{label_w}" x2="{x(scale):.1f}" y1="{base}" y2="{base}" stroke="#333"/>')
    for tick in (0.0, scale / 2, scale):
        parts.append(f'<text x="{x(tick):.1f}" y="{base + 13}" text-anchor="middle" fill="#555">{pct(tick, 0)}</text>')
    parts.append("</svg>")
    return f"<figure><figcaption>{esc(title)} — bars with 95% intervals</figcaption>{''.join(parts)}</figure>"


def render_html(result: AuditLike, title: str = "fairscan audit report") -> str:
    """The audit as one self-contained HTML page."""
    m = result.meta
    counts = result.verdict_counts()
    k = m["settings"]["suppress_below"]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">{m["n_rows"]:,} rows · decision: {esc(m["decision"]["description"])} · '
        f'fairscan {esc(m["fairscan_version"])} · {esc(m["created"])} · schema {SCHEMA_VERSION}<br>'
        f'data sha256 <code>{esc(m["data_sha256"])}</code></p>',
        "<h2>Verdicts</h2>",
        '<p class="counts">' + "".join(
            f'<span style="color:{COLOURS[v]}">{counts[v]} {v}</span>' for v in ("fail", "insufficient", "pass")
        ) + "</p>",
        '<ul class="findings">',
    ]
    findings = sorted_findings(result)
    for f in findings:
        if f["verdict"] != "pass":
            out.append(f'<li><span class="v {f["verdict"]}">{f["verdict"].upper()}</span> {esc(f["message"])}</li>')
    out.append("</ul>")
    passes = [f for f in findings if f["verdict"] == "pass"]
    if passes:
        out.append(f"<details><summary>{len(passes)} checks pass (whole interval within tolerance)</summary><ul>")
        out += [f"<li>{esc(f['message'])}</li>" for f in passes]
        out.append("</ul></details>")
    out.append("<p>Tolerances: " + "; ".join(esc(t) for t in tolerance_lines(result)) + ".</p>")
    shown = [(key, lab) for key, lab in SHOWN if key in m["metrics"]]
    for attr in m["attributes"]:
        rows = attribute_rows(result, attr)
        out.append(f"<h2>{esc(attr)}</h2><p>Reference group: {esc(m['reference'][attr])}.</p>")
        head = ["group", "rows", *[f"{lab} (95% CI)" for _, lab in shown]]
        if "selection_rate" in m["metrics"]:
            head += ["vs most offered", "four-fifths"]
        out.append('<div style="overflow-x:auto"><table><thead><tr>' + "".join(
            f'<th class="{"l" if i == 0 else ""}">{esc(h)}</th>' for i, h in enumerate(head)) + "</tr></thead><tbody>")
        for r in rows:
            cells = [f'<td class="l">{esc(r.label)}{" <em>(reference)</em>" if r.reference else ""}</td>',
                     f"<td>{esc(r.count_text(k))}</td>"]
            for key, _ in shown:
                v, lo, hi = r.values[key]
                cells.append(f"<td>{pct(v)} ({interval(lo, hi)})</td>" if not math.isnan(v) else "<td>—</td>")
            if "selection_rate" in m["metrics"]:
                cells.append(f"<td>{'—' if r.impact_ratio is None else f'{r.impact_ratio:.2f}'}</td>")
                cells.append(f"<td>{'—' if r.four_fifths is None else ('meets' if r.four_fifths else 'below')}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tbody></table></div>")
        for key, chart_title in CHARTED:
            if key in m["metrics"]:
                out.append(_chart(rows, key, chart_title, four_fifths=key == "selection_rate"))
    if m["warnings"]:
        out.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{esc(w)}</li>" for w in m["warnings"]) + "</ul>")
    out.append("<h2>Method</h2><ul>" + "".join(f"<li>{esc(x)}</li>" for x in method_lines(result)) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
