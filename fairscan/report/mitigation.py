"""Renderers of a mitigation comparison: terminal table, Markdown, self-contained HTML."""

from __future__ import annotations

import math
from typing import Any

from fairscan.mitigation import MitigationResult, Point
from fairscan.report.common import md_text

__all__ = [
    "HEAD", "render_mitigation_html", "render_mitigation_markdown", "render_mitigation_table",
    "rows",
]


def _n(v: Any, digits: int = 3) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _strength(p: Point) -> str:
    return "—" if p.strength is None else f"{p.strength:g}"


def rows(result: MitigationResult) -> list[tuple[str, Point]]:
    """Baseline, methods at their defaults, then the sweep points, labelled."""
    return [("baseline", result.baseline), *[("method", p) for p in result.methods],
            *[("sweep", p) for p in result.curve]]


HEAD = ["", "method", "strength", "ROC AUC", "accuracy", "true pos.", "offered", "disparity", "sel. ratio",
        "Pareto", "policy"]


def _cells(kind: str, p: Point) -> list[str]:
    u, s = p.utility, p.summary
    return [kind, p.method, _strength(p), _n(u["roc_auc"]), _n(u["accuracy"]), _n(u["true_positives"], 1),
            _n(u["selected"], 1), _n(s["difference"]), _n(s["selection_rate_ratio"], 2),
            "yes" if p.pareto else "", "meets" if p.meets_policy else "no"]


def _intro(result: MitigationResult) -> list[str]:
    m = result.meta
    return [
        f"Attribute: {m['attribute']} · constraint: {m['constraint']} · held-out rows: {m['n_test']:,} "
        f"(trained on {m['n_train']:,}) · " + (f"budget: {m['budget']:,} offers" if m["budget"] else "offer when score >= 0.5"),
        f"Utility: {m['utility_metric']}; disparity: between-groups difference of {m['headline_metric']}; "
        f"policy: selection-rate ratio >= {m['policy']['selection_rate_ratio_min']:g}. Randomised decisions: "
        f"{m['randomised_decisions']}.",
        f"Recommended: {result.recommended['method'] or 'none'}"
        + (f" (strength {result.recommended['strength']:g})" if result.recommended.get("strength") is not None else "")
        + f" — {result.recommended['why']}.",
    ]


def render_mitigation_table(result: MitigationResult) -> str:
    from rich.table import Table

    from fairscan.report.table import console

    con, buf = console(140)
    for line in _intro(result):
        con.print(line)
    t = Table(title="Mitigations on the held-out split")
    for h in HEAD:
        t.add_column(h, justify="left" if h in ("", "method") else "right", no_wrap=True)
    for kind, p in rows(result):
        t.add_row(*_cells(kind, p))
    con.print(t)
    return buf.getvalue()


def render_mitigation_markdown(result: MitigationResult) -> str:
    out = ["# fairscan mitigation report", ""] + [md_text(x) + "  " for x in _intro(result)] + [""]
    out += ["| " + " | ".join(HEAD[1:]) + " |", "|" + "---|" * (len(HEAD) - 1)]
    for kind, p in rows(result):
        c = _cells(kind, p)
        c[1] = f"{c[1]} ({kind})" if kind != "method" else c[1]
        out.append("| " + " | ".join(md_text(x) for x in c[1:]) + " |")
    out += ["", "Notes:", ""] + [f"- {md_text(p.method)}: {md_text(n)}" for p in result.methods for n in p.notes]
    return "\n".join(out) + "\n"


def render_mitigation_html(result: MitigationResult) -> str:
    from fairscan.report.html import CSP, STYLE, esc

    pts = [(k, p) for k, p in rows(result) if p.summary.get("difference") is not None]
    budgeted = result.meta["utility_metric"] == "true_positives"
    util = [p.utility["true_positives"] if budgeted else p.utility["accuracy"] for _, p in pts]
    disp = [p.summary["difference"] for _, p in pts]
    w, h, pad = 640, 380, 60
    ux0, ux1 = min(disp), max(disp) or 1.0
    uy0, uy1 = min(util), max(util)
    sx = lambda v: pad + (v - ux0) / ((ux1 - ux0) or 1) * (w - 2 * pad)  # noqa: E731
    sy = lambda v: h - pad - (v - uy0) / ((uy1 - uy0) or 1) * (h - 2 * pad)  # noqa: E731
    svg = [f'<svg role="img" aria-label="trade-off" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">',
           "<title>Utility against disparity</title>",
           f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#333"/>',
           f'<line x1="{pad}" y1="{pad / 2}" x2="{pad}" y2="{h - pad}" stroke="#333"/>',
           f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle">disparity ({esc(result.meta["headline_metric"])} '
           "difference, lower is better)</text>",
           f'<text x="15" y="{h / 2}" transform="rotate(-90 15 {h / 2})" text-anchor="middle">'
           f'{"true positives" if budgeted else "accuracy"} (higher is better)</text>']
    for (kind, p), u, d in zip(pts, util, disp, strict=True):
        colour = "#222" if kind == "baseline" else ("#c0392b" if p.pareto else "#7f8c8d")
        svg.append(f'<circle cx="{sx(d):.1f}" cy="{sy(u):.1f}" r="{6 if kind != "sweep" else 4}" fill="{colour}"/>')
        if kind != "sweep":
            svg.append(f'<text x="{sx(d) + 8:.1f}" y="{sy(u) - 6:.1f}">{esc(p.method)} ({d:.3f}, {u:.4g})</text>')
    svg.append("</svg>")
    table = ["<table><thead><tr>" + "".join(f"<th>{esc(x)}</th>" for x in HEAD) + "</tr></thead><tbody>"]
    for kind, p in rows(result):
        table.append("<tr>" + "".join(f"<td>{esc(x)}</td>" for x in _cells(kind, p)) + "</tr>")
    table.append("</tbody></table>")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>fairscan mitigation report</title><style>{STYLE}</style></head><body>",
        "<h1>fairscan mitigation report</h1>", *[f"<p>{esc(x)}</p>" for x in _intro(result)],
        "<h2>Trade-off</h2><p>Red points are on the Pareto front (no other setting is both fairer and more "
        "useful); black is the unmitigated model.</p>", *svg, "<h2>All settings</h2>", *table,
        "</body></html>",
    ]) + "\n"
