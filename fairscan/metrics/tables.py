"""From sufficient statistics to the audit's tables: groups, disparities, summary, findings.

Pure functions of :class:`~fairscan.engines.base.CellStats`; no row is read here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from fairscan.errors import FairscanError
from fairscan.metrics.classification import DESCRIPTIONS, rates
from fairscan.metrics.stats import (
    bootstrap_cells,
    effective_n,
    group_streams,
    holm,
    noisy_effective_n,
    percentile_interval,
    two_proportion_test,
    wilson,
)
from fairscan.policy import AuditPolicy, Gap, four_fifths_flags, impact_ratios, judge
from fairscan.privacy import CountTable, suppress
from fairscan.types import CellStats

__all__ = ["GroupingTables", "Settings", "analyse", "count_tables"]


@dataclass(frozen=True)
class Settings(AuditPolicy):
    """Everything the tables depend on besides the counts: the policy, the metrics the data
    allows and each attribute's reference group."""

    metrics: Sequence[str] = ()
    reference: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, policy: AuditPolicy, metrics: Sequence[str], reference: Mapping[str, str]) -> Settings:
        """The policy applied to an audit: only the tolerances of ``metrics`` are judged."""
        values = {f.name: getattr(policy, f.name) for f in fields(AuditPolicy)}
        values["tolerances"] = {m: t for m, t in policy.tolerances.items() if m in metrics}
        return cls(**values, metrics=list(metrics), reference=dict(reference))


@dataclass
class GroupingTables:
    """Per-grouping intermediate results (kept for the disparity and findings steps)."""

    stats: CellStats
    labels: list[str]
    count: np.ndarray
    suppressed: np.ndarray
    rate: np.ndarray  # (G, M)
    num: np.ndarray  # (G, M) numerators on the test scale (counts, or effective counts)
    den: np.ndarray  # (G, M)
    ref: int
    boot: np.ndarray | None  # (B, G, M) replicate rates
    complementary: np.ndarray | None = None


def _analyse_grouping(st: CellStats, s: Settings, suppressed: np.ndarray,
                      complementary: np.ndarray) -> GroupingTables:
    labels = st.labels
    count = st.n.sum(axis=1)
    cells = st.w if st.w is not None else st.n.astype(float)
    rate, num, den = rates(cells, s.metrics)
    if st.w is not None:
        # test and interval scale: Kish effective size of each rate's denominator
        _, _, den_w2 = rates(st.w2, s.metrics)
        den = effective_n(den, den_w2)
        num = rate * den
    elif st.noise_var is not None:
        # differentially private counts: the size at which the rate has its real variance
        _, var_num, var_den = rates(st.noise_var, s.metrics)
        den = noisy_effective_n(rate, den, var_num, var_den - var_num)
        num = rate * den
    rate[suppressed] = np.nan
    name = st.grouping.name
    if name in s.reference:
        want = s.reference[name]  # an exact label: see fairscan.groups.resolve_references
        ref = labels.index(want)
        if suppressed[ref]:
            raise FairscanError(
                f"reference group '{want}' of '{name}' has fewer than {s.suppress_below} rows; choose a larger one"
                if not complementary[ref] else
                f"reference group '{want}' of '{name}' must be suppressed to protect a small group; choose another"
            )
    else:
        if suppressed.all():
            raise FairscanError(
                f"every group of '{name}' is suppressed (fewer than {s.suppress_below} rows, or suppressed so "
                "that a small group cannot be recovered from the totals); audit larger groups or lower "
                "--suppress-below")
        ref = int(np.argmax(np.where(suppressed, -1, count)))
    boot = None
    if s.n_boot > 0:
        reps = bootstrap_cells(st.n, st.w, st.w2, s.n_boot, group_streams(s.seed, name, labels), st.noise_var)
        boot = rates(reps, s.metrics)[0]
        boot[:, suppressed, :] = np.nan
    return GroupingTables(st, labels, count, suppressed, rate, num, den, ref, boot, complementary)


def count_tables(stats: list[CellStats], reference: dict[str, str]) -> list[CountTable]:
    """The audit's published group tables as the suppression rule reads them (the user's
    reference groups protected)."""
    out = []
    for st in stats:
        attrs = st.grouping.attributes
        keys = [tuple(a.labels[int(c)] for a, c in zip(attrs, row, strict=True)) for row in st.codes]
        labels = st.labels
        want = reference.get(st.grouping.name)
        out.append(CountTable(tuple(a.column for a in attrs), keys, st.n.sum(axis=1),
                              labels.index(want) if want in labels else None))
    return out


def analyse(stats: list[CellStats], s: Settings, masks: list[tuple[np.ndarray, np.ndarray]] | None = None,
            ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Groups, disparities, summary and findings tables for all groupings. ``masks``: the
    (suppressed, complementary) groups when they are already decided (a counts file that
    withholds them); else the one suppression rule decides them."""
    if masks is None:
        masks = suppress(count_tables(stats, s.reference), s.suppress_below)
    parts = [_analyse_grouping(st, s, sup, comp) for st, (sup, comp) in zip(stats, masks, strict=True)]
    groups = pd.concat([_group_rows(t, s) for t in parts], ignore_index=True)
    disp = pd.concat([_disparity_rows(t, s) for t in parts], ignore_index=True)
    if len(disp):
        disp["p_value_adjusted"] = holm(disp["p_value"].to_numpy(dtype=float))
    else:
        disp["p_value_adjusted"] = pd.Series(dtype=float)
    summary = pd.concat([_summary_rows(t, s) for t in parts], ignore_index=True)
    findings = _findings(disp, groups, s)
    return groups, disp, summary, findings


def _group_rows(t: GroupingTables, s: Settings) -> pd.DataFrame:
    st = t.stats
    out: dict[str, object] = {
        "attribute": [st.grouping.name] * len(t.labels),
        "group": t.labels,
        "count": pd.array(np.where(t.suppressed, None, t.count), dtype="Int64"),
        "suppressed": t.suppressed,
        "suppression": [("complementary" if c else "primary") if x else None
                        for x, c in zip(t.suppressed, t.complementary, strict=True)],
        "reference": np.arange(len(t.labels)) == t.ref,
    }
    if st.w is not None:
        wsum = st.w.sum(axis=1)
        out["weight_sum"] = np.where(t.suppressed, np.nan, wsum)
        out["effective_n"] = np.where(t.suppressed, np.nan, effective_n(wsum, st.w2.sum(axis=1)))
    lo, hi = wilson(t.rate, t.den, s.confidence)
    for j, m in enumerate(s.metrics):
        out[m] = t.rate[:, j]
        out[f"{m}_ci_low"] = lo[:, j]
        out[f"{m}_ci_high"] = hi[:, j]
    if "selection_rate" in s.metrics:
        sr = t.rate[:, s.metrics.index("selection_rate")]
        impact, _ = impact_ratios(sr)
        out["impact_ratio"] = impact
        out["four_fifths"] = pd.array(four_fifths_flags(impact), dtype="boolean")
    return pd.DataFrame(out)


def _disparity_rows(t: GroupingTables, s: Settings) -> pd.DataFrame:
    g_idx = np.array([g for g in range(len(t.labels)) if g != t.ref], dtype=int)
    rows = []
    r = t.ref
    sup = t.suppressed[g_idx][:, None] | t.suppressed[r]
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = t.rate[g_idx] - t.rate[r]
        ratio = np.where(t.rate[r] > 0, t.rate[g_idx] / t.rate[r], np.nan)
        # suppressed groups are not tested: their counts take no part (nor in Fisher's batch)
        p, test = two_proportion_test(np.where(sup, np.nan, t.num[g_idx]), t.den[g_idx], t.num[r], t.den[r])
        if t.boot is not None:
            bd = t.boot[:, g_idx, :] - t.boot[:, [r], :]
            br = np.where(t.boot[:, [r], :] > 0, t.boot[:, g_idx, :] / t.boot[:, [r], :], np.nan)
            d_lo, d_hi = percentile_interval(bd, s.confidence)
            r_lo, r_hi = percentile_interval(br, s.confidence)
        else:
            d_lo = d_hi = r_lo = r_hi = np.full(diff.shape, np.nan)
    p = np.where(sup, np.nan, p)
    for j, m in enumerate(s.metrics):
        for i, g in enumerate(g_idx):
            rows.append(
                {
                    "attribute": t.stats.grouping.name,
                    "metric": m,
                    "group": t.labels[g],
                    "reference": t.labels[r],
                    "group_count": None if t.suppressed[g] else int(t.count[g]),
                    "reference_count": int(t.count[r]),
                    "group_value": t.rate[g, j],
                    "reference_value": t.rate[r, j],
                    "difference": diff[i, j],
                    "ratio": ratio[i, j],
                    "difference_ci_low": d_lo[i, j],
                    "difference_ci_high": d_hi[i, j],
                    "ratio_ci_low": r_lo[i, j],
                    "ratio_ci_high": r_hi[i, j],
                    "p_value": p[i, j],
                    "test": test[i, j] if not sup[i, 0] else "",
                    "suppressed": bool(sup[i, 0]),
                    "suppression": ("complementary" if t.complementary[g] else "primary") if t.suppressed[g]
                    else None,
                }
            )
    cols = [
        "attribute", "metric", "group", "reference", "group_count", "reference_count",
        "group_value", "reference_value", "difference", "ratio", "difference_ci_low",
        "difference_ci_high", "ratio_ci_low", "ratio_ci_high", "p_value", "test", "suppressed", "suppression",
    ]
    df = pd.DataFrame(rows, columns=cols)
    df["group_count"] = df["group_count"].astype("Int64")
    return df


def _summary_rows(t: GroupingTables, s: Settings) -> pd.DataFrame:
    """Between-groups spread per metric (max - min, min / max), over unsuppressed groups.

    Equal to fairlearn's ``MetricFrame.difference()/ratio()`` (method="between_groups"), and
    for selection_rate to ``demographic_parity_difference/ratio``; the ``equalized_odds``
    row is the worse of the true- and false-positive-rate spreads, as in fairlearn.
    """
    rows = []
    for j, m in enumerate(s.metrics):
        v = t.rate[:, j]
        v = v[np.isfinite(v)]
        if len(v) == 0:
            d = r = np.nan
        else:
            d = float(v.max() - v.min())
            r = float(v.min() / v.max()) if v.max() > 0 else np.nan
        rows.append({"attribute": t.stats.grouping.name, "metric": m, "difference": d, "ratio": r,
                     "groups": len(v)})
    by = {row["metric"]: row for row in rows}
    if "true_positive_rate" in by and "false_positive_rate" in by:
        tp, fp = by["true_positive_rate"], by["false_positive_rate"]
        rows.append({
            "attribute": t.stats.grouping.name,
            "metric": "equalized_odds",
            "difference": max(tp["difference"], fp["difference"]),
            "ratio": min(tp["ratio"], fp["ratio"]),
            "groups": min(tp["groups"], fp["groups"]),
        })
    return pd.DataFrame(rows)


def _findings(disp: pd.DataFrame, groups: pd.DataFrame, s: Settings) -> pd.DataFrame:
    """A finding per judged disparity, in the words of :func:`fairscan.policy.judge`."""
    rows = []
    judged = disp[disp["metric"].isin(list(s.tolerances))]
    for row in judged.itertuples(index=False):
        tol = s.tolerances[row.metric]
        gap = Gap(who=f"{row.attribute} = {row.group}", unit="rows", what=DESCRIPTIONS[row.metric],
                  reference=row.reference, group_count=row.group_count, reference_count=row.reference_count,
                  group_value=row.group_value, reference_value=row.reference_value, difference=row.difference,
                  ratio=row.ratio, ci_ratio=(row.ratio_ci_low, row.ratio_ci_high),
                  ci_difference=(row.difference_ci_low, row.difference_ci_high), p_adjusted=row.p_value_adjusted,
                  suppression=row.suppression if row.suppressed else None)
        v, msg = judge(gap, tol, min_group_size=s.min_group_size, suppress_below=s.suppress_below,
                       confidence=s.confidence, alpha=s.alpha, adjustment="Holm")
        rows.append({
            "attribute": row.attribute, "metric": row.metric, "group": row.group,
            "reference": row.reference, "verdict": v, "message": msg,
            "tolerance": tol.describe(),
        })
    cols = ["attribute", "metric", "group", "reference", "verdict", "message", "tolerance"]
    return pd.DataFrame(rows, columns=cols)
