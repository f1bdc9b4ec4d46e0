"""Offer values (price, discount, credit limit) by group, from value cells.

A group's values are held as **cells**: its sorted distinct values ``u`` and, per value, the
number of rows ``n``, the sum of their weights ``w`` and of their squared weights ``w2``
(:class:`ValueCells`). These are sufficient statistics for everything the value audit
reports, so an engine only has to count rows per (group, stratum, value):

- the **mean** (weighted: ``sum(w*u) / sum(w)``) and its standard error, the linearised
  (sandwich) one with the small-sample factor ``n/(n-1)`` on the Kish effective size, which
  is ``s / sqrt(n)`` without weights; differences by **Welch's** t (Welch-Satterthwaite
  degrees of freedom), ratios by the **delta method** on the log ratio;
- **quantiles**: without weights numpy's default (``method="linear"``) exactly, from the
  counts; with weights numpy's weighted definition (``method="inverted_cdf"``); the median's
  interval from **order statistics** (the distribution-free binomial interval);
- the two-sample **Kolmogorov-Smirnov** statistic (largest gap between the two weighted
  empirical distribution functions, ``scipy.stats.ks_2samp``'s statistic without weights)
  and the **Wasserstein-1** distance in the value's units (``scipy.stats.wasserstein_distance``);
- the share of a group whose value lies in the most favourable quarter of a pooled
  distribution;
- the symmetric **Kitagawa decomposition** of a difference of means into a part within
  strata (the same product at another price: discrimination) and a part from the strata
  mix (other products: steering), with strata present on one side only reported apart.

Everything is vectorised over the cells; nothing here loops over rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from fairscan.metrics.stats import t_quantile, welch_moments, z_value

__all__ = [
    "BIN_LOG", "BIN_OFFSET", "BLOCK_CELLS", "DENSE_CELLS", "EXACT_VALUES", "GRID_CELLS", "NORMAL_FROM", "VALUE_PRECISION", "Decomposition", "MeanComparison", "Replicates", "ValueCells", "binned_cells", "cluster_mean", "cluster_mean_comparison", "cluster_resample",
    "cluster_variance", "code_values", "collapse", "decomposition", "decomposition_se", "ks_distance", "ks_pvalue",
    "mean_comparison", "median_interval", "part", "pooled", "quantiles", "replicate_cdfs",
    "replicate_distances", "replicate_grid", "replicate_quantiles", "replicate_weights", "replicates", "resample",
    "share_beyond", "value_bins", "value_cells", "wasserstein_distance",
]


@dataclass(frozen=True)
class ValueCells:
    """A group's values as cells: sorted distinct values ``u``, and per value the rows ``n``,
    the sum of weights ``w`` and of squared weights ``w2`` (``w = w2 = n`` without weights)."""

    u: np.ndarray
    n: np.ndarray
    w: np.ndarray
    w2: np.ndarray

    @classmethod
    def of(cls, values: Any, weights: Any = None) -> ValueCells:
        """The cells of rows of values (no missing value; weights >= 0)."""
        v = np.asarray(values, dtype=np.float64)
        u, inv = np.unique(v, return_inverse=True)
        n = np.bincount(inv, minlength=len(u)).astype(np.int64)
        if weights is None:
            w = n.astype(np.float64)
            return cls(u, n, w, w.copy())
        wt = np.asarray(weights, dtype=np.float64)
        return cls(u, n, np.bincount(inv, wt, len(u)), np.bincount(inv, wt * wt, len(u)))

    @property
    def rows(self) -> int:
        return int(self.n.sum())

    @property
    def total_weight(self) -> float:
        return float(self.w.sum())

    @property
    def weighted(self) -> bool:
        """Whether any weight differs from 1 (then the weighted definitions apply)."""
        return not (np.array_equal(self.w, self.n) and np.array_equal(self.w2, self.n))

    @property
    def effective_n(self) -> float:
        """Kish's effective size (sum w)^2 / sum w^2: the row count without weights."""
        w2 = float(self.w2.sum())
        return float(self.w.sum()) ** 2 / w2 if w2 > 0 else 0.0

    @property
    def mean(self) -> float:
        total = self.total_weight
        return float(self.w @ self.u) / total if total > 0 else float("nan")

    @property
    def mean_variance(self) -> float:
        """Squared standard error of the mean: sum w^2 (u - mean)^2 / (sum w)^2 times
        n_eff / (n_eff - 1); ``var(ddof=1) / n`` without weights."""
        total, n_eff = self.total_weight, self.effective_n
        if not (total > 0 and n_eff > 1):
            return float("nan")
        return float(self.w2 @ (self.u - self.mean) ** 2) / total**2 * n_eff / (n_eff - 1)


def code_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, each row's index among them): one sort, shared by every
    attribute's cells (:func:`value_cells`)."""
    return np.unique(np.asarray(values, dtype=np.float64), return_inverse=True)


#: replicates x cells drawn at once by :func:`replicates` (a block of float64 sums: 8 MB)
BLOCK_CELLS = 1_000_000
#: largest keys x distinct values for which cells are counted in one dense bincount
DENSE_CELLS = 50_000_000


def _count(k: np.ndarray, code: np.ndarray, n_codes: int,
           sums: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Rows per (key, code) and the sums of each of ``sums`` (per-row arrays) over them: (each
    cell's key, its code, its rows, its sums), cells in (key, code) order. One dense bincount
    when the key space is small enough, else one sort of the rows."""
    n_keys = int(k.max()) + 1
    if n_keys * n_codes <= DENSE_CELLS:
        size = n_keys * n_codes
        flat = k * n_codes + code
        n = np.bincount(flat, minlength=size)
        cell = np.flatnonzero(n)
        return cell // n_codes, cell % n_codes, n[cell].astype(np.int64), [np.bincount(flat, x, size)[cell]
                                                                          for x in sums]
    order = np.lexsort((code, k))
    ks, cs = k[order], code[order]
    start = np.flatnonzero(np.r_[True, (ks[1:] != ks[:-1]) | (cs[1:] != cs[:-1])])
    n = np.diff(np.r_[start, len(ks)]).astype(np.int64)
    return ks[start], cs[start], n, [np.add.reduceat(x[order], start) for x in sums]


def value_cells(keys: np.ndarray, values: np.ndarray, weights: np.ndarray | None = None,
                coded: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, ValueCells]:
    """The cells of every key at once (a key is a (group, stratum) code). Returns each cell's
    key and the cells in key order (each key's cells contiguous and sorted by value), as an
    engine's GROUP BY key, value would give them. ``coded``: :func:`code_values` of
    ``values``, when several calls share them; then the cells are counted by one bincount over
    (key, value code) instead of a sort of the rows."""
    k = np.asarray(keys, dtype=np.int64)
    wt = None if weights is None else np.asarray(weights, dtype=np.float64)
    if len(k) == 0:
        empty = np.zeros(0)
        return k, ValueCells(empty, empty.astype(np.int64), empty, empty)
    uniq, code = coded if coded is not None else code_values(values)
    key, cs, n, sums = _count(k, code, len(uniq), [] if wt is None else [wt, wt * wt])
    if wt is None:
        w = n.astype(np.float64)
        return key, ValueCells(uniq[cs], n, w, w.copy())
    return key, ValueCells(uniq[cs], n, sums[0], sums[1])


#: above this many distinct values, values share cells by fine bins (:func:`value_bins`)
EXACT_VALUES = 100_000
#: two values of one bin differ by less than this, relative to their size
VALUE_PRECISION = 1e-4
#: ln(1 + VALUE_PRECISION): the bins' width on the log scale (engines' SQL uses this literal)
BIN_LOG = math.log1p(VALUE_PRECISION)
#: added to the log-bin index so that every finite non-zero value's bin is >= 1 in size
BIN_OFFSET = 8_000_000


def value_bins(values: np.ndarray) -> np.ndarray:
    """Each value's bin: 0 for 0, else sign(v) * (floor(ln|v| / BIN_LOG) + BIN_OFFSET); the
    values of one bin lie in [(1 + p)^j, (1 + p)^(j + 1)) in size, p = VALUE_PRECISION."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        j = np.floor(np.log(np.abs(v)) / BIN_LOG)
    return np.where(v == 0, 0, np.sign(v) * (np.where(v == 0, 0, j) + BIN_OFFSET)).astype(np.int64)


def binned_cells(keys: np.ndarray, values: np.ndarray, weights: np.ndarray | None = None,
                 bins: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, ValueCells]:
    """:func:`value_cells` over the values' fine bins (:func:`value_bins`; ``bins``: its
    distinct bins and each row's index among them, when shared): each cell's value is the
    weighted mean of its rows' values, so means, totals and the decomposition stay exact,
    and quantiles and distances are within VALUE_PRECISION (relative) of the exact ones."""
    k = np.asarray(keys, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if len(k) == 0:
        return value_cells(k, v, weights)
    uniq, code = bins if bins is not None else np.unique(value_bins(v), return_inverse=True)
    wt = np.ones(len(v)) if weights is None else np.asarray(weights, dtype=np.float64)
    key, _, n, (w, w2, wv, sv) = _count(k, code, len(uniq), [wt, wt * wt, wt * v, v])
    with np.errstate(invalid="ignore", divide="ignore"):
        u = np.where(w > 0, wv / np.where(w > 0, w, 1), sv / n)
    order = np.lexsort((u, key))  # a key's cells sorted by value
    return key[order], ValueCells(u[order], n[order], w[order], w2[order])


def collapse(keys: np.ndarray, cells: ValueCells, uniq: np.ndarray | None = None) -> tuple[np.ndarray, ValueCells]:
    """Cells of coarser keys: the cells that share a key and a value added up (a group's cells
    over its strata, say), in :func:`value_cells`' order. ``uniq``: the sorted distinct values
    of ``cells.u``, when known."""
    k = np.asarray(keys, dtype=np.int64)
    if len(k) == 0:
        return k, cells
    uniq = np.unique(cells.u) if uniq is None else uniq
    code = np.searchsorted(uniq, cells.u)
    n_keys = int(k.max()) + 1
    if n_keys * len(uniq) <= DENSE_CELLS:
        flat = k * len(uniq) + code
        size = n_keys * len(uniq)
        n = np.bincount(flat, cells.n.astype(np.float64), size)
        cell = np.flatnonzero(np.bincount(flat, minlength=size))
        return cell // len(uniq), ValueCells(uniq[cell % len(uniq)], n[cell].astype(np.int64),
                                             np.bincount(flat, cells.w, size)[cell],
                                             np.bincount(flat, cells.w2, size)[cell])
    order = np.lexsort((code, k))
    ks, cs = k[order], code[order]
    start = np.flatnonzero(np.r_[True, (ks[1:] != ks[:-1]) | (cs[1:] != cs[:-1])])
    return ks[start], ValueCells(uniq[cs[start]], np.add.reduceat(cells.n[order], start),
                                 np.add.reduceat(cells.w[order], start), np.add.reduceat(cells.w2[order], start))


def part(cells: ValueCells, pick: np.ndarray | slice) -> ValueCells:
    """The cells selected by ``pick`` (a slice of one key's run, or a mask)."""
    return ValueCells(cells.u[pick], cells.n[pick], cells.w[pick], cells.w2[pick])


def pooled(cells: Sequence[ValueCells]) -> ValueCells:
    """The cells of several groups together (the pooled distribution)."""
    u = np.concatenate([c.u for c in cells])
    uniq, inv = np.unique(u, return_inverse=True)

    def add(values: Sequence[np.ndarray], dtype: Any) -> np.ndarray:
        return np.bincount(inv, np.concatenate(values).astype(np.float64), len(uniq)).astype(dtype)

    return ValueCells(uniq, add([c.n for c in cells], np.int64), add([c.w for c in cells], np.float64),
                      add([c.w2 for c in cells], np.float64))


def quantiles(c: ValueCells, probs: Sequence[float]) -> np.ndarray:
    """Quantiles of a group's values: ``numpy.quantile(values, probs)`` (linear) without
    weights, ``numpy.quantile(values, probs, weights=w, method="inverted_cdf")`` with them.
    NaN for an empty group."""
    q = np.asarray(probs, dtype=np.float64)
    if c.rows == 0:
        return np.full(q.shape, np.nan)
    if c.weighted:
        cum = np.cumsum(c.w)
        at = np.searchsorted(cum, q * cum[-1], side="left")  # first value whose cumulative weight reaches q
        return c.u[np.minimum(at, len(c.u) - 1)]
    return _order_values(c, (c.rows - 1) * q)


def _order_values(c: ValueCells, h: np.ndarray) -> np.ndarray:
    """numpy's linear interpolation between the order statistics at 0-based positions ``h``."""
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, c.rows - 1)
    cum = np.cumsum(c.n)
    a = c.u[np.searchsorted(cum, lo, side="right")]
    b = c.u[np.searchsorted(cum, hi, side="right")]
    g = h - lo
    return np.where(g >= 0.5, b - (b - a) * (1 - g), a + (b - a) * g)  # numpy's _lerp


def median_interval(c: ValueCells, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval for the median: the order statistics x_(l) and x_(n+1-l)
    with the largest l such that P(Binomial(n, 1/2) < l) <= (1 - confidence) / 2 (on the
    effective size, and weighted quantiles at the same ranks, with weights). NaN when the
    group is too small for the confidence asked."""
    n = c.effective_n if c.weighted else c.rows
    m = int(np.floor(n))
    if m < 1:
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    # the largest l with P(X <= l - 1) <= alpha: near bdtrik's continuous solution, checked exactly
    guess = special.bdtrik(alpha, m, 0.5)
    start = int(np.floor(guess)) + 1 if np.isfinite(guess) else 1
    ls = np.arange(max(1, start - 2), min((m + 1) // 2, start + 2) + 1)
    ok = ls[special.bdtr(ls - 1, m, 0.5) <= alpha]
    if not len(ok):
        return float("nan"), float("nan")
    lo_rank = int(ok.max())
    if c.weighted:
        lo, hi = quantiles(c, [(lo_rank - 1) / max(m - 1, 1), (m - lo_rank) / max(m - 1, 1)])
        return float(lo), float(hi)
    lo, hi = _order_values(c, np.array([lo_rank - 1, c.rows - lo_rank], dtype=np.float64))
    return float(lo), float(hi)


def _cdfs(a: ValueCells, b: ValueCells) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The union of the two groups' values and both weighted empirical CDFs on it."""
    grid = np.union1d(a.u, b.u)

    def cdf(c: ValueCells) -> np.ndarray:
        cum = np.concatenate([[0.0], np.cumsum(c.w)])
        return cum[np.searchsorted(c.u, grid, side="right")] / (cum[-1] if cum[-1] > 0 else np.nan)

    return grid, cdf(a), cdf(b)


def ks_distance(a: ValueCells, b: ValueCells) -> float:
    """The largest gap between the two weighted empirical CDFs (scipy's ks_2samp statistic)."""
    if a.rows == 0 or b.rows == 0:
        return float("nan")
    _, fa, fb = _cdfs(a, b)
    return float(np.max(np.abs(fa - fb)))


def ks_pvalue(distance: float, a: ValueCells, b: ValueCells) -> float:
    """Asymptotic two-sided p-value of the two-sample KS statistic (Kolmogorov's
    distribution on n_a n_b / (n_a + n_b), effective sizes with weights)."""
    na, nb = a.effective_n, b.effective_n
    if not (na > 0 and nb > 0) or not np.isfinite(distance):
        return float("nan")
    return float(special.kolmogorov(np.sqrt(na * nb / (na + nb)) * distance))


def wasserstein_distance(a: ValueCells, b: ValueCells) -> float:
    """The Wasserstein-1 distance, in the value's units: the area between the two weighted
    empirical CDFs (scipy.stats.wasserstein_distance with the weights)."""
    if a.rows == 0 or b.rows == 0:
        return float("nan")
    grid, fa, fb = _cdfs(a, b)
    return float(np.sum(np.abs(fa - fb)[:-1] * np.diff(grid)))


def share_beyond(c: ValueCells, cut: float, higher: bool) -> tuple[float, float]:
    """(weight of values >= ``cut`` (``higher``) or <= ``cut``, total weight)."""
    pick = c.u >= cut if higher else c.u <= cut
    return float(c.w[pick].sum()), c.total_weight


#: cells with at least this many rows draw their Poisson count from its normal approximation
NORMAL_FROM = 50


def resample(c: ValueCells, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """The bootstrap over cells, as a (n_boot, cells) matrix of row counts (whole numbers,
    integer or float32): the **Poisson
    bootstrap** (each cell's count drawn from Poisson(its rows)), which approximates
    resampling the rows (a multinomial draw) for all but tiny groups and costs one vectorised
    draw per cell instead of a sequential one. Cells of at least ``NORMAL_FROM`` rows draw from
    the normal approximation to that Poisson (mean and variance its rows, rounded, at least 0:
    a fifth of the cost; the statistics sum over many cells). With weights each drawn row
    carries its cell's mean weight (an approximation)."""
    if c.rows == 0 or n_boot <= 0:
        return np.zeros((max(n_boot, 0), len(c.u)), dtype=np.int64)
    lam = c.n.astype(np.float32)
    big = lam >= NORMAL_FROM
    if big.mean() < 0.5:  # mostly small cells: exact Poisson draws throughout
        return rng.poisson(c.n.astype(np.float64), size=(n_boot, len(lam)))
    # normal draws for every cell (cheap), then the small cells' exact Poisson draws over them
    out = rng.standard_normal((n_boot, len(lam)), dtype=np.float32)
    out *= np.sqrt(lam)
    out += lam
    np.rint(out, out=out)
    np.maximum(out, 0, out=out)  # whole numbers, kept as float32 (exact below 2^24 rows per cell)
    if not big.all():
        small = np.flatnonzero(~big)
        out[:, small] = rng.poisson(c.n[small].astype(np.float64), size=(n_boot, len(small)))
    return out


def cluster_resample(c: ValueCells, cluster: np.ndarray, n_clusters: int, n_boot: int,
                     rng: np.random.Generator) -> np.ndarray:
    """The cluster bootstrap over cells: each cluster draws one Poisson(1) multiplicity per
    replicate, and every cell of the cluster is counted that many times (the Poisson
    bootstrap of whole clusters, for rows that are not independent within a cluster)."""
    own, local = np.unique(cluster, return_inverse=True)  # the group's own clusters only
    draws = rng.poisson(1.0, size=(n_boot, len(own))).astype(np.float32)
    return draws[:, local.ravel()] * c.n.astype(np.float32)


def replicate_weights(c: ValueCells, counts: np.ndarray) -> np.ndarray:
    """Each replicate's weight per cell: its drawn rows times the cell's mean weight."""
    with np.errstate(invalid="ignore", divide="ignore"):
        per_row = np.where(c.n > 0, c.w / np.where(c.n > 0, c.n, 1), 0.0)
    return counts * per_row


def _row_search(cum: np.ndarray, targets: np.ndarray, side: str) -> np.ndarray:
    """``searchsorted`` of each row's target in that row of ``cum`` (each row non-decreasing
    and >= 0): one search in the rows laid end to end, each shifted above the last."""
    b, c = cum.shape
    shift = (float(cum[:, -1].max()) + 1.0) * np.arange(b)
    flat = (cum + shift[:, None]).ravel()
    return np.searchsorted(flat, targets + shift, side=side) - c * np.arange(b)


def _quantile_of_cums(c: ValueCells, cum: np.ndarray, q: float) -> np.ndarray:
    """The ``q`` quantile of each replicate from its cumulative counts (weights, if weighted)."""
    if c.weighted:  # the first value whose cumulative weight reaches q of the total
        at = _row_search(cum, q * cum[:, -1], "left")
        return c.u[np.minimum(at, len(c.u) - 1)]
    total = cum[:, -1]
    h = (total - 1) * q
    lo = np.floor(h)
    a = c.u[np.minimum(_row_search(cum, lo, "right"), len(c.u) - 1)]
    b = c.u[np.minimum(_row_search(cum, np.minimum(lo + 1, total - 1), "right"), len(c.u) - 1)]
    g = h - lo
    return np.where(g >= 0.5, b - (b - a) * (1 - g), a + (b - a) * g)


def _cums(c: ValueCells, counts: np.ndarray) -> np.ndarray:
    """Cumulative rows per replicate (weights with weights), along the cells."""
    return np.cumsum(replicate_weights(c, counts) if c.weighted else counts, axis=1, dtype=np.float64)


def replicate_quantiles(c: ValueCells, counts: np.ndarray, q: float) -> np.ndarray:
    """The ``q`` quantile of each bootstrap replicate (rows of ``counts``), by the same
    definition as :func:`quantiles` (linear without weights, inverted CDF with them)."""
    return _quantile_of_cums(c, _cums(c, counts), q)


def _cdf_of_cums(c: ValueCells, cum: np.ndarray, grid: np.ndarray) -> np.ndarray:
    at = np.searchsorted(c.u, grid, side="right")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(at > 0, cum[:, np.maximum(at - 1, 0)], 0.0) / cum[:, -1:]


def replicate_cdfs(c: ValueCells, counts: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Each replicate's weighted empirical CDF at ``grid`` (rows of ``counts``)."""
    return _cdf_of_cums(c, _cums(c, counts), grid)


@dataclass(frozen=True)
class Replicates:
    """A group's bootstrap replicates, reduced to what its gaps need: each replicate's median,
    and its weighted CDF on a grid shared by every group (float32: the replicates' own spread
    is far larger than the rounding); or, when drawn ``against`` a reference's replicates,
    each replicate's KS and Wasserstein-1 distance to the reference's replicate of the same
    index instead of the CDF."""

    median: np.ndarray
    cdf: np.ndarray | None
    ks: np.ndarray | None = None
    wasserstein: np.ndarray | None = None


def replicates(c: ValueCells, n_boot: int, rng: np.random.Generator, grid: np.ndarray,
               against: Replicates | None = None, clusters: tuple[np.ndarray, int] | None = None) -> Replicates:
    """Draw a group's bootstrap (:func:`resample`) and reduce it at once (the counts are the
    large part and are not kept). With ``against`` (the reference's replicates, with their
    CDFs) the CDFs are reduced to the distances too, block by block, so that only the
    reference's CDFs are ever held whole. With ``clusters`` (each cell's cluster code, the
    number of clusters; the cells then per (cluster, value), sorted by value) the bootstrap
    resamples whole clusters (:func:`cluster_resample`)."""
    if c.rows == 0 or n_boot <= 0:
        return Replicates(np.zeros(0), np.zeros((0, len(grid)), dtype=np.float32))
    # in blocks of replicates, so that the draws and their cumulative sums stay a few MB
    # whatever the number of cells (the draws continue one stream block after block)
    width = max(len(c.u), len(grid), len(np.unique(clusters[0])) if clusters is not None else 0, 1)
    block = max(1, BLOCK_CELLS // width)
    paired = against is not None and against.cdf is not None and len(against.cdf) == n_boot
    medians = np.empty(n_boot)
    cdfs = None if paired else np.empty((n_boot, len(grid)), dtype=np.float32)
    ks, w1 = (np.empty(n_boot), np.empty(n_boot)) if paired else (None, None)
    for start in range(0, n_boot, block):
        stop = min(start + block, n_boot)
        counts = (resample(c, stop - start, rng) if clusters is None
                  else cluster_resample(c, clusters[0], clusters[1], stop - start, rng))
        cum = _cums(c, counts)
        medians[start:stop] = _quantile_of_cums(c, cum, 0.5)
        cdf = _cdf_of_cums(c, cum, grid).astype(np.float32)
        if paired:
            ks[start:stop], w1[start:stop] = _distances(cdf, against.cdf[start:stop], grid)
        else:
            cdfs[start:stop] = cdf
    return Replicates(medians, cdfs, ks, w1)


#: largest replicates x grid points of one group's bootstrap CDFs held at once (float32: 160 MB)
GRID_CELLS = 40_000_000


def replicate_grid(values: np.ndarray, n_boot: int) -> np.ndarray:
    """The grid the replicates' CDFs are taken on: every distinct value (then the replicates'
    KS and Wasserstein distances are exact), or, when ``n_boot`` x that many would exceed
    ``GRID_CELLS``, that many of them at evenly spaced ranks, first and last included."""
    u = np.unique(values)
    most = max(2, GRID_CELLS // max(n_boot, 1))
    if len(u) <= most:
        return u
    return u[np.unique(np.round(np.linspace(0, len(u) - 1, most)).astype(np.int64))]


def _distances(a: np.ndarray, b: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gap = np.abs(a - b)
    return gap.max(axis=1).astype(np.float64), gap[:, :-1].astype(np.float64) @ np.diff(grid)


def replicate_distances(a: Replicates, b: Replicates, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(KS, Wasserstein-1) of each pair of replicates of two groups on their shared grid (the
    distances between step functions do not change when the grid has more points)."""
    if a.ks is not None and a.wasserstein is not None:  # drawn against b: already reduced
        return a.ks, a.wasserstein
    return _distances(a.cdf, b.cdf, grid)


@dataclass(frozen=True)
class MeanComparison:
    """A group's mean against the reference's: difference (group - reference) with Welch's
    interval and p-value, and the ratio with its delta-method interval."""

    group: float
    reference: float
    difference: float
    difference_ci: tuple[float, float]
    ratio: float
    ratio_ci: tuple[float, float]
    p_value: float


def mean_comparison(g: ValueCells, r: ValueCells, confidence: float = 0.95) -> MeanComparison:
    """Welch's comparison of two weighted means (see the module docstring)."""
    mg, mr = g.mean, r.mean
    vg, vr = g.mean_variance, r.mean_variance
    d = mg - mr
    se, df, p = welch_moments(d, vg, g.effective_n, vr, r.effective_n)
    nan2 = (float("nan"), float("nan"))
    ci = (d - t_quantile(df, confidence) * se, d + t_quantile(df, confidence) * se) if np.isfinite(df) else nan2
    ratio = mg / mr if mr != 0 else float("nan")
    ratio_ci = nan2
    if mg > 0 and mr > 0 and np.isfinite(vg) and np.isfinite(vr):
        half = z_value(confidence) * np.sqrt(vg / mg**2 + vr / mr**2)
        ratio_ci = (float(ratio * np.exp(-half)), float(ratio * np.exp(half)))
    return MeanComparison(mg, mr, d, (float(ci[0]), float(ci[1])), ratio, ratio_ci, p)


@dataclass(frozen=True)
class Decomposition:
    """A difference of means split into strata: ``within + composition == total``."""

    total: float
    within: float
    composition: float
    unmatched_group: float
    unmatched_reference: float


def decomposition_se(strata_g: np.ndarray, cells_g: ValueCells, strata_r: np.ndarray, cells_r: ValueCells,
                     n_strata: int, clusters: tuple[np.ndarray, np.ndarray, int] | None = None) -> tuple[float, float]:
    """Standard errors of (within, composition) of :func:`decomposition` by the delta method:
    each side's rows are an independent sample; a row of stratum t and value v moves a
    statistic f(p, m) by its influence ``a_t - sum_s a_s p_s + b_t (v - m_t) / p_t`` (a = df/dp,
    b = df/dm), and the variance is sum w^2 IF^2 / (sum w)^2 with the n/(n-1) factor, per side,
    added over the two sides. O(cells); it gives the mean's own standard error when f is the
    mean."""
    def side(codes: np.ndarray, c: ValueCells) -> tuple[np.ndarray, np.ndarray, float]:
        W = np.bincount(codes, c.w, n_strata)
        V = np.bincount(codes, c.w * c.u, n_strata)
        total = W.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            return W / total, np.where(W > 0, V / np.where(W > 0, W, 1), 0.0), float(total)

    pg, mg, tg = side(strata_g, cells_g)
    pr, mr, tr = side(strata_r, cells_r)
    if not (tg > 0 and tr > 0):
        return float("nan"), float("nan")
    both, g_only, r_only = (pg > 0) & (pr > 0), (pg > 0) & (pr == 0), (pr > 0) & (pg == 0)
    # d/dp and d/dm of within and composition, for the group's side and the reference's
    a = {("within", "g"): np.where(both, 0.5 * (mg - mr), 0.0), ("within", "r"): np.where(both, 0.5 * (mg - mr), 0.0),
         ("composition", "g"): np.where(both, 0.5 * (mg + mr), np.where(g_only, mg, 0.0)),
         ("composition", "r"): np.where(both, -0.5 * (mg + mr), np.where(r_only, -mr, 0.0))}
    b = {("within", "g"): np.where(both, 0.5 * (pg + pr), 0.0), ("within", "r"): np.where(both, -0.5 * (pg + pr), 0.0),
         ("composition", "g"): np.where(both, 0.5 * (pg - pr), np.where(g_only, pg, 0.0)),
         ("composition", "r"): np.where(both, 0.5 * (pg - pr), np.where(r_only, -pr, 0.0))}

    def variance(stat: str, who: str, codes: np.ndarray, c: ValueCells, p: np.ndarray, m: np.ndarray,
                 total: float) -> float:
        at, bt = a[stat, who], b[stat, who]
        with np.errstate(invalid="ignore", divide="ignore"):
            infl = at[codes] - float(at @ p) + np.where(p[codes] > 0, bt[codes] * (c.u - m[codes]) / p[codes], 0.0)
        n_eff = c.effective_n
        factor = n_eff / (n_eff - 1) if n_eff > 1 else float("nan")
        return float(c.w2 @ infl**2) / total**2 * factor

    def influence(stat: str, who: str, codes: np.ndarray, c: ValueCells, p: np.ndarray, m: np.ndarray) -> np.ndarray:
        at, bt = a[stat, who], b[stat, who]
        with np.errstate(invalid="ignore", divide="ignore"):
            return at[codes] - float(at @ p) + np.where(p[codes] > 0, bt[codes] * (c.u - m[codes]) / p[codes], 0.0)

    out = []
    for stat in ("within", "composition"):
        if clusters is None:
            var = (variance(stat, "g", strata_g, cells_g, pg, mg, tg)
                   + variance(stat, "r", strata_r, cells_r, pr, mr, tr))
        else:  # each cluster's rows move the statistic together: add up their influence first
            cl_g, cl_r, n_cl = clusters
            per = (np.bincount(cl_g, cells_g.w * influence(stat, "g", strata_g, cells_g, pg, mg), n_cl) / tg
                   + np.bincount(cl_r, cells_r.w * influence(stat, "r", strata_r, cells_r, pr, mr), n_cl) / tr)
            present = np.zeros(n_cl, dtype=bool)
            present[cl_g], present[cl_r] = True, True
            var = cluster_variance(per[present], cells_g.rows + cells_r.rows, 2)
        out.append(float(np.sqrt(var)) if var >= 0 else float("nan"))
    return out[0], out[1]


def cluster_variance(contrib: np.ndarray, n_rows: int, n_params: int = 1) -> float:
    """The cluster-robust (sandwich) variance from each cluster's summed contribution:
    ``sum contrib^2 * G/(G-1) * (N-1)/(N-K)`` with G clusters, N rows and K parameters,
    statsmodels' small-sample factor for ``cov_type="cluster"``. NaN with fewer than 2 clusters."""
    g = len(contrib)
    if g < 2 or n_rows <= n_params:
        return float("nan")
    return float(contrib @ contrib) * g / (g - 1) * (n_rows - 1) / (n_rows - n_params)


def cluster_mean(c: ValueCells, cluster: np.ndarray, n_clusters: int) -> tuple[float, int]:
    """(the cluster-robust variance of the weighted mean, its degrees of freedom G - 1) from
    cells carrying their cluster codes."""
    total = c.total_weight
    if total <= 0:
        return float("nan"), 0
    e = np.bincount(cluster, c.w * (c.u - c.mean), n_clusters) / total
    present = np.bincount(cluster, minlength=n_clusters) > 0
    return cluster_variance(e[present], c.rows), int(present.sum()) - 1


def cluster_mean_comparison(g: ValueCells, gc: np.ndarray, r: ValueCells, rc: np.ndarray, n_clusters: int,
                            confidence: float = 0.95) -> MeanComparison:
    """:func:`mean_comparison` when rows come in clusters (the lines of one customer): the
    difference's variance from each cluster's summed residuals on both sides (clusters may
    span both groups), with statsmodels' cluster factor and G - 1 degrees of freedom, as a
    regression of the value on the group with ``cov_type="cluster"`` gives; the log ratio's
    by the delta method on the same sums."""
    from scipy import stats as sps

    mg, mr = g.mean, r.mean
    d = mg - mr
    nan2 = (float("nan"), float("nan"))
    if not (g.total_weight > 0 and r.total_weight > 0):
        return MeanComparison(mg, mr, d, nan2, float("nan"), nan2, float("nan"))
    eg = np.bincount(gc, g.w * (g.u - mg), n_clusters) / g.total_weight
    er = np.bincount(rc, r.w * (r.u - mr), n_clusters) / r.total_weight
    present = (np.bincount(gc, minlength=n_clusters) > 0) | (np.bincount(rc, minlength=n_clusters) > 0)
    n = g.rows + r.rows
    var = cluster_variance((eg - er)[present], n, 2)
    df = int(present.sum()) - 1
    if not (np.isfinite(var) and var > 0 and df >= 1):
        return MeanComparison(mg, mr, d, nan2, mg / mr if mr else float("nan"), nan2, float("nan"))
    se = float(np.sqrt(var))
    t = t_quantile(df, confidence)
    p = float(2 * sps.t.sf(abs(d) / se, df))
    ratio = mg / mr if mr != 0 else float("nan")
    ratio_ci = nan2
    if mg > 0 and mr > 0:
        lvar = cluster_variance((eg / mg - er / mr)[present], n, 2)
        half = t * np.sqrt(lvar)
        ratio_ci = (float(ratio * np.exp(-half)), float(ratio * np.exp(half)))
    return MeanComparison(mg, mr, d, (d - t * se, d + t * se), ratio, ratio_ci, p)


def decomposition(group: Mapping[Any, ValueCells], reference: Mapping[Any, ValueCells]) -> Decomposition:
    """The symmetric Kitagawa decomposition of mean(group) - mean(reference) over strata.

    With p the strata's weight shares and m their means: over strata present on both sides,
    ``within = sum 1/2 (p_g + p_r)(m_g - m_r)`` and ``composition = sum (p_g - p_r) 1/2 (m_g +
    m_r)``; a stratum present on one side only adds ``(p_g - p_r) m`` (m its one mean) to the
    composition, and its share is reported as unmatched."""
    wg = {s: c.total_weight for s, c in group.items() if c.total_weight > 0}
    wr = {s: c.total_weight for s, c in reference.items() if c.total_weight > 0}
    tg, tr = sum(wg.values()), sum(wr.values())
    if tg <= 0 or tr <= 0:
        nan = float("nan")
        return Decomposition(nan, nan, nan, nan, nan)
    within = composition = 0.0
    for s in set(wg) | set(wr):
        pg, pr = wg.get(s, 0.0) / tg, wr.get(s, 0.0) / tr
        if s in wg and s in wr:
            mg, mr = group[s].mean, reference[s].mean
            within += 0.5 * (pg + pr) * (mg - mr)
            composition += (pg - pr) * 0.5 * (mg + mr)
        else:
            composition += (pg - pr) * (group[s].mean if s in wg else reference[s].mean)
    mean_g = sum(group[s].mean * w for s, w in wg.items()) / tg
    mean_r = sum(reference[s].mean * w for s, w in wr.items()) / tr
    return Decomposition(mean_g - mean_r, within, composition,
                         sum(w for s, w in wg.items() if s not in wr) / tg,
                         sum(w for s, w in wr.items() if s not in wg) / tr)
