"""Reports of a review's history (``fairscan.review.history_table``): Markdown and HTML.

The runs (time, status, verdict counts, regressions, hashes), then per judged (attribute,
metric) the trend: each group's difference to its reference, run by run. Aggregates only,
as the history holds; names are escaped as in every report.
"""

from __future__ import annotations

from typing import Any

from fairscan.report.common import md_text
from fairscan.report.html import CSP, STYLE, esc

__all__ = ["RUN_COLUMNS", "render_history_html", "render_history_markdown"]

RUN_COLUMNS = ("run", "time (UTC)", "status", "fail", "insufficient", "pass", "regressions", "data sha256",
               "record sha256")


def _runs(table: dict[str, Any]) -> list[list[str]]:
    out = []
    for r in table["runs"]:
        c = r["verdict_counts"]
        out.append([str(r["seq"]), r["created"][:19].replace("T", " "), r["status"], str(c.get("fail", 0)),
                    str(c.get("insufficient", 0)), str(c.get("pass", 0)), str(len(r["regressions"])),
                    r["data_sha256"][:12], r["hash"][:12]])
    return out


def _trends(table: dict[str, Any]) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """(attribute, metric, run labels, rows of [group, difference per run in points])."""
    seqs = [r["seq"] for r in table["runs"]]
    cells: dict[tuple[str, str], dict[str, dict[int, float | None]]] = {}
    for r in table["runs"]:
        for d in r["disparities"]:
            by_group = cells.setdefault((d["attribute"], d["metric"]), {})
            by_group.setdefault(str(d["group"]), {})[r["seq"]] = d["difference"]
    out = []
    for (attr, metric), groups in cells.items():
        rows = [[g, *("" if v.get(s) is None else f"{100 * v[s]:+.1f}" for s in seqs)] for g, v in groups.items()]
        out.append((attr, metric, [f"run {s}" for s in seqs], rows))
    return out


def render_history_markdown(table: dict[str, Any]) -> str:
    """The history of one review as Markdown."""
    lines = [f"# fairscan review history: {md_text(table['name'])}", "",
             f"{len(table['runs'])} run(s), oldest first. Differences are to each attribute's reference "
             "group, in percentage points.", "",
             "| " + " | ".join(RUN_COLUMNS) + " |", "|" + "---|" * len(RUN_COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in _runs(table)]  # our own numbers and hashes
    for attr, metric, runs, rows in _trends(table):
        lines += ["", f"## {md_text(metric.replace('_', ' '))} by {md_text(attr)}: difference to the reference",
                  "", "| group | " + " | ".join(runs) + " |", "|" + "---|" * (len(runs) + 1)]
        lines += [f"| {md_text(row[0])} | " + " | ".join(row[1:]) + " |" for row in rows]  # a group name, then numbers
    return "\n".join(lines) + "\n"


def render_history_html(table: dict[str, Any]) -> str:
    """The history of one review as a self-contained HTML page (no scripts, strict CSP)."""
    title = f"fairscan review history: {table['name']}"

    def tab(head: list[str] | tuple[str, ...], rows: list[list[str]]) -> str:
        return ("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>" +
                "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows) +
                "</tbody></table>")

    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
             f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>", f"<h1>{esc(title)}</h1>",
             f"<p class='meta'>{len(table['runs'])} run(s), oldest first. Differences are to each attribute's "
             "reference group, in percentage points.</p>", tab(RUN_COLUMNS, _runs(table))]
    for attr, metric, runs, rows in _trends(table):
        parts += [f"<h2>{esc(metric.replace('_', ' '))} by {esc(attr)}: difference to the reference</h2>",
                  tab(["group", *runs], rows)]
    parts.append("</body></html>")
    return "\n".join(parts)
