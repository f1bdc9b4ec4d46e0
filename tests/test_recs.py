"""fairscan.recs against golden values and brute force, never against itself.

Golden values come from shared/reference/recsys-metrics.md (library docstrings and tests
re-run there, and hand-checked toys); brute-force values from plain per-user Python loops
over the raw rows written here, independently of the vectorised code.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fairscan.errors import FairscanError
from fairscan.metrics import ranking
from fairscan.recs import audit_recs

LOOSE = {"min_group_size": 0, "suppress_below": 0}

# the 10 x 4 score matrix of Holistic AI's docstrings (group_a = the first 4 users)
HAI = np.array([[0.9, 0.8, 0.4, 0.2], [0.7, 0.9, 0.1, 0.7], [0.3, 0.2, 0.3, 0.3], [0.2, 0.1, 0.7, 0.8],
                [0.8, 0.7, 0.9, 0.1], [1.0, 0.9, 0.3, 0.6], [0.8, 0.9, 0.1, 0.1], [0.2, 0.3, 0.1, 0.5],
                [0.1, 0.2, 0.7, 0.7], [0.2, 0.7, 0.1, 0.2]])
# RecBole's item_matrix (top-3 item ids per user) with 8 items (ids 0..7; 0 never shown)
RECBOLE = [[5, 7, 3], [4, 5, 2], [2, 3, 5], [1, 4, 6], [5, 3, 7]]


def lists_frame(lists: dict[str, list]) -> pd.DataFrame:
    return pd.DataFrame([(u, i, r + 1) for u, items in lists.items() for r, i in enumerate(items)],
                        columns=["user", "item", "rank"])


def hai_topk(mat: np.ndarray, top: int) -> dict[str, list[int]]:
    """Holistic AI's mat_to_binary rule: the last `top` of an ascending argsort (ties go to the
    higher column index), listed best first."""
    return {f"u{r}": list(np.argsort(row, kind="stable")[-top:][::-1]) for r, row in enumerate(mat)}


@pytest.fixture(scope="module")
def tier_toy():
    lists = {"h1": list("abc"), "h2": list("acd"), "h3": list("bae"),
             "l1": list("cde"), "l2": list("cda"), "l3": list("dec")}
    users = pd.DataFrame({"user": list(lists), "tier": ["H"] * 3 + ["L"] * 3})
    items = pd.DataFrame({"item": list("abcde"), "price": ["P", "P", "S", "S", "S"]})
    return lists_frame(lists), users, items


def cell(df: pd.DataFrame, ug: str, ig: str, col: str):
    row = df[(df["user_group"] == ug) & (df["item_group"] == ig)]
    assert len(row) == 1
    return row[col].iloc[0]


# ------------------------------------------------------------------ golden values


def test_position_weighted_tier_share_toy(tier_toy):
    recs, users, items = tier_toy
    res = audit_recs(recs, users, items, user_group="tier", item_group="price", k=3, reference="H", **LOOSE)
    ex, ev = res.exposure, res.exclusion
    assert cell(ex, "H", "P", "share") == pytest.approx(0.6667, abs=5e-5)
    assert cell(ex, "L", "P", "share") == pytest.approx(0.0782, abs=5e-5)
    assert cell(ex, "H", "P", "bias_ratio") == pytest.approx(1.3889, abs=5e-5)
    assert cell(ex, "L", "P", "bias_ratio") == pytest.approx(0.2778, abs=5e-5)
    assert cell(ev, "H", "P", "rate") == 0
    assert cell(ev, "L", "P", "rate") == pytest.approx(0.667, abs=5e-4)
    assert cell(ev, "L", "P", "inclusion_ratio") == pytest.approx(0.333, abs=5e-4)
    assert not cell(ev, "L", "P", "four_fifths")
    gap = res.gaps[(res.gaps["metric"] == "inclusion_rate") & (res.gaps["item_group"] == "P")].iloc[0]
    assert gap["ratio"] == pytest.approx(1 / 3)
    assert gap["test"] == "fisher"  # 3 vs 3 users: small expected counts
    assert gap["p_value"] == pytest.approx(stats.fisher_exact([[2, 1], [0, 3]]).pvalue)


def test_steck_ckl_toy():
    assert ranking.steck_ckl(np.array([0.7, 0.3]), np.array([1.0, 0.0])) == pytest.approx(1.133982, abs=1e-6)
    assert ranking.steck_ckl(np.array([0.7, 0.3]), np.array([1.0, 0.0])) / math.log(2) == pytest.approx(
        1.635990, abs=1e-6)


def test_steck_ckl_toy_through_the_audit():
    # every user: history 7 items of A and 3 of B, recommended only A items -> p = (.7, .3), q = (1, 0)
    items = pd.DataFrame({"item": [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(3)],
                          "cat": ["A"] * 10 + ["B"] * 3})
    lists = {f"u{j}": [f"a{i}" for i in range(3)] for j in range(4)}
    users = pd.DataFrame({"user": list(lists), "g": ["x", "x", "y", "y"]})
    past = pd.DataFrame([(u, f"a{i}") for u in lists for i in range(7)] + [(u, f"b{i}") for u in lists for i in range(3)],
                        columns=["user", "item"])
    res = audit_recs(lists_frame(lists), users, items, user_group="g", item_group="cat", k=3, interactions=past,
                     **LOOSE)
    assert res.calibration["c_kl"].to_numpy() == pytest.approx([1.133982] * 2, abs=1e-6)
    # bias source: the past is 70% A, the catalog 10/13 A; the lists 100% A
    assert cell(res.exposure, "x", "A", "bias_source") == pytest.approx(0.7 / (10 / 13))
    assert cell(res.exposure, "x", "A", "bias_ratio") == pytest.approx(1 / (10 / 13))
    assert cell(res.exposure, "x", "A", "bias_disparity") == pytest.approx((1 - 0.7) / 0.7)


def test_holisticai_exposure_l1_and_kl_golden():
    """exposure_l1(top=1) = 0.25 and exposure_kl(top=1) = 0.232178 on the docstring matrix:
    item groups = the items themselves, no position discount, k = 1."""
    recs = lists_frame(hai_topk(HAI, 1))
    users = pd.DataFrame({"user": [f"u{r}" for r in range(10)], "g": ["a"] * 4 + ["b"] * 6})
    items = pd.DataFrame({"item": range(4), "self": ["i0", "i1", "i2", "i3"]})
    res = audit_recs(recs, users, items, user_group="g", item_group="self", k=1, discount="none",
                     reference="b", **LOOSE)
    tv = res.gaps[res.gaps["metric"] == "exposure_tv"]["difference"].iloc[0]
    assert tv == pytest.approx(0.25, abs=1e-12)
    share = res.exposure.pivot(index="user_group", columns="item_group", values="share")
    assert ranking.kl_divergence(share.loc["a"].to_numpy(), share.loc["b"].to_numpy(), alpha=0) == pytest.approx(
        0.232178, abs=1e-6)
    # the audit's own KL is smoothed: (p + 1e-3) / (1 + 4e-3) on both sides, by hand
    pa = (np.array([1 / 4, 1 / 4, 0, 1 / 2]) + 1e-3) / 1.004
    pb = (np.array([1 / 6, 2 / 6, 1 / 6, 2 / 6]) + 1e-3) / 1.004
    kl = res.gaps[res.gaps["metric"] == "exposure_kl"]["difference"].iloc[0]
    assert kl == pytest.approx(float(np.sum(pa * np.log(pa / pb))), abs=1e-12)


def test_holisticai_gini_golden():
    recs = lists_frame(hai_topk(HAI, 2))
    users = pd.DataFrame({"user": [f"u{r}" for r in range(10)], "g": ["a"] * 10})
    items = pd.DataFrame({"item": range(4), "tier": ["x", "x", "y", "y"]})
    res = audit_recs(recs, users, items, user_group="g", item_group="tier", k=2, **LOOSE)
    assert res.meta["item_summary"]["gini"] == pytest.approx(0.133333, abs=1e-6)


def test_holisticai_aggregate_diversity_golden():
    """aggregate_diversity(thresh=0.8, normalize=True) = 0.75: lists = items whose min-max
    normalised score is >= 0.8, best first; users with no such item have no list."""
    norm = (HAI - HAI.min()) / (HAI.max() - HAI.min())
    lists = {f"u{r}": [int(i) for i in np.argsort(-row, kind="stable") if row[i] >= 0.8] for r, row in enumerate(norm)}
    recs = lists_frame({u: v for u, v in lists.items() if v})
    users = pd.DataFrame({"user": [f"u{r}" for r in range(10)], "g": ["a"] * 10})
    items = pd.DataFrame({"item": range(4), "tier": ["x", "x", "y", "y"]})
    res = audit_recs(recs, users, items, user_group="g", item_group="tier", k=4, **LOOSE)
    assert res.meta["item_summary"]["aggregate_diversity"] == pytest.approx(0.75)
    assert res.meta["users_without_list"] == sum(1 for v in lists.values() if not v) > 0


def test_recbole_gini_and_coverage_golden():
    recs = lists_frame({f"u{j}": row for j, row in enumerate(RECBOLE)})
    users = pd.DataFrame({"user": [f"u{j}" for j in range(5)], "g": ["a"] * 5})
    items = pd.DataFrame({"item": range(8), "tier": ["lo"] * 4 + ["hi"] * 4})
    res = audit_recs(recs, users, items, user_group="g", item_group="tier", k=3, **LOOSE)
    s = res.meta["item_summary"]
    assert s["gini_n"] == pytest.approx(41 / 120, abs=1e-12)
    assert s["gini"] == pytest.approx(0.390476, abs=1e-6)
    assert 1 - s["gini"] == pytest.approx(0.609524, abs=1e-6)  # Elliot's convention
    assert s["aggregate_diversity"] == pytest.approx(7 / 8)
    cov = res.items.set_index("item_group")["coverage"]
    assert cov["lo"] == pytest.approx(3 / 4) and cov["hi"] == pytest.approx(1.0)


def test_fisher_golden_and_the_test_the_audit_names():
    # the golden value of the reference table
    assert stats.fisher_exact([[30, 70], [50, 50]]).pvalue == pytest.approx(0.0059373, abs=1e-7)
    # the same table as exclusion counts: L 30 of 100 excluded, H 50 of 100. Every expected
    # count is >= 5, so two_proportion_test (Cochran's rule) uses the pooled z-test and says so
    lists = {f"h{j}": (["p"] if j >= 50 else ["s"]) for j in range(100)}
    lists |= {f"l{j}": (["p"] if j >= 30 else ["s"]) for j in range(100)}
    users = pd.DataFrame({"user": list(lists), "tier": ["H"] * 100 + ["L"] * 100})
    items = pd.DataFrame({"item": ["p", "s"], "price": ["P", "S"]})
    res = audit_recs(lists_frame(lists), users, items, user_group="tier", item_group="price", k=1,
                     reference="H", n_boot=200)
    gap = res.gaps[(res.gaps["metric"] == "inclusion_rate") & (res.gaps["item_group"] == "P")].iloc[0]
    z = (0.7 - 0.5) / math.sqrt(0.4 * 0.6 * (2 / 100))  # hand-computed pooled z on inclusion
    assert gap["test"] == "z"
    assert gap["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12)
    assert gap["p_value"] == pytest.approx(0.0038924, abs=1e-7)
    # with small counts it is Fisher's exact test, equal to scipy's
    lists = {f"h{j}": (["p"] if j >= 1 else ["s"]) for j in range(10)}
    lists |= {f"l{j}": (["p"] if j >= 8 else ["s"]) for j in range(10)}
    users = pd.DataFrame({"user": list(lists), "tier": ["H"] * 10 + ["L"] * 10})
    res = audit_recs(lists_frame(lists), users, items, user_group="tier", item_group="price", k=1,
                     reference="H", n_boot=200)
    gap = res.gaps[(res.gaps["metric"] == "inclusion_rate") & (res.gaps["item_group"] == "P")].iloc[0]
    assert gap["test"] == "fisher"
    assert gap["p_value"] == pytest.approx(stats.fisher_exact([[8, 2], [1, 9]]).pvalue, rel=1e-12)


def test_benjamini_hochberg_across_the_exclusion_table():
    rng = np.random.default_rng(3)
    lists = {f"u{j}": list(rng.choice(list("abcdef"), size=2, replace=False)) for j in range(120)}
    users = pd.DataFrame({"user": list(lists), "g": rng.choice(["x", "y", "z"], 120)})
    items = pd.DataFrame({"item": list("abcdef"), "c": ["A", "A", "B", "B", "C", "C"]})
    res = audit_recs(lists_frame(lists), users, items, user_group="g", item_group="c", k=2, n_boot=100)
    ex = res.gaps[res.gaps["metric"] == "inclusion_rate"]
    assert len(ex) == 6
    assert ex["p_value_adjusted"].to_numpy() == pytest.approx(
        stats.false_discovery_control(ex["p_value"].to_numpy(), method="bh"))


def test_permutation_golden():
    rng = np.random.default_rng(0)
    p, test = ranking.mean_difference_test(np.array([1.0, 2, 3]), np.array([4.0, 5, 6]), 9999, rng)
    assert test == "permutation" and p == pytest.approx(0.1, abs=1e-12)


def test_permutation_golden_through_the_audit():
    """precision@10 per user 0.1, 0.2, 0.3 (group A) vs 0.4, 0.5, 0.6 (group B): the
    difference of means has the exact two-sided permutation p-value 0.1 (20 relabellings)."""
    hits = {"a1": 1, "a2": 2, "a3": 3, "b1": 4, "b2": 5, "b3": 6}
    lists = {u: [f"{u}_{i}" for i in range(10)] for u in hits}
    truth = pd.DataFrame([(u, f"{u}_{i}") for u, h in hits.items() for i in range(h)], columns=["user", "item"])
    users = pd.DataFrame({"user": list(hits), "g": ["A"] * 3 + ["B"] * 3})
    items = pd.DataFrame({"item": [i for v in lists.values() for i in v], "c": "x"})
    res = audit_recs(lists_frame(lists), users, items, user_group="g", item_group="c", k=10, truth=truth,
                     reference="B", **LOOSE)
    gap = res.gaps[res.gaps["metric"] == "precision@10"].iloc[0]
    assert gap["test"] == "permutation"
    assert gap["p_value"] == pytest.approx(0.1, abs=1e-12)
    assert gap["difference"] == pytest.approx(-0.3)
    assert res.utility.set_index(["user_group", "metric"]).loc[("A", "precision@10"), "value"] == pytest.approx(0.2)


def test_ndcg_hand_computed():
    # relevant {x, y, z}; list [x, q, y]: DCG = 1 + 1/2 ; IDCG over min(3, 3) = 1 + 1/log2(3) + 1/2
    u = ranking.user_utilities(np.array([[True, False, True]]), np.array([3]), 3)
    assert u["ndcg"][0] == pytest.approx(1.5 / (1 + 1 / math.log2(3) + 0.5))
    assert u["recall"][0] == pytest.approx(2 / 3)
    assert u["precision"][0] == pytest.approx(2 / 3)
    assert u["hit_rate"][0] == 1
    assert np.isnan(ranking.user_utilities(np.zeros((1, 3), bool), np.array([0]), 3)["ndcg"][0])


# ------------------------------------------------------------------ brute force


def brute_force(recs, users, items, truth, past, k, v):
    """Per-user loops over the raw rows, following the documented conventions."""
    group = dict(zip(users["user"], users["g"], strict=True))
    igroup = dict(zip(items["item"], items["c"], strict=True))
    for u in recs["user"]:
        group.setdefault(u, "unknown")
    for i in recs["item"]:
        igroup.setdefault(i, "unknown")
    cats = sorted(set(igroup.values()))
    top = defaultdict(dict)
    for u, i, r in recs.itertuples(index=False):
        if r <= k:
            top[u][r] = i
    rel = defaultdict(set)
    if truth is not None:
        for u, i in truth.itertuples(index=False):
            if u in group:
                rel[u].add(i)
    hist = defaultdict(lambda: defaultdict(float))
    if past is not None:
        for u, i in past.itertuples(index=False):
            hist[u][igroup.get(i, "unknown")] += 1
    vsum = sum(v)
    out = {"excl": defaultdict(float), "share": defaultdict(float), "n": defaultdict(int),
           "util": defaultdict(list), "ckl": defaultdict(list), "slots": defaultdict(float),
           "slot_tot": defaultdict(float)}
    for u, g in group.items():
        out["n"][g] += 1
        lst = top.get(u, {})
        for c in cats:
            shown = [r for r, i in lst.items() if igroup[i] == c]
            out["excl"][(g, c)] += 0 if shown else 1
            out["share"][(g, c)] += sum(v[r - 1] for r in shown) / vsum
            out["slots"][(g, c)] += len(shown)
        out["slot_tot"][g] += len(lst)
        if rel[u]:
            hits = [r for r, i in lst.items() if i in rel[u]]
            dcg = sum(1 / math.log2(1 + r) for r in hits)
            idcg = sum(1 / math.log2(1 + j) for j in range(1, min(len(rel[u]), k) + 1))
            out["util"][g].append((dcg / idcg, len(hits) / len(rel[u]), len(hits) / k, float(bool(hits))))
        if hist[u] and lst:
            tot = sum(hist[u].values())
            wl = sum(v[r - 1] for r in lst)
            ckl = 0.0
            for c in cats:
                p = hist[u].get(c, 0) / tot
                q = sum(v[r - 1] for r, i in lst.items() if igroup[i] == c) / wl
                if p > 0:
                    ckl += p * math.log(p / (0.99 * q + 0.01 * p))
            out["ckl"][g].append(ckl)
    counts = defaultdict(int)
    for lst in top.values():
        for i in lst.values():
            counts[i] += 1
    catalog = list(igroup)
    out["item_counts"] = [counts.get(i, 0) for i in catalog]
    out["catalog_share"] = {c: sum(1 for i in catalog if igroup[i] == c) / len(catalog) for c in cats}
    return out


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    n_users, n_items = int(rng.integers(5, 40)), int(rng.integers(3, 30))
    user_ids = [f"u{j}" for j in range(n_users)]
    item_ids = list(range(n_items))
    rows = []
    for u in user_ids:
        if rng.random() < 0.15:
            continue  # no list
        length = int(rng.integers(1, min(n_items, 12) + 1))
        ranks = np.sort(rng.choice(np.arange(1, 16), size=length, replace=False))  # gaps allowed
        for i, r in zip(rng.choice(item_ids, size=length, replace=False), ranks, strict=True):
            rows.append((u, int(i), int(r)))
    rows.append(("stranger", item_ids[0], 1))  # a user not in USERS
    rows.append(("stranger", 10_000, 2))  # an item not in ITEMS
    recs = pd.DataFrame(rows, columns=["user", "item", "rank"])
    users = pd.DataFrame({"user": user_ids, "g": rng.choice(["x", "y", "z"], n_users)})
    items = pd.DataFrame({"item": item_ids, "c": rng.choice(["A", "B", "C"], n_items)})
    truth = pd.DataFrame({"user": rng.choice(user_ids, 3 * n_users), "item": rng.choice([*item_ids, 999], 3 * n_users)})
    truth = truth.drop_duplicates(ignore_index=True)
    past = pd.DataFrame({"user": rng.choice(user_ids, 4 * n_users), "item": rng.choice(item_ids, 4 * n_users)})
    k = int(rng.integers(1, 11))
    return recs, users, items, truth, past, k


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("discount", ["log", "none"])
def test_brute_force_random_cases(seed, discount):
    recs, users, items, truth, past, k = random_case(seed)
    v = list(ranking.discount_weights(k, discount))
    bf = brute_force(recs, users, items, truth, past, k, v)
    res = audit_recs(recs, users, items, user_group="g", item_group="c", k=k, truth=truth, interactions=past,
                     discount=discount, n_boot=20, **LOOSE)
    for r in res.exclusion.itertuples(index=False):
        n = bf["n"][r.user_group]
        assert r.users == n
        assert r.excluded == bf["excl"][(r.user_group, r.item_group)]
        assert r.rate == pytest.approx(bf["excl"][(r.user_group, r.item_group)] / n, abs=1e-12)
    for r in res.exposure.itertuples(index=False):
        n = bf["n"][r.user_group]
        assert r.share == pytest.approx(bf["share"][(r.user_group, r.item_group)] / n, abs=1e-12)
        tot = bf["slot_tot"][r.user_group]
        if tot:
            br = bf["slots"][(r.user_group, r.item_group)] / tot / bf["catalog_share"][r.item_group]
            assert r.bias_ratio == pytest.approx(br, abs=1e-12)
    util = res.utility.set_index(["user_group", "metric"])["value"]
    for g, vals in bf["util"].items():
        means = np.mean(np.array(vals), axis=0)
        for j, m in enumerate(("ndcg", "recall", "precision", "hit_rate")):
            assert util[(g, f"{m}@{k}")] == pytest.approx(means[j], abs=1e-12)
    assert set(util.dropna().index.get_level_values(0)) == set(bf["util"])
    cal = res.calibration.set_index("user_group")["c_kl"]
    for g, vals in bf["ckl"].items():
        assert cal[g] == pytest.approx(np.mean(vals), abs=1e-12)
    s = res.meta["item_summary"]
    c = np.sort(np.array(bf["item_counts"], dtype=float))
    n = len(c)
    g_n1 = sum((2 * (i + 1) - n - 1) * x for i, x in enumerate(c)) / c.sum() / (n - 1)
    assert s["gini"] == pytest.approx(g_n1, abs=1e-12)
    assert s["aggregate_diversity"] == pytest.approx(np.mean(c > 0), abs=1e-12)
    assert res.meta["n_users"] == sum(bf["n"].values())


def test_position_weights_callable_and_validation(tier_toy):
    recs, users, items = tier_toy
    res = audit_recs(recs, users, items, user_group="tier", item_group="price", k=3, reference="H",
                     discount=lambda r: 1 / r, **LOOSE)
    # H: abc -> a,b at 1,2 ; acd -> a at 1 ; bae -> b,a at 1,2 ; sum v = 1 + 1/2 + 1/3
    assert cell(res.exposure, "H", "P", "share") == pytest.approx((1.5 + 1 + 1.5) / (3 * (1 + 1 / 2 + 1 / 3)))
    assert res.meta["discount"] == "callable:<lambda>"
    with pytest.raises(FairscanError, match="discount"):
        audit_recs(recs, users, items, user_group="tier", item_group="price", discount="exp")


# ------------------------------------------------------------------ uncertainty


def test_binomial_bootstrap_coverage_of_an_exclusion_rate():
    """Seeded simulation: 400 samples of 120 users with a true exclusion rate of 0.3; the 95%
    percentile interval of the binomial (count) bootstrap covers 0.3 about 95% of the time."""
    rng = np.random.default_rng(42)
    n, p = 120, 0.3
    x = rng.binomial(n, p, size=400)
    reps = ranking.binomial_bootstrap(x, np.full(400, n), 1000, rng)
    from fairscan.metrics.stats import percentile_interval

    lo, hi = percentile_interval(reps, 0.95)
    cover = np.mean((lo <= p) & (p <= hi))
    assert 0.91 <= cover <= 0.98


def test_bootstrap_coverage_through_the_audit():
    """The audit's own exclusion interval covers the true rate in most of 40 seeded draws."""
    rng = np.random.default_rng(7)
    covered = 0
    items = pd.DataFrame({"item": ["p", "s"], "c": ["P", "S"]})
    for rep in range(40):
        shown = rng.random(150) >= 0.3  # true exclusion from P: 0.3
        lists = {f"u{j}": (["p", "s"] if s else ["s"]) for j, s in enumerate(shown)}
        users = pd.DataFrame({"user": list(lists), "g": "all"})
        res = audit_recs(lists_frame(lists), users, items, user_group="g", item_group="c", k=2, n_boot=400,
                         seed=rep)
        lo, hi = cell(res.exclusion, "all", "P", "rate_ci_low"), cell(res.exclusion, "all", "P", "rate_ci_high")
        covered += lo <= 0.3 <= hi
    assert covered >= 34  # P(>= 34 of 40 | 0.95) ~ 0.99


def test_user_resampling_and_normal_approximation_agree():
    rng = np.random.default_rng(1)
    v = np.column_stack([rng.random(3000), rng.random(3000) < 0.2])
    r1, how1 = ranking.resample_means(v, 2000, rng)
    r2, how2 = ranking.resample_means(v, 2000, rng, normal_above=100)
    assert (how1, how2) == ("resample", "normal")
    se = v.std(axis=0, ddof=1) / math.sqrt(len(v))
    assert r1.std(axis=0) == pytest.approx(se, rel=0.08)
    assert r2.std(axis=0) == pytest.approx(se, rel=0.08)


def test_ci_method_named_per_table(tier_toy):
    recs, users, items = tier_toy
    res = audit_recs(recs, users, items, user_group="tier", item_group="price", k=3, **LOOSE)
    cm = res.meta["ci_method"]
    assert set(cm) >= {"exclusion", "exposure", "utility", "calibration", "gaps"}
    assert "binomial" in cm["exclusion"] and "resampled" in cm["exposure"]


# ------------------------------------------------------------------ verdicts and suppression


def big_case(n_per_group: int, excl_low: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    lists, group = {}, {}
    for g, p_ex in (("high", 0.05), ("low", excl_low)):
        for j in range(n_per_group):
            u = f"{g}{j}"
            group[u] = g
            lists[u] = ["s1", "s2"] if rng.random() < p_ex else ["p1", "s1"]
    users = pd.DataFrame({"user": list(group), "tier": list(group.values())})
    items = pd.DataFrame({"item": ["p1", "s1", "s2"], "price": ["premium", "standard", "standard"]})
    return lists_frame(lists), users, items


def test_verdicts_fail_and_pass():
    recs, users, items = big_case(400, 0.6)
    res = audit_recs(recs, users, items, user_group="tier", item_group="price", k=2, reference="high")
    f = res.findings.set_index("item_group")["verdict"]
    assert f["premium"] == "fail" and f["standard"] == "pass"
    assert "outside the tolerance" in res.findings.set_index("item_group").loc["premium", "message"]
    recs, users, items = big_case(400, 0.05, seed=1)
    res = audit_recs(recs, users, items, user_group="tier", item_group="price", k=2, reference="high")
    assert res.findings.set_index("item_group")["verdict"]["premium"] == "pass"


def test_small_groups_suppressed_and_insufficient():
    recs, users, items = big_case(40, 0.6)
    extra = pd.DataFrame({"user": [f"tiny{j}" for j in range(5)] + [f"mid{j}" for j in range(50)],
                          "tier": ["tiny"] * 5 + ["mid"] * 50})
    users = pd.concat([users, extra], ignore_index=True)
    recs = pd.concat([recs, pd.DataFrame({"user": [f"tiny{j}" for j in range(5)], "item": "p1", "rank": 1}),
                      pd.DataFrame({"user": [f"mid{j}" for j in range(50)], "item": "s1", "rank": 1})],
                     ignore_index=True)
    res = audit_recs(recs, users, items, user_group="tier", item_group="price", k=2, min_group_size=100)
    # complementary suppression: the user groups add up to n_users, so one more group (the
    # smallest other: 'high', 40 users) is suppressed; subtracting only gives tiny + high
    sizes = res.exclusion.drop_duplicates("user_group").set_index("user_group")["users"]
    assert sizes.isna().to_dict() == {"high": True, "low": False, "mid": False, "tiny": True}
    assert res.meta["n_users"] - sizes.dropna().sum() == 5 + 40
    assert any("complementary suppression" in w for w in res.meta["warnings"])
    tiny = res.exclusion[res.exclusion["user_group"] == "tiny"]
    assert tiny["rate"].isna().all() and tiny["users"].isna().all() and tiny["suppressed"].all()
    assert res.exposure[res.exposure["user_group"] == "tiny"]["share"].isna().all()
    v = res.findings.set_index(["group", "item_group"])["verdict"]
    assert v[("tiny", "premium")] == "insufficient"
    assert v[("low", "premium")] == "insufficient"  # 40 < min_group_size 100
    d = res.to_dict()
    assert all(r["rate"] is None for r in d["exclusion"] if r["user_group"] == "tiny")
    assert any("suppressed" in w for w in d["warnings"])


# ------------------------------------------------------------------ users, items, bad input


def test_users_without_list_unknown_users_and_items(tier_toy):
    recs, users, items = tier_toy
    users = pd.concat([users, pd.DataFrame({"user": ["h4", "l4"], "tier": ["H", "L"]})], ignore_index=True)
    recs = pd.concat([recs, pd.DataFrame({"user": ["zed", "zed"], "item": ["a", "new"], "rank": [1, 2]})],
                     ignore_index=True)
    res = audit_recs(recs, users, items, user_group="tier", item_group="price", k=3, reference="H", **LOOSE)
    assert res.meta["users_without_list"] == 2
    assert res.meta["users_without_list_by_group"] == {"H": 1, "L": 1, "unknown": 0}
    assert res.meta["n_users"] == 9
    # the user without a list is excluded from everything: H now 1 of 4 excluded from P and S
    assert cell(res.exclusion, "H", "P", "rate") == pytest.approx(0.25)
    assert cell(res.exclusion, "H", "S", "rate") == pytest.approx(0.25)
    # and contributes zero exposure: H's premium share drops from 2/3 to (2/3 * 3) / 4
    assert cell(res.exposure, "H", "P", "share") == pytest.approx(0.6667 * 3 / 4, abs=1e-4)
    assert "unknown" in set(res.exclusion["user_group"]) and "unknown" in set(res.exclusion["item_group"])
    assert cell(res.exclusion, "unknown", "unknown", "excluded") == 0
    assert res.meta["users_not_in_users_table"] == 1 and res.meta["items_not_in_items_table"] == 1
    text = " ".join(res.meta["warnings"])
    assert "no recommendation list" in text and "not in USERS" in text and "not in ITEMS" in text


@pytest.mark.parametrize("dense", [True, False])
def test_duplicates_are_clear_errors(tier_toy, monkeypatch, dense):
    import fairscan.recs as recs_mod

    if not dense:
        monkeypatch.setattr(recs_mod, "_DENSE_CELLS", 0)
    recs, users, items = tier_toy
    dup_rank = pd.concat([recs, pd.DataFrame({"user": ["h1"], "item": ["e"], "rank": [2]})], ignore_index=True)
    with pytest.raises(FairscanError, match=r"duplicate \(user, rank\).*'h1'"):
        audit_recs(dup_rank, users, items, user_group="tier", item_group="price")
    dup_item = pd.concat([recs, pd.DataFrame({"user": ["h1"], "item": ["a"], "rank": [7]})], ignore_index=True)
    with pytest.raises(FairscanError, match=r"duplicate \(user, item\).*'h1'.*'a'"):
        audit_recs(dup_item, users, items, user_group="tier", item_group="price")
    res = audit_recs(recs, users, items, user_group="tier", item_group="price", k=3, reference="H", **LOOSE)
    assert cell(res.exposure, "L", "P", "share") == pytest.approx(0.0782, abs=5e-5)


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r.assign(rank=r["rank"].astype(float).where(r.index != 0, 0.0)), "below 1"),
    (lambda r: r.assign(rank=r["rank"].astype(float).where(r.index != 0, 1.5)), "not whole numbers"),
    (lambda r: r.assign(rank=r["rank"].astype(str)), "not numeric"),
    (lambda r: r.assign(rank=r["rank"].astype(float).where(r.index != 0, np.nan)), "missing"),
    (lambda r: r.assign(user=r["user"].where(r.index != 0, None)), "'user' has 1 missing"),
    (lambda r: r.assign(item=r["item"].where(r.index != 0, None)), "'item' has 1 missing"),
    (lambda r: r.rename(columns={"rank": "rnk"}), "no column 'rank'.*rnk"),
])
def test_bad_recs_input(tier_toy, change, message):
    recs, users, items = tier_toy
    with pytest.raises(FairscanError, match=message):
        audit_recs(change(recs), users, items, user_group="tier", item_group="price")


def test_bad_tables_and_settings(tier_toy):
    recs, users, items = tier_toy
    with pytest.raises(FairscanError, match=r"duplicate 'user'.*'h1'"):
        audit_recs(recs, pd.concat([users, users.iloc[:1]]), items, user_group="tier", item_group="price")
    with pytest.raises(FairscanError, match="duplicate 'item'"):
        audit_recs(recs, users, pd.concat([items, items.iloc[:1]]), user_group="tier", item_group="price")
    with pytest.raises(FairscanError, match=r"USERS has no column 'teir'.*tier"):
        audit_recs(recs, users, items, user_group="teir", item_group="price")
    with pytest.raises(FairscanError, match="reference user group 'M' not found"):
        audit_recs(recs, users, items, user_group="tier", item_group="price", reference="M", **LOOSE)
    with pytest.raises(FairscanError, match="k must be"):
        audit_recs(recs, users, items, user_group="tier", item_group="price", k=0)
    with pytest.raises(FairscanError, match="fewer than 10 users"):
        audit_recs(recs, users, items, user_group="tier", item_group="price")
    with pytest.raises(FairscanError, match="TRUTH column 'user' has 1 missing"):
        audit_recs(recs, users, items, user_group="tier", item_group="price", truth=pd.DataFrame(
            {"user": [None], "item": ["a"]}), **LOOSE)


def test_files_csv_and_parquet(tier_toy, tmp_path):
    recs, users, items = tier_toy
    recs.assign(score=0.5).to_parquet(tmp_path / "recs.parquet")
    users.to_csv(tmp_path / "users.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    res = audit_recs(str(tmp_path / "recs.parquet"), tmp_path / "users.csv", str(tmp_path / "items.csv"),
                     user_group="tier", item_group="price", k=3, reference="H", **LOOSE)
    assert cell(res.exposure, "H", "P", "share") == pytest.approx(0.6667, abs=5e-5)
    with pytest.raises(FairscanError, match="not found"):
        audit_recs(str(tmp_path / "nope.parquet"), users, items, user_group="tier", item_group="price")


# ------------------------------------------------------------------ outputs


def test_json_contract(tier_toy):
    recs, users, items = tier_toy
    truth = pd.DataFrame({"user": ["h1", "l1", "l2"], "item": ["a", "a", "e"]})
    past = pd.DataFrame({"user": ["h1", "l1"], "item": ["b", "c"]})
    res = audit_recs(recs, users, items, user_group="tier", item_group="price", k=3, truth=truth,
                     interactions=past, reference="H", **LOOSE)
    d = json.loads(res.to_json())
    assert d["schema_version"] == "1.0"
    for key in ("n_users", "exclusion", "exposure", "utility", "gaps", "ci_method", "k", "discount",
                "users_without_list", "warnings", "calibration", "items", "findings"):
        assert key in d, key
    assert d["n_users"] == 6 and d["k"] == 3 and d["discount"] == "log"
    assert {"user_group", "item_group", "users", "excluded", "rate", "rate_ci"} <= set(d["exclusion"][0])
    assert {"user_group", "item_group", "share", "share_ci"} <= set(d["exposure"][0])
    assert {"user_group", "metric", "value", "ci"} <= set(d["utility"][0])
    assert {u["metric"] for u in d["utility"]} == {"ndcg@3", "recall@3", "precision@3", "hit_rate@3"}
    for g in d["gaps"]:
        assert {"metric", "item_group", "group", "reference", "difference", "ratio", "p_value", "verdict"} <= set(g)
    assert any(g["item_group"] is None for g in d["gaps"])
    assert all(len(r["rate_ci"]) == 2 for r in d["exclusion"])


def test_markdown_escapes_user_strings():
    lists = {f"u{j}": ["a*b", "c"] for j in range(12)} | {f"v{j}": ["c"] for j in range(12)}
    users = pd.DataFrame({"user": list(lists), "g": ["<b>|x"] * 12 + ["=cmd()"] * 12})
    items = pd.DataFrame({"item": ["a*b", "c"], "c": ["pre_mium|*", "std"]})
    md = audit_recs(lists_frame(lists), users, items, user_group="g", item_group="c", k=2).to_markdown()
    assert "<b>" not in md and "&lt;b&gt;\\|x" in md
    assert "pre\\_mium\\|\\*" in md
    assert "'=cmd()" in md
    assert "## Exclusion" in md and "## Exposure" in md


def test_same_seed_same_result_with_threaded_resampling():
    # 4,500 users x 1,000 replicates: the user resampling runs on two threads
    rng = np.random.default_rng(5)
    lists = {f"u{j}": list(rng.choice(list("abcdef"), size=3, replace=False)) for j in range(9000)}
    users = pd.DataFrame({"user": list(lists), "g": ["x"] * 4500 + ["y"] * 4500})
    items = pd.DataFrame({"item": list("abcdef"), "c": ["A", "A", "B", "B", "C", "C"]})

    def run(seed: int):
        return audit_recs(lists_frame(lists), users, items, user_group="g", item_group="c", k=3, seed=seed)

    a, b, c = run(1), run(1), run(2)
    assert a.to_json() == b.to_json()
    assert not np.allclose(a.exposure["share_ci_low"], c.exposure["share_ci_low"])
    assert "resampled" in a.meta["ci_method"]["exposure"]


def test_truth_relevance_column_and_numeric_groups():
    lists = {1: ["a", "b"], 2: ["b", "c"], 3: ["c", "a"]}
    users = pd.DataFrame({"user": [1, 2, 3], "tier": [1, 1, 2]})
    items = pd.DataFrame({"item": list("abc"), "c": ["x", "y", "y"]})
    truth = pd.DataFrame({"user": [1, 1, 2, 3], "item": ["a", "c", "a", "b"], "relevance": [1.0, 0.0, 2.0, 0.0]})
    res = audit_recs(lists_frame(lists), users, items, user_group="tier", item_group="c", k=2, truth=truth,
                     reference=1, **LOOSE)
    u = res.utility.set_index(["user_group", "metric"])["value"]
    # user 1: relevant {a} at rank 1 -> ndcg 1, recall 1, precision 1/2; user 2: {a} not shown -> 0
    assert u[("1", "ndcg@2")] == pytest.approx(0.5)
    assert u[("1", "precision@2")] == pytest.approx(0.25)
    assert u[("1", "hit_rate@2")] == pytest.approx(0.5)
    assert math.isnan(u[("2", "ndcg@2")])  # user 3 has no relevant item: left out of the average
    assert res.meta["reference"] == "1"


def test_past_items_outside_the_catalog_are_unknown(tier_toy):
    recs, users, items = tier_toy
    past = pd.DataFrame({"user": ["h1", "h1", "l1"], "item": ["a", "zzz", "c"]})
    res = audit_recs(recs, users, items, user_group="tier", item_group="price", k=3, interactions=past,
                     reference="H", **LOOSE)
    assert "unknown" in set(res.exposure["item_group"])
    assert cell(res.exposure, "H", "unknown", "share") == 0
    assert math.isnan(cell(res.exposure, "H", "unknown", "bias_source"))  # not in the catalog: P = 0
    # h1: history (P: 1/2, unknown: 1/2), list abc -> q by position weights over (P, S, unknown)
    v = 1 / np.log2(np.arange(2, 5))
    q = np.array([v[0] + v[1], v[2], 0]) / v.sum()
    p = np.array([0.5, 0, 0.5])
    qt = 0.99 * q + 0.01 * p
    expected_h1 = sum(pi * math.log(pi / qi) for pi, qi in zip(p, qt, strict=True) if pi > 0)
    assert res.calibration.set_index("user_group").loc["H", "c_kl"] == pytest.approx(expected_h1, abs=1e-12)


def test_welch_and_bh_equal_scipy_without_importing_it_on_the_hot_path():
    """The large-sample test (Welch) and the false discovery adjustment (BH) equal scipy's
    (the oracle), computed from scipy.special so that an audit need not import scipy.stats."""
    from fairscan.metrics.stats import benjamini_hochberg, welch_test

    rng = np.random.default_rng(11)
    for nx, ny, shift in ((6000, 4000, 0.0), (7000, 9000, 0.03), (20, 35000, 0.2)):
        x, y = rng.normal(shift, 1, nx), rng.gamma(2.0, 0.5, ny) - 1.0
        assert welch_test(x, y) == pytest.approx(stats.ttest_ind(x, y, equal_var=False).pvalue, rel=1e-9)
        p, test = ranking.mean_difference_test(x, y, 999, rng)
        assert test == "welch_t" and p == pytest.approx(stats.ttest_ind(x, y, equal_var=False).pvalue, rel=1e-9)
    p = rng.random(40) ** 3
    p[[3, 9]] = np.nan
    want = np.full(40, np.nan)
    want[~np.isnan(p)] = stats.false_discovery_control(p[~np.isnan(p)], method="bh")
    np.testing.assert_allclose(benjamini_hochberg(p), want, rtol=1e-12)


def test_permutation_pvalue_equals_scipy_exactly_when_exact_and_within_noise_otherwise():
    """The vectorised permutation test against scipy.stats.permutation_test (the oracle):
    identical p-values when every relabelling is enumerated (ties included), and within
    four Monte Carlo standard errors when relabellings are drawn."""
    rng = np.random.default_rng(5)

    def scipy_p(x, y, n):
        return stats.permutation_test((x, y), lambda a, b, axis=-1: a.mean(axis=axis) - b.mean(axis=axis),
                                      permutation_type="independent", vectorized=True, n_resamples=n,
                                      alternative="two-sided", rng=np.random.default_rng(0)).pvalue

    for nx, ny in ((2, 2), (3, 5), (5, 5), (2, 11), (6, 7), (4, 9)):
        x, y = rng.integers(0, 4, nx).astype(float), rng.integers(0, 5, ny).astype(float)  # many ties
        assert ranking.permutation_pvalue(x, y, 9999, rng) == scipy_p(x, y, 9999)
    for nx, ny, shift in ((30, 50, 0.4), (200, 700, 0.1), (12, 900, 0.7)):
        x, y = rng.normal(shift, 1, nx), rng.normal(0, 1, ny)
        want = scipy_p(x, y, 40_000)
        got = ranking.permutation_pvalue(x, y, 20_000, rng)
        sd = math.sqrt(2 * max(want, 1e-3) * (1 / 20_000 + 1 / 40_000))  # both are Monte Carlo estimates
        assert abs(got - want) <= 4 * sd
    assert ranking.permutation_pvalue(np.ones(4), np.ones(6), 999, rng) == 1.0


def test_permutation_pvalue_counts_ties_when_the_means_are_equal():
    """Values in tenths (sums are not exact in floating point), equal means: scipy's p of 1."""
    from scipy import stats as sps

    rng = np.random.default_rng(0)
    for x, y in (([0, 0.2, 0.1], [0, 0.2]), ([0.1, 0.3, 0.2, 0.6], [0.3, 0.3, 0.1]),
                 (list(rng.integers(0, 10, 6) / 10), list(rng.integers(0, 10, 5) / 10))):
        want = sps.permutation_test((np.array(x), np.array(y)), lambda a, b: a.mean() - b.mean(),
                                    permutation_type="independent", n_resamples=10_000).pvalue
        assert ranking.permutation_pvalue(np.array(x), np.array(y), 10_000, rng) == pytest.approx(want, abs=1e-12)
