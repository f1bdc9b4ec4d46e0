"""Reports of a recommendation audit: self-contained HTML and Markdown (findings, exclusion
and exposure heatmaps, utility, calibration, item side, method)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from fairscan.formatting import NA, number, pct
from fairscan.report.common import count_text, md_text
from fairscan.report.html import CSP, STYLE, esc

__all__ = ["render_recs_html", "render_recs_markdown"]


def _heatmap(df: pd.DataFrame, value: str, title: str, suppress_below: int) -> str:
    """User group x item group table, cells shaded by value (and written out: not colour alone)."""
    if df.empty:
        return ""
    users = list(dict.fromkeys(df["user_group"]))
    items = list(dict.fromkeys(df["item_group"]))
    cell = {(r["user_group"], r["item_group"]): r for r in df.to_dict("records")}
    out = [f"<h2>{esc(title)}</h2><div style='overflow-x:auto'><table><thead><tr><th class='l'>user group</th>"]
    out += [f"<th>{esc(i)}</th>" for i in items] + ["</tr></thead><tbody>"]
    for u in users:
        out.append(f"<tr><td class='l'>{esc(u)}</td>")
        for i in items:
            r = cell.get((u, i))
            v = None if r is None else r.get(value)
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                note = (count_text(None, True, r.get("suppression"), suppress_below)
                        if r is not None and r.get("suppressed") else "—")
                out.append(f"<td>{note}</td>")
                continue
            lo, hi = r.get(f"{value}_ci_low"), r.get(f"{value}_ci_high")
            shade = int(255 - 160 * max(0.0, min(1.0, float(v))))
            out.append(f"<td style='background:rgb(255,{shade},{shade})'>{pct(v)}"
                       f"<br><small>{pct(lo)}–{pct(hi)}</small></td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def render_recs_html(result: Any, title: str = "fairscan recommendation audit") -> str:
    m = result.meta
    s = m["settings"]
    counts = result.verdict_counts()
    order = {"fail": 0, "insufficient": 1, "pass": 2}
    findings = sorted(result.findings.to_dict("records"), key=lambda f: order[f["verdict"]])
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>", f"<h1>{esc(title)}</h1>",
        f"<p class='meta'>{m['n_users']:,} users, top {m['k']} lists; user groups by {esc(m['user_group'])}, "
        f"item groups by {esc(m['item_group'])}; reference {esc(m['reference'])}; users without a list: "
        f"{m['users_without_list']:,}; schema {esc(m.get('schema_version', '1.0'))}</p>",
        f"<p class='counts'><span>{counts['fail']} fail</span><span>{counts['insufficient']} insufficient</span>"
        f"<span>{counts['pass']} pass</span></p><ul class='findings'>",
        *[f"<li><span class='v {f['verdict']}'>{f['verdict'].upper()}</span> {esc(f['message'])}</li>"
          for f in findings],
        "</ul>",
        _heatmap(result.exclusion, "rate", f"Exclusion: share never shown the item group in their top {m['k']}",
                 s["suppress_below"]),
        _heatmap(result.exposure, "share", "Exposure: position-weighted share of the top-k", s["suppress_below"]),
    ]
    if len(result.utility):
        parts.append("<h2>Utility</h2><table><thead><tr><th class='l'>user group</th><th>metric</th><th>value</th>"
                     "<th>interval</th></tr></thead><tbody>")
        for u in result.utility.itertuples(index=False):
            parts.append(f"<tr><td class='l'>{esc(u.user_group)}</td><td>{esc(u.metric)}</td>"
                         f"<td>{number(u.value, 3)}</td><td>{number(u.ci_low, 3)}–{number(u.ci_high, 3)}</td></tr>")
        parts.append("</tbody></table>")
    parts.append("<h2>Method</h2><ul>" + "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in m["ci_method"].items())
                 + "</ul></body></html>")
    return "\n".join(parts) + "\n"


_SHADES = ("·", "░", "▒", "▓", "█")


def _shade(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return _SHADES[min(4, int(x * 5))]


def _md_heatmap(df: pd.DataFrame, value: str, lo: str, hi: str, suppress_below: int) -> list[str]:
    items = list(dict.fromkeys(df["item_group"]))
    lines = ["| user group | " + " | ".join(md_text(c) for c in items) + " |",
             "|---|" + "---|" * len(items)]
    for ug, part in df.groupby("user_group", sort=False):
        first = part.iloc[0]
        label = md_text(ug) + (" (reference)" if first["reference"] else "")
        cells = []
        for r in part.itertuples(index=False):
            if r.suppressed:
                cells.append(count_text(None, True, getattr(r, "suppression", None), suppress_below))
                continue
            v, a, b = getattr(r, value), getattr(r, lo), getattr(r, hi)
            ci = f" ({pct(a, missing=NA)}–{pct(b, missing=NA)})" if not (isinstance(a, float) and math.isnan(a)) else ""
            cells.append(f"{_shade(v)} {pct(v, missing=NA)}{ci}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def render_recs_markdown(r: Any, title: str = "fairscan recommendation audit") -> str:
    """The Markdown report of a RecsAuditResult (user-supplied names escaped)."""
    m = r.meta
    s = m["settings"]
    counts = r.verdict_counts()
    out = [f"# {md_text(title)}", "",
           f"{m['n_users']:,} users, top {m['k']} lists, position weights '{md_text(m['discount'])}'; user groups "
           f"by `{md_text(m['user_group'])}`, item groups by `{md_text(m['item_group'])}`, reference "
           f"**{md_text(m['reference'])}**. Users without a list: {m['users_without_list']:,}.", "",
           f"**{counts['fail']} fail · {counts['insufficient']} insufficient · {counts['pass']} pass**", ""]
    order = {"fail": 0, "insufficient": 1, "pass": 2}
    if len(r.findings):
        out += ["## Findings", ""]
        for f in sorted(r.findings.to_dict("records"), key=lambda x: order[x["verdict"]]):
            out.append(f"- **{f['verdict']}** — {md_text(f['message'])}")
        out.append("")
    if m["warnings"]:
        out += ["## Warnings", ""] + [f"- {md_text(w)}" for w in m["warnings"]] + [""]
    out += ["## Exclusion: share of each user group never shown the item group in its top "
            f"{m['k']}", "", "Darker = more excluded (░ ▒ ▓ █ by fifths); brackets: "
            f"{round(100 * s['confidence'])}% bootstrap interval.", ""]
    out += [*_md_heatmap(r.exclusion, "rate", "rate_ci_low", "rate_ci_high", s["suppress_below"]), ""]
    out += ["## Exposure: position-weighted share of each user group's top-k exposure", ""]
    out += [*_md_heatmap(r.exposure, "share", "share_ci_low", "share_ci_high", s["suppress_below"]), ""]
    if len(r.utility):
        out += ["## Utility (users with at least one held-out relevant item)", "",
                "| user group | metric | value | interval | users |", "|---|---|---|---|---|"]
        for u in r.utility.itertuples(index=False):
            out.append(f"| {md_text(u.user_group)} | {u.metric} | {number(u.value, 3, missing=NA)} | "
                       f"{number(u.ci_low, 3, missing=NA)}–{number(u.ci_high, 3, missing=NA)} | {'' if u.users is pd.NA else u.users} |")
        out.append("")
    if len(r.calibration):
        out += ["## Calibration (Steck's C_KL, lower is better calibrated)", "",
                "| user group | C_KL | interval | users |", "|---|---|---|---|"]
        for c in r.calibration.itertuples(index=False):
            out.append(f"| {md_text(c.user_group)} | {number(c.c_kl, 4, missing=NA)} | {number(c.ci_low, 4, missing=NA)}–{number(c.ci_high, 4, missing=NA)} | "
                       f"{'' if c.users is pd.NA else c.users} |")
        out.append("")
    isum = m["item_summary"]
    out += ["## Item side", "",
            f"Aggregate diversity {pct(isum['aggregate_diversity'], missing=NA)} ({isum['items_shown']:,} of "
            f"{isum['catalog_items']:,} catalog items shown); Gini of impressions {number(isum['gini'], 3, missing=NA)} "
            f"(n−1 convention; {number(isum['gini_n'], 3, missing=NA)} with n).", "",
            "| item group | catalog items | shown | coverage | impression share | catalog share |",
            "|---|---|---|---|---|---|"]
    for it in r.items.itertuples(index=False):
        out.append(f"| {md_text(it.item_group)} | {it.catalog_items:,} | {it.items_shown:,} | {pct(it.coverage, missing=NA)} | "
                   f"{pct(it.impression_share, missing=NA)} | {pct(it.catalog_share, missing=NA)} |")
    out += ["", "## Method", ""] + [f"- {k}: {md_text(v)}" for k, v in m["ci_method"].items()]
    out += [f"- {k}: {md_text(v)}" for k, v in m["conventions"].items()]
    out.append(f"- Groups under {s['min_group_size']} users get no pass/fail verdict; groups under "
               f"{s['suppress_below']} users are suppressed.")
    return "\n".join(out) + "\n"
