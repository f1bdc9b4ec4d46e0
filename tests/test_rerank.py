"""Re-ranking: FA*IR golden values, the floor guarantee in every prefix, Steck's calibrated
re-ranking against brute force, and the strength trade-off on the online-retail preset."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from fairscan.errors import FairscanError
from fairscan.metrics import ranking
from fairscan.mitigation import rerank as RR

# ----------------------------------------------------------------------------- FA*IR tables


def test_fair_unadjusted_mtable_golden():
    m = RR.fair_mtable(20, 0.25, 0.1)
    assert m.tolist() == [0] * 8 + [1] * 6 + [2] * 5 + [3]
    # index convention: m[0] is the prefix of length 1, m[i-1] = binom.ppf(alpha, i, p)
    assert all(m[i - 1] == binom.ppf(0.1, i, 0.25) for i in range(1, 21))
    assert m[8] == 1 and binom.ppf(0.1, 8, 0.25) == 0  # 0.75**8 = 0.1001 >= 0.1, 0.75**9 < 0.1
    # fairsearchcore's other unadjusted goldens
    assert RR.fair_mtable(10, 0.2, 0.15).tolist() == [0] * 8 + [1, 1]
    assert RR.fair_mtable(30, 0.3, 0.05).tolist() == [0] * 8 + [1] * 5 + [2] * 5 + [3] * 5 + [4] * 4 + [5] * 3


def test_fair_adjusted_alpha_and_fail_probability_golden():
    alpha, m, fail = RR.fair_adjust_alpha(20, 0.25, 0.1)
    assert alpha == pytest.approx(0.078125, abs=1e-12)
    assert m.tolist() == [0] * 8 + [1] * 7 + [2] * 5
    assert fail == pytest.approx(0.105152, abs=1e-6)
    assert RR.fair_mtable(20, 0.25, 0.1, adjust=True).tolist() == m.tolist()
    assert RR.fair_fail_probability(m, 0.25) == pytest.approx(0.10515247355215251, abs=1e-12)
    # the adjusted table is the unadjusted table of the adjusted alpha (fairsearchcore's test)
    assert RR.fair_mtable(20, 0.25, alpha).tolist() == m.tolist()
    # fairsearchcore's other goldens
    a10, m10, f10 = RR.fair_adjust_alpha(10, 0.2, 0.15)
    assert a10 == pytest.approx(0.15) and m10.tolist() == [0] * 8 + [1, 1]
    assert f10 == pytest.approx(0.134218, abs=1e-6)
    a30, m30, f30 = RR.fair_adjust_alpha(30, 0.3, 0.05)
    assert m30.tolist() == [0] * 10 + [1] * 6 + [2] * 5 + [3] * 4 + [4] * 5
    assert f30 == pytest.approx(0.048777, abs=1e-6)
    assert a30 == pytest.approx(0.0259765625, abs=1e-12)  # the bisection point that gives that table


def test_fail_probability_equals_enumeration():
    """The DP equals enumerating all 2^k protected/unprotected rankings."""
    k, p = 12, 0.3
    for m in (RR.fair_mtable(k, p, 0.1), RR.fair_mtable(k, p, 0.3), np.array([0, 1] + [1] * 10)):
        fail = 0.0
        for bits in itertools.product((0, 1), repeat=k):
            prefix = np.cumsum(bits)
            if (prefix < m).any():
                fail += p ** sum(bits) * (1 - p) ** (k - sum(bits))
        assert RR.fair_fail_probability(m, p) == pytest.approx(fail, abs=1e-12)


# ----------------------------------------------------------------------------- helpers


def _random_candidates(rng: np.random.Generator, n_users: int, n_min: int, n_max: int, n_groups: int,
                       n_items: int = 60) -> tuple[pd.DataFrame, pd.Series]:
    groups = pd.Series([f"g{int(x)}" for x in rng.integers(0, n_groups, n_items)],
                       index=[f"i{j:03d}" for j in range(n_items)])
    rows = []
    for u in range(n_users):
        n = int(rng.integers(n_min, n_max + 1))
        items = rng.choice(groups.index.to_numpy(), n, replace=False)
        scores = np.sort(rng.random(n))[::-1]
        rows += [(f"u{u}", it, r + 1, s) for r, (it, s) in enumerate(zip(items, scores, strict=True))]
    return pd.DataFrame(rows, columns=["user", "item", "rank", "score"]), groups


def _fair_reference(protected: list[bool], k: int, mtable: np.ndarray) -> list[int]:
    """FA*IR's greedy merge for one user, as in fairsearchcore's fair_top_k (positions)."""
    prot = [j for j, x in enumerate(protected) if x]
    other = [j for j, x in enumerate(protected) if not x]
    out: list[int] = []
    count = 0
    for i in range(min(k, len(protected))):
        if prot and count < mtable[i]:
            out.append(prot.pop(0))
            count += 1
        elif prot and other:
            take = prot if prot[0] < other[0] else other  # earlier = higher score
            out.append(take.pop(0))
            count += take is prot
        else:
            out.append((prot or other).pop(0))
            count += bool(protected[out[-1]])
    return out


def _steck_reference(scores: np.ndarray, g: list[str], labels: list[str], p: np.ndarray, k: int, lam: float,
                     weights: np.ndarray) -> list[int]:
    """Steck's greedy, one user, plain Python: maximise (1-λ) Σ s - λ C_KL(p, q)."""
    lo, hi = scores.min(), scores.max()
    s = (scores - lo) / (hi - lo) if hi > lo else np.ones_like(scores)
    chosen: list[int] = []
    for t in range(min(k, len(s))):
        best, best_v = None, -np.inf
        for j in range(len(s)):
            if j in chosen:
                continue
            sel = [*chosen, j]
            q = np.zeros(len(labels))
            for r, jj in enumerate(sel):
                q[labels.index(g[jj])] += weights[r]
            q /= q.sum()
            v = (1 - lam) * s[sel].sum() - lam * float(ranking.steck_ckl(p, q))
            if v > best_v:
                best, best_v = j, v
        chosen.append(best)
        del t
    return chosen


# ----------------------------------------------------------------------------- floor


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_floor_guarantee_holds_in_every_prefix(seed):
    rng = np.random.default_rng(seed)
    cand, groups = _random_candidates(rng, n_users=150, n_min=3, n_max=25, n_groups=3)
    k = 10
    by_user = {u: c["item"].tolist() for u, c in cand.sort_values(["user", "rank"]).groupby("user")}
    is_prot = (groups == "g0").to_dict()
    for p in (0.0, 0.2, 0.35, 0.5, 0.8, 1.0):
        for adjust in (False, True):
            out = RR.exposure_floor_rerank(cand, groups, k=k, protected_item_group="g0", strength=p,
                                           adjust_alpha=adjust)
            mtable = np.asarray(out.attrs["mtable"])
            assert mtable.tolist() == RR.fair_mtable(k, p, 0.1, adjust=adjust).tolist()
            got = out.groupby("user")["item"].apply(list).to_dict()
            ranks = out.groupby("user")["rank"].apply(list).to_dict()
            unmet = 0
            for u, items in by_user.items():
                lst = got[u]
                assert ranks[u] == list(range(1, min(k, len(items)) + 1))
                assert set(lst) <= set(items) and len(set(lst)) == len(lst)
                prot = np.array([is_prot[i] for i in lst])
                n_prot = sum(is_prot[i] for i in items)
                ok = bool((np.cumsum(prot) >= mtable[:len(prot)]).all())
                # the floor holds in every prefix whenever the candidates hold enough protected items
                if n_prot >= mtable[len(prot) - 1]:
                    assert ok, (u, p)
                unmet += not ok
                # identical to FA*IR's greedy merge
                ref = _fair_reference([is_prot[i] for i in items], k, mtable)
                assert lst == [items[j] for j in ref]
            assert out.attrs["floor_unmet_users"] == unmet
    # strength 0: the original top k
    out = RR.exposure_floor_rerank(cand, groups, k=k, protected_item_group="g0", strength=0.0)
    orig = cand[cand["rank"] <= k]
    pd.testing.assert_frame_equal(out.reset_index(drop=True), orig[["user", "item", "rank", "score"]]
                                  .reset_index(drop=True), check_dtype=False)


def test_floor_apply_to_only_reranks_chosen_user_groups():
    rng = np.random.default_rng(4)
    cand, groups = _random_candidates(rng, n_users=60, n_min=15, n_max=20, n_groups=4)
    users = pd.DataFrame({"user": [f"u{u}" for u in range(60)], "tier": ["low", "high"] * 30})
    out = RR.exposure_floor_rerank(cand, groups, users, "tier", k=10, protected_item_group="g3", strength=0.6,
                                   apply_to=["low"])
    base = cand[cand["rank"] <= 10].set_index(["user", "rank"])["item"]
    got = out.set_index(["user", "rank"])["item"]
    high = users.loc[users["tier"] == "high", "user"]
    assert (got.loc[high] == base.loc[high]).all()
    low = users.loc[users["tier"] == "low", "user"]
    assert (got.loc[low] != base.loc[low]).any()
    with pytest.raises(FairscanError, match="apply_to names user group"):
        RR.exposure_floor_rerank(cand, groups, users, "tier", protected_item_group="g3", apply_to=["lo"])
    with pytest.raises(FairscanError, match="protected item group 'g9'"):
        RR.exposure_floor_rerank(cand, groups, protected_item_group="g9")


# ----------------------------------------------------------------------------- calibrated


def test_calibrated_strength_zero_returns_the_original_order():
    rng = np.random.default_rng(5)
    cand, groups = _random_candidates(rng, n_users=80, n_min=2, n_max=30, n_groups=4)
    out = RR.calibrated_rerank(cand, groups, k=10, strength=0.0)
    orig = cand[cand["rank"] <= 10][["user", "item", "rank", "score"]]
    pd.testing.assert_frame_equal(out.reset_index(drop=True), orig.reset_index(drop=True), check_dtype=False)


def test_calibrated_strength_one_reaches_the_brute_force_minimum_ckl():
    """λ = 1 on tiny cases (many users at once): the greedy list's C_KL equals the minimum
    over every k-subset of the candidates found by brute force."""
    rng = np.random.default_rng(6)
    cand, groups = _random_candidates(rng, n_users=120, n_min=4, n_max=9, n_groups=3, n_items=20)
    labels = sorted(groups.unique())
    target = dict(zip(labels, rng.dirichlet(np.ones(len(labels))), strict=True))
    p = np.array([target[g] for g in labels])
    for k in (2, 3, 4):
        out = RR.calibrated_rerank(cand, groups, k=k, strength=1.0, target=target)
        for u, c in cand.groupby("user", sort=False):
            items = c.sort_values("rank")["item"].tolist()

            def ckl(sel: list[str]) -> float:
                q = np.array([sum(groups[i] == g for i in sel) for g in labels], dtype=float)
                return float(ranking.steck_ckl(p, q / q.sum()))

            got = ckl(out.loc[out["user"] == u, "item"].tolist())
            best = min(ckl(list(s)) for s in itertools.combinations(items, min(k, len(items))))
            assert got <= best + 1e-12, (u, k, got, best)


@pytest.mark.parametrize("discount", ["none", "log"])
def test_calibrated_equals_a_plain_python_greedy(discount):
    rng = np.random.default_rng(7)
    cand, groups = _random_candidates(rng, n_users=40, n_min=3, n_max=12, n_groups=3, n_items=25)
    labels = sorted(groups.unique())
    # half the users have a history; the others are calibrated to the catalog
    hist = cand[cand["user"].isin([f"u{u}" for u in range(0, 40, 2)])].sample(frac=0.5, random_state=1)
    hist = hist.assign(weight=rng.integers(1, 4, len(hist)))
    catalog = groups.value_counts(normalize=True).reindex(labels).to_numpy()
    w = ranking.discount_weights(6, discount)
    for lam in (0.2, 0.5, 0.9):
        out = RR.calibrated_rerank(cand, groups, hist, k=6, strength=lam, discount=discount)
        for u, c in cand.groupby("user", sort=False):
            c = c.sort_values("rank")
            h = hist[hist["user"] == u]
            if len(h):
                p = np.array([h.loc[groups[h["item"]].to_numpy() == g, "weight"].sum() for g in labels], float)
                p /= p.sum()
            else:
                p = catalog
            ref = _steck_reference(c["score"].to_numpy(), groups[c["item"]].tolist(), labels, p, 6, lam, w)
            assert out.loc[out["user"] == u, "item"].tolist() == c["item"].to_numpy()[ref].tolist(), (u, lam)


def test_calibrated_follows_the_users_history():
    cand = pd.DataFrame({"user": ["a"] * 6 + ["b"] * 6, "item": list("pqrstu") * 2,
                         "score": [6, 5, 4, 3, 2, 1] * 2})
    groups = pd.Series({"p": "A", "q": "A", "r": "A", "s": "B", "t": "B", "u": "B"})
    hist = pd.DataFrame({"user": ["a", "b"], "item": ["p", "s"]})  # a only buys A, b only B
    out = RR.calibrated_rerank(cand, groups, hist, k=3, strength=1.0)
    assert out.loc[out["user"] == "a", "item"].tolist() == ["p", "q", "r"]
    assert out.loc[out["user"] == "b", "item"].tolist() == ["s", "t", "u"]
    # a uniform target mixes the groups (ties to the higher score): A, B, then A
    out = RR.calibrated_rerank(cand, groups, k=3, strength=1.0, target="uniform")
    assert out.loc[out["user"] == "a", "item"].tolist() == ["p", "s", "q"]


def test_rerank_entry_point_and_errors():
    rng = np.random.default_rng(8)
    cand, groups = _random_candidates(rng, n_users=10, n_min=12, n_max=15, n_groups=3)
    items = pd.DataFrame({"item": groups.index, "tier": groups.to_numpy()})
    users = pd.DataFrame({"user": [f"u{u}" for u in range(10)], "g": "x"})
    a = RR.rerank(cand, users, items, user_group="g", item_group="tier", method="floor", strength=0.5,
                  protected_item_group="g1", k=8)
    b = RR.exposure_floor_rerank(cand, groups, k=8, protected_item_group="g1", strength=0.5)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["user", "item", "rank", "score"]
    with pytest.raises(FairscanError, match="needs protected_item_group"):
        RR.rerank(cand, users, items, item_group="tier", method="floor", strength=0.5)
    with pytest.raises(FairscanError, match=r"unknown re-ranking method 'calibrate'.*did you mean: calibrated"):
        RR.rerank(cand, users, items, item_group="tier", method="calibrate", strength=0.5)
    with pytest.raises(FairscanError, match="strength must be a number in"):
        RR.rerank(cand, users, items, item_group="tier", method="calibrated", strength=1.5)
    with pytest.raises(FairscanError, match="ITEMS has no column 'tiers'"):
        RR.rerank(cand, users, items, item_group="tiers", method="calibrated", strength=0.5)
    # candidates with ranks only
    r = RR.calibrated_rerank(cand.drop(columns="score"), groups, k=5, strength=0.0)
    assert r.groupby("user")["item"].apply(list).equals(
        cand[cand["rank"] <= 5].groupby("user")["item"].apply(list))


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def retail():
    from fairscan.recommenders import train_preset_recommender

    tr = train_preset_recommender("online-retail")
    cand = tr.model.recommend(None, 100)
    return tr, cand


@pytest.mark.slow
def test_floor_strength_lowers_exclusion_of_low_spend_tier_from_top_price_tier(retail):
    tr, cand = retail
    top = str(tr.items["price_tier"].cat.categories[-1])
    low = str(tr.users["spend_tier"].cat.categories[0])
    curve = RR.tradeoff_curve(cand, tr.users, tr.items, tr.truth, user_group="spend_tier",
                              item_group="price_tier", method="floor", strengths=(0, 0.25, 0.5), k=10,
                              protected_item_group=top, n_boot=50)
    show = curve[["strength", "user_group", "ndcg", "ndcg_change", "exclusion", "exclusion_gap",
                  "exposure_share", "seconds"]]
    print(f"\nFA*IR floor for {top} (k=10, alpha=0.1):\n{show.to_string(index=False)}")
    lo = curve[curve["user_group"] == low].set_index("strength")
    overall = curve[curve["user_group"] == "(all)"].set_index("strength")
    # measured: 28.6% of the lowest spend tier never see the top price tier in their top 10; none at p >= 0.25
    assert lo.loc[0.0, "exclusion"] == pytest.approx(0.2863, abs=0.01)
    assert lo.loc[0.25, "exclusion"] <= 0.005 and lo.loc[0.5, "exclusion"] <= 0.005
    assert lo["exclusion"].is_monotonic_decreasing
    # exposure of the top tier rises with the floor, at a small utility cost
    assert lo["exposure_share"].is_monotonic_increasing and lo.loc[0.5, "exposure_share"] > 0.3
    assert overall.loc[0.5, "ndcg"] < overall.loc[0.0, "ndcg"]
    assert overall.loc[0.5, "ndcg_change"] > -0.01


@pytest.mark.slow
def test_calibrated_tradeoff_on_online_retail(retail):
    tr, cand = retail
    top = str(tr.items["price_tier"].cat.categories[-1])
    curve = RR.tradeoff_curve(cand, tr.users, tr.items, tr.truth, user_group="spend_tier",
                              item_group="price_tier", method="calibrated", strengths=(0, 0.5, 1), k=10,
                              focus_item_group=top, history=tr.interactions, n_boot=50)
    show = curve[["strength", "user_group", "ndcg", "ndcg_change", "exclusion", "exposure_share", "c_kl"]]
    print(f"\nSteck calibrated (history p, k=10):\n{show.to_string(index=False)}")
    overall = curve[curve["user_group"] == "(all)"].set_index("strength")
    # calibration to each user's own history: C_KL falls from 0.90 to 0.015, ndcg@10 0.0625 -> 0.0579
    assert overall["c_kl"].is_monotonic_decreasing
    assert overall.loc[1.0, "c_kl"] < 0.05 < 0.5 < overall.loc[0.0, "c_kl"]
    assert overall.loc[1.0, "ndcg"] < overall.loc[0.0, "ndcg"]
    assert math.isclose(overall.loc[0.0, "ndcg_change"], 0.0)
