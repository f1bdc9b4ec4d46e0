"""Terminal rendering with rich: findings first, then each attribute's groups."""

from __future__ import annotations

import io
import math
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fairscan.report.common import AuditLike, count_text

__all__ = [
    "console",
    "render_card",
    "render_comparison",
    "render_dataset_list",
    "render_history",
    "render_inferred",
    "render_proxies",
    "render_table",
]

_STYLE = {"fail": "bold red", "insufficient": "yellow", "pass": "green"}
_SHOWN = (
    ("selection_rate", "offered"),
    ("true_positive_rate", "offered if yes"),
    ("false_negative_rate", "missed if yes"),
    ("base_rate", "base rate"),
)


def console(width: int | None) -> tuple[Console, io.StringIO]:
    """A plain-text rich console writing into a buffer: the terminal tables of every report."""
    buf = io.StringIO()
    return Console(file=buf, width=width or 120, force_terminal=False, highlight=False,
                   color_system=None, soft_wrap=False), buf


def _rate(row: Any, m: str) -> str:
    v = row.get(m)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    lo, hi = row.get(f"{m}_ci_low"), row.get(f"{m}_ci_high")
    return f"{100 * v:.1f}%\n({100 * lo:.1f}–{100 * hi:.1f})"


def render_table(result: AuditLike, width: int | None = None) -> str:
    """The audit as plain text tables: verdict counts, findings, groups per attribute."""
    con, buf = console(width)
    m = result.meta
    counts = result.verdict_counts()
    con.print(Text(f"fairscan audit · {m['n_rows']:,} rows · decision: {m['decision']['description']}",
                   style="bold"))
    con.print(f"findings: {counts['fail']} fail · {counts['insufficient']} insufficient · {counts['pass']} pass")
    tols = [f"{k} {'ratio ≥' if 'min_ratio' in v else 'difference ≤'} {next(iter(v.values())):g}"
            for k, v in m["settings"]["tolerances"].items()]
    con.print(f"tolerances: {', '.join(tols)}; verdicts at {m['settings']['confidence']:.0%} confidence")
    order = {"fail": 0, "insufficient": 1, "pass": 2}
    f = result.findings.sort_values("verdict", key=lambda s: s.map(order), kind="stable")
    t = Table(title="Findings", show_lines=False, expand=False)
    t.add_column("verdict")
    t.add_column("attribute")
    t.add_column("metric")
    t.add_column("message", overflow="fold")
    for row in f.itertuples(index=False):
        if row.verdict == "pass":
            continue
        t.add_row(Text(row.verdict, style=_STYLE[row.verdict]), row.attribute, row.metric, row.message)
    if counts["pass"]:
        t.caption = f"{counts['pass']} passing findings not shown (use --format json for all)"
    con.print(t)
    metrics = [(k, label) for k, label in _SHOWN if k in m["metrics"]]
    for attr in m["attributes"]:
        g = result.groups[result.groups["attribute"] == attr]
        t = Table(title=f"{attr} (reference: {m['reference'][attr]})")
        t.add_column("group", no_wrap=True)
        t.add_column("rows", justify="right", no_wrap=True)
        for _, label in metrics:
            t.add_column(label, justify="right", no_wrap=True)
        if "impact_ratio" in g:
            t.add_column("vs most\noffered", justify="right", no_wrap=True)
        for row in g.to_dict("records"):
            cells = [str(row["group"]) + (" *" if row["reference"] else ""),
                     count_text(row["count"], row["suppressed"], row.get("suppression"), m["settings"]["suppress_below"])]
            cells += [_rate(row, k) for k, _ in metrics]
            if "impact_ratio" in row:
                ir = row["impact_ratio"]
                cells.append("—" if ir is None or math.isnan(ir) else f"{ir:.2f}")
            t.add_row(*cells)
        t.caption = ("rates with 95% Wilson intervals; * reference group; 'if yes' = among customers "
                     "who would say yes (label positive)")
        con.print(t)
    for w in m["warnings"]:
        con.print(f"warning: {w}")
    return buf.getvalue()


def render_dataset_list(cards: list[dict]) -> str:
    """One line per bundled dataset."""
    con, buf = console(120)
    t = Table(title="Bundled datasets (UCI, CC BY 4.0)")
    for c in ("name", "rows", "label", "sensitive", "title"):
        t.add_column(c)
    for c in cards:
        label = f"{c['target']} = {c['positive_label']}" if c.get("target") else "—"
        t.add_row(c["name"], f"{c['rows']:,}", label, ", ".join(c.get("sensitive", [])), c["title"])
    con.print(t)
    return buf.getvalue()


def render_card(card: dict) -> str:
    """A dataset's card as readable text."""
    con, buf = console(120)
    con.print(Text(f"{card['name']}: {card['title']}", style="bold"))
    con.print(card.get("description", ""))
    con.print(f"source: {card['source']}\ncitation: {card['citation']}\nlicence: {card['licence']}")
    con.print(f"rows: {card['rows']:,}" + (f"  splits: {card['splits']}" if card.get("splits") else ""))
    if card.get("target"):
        con.print(f"label: {card['target']} = {card['positive_label']!r} ({card.get('favourable_meaning', '')})")
    con.print(f"sensitive: {', '.join(card.get('sensitive', []))}")
    pp = card.get("purchasing_power") or []
    if pp:
        con.print("purchasing-power proxies:")
        for p in pp:
            con.print(f"  - {p['column']}: {p['explanation']}" if isinstance(p, dict) else f"  - {p}")
    t = Table(title="columns")
    t.add_column("column")
    t.add_column("type")
    t.add_column("description", overflow="fold")
    for name, info in card.get("columns", {}).items():
        t.add_row(name, info.get("type", ""), info.get("description", ""))
    con.print(t)
    for c in card.get("caveats", []):
        con.print(f"caveat: {c}")
    return buf.getvalue()


def render_proxies(report: Any) -> str:
    """A proxy report (fairscan.groups.proxies.ProxyReport) as a terminal table."""
    con, buf = console(120)
    con.print(Text(f"Proxies of '{report.sensitive}': how well each feature alone predicts it "
                   f"(out-of-fold ROC AUC, {report.cv}-fold, {report.confidence:.0%} DeLong interval)", style="bold"))
    t = Table()
    for c in ("feature", "ROC AUC", "interval", "NMI", "proxy"):
        t.add_column(c, justify="left" if c == "feature" else "right")
    for r in report.features.itertuples(index=False):
        t.add_row(str(r.feature), f"{r.score:.3f}", f"{r.score_ci_low:.3f}–{r.score_ci_high:.3f}",
                  f"{r.nmi:.3f}", Text("PROXY", style="bold red") if r.proxy else "no")
    c = report.combined
    t.add_row("all features together", f"{c['score']:.3f}", f"{c['score_ci'][0]:.3f}–{c['score_ci'][1]:.3f}", "", "")
    t.caption = (f"a feature is flagged when the lower end of its interval exceeds {report.threshold:g}; "
                 f"{report.n_rows:,} rows")
    con.print(t)
    for n in report.notes:
        con.print(f"note: {n}")
    return buf.getvalue()


def render_history(table: dict) -> str:
    """The runs of one review, oldest first, with the judged gaps' trend."""
    con, buf = console(120)
    t = Table(title=f"review '{table['name']}': {len(table['runs'])} run(s)")
    for c in ("#", "time (UTC)", "status", "fail", "insufficient", "pass", "regressions", "data sha256"):
        t.add_column(c)
    for r in table["runs"]:
        c = r["verdict_counts"]
        t.add_row(str(r["seq"]), r["created"][:19], Text(r["status"], style=_STYLE.get(r["status"], "")),
                  str(c["fail"]), str(c["insufficient"]), str(c["pass"]), str(len(r["regressions"])),
                  r["data_sha256"][:12])
    con.print(t)
    return buf.getvalue()


def render_inferred(inferred: Any) -> str:
    """How much an audit by an inferred tier depends on the inference."""
    con, buf = console(140)
    p = inferred.proxy
    acc = p.get("accuracy")
    ci = p.get("accuracy_ci") or [None, None]
    con.print(Text(f"Inferred tier '{inferred.name}' from '{p.get('tier_column')}': proxy model out-of-fold accuracy "
                   f"{acc:.3f} (95% CI {ci[0]:.3f}–{ci[1]:.3f}; always guessing the largest tier: "
                   f"{p.get('majority_rate'):.3f}; {p.get('n_labelled'):,} labelled rows)", style="bold"))
    t = Table(title="Disparity to the reference: hard assignment vs soft membership (vs observed tier)")
    cols = ["metric", "group", "difference_hard", "verdict_hard", "difference_soft", "verdict_soft"]
    if "difference_observed" in inferred.comparison:
        cols += ["difference_observed", "verdict_observed"]
    for c in cols:
        t.add_column(c)
    for r in inferred.comparison.to_dict("records"):
        t.add_row(*[("—" if v is None or (isinstance(v, float) and math.isnan(v)) else
                     f"{v:+.3f}" if isinstance(v, float) else str(v)) for v in (r.get(c) for c in cols)])
    con.print(t)
    return buf.getvalue()


def render_comparison(result: Any, width: int | None = None) -> str:
    """Champion (A) against challenger (B): each change with its paired interval and verdict,
    and who gains and who loses the offer."""
    from fairscan.formatting import points
    from fairscan.report.compare import change_text, value_text

    con, buf = console(width)
    m = result.meta
    counts = result.verdict_counts()
    names = " vs ".join(x.get("model") or x.get("column") or x["name"] for x in m["models"])
    con.print(Text(f"fairscan compare · {m['n_rows']:,} rows · {names}", style="bold"))
    con.print(f"verdicts: {counts['worse']} worse · {counts['insufficient']} insufficient · "
              f"{counts['not worse']} not worse · {counts['better']} better")
    t = Table(title="Changes B − A (paired 95% intervals; McNemar, Holm-adjusted)")
    for c in ("verdict", "attribute", "group", "metric", "people", "A (95% CI)", "B (95% CI)", "change (pts)",
              "gap change (pts)"):
        t.add_column(c, justify="left" if c in ("verdict", "attribute", "group", "metric") else "right")
    style = {"worse": "bold red", "better": "green", "not worse": "green", "insufficient": "yellow"}
    for r in result.changes.to_dict("records"):
        if r["suppressed"]:
            t.add_row(r["verdict"], r["attribute"], str(r["group"]), r["metric"], "—", "—", "—", "suppressed", "")
            continue
        t.add_row(Text(r["verdict"], style=style[r["verdict"]]), r["attribute"], str(r["group"]), r["metric"],
                  f"{r['count']:,}", value_text(r, "a"), value_text(r, "b"), change_text(r),
                  points(r["gap_change"], missing=""))
    con.print(t)
    for w in m.get("warnings", []):
        con.print(Text(f"warning: {w}", style="yellow"))
    s = Table(title="Who gains and who loses the offer")
    for c in ("attribute", "group", "people", "gained (B only)", "lost (A only)"):
        s.add_column(c, justify="left" if c in ("attribute", "group") else "right")
    for r in result.switches.to_dict("records"):
        cells = ["—"] * 3 if r["suppressed"] else [f"{r['count']:,}", f"{r['gained']:,}", f"{r['lost']:,}"]
        s.add_row(r["attribute"], str(r["group"]), *cells)
    con.print(s)
    return buf.getvalue()
