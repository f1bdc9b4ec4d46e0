"""Repair an offer's value so that the groups' distributions meet: the Wasserstein barycenter.

In one dimension the weighted Wasserstein-2 barycenter of the groups' value distributions has
the quantile function ``Q*(q) = sum_g pi_g Q_g(q)`` (pi_g: the groups' weight shares), and the
optimal map of group g onto it sends a value at quantile q of its group to ``Q*(q)`` (Chzhen,
Denis, Hebiri, Oneto & Pontil, NeurIPS 2020: the fair regression that keeps the most of the
original values). With strata (``within``) each stratum is repaired on its own, so the same
product ends at the same price distribution for every group and the product mix is left as it
is. A partial repair moves each value part of the way, ``v' = (1 - L) v + L T(v)`` (Feldman et
al., KDD 2015); ``keep_total`` rescales the repaired values so that the total (revenue, or
discount spend) is unchanged.

Everything is computed on value cells: every row of one value in one group and stratum moves
to the same new value, the average of the barycenter's quantile function over the cell's block
of quantiles (so each group's repaired mean is exactly the barycenter's), and each group's
quantile function is numpy's weighted ``inverted_cdf``. Each amount is then judged by the value
audit itself (:func:`fairscan.value.audit_value`), so its gaps, verdicts and suppression are
the audit's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairscan.errors import FairscanError, plain
from fairscan.formatting import jsonable, number, pct

__all__ = ["AMOUNTS", "ValueRepairResult", "barycenter_map", "repair_values"]

#: the amounts swept when none is given
AMOUNTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def barycenter_map(groups: np.ndarray, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The value each cell is sent to by the repair onto the groups' weighted barycenter.

    Cells are (group, value) pairs of one stratum, sorted by value within each group, with
    their weights; ``groups`` are small integer codes. A cell holds the block [a, b) of its
    group's quantiles; it goes to the average of the barycenter's quantile function
    ``Q*(q) = sum_h pi_h Q_h(q)`` over [a, b) (the barycentric projection of the optimal
    transport plan: tied rows stay together and each group ends with exactly the barycenter's
    mean). ``Q_h`` is group h's weighted inverted-CDF quantile function, whose integral is
    piecewise linear, so the averages are exact sums.
    """
    out = np.empty(len(values), dtype=np.float64)
    members = {int(g): np.flatnonzero(groups == g) for g in np.unique(groups)}
    totals = {g: float(weights[idx].sum()) for g, idx in members.items()}
    grand = sum(totals.values())
    if grand <= 0:
        return values.astype(np.float64).copy()
    # per group: the quantile shares where its steps start, and the integral of Q_h up to each
    steps, integral = {}, {}
    for h, idx in members.items():
        if totals[h] <= 0:
            continue
        share = weights[idx] / totals[h]
        steps[h] = np.r_[0.0, np.cumsum(share)[:-1]]
        integral[h] = np.r_[0.0, np.cumsum(values[idx] * share)[:-1]]

    def integral_to(h: int, t: np.ndarray) -> np.ndarray:
        """The integral of Q_h from 0 to t (piecewise linear between its steps)."""
        k = np.clip(np.searchsorted(steps[h], t, side="right") - 1, 0, len(steps[h]) - 1)
        return integral[h][k] + values[members[h]][k] * (t - steps[h][k])

    for g, idx in members.items():
        if totals[g] <= 0:
            out[idx] = values[idx]
            continue
        b = np.cumsum(weights[idx]) / totals[g]
        a = np.r_[0.0, b[:-1]]
        width = b - a
        target = np.zeros(len(idx))
        for h in steps:
            with np.errstate(invalid="ignore", divide="ignore"):
                avg = (integral_to(h, b) - integral_to(h, a)) / width
            # a cell of zero weight sits at a single quantile: Q_h there
            point = values[members[h]][np.clip(np.searchsorted(steps[h], a, side="right") - 1, 0, None)]
            target += totals[h] / grand * np.where(width > 0, avg, point)
        out[idx] = target
    return out


@dataclass
class ValueRepairResult:
    """The repair at each amount: its gaps (as the value audit reports them), what it costs,
    and the recommendation; ``repaired[amount]`` holds every row's repaired value."""

    points: list[dict[str, Any]]
    recommended: dict[str, Any]
    meta: dict[str, Any]
    repaired: dict[float, np.ndarray] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        from fairscan.schemas import SCHEMA_VERSION

        return {"schema_version": SCHEMA_VERSION, **self.meta, "points": jsonable(self.points),
                "recommended": jsonable(self.recommended)}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=str)

    def to_text(self) -> str:
        m = self.meta
        lines = [f"value repair of '{m['value']}' ({m['favourable']} is better) towards the groups' barycenter"
                 + (f" within {', '.join(m['within'])}" if m["within"] else "") + f", {m['n_values']:,} values",
                 f"{'amount':>7} {'fail':>5} {'largest mean gap':>17} {'largest KS':>11} {'total change':>13} "
                 f"{'worse off':>10} {'largest change':>15}"]
        for p in self.points:
            lines.append(f"{p['amount']:>7.2f} {p['fail']:>5} {pct(p['largest_mean_gap']):>17} "
                         f"{number(p['largest_ks'], 3):>11} {pct(p['total_change_relative']):>13} "
                         f"{pct(p['share_worse']):>10} {number(p['largest_change']):>15}")
        r = self.recommended
        lines.append(f"recommended: amount {r['amount']:g} — {r['why']}" if r["amount"] is not None
                     else f"recommended: none — {r['why']}")
        return "\n".join(lines) + "\n"

    def save_values(self, path: Any, amount: float | None = None, key: pd.Series | None = None) -> Any:
        """Write the repaired values (at ``amount``, default the recommended one) to Parquet:
        ``row`` (0-based input position, or the ``key`` column's values) and the repaired value
        under the value column's name. The only per-row output, written only on request."""
        from pathlib import Path

        amount = self.recommended["amount"] if amount is None else amount
        if amount is None:
            raise FairscanError("no amount of repair passes the tolerance, so none is saved: choose one with "
                                "--amount L")
        if float(amount) not in self.repaired:
            raise FairscanError(f"amount {plain(amount)} was not computed; computed: "
                                f"{', '.join(f'{a:g}' for a in self.repaired)}")
        values = self.repaired[float(amount)]
        frame = pd.DataFrame({"row" if key is None else str(key.name): np.arange(len(values)) if key is None
                              else key.to_numpy(), self.meta["value"]: values})
        out = Path(path)
        try:
            frame.to_parquet(out, index=False)
        except OSError as e:
            raise FairscanError(f"cannot write the repaired values to '{out}': {e.strerror}") from None
        return out


def repair_values(
    data: pd.DataFrame,
    *,
    value: str,
    favourable: str | None,
    sensitive: str | Sequence[str] | None = None,
    tiers: Mapping[str, Any] | None = None,
    infer_tier: str | Mapping[str, Any] | None = None,
    within: str | Sequence[str] | None = None,
    weights: str | None = None,
    amount: float | None = None,
    keep_total: bool = False,
    tolerance: float = 0.05,
    min_group_size: int = 30,
    suppress_below: int = 10,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
    cluster: str | None = None,
) -> ValueRepairResult:
    """Repair ``value`` towards the groups' barycenter (within each stratum of ``within``) at
    ``amount`` in [0, 1], or at 0, 0.25, 0.5, 0.75 and 1; judge each amount with the value
    audit and recommend the smallest that passes (no failed mean or within gap). The groups
    are the cross of the attributes given (one attribute: its groups). ``cluster``: rows with
    one value of it belong together (a customer); each amount is then judged with
    cluster-robust intervals. ``progress(fraction, text)`` is told before each amount."""
    from fairscan.groups import assign_groups
    from fairscan.value import (
        JUDGED_BY_DEFAULT,
        audit_value,
        check_favourable,
        stratum_codes,
        value_column,
        value_groups,
        weight_column,
    )

    check_favourable(favourable)
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float)
                               or not 0 <= amount <= 1):
        raise FairscanError(f"--amount must be between 0 (no repair) and 1 (full repair), got {plain(amount)}")
    data, sensitive, within, _ = value_groups(data, sensitive, tiers, infer_tier, within, seed)
    v = value_column(data, value)
    w = weight_column(data, weights)
    w = np.ones(len(data)) if w is None else w
    strata, _ = stratum_codes(data, within)
    groups = assign_groups(data, sensitive, tiers, intersect=len(sensitive) + len(tiers or {}) > 1)
    attr = str(groups.columns[-1])  # the single attribute, or the cross of several
    g = groups[attr].cat.codes.to_numpy().astype(np.int64)
    valid = ~np.isnan(v)
    n_groups = int(g.max()) + 1
    target = v.copy()
    # one sort of the valid rows by (stratum, group, value): cells are runs of equal keys
    idx = np.flatnonzero(valid)
    order = idx[np.lexsort((v[idx], g[idx], strata[idx]))]
    key = (strata[order] * n_groups + g[order]).astype(np.int64)
    vals = v[order]
    start = np.flatnonzero(np.r_[True, (key[1:] != key[:-1]) | (vals[1:] != vals[:-1])])
    cell_of_row = np.repeat(np.arange(len(start)), np.diff(np.r_[start, len(order)]))
    cell_key, cell_v = key[start], vals[start]
    cell_w = np.add.reduceat(w[order], start) if len(start) else np.zeros(0)
    cell_t = np.empty(len(start))
    s_of = cell_key // n_groups
    bounds = np.flatnonzero(np.r_[True, s_of[1:] != s_of[:-1]]) if len(start) else np.zeros(0, dtype=np.int64)
    for lo, hi in zip(bounds, np.r_[bounds[1:], len(start)], strict=True):
        cell_t[lo:hi] = barycenter_map(cell_key[lo:hi] % n_groups, cell_v[lo:hi], cell_w[lo:hi])
    target[order] = cell_t[cell_of_row]

    amounts = [float(amount)] if amount is not None else list(AMOUNTS)
    higher = favourable == "higher"
    total = float(w[valid] @ v[valid])
    points, repaired = [], {}
    # judged on the groups it repairs: the cross of the attributes (and each attribute alone)
    audit_kw = dict(value=value, favourable=favourable, sensitive=sensitive, tiers=tiers, intersect=True,
                    within=within or None,
                    weights=weights, tolerance=tolerance, min_group_size=min_group_size,
                    suppress_below=suppress_below, n_boot=0, seed=seed, cluster=cluster)
    note = progress or (lambda fraction, text: None)
    for i, a in enumerate(amounts):
        note(i / len(amounts), f"amount {a:g} ({i + 1} of {len(amounts)})")
        new = np.where(valid, (1 - a) * v + a * target, np.nan)
        if keep_total:
            now = float(w[valid] @ new[valid])
            if now != 0:
                new = np.where(valid, new * (total / now), np.nan)
        repaired[a] = new
        res = audit_value(data.assign(**{value: new}), **audit_kw)
        change = new[valid] - v[valid]
        worse = change < 0 if higher else change > 0
        mean_rows = res.disparities[res.disparities["metric"] == "mean"]
        ks_rows = res.disparities[res.disparities["metric"] == "ks"]
        rel = [abs(r["difference"] / r["reference_value"]) for r in mean_rows.to_dict("records")
               if not r["suppressed"] and r["reference_value"]]
        verdicts = res.findings[res.findings["metric"].isin(JUDGED_BY_DEFAULT)]["verdict"]
        points.append({
            "amount": a, "fail": int((verdicts == "fail").sum()), "insufficient": int((verdicts == "insufficient").sum()),
            "largest_mean_gap": max(rel) if rel else math.nan,
            "largest_ks": float(pd.to_numeric(ks_rows["difference"], errors="coerce").max()) if len(ks_rows) else math.nan,
            "total_change": float(w[valid] @ change), "total_change_relative": float(w[valid] @ change) / total if total
            else math.nan,
            "share_worse": float(w[valid][worse].sum() / w[valid].sum()) if valid.any() else math.nan,
            "largest_change": float(np.abs(change).max()) if len(change) else 0.0,
            "gaps": [{k: jsonable(r[k]) for k in ("attribute", "group", "reference_group", "metric", "difference",
                                                   "difference_ci_low", "difference_ci_high", "suppressed")}
                     for r in res.disparities[res.disparities["metric"].isin(["mean", "ks"])].to_dict("records")],
            "decomposition": [{k: jsonable(r[k]) for k in ("attribute", "group", "within", "composition",
                                                           "suppressed")}
                              for r in res.decomposition.to_dict("records")],
        })
    note(1.0, f"repaired at {len(amounts)} amount(s)")
    passing = [p for p in points if p["fail"] == 0]
    if passing:
        best = min(passing, key=lambda p: p["amount"])
        why = ("no mean or within gap fails the tolerance" if best["amount"] > 0 else
               "the values already pass: no repair needed")
        recommended = {"amount": best["amount"], "why": f"the smallest amount tried at which {why} "
                       f"(total changes by {pct(best['total_change_relative'])}, {pct(best['share_worse'])} of the "
                       f"rows get a worse value)"}
    else:
        recommended = {"amount": None, "why": "every amount tried leaves a failing gap; try the full repair within "
                                              "finer strata, or a looser tolerance"}
    meta = {"analysis": "value_repair", "value": value, "favourable": favourable, "attribute": attr,
            "within": within, "keep_total": bool(keep_total), "n_values": int(valid.sum()),
            "method": "optimal transport to the groups' weighted Wasserstein barycenter (Chzhen et al. 2020), "
                      "per stratum; partial repair (1 - L) v + L T(v) (Feldman et al. 2015)"
                      + ("; rescaled to keep the total" if keep_total else ""),
            "tolerance": {"max_relative": tolerance}}
    return ValueRepairResult(points, recommended, meta, repaired)
