"""An explanation rendered: Markdown and self-contained HTML, each with a waterfall from the
reference's selection rate to the group's, one step per feature, and the remainder."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from fairscan.formatting import pct
from fairscan.report.common import interval, md_text
from fairscan.report.html import CSP, STYLE, esc
from fairscan.schemas import SCHEMA_VERSION

if TYPE_CHECKING:
    from fairscan.explain import ExplainResult

__all__ = ["headline", "render_explain_html", "render_explain_markdown", "waterfall_steps"]

_SHOWN = 8  # features drawn as their own step; the rest are summed in one
_ENUMERATION = {"exact": "every coalition of features evaluated (exact)",
                "permutations": "a random order of the features per row and pass (sampled permutations)"}


def _points(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:+.1f} pts"


def waterfall_steps(r: ExplainResult) -> list[tuple[str, float, float]]:
    """(label, start, end) from the reference's rate to the group's: one step per top feature,
    the other features together, and the remainder the features do not explain."""
    m = r.meta
    level = m["selection_rate"]["reference"]
    steps = [("reference", 0.0, level)]
    c = r.contributions
    for row in c.head(_SHOWN).to_dict("records"):
        steps.append((row["feature"], level, level + row["contribution"]))
        level += row["contribution"]
    rest = float(c["contribution"].iloc[_SHOWN:].sum()) if len(c) > _SHOWN else 0.0
    if len(c) > _SHOWN:
        steps.append((f"{len(c) - _SHOWN} other features", level, level + rest))
        level += rest
    steps.append(("not explained", level, level + m["remainder"]))
    steps.append(("group", 0.0, m["selection_rate"]["group"]))
    return steps


def headline(r: ExplainResult) -> str:
    """One sentence: the gap, and the features that carry most of it."""
    m = r.meta
    c = r.contributions
    top = c[c["contribution"] * m["gap"] > 0].head(3)
    carried = ", ".join(f"{f} ({_points(v)})" for f, v in zip(top["feature"], top["contribution"], strict=True))
    return (f"{m['group']['description']} ({m['group']['count']:,} people) are offered {pct(m['selection_rate']['group'])}"
            f" vs {pct(m['selection_rate']['reference'])} for {m['reference']['description']} "
            f"({m['reference']['count']:,} people): a gap of {_points(m['gap'])} (95% CI {_points(m['gap_ci'][0])} to "
            f"{_points(m['gap_ci'][1])}); the features explain {_points(m['explained'])}"
            + (f", most of it through {carried}." if carried else "."))


def render_explain_markdown(r: ExplainResult, title: str = "fairscan: why is this group offered less?") -> str:
    m = r.meta
    method = m["method"]
    out = [f"# {md_text(title)}", "", md_text(headline(r)), "",
           f"Decision: {md_text(m['decision']['description'])}. Gap {_points(m['gap'])} (95% CI "
           f"{_points(m['gap_ci'][0])} to {_points(m['gap_ci'][1])}); explained by the features "
           f"{_points(m['explained'])}; not explained {_points(m['remainder'])}.", "",
           "## Contributions to the gap", "",
           "| feature | contribution (95% CI) | to the mean score | proxy of the group (AUC) |", "|---|---|---|---|"]
    for row in r.contributions.to_dict("records"):
        auc = "" if math.isnan(row["proxy_auc"]) else f"{row['proxy_auc']:.2f}"
        flag = " (the group's own attribute)" if row["is_attribute"] else ""
        out.append(f"| {md_text(row['feature'])}{flag} | {_points(row['contribution'])} "
                   f"({_points(row['contribution_ci_low'])} to {_points(row['contribution_ci_high'])}) | "
                   f"{row['score_contribution']:+.4f} | {auc} |")
    out += ["", "## Waterfall: from the reference's rate to the group's", "", "```"]
    scale = max(max(abs(a), abs(b)) for _, a, b in waterfall_steps(r)) or 1.0
    for label, a, b in waterfall_steps(r):
        lo, hi = sorted((a, b))
        start, width = round(40 * lo / scale), max(1, round(40 * (hi - lo) / scale))
        out.append(f"{label[:24]:<24} {' ' * start}{'█' * width} {pct(b) if label in ('reference', 'group') else _points(b - a)}")
    out += ["```", "", "## What if", ""]
    for row in r.what_if.to_dict("records"):
        out.append(f"- If this group's {md_text(row['feature'])} were distributed as the reference's, its selection "
                   f"rate would be {pct(row['selection_rate'])} ({interval(row['selection_rate_ci_low'], row['selection_rate_ci_high'])}%).")
    out += ["", "## Method", "",
            f"- Shapley decomposition over {len(m['features'])} features of giving the group the reference's "
            f"features ({method['replacement']}); {_ENUMERATION[method['enumeration']]}, {method['passes']} pass(es), "
            f"{method['rows_used']['group']:,} of the group's rows.",
            f"- Intervals: {method['interval']}, {method['n_boot']} replicates.",
            "- The decision keeps the audit's rule; a budget's cut stays at the original model's cut score.",
            f"- fairscan {m['fairscan_version']}; {m['created']}; schema {SCHEMA_VERSION}."]
    return "\n".join(out) + "\n"


def _svg(r: ExplainResult) -> str:
    steps = waterfall_steps(r)
    top = max(max(a, b) for _, a, b in steps) or 1.0
    label_w, plot_h, bar_w, gap = 10, 220, 54, 14
    width = label_w + len(steps) * (bar_w + gap) + 20
    height = plot_h + 90

    def y(v: float) -> float:
        return 20 + plot_h * (1 - max(0.0, v) / top)

    parts = [f'<svg role="img" aria-label="waterfall of the gap" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             "<title>From the reference's selection rate to the group's, one step per feature</title>"]
    for i, (label, a, b) in enumerate(steps):
        x0 = label_w + i * (bar_w + gap)
        lo, hi = sorted((a, b))
        colour = "#4a6fa5" if label in ("reference", "group") else ("#c0392b" if b < a else "#2e8b57")
        parts.append(f'<rect x="{x0}" y="{y(hi):.1f}" width="{bar_w}" height="{max(1.0, y(lo) - y(hi)):.1f}" '
                     f'fill="{colour}"/>')
        value = pct(b) if label in ("reference", "group") else _points(b - a)
        parts.append(f'<text x="{x0 + bar_w / 2}" y="{y(hi) - 4:.1f}" text-anchor="middle">{esc(value)}</text>')
        parts.append(f'<text transform="translate({x0 + bar_w / 2},{plot_h + 34}) rotate(30)">{esc(label[:22])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_explain_html(r: ExplainResult, title: str = "fairscan: why is this group offered less?") -> str:
    m = r.meta
    rows = []
    for row in r.contributions.to_dict("records"):
        auc = "" if math.isnan(row["proxy_auc"]) else f"{row['proxy_auc']:.2f}"
        rows.append(f'<tr><td class="l">{esc(row["feature"])}{" <em>(the attribute)</em>" if row["is_attribute"] else ""}'
                    f"</td><td>{_points(row['contribution'])}</td><td>{_points(row['contribution_ci_low'])} to "
                    f"{_points(row['contribution_ci_high'])}</td><td>{row['score_contribution']:+.4f}</td>"
                    f"<td>{esc(auc)}</td></tr>")
    what_if = "".join(
        f"<li>If this group's {esc(w['feature'])} were distributed as the reference's, its selection rate would be "
        f"{esc(pct(w['selection_rate']))} ({esc(interval(w['selection_rate_ci_low'], w['selection_rate_ci_high']))}%)."
        "</li>" for w in r.what_if.to_dict("records"))
    method = m["method"]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">', '<meta name="referrer" content="no-referrer">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>", f"<h1>{esc(title)}</h1>",
        f"<p>{esc(headline(r))}</p>",
        f'<p class="meta">decision: {esc(m["decision"]["description"])} · gap {esc(_points(m["gap"]))} '
        f"(95% CI {esc(_points(m['gap_ci'][0]))} to {esc(_points(m['gap_ci'][1]))}) · explained "
        f"{esc(_points(m['explained']))} · not explained {esc(_points(m['remainder']))} · fairscan "
        f"{esc(m['fairscan_version'])} · schema {SCHEMA_VERSION}</p>",
        "<h2>From the reference's rate to the group's</h2>", _svg(r),
        "<h2>Contributions</h2>",
        '<table><thead><tr><th class="l">feature</th><th>contribution</th><th>95% CI</th><th>to the mean score</th>'
        "<th>proxy of the group (AUC)</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>",
        f"<h2>What if</h2><ul>{what_if}</ul>",
        "<h2>Method</h2><ul>"
        f"<li>Shapley decomposition over {len(m['features'])} features of giving the group the reference's features "
        f"({esc(method['replacement'])}); {esc(_ENUMERATION[method['enumeration']])}, {method['passes']} pass(es).</li>"
        f"<li>Intervals: {esc(method['interval'])}.</li>"
        "<li>The decision keeps the audit's rule; a budget's cut stays at the original model's cut score.</li></ul>",
        "</body></html>",
    ]) + "\n"
