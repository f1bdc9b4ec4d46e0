"""Uncertainty from counts: Wilson intervals, count bootstrap, two-proportion tests, Holm.

All vectorised over groups and metrics; scipy is called only for the few small tables that
need Fisher's exact test. The choices, for users and reviewers:

- **Wilson score interval** for every group rate (with weights: on the Kish effective size
  of the rate's denominator, ``(sum w)^2 / sum w^2``).
- **Bootstrap by resampling counts**: within each group, a multinomial draw of the group's
  rows over its four cells is exactly the nonparametric bootstrap of any count-based metric
  (group sizes held fixed: a stratified bootstrap). With weights the draw has the group's
  effective size and the weighted cell shares (an approximation, documented as such).
  Intervals are percentile intervals. Each group draws from its **own random stream**,
  keyed by the seed, the attribute and the group's name (:func:`group_streams`): a group's
  interval depends on its own counts only, so an audit from a counts file whose small groups
  are withheld, or whose groups come in another order, gives the same intervals.
- **Tests of group vs reference**: Fisher's exact test when any expected count of the 2x2
  table is below 5 (Cochran's rule), otherwise the pooled two-proportion z-test (identical
  to the chi-square test without continuity correction). Two-sided. With weights, on
  effective counts (rounded for Fisher).
- **Holm's step-down correction** across the whole disparity table of an audit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from scipy import special

__all__ = [
    "FISHER_MIN_EXPECTED", "benjamini_hochberg", "benjamini_yekutieli", "bootstrap_cells", "effective_n", "fisher_exact", "group_streams",
    "holm",
    "newcombe_difference", "noisy_effective_n", "percentile_interval", "ratio_interval", "t_quantile", "two_proportion_test", "welch_moments", "welch_test", "wilson",
    "z_value",
]

FISHER_MIN_EXPECTED = 5.0


def z_value(confidence: float) -> float:
    """Two-sided normal quantile for a confidence level (0.95 -> 1.95996...)."""
    return float(special.ndtri(0.5 + confidence / 2))


def wilson(p: np.ndarray, n: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for proportions ``p`` observed on ``n`` (NaN where undefined)."""
    p = np.asarray(p, dtype=float)
    n = np.asarray(n, dtype=float)
    z = z_value(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        z2n = z * z / n
        centre = (p + z2n / 2) / (1 + z2n)
        half = z / (1 + z2n) * np.sqrt(p * (1 - p) / n + z2n / (4 * n))
        lo = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
        hi = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    bad = np.isnan(p)
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def effective_n(w: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """Kish effective sample size ``(sum w)^2 / sum w^2`` (0 where there is no weight)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(w2 > 0, w * w / np.where(w2 > 0, w2, 1), 0.0)


def noisy_effective_n(p: np.ndarray, n: np.ndarray, var_num: np.ndarray, var_rest: np.ndarray) -> np.ndarray:
    """The sample size at which a rate ``p`` = x / n from *noisy* counts has the variance it
    really has: the binomial p(1 - p) / n plus the noise's, by the delta method
    ((1 - p)^2 var(noise of x) + p^2 var(noise of n - x)) / n^2. Wilson's interval and the
    tests on this size widen by exactly the noise (as the Kish size does for weights). At
    p = 0 or 1 the binomial term uses p = 0.5 / n."""
    p = np.asarray(p, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.clip(p, 0.5 / np.maximum(n, 1), 1 - 0.5 / np.maximum(n, 1))
        binom = q * (1 - q) / n
        noise = ((1 - q) ** 2 * var_num + q * q * var_rest) / (n * n)
        return np.where(n > 0, q * (1 - q) / (binom + noise), 0.0)


def group_streams(seed: int, grouping: str, labels: Sequence[str]) -> list[np.random.Generator]:
    """One random stream per group, keyed by (seed, grouping's name, group's label): the same
    stream for the same group whatever other groups there are."""
    def key(text: str) -> int:
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")

    g = key(grouping)
    return [np.random.default_rng([int(seed) & (2**64 - 1), g, key(str(lab))]) for lab in labels]


def bootstrap_cells(
    n: np.ndarray,
    w: np.ndarray | None,
    w2: np.ndarray | None,
    n_boot: int,
    rng: np.random.Generator | Sequence[np.random.Generator],
    noise_var: np.ndarray | None = None,
) -> np.ndarray:
    """``n_boot`` bootstrap replicates of the (G, C) cell table: shape (n_boot, G, C).

    Unweighted: each group's rows are redrawn over its cells (multinomial, size n_g).
    Weighted: drawn with the group's effective size over the weighted cell shares. ``rng``:
    one generator for every group, or one per group (:func:`group_streams`). ``noise_var``:
    counts that are a differentially private release carry noise of this variance per cell;
    each replicate gets fresh noise of the same variance (normal), clipped at 0.
    """
    if w is None:
        size = n.sum(axis=1)
        shares = n / np.maximum(size, 1)[:, None]
    else:
        tot = w.sum(axis=1)
        size = np.rint(effective_n(tot, w2.sum(axis=1))).astype(np.int64)
        shares = np.where(tot[:, None] > 0, w / np.where(tot > 0, tot, 1)[:, None], 1 / n.shape[1])
    shares = np.where(shares.sum(axis=1, keepdims=True) > 0, shares, 1 / n.shape[1])
    shares = shares / shares.sum(axis=1, keepdims=True)
    if isinstance(rng, np.random.Generator):
        return rng.multinomial(size.astype(np.int64), shares, size=(n_boot, len(size))).astype(float)
    out = np.empty((n_boot, *n.shape))
    for i, g in enumerate(rng):
        out[:, i] = g.multinomial(int(size[i]), shares[i], size=n_boot)
        if noise_var is not None:
            out[:, i] = np.clip(out[:, i] + g.normal(0.0, np.sqrt(noise_var[i]), size=(n_boot, n.shape[1])), 0, None)
    return out


def percentile_interval(
    reps: np.ndarray, confidence: float = 0.95, min_valid: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0 (linear interpolation, as ``np.quantile``), ignoring
    NaN replicates; NaN where fewer than ``min_valid`` of the replicates are defined.

    One sort instead of ``np.nanquantile``, whose per-column loop dominates small tables.
    """
    a = (1 - confidence) / 2
    srt = np.sort(reps, axis=0)  # NaN sort last
    valid = np.isfinite(reps).sum(axis=0)
    out = []
    for q in (a, 1 - a):
        pos = q * np.maximum(valid - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(valid - 1, 0))
        frac = pos - lo
        v_lo = np.take_along_axis(srt, lo[None], axis=0)[0]
        v_hi = np.take_along_axis(srt, hi[None], axis=0)[0]
        with np.errstate(invalid="ignore"):
            val = v_lo + (v_hi - v_lo) * frac
        out.append(np.where(valid >= max(1, min_valid * len(reps)), val, np.nan))
    return out[0], out[1]


def two_proportion_test(
    x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided p-values for H0: x1/n1 == x2/n2, and the test used per entry.

    Fisher's exact test where an expected count is below 5, else the pooled z-test.
    Returns (p, test) with test in {"fisher", "z", ""} ("" where undefined: an empty group).
    """
    x1, n1, x2, n2 = (np.asarray(a, dtype=float) for a in (x1, n1, x2, n2))
    shape = np.broadcast(x1, n1, x2, n2).shape
    x1, n1, x2, n2 = (np.broadcast_to(a, shape).ravel() for a in (x1, n1, x2, n2))
    p = np.full(x1.shape, np.nan)
    test = np.full(x1.shape, "", dtype=object)
    defined = (n1 > 0) & (n2 > 0) & np.isfinite(x1) & np.isfinite(x2)
    tot = n1 + n2
    succ = x1 + x2
    with np.errstate(invalid="ignore", divide="ignore"):
        exp_min = np.minimum.reduce(
            [n1 * succ / tot, n1 * (tot - succ) / tot, n2 * succ / tot, n2 * (tot - succ) / tot]
        )
        pooled = succ / tot
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (x1 / n1 - x2 / n2) / se
    use_fisher = defined & ~(exp_min >= FISHER_MIN_EXPECTED)
    use_z = defined & ~use_fisher
    p[use_z] = 2 * special.ndtr(-np.abs(z[use_z]))
    test[use_z] = "z"
    if use_fisher.any():
        i = np.flatnonzero(use_fisher)
        a, c = np.round(x1[i]), np.round(x2[i])
        p[i] = fisher_exact(a, np.round(n1[i]) - a, c, np.round(n2[i]) - c)
        test[i] = "fisher"
    return p.reshape(shape), test.reshape(shape)


def fisher_exact(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Two-sided p-values of Fisher's exact test for many 2x2 tables [[a, b], [c, d]] at once:
    the probability, under the hypergeometric law of ``a`` given the margins, of every table
    no more likely than the observed one (relative tolerance 1e-7, as R's ``fisher.test``).
    Each table's probabilities come from the ratios of neighbouring terms over its support,
    normalised per table: no factorial is evaluated, so large margins lose no precision."""
    a, b, c, d = (np.asarray(v, dtype=np.int64).ravel() for v in (a, b, c, d))
    out = np.ones(len(a))
    step = 1 << 22  # support terms per block: bounds the memory of one call
    start = 0
    while start < len(a):
        n1, n2, k_tot = a + b, c + d, a + c
        lo = np.maximum(0, k_tot - n2)
        hi = np.minimum(n1, k_tot)
        width = hi - lo + 1
        stop = start + max(1, int(np.searchsorted(np.cumsum(width[start:]), step, side="right")))
        sl = slice(start, stop)
        w = width[sl]
        seg = np.repeat(np.arange(stop - start), w)
        first = np.concatenate([[0], np.cumsum(w)[:-1]])
        k = lo[sl][seg] + (np.arange(len(seg)) - first[seg])
        n1s, n2s, ks = n1[sl][seg], n2[sl][seg], k_tot[sl][seg]
        # log pmf(k) - log pmf(lo): cumulative log of pmf(j+1)/pmf(j), j = lo .. k-1
        with np.errstate(divide="ignore", invalid="ignore"):
            j = k - 1
            step_log = np.log((n1s - j) * (ks - j) / ((j + 1) * (n2s - ks + j + 1.0)))
        step_log[np.arange(len(seg)) == first[seg]] = 0.0
        logp = np.cumsum(step_log)
        logp -= np.repeat(logp[first] - 0.0, w)  # restart the sum at each table's first term
        logp -= np.repeat(np.maximum.reduceat(logp, first), w)
        mass = np.exp(logp)
        observed = logp[first + (a[sl] - lo[sl])]
        tail = np.where(logp <= np.repeat(observed, w) + np.log1p(1e-7), mass, 0.0)
        out[sl] = np.minimum(1.0, np.add.reduceat(tail, first) / np.add.reduceat(mass, first))
        start = stop
    return out


def _ranked(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(output full of NaN, the defined p-values' positions from smallest to largest, those
    p-values): the frame every step-wise adjustment fills in."""
    p = np.asarray(p, dtype=float)
    idx = np.flatnonzero(~np.isnan(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    return np.full(p.shape, np.nan), order, p[order]


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries are ignored and stay NaN."""
    out, order, ranked = _ranked(p)
    m = len(order)
    if m:
        out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * ranked))
    return out


def _step_up(p: np.ndarray, dependent: bool) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values, with Yekutieli's factor
    sum(1/i, i=1..m) when ``dependent``; NaN entries are ignored and stay NaN."""
    out, order, ranked = _ranked(p)
    m = len(order)
    if m:
        rank = np.arange(1, m + 1)
        scaled = ranked * m * (float(np.sum(1.0 / rank)) if dependent else 1.0) / rank
        out[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return out


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (as ``scipy.stats.false_discovery_control``):
    false discovery rate control for independent or positively dependent tests. NaN entries
    are ignored and stay NaN."""
    return _step_up(p, dependent=False)


def benjamini_yekutieli(p: np.ndarray) -> np.ndarray:
    """Benjamini-Yekutieli adjusted p-values: false discovery rate control under any
    dependence between the tests (overlapping subgroups), at the price of a factor
    sum(1/i, i=1..m). NaN entries are ignored and stay NaN."""
    return _step_up(p, dependent=True)


def welch_test(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) for equal means, as
    ``scipy.stats.ttest_ind(x, y, equal_var=False)``; NaN when undefined. Student's t from
    ``scipy.special`` (importing ``scipy.stats`` costs most of a second)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    nx, ny = len(x), len(y)
    if nx < 2 or ny < 2:
        return float("nan")
    return welch_moments(x.mean() - y.mean(), x.var(ddof=1) / nx, nx, y.var(ddof=1) / ny, ny)[2]


def welch_moments(difference: float, vx: float, nx: float, vy: float, ny: float) -> tuple[float, float, float]:
    """Welch's test from summaries: a difference of two means whose squared standard errors
    are ``vx`` and ``vy``, from ``nx`` and ``ny`` observations (effective sizes with weights).
    Returns (standard error, Welch-Satterthwaite degrees of freedom, two-sided p); NaN p where
    undefined."""
    se2 = vx + vy
    if not (se2 > 0 and nx > 1 and ny > 1):
        return float(np.sqrt(max(se2, 0.0))), float("nan"), float("nan")
    df = se2 * se2 / (vx * vx / (nx - 1) + vy * vy / (ny - 1))
    t = difference / np.sqrt(se2)
    return float(np.sqrt(se2)), float(df), float(2 * special.stdtr(df, -abs(t)))


def t_quantile(df: float, confidence: float) -> float:
    """The two-sided critical value of Student's t with ``df`` degrees of freedom."""
    return float(special.stdtrit(df, 0.5 + confidence / 2))


def newcombe_difference(x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray,
                        confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval (method 10, from two Wilson intervals) for the
    difference of two independent proportions x1/n1 - x2/n2 (NaN where undefined)."""
    x1, n1, x2, n2 = (np.asarray(a, dtype=float) for a in (x1, n1, x2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(p1, n1, confidence)
    l2, u2 = wilson(p2, n2, confidence)
    d = p1 - p2
    return d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def ratio_interval(x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray,
                   confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Interval for the ratio of two independent proportions (x1/n1) / (x2/n2): the log
    (Katz) interval with 0.5 added to each count and size, defined when a count is 0 too
    (statsmodels' default, ``log-adjusted``). NaN where a size is 0."""
    x1, n1, x2, n2 = (np.asarray(a, dtype=float) + 0.5 for a in (x1, n1, x2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        log_r = np.log((x1 / n1) / (x2 / n2))
        half = z_value(confidence) * np.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
        ok = (n1 > 0.5) & (n2 > 0.5)
        return np.where(ok, np.exp(log_r - half), np.nan), np.where(ok, np.exp(log_r + half), np.nan)
