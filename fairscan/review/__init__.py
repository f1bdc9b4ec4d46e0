"""Scheduled model reviews: a policy file, exit codes, reports, history and regressions.

``fairscan review run review.yaml`` audits as the file says, applies its policy, writes the
reports, appends an aggregates-only record to the history and exits:

- 0 pass; 1 fail (a breach unlikely to be chance; or a significant regression when
  ``policy.regression: fail``); 3 insufficient evidence when ``policy.insufficient: fail``;
  2 a configuration or input error (one line, no traceback).

Baseline: with ``baseline: {model: ...}`` (or ``{score: COL}``, ``{prediction: COL}``), the
reviewed model is compared pair by pair with that champion on the same rows
(:func:`fairscan.compare`); the review fails (exit 1) when it is ``worse`` for any judged
metric, and the history records both models' hashes.

Regression: against the previous run of the same review, a disparity (group vs reference,
per judged metric) whose distance from parity grew significantly — one-sided z-test on the
two runs' differences, with standard errors taken from their bootstrap intervals — is flagged
even when no tolerance is crossed yet.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fairscan.errors import FairscanError
from fairscan.review.config import ReviewConfig, load_config
from fairscan.review.history import History
from fairscan.tracking import LogsToMlflow

__all__ = ["DEFAULT_HISTORY", "ReviewOutcome", "find_regressions", "history_table", "review_json", "run_review"]

EXIT_PASS, EXIT_FAIL, EXIT_ERROR, EXIT_INSUFFICIENT = 0, 1, 2, 3
DEFAULT_HISTORY = "fairscan-history.sqlite"


@dataclass
class ReviewOutcome(LogsToMlflow):
    """What a review run produced."""

    name: str
    status: str  # pass | fail | insufficient
    exit_code: int
    result: Any  # AuditResult
    regressions: list[dict[str, Any]] = field(default_factory=list)
    comparison: Any = None  # ComparisonResult against the baseline, if the review names one
    value: Any = None  # ValueResult, when the review also audits the offer's value
    record: dict[str, Any] = field(default_factory=dict)
    reports: list[Path] = field(default_factory=list)
    config_sha256: str = ""
    #: the judged findings that set the status: the audit's, the judged value findings, and
    #: each group the baseline comparison finds worse off (counted as a fail)
    judged: dict[str, int] = field(default_factory=dict)

    def verdict_counts(self) -> dict[str, int]:
        """The review's judged findings by verdict (``fail``, ``insufficient``, ``pass``)."""
        return dict(self.judged) if self.judged else self.result.verdict_counts()

    def to_json(self) -> str:
        """The review's JSON report (:func:`review_json`)."""
        return review_json(self, self.config_sha256)

    def to_html(self) -> str:
        """The audit's HTML report, titled with the review's status."""
        return self.result.to_html(f"fairscan review '{self.name}': {self.status.upper()}")


def _load_data(cfg: ReviewConfig) -> pd.DataFrame:
    from fairscan.io import DATASET_PREFIX, read_table

    data = cfg.raw["data"]
    if isinstance(data, dict):
        try:
            import duckdb
        except ImportError:
            raise FairscanError(f"{cfg.path}: data.sql needs DuckDB: pip install duckdb") from None
        try:
            return duckdb.connect().sql(data["sql"]).df()
        except duckdb.Error as e:
            raise FairscanError(f"{cfg.path}: data.sql failed: {str(e).splitlines()[0]}") from None
    if data.startswith(DATASET_PREFIX):
        return read_table(data)
    if any(ch in data for ch in "*?["):
        files = sorted(globlib.glob(str(cfg.folder / data)))
        for f in files:
            cfg.resolve_path(f, "data file")
        if not files:
            raise FairscanError(f"{cfg.path}: data glob '{data}' matches no file")
        return pd.concat([read_table(f) for f in files], ignore_index=True)
    p = cfg.resolve_path(data, "data")
    if p.is_dir():
        files = sorted(p.glob("*.parquet"))
        if not files:
            raise FairscanError(f"{cfg.path}: data folder '{data}' has no .parquet file")
        return pd.concat([read_table(f) for f in files], ignore_index=True)
    return read_table(p)


def _model(cfg: ReviewConfig) -> tuple[Any, str | None]:
    """The model spec for the audit (a path, reference:NAME or an MLflow registry URI) and the
    artifact's sha256."""
    spec = cfg.raw.get("model")
    return (None, None) if spec is None else _model_path(cfg, spec, "model")


def run_review(config: str | Path, history: str | Path | None = None, write: bool = True) -> ReviewOutcome:
    """Run the review described by ``config`` (see the module docstring)."""
    from fairscan.audit import run_audit

    cfg = load_config(config)
    raw = cfg.raw
    policy = raw.get("policy", {})
    if "label" not in raw:
        return _value_review(cfg, history, write)
    model_spec, model_sha = _model(cfg)
    data = _load_data(cfg)
    params = cfg.audit_params(model=model_spec)
    result = run_audit(data, params)
    model_sha = model_sha or (result.meta.get("model") or {}).get("sha256")  # a registry model's, as loaded
    comparison, baseline_sha = _against_baseline(cfg, data, params, model_spec)
    hist = History(history or (cfg.resolve_path(raw["history"], "history") if raw.get("history")
                               else cfg.folder / DEFAULT_HISTORY))
    previous = hist.last_run(cfg.name)
    regressions = find_regressions(previous["body"] if previous else None, result, policy.get("alpha", 0.05))
    counts = result.verdict_counts()
    value, value_counts = _value_audit(cfg, data)
    worse = comparison is not None and not comparison.worse.empty
    if counts["fail"] or value_counts["fail"] or worse or (regressions and policy.get("regression", "warn") == "fail"):
        status, code = "fail", EXIT_FAIL
    elif (counts["insufficient"] or value_counts["insufficient"]) and policy.get("insufficient", "warn") == "fail":
        status, code = "insufficient", EXIT_INSUFFICIENT
    else:
        status, code = "pass", EXIT_PASS
    n_worse = 0 if comparison is None else len(comparison.worse)
    judged = {v: counts[v] + value_counts[v] + (n_worse if v == "fail" else 0) for v in ("fail", "insufficient", "pass")}
    outcome = ReviewOutcome(cfg.name, status, code, result, regressions, comparison, value,
                            config_sha256=cfg.sha256, judged=judged)
    if not write:
        return outcome
    doc = result.to_dict()
    body = {
        "name": cfg.name, "status": status, "exit_code": code, "config": raw, "config_sha256": cfg.sha256,
        "data_sha256": result.meta["data_sha256"], "model_sha256": model_sha,
        "fairscan_version": result.meta["fairscan_version"], "verdict_counts": counts,
        "regressions": regressions, "n_rows": doc["n_rows"], "decision": doc["decision"],
        "groups": doc["groups"], "disparities": doc["disparities"], "findings": doc["findings"],
    }
    if value is not None:
        vdoc = value.to_dict()
        body["value"] = {"verdict_counts": value_counts, "reference": vdoc["reference"], "groups": vdoc["groups"],
                         "disparities": vdoc["disparities"], "decomposition": vdoc["decomposition"],
                         "findings": vdoc["findings"]}
    if comparison is not None:
        cdoc = comparison.to_dict()
        body["baseline"] = {"sha256": baseline_sha, "models": cdoc["models"],
                            "verdict_counts": comparison.verdict_counts(),
                            "worse": [c for c in cdoc["changes"] if c["verdict"] == "worse"]}
    outcome.record = hist.append("run", cfg.name, body)
    outcome.reports = _write_reports(cfg, outcome)
    return outcome


def _value_review(cfg: ReviewConfig, history: str | Path | None, write: bool) -> ReviewOutcome:
    """A review of the offer's value alone (no label): the value audit is the result, its judged
    findings set the status; the history records it with a hash of the audited columns. (No
    regression check: that compares decisions' disparities between runs.)"""
    raw, policy = cfg.raw, cfg.raw.get("policy", {})
    data = _load_data(cfg)
    value, counts = _value_audit(cfg, data)  # its meta fingerprints the audited columns (data_sha256)
    if counts["fail"]:
        status, code = "fail", EXIT_FAIL
    elif counts["insufficient"] and policy.get("insufficient", "warn") == "fail":
        status, code = "insufficient", EXIT_INSUFFICIENT
    else:
        status, code = "pass", EXIT_PASS
    outcome = ReviewOutcome(cfg.name, status, code, value, config_sha256=cfg.sha256, judged=dict(counts))
    if not write:
        return outcome
    hist = History(history or (cfg.resolve_path(raw["history"], "history") if raw.get("history")
                               else cfg.folder / DEFAULT_HISTORY))
    vdoc = value.to_dict()
    body = {"name": cfg.name, "status": status, "exit_code": code, "config": raw, "config_sha256": cfg.sha256,
            "data_sha256": value.meta["data_sha256"], "model_sha256": None,
            "fairscan_version": value.meta["fairscan_version"], "verdict_counts": counts, "regressions": [],
            "n_rows": vdoc["n_rows"], "value": {k: vdoc[k] for k in ("reference", "groups", "disparities",
                                                                     "decomposition", "findings")}}
    outcome.record = hist.append("run", cfg.name, body)
    outcome.reports = _write_reports(cfg, outcome)
    return outcome


def _value_audit(cfg: ReviewConfig, data: pd.DataFrame) -> tuple[Any, dict[str, int]]:
    """The review's value audit (its ``value:`` block), by the review's own groups and policy,
    and the verdict counts of the value findings it judges (default: mean and within)."""
    spec = cfg.raw.get("value")
    if not spec:
        return None, {"fail": 0, "insufficient": 0, "pass": 0}
    from fairscan.value import JUDGED_BY_DEFAULT, audit_value

    policy = cfg.raw.get("policy", {})
    try:
        value = audit_value(
            data, value=spec["column"], favourable=spec["favourable"], sensitive=cfg.raw.get("sensitive"),
            tiers=cfg.raw.get("tiers"), intersect=cfg.raw.get("intersect", False), within=spec.get("within"),
            offered=spec.get("offered"), cluster=spec.get("cluster"), reference=cfg.raw.get("reference"),
            weights=cfg.raw.get("weights"),
            tolerance=spec.get("tolerance", 0.05), min_group_size=policy.get("min_group_size", 30),
            suppress_below=policy.get("suppress_below", 10), alpha=policy.get("alpha", 0.05),
            n_boot=policy.get("n_boot", 1000))
    except FairscanError as e:
        raise FairscanError(f"review file '{cfg.path}': value: {e}") from None
    judged = value.findings[value.findings["metric"].isin(spec.get("metrics", JUDGED_BY_DEFAULT))]
    return value, {v: int((judged["verdict"] == v).sum()) for v in ("fail", "insufficient", "pass")}


def _against_baseline(cfg: ReviewConfig, data: pd.DataFrame, params: Any,
                      model_spec: Any) -> tuple[Any, str | None]:
    """The paired comparison of the reviewed model (B) with the review's baseline (A), and the
    baseline artifact's sha256; (None, None) without a baseline. A side given as a model is
    scored into a column first, so a model may be compared with a score column."""
    base = cfg.raw.get("baseline")
    if not base:
        return None, None
    from fairscan import modeling
    from fairscan.compare import COMPARED_METRICS, compare

    raw = cfg.raw
    reviewed_kind = "model" if "model" in raw else "prediction" if "prediction" in raw else "score"
    sides = [("baseline", *next(iter(base.items()))),
             ("reviewed", reviewed_kind, model_spec if reviewed_kind == "model" else raw[reviewed_kind])]
    frame, columns, kinds, base_sha = data, [], set(), None
    for side, kind, value in sides:
        if kind == "model":
            path, sha = _model_path(cfg, value, f"{side} model")
            scored, col, meta = modeling.score_frame(frame, path, raw.get("positive_label"),
                                                     trust=raw.get("trust", ()))
            frame = frame.assign(**{f"__{side}_score__": scored[col].to_numpy()})
            value, kind = f"__{side}_score__", "score"
            base_sha = (sha or meta.get("sha256")) if side == "baseline" else base_sha
        columns.append(value)
        kinds.add(kind)
    if len(kinds) > 1:
        raise FairscanError(f"{cfg.path}: the baseline and the reviewed model must both give scores (a model or a "
                            "score column) or both predictions")
    policy, g = params.policy, params.groups
    metrics = [m for m in COMPARED_METRICS if m in policy.tolerances]
    result = compare(frame, **{"predictions" if kinds == {"prediction"} else "scores": columns},
                     threshold=params.decision.threshold, budget=params.decision.budget, target=raw["label"],
                     positive_label=raw.get("positive_label"), sensitive=list(g.sensitive), tiers=dict(g.tiers),
                     intersect=g.intersect, reference=dict(g.reference) or None, metrics=metrics or None,
                     n_boot=policy.n_boot, seed=policy.seed, min_group_size=policy.min_group_size,
                     suppress_below=policy.suppress_below, alpha=policy.alpha,
                     favourable_decision=params.decision.favourable, names=["baseline", cfg.name])
    return result, base_sha


def _model_path(cfg: ReviewConfig, spec: str, what: str) -> tuple[str, str | None]:
    """A model spec of the review file as a path the loader takes, and the artifact's sha256
    (None for a registry model: the loader that scores it records the sha256 of what it
    fetched, so the history names the model that was actually used)."""
    from fairscan import modeling, registry

    if registry.is_registry_uri(spec):  # its sha256: from the model the analysis itself loads
        return spec, None
    if spec.startswith(modeling.REFERENCE_PREFIX):
        path = modeling.resolve_model_path(spec)
        return spec, hashlib.sha256(path.read_bytes()).hexdigest()
    path = cfg.resolve_path(spec, what)
    if not path.exists():
        raise FairscanError(f"{cfg.path}: {what} file '{spec}' not found")
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


def find_regressions(previous: dict[str, Any] | None, result: Any, alpha: float) -> list[dict[str, Any]]:
    """Judged disparities that moved significantly away from parity since the previous run."""
    from scipy.special import ndtr, ndtri

    if not previous:
        return []
    judged = set(result.meta["settings"]["tolerances"])
    before = {(d["attribute"], d["metric"], d["group"]): d for d in previous.get("disparities", [])}
    z95 = float(ndtri(0.5 + result.meta["settings"]["confidence"] / 2))
    out = []
    for d in result.to_dict()["disparities"]:
        if d["metric"] not in judged or d.get("suppressed"):
            continue
        old = before.get((d["attribute"], d["metric"], d["group"]))
        if not old or old.get("difference") is None or d.get("difference") is None:
            continue
        ses = []
        for x in (d, old):
            lo, hi = x["difference_ci"]
            if lo is None or hi is None:
                break
            ses.append((hi - lo) / (2 * z95))
        if len(ses) < 2 or not all(s > 0 for s in ses):
            continue
        grow = abs(d["difference"]) - abs(old["difference"])
        z = grow / math.sqrt(ses[0] ** 2 + ses[1] ** 2)
        p = float(1 - ndtr(z))
        if p < alpha:
            out.append({"attribute": d["attribute"], "metric": d["metric"], "group": d["group"],
                        "reference": d["reference"], "before": old["difference"], "after": d["difference"],
                        "p_value": p, "message": f"{d['attribute']} = {d['group']}: {d['metric']} gap to "
                        f"{d['reference']} widened from {old['difference']:+.3f} to {d['difference']:+.3f} "
                        f"(one-sided p = {p:.3g})"})
    return out


def review_json(o: ReviewOutcome, config_sha256: str = "") -> str:
    """A review's JSON report: the audit's document with a ``review`` object (status, exit
    code, regressions, the history record, the baseline comparison) and the value audit."""
    import json

    doc = o.result.to_dict()
    doc["review"] = {"name": o.name, "status": o.status, "exit_code": o.exit_code,
                     "regressions": o.regressions, "record": o.record, "config_sha256": config_sha256}
    if o.comparison is not None:
        doc["review"]["baseline_comparison"] = o.comparison.to_dict()
    if o.value is not None:
        doc["value"] = o.value.to_dict()
    return json.dumps(doc, indent=2, allow_nan=False, default=str)


def _write_reports(cfg: ReviewConfig, o: ReviewOutcome) -> list[Path]:
    from fairscan.report.junit import render_junit

    outputs = cfg.raw.get("outputs", {})
    formats = outputs.get("formats", ["json", "md", "html", "junit"])
    folder = cfg.resolve_path(outputs.get("dir", "reports"), "outputs.dir")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FairscanError(f"cannot create the report folder '{folder}': {e.strerror}") from None
    title = f"fairscan review '{cfg.name}': {o.status.upper()}"  # as o.to_html()
    paths = []
    for fmt in formats:
        path = folder / f"{cfg.name}.{ {'junit': 'junit.xml'}.get(fmt, fmt) }"
        if fmt == "json":
            text = review_json(o, cfg.sha256)
        elif fmt == "md":
            text = (o.result.to_markdown(title) + _regression_md(o) + _baseline_md(o)
                    + (("\n" + o.value.to_markdown()).replace("\n# ", "\n## ", 1) if o.value is not None else ""))
        elif fmt == "html":
            text = o.result.to_html(title)
            if o.value is not None:  # its own page beside the audit's
                extra = folder / f"{cfg.name}.value.html"
                extra.write_text(o.value.to_html(), encoding="utf-8")
                paths.append(extra)
        else:
            from fairscan.value import JUDGED_BY_DEFAULT

            judged = cfg.raw.get("value", {}).get("metrics", JUDGED_BY_DEFAULT)
            extra_findings = ([f for f in o.value.findings.to_dict("records") if f["metric"] in judged]
                              if o.value is not None else [])
            value_only = "label" not in cfg.raw  # a value review: its judged findings are the cases
            text = render_junit(o.result, cfg.name, o.regressions,
                                insufficient_fails=cfg.raw.get("policy", {}).get("insufficient") == "fail",
                                value_findings=extra_findings,
                                findings=[f for f in o.result.findings.to_dict("records") if f["metric"] in judged]
                                if value_only else None)
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def _baseline_md(o: ReviewOutcome) -> str:
    """The paired comparison with the baseline, for the Markdown report (empty without one)."""
    if o.comparison is None:
        return ""
    from fairscan.report.compare import render_compare_markdown

    return "\n" + render_compare_markdown(o.comparison, "Against the baseline (paired, the same customers)", level=2)


def _regression_md(o: ReviewOutcome) -> str:
    from fairscan.report.common import md_text

    lines = ["", "## Since the previous run", ""]
    lines += [f"- REGRESSION: {md_text(r['message'])}" for r in o.regressions] or ["- no significant worsening"]
    lines += ["", f"History record {o.record.get('seq')}: sha256 `{o.record.get('hash')}`"]
    return "\n".join(lines) + "\n"


def history_table(path: str | Path, name: str) -> dict[str, Any]:
    """``{"name": ..., "runs": [...]}``: each run's time, status, counts, hashes and, per judged
    (attribute, metric, group), the difference to the reference — the trend."""
    runs = []
    for r in History(path).records(name, "run"):
        b = r["body"]
        runs.append({
            "seq": r["seq"], "created": r["created"], "hash": r["hash"], "status": b["status"],
            "exit_code": b["exit_code"], "verdict_counts": b["verdict_counts"],
            "data_sha256": b["data_sha256"], "model_sha256": b.get("model_sha256"),
            "config_sha256": b["config_sha256"], "fairscan_version": b["fairscan_version"],
            "regressions": b.get("regressions", []),
            "disparities": [{k: d.get(k) for k in ("attribute", "metric", "group", "reference", "difference",
                                                   "ratio", "p_value_adjusted")}
                            for d in b.get("disparities", [])
                            if d["metric"] in {f["metric"] for f in b.get("findings", [])}]
            # the value audit's mean gaps too, relative to the reference's mean (ratio - 1, so a
            # trend in the same scale as the rates), named value.ATTRIBUTE
            + [{"attribute": f"value.{d['attribute']}", "metric": "relative mean gap", "group": d["group"],
                "reference": d.get("reference_group"),
                "difference": None if d.get("ratio") is None else d["ratio"] - 1, "ratio": d.get("ratio"),
                "p_value_adjusted": d.get("p_value_adjusted")}
               for d in b.get("value", {}).get("disparities", []) if d["metric"] == "mean"],
        })
    return {"name": name, "runs": runs}
