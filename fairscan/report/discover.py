"""Subgroup discovery rendered: terminal table, Markdown and self-contained HTML. The words
(each subgroup's sentence, the verdict messages) come from the result; this only lays out."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.table import Table
from rich.text import Text

from fairscan.formatting import pct
from fairscan.report.common import axis_max, interval, md_text
from fairscan.report.html import CSP, STYLE, esc
from fairscan.report.table import console
from fairscan.schemas import SCHEMA_VERSION

if TYPE_CHECKING:
    from fairscan.discover import DiscoveryResult

__all__ = ["method_text", "render_discover_html", "render_discover_markdown", "render_discover_table"]

_STYLE = {"fail": "bold red", "insufficient": "yellow", "pass": "green"}
_BAR = 24


def _header(r: DiscoveryResult) -> list[str]:
    m = r.meta
    other = "everyone else" if m["comparison"] == "complement" else "everyone"
    ov = m["overall"]
    tol = m["tolerance"]
    tol_text = (f"ratio at least {tol['min_ratio']:g}" if "min_ratio" in tol
                else f"difference within ±{100 * tol['max_difference']:g} points")
    return [
        f"{m['n_rows']:,} rows · decision: {m['decision']['description']} · metric: {m['metric']} "
        f"({m['metric_description']}), {pct(ov['value'])} overall",
        f"{m['tested']:,} subgroups of up to {m['max_depth']} conditions tested (at least {m['min_size']} people "
        f"each), each against {other}; {m['folded']:,} folded under a parent they do not differ from; "
        f"{m['suppressed']:,} suppressed to protect small groups",
        f"verdicts: {m['verdict_counts']['fail']} fail · {m['verdict_counts']['insufficient']} insufficient · "
        f"{m['verdict_counts']['pass']} pass (tolerance: {tol_text}; p-values {m['fdr_method']}-adjusted "
        f"over every subgroup tested, alpha {m['alpha']:g})",
    ]


def method_text(r: DiscoveryResult) -> list[str]:
    """How the numbers were made, in a reader's words."""
    m = r.meta
    skipped = "; ".join(f"{s['column']} ({s['reason']})" for s in m["skipped"]) or "none"
    return [
        "Every conjunction of up to "
        f"{m['max_depth']} conditions (attribute = group) over the candidate attributes was counted in one pass "
        "through the engine; numbers were cut into quantile tiers.",
        f"Candidate attributes: {', '.join(a['attribute'] for a in m['attributes'])}. Left out: {skipped}.",
        "Rates have Wilson intervals; differences Newcombe's hybrid score interval; ratios the log interval "
        "with 0.5 added to each count. p-values: Fisher's exact test where an expected count is under 5, else "
        f"the pooled z-test, then {m['fdr_method']} adjustment (false discovery rate under any dependence "
        "between overlapping subgroups).",
        "A subgroup that does not differ significantly from the rest of one of its parents is listed under "
        "that parent; groups under the suppression threshold and their complementary partners are hidden.",
        f"data sha256 {m['data_sha256']} ({m['data_hash']}); fairscan {m['fairscan_version']}; {m['created']}.",
    ]


def _value_cell(row: dict[str, Any]) -> str:
    if row["suppressed"]:
        return "suppressed"
    return f"{pct(row['value'])} ({interval(row['value_ci_low'], row['value_ci_high'])})"


def render_discover_table(r: DiscoveryResult, width: int | None = None) -> str:
    """The listed subgroups as a terminal table, folded ones indented under their parent."""
    con, buf = console(width)
    con.print(Text("fairscan discover: who is excluded?", style="bold"))
    for line in _header(r):
        con.print(line)
    t = Table(show_lines=False, expand=False)
    t.add_column("verdict", no_wrap=True)
    t.add_column("subgroup", overflow="fold")
    t.add_column("people", justify="right", no_wrap=True)
    t.add_column(r.meta["metric"].replace("_", " ") + " (95% CI)", justify="right", no_wrap=True)
    t.add_column("vs", justify="right", no_wrap=True)
    t.add_column("ratio", justify="right", no_wrap=True)
    for row in r.listed.to_dict("records"):
        who = ("  └ " if _is_child(row) else "") + row["who"]
        ratio = "—" if row["suppressed"] or _nan(row["ratio"]) else f"{row['ratio']:.2f}"
        count = "—" if row["suppressed"] else f"{int(row['count']):,}"
        t.add_row(Text(row["verdict"], style=_STYLE[row["verdict"]]), who, count, _value_cell(row),
                  "—" if row["suppressed"] else pct(row["comparison_value"]), ratio)
    t.caption = "└ folded: not significantly different from the rest of the subgroup above it"
    con.print(t)
    for w in r.meta["warnings"]:
        con.print(f"warning: {w}")
    return buf.getvalue()


def _nan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _is_child(row: dict[str, Any]) -> bool:
    return not (row["parent"] is None or row["parent"] is pd.NA or _nan(row["parent"]))


def _bar(value: float, scale: float) -> str:
    n = 0 if _nan(value) else round(_BAR * value / scale)
    return "█" * n + "·" * (_BAR - n)


def render_discover_markdown(r: DiscoveryResult, title: str = "fairscan: who is excluded?") -> str:
    """The listed subgroups as Markdown: the sentences first, then a table with text bars."""
    m = r.meta
    rows = r.listed.to_dict("records")
    out = [f"# {md_text(title)}", "", *[md_text(x) + "  " for x in _header(r)], "", "## Findings", ""]
    for row in rows:
        icon = {"fail": "❌", "insufficient": "❔", "pass": "✅"}[row["verdict"]]
        lead = "    - " if _is_child(row) else "- "
        out.append(f"{lead}{icon} **{row['verdict']}**: {md_text(row['message'] or row['description'])}")
    scale = axis_max([x["value"] for x in rows if not x["suppressed"]] + [m["overall"]["value"]])
    out += ["", f"## Subgroups ({m['metric'].replace('_', ' ')}; bar from 0 to {pct(scale, 0)})", "",
            "| verdict | subgroup | people | value (95% CI) | chart | vs | ratio |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        who = ("└ " if _is_child(row) else "") + md_text(row["who"])
        if row["suppressed"]:
            out.append(f"| {row['verdict']} | {who} | — | suppressed | | | |")
            continue
        ratio = "—" if _nan(row["ratio"]) else f"{row['ratio']:.2f}"
        out.append(f"| {row['verdict']} | {who} | {int(row['count']):,} | {_value_cell(row)} | "
                   f"`{_bar(row['value'], scale)}` | {pct(row['comparison_value'])} | {ratio} |")
    out += ["", "└ folded under the subgroup above: not significantly different from the rest of it.", "",
            "## Method", "", *[f"- {md_text(x)}" for x in method_text(r)]]
    if m["warnings"]:
        out += ["", "## Warnings", "", *[f"- {md_text(w)}" for w in m["warnings"]]]
    return "\n".join(out) + "\n"


def _svg(rows: list[dict[str, Any]], overall: float, scale: float) -> str:
    """Each listed subgroup's value as a bar with its interval, the overall value as a line."""
    shown = [x for x in rows if not x["suppressed"] and not _nan(x["value"])]
    if not shown:
        return ""
    label_w, plot_w, row_h, pad = 420, 360, 22, 24
    width, height = label_w + plot_w + 60, pad + row_h * len(shown) + 16

    def x(v: float) -> float:
        return label_w + plot_w * min(max(v, 0.0), scale) / scale

    parts = [f'<svg role="img" aria-label="subgroup values" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             "<title>Each subgroup's value, with its 95% interval; the dashed line is everyone</title>",
             f'<line x1="{x(overall):.1f}" x2="{x(overall):.1f}" y1="{pad - 6}" y2="{height - 10}" '
             'stroke="#2a7de1" stroke-dasharray="4 3"/>',
             f'<text x="{x(overall) + 4:.1f}" y="{pad - 10}" fill="#2a7de1">everyone {esc(pct(overall))}</text>']
    for i, row in enumerate(shown):
        y0 = pad + i * row_h
        who = ("└ " if _is_child(row) else "") + row["who"].removeprefix("customers with ")
        colour = {"fail": "#c0392b", "insufficient": "#b7950b", "pass": "#4a6fa5"}[row["verdict"]]
        parts.append(f'<text x="{label_w - 8}" y="{y0 + 15}" text-anchor="end">{esc(who[:70])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y0 + 4}" width="{max(x(row["value"]) - label_w, 1):.1f}" '
                     f'height="{row_h - 10}" fill="{colour}"/>')
        if not (_nan(row["value_ci_low"]) or _nan(row["value_ci_high"])):
            parts.append(f'<line x1="{x(row["value_ci_low"]):.1f}" x2="{x(row["value_ci_high"]):.1f}" '
                         f'y1="{y0 + row_h / 2 - 1:.1f}" y2="{y0 + row_h / 2 - 1:.1f}" stroke="#222"/>')
    parts.append("</svg>")
    return "".join(parts)


def render_discover_html(r: DiscoveryResult, title: str = "fairscan: who is excluded?") -> str:
    """One self-contained HTML page: no script, no external resource, strict CSP."""
    m = r.meta
    rows = r.listed.to_dict("records")
    scale = axis_max([x["value"] for x in rows if not x["suppressed"]] + [m["overall"]["value"]])
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">', '<meta name="referrer" content="no-referrer">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>", f"<h1>{esc(title)}</h1>",
        '<p class="meta">' + "<br>".join(esc(x) for x in _header(r)) + f" · schema {SCHEMA_VERSION}</p>",
        "<h2>Findings</h2>", '<ul class="findings">',
    ]
    for row in rows:
        style = ' style="margin-left:2em"' if _is_child(row) else ""
        out.append(f'<li{style}><span class="v {row["verdict"]}">{row["verdict"].upper()}</span> '
                   f"{esc(row['message'] or row['description'])}</li>")
    out.append("</ul>")
    out.append(_svg(rows, m["overall"]["value"], scale))
    out.append('<div style="overflow-x:auto"><table><thead><tr>' + "".join(
        f'<th class="{"l" if i < 2 else ""}">{esc(h)}</th>' for i, h in enumerate(
            ["verdict", "subgroup", "people", "value (95% CI)", "vs", "difference (95% CI)", "ratio (95% CI)",
             "adjusted p"])) + "</tr></thead><tbody>")
    for row in rows:
        who = ("└ " if _is_child(row) else "") + row["who"]
        if row["suppressed"]:
            out.append(f'<tr><td class="l">{row["verdict"]}</td><td class="l">{esc(who)}</td>'
                       '<td>—</td><td>suppressed</td><td></td><td></td><td></td><td></td></tr>')
            continue
        diff = "—" if _nan(row["difference"]) else (
            f"{100 * row['difference']:+.1f} pts ({interval(row['difference_ci_low'], row['difference_ci_high'])})")
        ratio = "—" if _nan(row["ratio"]) else f"{row['ratio']:.2f} ({row['ratio_ci_low']:.2f}–{row['ratio_ci_high']:.2f})"
        p = "—" if _nan(row["p_value_adjusted"]) else f"{row['p_value_adjusted']:.2g}"
        out.append(f'<tr><td class="l">{row["verdict"]}</td><td class="l">{esc(who)}</td>'
                   f"<td>{int(row['count']):,}</td><td>{esc(_value_cell(row))}</td>"
                   f"<td>{esc(pct(row['comparison_value']))}</td><td>{esc(diff)}</td><td>{esc(ratio)}</td>"
                   f"<td>{esc(p)}</td></tr>")
    out.append("</tbody></table></div>")
    if m["warnings"]:
        out.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{esc(w)}</li>" for w in m["warnings"]) + "</ul>")
    out.append("<h2>Method</h2><ul>" + "".join(f"<li>{esc(x)}</li>" for x in method_text(r)) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
