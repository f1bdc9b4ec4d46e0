"""Subgroup discovery (``fairscan.discover``) against DivExplorer 0.2.6, a pandas floor and DuckDB.

Not a test: run it by hand on an idle machine (every ratio is taken within the same run)::

    python bench/bench_discover.py [--repeat 3] [--rows-synthetic 1000000] [--null-rows 100000]
        [--null-datasets 100] [--rows-duckdb 100000000] [--memory-limit 512MB]
        [--skip-bank] [--skip-synthetic] [--skip-divexplorer] [--skip-null] [--skip-duckdb]
        [--bank-every-depth]

DivExplorer (``pip install divexplorer==0.2.6``; it brings mlxtend, plotly, python-igraph)
is given the very groups fairscan searched: each row's group label per attribute from
``fairscan.groups.assign_groups`` (categories as text, missing as "unknown", numbers in the
same right-closed quantile tiers) and the 0/1 decision. Its ``min_support`` is the largest
float whose FP-growth count threshold ``ceil(min_support * n)`` is the row count wanted (30
rows = fairscan's ``min_size``). Its ``get_pattern_divergence`` has no depth limit; for the
depth-3 searches the FP-growth it calls (``fpgrowth_cm``) gets its own ``max_len=3``.

1. **Bank** (UCI Bank Marketing, 45,211 rows; every column but ``duration`` and the label;
   decision: the bundled reference model's top 20% by score, ties to earlier rows; selection
   rate; depth 3; 30 rows): fairscan's time (median of ``--repeat`` after a warm-up, in
   process), the subgroups tested, the top 10 listed. DivExplorer on the same groups, timed
   the same way; every itemset both report is compared (offer rate to 1e-9, support count
   exactly), and DivExplorer's 10 most negative divergences are printed with fairscan's
   verdict for each. ``--bank-every-depth`` adds DivExplorer's default search (no depth
   limit) once, in a fresh process, with its peak RSS (3-5 minutes and 13 GiB).
2. **1M synthetic rows** (``planted_subgroups(1_000_000, seed=0)``: a1..a8 and spend in 4
   quartile tiers; ``prediction="offer"``; depth 3): fairscan's time (target < 1.5 s), the
   planted subgroup listed first (asserted); DivExplorer with ``min_support=0.01`` at every
   depth (the issue's setting; target: fairscan >= 20x faster), with 30 rows at every depth,
   and with 30 rows at depth 3 (the same search as fairscan's; values compared as in 1).
   The floor: a pandas ``groupby(observed=True)`` size and mean of ``offer`` over each of the
   129 combinations of 1, 2 and 3 of the 9 attributes.
3. **False discoveries on null data**: ``planted_subgroups(n, seed=1000 + i, planted=False)``
   for i < 100, n = 100,000, depth 3: the datasets where any subgroup fails (target: at most
   5 of 100).
4. **DuckDB, out of core**: 100M seeded rows (6 text attributes with 2-6 levels, a 0/1
   ``offer`` at 30%, 5% in ``a1 = L0, a2 = L1``) in 5M-row Parquet files under
   ``bench/_data/discover/`` (generated once, reused), then ``discover("...*.parquet",
   engine="duckdb", memory_limit="512MB", prediction="offer", max_depth=2)`` in a fresh
   subprocess: wall time and peak RSS (the child's own ``VmHWM``; target < 1 GiB). The floor:
   a bare DuckDB ``GROUP BY`` of the same counts (rows and offers per combination of the 6
   attributes) in a subprocess too; then the same discovery on a ``DuckDBEngine`` built with
   ``data_hash="fast"``, to show what the default sha256 data hash costs.

Generated data is seeded and never committed (``bench/_data/`` is git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _child import run_json
from _chunks import CHUNK, write_chunks

HERE = Path(__file__).resolve().parent
MIN_SIZE = 30
SYNTH_ATTRIBUTES = [f"a{i}" for i in range(1, 9)] + ["spend"]
# the out-of-core data: six text attributes, one planted two-way subgroup
DUCK_LEVELS = (2, 3, 4, 5, 6, 3)
DUCK_ATTRIBUTES = [f"a{i + 1}" for i in range(len(DUCK_LEVELS))]
DUCK_PLANTED = (("a1", "L0"), ("a2", "L1"))


# -- helpers -----------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], repeat: int, warmup: bool = True) -> tuple[float, list[float], Any]:
    """Median wall time of ``repeat`` calls (after one untimed call if ``warmup``), all times
    and the last result."""
    if warmup:
        fn()
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, out


def fmt_times(times: list[float]) -> str:
    return "/".join(f"{t:.2f}" for t in times)


def min_support(rows: int, n: int) -> float:
    """The largest support fraction whose FP-growth threshold ``ceil(s * n)`` is ``rows``
    (so every itemset with at least ``rows`` rows is kept, and nothing smaller)."""
    s = rows / n
    while math.ceil(s * n) > rows:
        s = float(np.nextafter(s, 0))
    assert math.ceil(s * n) == rows and (rows - 1) / n < s <= rows / n
    return s


@contextlib.contextmanager
def divexplorer_max_len(max_len: int | None) -> Iterator[None]:
    """DivExplorer's ``get_pattern_divergence`` has no depth limit; its FP-growth does."""
    import divexplorer.divexplorer as dvx

    original = dvx.fpgrowth_cm
    if max_len is not None:
        dvx.fpgrowth_cm = functools.partial(original, max_len=max_len)
    try:
        yield
    finally:
        dvx.fpgrowth_cm = original


def run_divexplorer(frame: pd.DataFrame, rows: int | None = None, support: float | None = None,
                    max_len: int | None = None) -> pd.DataFrame:
    from divexplorer import DivergenceExplorer

    s = support if support is not None else min_support(rows, len(frame))  # type: ignore[arg-type]
    with divexplorer_max_len(max_len):
        return DivergenceExplorer(frame).get_pattern_divergence(min_support=s, boolean_outcomes=["offer"])


def group_frame(data: pd.DataFrame, attributes: list[dict[str, Any]], decision: np.ndarray) -> pd.DataFrame:
    """Each row's group label per attribute, resolved as discovery resolves them, as text,
    and the 0/1 decision: the input DivExplorer and the pandas floor get."""
    from fairscan.groups import assign_groups

    cats = [a["attribute"] for a in attributes if a["kind"] != "tiers"]
    tiers = {a["attribute"]: len(a["groups"]) for a in attributes if a["kind"] == "tiers"}
    g = assign_groups(data, sensitive=cats, tiers=tiers)
    out = {}
    for a in attributes:
        col = g[a["attribute"]]
        if list(col.cat.categories) != list(a["groups"]):  # the same groups, or the comparison is void
            raise SystemExit(f"assign_groups gave {list(col.cat.categories)} for {a['attribute']}, "
                             f"discover searched {a['groups']}")
        out[a["attribute"]] = col.astype(str).to_numpy()
    frame = pd.DataFrame(out)
    frame["offer"] = np.asarray(decision, dtype=np.int64)
    return frame


def compare(subgroups: pd.DataFrame, divergence: pd.DataFrame) -> dict[str, Any]:
    """Every itemset both list: fairscan's value and count vs DivExplorer's mean and support
    count. fairscan does not publish suppressed subgroups (their value is hidden)."""
    keys = [frozenset(f"{a}={g}" for a, g in c) for c in subgroups["conditions"]]
    ours = pd.DataFrame({"key": keys, "count": subgroups["count"].astype("float64").to_numpy(),
                         "value": subgroups["value"].to_numpy(), "suppressed": subgroups["suppressed"].to_numpy()})
    theirs = divergence[divergence["length"] > 0][["itemset", "offer", "support_count"]]
    m = ours.merge(theirs, left_on="key", right_on="itemset", how="outer", indicator=True)
    both = m[(m["_merge"] == "both") & ~m["suppressed"].astype(bool)]
    dv = (both["value"] - both["offer"]).abs()
    dc = (both["count"] - both["support_count"]).abs()
    bad = both[(dv > 1e-9) | (dc > 0) | dv.isna()]
    return {"compared": len(both), "max_value_diff": float(dv.max()) if len(both) else math.nan,
            "max_count_diff": float(dc.max()) if len(both) else math.nan,
            "suppressed_both": int(((m["_merge"] == "both") & m["suppressed"].astype(bool)).sum()),
            "only_fairscan": int((m["_merge"] == "left_only").sum()),
            "only_divexplorer": int((m["_merge"] == "right_only").sum()),
            "disagree": [(sorted(r.key), r.count, r.support_count, r.value, r.offer) for r in bad.head(5).itertuples()]}


def print_compare(c: dict[str, Any]) -> None:
    ok = c["max_value_diff"] <= 1e-9 and c["max_count_diff"] == 0 and not c["disagree"]
    print(f"    compared {c['compared']:,} itemsets both list: max |value - DivExplorer mean| "
          f"{c['max_value_diff']:.1e}, max |count - support count| {c['max_count_diff']:.0f}  "
          + ("OK" if ok else "DISAGREE"))
    print(f"    (also in both, suppressed by fairscan so not compared: {c['suppressed_both']:,}; only fairscan: "
          f"{c['only_fairscan']:,}; only DivExplorer: {c['only_divexplorer']:,})")
    for d in c["disagree"]:
        print(f"    DISAGREE {d}")


def print_listed(r: Any, n: int = 10) -> None:
    s = r.listed
    top = s[s["parent"].isna()].head(n)
    for i, row in enumerate(top.itertuples(), 1):
        cnt = "suppressed" if row.suppressed else f"{int(row.count):,}"
        print(f"    {i:2d}. {row.who.removeprefix('customers with ')}: {cnt} rows, offered "
              f"{row.value:.1%} vs {row.comparison_value:.1%}, {row.verdict}"
              + (f" ({row.folded} folded under it)" if row.folded else ""))


def print_divergence_top(div: pd.DataFrame, r: Any, n: int = 10) -> None:
    s = r.subgroups
    by_key = {frozenset(f"{a}={g}" for a, g in c): (f"{v} ({sup} suppression)" if isinstance(sup, str) else v, p)
              for c, v, p, sup in zip(s["conditions"], s["verdict"], s["parent"], s["suppression"], strict=True)}
    top = div[div["length"] > 0].sort_values(["offer_div", "support_count"], ascending=[True, False]).head(n)
    for i, row in enumerate(top.itertuples(), 1):
        verdict, parent = by_key.get(row.itemset, ("not tested", None))
        ours = verdict + ("" if parent is None or pd.isna(parent) else f", folded under #{int(parent)}")
        print(f"    {i:2d}. {', '.join(sorted(row.itemset))}: {int(row.support_count):,} rows, offered "
              f"{row.offer:.1%} (divergence {row.offer_div:+.3f}, t {row.offer_t:.1f}); fairscan: {ours}")


# -- 1. bank -----------------------------------------------------------------------------------
def bank_scored() -> tuple[pd.DataFrame, Callable[[], Any]]:
    """Bank scored by the reference model, and the discovery of its top 20%."""
    import fairscan.datasets as ds
    from fairscan.discover import discover
    from fairscan.modeling import score_frame

    scored, col, _ = score_frame(ds.load("bank"), "reference:bank")
    scored = scored.rename(columns={col: "score"})

    def ours() -> Any:
        return discover(scored, target="y", score="score", budget=0.2, exclude=["duration"], max_depth=3,
                        min_size=MIN_SIZE)

    return scored, ours


def bank_frame(scored: pd.DataFrame, r: Any) -> pd.DataFrame:
    """DivExplorer's input: the groups discovery searched and the decision, found independently
    (top 20% by score, ties to earlier rows)."""
    k = int(0.2 * len(scored))
    assert r.meta["decision"]["budget"] == k, r.meta["decision"]
    order = np.argsort(-scored["score"].to_numpy(), kind="stable")
    decision = np.zeros(len(scored), dtype=np.int64)
    decision[order[:k]] = 1
    frame = group_frame(scored, r.meta["attributes"], decision)
    assert abs(frame["offer"].mean() - r.meta["overall"]["value"]) < 1e-15
    return frame


def child_bank_every_depth() -> dict[str, Any]:
    """In a fresh interpreter: DivExplorer on bank with >= 30 rows and no depth limit."""
    from divexplorer import DivergenceExplorer

    scored, ours = bank_scored()
    frame = bank_frame(scored, ours())
    t = time.perf_counter()
    div = DivergenceExplorer(frame).get_pattern_divergence(min_support=min_support(MIN_SIZE, len(frame)),
                                                           boolean_outcomes=["offer"])
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "itemsets": len(div) - 1, "max_length": int(div["length"].max()),
            "peak_rss_mib": peak_rss_mib()}


def bench_bank(repeat: int, divexplorer: bool, every_depth: bool) -> None:
    scored, ours = bank_scored()
    k = int(0.2 * len(scored))

    t_ours, times, r = timed(ours, repeat)
    m = r.meta
    assert m["decision"]["budget"] == k, m["decision"]
    print(f"[1] bank, {len(scored):,} rows, {len(m['attributes'])} attributes "
          f"({', '.join(a['attribute'] for a in m['attributes'])}), reference model's top {k:,} (20%), "
          "selection rate, depth 3, >= 30 rows")
    print(f"    fairscan.discover: {t_ours:.2f} s (median of {repeat}: {fmt_times(times)} s, after a warm-up); "
          f"{m['tested']:,} subgroups tested ({m['subgroups_counted']:,} counted, {m['suppressed']:,} suppressed, "
          f"{m['folded']:,} folded); verdicts {m['verdict_counts']}")
    print("    fairscan's top 10 (standing on their own; the folded are listed under them):")
    print_listed(r)
    if not divexplorer:
        return
    frame = bank_frame(scored, r)
    t_dx, times, div = timed(lambda: run_divexplorer(frame, MIN_SIZE, max_len=3), repeat)
    print(f"    DivExplorer 0.2.6, same groups, >= 30 rows (min_support {min_support(MIN_SIZE, len(frame)):.10g}), "
          f"depth <= 3: {t_dx:.2f} s (median of {repeat}: {fmt_times(times)} s, after a warm-up); "
          f"{len(div) - 1:,} itemsets; fairscan is **{t_dx / t_ours:.1f}x faster**")
    print_compare(compare(r.subgroups, div))
    print("    DivExplorer's 10 most negative divergences (offer rate - overall), with fairscan's verdict:")
    print_divergence_top(div, r)
    if every_depth:
        e = run_child("bank-every-depth", "", "")
        print(f"    DivExplorer, >= 30 rows, every depth (its default; one run in a fresh process): {e['seconds']:.0f} s, "
              f"{e['itemsets']:,} itemsets up to length {e['max_length']}, peak RSS {e['peak_rss_mib']:,.0f} MiB; "
              f"{e['seconds'] / t_ours:.0f}x fairscan's depth-3 time")


# -- 2. 1M synthetic rows ------------------------------------------------------------------------
def bench_synthetic(n: int, repeat: int, divexplorer: bool) -> None:
    from fairscan.datasets.synthetic import PLANTED, planted_subgroups
    from fairscan.discover import discover

    df = planted_subgroups(n, seed=0)

    def ours() -> Any:
        return discover(df, prediction="offer", attributes=SYNTH_ATTRIBUTES, max_depth=3, min_size=MIN_SIZE)

    t_ours, times, r = timed(ours, repeat)
    first = r.listed.iloc[0]
    planted_first = set(first["conditions"]) == set(PLANTED)
    print(f"[2] planted_subgroups({n:,}, seed=0): a1..a8 + spend (4 tiers), prediction 'offer', depth 3, >= 30 rows")
    print(f"    fairscan.discover: {t_ours:.3f} s (median of {repeat}: {fmt_times(times)} s, after a warm-up)"
          + ("  OK < 1.5 s" if t_ours < 1.5 else "  OVER 1.5 s")
          + f"; {r.meta['tested']:,} tested; verdicts {r.meta['verdict_counts']}")
    print(f"    first listed: {first['who']} ({int(first['count']):,} rows, {first['value']:.1%}, {first['verdict']}); "
          f"the planted subgroup: {planted_first}")
    assert planted_first, first["conditions"]

    frame = group_frame(df, r.meta["attributes"], df["offer"].to_numpy())
    combos = [list(c) for d in (1, 2, 3) for c in itertools.combinations(SYNTH_ATTRIBUTES, d)]
    cat = frame.astype({a: "category" for a in SYNTH_ATTRIBUTES})

    def floor() -> list[pd.DataFrame]:
        return [cat.groupby(c, observed=True, sort=False)["offer"].agg(["size", "mean"]) for c in combos]

    t_floor, times, tables = timed(floor, repeat)
    big = sum(int((t["size"] >= MIN_SIZE).sum()) for t in tables)
    print(f"    pandas floor, groupby size + mean over the {len(combos)} combinations of 1-3 attributes: "
          f"{t_floor:.2f} s (median of {repeat}: {fmt_times(times)} s); discover = {t_ours / t_floor:.2f}x the floor "
          f"(floor / discover {t_floor / t_ours:.1f}); subgroups with >= 30 rows: floor {big:,}, "
          f"fairscan {len(r.subgroups):,}")
    if not divexplorer:
        return
    runs = [("min_support=0.01, every depth (the issue's setting)", dict(support=0.01)),
            (f"min_support {min_support(MIN_SIZE, n):.10g} (>= 30 rows), every depth", dict(rows=MIN_SIZE)),
            (f"min_support {min_support(MIN_SIZE, n):.10g} (>= 30 rows), depth <= 3 (fairscan's search)",
             dict(rows=MIN_SIZE, max_len=3))]
    for what, kw in runs:
        t_dx, times, div = timed(lambda kw=kw: run_divexplorer(frame, **kw), repeat, warmup=False)
        depths = div["length"].value_counts().sort_index()
        print(f"    DivExplorer, {what}: {t_dx:.1f} s (median of {repeat}: {fmt_times(times)} s); {len(div) - 1:,} "
              f"itemsets (by length {', '.join(f'{k}: {v:,}' for k, v in depths.items() if k)}); fairscan is "
              f"**{t_dx / t_ours:.1f}x faster**" + ("  OK >= 20x" if t_dx / t_ours >= 20 else "  UNDER 20x"))
        if kw.get("max_len") == 3:
            print_compare(compare(r.subgroups, div))
        ranked = div[div["length"] > 0].sort_values("offer_div").reset_index(drop=True)
        top = ranked.iloc[0]
        rank = int(np.flatnonzero(ranked["itemset"] == frozenset(f"{a}={g}" for a, g in PLANTED))[0]) + 1
        print(f"      most negative divergence: {', '.join(sorted(top['itemset']))} ({int(top['support_count']):,} "
              f"rows, {top['offer']:.1%}); the planted itemset is #{rank} by divergence")
        del div


# -- 3. null data --------------------------------------------------------------------------------
def bench_null(n: int, datasets: int) -> None:
    from fairscan.datasets.synthetic import planted_subgroups
    from fairscan.discover import discover

    t = time.perf_counter()
    failed, fails, tested = [], 0, 0
    for i in range(datasets):
        df = planted_subgroups(n, seed=1000 + i, planted=False)
        r = discover(df, prediction="offer", attributes=SYNTH_ATTRIBUTES, max_depth=3, min_size=MIN_SIZE)
        f = r.meta["verdict_counts"]["fail"]
        fails += f
        tested += r.meta["tested"]
        if f:
            failed.append(1000 + i)
    print(f"[3] null data: {datasets} x planted_subgroups({n:,}, seed=1000+i, planted=False), depth 3: "
          f"{len(failed)} of {datasets} datasets with any failing subgroup"
          + ("  OK <= 5%" if len(failed) <= 0.05 * datasets else "  OVER 5%")
          + f" ({fails} failing subgroups of {tested:,} tested in all; seeds {failed or 'none'}); "
          f"{time.perf_counter() - t:.0f} s")


# -- 4. DuckDB, out of core ------------------------------------------------------------------------
def generate(out: Path, rows: int, seed: int = 0) -> list[Path]:
    """``rows`` rows in 5M-row Parquet files, seeded per file (reused when present)."""
    import pyarrow as pa

    def table(rng: np.random.Generator, n: int) -> pa.Table:
        cols, inside = {}, np.ones(n, dtype=bool)
        for name, k in zip(DUCK_ATTRIBUTES, DUCK_LEVELS, strict=True):
            codes = rng.integers(0, k, n).astype(np.int8)
            cols[name] = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array([f"L{j}" for j in range(k)]))
            for a, g in DUCK_PLANTED:
                if a == name:
                    inside &= codes == int(g[1:])
        cols["offer"] = pa.array((rng.random(n) < np.where(inside, 0.05, 0.3)).astype(np.int8))
        return pa.table(cols)

    return write_chunks(out, rows, table, seed, CHUNK)


def peak_rss_mib() -> float:
    """This process's peak RSS since it started (VmHWM). Not ``ru_maxrss``: on Linux a child
    starts with its parent's peak there (inherited through fork and kept across exec)."""
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def child_discover(source: str, memory_limit: str, fast_hash: bool = False) -> dict[str, Any]:
    """In a fresh interpreter: the discovery through DuckDB, its time and peak RSS. With
    ``fast_hash`` the engine is built by hand with ``data_hash="fast"`` (the data hash summed
    inside the GROUP BY instead of the sha256 streaming pass)."""
    from fairscan.discover import discover
    from fairscan.engines.duckdb import DuckDBEngine

    t = time.perf_counter()
    if fast_hash:
        r = discover(DuckDBEngine(source, memory_limit=memory_limit, data_hash="fast"), prediction="offer",
                     max_depth=2, attributes=DUCK_ATTRIBUTES, min_size=MIN_SIZE)
    else:
        r = discover(source, engine="duckdb", memory_limit=memory_limit, prediction="offer", max_depth=2,
                     attributes=DUCK_ATTRIBUTES, min_size=MIN_SIZE)
    seconds = time.perf_counter() - t
    first = r.listed.iloc[0]
    return {"seconds": seconds, "peak_rss_mib": peak_rss_mib(),
            "n_rows": r.meta["n_rows"], "tested": r.meta["tested"], "verdicts": r.meta["verdict_counts"],
            "first": first["conditions"], "first_count": int(first["count"]), "first_value": float(first["value"])}


def child_floor(source: str, memory_limit: str) -> dict[str, Any]:
    """The bare DuckDB GROUP BY of the same counts: rows and offers per combination of the six
    attributes (every pair's counts are sums of these)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    cols = ", ".join(DUCK_ATTRIBUTES)
    t = time.perf_counter()
    rows = con.execute(f"SELECT {cols}, count(*) AS n, sum(offer) AS s FROM read_parquet('{source}') "
                       "GROUP BY ALL").fetchall()
    seconds = time.perf_counter() - t
    (i1, g1), (i2, g2) = ((DUCK_ATTRIBUTES.index(a), g) for a, g in DUCK_PLANTED)
    n = sum(r[-2] for r in rows if r[i1] == g1 and r[i2] == g2)
    s = sum(r[-1] for r in rows if r[i1] == g1 and r[i2] == g2)
    return {"seconds": seconds, "cells": len(rows), "planted_count": int(n), "planted_value": s / n,
            "peak_rss_mib": peak_rss_mib()}


def run_child(kind: str, source: str, memory_limit: str) -> dict[str, Any]:
    return run_json([sys.executable, __file__, "--child", kind, "--source", source, "--memory-limit", memory_limit],
                    kind)


def bench_duckdb(rows: int, memory_limit: str, data: Path) -> None:
    out = data / "discover" / f"duckdb-{rows}"
    t = time.perf_counter()
    files = generate(out, rows)
    size = sum(f.stat().st_size for f in files)
    print(f"[4] data: {rows:,} rows in {len(files)} Parquet files, {size / 2**20:,.0f} MiB ({out}); ready in "
          f"{time.perf_counter() - t:.1f} s")
    source = str(out / "*.parquet")
    r = run_child("discover", source, memory_limit)
    print(f"    discover(glob, engine='duckdb', memory_limit='{memory_limit}', prediction='offer', max_depth=2, "
          f"6 attributes): {r['seconds']:.1f} s ({r['process_wall_seconds']:.1f} s for the whole process with "
          f"start-up); peak RSS {r['peak_rss_mib']:,.0f} MiB (the process's VmHWM, interpreter and imports included)"
          + ("  OK < 1 GiB" if r["peak_rss_mib"] < 1024 else "  OVER 1 GiB"))
    planted_first = {tuple(c) for c in r["first"]} == set(DUCK_PLANTED)
    print(f"    {r['n_rows']:,} rows, {r['tested']} subgroups tested, verdicts {r['verdicts']}; first listed "
          f"{r['first']} ({r['first_count']:,} rows, {r['first_value']:.4%}); the planted subgroup: {planted_first}")
    f = run_child("floor", source, memory_limit)
    same = f["planted_count"] == r["first_count"] and abs(f["planted_value"] - r["first_value"]) < 1e-12
    print(f"    floor, bare DuckDB GROUP BY of the 6 attributes (count, sum of offer): {f['seconds']:.1f} s, "
          f"{f['cells']:,} cells, peak RSS {f['peak_rss_mib']:,.0f} MiB; discover = {r['seconds'] / f['seconds']:.1f}x "
          f"the floor; planted subgroup's count and rate equal to the floor's: {same}")
    q = run_child("discover-fast", source, memory_limit)
    print(f"    the same discover on DuckDBEngine(glob, memory_limit='{memory_limit}', data_hash='fast') (no sha256 "
          f"pass): {q['seconds']:.1f} s = {q['seconds'] / f['seconds']:.1f}x the floor, peak RSS "
          f"{q['peak_rss_mib']:,.0f} MiB; same first subgroup: {q['first'] == r['first'] and q['first_count'] == r['first_count']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (median reported)")
    ap.add_argument("--rows-synthetic", type=int, default=1_000_000)
    ap.add_argument("--null-rows", type=int, default=100_000)
    ap.add_argument("--null-datasets", type=int, default=100)
    ap.add_argument("--rows-duckdb", type=int, default=100_000_000)
    ap.add_argument("--memory-limit", default="512MB", help="DuckDB memory_limit for [4]")
    ap.add_argument("--data", type=Path, default=HERE / "_data")
    ap.add_argument("--skip-bank", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--skip-divexplorer", action="store_true")
    ap.add_argument("--skip-null", action="store_true")
    ap.add_argument("--skip-duckdb", action="store_true")
    ap.add_argument("--bank-every-depth", action="store_true",
                    help="also DivExplorer on bank with no depth limit (3-5 minutes and 13 GiB)")
    ap.add_argument("--child", choices=["discover", "discover-fast", "floor", "bank-every-depth"], help=argparse.SUPPRESS)
    ap.add_argument("--source", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child == "bank-every-depth":
        print(json.dumps(child_bank_every_depth()))
        return 0
    if a.child:
        res = (child_floor(a.source, a.memory_limit) if a.child == "floor" else
               child_discover(a.source, a.memory_limit, fast_hash=a.child == "discover-fast"))
        print(json.dumps(res))
        return 0

    divexplorer = not a.skip_divexplorer
    if divexplorer:
        try:
            import divexplorer as _  # noqa: F401
        except ImportError:
            print("DivExplorer is not installed (pip install divexplorer==0.2.6): skipping its comparisons")
            divexplorer = False
    start = time.perf_counter()
    if not a.skip_bank:
        bench_bank(a.repeat, divexplorer, a.bank_every_depth)
    if not a.skip_synthetic:
        bench_synthetic(a.rows_synthetic, a.repeat, divexplorer)
    if not a.skip_null:
        bench_null(a.null_rows, a.null_datasets)
    if not a.skip_duckdb:
        bench_duckdb(a.rows_duckdb, a.memory_limit, a.data)
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
