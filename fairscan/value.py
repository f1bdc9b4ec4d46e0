"""The value audit: not only who gets an offer, but at what price, discount or limit.

:func:`audit_value` reads one numeric value per row (a price quoted, a discount, a credit
limit) and the customer groups (the audit's attributes, tiers and inferred tiers), and
reports per group the value's distribution, its gaps to a reference group, and, with strata
(``within``: the product, a loan band), how much of a gap is **discrimination** (another
value for the same stratum) and how much **steering** (another mix of strata): the symmetric
Kitagawa decomposition. Direction matters: ``favourable="lower"`` for a price, a premium or a
rate, ``"higher"`` for a discount or a limit; every finding says who is worse off.

Everything is computed from value cells (:mod:`fairscan.metrics.values`): per (group,
stratum, distinct value) the rows, the weights and the squared weights. Group numbers pass
the one suppression rule (:func:`fairscan.privacy.suppress`, complementary suppression
included); strata-level numbers are never published.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairscan.engines.base import (
    not_numeric_error,
    offered_flags,
    stratum_table,
    value_floats,
    weight_errors,
)
from fairscan.engines.choose import in_memory, make_engine
from fairscan.engines.datahash import frame_sha256
from fairscan.errors import FairscanError, plain, suggest
from fairscan.formatting import is_missing, jsonable, number, p_value, pct
from fairscan.groups import GroupSpec, TierSpec, resolve, resolve_references
from fairscan.groups.purchasing import parse_infer_tier
from fairscan.metrics import values as mv
from fairscan.metrics.stats import (
    group_streams,
    holm,
    newcombe_difference,
    percentile_interval,
    ratio_interval,
    t_quantile,
    two_proportion_test,
    wilson,
    z_value,
)
from fairscan.policy import AuditPolicy, Tolerance, interval_verdict, verdict
from fairscan.privacy import CountTable, suppress
from fairscan.tracking import LogsToMlflow
from fairscan.version import __version__

__all__ = [
    "FAVOURABLE", "JUDGED_BY_DEFAULT", "METHODS", "METHODS_CLUSTERED", "VALUE_DATA_HASH", "VALUE_METRICS", "ValueResult", "audit_value", "check_favourable", "offered_column",
    "quantile_method", "stratum_codes", "value_column", "value_groups", "weight_column",
]

FAVOURABLE = ("higher", "lower")
#: what a value audit's ``data_sha256`` fingerprints (an in-memory frame's audited columns)
VALUE_DATA_HASH = "sha256 of the audited columns' names, dtypes and rows (fairscan's frame fingerprint)"
#: the disparity rows of every group against its reference
VALUE_METRICS = ("mean", "median", "share_favourable", "ks", "wasserstein")
#: the value findings that judge a review or a repair unless it names others
JUDGED_BY_DEFAULT = ("mean", "within")
#: what each row's interval and p-value come from (in the output's ``methods``)
METHODS = {
    "mean": "difference: Welch's t interval and test (effective sizes with weights); ratio: delta method on the "
            "log ratio",
    "median": "group median: distribution-free order-statistic interval; difference: percentile Poisson bootstrap "
              "over cells, two-sided bootstrap p-value",
    "share_favourable": "share in the most favourable quarter of the pooled values: Wilson interval; difference: "
                        "Newcombe; ratio: Katz log; test: two-proportion z (Fisher for small counts)",
    "ks": "two-sample Kolmogorov-Smirnov distance (weighted ECDFs): percentile Poisson bootstrap interval, "
          "asymptotic Kolmogorov p-value",
    "wasserstein": "Wasserstein-1 distance in the value's units: percentile Poisson bootstrap interval; no test "
                   "(the ks row tests equal distributions)",
    "decomposition": "symmetric Kitagawa decomposition; intervals: delta method (each side's rows an independent "
                     "sample)",
    "p_value_adjusted": "Holm over every p-value of the disparity table",
}
#: what changes when rows come in clusters (``cluster=``, ``--cluster``): every interval and
#: test treats a cluster, not a row, as the independent unit
METHODS_CLUSTERED = {
    "mean": "cluster-robust: each cluster's summed residuals (statsmodels' cov_type='cluster' with its small-sample "
            "factor G/(G-1)*(N-1)/(N-K)), t with G-1 degrees of freedom, for the group's mean, the difference "
            "(clusters may span both groups) and the log ratio",
    "median": "group median and difference: percentile cluster bootstrap (Poisson weights on whole clusters), "
              "two-sided bootstrap p-value",
    "share_favourable": "Wilson, Newcombe, Katz and the two-proportion test on the design-effect size (the "
                        "effective size divided by the cluster-robust over the independent-rows variance, at least 1)",
    "ks": "KS distance: percentile cluster bootstrap interval; the asymptotic p-value assumes independent rows",
    "wasserstein": "Wasserstein-1 distance: percentile cluster bootstrap interval",
    "decomposition": "symmetric Kitagawa decomposition; intervals: delta method with each cluster's influence added "
                     "up (cluster-robust)",
}


@dataclass
class ValueResult(LogsToMlflow):
    """Per-group value statistics, gaps to the reference, the decomposition and findings."""

    groups: pd.DataFrame
    disparities: pd.DataFrame
    decomposition: pd.DataFrame
    findings: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from fairscan.schemas import SCHEMA_VERSION

        def rows(frame: pd.DataFrame, pairs: Sequence[str]) -> list[dict[str, Any]]:
            out = []
            for row in frame.to_dict("records"):
                obj = {k: jsonable(v) for k, v in row.items() if not k.endswith(("_ci_low", "_ci_high"))}
                for name in pairs:
                    if f"{name}_ci_low" in row:
                        obj[f"{name}_ci"] = [jsonable(row[f"{name}_ci_low"]), jsonable(row[f"{name}_ci_high"])]
                out.append(obj)
            return out

        return {
            "schema_version": SCHEMA_VERSION, **self.meta,
            "groups": rows(self.groups, ["mean", "median", "share_favourable", "offered_rate"]),
            "disparities": rows(self.disparities, ["difference", "ratio"]),
            "decomposition": rows(self.decomposition, ["within", "composition"]),
            "findings": [{k: jsonable(v) for k, v in r.items()} for r in self.findings.to_dict("records")],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=str)

    def verdict_counts(self) -> dict[str, int]:
        """How many findings fail, pass or lack evidence."""
        return {v: int((self.findings["verdict"] == v).sum()) for v in ("fail", "insufficient", "pass")}

    @property
    def failed(self) -> pd.DataFrame:
        """The failing findings."""
        return self.findings[self.findings["verdict"] == "fail"]

    def to_markdown(self, title: str | None = None) -> str:
        from fairscan.report.value import TITLE, render_value_markdown

        return render_value_markdown(self, title or TITLE)

    def to_html(self, title: str | None = None) -> str:
        from fairscan.report.value import TITLE, render_value_html

        return render_value_html(self, title or TITLE)

    def to_text(self) -> str:
        """The terminal table: each group's numbers, then the findings."""
        level = self.meta["settings"]["confidence"]
        lines = [f"value '{self.meta['value']}' ({self.meta['favourable']} is better), {self.meta['n_rows']:,} rows; "
                 f"{level:.0%} intervals in brackets"]
        for attr, part in self.groups.groupby("attribute", sort=False):
            lines.append(f"\n{attr}")
            for r in part.to_dict("records"):
                if r["suppressed"]:
                    lines.append(f"  {r['group']}: suppressed ({r['suppression']})")
                    continue
                ref = " (reference)" if r["reference"] else ""
                lines.append(f"  {r['group']}{ref}: n {r['count']:,}, missing {r['missing']:,}, mean "
                             f"{number(r['mean'])} ({number(r['mean_ci_low'])} to {number(r['mean_ci_high'])}), "
                             f"median {number(r['median'])} ({number(r['median_ci_low'])} to "
                             f"{number(r['median_ci_high'])}), p10-p90 {number(r['p10'])}-{number(r['p90'])}, in the "
                             f"favourable quarter {pct(r['share_favourable'])} ({pct(r['share_favourable_ci_low'])} "
                             f"to {pct(r['share_favourable_ci_high'])})")
        if len(self.findings):
            lines.append("\nfindings")
            lines += [f"  [{r['verdict']}] {r['message']}" for r in self.findings.to_dict("records")]
        if self.meta.get("value_precision") is not None:
            lines.append(f"\nquantiles: {self.meta['methods']['quantiles']}")
        return "\n".join(lines) + "\n"


def quantile_method(precision: float | None) -> str:
    """How the quantiles were computed: exactly, or from fine bins (``precision``)."""
    if precision is None:
        return "exact, from every distinct value: numpy's linear definition (with weights its inverted CDF)"
    return (f"more than {mv.EXACT_VALUES:,} distinct values: values within {precision:.2%} of each other share "
            f"a cell, at their weighted mean, so every quantile is within {precision:.2%} (relative) of the exact "
            "one and KS and Wasserstein are those of the values so rounded; means, totals and the decomposition "
            "are exact")


def _column(data: pd.DataFrame, name: str, role: str) -> pd.Series:
    """The column ``name`` of ``data``, or a one-line error with close matches."""
    if name not in data.columns:
        raise FairscanError(f"{role} column '{name}' not found{suggest(name, [str(c) for c in data.columns])}")
    return data[name]


def check_favourable(favourable: object) -> None:
    """The direction must be given: a one-line error that says which to use."""
    if favourable not in FAVOURABLE:
        got = "" if favourable is None else f" (got {plain(favourable)})"
        raise FairscanError(f"say which values are better for the customer{got}: --favourable higher for a discount "
                            "or a limit, --favourable lower for a price, a premium or a rate")


def value_column(data: pd.DataFrame, value: str) -> np.ndarray:
    """The value column of an in-memory frame as floats (NaN where missing), checked as every
    engine checks it."""
    return value_floats(_column(data, value, "value"), value)


def weight_column(data: pd.DataFrame, weights: str | None) -> np.ndarray | None:
    if weights is None:
        return None
    col = _column(data, weights, "weight")
    if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        raise not_numeric_error(weights, f"dtype {col.dtype}", "weights")  # the engines' wording
    w = col.to_numpy(dtype=np.float64, na_value=np.nan)
    weight_errors(weights, int((~np.isfinite(w)).sum()), int((w < 0).sum()))  # the audit's own wording
    return w


def offered_column(data: pd.DataFrame, offered: str | None) -> np.ndarray | None:
    if offered is None:
        return None
    return offered_flags(_column(data, offered, "offered"), offered)


def stratum_codes(data: pd.DataFrame, within: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Each row's stratum code (the cross of the ``within`` columns, in sorted order of their
    values; a missing value is the stratum part ``unknown``), as every engine codes them."""
    for c in within:
        _column(data, c, "stratum (--within)")
    if not within:
        return np.zeros(len(data), dtype=np.int64), ["all"]
    return stratum_table([data[c] for c in within])


def value_groups(data: Any, sensitive: str | Sequence[str] | None, tiers: Mapping[str, Any] | None,
                 infer_tier: str | Mapping[str, Any] | None, within: str | Sequence[str] | None,
                 seed: int = 0) -> tuple[pd.DataFrame, list[str], list[str], dict[str, Any]]:
    """The value audit's and the repair's groups as given: (the data with the inferred tier
    added as a column when asked, the sensitive columns, the strata columns, the parsed
    inferred-tier spec); a one-line error when no group is named."""
    from fairscan.groups.purchasing import INFERRED, infer_tiers, parse_infer_tier

    sensitive = [sensitive] if isinstance(sensitive, str) else list(sensitive or [])
    within = [within] if isinstance(within, str) else list(within or [])
    infer = parse_infer_tier(dict(infer_tier) if isinstance(infer_tier, Mapping) else infer_tier)
    if infer:
        data = data.assign(**{INFERRED: infer_tiers(data, infer, seed=seed)[0]})
        sensitive = [*sensitive, INFERRED]
    if not sensitive and not tiers:
        raise FairscanError("name the groups: --sensitive COL, --tiers COL=N or --infer-tier")
    return data, sensitive, within, infer


def audit_value(
    data: Any,
    *,
    value: str,
    favourable: str | None,
    sensitive: str | Sequence[str] | None = None,
    tiers: Mapping[str, TierSpec] | None = None,
    infer_tier: str | Mapping[str, Any] | None = None,
    intersect: bool = False,
    within: str | Sequence[str] | None = None,
    offered: str | None = None,
    reference: Mapping[str, str] | None = None,
    weights: str | None = None,
    tolerance: float = 0.05,
    min_group_size: int = 30,
    suppress_below: int = 10,
    confidence: float = 0.95,
    alpha: float = 0.05,
    n_boot: int = 1000,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
    cluster: str | None = None,
    engine: str = "auto",
    spark_master: str | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> ValueResult:
    """Audit the value of an offer (``value``: price, discount, limit, premium, rate) by group.

    ``favourable``: ``"higher"`` (a discount, a limit) or ``"lower"`` (a price, a premium, a
    rate). Groups as in :func:`fairscan.audit` (``sensitive``, ``tiers``, ``intersect``,
    ``infer_tier`` as the CLI's ``--infer-tier``: ``spend:CUSTOMER,AMOUNT[,N]`` or
    ``model:TIER[,PERSON]``). ``within``: strata columns (the product, a risk grade) for the
    decomposition into discrimination (``within``) and steering (``composition``).
    ``offered``: a 0/1 column; values are audited among the offered rows and each group's
    offered share is reported. ``tolerance``: the largest gap accepted, relative to the
    reference group's mean (0.05 = within ±5%). Rows with a missing value are counted per
    group as ``missing``, never dropped silently. Intervals and tests: ``METHODS``.
    ``progress(fraction, text)`` hears the pass over the data (DuckDB) and each attribute.
    ``cluster``: a column whose equal values mark rows that are not independent (the lines of
    one customer): every interval and test is then cluster-robust (``METHODS_CLUSTERED``).

    ``data``: a frame, a CSV/Parquet path (files larger than memory stream through DuckDB),
    ``dataset:NAME``, a DuckDB relation or a Spark DataFrame; ``engine``, ``spark_master``,
    ``memory_limit`` and ``threads`` as for :func:`fairscan.audit`. Every engine counts the
    same cells (:meth:`fairscan.engines.base.Engine.value_aggregate`), so the results agree.
    """
    check_favourable(favourable)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 < tolerance < 1:
        raise FairscanError(f"tolerance must be a relative gap in (0, 1), e.g. 0.05 for ±5%, got {plain(tolerance)}")
    # the sizes, the bootstrap, the level and alpha: checked as for every analysis (one home)
    checked = AuditPolicy(tolerances={}, min_group_size=min_group_size, suppress_below=suppress_below, n_boot=n_boot,
                          seed=seed, confidence=confidence, alpha=alpha)
    min_group_size, suppress_below, n_boot = checked.min_group_size, checked.suppress_below, checked.n_boot
    seed, confidence, alpha = checked.seed, checked.confidence, checked.alpha
    note = progress or (lambda fraction, text: None)
    within = [within] if isinstance(within, str) else list(within or [])
    sensitive = [sensitive] if isinstance(sensitive, str) else list(sensitive or [])
    columns = [value, *sensitive, *(tiers or {}), *within, *([offered] if offered else []),
               *([weights] if weights else []), *([cluster] if cluster else [])]
    used = list(dict.fromkeys(c for c in columns if c))  # the audited columns, for the data hash
    infer = parse_infer_tier(dict(infer_tier) if isinstance(infer_tier, Mapping) else infer_tier)
    if infer:  # a tier from every customer's spend, or from a proxy model, needs the rows at hand
        data = in_memory(data, engine, "--infer-tier", categorical=sensitive,
                         columns=None if infer.get("kind") == "model" else dict.fromkeys([*columns, *infer["columns"]]))
        data = data if isinstance(data, pd.DataFrame) else data.to_pandas()  # polars or Arrow
    data, sensitive, within, infer = value_groups(data, sensitive, tiers, infer, within, seed)
    columns += sensitive[-1:] if infer else []
    eng = make_engine(data, engine, spark_master, columns=list(dict.fromkeys(columns)), categorical=sensitive,
                      memory_limit=memory_limit, threads=threads,
                      progress=lambda f, text: note(0.5 * f, text))
    if eng.n_rows() == 0:
        raise FairscanError("the data has no rows")
    data_sha = (frame_sha256(data[used]) if isinstance(data, pd.DataFrame) and set(used) <= set(map(str, data.columns))
                else None)
    available = eng.columns()
    for col, role in ((value, "value"), (weights, "weight"), (offered, "offered"), (cluster, "cluster"),
                      *((c, "stratum (--within)") for c in within)):
        if col is not None and col not in available:
            raise FairscanError(f"{role} column '{col}' not found{suggest(col, available)}")
    groupings = resolve(GroupSpec(sensitive=sensitive, tiers=dict(tiers or {}),
                                  intersect=intersect and len(sensitive) + len(tiers or {}) > 1), eng)
    note(0.0, "counting the values")
    agg = eng.value_aggregate(groupings, value, within, weights, offered, cluster)
    n_cl = agg.n_clusters
    if eng is not data and hasattr(eng, "close"):
        eng.close()  # ours: its memory (DuckDB's buffers) is free for the bootstrap
    s_count = len(agg.strata)
    higher = favourable == "higher"
    first = agg.stats[0]  # every audited value is in each grouping's cells
    pooled = mv.collapse(np.zeros(len(first.n), dtype=np.int64), mv.ValueCells(first.value, first.n, first.w,
                                                                               first.w2))[1]
    cut = float(mv.quantiles(pooled, [0.75 if higher else 0.25])[0])
    labels_of = {g.grouping.name: (list(g.grouping.attributes[0].labels) if len(g.grouping.attributes) == 1
                                   else g.labels) for g in agg.stats}
    refs = resolve_references(labels_of, dict(reference or {}))
    for name in refs:
        if name not in labels_of:
            raise FairscanError(f"reference for unknown attribute '{name}'{suggest(name, list(labels_of))}")

    coarse = 0  # the points of a coarser bootstrap grid than the distinct values, if any
    pool = ThreadPoolExecutor(2)
    group_rows: list[dict[str, Any]] = []
    disp_rows: list[dict[str, Any]] = []
    dec_rows: list[dict[str, Any]] = []
    tables: list[CountTable] = []
    spans: list[tuple[int, int]] = []
    for i, st in enumerate(agg.stats):
        attr = st.grouping.name
        note(0.5 + 0.5 * i / len(agg.stats), f"attribute {i + 1} of {len(agg.stats)}: {attr}")
        labels = st.labels
        n_groups = len(labels)
        cells_gs = mv.ValueCells(st.value, st.n, st.w, st.w2)
        uniq = np.unique(st.value)  # every grouping's the same, unless the values were binned
        grid = mv.replicate_grid(uniq, n_boot)
        coarse = len(grid) if len(grid) < len(uniq) else coarse
        key_g, cells_g = mv.collapse(st.group, cells_gs, uniq)
        bounds = np.searchsorted(key_g, np.arange(n_groups + 1))
        per_group = [mv.part(cells_g, slice(bounds[g], bounds[g + 1])) for g in range(n_groups)]
        clustered = _clustered(st, cells_gs, uniq, n_groups, n_cl)
        counts = np.array([c.rows for c in per_group], dtype=np.int64)
        if attr in refs:
            if refs[attr] not in labels:
                raise FairscanError(f"reference group '{refs[attr]}' of '{attr}' has no rows")
            ref = labels.index(refs[attr])
        else:
            ref = int(np.argmax(counts))
        attrs = st.grouping.attributes
        keys = [tuple(a.labels[c] for a, c in zip(attrs, codes, strict=True)) for codes in st.codes.tolist()]
        tables.append(CountTable(tuple(a.name for a in attrs), keys, counts, protect=ref))
        spans.append((len(group_rows), len(group_rows) + n_groups))
        # each group draws from its own stream (seed, attribute, group name): its intervals
        # depend on its own cells only, whatever else is in the data
        streams = group_streams(seed, attr, labels)
        ref_reps = _replicates(per_group[ref], clustered[ref], n_boot, streams[ref], grid)
        for g in range(n_groups):
            c = per_group[g]
            row: dict[str, Any] = {"attribute": attr, "group": labels[g], "reference": g == ref,
                                   "count": int(c.rows), "missing": int(st.missing[g])}
            if offered is not None:
                rate = st.base[g] / st.rows[g]
                lo, hi = wilson(np.array([rate]), np.array([st.rows[g]]), confidence)
                row.update(offered_rate=rate, offered_rate_ci_low=float(lo[0]), offered_rate_ci_high=float(hi[0]))
            row.update(_group_numbers(c, cut, higher, confidence, clustered[g]))
            group_rows.append(row)
        if n_cl and len(ref_reps.median):  # clustered: the median's interval from the cluster bootstrap
            _median_from(group_rows[spans[-1][0] + ref], ref_reps, confidence)
        others = [g for g in range(n_groups) if g != ref]

        def gaps(g: int, attr: str = attr, labels: list[str] = labels, per_group: list[mv.ValueCells] = per_group,
                 ref: int = ref, ref_reps: mv.Replicates = ref_reps, streams: list[np.random.Generator] = streams,
                 grid: np.ndarray = grid, clustered: list[Any] = clustered,
                 start: int = spans[-1][0]) -> list[dict[str, Any]]:
            # its distances to the reference's replicates are taken block by block
            reps = _replicates(per_group[g], clustered[g], n_boot, streams[g], grid, against=ref_reps)
            if n_cl and len(reps.median):
                _median_from(group_rows[start + g], reps, confidence)
            return _disparities(attr, labels[g], labels[ref], per_group[g], per_group[ref], reps, ref_reps, grid,
                                cut, higher, confidence, clustered[g], clustered[ref])

        # numpy draws and reduces without the GIL: two threads, one stream per group
        for rows in pool.map(gaps, others):
            disp_rows += rows
        del ref_reps
        for g in others:
            if within:
                dec_rows.append(_decomposition_row(attr, labels[g], labels[ref], cells_gs, st.stratum, st.group, g,
                                                   ref, s_count, confidence, st.cluster, n_cl))

    pool.shutdown()
    note(1.0, f"audited {len(agg.stats)} attribute(s)")
    masks = suppress(tables, int(suppress_below))
    hidden: set[tuple[str, str]] = set()
    for (start, _), (sup, comp) in zip(spans, masks, strict=True):
        for i, (s_, c_) in enumerate(zip(sup, comp, strict=True)):
            row = group_rows[start + i]
            row["suppressed"] = bool(s_)
            row["suppression"] = ("complementary" if c_ else "primary") if s_ else None
            if s_:
                hidden.add((row["attribute"], row["group"]))
    group_frame = _blank_suppressed(pd.DataFrame(group_rows),
                                    keep=("attribute", "group", "reference", "suppressed", "suppression"))
    disp = pd.DataFrame(disp_rows, columns=_DISP_COLUMNS)
    disp["suppressed"] = [(a, g) in hidden or (a, r) in hidden
                          for a, g, r in zip(disp["attribute"], disp["group"], disp["reference_group"], strict=True)]
    # suppressed groups are not tested (as in the audit): Holm over the published tests only,
    # so no adjusted p-value depends on a hidden group
    p = np.where(disp["suppressed"].to_numpy(dtype=bool), np.nan, disp["p_value"].to_numpy(dtype=float))
    disp["p_value_adjusted"] = holm(p) if len(disp) else p
    disp = _blank_suppressed(disp, keep=("attribute", "group", "reference_group", "metric", "suppressed"))
    dec = pd.DataFrame(dec_rows, columns=_DEC_COLUMNS)
    dec["suppressed"] = [(a, g) in hidden or (a, r) in hidden
                         for a, g, r in zip(dec["attribute"], dec["group"], dec["reference_group"], strict=True)]
    dec = _blank_suppressed(dec, keep=("attribute", "group", "reference_group", "suppressed"))
    tol = Tolerance("relative", float(tolerance))
    findings = _findings(group_frame, disp, dec, tol, value, higher, within, min_group_size, suppress_below,
                         confidence, alpha)
    meta = {
        "analysis": "value", "value": value, "favourable": favourable, "n_rows": agg.n_rows,
        "fairscan_version": __version__, "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "engine": eng.name, "data_sha256": data_sha or agg.data_sha256,
        "data_hash": (VALUE_DATA_HASH if data_sha else agg.data_hash or "not computed: the data were read where "
                      f"they are ({eng.name})"),
        "n_values": pooled.rows, "attributes": list(labels_of),
        "within": within, "n_strata": s_count if within else 0, "offered": offered, "weights": weights,
        "reference": {a: next(r["group"] for r in group_rows if r["attribute"] == a and r["reference"])
                      for a in labels_of},
        "favourable_quarter": {"cut": cut, "rule": f"value {'>=' if higher else '<='} the pooled "
                                                   f"{'75th' if higher else '25th'} percentile"},
        "settings": {"tolerance": {"max_relative": float(tolerance)}, "min_group_size": int(min_group_size),
                     "suppress_below": int(suppress_below), "confidence": confidence, "alpha": alpha,
                     "n_boot": int(n_boot), "seed": int(seed)},
        "cluster": cluster, "n_clusters": n_cl,
        "methods": {**METHODS, **(METHODS_CLUSTERED if n_cl else {}), "quantiles": quantile_method(agg.precision),
                    **({"replicate_grid": f"the bootstrap's CDFs on {coarse:,} of the distinct values (evenly "
                                          "spaced ranks): the KS and Wasserstein intervals are approximate"}
                       if coarse else {})},
        "value_precision": agg.precision,
        "inferred_tier": {k: v for k, v in infer.items() if k != "columns"} or None,
    }
    return ValueResult(group_frame, disp, dec, findings, meta)


_DISP_COLUMNS = ["attribute", "group", "reference_group", "metric", "group_value", "reference_value", "difference",
                 "difference_ci_low", "difference_ci_high", "ratio", "ratio_ci_low", "ratio_ci_high", "p_value",
                 "p_value_adjusted"]
_DEC_COLUMNS = ["attribute", "group", "reference_group", "total", "within", "within_ci_low", "within_ci_high",
                "composition", "composition_ci_low", "composition_ci_high", "unmatched_group", "unmatched_reference",
                "reference_mean"]


def _blank_suppressed(frame: pd.DataFrame, keep: Sequence[str]) -> pd.DataFrame:
    """Blank every number of the rows marked ``suppressed`` (all but the ``keep`` columns): NaN
    in float columns, <NA> in whole-number ones, which become nullable, so the frame keeps
    numeric columns for Python users and the JSON writes null."""
    if not len(frame):
        return frame
    mask = frame["suppressed"].to_numpy(dtype=bool)
    out = frame.copy()
    for c in out.columns:
        if c in keep or not mask.any():
            continue
        col = out[c]
        if pd.api.types.is_integer_dtype(col) or pd.api.types.is_bool_dtype(col):
            out[c] = col.astype("Int64" if pd.api.types.is_integer_dtype(col) else "boolean")
        elif not pd.api.types.is_float_dtype(col):
            out[c] = col.astype(object)
        out.loc[mask, c] = np.nan if pd.api.types.is_float_dtype(out[c]) else pd.NA
    return out


#: a group's cells per (cluster, value), sorted by value, their cluster codes, the number of clusters
Clustered = tuple[mv.ValueCells, np.ndarray, int]


def _clustered(st: Any, cells: mv.ValueCells, uniq: np.ndarray, n_groups: int, n_cl: int) -> list[Clustered | None]:
    """Each group's cells per (cluster, value), when the rows come in clusters."""
    if not n_cl or st.cluster is None:
        return [None] * n_groups
    key, cc = mv.collapse(st.group * n_cl + st.cluster, cells, uniq)
    bounds = np.searchsorted(key, np.arange(n_groups + 1) * n_cl)
    out: list[Clustered | None] = []
    for g in range(n_groups):
        sl = slice(bounds[g], bounds[g + 1])
        part, codes = mv.part(cc, sl), key[sl] % n_cl
        order = np.argsort(part.u, kind="stable")
        out.append((mv.part(part, order), codes[order], n_cl))
    return out


def _replicates(c: mv.ValueCells, cl: Clustered | None, n_boot: int, rng: np.random.Generator, grid: np.ndarray,
                against: mv.Replicates | None = None) -> mv.Replicates:
    """The bootstrap of a group: over its cells, or over whole clusters when it has them."""
    if cl is None:
        return mv.replicates(c, n_boot, rng, grid, against=against)
    return mv.replicates(cl[0], n_boot, rng, grid, against=against, clusters=(cl[1], cl[2]))


def _median_from(row: dict[str, Any], reps: mv.Replicates, confidence: float) -> None:
    """A group's median interval from its (cluster) bootstrap replicates: percentile."""
    lo, hi = percentile_interval(reps.median[:, None], confidence)
    row["median_ci_low"], row["median_ci_high"] = float(lo[0]), float(hi[0])


def _share_size(c: mv.ValueCells, cl: Clustered | None, cut: float, higher: bool) -> tuple[float, float]:
    """(a group's share in the favourable quarter, the sample size its intervals use): the
    effective size, divided by the design effect of its clusters when it has them (Kish:
    the cluster-robust variance of the share over the independent-rows one, at least 1)."""
    fav, total = mv.share_beyond(c, cut, higher)
    share = fav / total if total > 0 else math.nan
    n = c.effective_n
    if cl is None or not (0 < share < 1) or n <= 1:
        return share, n
    cells, codes, n_cl = cl
    pick = cells.u >= cut if higher else cells.u <= cut
    var, _ = mv.cluster_mean(mv.ValueCells(pick.astype(np.float64), cells.n, cells.w, cells.w2), codes, n_cl)
    iid = share * (1 - share) / n
    deff = max(1.0, var / iid) if np.isfinite(var) and iid > 0 else 1.0
    return share, n / deff


def _group_numbers(c: mv.ValueCells, cut: float, higher: bool, confidence: float,
                   cl: Clustered | None = None) -> dict[str, Any]:
    """A group's distribution: mean with its t interval, median with its order-statistic
    interval, deciles and quartiles, and its share in the favourable quarter (Wilson). With
    clusters: the mean's cluster-robust t interval (G - 1 degrees of freedom), the share's
    Wilson interval on the design-effect size, the median's from the cluster bootstrap
    (filled in once it is drawn)."""
    mean, var = c.mean, c.mean_variance
    n_eff = c.effective_n
    df = n_eff - 1
    if cl is not None:
        var, df = mv.cluster_mean(cl[0], cl[1], cl[2])
    half = t_quantile(df, confidence) * math.sqrt(var) if df >= 1 and np.isfinite(var) else math.nan
    q = mv.quantiles(c, [0.5, 0.1, 0.25, 0.75, 0.9])
    med_lo, med_hi = mv.median_interval(c, confidence) if cl is None else (math.nan, math.nan)
    share, n_share = _share_size(c, cl, cut, higher)
    lo, hi = wilson(np.array([share]), np.array([n_share]), confidence)
    return {"mean": mean, "mean_ci_low": mean - half, "mean_ci_high": mean + half, "median": float(q[0]),
            "median_ci_low": med_lo, "median_ci_high": med_hi, "p10": float(q[1]), "p25": float(q[2]),
            "p75": float(q[3]), "p90": float(q[4]), "share_favourable": share,
            "share_favourable_ci_low": float(lo[0]), "share_favourable_ci_high": float(hi[0])}


def _disparities(attr: str, group: str, ref: str, g: mv.ValueCells, r: mv.ValueCells, bg: mv.Replicates,
                 br: mv.Replicates, grid: np.ndarray, cut: float, higher: bool, confidence: float,
                 gcl: Clustered | None = None, rcl: Clustered | None = None) -> list[dict[str, Any]]:
    """The five disparity rows of one group against the reference."""
    nan = math.nan
    out = []

    def row(metric: str, gv: float, rv: float, d: float, d_ci: tuple[float, float], ratio: float,
            r_ci: tuple[float, float], p: float) -> None:
        out.append({"attribute": attr, "group": group, "reference_group": ref, "metric": metric, "group_value": gv,
                    "reference_value": rv, "difference": d, "difference_ci_low": d_ci[0], "difference_ci_high": d_ci[1],
                    "ratio": ratio, "ratio_ci_low": r_ci[0], "ratio_ci_high": r_ci[1], "p_value": p})

    m = (mv.mean_comparison(g, r, confidence) if gcl is None or rcl is None else
         mv.cluster_mean_comparison(gcl[0], gcl[1], rcl[0], rcl[1], gcl[2], confidence))
    row("mean", m.group, m.reference, m.difference, m.difference_ci, m.ratio, m.ratio_ci, m.p_value)
    med_g, med_r = float(mv.quantiles(g, [0.5])[0]), float(mv.quantiles(r, [0.5])[0])
    boot = len(bg.median) > 0 and len(br.median) > 0
    if boot:
        d_star = bg.median - br.median
        lo, hi = percentile_interval(d_star[:, None], confidence)
        p_med = float(min(1.0, 2 * min((d_star <= 0).mean(), (d_star >= 0).mean()))) if len(d_star) else nan
        med_ci = (float(lo[0]), float(hi[0]))
    else:
        med_ci, p_med = (nan, nan), nan
    row("median", med_g, med_r, med_g - med_r, med_ci, med_g / med_r if med_r else nan, (nan, nan), p_med)
    sg, ng = _share_size(g, gcl, cut, higher)
    sr, nr = _share_size(r, rcl, cut, higher)
    xg, xr = (sg * ng if np.isfinite(sg) else 0.0), (sr * nr if np.isfinite(sr) else 0.0)
    dl, dh = newcombe_difference(np.array([xg]), np.array([ng]), np.array([xr]), np.array([nr]), confidence)
    rl, rh = ratio_interval(np.array([xg]), np.array([ng]), np.array([xr]), np.array([nr]), confidence)
    p_share = float(two_proportion_test(np.array([xg]), np.array([ng]), np.array([xr]), np.array([nr]))[0][0])
    row("share_favourable", sg, sr, sg - sr, (float(dl[0]), float(dh[0])), sg / sr if sr else nan,
        (float(rl[0]), float(rh[0])), p_share)
    ks = mv.ks_distance(g, r)
    w1 = mv.wasserstein_distance(g, r)
    if boot:
        ks_star, w_star = mv.replicate_distances(bg, br, grid)
        kl, kh = percentile_interval(ks_star[:, None], confidence)
        wl, wh = percentile_interval(w_star[:, None], confidence)
        ks_ci, w_ci = (float(kl[0]), float(kh[0])), (float(wl[0]), float(wh[0]))
    else:
        ks_ci = w_ci = (nan, nan)
    row("ks", nan, nan, ks, ks_ci, nan, (nan, nan), mv.ks_pvalue(ks, g, r))
    row("wasserstein", nan, nan, w1, w_ci, nan, (nan, nan), nan)
    return out


def _decomposition_row(attr: str, group: str, ref: str, cells: mv.ValueCells, strata: np.ndarray,
                       owners: np.ndarray, g: int, r: int, n_strata: int, confidence: float,
                       cluster: np.ndarray | None = None, n_clusters: int = 0) -> dict[str, Any]:
    """One decomposition row: the point estimate and its delta-method intervals (with
    clusters: each cluster's influence added up first, cluster-robust)."""
    side = {}
    codes = {}
    for who in (g, r):
        pick = owners == who
        side[who] = (strata[pick], mv.part(cells, pick))
        codes[who] = None if cluster is None else cluster[pick]
    by = {who: {int(s): mv.part(c, st == s) for s in np.unique(st)} for who, (st, c) in side.items()}
    d = mv.decomposition(by[g], by[r])
    se_w, se_c = mv.decomposition_se(*side[g], *side[r], n_strata=n_strata,
                                     clusters=None if cluster is None else (codes[g], codes[r], n_clusters))
    z = z_value(confidence)
    return {"attribute": attr, "group": group, "reference_group": ref, "total": d.total, "within": d.within,
            "within_ci_low": d.within - z * se_w, "within_ci_high": d.within + z * se_w,
            "composition": d.composition, "composition_ci_low": d.composition - z * se_c,
            "composition_ci_high": d.composition + z * se_c, "unmatched_group": d.unmatched_group,
            "unmatched_reference": d.unmatched_reference, "reference_mean": side[r][1].mean}


def _findings(groups: pd.DataFrame, disp: pd.DataFrame, dec: pd.DataFrame, tol: Tolerance, value: str,
              higher: bool, within: Sequence[str], min_group_size: int, suppress_below: int, confidence: float,
              alpha: float) -> pd.DataFrame:
    """Verdicts on the mean gap (the test: Welch, Holm-adjusted; the interval: the published
    ratio interval) and, with strata, on its parts within strata and from the strata mix
    (their delta-method intervals relative to the reference mean, no test of their own),
    each with a sentence that says who is worse off."""
    sizes = {(r["attribute"], r["group"]): r for r in groups.to_dict("records")}
    dec_by = {(r["attribute"], r["group"]): r for r in dec.to_dict("records")}
    strata = " x ".join(within)
    rows = []
    for r in disp[disp["metric"] == "mean"].to_dict("records"):
        key = (r["attribute"], r["group"])
        g, ref = sizes[key], sizes[(r["attribute"], r["reference_group"])]
        who = f"{r['attribute']} = {r['group']}"
        base = {"attribute": r["attribute"], "group": r["group"], "reference_group": r["reference_group"]}
        names = ["mean", *(["within", "composition"] if within and key in dec_by else [])]
        if r["suppressed"]:
            hidden = g if g["suppressed"] else ref
            text = (f"{who}: suppressed so that a smaller group's numbers cannot be recovered from the published "
                    "totals; no verdict." if hidden["suppression"] == "complementary" else
                    f"{who}: fewer than {suppress_below} rows with a value (it or its reference), so the numbers are "
                    "suppressed to protect privacy; no verdict.")
            rows += [{**base, "metric": m, "verdict": "insufficient", "message": text} for m in names]
            continue
        small = [(n, label) for n, label in ((g["count"], "it"), (ref["count"], f"the reference {r['reference_group']}"))
                 if n < min_group_size]
        if small:
            n, label = small[0]
            text = (f"{who}: {label} has only {n} rows with a value (minimum {min_group_size}); too few to tell "
                    "whether it gets a different value.")
            rows += [{**base, "metric": m, "verdict": "insufficient", "message": text} for m in names]
            continue
        ref_mean = r["reference_value"]
        facts = (f"{who} ({g['count']:,} rows): mean {value} {number(r['group_value'])} vs "
                 f"{number(ref_mean)} for {r['reference_group']} ({ref['count']:,} rows)")
        parts = {"mean": (r["difference"], (r["difference_ci_low"], r["difference_ci_high"]), "overall")}
        if "within" in names:
            d = dec_by[key]
            parts["within"] = (d["within"], (d["within_ci_low"], d["within_ci_high"]), f"for the same {strata}")
            parts["composition"] = (d["composition"], (d["composition_ci_low"], d["composition_ci_high"]),
                                    f"from a different mix of {strata}")
        for name, (diff, ci, where) in parts.items():
            rel = _relative(diff, ref_mean)
            if name == "mean" and not (is_missing(r["ratio_ci_low"]) or is_missing(r["ratio_ci_high"])):
                # the published ratio interval (the reference mean's own uncertainty included)
                rel_ci = (r["ratio_ci_low"] - 1, r["ratio_ci_high"] - 1)
            else:  # the parts: relative to the reference mean, taken as known
                lo_, hi_ = sorted((_relative(ci[0], ref_mean), _relative(ci[1], ref_mean)))
                rel_ci = (lo_, hi_)
            if name == "mean":
                v = verdict(tol, diff, 1 + rel, (1 + rel_ci[0], 1 + rel_ci[1]), r["p_value_adjusted"], alpha)
            else:
                v = interval_verdict(tol, (1 + rel_ci[0], 1 + rel_ci[1]))
            gap = _gap_words(rel, rel_ci, higher, where, confidence)
            if v == "fail":
                why = (f"outside the tolerance ({tol.describe()})" + (
                    f" and unlikely to be chance (Holm-adjusted {p_value(r['p_value_adjusted'], sentence=True)})" if name == "mean"
                    else ": the whole interval is outside it"))
            elif v == "pass":
                why = f"the whole interval is within the tolerance ({tol.describe()})"
            else:
                why = f"not enough evidence either way for the tolerance ({tol.describe()})"
            rows.append({**base, "metric": name, "verdict": v, "message": f"{facts}; {gap}: {why}."})
    return pd.DataFrame(rows, columns=["attribute", "group", "reference_group", "metric", "verdict", "message"])


def _relative(x: float, ref: float) -> float:
    return x / ref if ref and not is_missing(x) else math.nan


def _gap_words(rel: float, ci: tuple[float, float], higher: bool, where: str, confidence: float) -> str:
    """'10.4% higher for the same product (95% CI 9.9% to 10.9%), worse for them'."""
    if is_missing(rel):
        return f"{where}: undefined"
    direction = "higher" if rel > 0 else "lower" if rel < 0 else "no different"
    worse = (rel < 0) if higher else (rel > 0)
    who = "" if rel == 0 else (", worse for them" if worse else ", better for them")
    level = f"{round(100 * confidence)}%"
    if is_missing(ci[0]) or is_missing(ci[1]):
        return f"{abs(100 * rel):.1f}% {direction} {where} (no {level} interval: the values do not vary enough){who}"
    return (f"{abs(100 * rel):.1f}% {direction} {where} ({level} CI {100 * ci[0]:+.1f}% to {100 * ci[1]:+.1f}%)"
            f"{who}")
