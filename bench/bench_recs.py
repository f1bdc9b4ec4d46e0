"""Speed of fairscan.recs.audit_recs on sparse top-k logs, and against Holistic AI's dense
recommender metrics in the same process.

Prints times and ratios. Not a test: run it with
`python bench/bench_recs.py [--users 1000000] [--k 20] [--parquet] [--skip-holisticai]`.

1. 1M users x top-20 lists (20M rows, generated seeded in memory; with --parquet also
   written to bench/_data/ and read back through the file path), 4 spend tiers x 4 price
   tiers, held-out truth for every user: the whole audit (validation, encoding, sufficient
   statistics, 1,000 bootstrap replicates, tests, verdicts). Target: < 10 s on 2 cores.
2. If `holisticai` is importable: its dense (users x items score matrix) metrics —
   exposure_l1, exposure_kl, gini_index, aggregate_diversity, avg_recall_ratio — on a size
   a dense matrix can hold, against audit_recs on the same lists (same run, printed ratio).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).parent / "_data"
PRIME_PREMIUM = 4_999  # pool sizes are primes so (a + j*b) mod P is distinct for j < P
PRIME_REST = 45_007


def make_lists(n_users: int, k: int = 20, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame,
                                                                  pd.DataFrame]:
    """Seeded synthetic logs: users in 4 spend tiers; items in 4 price tiers (premium =
    the first 4,999 ids); the lower the tier, the fewer premium items shown (and more
    users shown none at all). Distinct items per list by construction. Returns recs,
    users, items, truth."""
    rng = np.random.default_rng(seed)
    tier = rng.integers(0, 4, n_users)
    p_prem = np.array([0.02, 0.05, 0.10, 0.20])[tier]
    prem = rng.random((n_users, k)) < p_prem[:, None]
    j_prem = np.cumsum(prem, axis=1) - 1
    j_rest = np.cumsum(~prem, axis=1) - 1
    a_p, b_p = rng.integers(0, PRIME_PREMIUM, n_users), rng.integers(1, PRIME_PREMIUM, n_users)
    a_r, b_r = rng.integers(0, PRIME_REST, n_users), rng.integers(1, PRIME_REST, n_users)
    item = np.where(prem, (a_p[:, None] + j_prem * b_p[:, None]) % PRIME_PREMIUM,
                    PRIME_PREMIUM + (a_r[:, None] + j_rest * b_r[:, None]) % PRIME_REST)
    n_items = PRIME_PREMIUM + PRIME_REST
    recs = pd.DataFrame({
        "user": np.repeat(np.arange(n_users, dtype=np.int64), k),
        "item": item.ravel().astype(np.int64),
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), n_users),
    })
    tiers = np.array(["low", "mid", "high", "top"])
    users = pd.DataFrame({"user": np.arange(n_users, dtype=np.int64),
                          "spend_tier": pd.Categorical.from_codes(tier, tiers)})
    price = np.where(np.arange(n_items) < PRIME_PREMIUM, 3, np.arange(n_items) % 3)
    items = pd.DataFrame({"item": np.arange(n_items, dtype=np.int64),
                          "price_tier": pd.Categorical.from_codes(price, ["budget", "standard", "plus", "premium"])})
    # truth: one shown item (hit) with a tier-dependent chance, plus one random item
    hit = rng.random(n_users) < np.array([0.2, 0.25, 0.3, 0.35])[tier]
    pos = rng.integers(0, k, n_users)
    first = np.where(hit, item[np.arange(n_users), pos], rng.integers(0, n_items, n_users))
    second = rng.integers(0, n_items, n_users)
    truth = pd.DataFrame({"user": np.repeat(np.arange(n_users, dtype=np.int64), 2),
                          "item": np.stack([first, second], axis=1).ravel().astype(np.int64)})
    truth = truth.drop_duplicates(ignore_index=True)
    return recs, users, items, truth


def bench_big(n_users: int, k: int, parquet: bool) -> float:
    from fairscan.recs import audit_recs

    t0 = time.perf_counter()
    recs, users, items, truth = make_lists(n_users, k)
    print(f"[1] generated {len(recs):,} rows ({n_users:,} users x top-{k}) in {time.perf_counter() - t0:.1f} s")
    src = recs
    if parquet:
        DATA.mkdir(exist_ok=True)
        path = DATA / f"recs_{n_users}_{k}.parquet"
        if not path.exists():
            recs.to_parquet(path, index=False, compression="zstd")
        src = str(path)
        print(f"    reading from {path} ({path.stat().st_size / 2**20:.0f} MiB)")
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        res = audit_recs(src, users, items, user_group="spend_tier", item_group="price_tier", k=k, truth=truth,
                         n_boot=1000, seed=0)
        best = min(best, time.perf_counter() - t)
    ex = res.exclusion.set_index(["user_group", "item_group"])["rate"]
    print(f"[1] audit_recs, {len(recs):,} rows, 4 tiers x 4 price tiers, truth, 1,000 replicates: "
          f"{best:.2f} s (target < 10 s) -> {'OK' if best < 10 else 'SLOW'}")
    print("    premium exclusion by tier: " + ", ".join(
        f"{g} {ex[(g, 'premium')]:.3f}" for g in ("low", "mid", "high", "top")))
    print(f"    verdicts: {res.verdict_counts()}; gini {res.meta['item_summary']['gini']:.3f}")
    return best


def bench_holisticai(n_users: int, n_items: int, k: int) -> None:
    try:
        from holisticai.bias.metrics import (
            aggregate_diversity,
            avg_recall_ratio,
            exposure_kl,
            exposure_l1,
            gini_index,
        )
    except ImportError:
        print("[2] holisticai is not importable (pip install holisticai): skipped")
        return
    from fairscan.recs import audit_recs

    rng = np.random.default_rng(1)
    group = rng.integers(0, 2, n_users)
    # dense scores; the low group scores the first (premium) tenth of the catalog lower
    scores = rng.random((n_users, n_items))
    scores[group == 0, : n_items // 10] *= 0.7
    truth_mat = (rng.random((n_users, n_items)) < 0.01).astype(float)
    # lists: top k by score (ties are measure-zero with continuous scores)
    top = np.argsort(-scores, axis=1)[:, :k]
    recs = pd.DataFrame({"user": np.repeat(np.arange(n_users), k), "item": top.ravel(),
                         "rank": np.tile(np.arange(1, k + 1), n_users)})
    users = pd.DataFrame({"user": np.arange(n_users), "g": np.where(group == 1, "a", "b")})
    items = pd.DataFrame({"item": np.arange(n_items), "tier": np.where(np.arange(n_items) < n_items // 10,
                                                                       "premium", "other")})
    tu, ti = np.nonzero(truth_mat)
    truth = pd.DataFrame({"user": tu, "item": ti})
    a, b = (group == 1).astype(int), (group == 0).astype(int)

    def hai() -> dict:
        return {
            "l1": exposure_l1(a, b, scores, top=k),
            "kl": exposure_kl(a, b, scores, top=k),
            "gini": gini_index(scores, top=k),
            "aggdiv": aggregate_diversity(scores, top=k),
            "recall": avg_recall_ratio(a, b, scores, truth_mat, top=k),
        }

    t = time.perf_counter()
    h = hai()
    t_hai = time.perf_counter() - t
    # fairscan on the same lists; item groups = the items themselves, so its exposure TV is
    # Holistic AI's item-frequency exposure_l1
    items_self = pd.DataFrame({"item": np.arange(n_items), "self": np.arange(n_items).astype(str)})
    t = time.perf_counter()
    res = audit_recs(recs, users, items, user_group="g", item_group="tier", k=k, truth=truth, reference="b",
                     discount="none", n_boot=1000)
    t_fs = time.perf_counter() - t
    res_self = audit_recs(recs, users, items_self, user_group="g", item_group="self", k=k, reference="b",
                          discount="none", n_boot=0)
    tv = res_self.gaps.query("metric == 'exposure_tv'")["difference"].iloc[0]
    rec = res.gaps.query(f"metric == 'recall@{k}'")["ratio"].iloc[0]
    print(f"[2] {n_users:,} users x {n_items:,} items (dense matrix {n_users * n_items / 1e6:.0f}M cells), top {k}:")
    print(f"    Holistic AI (5 dense metrics): {t_hai:.2f} s; fairscan audit_recs (all tables, 1,000 replicates, "
          f"tests): {t_fs:.2f} s -> ratio {t_hai / t_fs:.1f}x")
    print(f"    agreement: exposure TV {tv:.6f} vs exposure_l1 {h['l1']:.6f}; gini "
          f"{res.meta['item_summary']['gini']:.6f} vs {h['gini']:.6f}; aggregate diversity "
          f"{res.meta['item_summary']['aggregate_diversity']:.6f} vs {h['aggdiv']:.6f}; recall ratio (a/b) "
          f"{rec:.6f} vs {h['recall']:.6f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--parquet", action="store_true", help="write the lists to bench/_data and audit the file")
    ap.add_argument("--skip-holisticai", action="store_true")
    ap.add_argument("--hai-users", type=int, default=20_000)
    ap.add_argument("--hai-items", type=int, default=2_000)
    args = ap.parse_args()
    bench_big(args.users, args.k, args.parquet)
    if not args.skip_holisticai:
        bench_holisticai(args.hai_users, args.hai_items, args.k)


if __name__ == "__main__":
    main()
