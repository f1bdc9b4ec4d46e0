"""A paired model comparison rendered as Markdown and self-contained HTML: the verdicts that
matter first, the table of changes with paired intervals, who gains and who loses the offer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fairscan.formatting import pct, points
from fairscan.report.common import interval, md_text
from fairscan.report.html import CSP, STYLE, esc
from fairscan.schemas import SCHEMA_VERSION

if TYPE_CHECKING:
    from fairscan.compare import ComparisonResult

__all__ = ["change_sentence", "change_text", "render_compare_html", "render_compare_markdown", "value_text"]


def _names(r: ComparisonResult) -> tuple[str, str]:
    a, b = (x.get("model") or x.get("column") or x["name"] for x in r.meta["models"])
    return str(a), str(b)


def change_sentence(row: dict[str, Any], names: tuple[str, str]) -> str:
    """'age = (59..] (1,784 people): selection_rate 67.0% (64.8–69.1) with A, 55.6% (53.3–57.9) with B
    (-11.4 points, 95% CI -13.0 to -9.6)': each value with its interval, the group's size."""
    return (f"{row['attribute']} = {row['group']} ({row['count']:,} people): {row['metric']} "
            f"{value_text(row, 'a')} with {names[0]}, {value_text(row, 'b')} with {names[1]} "
            f"({points(row['change'])} points, 95% CI {points(row['change_ci_low'])} to {points(row['change_ci_high'])})")


def _rows(r: ComparisonResult) -> list[dict[str, Any]]:
    return r.changes.to_dict("records")


def value_text(row: dict[str, Any], side: str) -> str:
    """One model's value with its 95% Wilson interval: '67.0% (64.8–69.1)'."""
    return f"{pct(row[f'value_{side}'])} ({interval(row[f'value_{side}_ci_low'], row[f'value_{side}_ci_high'])})"


def change_text(row: dict[str, Any], key: str = "change") -> str:
    """A change in points with its paired 95% interval: '-11.4 (-13.0 to -9.6)'."""
    return f"{points(row[key])} ({points(row[f'{key}_ci_low'])} to {points(row[f'{key}_ci_high'])})"


def render_compare_markdown(r: ComparisonResult, title: str = "fairscan: champion against challenger",
                            level: int = 1) -> str:
    """The comparison as Markdown; ``level``: the title's heading level (2 inside another report)."""
    names = _names(r)
    counts = r.verdict_counts()
    out = [f"{'#' * level} {md_text(title)}", "", f"A = {md_text(names[0])}, B = {md_text(names[1])}; {r.meta['n_rows']:,} rows, "
           "the same customers.", "",
           f"**{counts['worse']} worse · {counts['insufficient']} insufficient · {counts['not worse']} not worse · "
           f"{counts['better']} better** (paired bootstrap intervals; McNemar within each group, Holm-adjusted)", ""]
    for row in _rows(r):
        if row["verdict"] in ("worse", "better") and not row["suppressed"]:
            out.append(f"- **{row['verdict']}**: {md_text(change_sentence(row, names))}")
    out += ["", "| verdict | group | people (in the rate) | metric | A (95% CI) | B (95% CI) | change (95% CI) | gap change |",
            "|---|---|---|---|---|---|---|---|"]
    for row in _rows(r):
        who = md_text(f"{row['attribute']} = {row['group']}")
        if row["suppressed"]:
            out.append(f"| {row['verdict']} | {who} | — | {row['metric']} | — | — | suppressed | |")
            continue
        gap = points(row["gap_change"], missing="")
        out.append(f"| {row['verdict']} | {who} | {row['count']:,} ({row['denominator']:,}) | {row['metric']} | "
                   f"{value_text(row, 'a')} | {value_text(row, 'b')} | {change_text(row)} | {gap} |")
    out += ["", f"{'#' * (level + 1)} Who gains and who loses the offer", "", "| group | people | gained (B only) | lost (A only) |",
            "|---|---|---|---|"]
    for s in r.switches.to_dict("records"):
        if not s["suppressed"]:
            out.append(f"| {md_text(s['attribute'])} = {md_text(s['group'])} | {s['count']:,} | {s['gained']:,} | "
                       f"{s['lost']:,} |")
    if r.meta.get("warnings"):
        out += ["", f"{'#' * (level + 1)} Warnings", "", *[f"- {md_text(w)}" for w in r.meta["warnings"]]]
    st = r.meta["settings"]
    out += ["", f"Intervals: {st['interval']}; test: {st['test']}; schema {SCHEMA_VERSION}; fairscan "
            f"{r.meta['fairscan_version']}."]
    return "\n".join(out) + "\n"


def render_compare_html(r: ComparisonResult, title: str = "fairscan: champion against challenger") -> str:
    names = _names(r)
    counts = r.verdict_counts()
    items = "".join(f'<li><span class="v {"fail" if row["verdict"] == "worse" else "pass"}">{row["verdict"].upper()}'
                    f"</span> {esc(change_sentence(row, names))}</li>" for row in _rows(r)
                    if row["verdict"] in ("worse", "better") and not row["suppressed"])
    body = []
    for row in _rows(r):
        who = esc(f"{row['attribute']} = {row['group']}")
        if row["suppressed"]:
            body.append(f'<tr><td class="l">{row["verdict"]}</td><td class="l">{who}</td><td>—</td>'
                        f'<td class="l">{row["metric"]}</td><td>—</td><td>—</td><td>suppressed</td><td></td></tr>')
            continue
        gap = points(row["gap_change"], missing="")
        body.append(f'<tr><td class="l">{row["verdict"]}</td><td class="l">{who}</td>'
                    f"<td>{row['count']:,} ({row['denominator']:,})</td><td class=\"l\">{row['metric']}</td>"
                    f"<td>{esc(value_text(row, 'a'))}</td><td>{esc(value_text(row, 'b'))}</td>"
                    f"<td>{esc(change_text(row))}</td><td>{gap}</td></tr>")
    switches = "".join(f'<tr><td class="l">{esc(s["attribute"])} = {esc(s["group"])}</td><td>{s["count"]:,}</td>'
                       f"<td>{s['gained']:,}</td><td>{s['lost']:,}</td></tr>"
                       for s in r.switches.to_dict("records") if not s["suppressed"])
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">', '<meta name="referrer" content="no-referrer">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>", f"<h1>{esc(title)}</h1>",
        f'<p class="meta">A = {esc(names[0])}, B = {esc(names[1])} · {r.meta["n_rows"]:,} rows · schema '
        f"{SCHEMA_VERSION}</p>",
        f"<p>{counts['worse']} worse · {counts['insufficient']} insufficient · {counts['not worse']} not worse · "
        f"{counts['better']} better</p>", f'<ul class="findings">{items}</ul>',
        '<div style="overflow-x:auto"><table><thead><tr><th class="l">verdict</th><th class="l">group</th>'
        '<th>people (in the rate)</th><th class="l">metric</th><th>A (95% CI)</th><th>B (95% CI)</th>'
        "<th>change, points (95% CI)</th><th>gap change</th></tr>"
        "</thead><tbody>" + "".join(body) + "</tbody></table></div>",
        "<h2>Who gains and who loses the offer</h2>",
        '<table><thead><tr><th class="l">group</th><th>people</th><th>gained (B only)</th><th>lost (A only)</th></tr>'
        f"</thead><tbody>{switches}</tbody></table>",
        *(["<h2>Warnings</h2><ul>" + "".join(f"<li>{esc(w)}</li>" for w in r.meta["warnings"]) + "</ul>"]
          if r.meta.get("warnings") else []),
        "</body></html>",
    ]) + "\n"
