"""The value repair (``fairscan mitigate --value ... --method value-repair``) against
hand-computed barycenters, numpy quantiles and the repair's own invariants."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fairscan.errors import FairscanError
from fairscan.mitigation.value_repair import barycenter_map, repair_values
from tests.test_value import prices


def test_two_groups_meet_at_the_average_of_their_quantiles():
    """A = 1, 2, 3, 4 and B = 11, 12, 13, 14 with equal weights: the barycenter's quantiles are
    the averages 6, 7, 8, 9, and both groups are sent onto them (hand-computed)."""
    groups = np.array([0] * 4 + [1] * 4)
    values = np.array([1.0, 2, 3, 4, 11, 12, 13, 14])
    out = barycenter_map(groups, values, np.ones(8))
    np.testing.assert_allclose(out, [6, 7, 8, 9, 6, 7, 8, 9])
    # weights 3:1 pull the barycenter towards A: 0.75 a + 0.25 b
    out = barycenter_map(groups, values, np.r_[np.full(4, 3.0), np.ones(4)])
    np.testing.assert_allclose(out[:4], 0.75 * values[:4] + 0.25 * values[4:])


def test_the_map_averages_the_barycenters_quantile_function_over_each_cell_exactly():
    """Against exact rational arithmetic: each cell's block [a, b) of its group's quantiles is
    sent to the average over [a, b) of sum_h pi_h Q_h, with Q_h the inverted-CDF quantile
    function of group h's rows (ties in every group)."""
    from fractions import Fraction

    rng = np.random.default_rng(3)
    sizes = [30, 70, 15]
    groups = np.repeat(np.arange(3), sizes)
    values = np.concatenate([np.sort(rng.integers(lo, lo + 6, n)).astype(float)
                             for lo, n in zip((1, 3, 4), sizes, strict=True)])
    frame = pd.DataFrame({"g": groups, "v": values}).groupby(["g", "v"]).size().reset_index(name="n")
    out = barycenter_map(frame["g"].to_numpy(), frame["v"].to_numpy(), frame["n"].to_numpy(dtype=float))
    pi = [Fraction(n, sum(sizes)) for n in sizes]
    rows = [np.sort(values[groups == h]) for h in range(3)]

    def integral(h: int, a: Fraction, b: Fraction) -> Fraction:
        n = len(rows[h])
        return sum((Fraction(int(x)) * max(Fraction(0), min(b, Fraction(i + 1, n)) - max(a, Fraction(i, n)))
                    for i, x in enumerate(rows[h])), Fraction(0))

    want = []
    for g in range(3):
        part = frame[frame["g"] == g]
        n_g, before = int(part["n"].sum()), 0
        for n in part["n"]:
            a, b = Fraction(before, n_g), Fraction(before + int(n), n_g)
            want.append(float(sum(pi[h] * integral(h, a, b) for h in range(3)) / (b - a)))
            before += int(n)
    np.testing.assert_allclose(out, want, rtol=1e-12)


def test_full_repair_removes_the_gap_within_strata_and_keeps_the_total_when_asked():
    df = prices(4000, seed=8)
    full = repair_values(df, value="price", favourable="lower", sensitive="tier", within="product", amount=1.0)
    for row in full.points[0]["decomposition"]:
        assert abs(row["within"]) < 1e-9  # every group's stratum means are the barycenter's
    kept = repair_values(df, value="price", favourable="lower", sensitive="tier", amount=0.5, keep_total=True)
    ok = df["price"].notna()
    assert kept.repaired[0.5][ok].sum() == pytest.approx(df.loc[ok, "price"].sum(), rel=1e-12)
    assert np.isnan(kept.repaired[0.5][~ok]).all()  # missing values stay missing


def test_partial_repair_moves_each_value_part_of_the_way_and_reports_its_cost():
    df = prices(3000, seed=9)
    res = repair_values(df, value="price", favourable="lower", sensitive="tier")
    assert [p["amount"] for p in res.points] == [0.0, 0.25, 0.5, 0.75, 1.0]
    v = df["price"].to_numpy()
    ok = ~np.isnan(v)
    full = res.repaired[1.0]
    np.testing.assert_allclose(res.repaired[0.25][ok], 0.75 * v[ok] + 0.25 * full[ok], rtol=1e-12)
    np.testing.assert_array_equal(res.repaired[0.0][ok], v[ok])
    p = res.points[2]
    change = res.repaired[0.5][ok] - v[ok]
    assert p["share_worse"] == pytest.approx((change > 0).mean())  # a price: higher is worse
    assert p["largest_change"] == pytest.approx(np.abs(change).max())
    assert p["total_change"] == pytest.approx(change.sum())
    gaps = [p["largest_mean_gap"] for p in res.points]
    assert gaps[0] > gaps[-1] and gaps[-1] == pytest.approx(0.0, abs=1e-12)  # no strata: the means meet exactly
    rec = res.recommended
    assert rec["amount"] == min(q["amount"] for q in res.points if q["fail"] == 0)


def test_cli_repair_saves_only_what_it_is_asked_to(cli, tmp_path):
    df = prices(2000, seed=10).assign(customer=lambda d: [f"c{i}" for i in range(len(d))])
    path = tmp_path / "p.parquet"
    df.to_parquet(path)
    out = tmp_path / "repaired.parquet"
    r = cli("mitigate", str(path), "--value", "price", "--favourable", "lower", "--sensitive", "tier",
            "--method", "value-repair", "--amount", "1", "--save-values", str(out), "--key", "customer",
            "--format", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["analysis"] == "value_repair" and [p["amount"] for p in doc["points"]] == [1.0]
    saved = pd.read_parquet(out)
    assert list(saved.columns) == ["customer", "price"] and len(saved) == len(df)
    assert saved["customer"].tolist() == df["customer"].tolist()
    r = cli("mitigate", str(path), "--value", "price", "--sensitive", "tier", "--method", "value-repair")
    assert r.code == 2 and "--favourable" in r.err
    r = cli("mitigate", str(path), "--value", "price", "--favourable", "lower", "--sensitive", "tier")
    assert r.code == 2 and "--method value-repair" in r.err
    with pytest.raises(FairscanError, match="between 0"):
        repair_values(df, value="price", favourable="lower", sensitive="tier", amount=1.5)
