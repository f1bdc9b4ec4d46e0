"""A value audit rendered: Markdown and self-contained HTML (no script, inline SVG): each
group's distribution as a box (p25-p75, median, p10-p90 whiskers, the mean as a dot), the
gaps to the reference, the decomposition into within-strata and mix, and the findings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fairscan.formatting import is_missing, number, p_value, pct
from fairscan.report.common import interval, md_text, sorted_findings, value_interval
from fairscan.report.html import CSP, STYLE, esc
from fairscan.schemas import SCHEMA_VERSION

if TYPE_CHECKING:
    from fairscan.value import ValueResult

__all__ = ["TITLE", "render_value_html", "render_value_markdown"]

TITLE = "fairscan: the offer's value by group"


def _gap(row: dict) -> str:
    """A disparity as text: a distance, or a difference with its interval."""
    if row["suppressed"]:
        return "suppressed"
    d = row["difference"]
    ci = value_interval(row["difference_ci_low"], row["difference_ci_high"], 3) or "—"
    return f"{number(d, 3)} ({ci})"


def _ratio(row: dict) -> str:
    """A disparity's ratio with its interval, or a dash."""
    if row["suppressed"] or is_missing(row["ratio"]):
        return "—"
    ci = value_interval(row["ratio_ci_low"], row["ratio_ci_high"], 3)
    return f"{number(row['ratio'], 3)}" + (f" ({ci})" if ci else "")


def _share(g: dict) -> str:
    """The favourable share with its interval, and the offered share with its interval when
    the audit has an offered column."""
    text = f"{pct(g['share_favourable'])} ({interval(g['share_favourable_ci_low'], g['share_favourable_ci_high'])})"
    if "offered_rate" in g and not is_missing(g["offered_rate"]):
        text += (f"; offered {pct(g['offered_rate'])} "
                 f"({interval(g['offered_rate_ci_low'], g['offered_rate_ci_high'])})")
    return text


def render_value_markdown(r: ValueResult, title: str = TITLE) -> str:
    m = r.meta
    out = [f"# {md_text(title)}", "",
           f"Value `{md_text(m['value'])}` ({m['favourable']} is better for the customer), {m['n_rows']:,} rows "
           f"({m['n_values']:,} with a value); tolerance: within ±{100 * m['settings']['tolerance']['max_relative']:g}% "
           "of the reference group's mean.", ""]
    counts = r.verdict_counts()
    out += [f"**{counts['fail']} fail · {counts['insufficient']} insufficient · {counts['pass']} pass**", "",
            "## Findings", ""]
    out += [f"- **{f['verdict']}** ({f['metric']}): {md_text(f['message'])}" for f in sorted_findings(r)] or ["- none"]
    lvl = f"{m['settings']['confidence']:.0%}"
    for attr, part in r.groups.groupby("attribute", sort=False):
        out += ["", f"## {md_text(attr)}", "",
                f"| group | values | missing | mean ({lvl} CI) | median ({lvl} CI) | p10 | p25 | p75 | p90 | "
                f"in the favourable quarter ({lvl} CI) |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for g in part.to_dict("records"):
            name = md_text(g["group"]) + (" (reference)" if g["reference"] else "")
            if g["suppressed"]:
                out.append(f"| {name} | suppressed ({g['suppression']}) |" + " |" * 8)
                continue
            out.append(f"| {name} | {g['count']:,} | {g['missing']:,} | {number(g['mean'])} "
                       f"({value_interval(g['mean_ci_low'], g['mean_ci_high'])}) | {number(g['median'])} "
                       f"({value_interval(g['median_ci_low'], g['median_ci_high'])}) | {number(g['p10'])} | "
                       f"{number(g['p25'])} | {number(g['p75'])} | {number(g['p90'])} | {_share(g)} |")
        d = r.disparities[r.disparities["attribute"] == attr]
        if len(d):
            out += ["", f"| group | metric | gap to the reference ({lvl} CI) | ratio ({lvl} CI) | Holm p |",
                    "|---|---|---|---|---|"]
            for row in d.to_dict("records"):
                out.append(f"| {md_text(row['group'])} | {row['metric']} | {_gap(row)} | {_ratio(row)} | "
                           f"{p_value(row['p_value_adjusted'])} |")
    if len(r.decomposition):
        out += ["", "## Within strata (discrimination) and from the strata mix (steering)", "",
                f"Strata: {md_text(', '.join(m['within']))}. `within + composition = total`.", "",
                f"| attribute | group | total | within ({lvl} CI) | composition ({lvl} CI) | unmatched: group / reference |",
                "|---|---|---|---|---|---|"]
        for row in r.decomposition.to_dict("records"):
            if row["suppressed"]:
                out.append(f"| {md_text(row['attribute'])} | {md_text(row['group'])} | suppressed | | | |")
                continue
            out.append(f"| {md_text(row['attribute'])} | {md_text(row['group'])} | {number(row['total'], 3)} | "
                       f"{number(row['within'], 3)} ({value_interval(row['within_ci_low'], row['within_ci_high'])}) | "
                       f"{number(row['composition'], 3)} "
                       f"({value_interval(row['composition_ci_low'], row['composition_ci_high'])}) | "
                       f"{pct(row['unmatched_group'])} / {pct(row['unmatched_reference'])} |")
    out += ["", "## Method", ""] + [f"- {k}: {md_text(v)}" for k, v in m["methods"].items()]
    out += [f"- schema {SCHEMA_VERSION}"]
    return "\n".join(out) + "\n"


def _boxes(part: list[dict], lo: float, hi: float) -> str:
    """One horizontal box per group on a shared axis (suppressed groups are named, not drawn)."""
    label_w, plot_w, row_h = 220, 560, 30
    width, height = label_w + plot_w + 30, 30 + row_h * len(part) + 24
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return label_w + plot_w * (v - lo) / span

    out = [f'<svg role="img" aria-label="value by group" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
           "<title>Each group's values: p10 to p90 (whiskers), p25 to p75 (box), median (line), mean (dot)</title>"]
    for i, g in enumerate(part):
        y = 20 + i * row_h
        name = g["group"] + (" (reference)" if g["reference"] else "")
        out.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{esc(name[:32])}</text>')
        if g["suppressed"]:
            out.append(f'<text x="{label_w + 4}" y="{y + 15}" fill="#777">suppressed</text>')
            continue
        colour = "#4a6fa5" if g["reference"] else "#c0392b"
        out.append(f'<line x1="{x(g["p10"]):.1f}" x2="{x(g["p90"]):.1f}" y1="{y + 11}" y2="{y + 11}" '
                   f'stroke="{colour}"/>')
        out.append(f'<rect x="{x(g["p25"]):.1f}" y="{y + 3}" width="{max(1.0, x(g["p75"]) - x(g["p25"])):.1f}" '
                   f'height="16" fill="{colour}" fill-opacity="0.25" stroke="{colour}"/>')
        out.append(f'<line x1="{x(g["median"]):.1f}" x2="{x(g["median"]):.1f}" y1="{y + 3}" y2="{y + 19}" '
                   f'stroke="{colour}" stroke-width="2"/>')
        out.append(f'<circle cx="{x(g["mean"]):.1f}" cy="{y + 11}" r="3.5" fill="#111"/>')
    axis_y = 20 + row_h * len(part) + 12
    for v in (lo, (lo + hi) / 2, hi):
        out.append(f'<text x="{x(v):.1f}" y="{axis_y}" text-anchor="middle">{esc(number(v))}</text>')
    out.append("</svg>")
    return "".join(out)


def _decomposition_svg(rows: list[dict]) -> str:
    """Per group: three bars from 0 — the total gap, the part within strata, the mix part."""
    shown = [r for r in rows if not r["suppressed"]]
    if not shown:
        return ""
    top = max(max(abs(r["total"]), abs(r["within"]), abs(r["composition"])) for r in shown) or 1.0
    label_w, half, row_h = 220, 260, 66
    width, height = label_w + 2 * half + 40, 20 + row_h * len(shown)
    zero = label_w + half
    out = [f'<svg role="img" aria-label="gap split into within strata and strata mix" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
           "<title>The gap to the reference (total), split into the part within strata and the part from the mix"
           "</title>", f'<line x1="{zero}" x2="{zero}" y1="10" y2="{height - 6}" stroke="#999"/>']
    for i, r in enumerate(shown):
        y = 14 + i * row_h
        out.append(f'<text x="{label_w - 8}" y="{y + 24}" text-anchor="end">{esc(str(r["group"])[:32])}</text>')
        for j, (name, colour) in enumerate((("total", "#333"), ("within", "#c0392b"), ("composition", "#4a6fa5"))):
            v = r[name]
            w = half * abs(v) / top
            x0 = zero if v >= 0 else zero - w
            out.append(f'<rect x="{x0:.1f}" y="{y + j * 18}" width="{max(w, 1.0):.1f}" height="14" fill="{colour}"/>')
            out.append(f'<text x="{zero + (w + 6 if v >= 0 else -w - 6):.1f}" y="{y + j * 18 + 11}" '
                       f'text-anchor="{"start" if v >= 0 else "end"}">{esc(name)} {esc(number(v, 3))}</text>')
    out.append("</svg>")
    return "".join(out)


def render_value_html(r: ValueResult, title: str = TITLE) -> str:
    m = r.meta
    lvl = f"{m['settings']['confidence']:.0%}"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f'<meta http-equiv="Content-Security-Policy" content="{CSP}">', '<meta name="referrer" content="no-referrer">',
             f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>", f"<h1>{esc(title)}</h1>",
             f'<p class="meta">value {esc(m["value"])} ({esc(m["favourable"])} is better for the customer) · '
             f"{m['n_rows']:,} rows, {m['n_values']:,} with a value · tolerance ±"
             f"{100 * m['settings']['tolerance']['max_relative']:g}% of the reference mean · schema {SCHEMA_VERSION}</p>",
             "<h2>Findings</h2><ul class=\"findings\">"]
    parts += [f'<li><span class="v {esc(f["verdict"])}">{esc(f["verdict"])}</span> ({esc(f["metric"])}) '
              f"{esc(f['message'])}</li>" for f in sorted_findings(r)]
    parts.append("</ul>")
    shown = r.groups[~r.groups["suppressed"].astype(bool)]
    lo = min((float(v) for v in shown["p10"]), default=0.0)
    hi = max((float(v) for v in shown["p90"]), default=1.0)
    for attr, part in r.groups.groupby("attribute", sort=False):
        rows = part.to_dict("records")
        parts += [f"<h2>{esc(attr)}</h2>", _boxes(rows, lo, hi),
                  '<table><thead><tr><th class="l">group</th><th>values</th><th>missing</th><th>mean</th>'
                  f"<th>{lvl} CI</th><th>median</th><th>{lvl} CI</th><th>p10</th><th>p25</th><th>p75</th><th>p90</th>"
                  f"<th>favourable quarter ({lvl} CI)</th></tr></thead><tbody>"]
        for g in rows:
            name = esc(g["group"]) + (" <em>(reference)</em>" if g["reference"] else "")
            if g["suppressed"]:
                parts.append(f'<tr><td class="l">{name}</td><td colspan="11" class="l">suppressed '
                             f"({esc(g['suppression'])})</td></tr>")
                continue
            parts.append(f'<tr><td class="l">{name}</td><td>{g["count"]:,}</td><td>{g["missing"]:,}</td>'
                         f"<td>{esc(number(g['mean']))}</td><td>{esc(value_interval(g['mean_ci_low'], g['mean_ci_high']))}</td>"
                         f"<td>{esc(number(g['median']))}</td>"
                         f"<td>{esc(value_interval(g['median_ci_low'], g['median_ci_high']))}</td>"
                         + "".join(f"<td>{esc(number(g[q]))}</td>" for q in ("p10", "p25", "p75", "p90"))
                         + f"<td>{esc(_share(g))}</td></tr>")
        parts.append("</tbody></table>")
        gaps = r.disparities[r.disparities["attribute"] == attr].to_dict("records")
        if gaps:
            parts.append('<table><thead><tr><th class="l">group</th><th class="l">metric</th>'
                         f"<th>gap to the reference ({lvl} CI)</th><th>ratio ({lvl} CI)</th><th>Holm p</th>"
                         "</tr></thead><tbody>")
            parts += [f'<tr><td class="l">{esc(d["group"])}</td><td class="l">{esc(d["metric"])}</td>'
                      f"<td>{esc(_gap(d))}</td><td>{esc(_ratio(d))}</td>"
                      f"<td>{esc(p_value(d['p_value_adjusted']))}</td></tr>" for d in gaps]
            parts.append("</tbody></table>")
    if len(r.decomposition):
        rows = []
        for d in r.decomposition.to_dict("records"):
            if d["suppressed"]:
                rows.append(f'<tr><td class="l">{esc(d["attribute"])}</td><td class="l">{esc(d["group"])}</td>'
                            '<td colspan="4" class="l">suppressed</td></tr>')
                continue
            rows.append(f'<tr><td class="l">{esc(d["attribute"])}</td><td class="l">{esc(d["group"])}</td>'
                        f"<td>{esc(number(d['total'], 3))}</td><td>{esc(number(d['within'], 3))} "
                        f"({esc(value_interval(d['within_ci_low'], d['within_ci_high'], 3))})</td>"
                        f"<td>{esc(number(d['composition'], 3))} "
                        f"({esc(value_interval(d['composition_ci_low'], d['composition_ci_high'], 3))})</td>"
                        f"<td>{esc(pct(d['unmatched_group']))} / {esc(pct(d['unmatched_reference']))}</td></tr>")
        parts += ["<h2>Within strata (discrimination) and from the strata mix (steering)</h2>",
                  f"<p>Strata: {esc(', '.join(m['within']))}; within + composition = total.</p>",
                  _decomposition_svg(r.decomposition.to_dict("records")),
                  '<table><thead><tr><th class="l">attribute</th><th class="l">group</th><th>total</th>'
                  f"<th>within ({lvl} CI)</th><th>composition ({lvl} CI)</th><th>unmatched: group / reference</th>"
                  "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"]
    parts += ["<h2>Method</h2><ul>"] + [f"<li>{esc(k)}: {esc(v)}</li>" for k, v in m["methods"].items()]
    parts += ["</ul>", "</body></html>"]
    return "\n".join(parts) + "\n"
