"""Self-contained HTML of a recommendation audit: findings, exclusion and exposure heatmaps."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from fairscan.report.html import CSP, STYLE, esc


def _num(v: Any, pct: bool = True) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


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
                note = f"fewer than {suppress_below}" if r is not None and r.get("suppressed") else "—"
                out.append(f"<td>{note}</td>")
                continue
            lo, hi = r.get(f"{value}_ci_low"), r.get(f"{value}_ci_high")
            shade = int(255 - 160 * max(0.0, min(1.0, float(v))))
            out.append(f"<td style='background:rgb(255,{shade},{shade})'>{_num(v)}"
                       f"<br><small>{_num(lo)}–{_num(hi)}</small></td>")
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
                         f"<td>{_num(u.value, False)}</td><td>{_num(u.ci_low, False)}–{_num(u.ci_high, False)}</td></tr>")
        parts.append("</tbody></table>")
    parts.append("<h2>Method</h2><ul>" + "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in m["ci_method"].items())
                 + "</ul></body></html>")
    return "\n".join(parts) + "\n"
