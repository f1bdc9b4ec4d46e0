"""Property tests of the metric engine on hypothesis-generated frames (issue #10).

Complements ``test_properties_order_replication_bounds`` in test_engine.py (prediction
decisions, memory engine only) with score decisions on both engines:

* the DuckDB engine equals the memory engine: counts exactly, every other number to 1e-12,
  and the same one-line error when the input is refused;
* a budget decision breaks ties by row order, so any reordering that keeps the order of
  tied rows changes nothing, and when the cut falls between two distinct scores no
  reordering changes anything;
* integer weights equal replicating each row that many times (budget decision);
* renaming the groups (a bijection of labels) only renames / reorders the output rows.

Frames are small (DuckDB costs ~0.3 s per audit) and example counts modest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fairscan
from fairscan.errors import FairscanError
from tests.conftest import examples

pytest.importorskip("duckdb")
# tests/ is on sys.path (no __init__.py, pytest's default import mode): reuse the engine comparison
from test_engines import assert_same

pytestmark = pytest.mark.fuzz
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
COMMON = dict(suppress_below=0, min_group_size=0, n_boot=0)
# group labels: unicode, spaces, tabs, digits, case variants ("unknown" is what missing values are called)
LABELS = ["a", "b", "A", "ä", "ü ñ", " x ", "a b", "中文", "1", "N/A", "🙂", "a\tb", ""]
TIED_SCORES = [0.0, -0.0, 0.1, 0.25, 0.5, 0.5000000000000001, 0.75, 0.9, 1.0]
RATES = ["base_rate", "selection_rate", "true_positive_rate", "false_positive_rate", "false_negative_rate",
         "true_negative_rate", "precision", "accuracy", "impact_ratio"]


@st.composite
def frames(draw, min_rows: int = 2, max_rows: int = 50, missing_groups: bool = True,
           integer_weights: bool = False) -> pd.DataFrame:
    n = draw(st.integers(min_rows, max_rows))
    labels = draw(st.lists(st.sampled_from(LABELS), min_size=1, max_size=4, unique=True))
    pool = labels + ([None] if missing_groups and draw(st.booleans()) else [])
    col = st.lists
    g = draw(col(st.sampled_from(pool), min_size=n, max_size=n))
    h = draw(col(st.sampled_from(["m", "f"]), min_size=n, max_size=n))
    score = st.one_of(st.sampled_from(TIED_SCORES), st.floats(0, 1)) if draw(st.booleans()) \
        else st.sampled_from(TIED_SCORES[:4])  # heavy ties
    s = draw(col(score, min_size=n, max_size=n))
    y = draw(col(st.booleans(), min_size=n, max_size=n))
    w = draw(col(st.integers(1, 4), min_size=n, max_size=n)) if integer_weights \
        else draw(col(st.floats(0.1, 5), min_size=n, max_size=n))
    x = draw(col(st.integers(0, 9), min_size=n, max_size=n))
    if missing_groups and draw(st.booleans()):  # a nullable tier column with missing values
        x = pd.array(draw(col(st.one_of(st.none(), st.integers(0, 9)), min_size=n, max_size=n)), dtype="Int64")
    return pd.DataFrame({"g": pd.Series(g, dtype=object), "h": h, "s": s, "y": np.array(y, dtype=int),
                         "w": w, "x": x})


def _audit(df: pd.DataFrame, engine: str, **kw) -> fairscan.AuditResult | str:
    """The audit, or the one-line message of the FairscanError refusing it."""
    try:
        return fairscan.audit(df, engine=engine, **COMMON, **kw)
    except FairscanError as e:
        assert "\n" not in str(e)
        return str(e)


def _same(a: fairscan.AuditResult | str, b: fairscan.AuditResult | str) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
    else:
        assert_same(a, b)


def _top(s: np.ndarray, k: int) -> np.ndarray:
    """Rows a budget of ``k`` offers: highest scores first, ties to earlier rows."""
    return np.lexsort((np.arange(len(s)), -s))[:k]


# -- DuckDB equals memory --------------------------------------------------------------------------
@settings(max_examples=examples(20), **SETTINGS)
@given(df=frames(), data=st.data())
def test_engines_equal(df, data):
    n = len(df)
    kw: dict = dict(score="s", sensitive=["g"])
    if data.draw(st.booleans(), label="threshold"):
        kw["threshold"] = data.draw(st.sampled_from(sorted(set(df["s"]))), label="t")
    else:
        kw["budget"] = data.draw(st.one_of(st.integers(1, n), st.floats(1 / n, 0.999)), label="budget")
    if data.draw(st.booleans(), label="target"):
        kw["target"] = "y"
    if data.draw(st.booleans(), label="weights"):
        kw["weights"] = "w"
    if data.draw(st.booleans(), label="second attribute"):
        kw["sensitive"] = ["g", "h"]
        kw["intersect"] = data.draw(st.booleans(), label="intersect")
    tiers = data.draw(st.sampled_from([None, {"x": 3}, {"x": 2}, {"x": [3, 6]}]), label="tiers")
    if tiers:
        kw["tiers"] = tiers
    kw["favourable_decision"] = data.draw(st.sampled_from([1, 0]), label="favourable")
    memory, duck = _audit(df, "memory", **kw), _audit(df, "duckdb", **kw)
    _same(memory, duck)
    if not isinstance(duck, str):
        assert duck.meta["engine"] == "duckdb"


# -- row order -------------------------------------------------------------------------------------
def _reorder_keeping_ties(s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random row order in which rows with equal scores keep their relative order."""
    order = rng.permutation(len(s))
    out = np.empty(len(s), dtype=int)
    for v in np.unique(s):
        out[np.flatnonzero(s[order] == v)] = np.flatnonzero(s == v)  # the tie's slots, in original order
    return out


@settings(max_examples=examples(20), **SETTINGS)
@given(df=frames(), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_budget_row_order(df, data, seed):
    n = len(df)
    s = df["s"].to_numpy()
    k = data.draw(st.integers(1, n), label="k")
    engine = data.draw(st.sampled_from(["memory", "duckdb"]), label="engine")
    weights = data.draw(st.sampled_from([None, "w"]), label="weights")
    kw = dict(target="y", score="s", budget=k, sensitive=["g", "h"], tiers={"x": 3}, weights=weights)
    rng = np.random.default_rng(seed)
    base = _audit(df, engine, **kw)
    assume(not isinstance(base, str))
    # the budget offers exactly k rows: the unweighted selection counts add up to k per attribute
    if weights is None:
        for _, part in base.groups.groupby("attribute"):
            assert round(float((part["selection_rate"] * part["count"].astype(float)).sum())) == k
    kept = df.iloc[_reorder_keeping_ties(s, rng)].reset_index(drop=True)
    _same(base, _audit(kept, engine, **kw))
    ranked = np.sort(s)[::-1]
    if k == n or ranked[k - 1] != ranked[k]:  # the cut does not split a tie: any order will do
        shuffled = df.sample(frac=1, random_state=seed % 2**31).reset_index(drop=True)
        _same(base, _audit(shuffled, engine, **kw))
    # the offered rows are the top k by score, ties to earlier rows
    chosen = np.zeros(n, dtype=bool)
    chosen[_top(s, k)] = True
    for label, part in df.assign(chosen=chosen).groupby("h"):
        row = base.groups[(base.groups["attribute"] == "h") & (base.groups["group"] == label)]
        if weights is None:
            assert row["selection_rate"].iloc[0] == pytest.approx(part["chosen"].mean(), abs=1e-12)
        else:
            expected = (part["w"] * part["chosen"]).sum() / part["w"].sum()
            assert row["selection_rate"].iloc[0] == pytest.approx(expected, abs=1e-12)


# -- integer weights = replicated rows --------------------------------------------------------------
@settings(max_examples=examples(20), **SETTINGS)
@given(df=frames(integer_weights=True), data=st.data())
def test_integer_weights_equal_replication(df, data):
    n = len(df)
    s, w = df["s"].to_numpy(), df["w"].to_numpy()
    k = data.draw(st.integers(1, n), label="k")
    engine = data.draw(st.sampled_from(["memory", "duckdb"]), label="engine")
    tiers = data.draw(st.sampled_from([None, {"x": [3, 6]}]), label="tiers")  # fixed cut points
    # the same people get the offer: each replicated row's copies sit together, in its place
    k_rep = int(w[_top(s, k)].sum())
    rep = df.loc[df.index.repeat(w)].reset_index(drop=True)
    # an explicit reference: the default, the largest group, counts rows, not weights
    reference = {a: data.draw(st.sampled_from(sorted(set(df[a].dropna()))), label=f"reference {a}") for a in "gh"}
    cells = sorted({"(..3]" if v <= 3 else "(3..6]" if v <= 6 else "(6..]" for v in df["x"].dropna()})
    if tiers and cells:
        reference["x"] = data.draw(st.sampled_from(cells), label="reference x")
    kw = dict(target="y", score="s", sensitive=["g", "h"], tiers=tiers or {}, reference=reference)
    weighted = _audit(df, engine, budget=k, weights="w", **kw)
    replicated = _audit(rep, engine, budget=k_rep, **kw)
    if isinstance(weighted, str) or isinstance(replicated, str):
        assert weighted == replicated
        return
    a, b = weighted.groups, replicated.groups
    assert a[["attribute", "group"]].equals(b[["attribute", "group"]])
    np.testing.assert_allclose(a["weight_sum"], b["count"].astype(float), rtol=1e-12)
    np.testing.assert_allclose(a[RATES].astype(float), b[RATES].astype(float), rtol=1e-12, atol=1e-12)
    da, db = weighted.disparities, replicated.disparities
    assert da[["attribute", "metric", "group", "reference"]].equals(db[["attribute", "metric", "group", "reference"]])
    cols = ["group_value", "reference_value", "difference", "ratio"]
    np.testing.assert_allclose(da[cols].astype(float), db[cols].astype(float), rtol=1e-12, atol=1e-12)


# -- renaming groups -------------------------------------------------------------------------------
@settings(max_examples=examples(20), **SETTINGS)
@given(df=frames(), data=st.data())
def test_renaming_groups_permutes_rows(df, data):
    present = sorted({v for v in df["g"] if v is not None})
    assume(present)  # every g missing: nothing to rename (the only group is 'unknown')
    targets = data.draw(st.permutations(LABELS), label="new labels")[: len(present)]
    rename = dict(zip(present, targets, strict=True))
    back = {v: k for k, v in rename.items()}
    engine = data.draw(st.sampled_from(["memory", "duckdb"]), label="engine")
    ref = data.draw(st.sampled_from(present), label="reference")  # explicit: the largest group may tie
    values = sorted(set(df["s"]))
    decision = data.draw(st.sampled_from([dict(threshold=values[len(values) // 2]), dict(budget=max(1, len(df) // 3))]))
    kw = dict(target="y", score="s", sensitive=["g", "h"], tiers={"x": 3}, weights="w", **decision)
    before = _audit(df, engine, reference={"g": ref}, **kw)
    renamed = df.assign(g=[None if v is None else rename[v] for v in df["g"]])
    after = _audit(renamed, engine, reference={"g": rename[ref]}, **kw)
    if isinstance(before, str) or isinstance(after, str):
        assert before == after
        return
    for table, keys in (("groups", ["attribute", "group"]), ("disparities", ["attribute", "metric", "group"])):
        a, b = getattr(before, table), getattr(after, table).copy()
        g = b["attribute"] == "g"
        for col in ("group", "reference") if table == "disparities" else ("group",):
            b.loc[g, col] = [back.get(v, v) for v in b.loc[g, col]]  # missing values stay 'unknown'
        assert len(a) == len(b)
        a = a.sort_values(keys, kind="stable").reset_index(drop=True)
        b = b.sort_values(keys, kind="stable").reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-12)


def test_a_group_named_unknown_takes_the_missing_values_and_says_so():
    """By design a column's own 'unknown' category (bank's job and education have one) and its
    missing values are one group, both meaning "not known" — never silently: a warning says so."""
    df = pd.DataFrame({"g": ["unknown"] * 5 + [None] * 5 + ["a"] * 5, "y": [0, 1] * 7 + [0],
                       "p": [1, 0, 0] * 5})
    r = fairscan.audit(df, target="y", prediction="p", sensitive="g", **COMMON)
    assert r.groups.set_index("group")["count"].to_dict() == {"a": 5, "unknown": 10}
    assert "missing values of 'g' are counted in its existing 'unknown' group" in r.meta["warnings"]
