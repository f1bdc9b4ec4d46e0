"""The in-memory engine and group resolution: counts checked against pandas groupby."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fairscan
from fairscan.engines import base, memory
from fairscan.engines.memory import top_k_mask
from fairscan.groups import tier_labels
from tests.conftest import examples


def _frame(n: int = 5000, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "a": rng.choice(["x", "y", "z"], n),
        "b": rng.choice(["p", "q"], n),
        "v": np.where(rng.random(n) < 0.05, np.nan, rng.normal(size=n)),
        "y": rng.random(n) < 0.3,
        "s": rng.random(n),
        "w": rng.integers(1, 4, n).astype(float),
    })


def test_top_k_ties_go_to_earlier_rows():
    s = np.array([0.5, 0.9, 0.5, 0.1, 0.5, 0.9])
    assert top_k_mask(s, 3).tolist() == [True, True, False, False, False, True]
    assert top_k_mask(s, 0).sum() == 0 and top_k_mask(s, 6).all()
    rng = np.random.default_rng(0)
    s = rng.integers(0, 20, 10_000).astype(float)  # heavy ties
    for k in (1, 137, 5000, 9999):
        oracle = np.zeros(len(s), bool)
        oracle[np.argsort(-s, kind="stable")[:k]] = True
        assert np.array_equal(top_k_mask(s, k), oracle)


def test_counts_equal_groupby_on_both_paths(monkeypatch):
    df = _frame()
    kw = dict(target="y", score="s", threshold=0.4, sensitive=["a", "b"], tiers={"v": 3},
              intersect=[["a", "b"]], n_boot=0)
    r1 = fairscan.audit(df, **kw)
    monkeypatch.setattr(base, "MAX_JOINT_GROUPS", 1)  # force one pass per grouping
    monkeypatch.setattr(memory, "CHUNK_ROWS", 777)  # and many chunks
    r2 = fairscan.audit(df, **kw)
    pd.testing.assert_frame_equal(r1.groups, r2.groups)
    sel = df.groupby(["a", "b"])["s"].apply(lambda s: (s >= 0.4).mean())
    inter = r1.groups[r1.groups["attribute"] == "a x b"].set_index("group")["selection_rate"]
    for (a, b), v in sel.items():
        assert inter[f"{a} x {b}"] == pytest.approx(v, abs=1e-12)


def test_unknown_group_and_tier_labels():
    df = _frame()
    r = fairscan.audit(df, target="y", score="s", threshold=0.5, tiers={"v": [-1, 0, 1]}, n_boot=0)
    g = r.groups.set_index("group")
    assert list(g.index) == ["(..-1]", "(-1..0]", "(0..1]", "(1..]", "unknown"]
    assert g.loc["unknown", "count"] == df["v"].isna().sum()
    assert g["count"].sum() == len(df)  # no row dropped
    assert g.loc["(-1..0]", "count"] == ((df["v"] > -1) & (df["v"] <= 0)).sum()
    assert tier_labels([72.0, 448.0], quantile=True) == ("Q1 (..72]", "Q2 (72..448]", "Q3 (448..]")


def test_quantile_tiers_match_pandas_qcut(bank):
    r = fairscan.audit(bank, target="y", prediction="y", tiers={"balance": 4}, n_boot=0)
    counts = r.groups["count"].tolist()
    assert counts == pd.qcut(bank["balance"], 4).value_counts(sort=False).tolist()


def test_categorical_missing_is_a_group_and_reference_is_largest():
    df = pd.DataFrame({"g": ["a"] * 60 + ["b"] * 40 + [None] * 35, "p": [1, 0] * 67 + [1]})
    r = fairscan.audit(df, prediction="p", sensitive="g", n_boot=0)
    g = r.groups.set_index("group")
    assert list(g.index) == ["a", "b", "unknown"] and g.loc["unknown", "count"] == 35
    assert r.meta["reference"] == {"g": "a"}
    r = fairscan.audit(df, prediction="p", sensitive="g", reference="b", n_boot=0)
    assert r.meta["reference"] == {"g": "b"}


def test_pandas_categorical_and_polars_agree():
    pl = pytest.importorskip("polars")
    df = _frame()
    kw = dict(target="y", score="s", budget=0.25, sensitive=["a"], n_boot=50)
    base = fairscan.audit(df, **kw)
    cat = fairscan.audit(df.astype({"a": "category"}), **kw)
    pol = fairscan.audit(pl.from_pandas(df), **kw)
    for other in (cat, pol):
        pd.testing.assert_frame_equal(base.groups, other.groups)
        pd.testing.assert_frame_equal(base.disparities, other.disparities)
    assert base.meta["data_sha256"] == pol.meta["data_sha256"]


def test_weights_and_hash_change_with_data():
    df = _frame()
    r = fairscan.audit(df, target="y", score="s", threshold=0.5, sensitive="a", weights="w", n_boot=0)
    g = r.groups.set_index("group")
    oracle = df.groupby("a")["w"].agg(lambda w: w.sum() ** 2 / (w**2).sum())
    assert np.allclose(g["effective_n"], oracle)
    df2 = df.copy()
    df2.loc[0, "s"] = 0.123456
    r2 = fairscan.audit(df2, target="y", score="s", threshold=0.5, sensitive="a", weights="w", n_boot=0)
    assert r.meta["data_sha256"] != r2.meta["data_sha256"]


@pytest.mark.fuzz
@settings(max_examples=examples(40), deadline=None)
@given(
    groups=st.lists(st.sampled_from(["a", "b", "c"]), min_size=12, max_size=60),
    seed=st.integers(0, 10_000),
)
def test_properties_order_replication_bounds(groups, seed):
    rng = np.random.default_rng(seed)
    n = len(groups)
    df = pd.DataFrame({"g": groups, "y": rng.random(n) < 0.5, "p": rng.random(n) < 0.5,
                       "w": rng.integers(0, 4, n)})
    kw = dict(target="y", prediction="p", sensitive="g", suppress_below=0, min_group_size=0, n_boot=0)
    r = fairscan.audit(df, **kw)
    # row order does not matter
    shuffled = fairscan.audit(df.sample(frac=1, random_state=seed).reset_index(drop=True), **kw)
    pd.testing.assert_frame_equal(r.groups, shuffled.groups)
    # integer weights equal replicating rows
    rep = df.loc[df.index.repeat(df["w"])].reset_index(drop=True)
    if len(rep) and rep["g"].nunique() == df.loc[df["w"] > 0, "g"].nunique():
        rw = fairscan.audit(df[df["w"] > 0], weights="w", **kw)
        rr = fairscan.audit(rep, **kw)
        for m in ("selection_rate", "true_positive_rate", "precision", "accuracy"):
            assert np.allclose(rw.groups[m], rr.groups[m], equal_nan=True)
    # rates in [0, 1] and every interval contains its estimate
    for m in r.meta["metrics"]:
        v, lo, hi = r.groups[m], r.groups[f"{m}_ci_low"], r.groups[f"{m}_ci_high"]
        ok = v.notna()
        assert ((v[ok] >= 0) & (v[ok] <= 1)).all()
        assert ((lo[ok] <= v[ok] + 1e-12) & (v[ok] <= hi[ok] + 1e-12)).all()
