"""What-if exploration of a score's threshold or a campaign budget, from score histograms.

A :class:`ThresholdExplorer` reads the scored rows **once** and keeps, per (attribute,
group, label), a histogram of the scores on fixed bin edges: the distinct scores when there
are at most ``max_edges`` of them, else up to ``max_edges`` distinct quantiles of the scores
(actual score values, ``method="inverted_cdf"``). Every later question — the groups' rates at
a threshold, at a budget, or the whole curve of rates against the threshold — is answered
from reverse cumulative sums of those histograms, never by re-reading or re-scoring rows.

Conventions (as in :func:`fairscan.audit`):

- the decision is *offer when score >= threshold*; a threshold **on an edge** gives exactly
  the counts the audit gives at that threshold; a threshold between two edges is rounded up
  to the next edge, and the :class:`Cut` says which threshold was used;
- a **budget** K (a count, or a fraction of the rows rounded down) is met by the highest
  edge whose cumulative count reaches K: everyone scored at or above that edge is offered,
  so ties at the cut (and, with quantile edges, the rest of the cut's bin) make the number
  actually offered (``Cut.offered``) at least K. The audit instead breaks ties by row order
  to offer exactly K; the two agree whenever no tie straddles the cut;
- rates are fairscan's metrics (:mod:`fairscan.metrics.classification`) of the four cells
  (TN, FP, FN, TP) with Wilson intervals (:func:`fairscan.metrics.stats.wilson`); groups
  are suppressed (null count, offers and rates) by the audit's rule — fewer than
  ``suppress_below`` rows, and complementary partners so that no suppressed group can be
  recovered by subtraction from the totals (:func:`fairscan.privacy.suppress`) — empty
  groups are left out, and groups are assigned by :func:`fairscan.groups.assign_groups`,
  exactly as the audit resolves them;
- the **four-fifths band** at a threshold is 0.8 x the most-offered (unsuppressed) group's
  selection rate: a group below it fails the four-fifths rule there.

Also here, for the dashboard: :func:`before_after` (a mitigation's per-group rates next to
the unmitigated model's) and :func:`coupon_recs_example` (a small recommendation log built
from the bundled coupon data and its reference model).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairscan.errors import FairscanError, suggest
from fairscan.metrics.classification import LABEL_FREE, METRICS, rates
from fairscan.metrics.stats import wilson
from fairscan.policy import FOUR_FIFTHS, four_fifths_flags, four_fifths_line, impact_ratios
from fairscan.privacy import CountTable, suppress
from fairscan.types import INTERSECTION_SEP

__all__ = [
    "COUPON_TYPES", "CURVE_METRICS", "DEFAULT_MAX_EDGES", "FOUR_FIFTHS", "RETAIL_K", "Cut", "ThresholdExplorer",
    "before_after", "coupon_recs_example", "retail_recs_example",
]

DEFAULT_MAX_EDGES = 1001
#: the metrics the curve carries by default (the dashboard's two charts)
CURVE_METRICS = ("selection_rate", "false_negative_rate")


@dataclass(frozen=True)
class Cut:
    """One operating point: the rates of every group when offering to score >= ``threshold``.

    ``offered``: rows offered (all groups); ``requested``: the budget asked for (``None`` for
    a threshold query); ``groups``: one row per (attribute, group) with ``count``,
    ``suppressed``, ``offered``, ``positives``, every rate with ``<metric>_ci_low/_high``,
    ``impact_ratio`` and ``four_fifths`` (as in the audit's group table); ``band``: per
    attribute the four-fifths line (0.8 x the top group's selection rate); ``note``: how the
    threshold or budget was met.
    """

    threshold: float
    offered: int
    requested: int | None
    n_rows: int
    groups: pd.DataFrame
    band: dict[str, float]
    note: str

    @property
    def offered_share(self) -> float:
        """Share of all rows offered."""
        return self.offered / self.n_rows if self.n_rows else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (NaN as None)."""
        from fairscan.formatting import jsonable

        return jsonable({
            "threshold": None if math.isinf(self.threshold) else self.threshold,
            "offered": self.offered, "requested": self.requested, "n_rows": self.n_rows,
            "band": self.band, "note": self.note,
            "groups": [{k: jsonable(v) for k, v in r.items()} for r in self.groups.to_dict("records")],
        })


@dataclass
class _Hist:
    """Reverse-cumulative score histograms of one attribute's groups: ``sel[g, y, j]`` rows of
    group g with label y scored at or above edge j (j = n_edges: nobody)."""

    name: str
    labels: list[str]
    sel: np.ndarray  # (G, 2, B + 1) int64
    total: np.ndarray = field(init=False)  # (G, 2)
    suppressed: np.ndarray = field(init=False)  # (G,) primary or complementary
    complementary: np.ndarray = field(init=False)  # (G,) suppressed to protect another group

    def __post_init__(self) -> None:
        self.total = self.sel[:, :, 0]


class ThresholdExplorer:
    """Per-group rates at any threshold or budget, from score histograms built once.

    ``data``: a pandas DataFrame (or anything with ``to_pandas()``); ``score``: the numeric
    score column (higher = offered first); ``target``/``positive_label``: the optional outcome
    (without it only the selection rate is defined); ``sensitive``, ``tiers``, ``intersect``:
    the groups, as in :func:`fairscan.audit`, or ``groups``: a frame of group labels per row
    (one column per attribute, e.g. from :func:`fairscan.groups.assign_groups`).
    See the module docstring for the conventions.
    """

    def __init__(
        self,
        data: Any,
        *,
        score: str,
        target: str | None = None,
        positive_label: object = None,
        sensitive: str | Sequence[str] = (),
        tiers: Mapping[str, Any] | None = None,
        intersect: bool = False,
        groups: pd.DataFrame | None = None,
        max_edges: int = DEFAULT_MAX_EDGES,
        suppress_below: int = 10,
        confidence: float = 0.95,
    ) -> None:
        from fairscan.engines.memory import MemoryEngine
        from fairscan.groups import assign_groups
        from fairscan.validation import binary_positive

        if not isinstance(data, pd.DataFrame):
            data = data.to_pandas() if hasattr(data, "to_pandas") else pd.DataFrame(data)
        cols = [str(c) for c in data.columns]
        for col, role in ((score, "score"), (target, "target")):
            if col is not None and col not in cols:
                raise FairscanError(f"{role} column '{col}' not found{suggest(col, cols)}")
        if max_edges < 2:
            raise FairscanError(f"max_edges must be at least 2, got {max_edges}")
        s = data[score]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            raise FairscanError(f"score column '{score}' is not numeric; scores must be numbers")
        s = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = int((~np.isfinite(s)).sum())
        if bad:
            raise FairscanError(f"score column '{score}' has {bad:,} missing, NaN or infinite values; "
                                "fix or remove those rows first")
        if len(s) == 0:
            raise FairscanError("the data has no rows")
        self.score = score
        self.target = target
        self.n_rows = len(s)
        self.suppress_below = int(suppress_below)
        self.confidence = confidence
        y = np.zeros(len(s), dtype=np.int64)
        self.positive_label = None
        if target is not None:
            engine = MemoryEngine(data[[target]])
            self.positive_label = binary_positive(engine, target, positive_label, "label", "positive_label")
            col = data[target]
            if col.isna().any():
                raise FairscanError(f"label column '{target}' has {int(col.isna().sum()):,} missing values; "
                                    "fill or remove those rows first")
            y = (col == self.positive_label).to_numpy(dtype=np.int64)
        self.metrics: list[str] = list(METRICS) if target is not None else list(LABEL_FREE)

        uniq = np.unique(s)
        #: True when the edges are all the distinct scores: every threshold is then exact
        self.exact = len(uniq) <= max_edges
        if self.exact:
            edges = uniq
        else:
            edges = np.unique(np.quantile(s, np.linspace(0, 1, max_edges), method="inverted_cdf"))
        self.edges: np.ndarray = edges
        n_edges = len(edges)
        bins = np.searchsorted(edges, s, side="right") - 1  # edges[0] = min(s): every bin >= 0
        cell = y * n_edges + bins  # (label, bin)

        self._all = _reverse_cumsum(np.bincount(bins, minlength=n_edges))  # (B + 1,)
        if groups is None:
            if isinstance(sensitive, str):
                sensitive = [sensitive]
            groups = assign_groups(data, list(sensitive), tiers, intersect)
        if len(groups) != len(s):
            raise FairscanError(f"groups have {len(groups):,} rows but the data has {len(s):,}")
        self._hists: dict[str, _Hist] = {}
        first: dict[str, np.ndarray] = {}  # per attribute, a row of each of its (non-empty) groups
        for name in groups.columns:
            col = groups[name]
            cat = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category")
            codes = cat.cat.codes.to_numpy().astype(np.int64)
            if (codes < 0).any():
                raise FairscanError(f"attribute '{name}' has rows without a group; missing values must form "
                                    "a group (assign_groups puts them in 'unknown')")
            labels = [str(c) for c in cat.cat.categories]
            counts = np.bincount(codes * (2 * n_edges) + cell, minlength=len(labels) * 2 * n_edges)
            counts = counts.reshape(len(labels), 2, n_edges)
            keep = counts.sum(axis=(1, 2)) > 0  # empty groups are left out, as in the audit
            first[str(name)] = np.unique(codes, return_index=True)[1]
            self._hists[str(name)] = _Hist(str(name), [lb for lb, k in zip(labels, keep, strict=True) if k],
                                           _reverse_cumsum(counts[keep]))
        self._suppress(groups, first)

    @classmethod
    def from_counts(cls, counts: Any, confidence: float = 0.95) -> ThresholdExplorer:
        """The explorer of a counts file with score histograms (``fairscan counts --histograms``):
        its cut points are the histogram edges, the lowest one the score range's rounded floor;
        groups are suppressed as the file withholds them (or, for a private release, by the
        audit's rule on the noisy sizes)."""
        from fairscan.engines.counts import Counts
        from fairscan.metrics.tables import count_tables

        if not isinstance(counts, Counts):
            counts = Counts.read(counts)
        h = counts.meta.get("histograms")
        if not h:
            raise FairscanError("the counts file has no score histograms: count it with --histograms N to explore "
                                "thresholds and budgets")
        if counts.protection.get("kind") == "differential privacy":
            raise FairscanError("the explorer does not yet widen its intervals by the noise of differentially private "
                                "counts: audit the file at a threshold instead (fairscan audit FILE --threshold T)")
        edges = np.asarray(h["edges"], dtype=float)
        rng = counts.meta["decision_description"].get("score_range") or [float(edges[0]) - 1, None]
        low = min(float(rng[0]), float(edges[0]))
        self = cls.__new__(cls)
        self.score = str(h["column"])
        label = counts.label
        self.target = label.column if label else None
        self.positive_label = label.positive if label else None
        self.confidence = confidence
        prot = counts.protection
        self.suppress_below = int(prot.get("suppress_below", 10))
        self.metrics = list(METRICS) if label else list(LABEL_FREE)
        self.exact = False
        self.edges = np.concatenate([[low], edges]) if low < edges[0] else edges
        shift = 1 if low < edges[0] else 0  # the file's bin b is the explorer's bin b - 1 + shift
        n_bins = len(edges) + 1
        self._hists = {}
        for st, hist in zip(counts.audited, counts.histograms, strict=True):
            b = hist.codes[:, -1]
            if (hist.n[b >= n_bins].sum() if len(b) else 0) > 0:
                raise FairscanError(f"score '{self.score}' has missing values in the counts file; the explorer "
                                    "needs every score")
            pos = {tuple(c): i for i, c in enumerate(st.codes)}
            g = np.asarray([pos[tuple(c)] for c in hist.codes[:, :-1]], dtype=np.int64)
            counts_gyb = np.zeros((len(st.codes), 2, len(self.edges)), dtype=np.int64)
            keep = b < n_bins
            for y in (0, 1):
                np.add.at(counts_gyb, (g[keep], y, b[keep] - 1 + shift),
                          (hist.n[keep, 2 * y] + hist.n[keep, 2 * y + 1]).astype(np.int64))
            self._hists[st.grouping.name] = _Hist(st.grouping.name, list(st.labels), _reverse_cumsum(counts_gyb))
        every = counts.bin_totals().sum(axis=1)  # withheld groups included
        per_edge = np.zeros(len(self.edges), dtype=np.int64)
        np.add.at(per_edge, np.arange(len(every)) - 1 + shift, every)
        self._all = _reverse_cumsum(per_edge)
        self.n_rows = int(self._all[0])
        if prot.get("kind") == "suppressed":
            masks = [(w > 0, w == 2) for w in counts.withheld[:len(counts.audited)]]
        else:
            masks = suppress(count_tables(counts.audited, {}), self.suppress_below)
        for hh, (sup, comp) in zip(self._hists.values(), masks, strict=True):
            hh.suppressed, hh.complementary = sup, comp
        return self

    def _suppress(self, groups: pd.DataFrame, first: dict[str, np.ndarray]) -> None:
        """Primary and complementary suppression of every attribute's groups, by the audit's one
        rule (:func:`fairscan.privacy.suppress`): the groups of an attribute add up to the rows
        (and to the number offered), an intersection's cells to its attributes' groups."""
        names = list(self._hists)
        crosses = {str(k): [str(c) for c in v] for k, v in (groups.attrs.get("crosses") or {}).items()}
        for name in names:  # a frame made elsewhere: an intersection is named "a x b"
            parts = name.split(INTERSECTION_SEP)
            if name not in crosses and len(parts) > 1 and all(p in names for p in parts):
                crosses[name] = parts
        tables = []
        for name, h in self._hists.items():
            parts = crosses.get(name, [name])
            rows = first[name]  # a row of each group: its labels on the crossed attributes
            keys = list(zip(*(groups[p].astype(str).to_numpy()[rows] for p in parts), strict=True))
            tables.append(CountTable(tuple(parts), keys, h.total.sum(axis=1)))
        for h, (sup, comp) in zip(self._hists.values(), suppress(tables, self.suppress_below), strict=True):
            h.suppressed, h.complementary = sup, comp

    # -- what it knows ------------------------------------------------------------------
    @property
    def attributes(self) -> list[str]:
        """The attributes (one per group column), in order."""
        return list(self._hists)

    @property
    def thresholds(self) -> np.ndarray:
        """The bin edges: thresholds at which every rate is exact."""
        return self.edges

    def offered_at(self, threshold: float) -> int:
        """How many rows score at or above ``threshold`` (rounded up to an edge)."""
        return int(self._all[self._index(threshold)])

    def _index(self, threshold: float) -> int:
        t = float(threshold)
        if math.isnan(t):
            raise FairscanError("threshold is not a number")
        return int(np.searchsorted(self.edges, t, side="left"))

    def _threshold_of(self, j: int) -> float:
        return float(self.edges[j]) if j < len(self.edges) else math.inf

    # -- questions ----------------------------------------------------------------------
    def at_threshold(self, threshold: float) -> Cut:
        """Every group's rates when offering to score >= ``threshold``; a threshold between
        two edges is rounded up to the next edge (``Cut.threshold``)."""
        t = float(threshold)
        j = self._index(t)
        used = self._threshold_of(j)
        if math.isinf(used):
            note = f"threshold {t:.6g} is above every score: nobody is offered"
        elif used == t:
            note = f"offer when score >= {used:.6g}"
        elif self.exact:
            note = (f"threshold {t:.6g} rounded up to the next score {used:.6g}; no score lies between them, "
                    "so the rates are exact")
        else:
            note = f"threshold {t:.6g} rounded up to the next histogram edge {used:.6g}"
        return self._cut(j, None, note)

    def at_budget(self, budget: int | float) -> Cut:
        """Every group's rates when offering to the top ``budget`` rows (a count, or a
        fraction rounded down): the highest edge whose cumulative count reaches the budget.
        Everyone at or above it is offered, so ``Cut.offered`` may exceed the budget (ties)."""
        from fairscan.validation import resolve_budget

        k = resolve_budget(budget, self.n_rows)
        # _all is non-increasing in j; the last j with _all[j] >= k
        j = int(np.searchsorted(-self._all, -k, side="right")) - 1
        offered = int(self._all[j])
        used = self._threshold_of(j)
        if offered == k:
            note = f"budget {k:,}: offer when score >= {used:.6g} (exactly {k:,} offered)"
        else:
            note = (f"budget {k:,}: offer when score >= {used:.6g}; {offered - k:,} more than the budget "
                    f"are offered ({offered:,}) because they score the same as the cut"
                    + ("" if self.exact else " or fall in the same histogram bin")
                    + "; the audit breaks such ties by row order to offer exactly the budget")
        return self._cut(j, k, note)

    def _cut(self, j: int, requested: int | None, note: str) -> Cut:
        frames, band = [], {}
        for h in self._hists.values():
            df = self._group_table(h, np.array([j]))
            frames.append(df)
            top = df["selection_rate"].max(skipna=True)
            band[h.name] = float(four_fifths_line(top)) if pd.notna(top) else math.nan
        return Cut(self._threshold_of(j), int(self._all[j]), requested, self.n_rows,
                   pd.concat(frames, ignore_index=True), band, note)

    def _group_table(self, h: _Hist, js: np.ndarray) -> pd.DataFrame:
        """Long table: one row per (threshold index, group)."""
        sel = h.sel[:, :, js]  # (G, 2, T)
        tot = h.total[:, :, None]
        cells = np.stack([tot[:, 0] - sel[:, 0], sel[:, 0], tot[:, 1] - sel[:, 1], sel[:, 1]], axis=-1)
        cells = np.moveaxis(cells, 1, 0).astype(float)  # (T, G, 4)
        rate, _, den = rates(cells, self.metrics)  # (T, G, M)
        count = cells.sum(axis=-1)
        suppressed = np.broadcast_to(h.suppressed, count.shape)
        rate[suppressed] = np.nan
        lo, hi = wilson(rate, den, self.confidence)
        T, G = count.shape
        out: dict[str, Any] = {
            "attribute": h.name,
            "group": np.tile(np.asarray(h.labels, dtype=object), T),
            "threshold": np.repeat([self._threshold_of(int(j)) for j in js], G),
            "count": pd.array(np.where(suppressed, None, count.astype(np.int64)).ravel(), dtype="Int64"),
            "suppressed": suppressed.ravel(),
            "suppression": np.tile(np.where(h.complementary, "complementary", np.where(h.suppressed, "primary", None)),
                                   T),
            "offered": pd.array(np.where(suppressed, None, (cells[..., 1] + cells[..., 3]).astype(np.int64)).ravel(),
                                dtype="Int64"),
            "positives": pd.array(np.where(suppressed | (self.target is None), None,
                                           (cells[..., 2] + cells[..., 3]).astype(np.int64)).ravel(), dtype="Int64"),
        }
        for m_i, m in enumerate(self.metrics):
            out[m] = rate[..., m_i].ravel()
            out[f"{m}_ci_low"] = lo[..., m_i].ravel()
            out[f"{m}_ci_high"] = hi[..., m_i].ravel()
        sr = rate[..., self.metrics.index("selection_rate")]  # (T, G)
        impact, top = impact_ratios(sr)
        out["impact_ratio"] = impact.ravel()
        out["four_fifths"] = pd.array(four_fifths_flags(impact), dtype="boolean")
        out["top_selection_rate"] = np.repeat(top, G)
        out["four_fifths_line"] = np.repeat(four_fifths_line(top), G)
        out["offered_share"] = np.repeat(self._all[js] / self.n_rows, G)
        return pd.DataFrame(out)

    def curve(self, attribute: str | None = None, metrics: Sequence[str] = CURVE_METRICS,
              max_points: int | None = None) -> pd.DataFrame:
        """Rates of every group of ``attribute`` (default: all) at every edge — or at most
        ``max_points`` evenly spread edges, always including the lowest and highest.

        Columns: attribute, group, threshold, offered_share (of all rows), count,
        suppressed, each metric with its interval, impact_ratio, four_fifths,
        top_selection_rate and four_fifths_line (0.8 x the top group's selection rate:
        the lower edge of the four-fifths band). Suppressed groups have null rates.
        """
        names = self.attributes if attribute is None else [attribute]
        for a in names:
            if a not in self._hists:
                raise FairscanError(f"attribute '{a}' is not explored{suggest(a, self.attributes)}")
        unknown = [m for m in metrics if m not in self.metrics]
        if unknown:
            raise FairscanError(f"metric '{unknown[0]}' is not available"
                                + ("" if self.target else " without a target column")
                                + f"; available: {', '.join(self.metrics)}")
        n = len(self.edges)
        js = np.arange(n)
        if max_points is not None and max_points < n:
            js = np.unique(np.linspace(0, n - 1, max(2, max_points)).round().astype(np.int64))
        keep = ["attribute", "group", "threshold", "offered_share", "count", "suppressed", "suppression"]
        keep += [c for m in metrics for c in (m, f"{m}_ci_low", f"{m}_ci_high")]
        keep += ["impact_ratio", "four_fifths", "top_selection_rate", "four_fifths_line"]
        return pd.concat([self._group_table(self._hists[a], js)[keep] for a in names], ignore_index=True)


def _reverse_cumsum(counts: np.ndarray) -> np.ndarray:
    """``out[..., j] = counts[..., j:].sum()``, with one more trailing 0 (j = n: nothing)."""
    rc = np.cumsum(counts[..., ::-1], axis=-1)[..., ::-1]
    pad = np.zeros((*counts.shape[:-1], 1), dtype=rc.dtype)
    return np.concatenate([rc, pad], axis=-1).astype(np.int64)


# -------------------------------------------------------------------- mitigation tables


def before_after(result: Any, method: str | None = None, strength: float | None = None,
                 metric: str = "selection_rate") -> pd.DataFrame:
    """A mitigation comparison's per-group ``metric`` before (unmitigated baseline) and after
    (``method`` at ``strength``; default: the recommended one, else the first method).

    ``result`` is a :class:`fairscan.mitigation.MitigationResult`. Columns: group, count,
    reference (bool), before, after, change (after - before). Rates are held-out estimates
    (expected values for randomised methods); suppressed groups have null values.
    """
    rec = result.recommended or {}
    if method is None:
        method = rec.get("method") if rec.get("method") not in (None, "none") else None
        strength = rec.get("strength") if method else None
    if method is None:
        if not result.methods:
            raise FairscanError("the comparison has no mitigation method")
        method, strength = result.methods[0].method, result.methods[0].strength
    candidates = [p for p in [*result.methods, *result.curve] if p.method == method]
    if not candidates:
        raise FairscanError(f"method '{method}' is not in this comparison"
                            f"{suggest(method, [p.method for p in result.methods])}")
    if strength is not None:
        candidates = [p for p in candidates if p.strength is not None and math.isclose(p.strength, strength)] or \
            candidates[:1]
    point = candidates[0]
    before, counts = _point_rates(result.baseline, metric)
    after, _ = _point_rates(point, metric)
    groups = list(dict.fromkeys([*before, *after]))
    ref = next((d["reference"] for d in result.baseline.disparities if d["metric"] == metric), None)
    rows = []
    for g in groups:
        b, a = before.get(g), after.get(g)
        rows.append({"group": g, "count": counts.get(g), "reference": g == ref, "before": b, "after": a,
                     "change": None if a is None or b is None else a - b})
    df = pd.DataFrame(rows)
    df.attrs.update({"method": point.method, "strength": point.strength, "metric": metric})
    return df


def _point_rates(point: Any, metric: str) -> tuple[dict[str, float | None], dict[str, int | None]]:
    """Per-group value of ``metric`` in a mitigation Point (from its disparity records)."""
    values: dict[str, float | None] = {}
    counts: dict[str, int | None] = {}
    for d in point.disparities:
        if d["metric"] != metric:
            continue
        values[d["reference"]] = d["reference_value"]
        counts[d["reference"]] = d["reference_count"]
        values[d["group"]] = None if d.get("suppressed") else d["group_value"]
        counts[d["group"]] = d["group_count"]
    return values, counts


# -------------------------------------------------------------- recommendation example

COUPON_TYPES = ("Bar", "Coffee House", "Carry out & Take away", "Restaurant(<20)", "Restaurant(20-50)")


#: the bundled online-retail case's list length (the reference recommender's lists are this long)
RETAIL_K = 10


def retail_recs_example() -> dict[str, Any]:
    """The purchasing-power case of the bundled online-retail data, for the dashboard: the
    reference recommender (:func:`fairscan.recommenders.train_preset_recommender`, item-kNN
    with a temporal split, seed 0) gives every customer a top-10 list; customers are grouped
    by spend tier in the training period (cold-start customers, with no purchase there, are
    ``unknown``), items by price tier; truth: the purchases of the last five weeks.

    Returns ``{"recs", "users", "items", "truth", "interactions", "user_group", "item_group",
    "user_order", "item_order", "k", "description"}``, ready for
    :func:`fairscan.recs.audit_recs`."""
    from fairscan import recommenders

    t = recommenders.train_preset_recommender("online-retail", k=RETAIL_K, seed=0)
    users, items = t.users, t.items
    assert users is not None and items is not None
    n_cold = int((users["history"] == "cold start").sum())
    return {
        "recs": t.recommendations[["user", "item", "rank"]], "users": users[["user", "spend_tier"]],
        "items": items[["item", "price_tier"]], "truth": t.truth, "interactions": t.interactions,
        "user_group": "spend_tier", "item_group": "price_tier",
        "user_order": sorted(str(v) for v in users["spend_tier"].dropna().unique()),
        "item_order": sorted(str(v) for v in items["price_tier"].dropna().unique()),
        "k": RETAIL_K,
        "description": (f"Online retail: the reference recommender's top-{RETAIL_K} list for each of "
                        f"{len(users):,} customers ({n_cold:,} without a purchase in the training period get the "
                        "popularity list and no spend tier: 'unknown'), customers by spend tier, items by median "
                        "price tier; truth: their purchases in the last five weeks."),
    }


def coupon_recs_example(k: int = 2) -> dict[str, Any]:
    """A small recommendation log from the bundled coupon data, for the dashboard.

    Users are the coupon reference model's **held-out** driving scenarios (3,806 rows of the
    survey, never seen in training); items are the five coupon types. For every scenario the
    reference model scores each coupon type (the scenario with ``coupon`` set to that type,
    everything else unchanged) and the top ``k`` types are its list. The user group is the
    driver's income bracket (ordered lowest first, 9 brackets); the item group is the coupon
    type. Truth: the coupon actually shown in the survey, when the driver accepted it.

    Returns ``{"recs", "candidates", "users", "items", "truth", "k", "description"}``: ``recs``
    ready for :func:`fairscan.recs.audit_recs` (``user_group="income"``,
    ``item_group="coupon"``); ``candidates``: all five types ranked per scenario, for a
    re-ranker (:mod:`fairscan.mitigation.rerank`).
    Caveat: each respondent answered about 20 scenarios, so scenarios are not independent.
    """
    from fairscan import datasets, modeling
    from fairscan.datasets.cleaning import coupon_income_order

    if not 1 <= k <= len(COUPON_TYPES):
        raise FairscanError(f"k must be between 1 and {len(COUPON_TYPES)}, got {k}")
    data = datasets.load("coupon")
    card, held = modeling.reference_scores("coupon")
    model = modeling.load_model(modeling.resolve_model_path("reference:coupon"))
    rows = data.iloc[held[modeling.ROW_ID].to_numpy()].reset_index(drop=True)
    user = held[modeling.ROW_ID].to_numpy()
    # one scoring call over the five counterfactual copies (type-major), then one column per type
    stacked = pd.concat([rows.assign(coupon=c) for c in COUPON_TYPES], ignore_index=True)
    scores = modeling.score(model, stacked, card=card).reshape(len(COUPON_TYPES), len(rows)).T
    n_types = len(COUPON_TYPES)
    order = np.argsort(-scores, axis=1, kind="stable")
    candidates = pd.DataFrame({
        "user": np.repeat(user, n_types),
        "item": np.asarray(COUPON_TYPES, dtype=object)[order].ravel(),
        "rank": np.tile(np.arange(1, n_types + 1), len(user)),
        "score": np.take_along_axis(scores, order, axis=1).ravel(),
    })
    recs = candidates[candidates["rank"] <= k].reset_index(drop=True)
    income = pd.Categorical(rows["income"], categories=coupon_income_order(), ordered=True)
    users = pd.DataFrame({"user": user, "income": income})
    items = pd.DataFrame({"item": list(COUPON_TYPES), "coupon": list(COUPON_TYPES)})
    accepted = (rows[card["target"]] == card["positive_label"]).to_numpy()
    truth = pd.DataFrame({"user": user[accepted], "item": rows["coupon"].to_numpy()[accepted]})
    description = (
        f"{len(user):,} held-out driving scenarios of the coupon survey (the users); the coupon reference "
        f"model ranks the five coupon types for each scenario and its top {k} are recommended. User groups: "
        "the driver's income bracket; item groups: the coupon type. Relevant item: the coupon shown in "
        "the survey, when the driver accepted it. Each respondent answered about 20 scenarios, so "
        "scenarios are not independent: treat intervals as optimistic."
    )
    return {"recs": recs, "candidates": candidates, "users": users, "items": items, "truth": truth, "k": k,
            "description": description}
