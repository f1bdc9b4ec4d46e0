"""Offer-value metrics from value cells, against independent oracles: numpy's quantiles,
scipy's KS, Wasserstein and Welch, statsmodels' weighted statistics, a pandas Kitagawa
decomposition, and hand-computed cases (a Simpson's paradox among them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fairscan.metrics import values as mv

PROBS = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 0.333, 0.01]


def draws(rng: np.random.Generator, n: int, distinct: int) -> np.ndarray:
    """Prices with many ties: ``distinct`` levels (cents), some heavy-tailed."""
    levels = np.round(rng.lognormal(2.0, 0.7, distinct), 2)
    return rng.choice(levels, n)


@pytest.mark.parametrize("n,distinct", [(1, 1), (2, 2), (7, 3), (50, 50), (1000, 37), (5000, 4000)])
def test_quantiles_equal_numpy_unweighted_and_weighted(n, distinct):
    rng = np.random.default_rng(n)
    x = draws(rng, n, distinct)
    c = mv.ValueCells.of(x)
    np.testing.assert_array_equal(mv.quantiles(c, PROBS), np.quantile(x, PROBS))
    w = rng.uniform(0.1, 3.0, n)
    cw = mv.ValueCells.of(x, w)
    np.testing.assert_array_equal(mv.quantiles(cw, PROBS), np.quantile(x, PROBS, weights=w, method="inverted_cdf"))


def test_mean_and_its_standard_error_equal_numpy_and_statsmodels():
    from statsmodels.stats.weightstats import DescrStatsW

    rng = np.random.default_rng(3)
    x = draws(rng, 800, 60)
    c = mv.ValueCells.of(x)
    assert c.mean == pytest.approx(x.mean(), rel=1e-12)
    assert c.mean_variance == pytest.approx(x.var(ddof=1) / len(x), rel=1e-10)
    w = rng.integers(1, 4, len(x)).astype(float)  # integer weights = replicated rows
    cw = mv.ValueCells.of(x, w)
    rep = np.repeat(x, w.astype(int))
    assert cw.mean == pytest.approx(DescrStatsW(x, weights=w).mean, rel=1e-12)
    assert cw.mean == pytest.approx(rep.mean(), rel=1e-12)
    # the linearised (sandwich) variance of a weighted mean, n_eff/(n_eff-1) corrected
    n_eff = w.sum() ** 2 / (w**2).sum()
    manual = (w**2 * (x - cw.mean) ** 2).sum() / w.sum() ** 2 * n_eff / (n_eff - 1)
    assert cw.mean_variance == pytest.approx(manual, rel=1e-10)


def test_welch_comparison_equals_scipy_without_weights():
    rng = np.random.default_rng(8)
    g, r = draws(rng, 300, 40) * 1.08, draws(rng, 900, 40)
    res = mv.mean_comparison(mv.ValueCells.of(g), mv.ValueCells.of(r))
    t = stats.ttest_ind(g, r, equal_var=False)
    assert res.p_value == pytest.approx(t.pvalue, rel=1e-9)
    lo, hi = t.confidence_interval(0.95)
    assert res.difference_ci == pytest.approx((lo, hi), rel=1e-9)
    assert res.difference == pytest.approx(g.mean() - r.mean(), rel=1e-12)
    assert res.ratio == pytest.approx(g.mean() / r.mean(), rel=1e-12)
    # the delta-method ratio interval covers the ratio and is about symmetric on the log scale
    assert res.ratio_ci[0] < res.ratio < res.ratio_ci[1]
    assert np.log(res.ratio) - np.log(res.ratio_ci[0]) == pytest.approx(np.log(res.ratio_ci[1]) - np.log(res.ratio))


@pytest.mark.parametrize("seed", range(6))
def test_ks_and_wasserstein_equal_scipy(seed):
    rng = np.random.default_rng(seed)
    x, y = draws(rng, 20 + 70 * seed, 3 + 5 * seed), draws(rng, 15 + 40 * seed, 4 + 7 * seed) * 1.1
    a, b = mv.ValueCells.of(x), mv.ValueCells.of(y)
    assert mv.ks_distance(a, b) == pytest.approx(stats.ks_2samp(x, y).statistic, abs=1e-12)
    assert mv.wasserstein_distance(a, b) == pytest.approx(stats.wasserstein_distance(x, y), rel=1e-9, abs=1e-12)
    wx, wy = rng.uniform(0.2, 2, len(x)), rng.uniform(0.2, 2, len(y))
    aw, bw = mv.ValueCells.of(x, wx), mv.ValueCells.of(y, wy)
    assert mv.wasserstein_distance(aw, bw) == pytest.approx(
        stats.wasserstein_distance(x, y, u_weights=wx, v_weights=wy), rel=1e-9, abs=1e-12)
    # weighted KS by its definition: the largest gap of the two weighted ECDFs on every value
    grid = np.union1d(x, y)
    fx = np.array([wx[x <= t].sum() for t in grid]) / wx.sum()
    fy = np.array([wy[y <= t].sum() for t in grid]) / wy.sum()
    assert mv.ks_distance(aw, bw) == pytest.approx(np.abs(fx - fy).max(), abs=1e-12)


def test_ks_pvalue_is_kolmogorovs_limiting_distribution():
    """scipy's kstwobign (the limiting distribution of sqrt(n) D) as the oracle; close to
    ks_2samp's own large-sample p-value (which uses the finite-n distribution at n_eff)."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(0, 1, 4000), rng.normal(0.05, 1, 3000)
    a, b = mv.ValueCells.of(x), mv.ValueCells.of(y)
    d = mv.ks_distance(a, b)
    en = 4000 * 3000 / 7000
    assert mv.ks_pvalue(d, a, b) == pytest.approx(stats.kstwobign.sf(np.sqrt(en) * d), rel=1e-9)
    assert mv.ks_pvalue(d, a, b) == pytest.approx(stats.ks_2samp(x, y, method="asymp").pvalue, rel=0.1)


def test_median_interval_is_the_binomial_order_statistic_interval():
    x = np.arange(1.0, 11.0)  # n = 10: P(Bin(10, 1/2) <= 1) = 0.0107 <= 0.025 < P(<= 2): ranks 2 and 9
    assert mv.median_interval(mv.ValueCells.of(x)) == (2.0, 9.0)
    rng = np.random.default_rng(4)
    y = draws(rng, 301, 80)
    lo, hi = mv.median_interval(mv.ValueCells.of(y))
    s = np.sort(y)
    k = int(stats.binom.ppf(0.025, len(y), 0.5))  # the largest l with P(X < l) <= 0.025
    while stats.binom.cdf(k, len(y), 0.5) <= 0.025:
        k += 1
    assert (lo, hi) == (s[k - 1], s[len(y) - k])
    assert lo <= np.median(y) <= hi
    assert all(np.isnan(mv.median_interval(mv.ValueCells.of([1.0, 2.0, 3.0]))))  # too few for 95%


def test_share_in_the_favourable_quarter():
    c = mv.ValueCells.of([1.0, 2, 3, 4, 5, 6, 7, 8])
    assert mv.share_beyond(c, 7.0, higher=True) == (2.0, 8.0)
    assert mv.share_beyond(c, 2.0, higher=False) == (2.0, 8.0)


def pandas_kitagawa(df: pd.DataFrame, g: str, r: str) -> tuple[float, float, float]:
    """The decomposition written directly in pandas on rows (the oracle)."""
    sub = df[df["grp"].isin([g, r])]
    agg = sub.assign(wv=sub["w"] * sub["v"]).groupby(["grp", "s"]).agg(w=("w", "sum"), wv=("wv", "sum"))
    agg["m"] = agg["wv"] / agg["w"]
    share = agg["w"] / agg.groupby(level="grp")["w"].transform("sum")
    pg, pr = share.xs(g, level="grp"), share.xs(r, level="grp")
    mg, mr = agg["m"].xs(g, level="grp"), agg["m"].xs(r, level="grp")
    both = pg.index.intersection(pr.index)
    within = (0.5 * (pg[both] + pr[both]) * (mg[both] - mr[both])).sum()
    comp = ((pg[both] - pr[both]) * 0.5 * (mg[both] + mr[both])).sum()
    comp += (pg.drop(both) * mg.drop(both)).sum() - (pr.drop(both) * mr.drop(both)).sum()
    total = np.average(sub.loc[sub["grp"] == g, "v"], weights=sub.loc[sub["grp"] == g, "w"]) - np.average(
        sub.loc[sub["grp"] == r, "v"], weights=sub.loc[sub["grp"] == r, "w"])
    return total, within, comp


def cells_by_stratum(df: pd.DataFrame, group: str) -> dict:
    part = df[df["grp"] == group]
    return {s: mv.ValueCells.of(p["v"], p["w"]) for s, p in part.groupby("s")}


def test_decomposition_equals_pandas_with_strata_on_one_side_only():
    rng = np.random.default_rng(12)
    n = 3000
    df = pd.DataFrame({"grp": rng.choice(["a", "b"], n), "s": rng.choice(list("pqrst"), n),
                       "v": np.round(rng.lognormal(2, 0.5, n), 2), "w": rng.uniform(0.5, 2, n)})
    df = df[~((df["grp"] == "a") & (df["s"] == "t")) & ~((df["grp"] == "b") & (df["s"] == "p"))]  # one-sided
    d = mv.decomposition(cells_by_stratum(df, "a"), cells_by_stratum(df, "b"))
    total, within, comp = pandas_kitagawa(df, "a", "b")
    assert d.total == pytest.approx(total, rel=1e-10)
    assert d.within == pytest.approx(within, rel=1e-10)
    assert d.composition == pytest.approx(comp, rel=1e-10)
    assert d.within + d.composition == pytest.approx(d.total, rel=1e-12)
    a, b = df[df["grp"] == "a"], df[df["grp"] == "b"]
    assert d.unmatched_group == pytest.approx(a.loc[a["s"] == "p", "w"].sum() / a["w"].sum())
    assert d.unmatched_reference == pytest.approx(b.loc[b["s"] == "t", "w"].sum() / b["w"].sum())


def test_simpsons_paradox_within_and_overall_have_opposite_signs():
    """Low-spend customers pay 10% more for each product but are shown the cheap product far
    more often: overall they pay less, within products more (hand-computed)."""
    rows = ([("low", "cheap", 11.0)] * 90 + [("low", "dear", 110.0)] * 10
            + [("high", "cheap", 10.0)] * 10 + [("high", "dear", 100.0)] * 90)
    df = pd.DataFrame(rows, columns=["grp", "s", "v"]).assign(w=1.0)
    d = mv.decomposition(cells_by_stratum(df, "low"), cells_by_stratum(df, "high"))
    # means: low 0.9*11 + 0.1*110 = 20.9; high 0.1*10 + 0.9*100 = 91.0
    assert d.total == pytest.approx(20.9 - 91.0)
    assert d.within == pytest.approx(0.5 * (0.9 + 0.1) * 1.0 + 0.5 * (0.1 + 0.9) * 10.0)  # +5.5: pays more
    assert d.composition == pytest.approx((0.9 - 0.1) * 10.5 + (0.1 - 0.9) * 105.0)  # -75.6: steered
    assert d.total < 0 < d.within


def test_pooled_cells_are_the_cells_of_all_rows():
    rng = np.random.default_rng(1)
    x, y = draws(rng, 100, 20), draws(rng, 80, 25)
    wx, wy = rng.uniform(size=100), rng.uniform(size=80)
    p = mv.pooled([mv.ValueCells.of(x, wx), mv.ValueCells.of(y, wy)])
    both = mv.ValueCells.of(np.r_[x, y], np.r_[wx, wy])
    for f in ("u", "n", "w", "w2"):
        np.testing.assert_allclose(getattr(p, f), getattr(both, f), rtol=1e-12)


def test_value_cells_of_many_keys_equal_each_keys_own_cells():
    rng = np.random.default_rng(9)
    keys, x, w = rng.integers(0, 5, 2000), draws(rng, 2000, 40), rng.uniform(0, 2, 2000)
    kc, cells = mv.value_cells(keys, x, w)
    for key in np.unique(keys):
        got = mv.part(cells, kc == key)
        want = mv.ValueCells.of(x[keys == key], w[keys == key])
        for f in ("u", "n", "w", "w2"):
            np.testing.assert_allclose(getattr(got, f), getattr(want, f), rtol=1e-12)


def test_replicate_statistics_of_the_data_itself_equal_the_point_estimates():
    """A bootstrap replicate that draws every row once is the data: its quantiles, distances
    and decomposition equal the (oracle-checked) point estimates, weighted or not."""
    rng = np.random.default_rng(21)
    for weighted in (False, True):
        x, y = draws(rng, 400, 30), draws(rng, 300, 45)
        wx = rng.uniform(0.5, 2, 400) if weighted else None
        wy = rng.uniform(0.5, 2, 300) if weighted else None
        a, b = mv.ValueCells.of(x, wx), mv.ValueCells.of(y, wy)
        for q in (0.1, 0.5, 0.9):
            assert mv.replicate_quantiles(a, a.n[None, :], q)[0] == mv.quantiles(a, [q])[0]
        grid = np.union1d(np.union1d(a.u, b.u), [0.0, 1e6])  # extra grid points change nothing
        ra = mv.Replicates(mv.replicate_quantiles(a, a.n[None, :], 0.5), mv.replicate_cdfs(a, a.n[None, :], grid))
        rb = mv.Replicates(mv.replicate_quantiles(b, b.n[None, :], 0.5), mv.replicate_cdfs(b, b.n[None, :], grid))
        ks, w1 = mv.replicate_distances(ra, rb, grid)
        assert ks[0] == pytest.approx(mv.ks_distance(a, b), abs=1e-12)
        assert w1[0] == pytest.approx(mv.wasserstein_distance(a, b), rel=1e-12)
    df = pd.DataFrame({"grp": rng.choice(["a", "b"], 900), "s": rng.choice(list("pqr"), 900),
                       "v": draws(rng, 900, 50), "w": rng.uniform(0.5, 2, 900)})
    df = df[~((df["grp"] == "a") & (df["s"] == "r"))]
    codes = {"p": 0, "q": 1, "r": 2}
    sides = []
    for g in ("a", "b"):
        part = df[df["grp"] == g]
        kc, cells = mv.value_cells(part["s"].map(codes).to_numpy(), part["v"].to_numpy(), part["w"].to_numpy())
        sides += [kc, cells.w[None, :], (cells.w * cells.u)[None, :]]
    within, comp = replicate_decompositions(*sides, n_strata=3)
    d = mv.decomposition(cells_by_stratum(df, "a"), cells_by_stratum(df, "b"))
    assert within[0] == pytest.approx(d.within, rel=1e-10) and comp[0] == pytest.approx(d.composition, rel=1e-10)


def replicate_decompositions(strata_g: np.ndarray, wg: np.ndarray, vg: np.ndarray, strata_r: np.ndarray,
                             wr: np.ndarray, vr: np.ndarray, n_strata: int) -> tuple[np.ndarray, np.ndarray]:
    """(within, composition) of each bootstrap replicate, from each side's replicate weights
    per cell (``wg``: replicates x cells), the cells' weighted value sums (``vg``, same
    shape) and the cells' strata codes; the same rule as :func:`decomposition`, vectorised."""
    def by_stratum(codes: np.ndarray, x: np.ndarray) -> np.ndarray:
        out = np.zeros((len(x), n_strata))
        np.add.at(out.T, codes, x.T)
        return out

    Wg, Vg, Wr, Vr = by_stratum(strata_g, wg), by_stratum(strata_g, vg), by_stratum(strata_r, wr), by_stratum(strata_r, vr)
    with np.errstate(invalid="ignore", divide="ignore"):
        pg, pr = Wg / Wg.sum(axis=1, keepdims=True), Wr / Wr.sum(axis=1, keepdims=True)
        mg, mr = np.where(Wg > 0, Vg / np.where(Wg > 0, Wg, 1), 0.0), np.where(Wr > 0, Vr / np.where(Wr > 0, Wr, 1), 0.0)
    both = (Wg > 0) & (Wr > 0)
    within = np.where(both, 0.5 * (pg + pr) * (mg - mr), 0.0).sum(axis=1)
    comp = np.where(both, (pg - pr) * 0.5 * (mg + mr), np.where(Wg > 0, pg * mg, 0.0) - np.where(Wr > 0, pr * mr, 0.0))
    return within, comp.sum(axis=1)




def test_decomposition_standard_errors_agree_with_the_bootstrap_and_the_mean():
    """The delta-method standard errors of within and composition against a row bootstrap of
    the same data (4,000 replicates), weighted; and with one stratum, composition has none
    and within's is the mean difference's own (Welch's) standard error."""
    rng = np.random.default_rng(30)
    n = 6000
    df = pd.DataFrame({"grp": rng.choice(["a", "b"], n, p=[0.3, 0.7]), "s": rng.choice(list("pqrs"), n),
                       "v": draws(rng, n, 300), "w": rng.uniform(0.5, 2, n)})
    df = df[~((df["grp"] == "a") & (df["s"] == "s"))]
    codes = {"p": 0, "q": 1, "r": 2, "s": 3}
    sides = {}
    for g in ("a", "b"):
        part = df[df["grp"] == g]
        sides[g] = mv.value_cells(part["s"].map(codes).to_numpy(), part["v"].to_numpy(), part["w"].to_numpy())
    se_w, se_c = mv.decomposition_se(*sides["a"], *sides["b"], n_strata=4)
    boot = np.random.default_rng(1)
    reps = []
    for g in ("a", "b"):
        k, c = sides[g]
        draws_ = boot.multinomial(c.rows, c.n / c.rows, size=4000)
        wts = mv.replicate_weights(c, draws_)
        reps += [k, wts, wts * c.u]
    within, comp = replicate_decompositions(*reps, n_strata=4)
    assert se_w == pytest.approx(within.std(), rel=0.08)
    assert se_c == pytest.approx(comp.std(), rel=0.08)
    x, y = df.loc[df["grp"] == "a", "v"].to_numpy(), df.loc[df["grp"] == "b", "v"].to_numpy()
    one = [(np.zeros(len(c.u), dtype=np.int64), c) for c in (mv.ValueCells.of(x), mv.ValueCells.of(y))]
    se_w1, se_c1 = mv.decomposition_se(one[0][0], one[0][1], one[1][0], one[1][1], n_strata=1)
    assert se_w1 == pytest.approx(np.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y)), rel=1e-10)
    assert se_c1 == pytest.approx(0.0, abs=1e-12)


def test_resampling_cells_is_the_row_bootstrap():
    """The Poisson bootstrap over cells has the row bootstrap's spread: replicates hold the
    group's rows on average, and the replicate means' standard deviation is the standard
    error of the mean."""
    rng = np.random.default_rng(4)
    x = draws(rng, 2000, 60)
    c = mv.ValueCells.of(x)
    counts = mv.resample(c, 4000, np.random.default_rng(0))
    assert counts.sum(axis=1).mean() == pytest.approx(2000, rel=0.01)
    means = (counts @ c.u) / counts.sum(axis=1)
    assert means.std() == pytest.approx(x.std(ddof=0) / np.sqrt(2000), rel=0.05)


def test_dense_and_sorted_cell_counting_equal_a_pandas_groupby(monkeypatch):
    """Both ways of counting cells (one bincount, or a sort of the rows) against a pandas
    group-by of (key, value): rows, weights and squared weights, in key then value order."""
    rng = np.random.default_rng(13)
    keys, x, w = rng.integers(0, 7, 3000), draws(rng, 3000, 90), rng.uniform(0, 2, 3000)
    want = (pd.DataFrame({"k": keys, "v": x, "w": w, "w2": w * w}).groupby(["k", "v"])
            .agg(n=("w", "size"), w=("w", "sum"), w2=("w2", "sum")).reset_index())
    coded = mv.code_values(x)
    results = [mv.value_cells(keys, x, w, coded=coded)]
    monkeypatch.setattr(mv, "DENSE_CELLS", 0)
    results += [mv.value_cells(keys, x, w, coded=coded), mv.value_cells(keys, x, w)]
    for got_keys, got in results:
        np.testing.assert_array_equal(got_keys, want["k"])
        np.testing.assert_array_equal(got.u, want["v"])
        np.testing.assert_array_equal(got.n, want["n"])
        np.testing.assert_allclose(got.w, want["w"], rtol=1e-12)
        np.testing.assert_allclose(got.w2, want["w2"], rtol=1e-12)


def test_replicate_quantiles_and_cdfs_equal_numpy_on_each_replicate():
    rng = np.random.default_rng(17)
    x, wx = draws(rng, 700, 50), rng.uniform(0.5, 2, 700)
    for c in (mv.ValueCells.of(x), mv.ValueCells.of(x, wx)):
        counts = mv.resample(c, 25, rng)
        per_row = c.w / c.n
        grid = np.union1d(c.u, [0.0])
        cdfs = mv.replicate_cdfs(c, counts, grid)
        for q in (0.1, 0.5, 0.93):
            got = mv.replicate_quantiles(c, counts, q)
            for b in range(len(counts)):
                rows = np.repeat(c.u, counts[b])
                if c.weighted:
                    want = np.quantile(rows, q, weights=np.repeat(per_row, counts[b]), method="inverted_cdf")
                else:
                    want = np.quantile(rows, q)
                assert got[b] == pytest.approx(want, abs=1e-12)
        for b in range(len(counts)):
            w = np.repeat(per_row, counts[b])
            rows = np.repeat(c.u, counts[b])
            want = np.array([w[rows <= t].sum() for t in grid]) / w.sum()
            np.testing.assert_allclose(cdfs[b], want, rtol=1e-12, atol=1e-15)


def test_poisson_bootstrap_counts_have_poisson_moments_on_both_paths():
    """Cells of few rows draw exact Poisson counts, cells of many rows the normal
    approximation: either way each cell's count has mean and variance equal to its rows."""
    rng = np.random.default_rng(2)
    for rows_per_value in (3, 400):  # the exact path, then the normal one
        x = np.repeat(np.arange(40.0), rows_per_value)
        c = mv.ValueCells.of(x)
        counts = mv.resample(c, 20_000, rng)
        assert counts.min() >= 0 and (counts == np.round(counts)).all()
        np.testing.assert_allclose(counts.mean(axis=0), rows_per_value, rtol=0.02)
        np.testing.assert_allclose(counts.var(axis=0), rows_per_value, rtol=0.08)


def test_replicates_in_blocks_and_against_a_reference_equal_the_whole_draw(monkeypatch):
    """Drawing in blocks of replicates continues one stream (exact Poisson draws: the same
    numbers as one draw), and distances taken block by block against the reference equal
    the distances between the two whole sets of CDFs."""
    rng = np.random.default_rng(5)
    a = mv.ValueCells.of(draws(rng, 3000, 400))  # mostly small cells: exact Poisson draws
    b = mv.ValueCells.of(draws(rng, 2000, 300))
    grid = np.union1d(a.u, b.u)
    whole_a = mv.replicates(a, 200, np.random.default_rng(1), grid)
    whole_b = mv.replicates(b, 200, np.random.default_rng(2), grid)
    monkeypatch.setattr(mv, "BLOCK_CELLS", 7 * len(grid) + 3)  # blocks of 7 replicates, the last one short
    blocked_a = mv.replicates(a, 200, np.random.default_rng(1), grid)
    np.testing.assert_array_equal(blocked_a.median, whole_a.median)
    np.testing.assert_array_equal(blocked_a.cdf, whole_a.cdf)
    paired = mv.replicates(b, 200, np.random.default_rng(2), grid, against=whole_a)
    assert paired.cdf is None
    np.testing.assert_array_equal(paired.median, whole_b.median)
    ks, w1 = mv.replicate_distances(whole_b, whole_a, grid)
    got_ks, got_w1 = mv.replicate_distances(paired, whole_a, grid)
    np.testing.assert_allclose(got_ks, ks, rtol=0, atol=0)
    np.testing.assert_allclose(got_w1, w1, rtol=1e-12)
