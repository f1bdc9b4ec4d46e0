"""The three engines agree: memory (numpy), DuckDB (files) and Spark give the same audit.

Each case audits a bundled real dataset (written to Parquet in tmp) through
``fairscan.audit(engine_instance, ...)`` and compares ``.groups`` and ``.disparities``:
counts exactly, rates to 1e-12. Bad input gives the same one-line errors. Spark tests are
marked ``spark`` and skipped when pyspark or Java is missing; they share one small
module-scoped session (local[2], no UI, 4 shuffle partitions).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fairscan
from fairscan import datasets
from fairscan.audit import decide
from fairscan.errors import FairscanError

duckdb = pytest.importorskip("duckdb")

from fairscan.engines import base  # noqa: E402
from fairscan.engines import duckdb as dd  # noqa: E402
from fairscan.engines.datahash import DEFINITION  # noqa: E402
from fairscan.engines.duckdb import DuckDBEngine  # noqa: E402
from fairscan.engines.memory import MemoryEngine  # noqa: E402


# -- data ------------------------------------------------------------------------------------------
def _bank() -> pd.DataFrame:
    df = datasets.load("bank")
    # a score with heavy ties (two decimals), and integer weights
    df["score"] = np.round(1 / (1 + np.exp(-(df["duration"] - 300) / 200)), 2)
    df["w"] = df["campaign"].astype(float)
    return df


def _adult() -> pd.DataFrame:
    df = datasets.load("adult")  # workclass, occupation, native_country have missing values
    df["score"] = np.round((df["education_num"] * 3 + df["hours_per_week"] / 10) / 60, 3)
    df["pred"] = np.where(df["score"] > 0.4, "yes", "no")
    return df


def _coupon() -> pd.DataFrame:
    df = datasets.load("coupon")  # Bar has missing values
    df["score"] = df["temperature"] / 100 + df["direction_same"] * 0.05
    return df


def _german() -> pd.DataFrame:
    df = datasets.load("german")
    df["score"] = df["credit_amount"] / df["credit_amount"].max()
    return df


def _retail() -> pd.DataFrame:
    return datasets.load("online-retail")  # CustomerID: nullable integers with missing values


BUILDERS = {"bank": _bank, "adult": _adult, "coupon": _coupon, "german": _german, "retail": _retail}

CASES = {
    "bank-threshold-quantile-tiers-intersection": ("bank", dict(
        target="y", score="score", threshold=0.5, sensitive=["job", "marital"], tiers={"age": 4},
        intersect=True)),
    "bank-budget-ties-cutpoints-favourable0": ("bank", dict(
        target="y", score="score", budget=0.1, sensitive=["education"], tiers={"balance": [0, 1000, 5000]},
        favourable_decision=0)),
    "bank-budget-count-weights": ("bank", dict(
        target="y", score="score", budget=777, sensitive=["job"], weights="w")),
    "adult-prediction-weights-missing-intersection": ("adult", dict(
        target="income", positive_label=">50K", prediction="pred", sensitive=["sex", "race", "workclass"],
        weights="fnlwgt", intersect=[["sex", "race"]])),
    "coupon-three-way-intersection-missing": ("coupon", dict(
        target="Y", score="score", threshold=0.5, sensitive=["gender", "age", "Bar"], intersect=True)),
    "german-budget-quantiles-weights": ("german", dict(
        target="credit", positive_label=1, score="score", budget=100, sensitive=["personal_status_and_sex"],
        tiers={"age_in_years": 5}, weights="duration_in_month", favourable_decision=0)),
    "retail-no-label-budget-ties-nullable-tiers": ("retail", dict(
        score="UnitPrice", budget=0.05, sensitive=["Country"], tiers={"CustomerID": 3})),
}
COMMON = dict(n_boot=0)


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("engines")


def _frame(frames: dict, name: str) -> pd.DataFrame:
    if name not in frames:
        frames[name] = BUILDERS[name]()
    return frames[name]


def _parquet(frames: dict, files: Path, name: str) -> Path:
    path = files / f"{name}.parquet"
    if not path.exists():
        _frame(frames, name).to_parquet(path)
    return path


_REFERENCE: dict[str, fairscan.AuditResult] = {}


def _reference(frames: dict, case: str) -> fairscan.AuditResult:
    """The in-memory audit of a case (computed once per session)."""
    if case not in _REFERENCE:
        name, kw = CASES[case]
        _REFERENCE[case] = fairscan.audit(_frame(frames, name), **kw, **COMMON)
    return _REFERENCE[case]


def assert_same(expected: fairscan.AuditResult, got: fairscan.AuditResult) -> None:
    """Counts exactly equal, every other number equal to 1e-12; same rows, same order."""
    assert got.meta["n_rows"] == expected.meta["n_rows"]
    for table in ("groups", "disparities"):
        a, b = getattr(expected, table), getattr(got, table)
        assert list(a.columns) == list(b.columns)
        assert a[["attribute", "group"]].equals(b[["attribute", "group"]])
        if "count" in a:
            assert a["count"].fillna(-1).tolist() == b["count"].fillna(-1).tolist()
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-12)


# -- DuckDB against memory ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_duckdb_equals_memory(case, frames, files):
    name, kw = CASES[case]
    got = fairscan.audit(DuckDBEngine(_parquet(frames, files, name)), **kw, **COMMON)
    expected = _reference(frames, case)
    assert_same(expected, got)
    assert got.meta["engine"] == "duckdb"
    # the streamed sha256 is the memory engine's hash of the same data
    assert got.meta["data_sha256"] == expected.meta["data_sha256"]


def test_one_data_hash_from_every_input_and_any_chunk_size(frames, files, tmp_path, monkeypatch):
    """The same rows in the same order give the same data hash from a pandas, polars or Arrow
    frame, a Parquet or CSV file, several files, in memory or DuckDB, with any chunk size; one
    changed value, or the same rows in another order, give another. (Spark: see the Spark test.)"""
    import polars as pl
    import pyarrow as pa

    from fairscan.engines import memory

    name, kw = CASES["bank-budget-count-weights"]
    df = _frame(frames, name)
    df.to_csv(tmp_path / "one.csv", index=False)
    (tmp_path / "parts").mkdir()
    for i, (a, b) in enumerate(((0, 10_000), (10_000, 30_000), (30_000, len(df)))):
        df.iloc[a:b].to_parquet(tmp_path / "parts" / f"part-{i}.parquet")
    want = _reference(frames, "bank-budget-count-weights").meta
    assert want["data_hash"] == DEFINITION
    inputs = {"polars": pl.from_pandas(df), "arrow": pa.Table.from_pandas(df, preserve_index=False),
              "parquet": _parquet(frames, files, name), "csv": tmp_path / "one.csv", "parts": tmp_path / "parts"}
    engines = {"polars": ("memory",), "arrow": ("memory",), "parts": ("duckdb",)}
    for label, data in inputs.items():
        for engine in engines.get(label, ("memory", "duckdb")):
            got = fairscan.audit(data, engine=engine, **kw, **COMMON).meta["data_sha256"]
            assert got == want["data_sha256"], (label, engine)
    monkeypatch.setattr(memory, "CHUNK_ROWS", 4_099)
    assert fairscan.audit(df, **kw, **COMMON).meta["data_sha256"] == want["data_sha256"]
    changed = df.copy()
    changed.loc[123, "score"] += 1e-9
    assert fairscan.audit(changed, **kw, **COMMON).meta["data_sha256"] != want["data_sha256"]
    shuffled = df.sample(frac=1, random_state=0).reset_index(drop=True)
    assert fairscan.audit(shuffled, **kw, **COMMON).meta["data_sha256"] != want["data_sha256"]


def test_budget_cut_has_partial_ties(frames, files):
    """The budget cases really cut through tied scores (so row order decides)."""
    for name, column, k in (("bank", "score", int(0.1 * 45211)), ("retail", "UnitPrice", int(0.05 * 541909))):
        eng = DuckDBEngine(_parquet(frames, files, name))
        cut, take, ties = eng.budget_cut(column, k)
        s = _frame(frames, name)[column].to_numpy()
        assert cut == np.sort(s)[len(s) - k] and ties == int((s == cut).sum()) and 0 < take < ties
        assert take == k - int((s > cut).sum())


def test_grouping_sets_and_refinement_paths(frames, files, monkeypatch):
    """GROUPING SETS (large joint key space) and multi-pass order statistics give the same."""
    monkeypatch.setattr(base, "MAX_JOINT_GROUPS", 1)
    monkeypatch.setattr(dd, "FETCH_LIMIT", 500)
    for case in ("adult-prediction-weights-missing-intersection", "german-budget-quantiles-weights",
                 "retail-no-label-budget-ties-nullable-tiers"):
        name, kw = CASES[case]
        assert_same(_reference(frames, case), fairscan.audit(DuckDBEngine(_parquet(frames, files, name)), **kw,
                                                             **COMMON))


def test_quantiles_equal_numpy_bit_for_bit(monkeypatch):
    rng = np.random.default_rng(7)
    probs = np.array([0.0, 0.1, 1 / 3, 0.25, 0.5, 2 / 3, 0.75, 0.9, 0.999, 1.0])
    samples = {
        "normal": rng.normal(size=20_001),
        "ties": rng.integers(0, 7, 5000).astype(float),
        "lognormal": rng.lognormal(0, 6, 9999),
        "tiny": np.array([3.0]),
        "infinite": np.concatenate([rng.random(500), [np.inf, -np.inf, np.inf]]),
        "huge range": np.array([-1e308, 1e308, 0.0, 1.0, -5.0] * 40),
    }
    for fetch in (dd.FETCH_LIMIT, 64):
        monkeypatch.setattr(dd, "FETCH_LIMIT", fetch)
        for label, v in samples.items():
            with_nan = np.concatenate([v, [np.nan, np.nan]])
            eng = DuckDBEngine(pd.DataFrame({"v": with_nan}))
            got, missing = eng.quantiles("v", probs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # inf - inf in numpy's own lerp
                expected = np.quantile(v, probs)
            np.testing.assert_array_equal(got, expected, err_msg=f"{label}, fetch limit {fetch}")
            assert missing


def test_approx_quantiles_are_close(frames, files):
    path = _parquet(frames, files, "bank")
    exact = DuckDBEngine(path).quantiles("balance", np.array([0.25, 0.5, 0.75]))[0]
    approx = DuckDBEngine(path, quantiles="approx").quantiles("balance", np.array([0.25, 0.5, 0.75]))[0]
    s = np.sort(_frame(frames, "bank")["balance"].to_numpy())
    # T-Digest: compare ranks, not values (within 1% of the rows)
    for e, a in zip(exact, approx, strict=True):
        assert abs(np.searchsorted(s, a) - np.searchsorted(s, e)) <= 0.01 * len(s)
    # the audit states the error it measured: the share of rows at or below each cut
    r = fairscan.audit(DuckDBEngine(path, quantiles="approx"), target="y", score="score", budget=0.1,
                       tiers={"balance": 4}, n_boot=0)
    note = next(w for w in r.meta["warnings"] if "approximate quantiles" in w)
    shares = [f"{np.mean(s <= a):.2%}" for a in approx]
    assert f"hold {', '.join(shares)} of the rows" in note and "targets 25.00%, 50.00%, 75.00%" in note
    assert not any("approximate" in w for w in fairscan.audit(DuckDBEngine(path), target="y", score="score",
                                                               budget=0.1, tiers={"balance": 4},
                                                               n_boot=0).meta["warnings"])


def test_budget_ties_follow_file_name_then_row_order(tmp_path):
    # rows (in row order) r0..r5; two files whose *names* put rows 3..5 first
    df = pd.DataFrame({"row": [f"r{i}" for i in range(6)], "s": [0.5, 0.9, 0.5, 0.1, 0.5, 0.9]})
    df.iloc[3:].to_parquet(tmp_path / "part-a.parquet")
    df.iloc[:3].to_parquet(tmp_path / "part-b.parquet")
    ordered = pd.concat([df.iloc[3:], df.iloc[:3]], ignore_index=True)
    kw = dict(score="s", budget=3, sensitive="row", suppress_below=0, min_group_size=0, n_boot=0)
    got = fairscan.audit(DuckDBEngine(tmp_path), **kw)
    sel = got.groups.set_index("group")["selection_rate"]
    # file order a, b: rows r3 r4 r5 r0 r1 r2; top 3 = r5, r1 (0.9) and the first 0.5 = r4
    assert sel.to_dict() == {"r0": 0.0, "r1": 1.0, "r2": 0.0, "r3": 0.0, "r4": 1.0, "r5": 1.0}
    assert_same(fairscan.audit(ordered, **kw), got)
    csv = tmp_path / "csv"
    csv.mkdir()
    df.iloc[3:].to_csv(csv / "part-a.csv", index=False)
    df.iloc[:3].to_csv(csv / "part-b.csv", index=False)
    assert_same(fairscan.audit(ordered, **kw), fairscan.audit(DuckDBEngine(csv), **kw))


def test_glob_directory_list_csv_relation_and_frame_inputs(frames, tmp_path):
    kw = dict(score="UnitPrice", budget=0.05, sensitive=["Country"], tiers={"CustomerID": 3}, n_boot=0)
    df = _frame(frames, "retail").iloc[:150_000].reset_index(drop=True)
    parts = tmp_path / "parts"
    (parts / "zz").mkdir(parents=True)  # sorts after part-*: the row order is the name order
    bounds = [0, 30_000, 70_000, 110_000, len(df)]
    for i in range(4):
        where = parts / "zz" if i == 3 else parts
        df.iloc[bounds[i]:bounds[i + 1]].to_parquet(where / f"part-{i}.parquet")
    (parts / "_SUCCESS").write_text("")
    df.to_parquet(tmp_path / "whole.parquet")
    expected = fairscan.audit(df, **kw)
    inputs = {
        "directory": parts,
        "glob": str(parts / "**" / "*.parquet"),
        "list": [parts / "part-0.parquet", str(parts / "part-[12].parquet"), parts / "zz"],
        "relation": duckdb.sql(f"SELECT * FROM read_parquet('{tmp_path / 'whole.parquet'}')"),
        "frame": df,
    }
    for label, data in inputs.items():
        got = fairscan.audit(DuckDBEngine(data), **kw)
        assert_same(expected, got)
        if label != "relation":
            assert got.meta["data_sha256"] == expected.meta["data_sha256"], label
    # CSV (pandas and DuckDB read the same text): same counts as the in-memory audit of the CSV
    small = _frame(frames, "bank").iloc[:5000]
    small.iloc[:2000].to_csv(tmp_path / "b1.csv", index=False)
    small.iloc[2000:].to_csv(tmp_path / "b2.csv", index=False)
    kw = dict(target="y", score="score", budget=0.2, sensitive=["job"], tiers={"age": 3}, weights="w", **COMMON)
    assert_same(fairscan.audit(small.reset_index(drop=True), **kw),
                fairscan.audit(DuckDBEngine(str(tmp_path / "b*.csv")), **kw))


def test_fast_hash_is_deterministic_and_sensitive(frames, files, tmp_path):
    case = "bank-budget-count-weights"
    name, kw = CASES[case]
    path = _parquet(frames, files, name)
    a = fairscan.audit(DuckDBEngine(path, data_hash="fast"), **kw, **COMMON)
    b = fairscan.audit(DuckDBEngine(path, data_hash="fast", threads=1), **kw, **COMMON)
    assert_same(_reference(frames, case), a)
    assert a.meta["data_sha256"] == b.meta["data_sha256"] != _reference(frames, case).meta["data_sha256"]
    changed = _frame(frames, name).copy()
    changed.loc[123, "score"] = 0.123456
    changed.to_parquet(tmp_path / "changed.parquet")
    c = fairscan.audit(DuckDBEngine(tmp_path / "changed.parquet", data_hash="fast"), **kw, **COMMON)
    assert c.meta["data_sha256"] != a.meta["data_sha256"]


def test_settings_are_applied(frames, files, tmp_path):
    eng = DuckDBEngine(_parquet(frames, files, "german"), memory_limit="256MB", threads=1,
                       temp_directory=tmp_path / "spill")
    assert eng._rows("SELECT current_setting('threads')")[0][0] == 1
    assert "MiB" in str(eng._rows("SELECT current_setting('memory_limit')")[0][0])
    assert eng.n_rows() == 1000 and eng.levels("foreign_worker", 10) == (["no", "yes"], False)
    lo, hi, bad = eng.min_max("credit_amount")
    assert (lo, hi, bad) == (250.0, 18424.0, 0)
    eng.close()
    with pytest.raises(FairscanError, match="memory_limit"):
        DuckDBEngine(_parquet(frames, files, "german"), memory_limit="lots")
    with DuckDBEngine(_parquet(frames, files, "german"), data_hash="fast") as eng:
        assert eng.columns() == list(_frame(frames, "german").columns)


# -- bad input: the same one-line errors as in memory ----------------------------------------------
def _error(fn) -> str:
    with pytest.raises(FairscanError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg
    return msg


@pytest.fixture
def small() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame({"g": rng.choice(["a", "b"], n), "y": rng.integers(0, 2, n),
                         "s": rng.random(n), "w": rng.random(n)})


KW = dict(target="y", score="s", budget=0.25, sensitive="g", weights="w", n_boot=0)


def test_bad_files_name_the_file_and_column(small, tmp_path):
    d = tmp_path / "missing"
    d.mkdir()
    small.iloc[:200].to_parquet(d / "p1.parquet")
    small.iloc[200:].drop(columns="s").to_parquet(d / "p2.parquet")
    msg = _error(lambda: DuckDBEngine(d))
    assert "p2.parquet' has no column 's'" in msg and "p1.parquet" in msg and "union_by_name" in msg
    # with union_by_name the column is missing in p2's rows: the score check says so
    msg = _error(lambda: fairscan.audit(DuckDBEngine(d, union_by_name=True), **KW))
    assert msg == "score column 's' has 200 missing, NaN or infinite values; fix or remove those rows first"
    d = tmp_path / "types"
    d.mkdir()
    small.iloc[:200].to_parquet(d / "p1.parquet")
    small.iloc[200:].astype({"s": str}).to_parquet(d / "p2.parquet")
    assert "column 's' is double in file" in _error(lambda: DuckDBEngine(d))
    (tmp_path / "junk.parquet").write_text("not parquet")
    assert "not a readable Parquet file" in _error(lambda: DuckDBEngine(tmp_path / "junk.parquet"))
    assert _error(lambda: DuckDBEngine(str(tmp_path / "none*.parquet"))).startswith("no files match")
    assert _error(lambda: DuckDBEngine(tmp_path / "absent.parquet")).endswith("not found")
    (tmp_path / "x.json").write_text("{}")
    assert "unsupported type '.json'" in _error(lambda: DuckDBEngine(tmp_path / "x.json"))
    small.to_csv(tmp_path / "types" / "p3.csv", index=False)
    assert "mixes Parquet and CSV" in _error(lambda: DuckDBEngine(tmp_path / "types"))
    c = tmp_path / "csvs"
    c.mkdir()
    small.to_csv(c / "a.csv", index=False)
    small.rename(columns={"s": "score"}).to_csv(c / "b.csv", index=False)
    assert "b.csv' has no column 's'" in _error(lambda: DuckDBEngine(c))


@pytest.mark.parametrize("problem", ["nan score", "negative weights", "missing labels", "missing predictions",
                                     "unknown column", "text score"])
def test_bad_values_same_errors_as_memory(problem, small, tmp_path):
    df, kw = small.copy(), dict(KW)
    if problem == "nan score":
        df.loc[[3, 7], "s"] = np.nan
    elif problem == "negative weights":
        df.loc[5:7, "w"] = -1.0
    elif problem == "missing labels":
        df["y"] = df["y"].astype("Int64")
        df.loc[5:7, "y"] = None
    elif problem == "missing predictions":
        df["p"] = pd.array(np.where(df["s"] > 0.5, 1, 0), dtype="Int64")
        df.loc[[1, 2], "p"] = None
        kw = dict(target="y", prediction="p", sensitive="g", n_boot=0)
    elif problem == "unknown column":
        kw["sensitive"] = "gg"
    else:
        df["s"] = df["s"].astype(str)
    df.to_parquet(tmp_path / "d.parquet")
    expected = _error(lambda: fairscan.audit(df, **kw))
    got = _error(lambda: fairscan.audit(DuckDBEngine(tmp_path / "d.parquet"), **kw))
    assert got == expected


# -- files go through DuckDB by default; the CLI's engine settings ------------------------------------
def test_paths_default_to_duckdb_and_equal_memory(frames, files, cli, tmp_path):
    name, kw = CASES["bank-budget-ties-cutpoints-favourable0"]
    path = _parquet(frames, files, name)
    got = fairscan.audit(str(path), **kw, **COMMON)
    assert got.meta["engine"] == "duckdb"
    assert_same(_reference(frames, "bank-budget-ties-cutpoints-favourable0"), got)
    assert fairscan.audit(path, engine="memory", **kw, **COMMON).meta["engine"] == "memory"
    assert fairscan.audit("dataset:bank", target="y", score="duration", threshold=300, sensitive="job",
                          n_boot=0).meta["engine"] == "memory"
    # the CLI: a directory of parts, DuckDB with its memory limit and threads, as JSON
    parts = tmp_path / "parts"
    parts.mkdir()
    df = _frame(frames, "bank")
    for i, (a, b) in enumerate(((0, 20_000), (20_000, len(df)))):
        df.iloc[a:b].to_parquet(parts / f"part-{i}.parquet")
    args = ["audit", str(parts), "--target", "y", "--score", "score", "--budget", "0.1", "--sensitive", "job",
            "--n-boot", "0", "--format", "json"]
    r = cli(*args, "--memory-limit", "256MB", "--threads", "1")
    assert r.code in (0, 1), r.err
    out = json.loads(r.out)
    assert out["engine"] == "duckdb" and out["settings"]["n_boot"] == 0
    whole = tmp_path / "whole.parquet"
    df.to_parquet(whole)
    r2 = cli(*[str(whole) if a == str(parts) else a for a in args], "--engine", "memory")
    assert json.loads(r2.out)["groups"] == out["groups"]
    bad = cli(*[str(whole) if a == str(parts) else a for a in args], "--engine", "memory", "--threads", "2")
    assert bad.code == 2 and "set the DuckDB engine" in bad.err
    bad = cli(*args, "--memory-limit", "lots")
    assert bad.code == 2 and "memory_limit" in bad.err and bad.err.count("\n") == 1


# -- the recommendation audit reads logs the same way -----------------------------------------------
def _recs_logs(n_users: int = 2000, k: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"user": np.arange(n_users), "tier": rng.choice(["low", "mid", "high"], n_users,
                                                                          p=[0.5, 0.3, 0.2])})
    items = pd.DataFrame({"item": [f"i{j:02d}" for j in range(40)], "kind": [("cheap", "mid", "dear")[j % 3]
                                                                           for j in range(40)]})
    rows = [(u, f"i{j:02d}", r + 1) for u in range(n_users)
            for r, j in enumerate(rng.choice(40, k, replace=False, p=np.r_[np.full(20, 0.035), np.full(20, 0.015)]))]
    recs = pd.DataFrame(rows, columns=["user", "item", "rank"])
    truth = recs.sample(frac=0.15, random_state=seed)[["user", "item"]]
    return recs, users, items, truth


def test_recs_audit_from_a_directory_glob_and_relation_equals_memory(tmp_path):
    from fairscan.recs import audit_recs

    recs, users, items, truth = _recs_logs()
    kw = dict(user_group="tier", item_group="kind", k=5, n_boot=200)
    expected = audit_recs(recs, users, items, truth=truth, **kw).to_dict()
    logs = tmp_path / "logs"
    logs.mkdir()
    shuffled = recs.sample(frac=1, random_state=1)  # any row order
    for i, (a, b) in enumerate(((0, 3000), (3000, 7000), (7000, len(recs)))):
        shuffled.iloc[a:b].to_parquet(logs / f"day={i}.parquet")
    users.sample(frac=1, random_state=2).to_parquet(tmp_path / "users.parquet")
    for label, data in {"directory": logs, "glob": str(logs / "*.parquet"),
                        "relation": duckdb.sql(f"SELECT * FROM read_parquet('{logs}/*.parquet')")}.items():
        got = audit_recs(data, tmp_path / "users.parquet", items, truth=truth, **kw).to_dict()
        assert _same_numbers(expected, got), label
    with pytest.raises(FairscanError, match="RECS: column 'rnk' not found"):
        audit_recs(logs, users, items, rank_col="rnk", **kw)


def _same_numbers(a, b) -> bool:
    """Nested JSON equal, numbers to 1e-12 (relative)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_numbers(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_numbers(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-12 * max(1.0, abs(a))
    return a == b


# -- Spark -----------------------------------------------------------------------------------------
def _spark_available() -> bool:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    java_home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (java_home and Path(java_home, "bin", "java").exists()))


@pytest.fixture(scope="module")
def spark():
    from fairscan.engines.spark import local_session

    session = local_session("local[2]", {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",  # faster JVM start for short jobs
        "spark.sql.adaptive.enabled": "false",  # tiny jobs: adaptive planning only adds overhead
    })
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


SPARK_CASES = ["bank-threshold-quantile-tiers-intersection", "adult-prediction-weights-missing-intersection",
               "german-budget-quantiles-weights"]


@pytest.mark.spark
@pytest.mark.skipif(not _spark_available(), reason="needs pyspark and Java")
@pytest.mark.parametrize("case", SPARK_CASES)
def test_spark_equals_memory_and_duckdb(case, spark, frames, files, monkeypatch):
    from fairscan.engines.spark import SparkEngine

    if case.startswith("adult"):
        monkeypatch.setattr(base, "MAX_JOINT_GROUPS", 1)  # groupingSets, one pass for every grouping
    name, kw = CASES[case]
    path = _parquet(frames, files, name)
    got = fairscan.audit(SparkEngine(path, spark=spark), **kw, **COMMON)
    assert got.meta["engine"] == "spark"
    assert_same(_reference(frames, case), got)
    assert_same(fairscan.audit(DuckDBEngine(path), **kw, **COMMON), got)
    # one data hash: Spark's is the memory engine's hash of the same rows in the same order
    assert got.meta["data_sha256"] == _reference(frames, case).meta["data_sha256"]
    assert got.meta["data_hash"] == DEFINITION


@pytest.mark.spark
@pytest.mark.skipif(not _spark_available(), reason="needs pyspark and Java")
def test_spark_files_ties_and_dataframe_input(spark, frames, tmp_path, monkeypatch):
    from pyspark.sql import functions as F

    from fairscan.engines import spark as sp
    from fairscan.engines.spark import SparkEngine

    monkeypatch.setattr(sp, "FETCH_LIMIT", 20_000)  # a histogram pass before collecting values
    df = _frame(frames, "retail").iloc[:60_000].reset_index(drop=True)
    d = tmp_path / "retail"
    d.mkdir()
    for i, (a, b) in enumerate(((0, 25_000), (25_000, 40_000), (40_000, 60_000))):
        df.iloc[a:b].to_parquet(d / f"part-{i}.parquet")
    kw = dict(score="UnitPrice", budget=0.05, sensitive=["Country"], tiers={"CustomerID": 3}, n_boot=0)
    s, k = df["UnitPrice"].to_numpy(), int(0.05 * len(df))
    cut = np.sort(s)[len(s) - k]
    assert (s > cut).sum() < k < (s >= cut).sum()  # the cut splits tied rows: row order decides
    # ties broken by file name, then _metadata.row_index: every row gets a position in its file
    eng = SparkEngine(d, spark=spark)
    first = eng._with_positions().agg(F.min(sp.POS)).collect()[0][0]
    assert first == 0
    assert_same(fairscan.audit(df, **kw), fairscan.audit(eng, **kw))
    # a DataFrame: ties by monotonically_increasing_id (the tiny frame below has one partition)
    rows = pd.DataFrame({"row": [f"r{i}" for i in range(6)], "s": [0.5, 0.9, 0.5, 0.1, 0.5, 0.9]})
    sdf = spark.createDataFrame(list(rows.itertuples(index=False)), "row string, s double").coalesce(1)
    kw = dict(score="s", budget=3, sensitive="row", suppress_below=0, min_group_size=0, n_boot=0)
    got = fairscan.audit(SparkEngine(sdf), **kw)
    assert_same(fairscan.audit(rows, **kw), got)
    assert got.groups.set_index("group")["selection_rate"].to_dict() == {
        "r0": 1.0, "r1": 1.0, "r2": 0.0, "r3": 0.0, "r4": 0.0, "r5": 1.0}


@pytest.mark.spark
@pytest.mark.skipif(not _spark_available(), reason="needs pyspark and Java")
def test_spark_quantiles_are_numpy_not_approxquantile(spark):
    from fairscan.engines.spark import SparkEngine

    values = [1.0, 2.0, 3.0, 4.0, 10.0, 10.0, np.nan]
    sdf = spark.createDataFrame([(v,) for v in values], "v double")
    # Spark's exact approxQuantile returns a data element where numpy interpolates: 2.0, not 2.5
    four = spark.createDataFrame([(v,) for v in values[:4]], "v double")
    assert four.approxQuantile("v", [0.5], 0.0) == [2.0] and np.quantile(values[:4], 0.5) == 2.5
    probs = np.array([0.25, 0.5, 0.9])
    got, missing = SparkEngine(sdf).quantiles("v", probs)
    np.testing.assert_array_equal(got, np.quantile(values[:-1], probs))
    assert missing


@pytest.mark.spark
@pytest.mark.skipif(not _spark_available(), reason="needs pyspark and Java")
def test_spark_bad_input_same_errors(spark, small, tmp_path):
    from fairscan.engines.spark import SparkEngine

    rows = [(g, None if i in (3, 4) else int(y), float(s), float(w))
            for i, (g, y, s, w) in enumerate(small.itertuples(index=False))]
    sdf = spark.createDataFrame(rows, "g string, y long, s double, w double")
    df = small.astype({"y": "Int64"})
    df.loc[[3, 4], "y"] = None
    expected = _error(lambda: fairscan.audit(df, **KW))
    assert expected.startswith("label column 'y' has 2 missing values")
    assert _error(lambda: fairscan.audit(SparkEngine(sdf), **KW)) == expected
    d = tmp_path / "missing"
    d.mkdir()
    small.iloc[:200].to_parquet(d / "p1.parquet")
    small.iloc[200:].drop(columns="s").to_parquet(d / "p2.parquet")
    assert "p2.parquet' has no column 's'" in _error(lambda: SparkEngine(d, spark=spark))
    neg = small.copy()
    neg.loc[5:7, "w"] = -1.0
    neg.to_parquet(tmp_path / "neg.parquet")
    assert _error(lambda: fairscan.audit(SparkEngine(tmp_path / "neg.parquet", spark=spark), **KW)) == \
        _error(lambda: fairscan.audit(neg, **KW))
    assert "not found (did you mean: g?)" in _error(
        lambda: fairscan.audit(SparkEngine(sdf), **{**KW, "sensitive": "gg"}))


@pytest.mark.spark
@pytest.mark.skipif(not _spark_available(), reason="needs pyspark and Java")
def test_spark_recs_logs_equal_memory(spark, tmp_path):
    from fairscan.recs import audit_recs

    recs, users, items, truth = _recs_logs(n_users=800)
    kw = dict(user_group="tier", item_group="kind", k=5, n_boot=100)
    expected = audit_recs(recs, users, items, truth=truth, **kw).to_dict()
    recs.to_parquet(tmp_path / "recs.parquet")
    users.to_parquet(tmp_path / "users.parquet")
    sdf = spark.read.parquet(str(tmp_path / "recs.parquet")).repartition(3)  # rows in another order
    got = audit_recs(sdf, spark.read.parquet(str(tmp_path / "users.parquet")), items, truth=truth, **kw).to_dict()
    assert _same_numbers(expected, got)


def test_csv_is_typed_as_pandas_types_it(tmp_path):
    """A CSV read by DuckDB (the default for files) gives the same audit as pandas' reading of
    it — labels, group names and data hash included: yes/no stays text (DuckDB alone would make
    it a boolean), true/false is boolean, 0/1 an integer, dates stay text, integers with gaps
    become floats."""
    rng = np.random.default_rng(5)
    n = 3000
    df = pd.DataFrame({
        "y": rng.choice(["yes", "no"], n), "flag": rng.choice(["True", "False"], n),
        "bit": rng.integers(0, 2, n), "day": rng.choice(["2024-01-01", "2024-02-15", "2024-03-31"], n),
        "visits": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 40, n)), "s": np.round(rng.random(n), 3)})
    path = tmp_path / "mixed.csv"
    df.to_csv(path, index=False)
    from fairscan.io import read_table

    kw = dict(target="y", score="s", budget=0.2, sensitive=["flag", "day", "bit"], tiers={"visits": 3}, n_boot=50)
    want = fairscan.audit(read_table(path), **kw).to_dict()
    got = fairscan.audit(str(path), **kw).to_dict()
    assert got.pop("engine") == "duckdb" and want.pop("engine") == "memory"
    got.pop("created"), want.pop("created")
    assert got == want


def test_fetch_returns_only_the_named_columns(small, tmp_path):
    """Engine.fetch, used for inputs reduced in memory (recommendation lists): the same rows
    from every kind of input, only the named columns, a one-line error for a missing one."""
    import pyarrow as pa

    from fairscan.engines.memory import MemoryEngine

    polars = pytest.importorskip("polars")
    want = small[["g", "y"]].reset_index(drop=True)
    small.to_parquet(tmp_path / "s.parquet")
    for data in (MemoryEngine(small), MemoryEngine(pa.Table.from_pandas(small)),
                 MemoryEngine(polars.from_pandas(small)), DuckDBEngine(tmp_path / "s.parquet")):
        got = data.fetch(["g", "y"]).reset_index(drop=True)
        assert list(got.columns) == ["g", "y"]
        pd.testing.assert_frame_equal(got.astype({"g": str, "y": "int64"}), want.astype({"g": str, "y": "int64"}))
        assert "did you mean: y?" in _error(lambda d=data: d.fetch(["yy"]))


# -- row-level decisions (fairscan.audit.decide) on every engine -----------------------------------
def _decision_rows(n: int = 40_000, seed: int = 11) -> pd.DataFrame:
    """Scores with heavy ties (so a budget cuts through tied rows) and a 0/1 prediction."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"row": np.arange(n), "s": rng.integers(0, 50, n) / 10, "p": rng.integers(0, 2, n)})


def _expected_decisions(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The oracle: numpy comparisons, and for a budget a stable full sort (earlier rows first)."""
    s = df["s"].to_numpy()
    k = 7_001
    top = np.zeros(len(s), dtype=bool)
    top[np.argsort(-s, kind="stable")[:k]] = True
    assert (s > np.sort(s)[len(s) - k]).sum() < k < (s >= np.sort(s)[len(s) - k]).sum()  # a cut through ties
    return {"threshold": s >= 2.5, "budget": top, "budget-refusal": ~top, "prediction": df["p"].to_numpy() == 1}


def _parts(df: pd.DataFrame, cuts: dict, tmp_path) -> tuple:
    """``df`` cut into named Parquet and CSV parts (folders pq/ and csv/), and the decisions
    expected in the parts' row order: that of their names, not of ``cuts``."""
    pq, csv = tmp_path / "pq", tmp_path / "csv"
    pq.mkdir()
    csv.mkdir()
    for name, (a, b) in cuts.items():
        df.iloc[a:b].to_parquet(pq / f"{name}.parquet")
        df.iloc[a:b].to_csv(csv / f"{name}.csv", index=False)
    ordered = pd.concat([df.iloc[a:b] for _, (a, b) in sorted(cuts.items())], ignore_index=True)
    return pq, csv, _expected_decisions(ordered)


DECIDE_KW = {"threshold": dict(score="s", threshold=2.5), "budget": dict(score="s", budget=7_001),
             "budget-refusal": dict(score="s", budget=7_001, favourable_decision=0),
             "prediction": dict(prediction="p")}


def test_decide_on_files_and_relations_follows_the_row_order(tmp_path):
    df = _decision_rows()
    # the files' names order them b, c, a: the row order is that of the names
    cuts = {"part-b": (0, 15_000), "part-c": (15_000, 22_000), "part-a": (22_000, len(df))}
    pq, csv, expected = _parts(df, cuts, tmp_path)
    df.to_parquet(tmp_path / "whole.parquet")
    df.to_csv(tmp_path / "whole.csv", index=False)
    whole = _expected_decisions(df)
    inputs = {
        "parquet folder": (pq, expected),
        "csv folder": (csv, expected),
        "one csv": (str(tmp_path / "whole.csv"), whole),
        "relation": (duckdb.sql(f"SELECT * FROM read_parquet('{tmp_path / 'whole.parquet'}')"), whole),
        "frame": (df, whole),
    }
    for label, (data, want) in inputs.items():
        for kind, kw in DECIDE_KW.items():
            got = decide(data, **kw)
            assert got.dtype == bool and len(got) == len(df), (label, kind)
            assert np.array_equal(got, want[kind]), (label, kind)
    # the DuckDB engine on an in-memory frame
    for kind, kw in DECIDE_KW.items():
        assert np.array_equal(decide(DuckDBEngine(df), **kw), whole[kind]), kind


def test_decide_errors_are_one_line_on_every_engine(tmp_path):
    df = pd.DataFrame({"p": [1.0, None, 0.0] * 20, "s": np.linspace(0, 1, 60)})
    df.to_parquet(tmp_path / "d.parquet")
    for data in (df, tmp_path / "d.parquet"):
        assert _error(lambda d=data: decide(d, prediction="p")) == \
            "prediction column 'p' has 20 missing values; fill or remove those rows first"
        assert _error(lambda d=data: decide(d, score="ss", budget=3)) == \
            "score column 'ss' not found (did you mean: s?)"
        assert _error(lambda d=data: decide(d, score="s", budget=3, favourable_decision=2)) == \
            "favourable decision must be 0 or 1, got 2"


@pytest.mark.spark
@pytest.mark.skipif(not _spark_available(), reason="needs pyspark and Java")
def test_spark_decide_follows_the_files_row_order(spark, tmp_path):
    from fairscan.engines.spark import SparkEngine

    df = _decision_rows(n=20_000)
    cuts = {"part-b": (0, 3_000), "part-c": (3_000, 12_000), "part-a": (12_000, len(df))}
    pq, csv, expected = _parts(df, cuts, tmp_path)
    # small pieces: Spark splits each CSV file and packs the pieces by size, not by name
    old = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "20000")
    try:
        for data in (pq, csv):
            eng = SparkEngine(data, spark=spark)
            for kind, kw in DECIDE_KW.items():
                assert np.array_equal(decide(eng, **kw), expected[kind]), (data.name, kind)
            kw = dict(score="s", budget=7_001, sensitive="p", n_boot=0)
            assert_same(fairscan.audit(DuckDBEngine(data), **kw), fairscan.audit(eng, **kw))
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", old)
    # a DataFrame: its partitions' order (one partition here)
    sdf = spark.createDataFrame(list(df.itertuples(index=False)), "row long, s double, p long").coalesce(1)
    whole = _expected_decisions(df)
    for kind, kw in DECIDE_KW.items():
        assert np.array_equal(decide(sdf, **kw), whole[kind]), kind


@pytest.mark.spark
@pytest.mark.skipif(not _spark_available(), reason="needs pyspark and Java")
def test_spark_discovers_the_same_subgroups(spark, tmp_path):
    """Subgroup discovery through Spark's GROUPING SETS equals the memory engine's."""
    from fairscan.datasets.synthetic import planted_subgroups
    from fairscan.discover import discover
    from fairscan.engines.spark import SparkEngine

    df = planted_subgroups(20_000, seed=7)
    path = tmp_path / "s.parquet"
    df.to_parquet(path)
    kw = dict(prediction="offer", target="y", attributes=["a1", "a2", "a3", "a4", "spend"], max_depth=3,
              direction="both", top=5000)
    mem = discover(df, **kw).subgroups
    got = discover(SparkEngine(path, spark=spark), **kw)
    assert got.meta["engine"] == "spark"
    s = got.subgroups
    assert list(mem["who"]) == list(s["who"]) and list(mem["verdict"]) == list(s["verdict"])
    for c in ("count", "value", "difference_ci_low", "p_value_adjusted"):
        assert np.allclose(mem[c].to_numpy(dtype=float), s[c].to_numpy(dtype=float), equal_nan=True, atol=1e-12)


@pytest.mark.spark
@pytest.mark.skipif(not _spark_available(), reason="needs pyspark and Java")
def test_spark_paired_cells_and_hash_equal_memory(spark, tmp_path, monkeypatch):
    """Two decisions on the same rows (a model comparison): Spark's 8 cells per group, budget
    ties broken in row order, and its data hash equal the memory engine's, through
    groupingSets too."""
    from fairscan.engines.spark import SparkEngine
    from fairscan.groups import resolve
    from fairscan.params import audit_params
    from fairscan.types import Label

    monkeypatch.setattr(base, "MAX_JOINT_GROUPS", 1)
    rng = np.random.default_rng(8)
    n = 2000
    df = pd.DataFrame({"g": rng.choice(["u", "v", "w"], n), "h": rng.choice(["p", "q"], n),
                       "a": rng.integers(0, 10, n) / 10, "pb": rng.choice(["yes", "no"], n),
                       "y": rng.integers(0, 2, n)})
    df.to_parquet(tmp_path / "d.parquet")
    pa = audit_params(score="a", budget=333, sensitive=["g", "h"], intersect=True)
    pb = audit_params(prediction="pb", sensitive=["g", "h"])
    out = []
    for eng in (MemoryEngine(df), SparkEngine(tmp_path / "d.parquet", spark=spark)):
        agg = eng.aggregate(resolve(pa.groups, eng), Label("y", 1), pa.decision.resolve(eng)[0], None,
                            paired=pb.decision.resolve(eng)[0])
        out.append(agg)
    mem, spk = out
    assert spk.data_sha256 == mem.data_sha256 and spk.column_sha256 == mem.column_sha256
    for x, y in zip(mem.stats, spk.stats, strict=True):
        assert x.n.shape[1] == 8 and (x.codes == y.codes).all() and (x.n == y.n).all()
    # the oracle for one grouping: pandas, ties in row order
    a = np.zeros(n, dtype=bool)
    a[df["a"].sort_values(ascending=False, kind="stable").index[:333]] = True
    cell = 4 * df["y"] + 2 * a + (df["pb"] == "yes").to_numpy()
    want = df.assign(c=cell).groupby(["g", "c"]).size().unstack(fill_value=0).reindex(columns=range(8), fill_value=0)
    g_stats = next(s for s in spk.stats if s.grouping.name == "g")
    assert (g_stats.n == want.to_numpy()).all()


@pytest.mark.slow
def test_duckdb_reports_its_passes_over_large_files(tmp_path, monkeypatch):
    """With ``progress``, a DuckDB pass that runs longer than half a second is reported as it
    goes (fractions in [0, 1), the pass and the file named), and the counts are the same as
    without it. The CLI's audit draws them on a terminal's stderr, never with --quiet or in a pipe."""
    path = tmp_path / "big.parquet"
    duckdb.sql("COPY (SELECT i % 7 AS g, (hash(i) % 1000) / 1000.0 AS s, i % 3 = 0 AS y "
               f"FROM range(40000000) t(i)) TO '{path}'")
    seen: list[tuple[float, str]] = []
    kw = dict(target="y", score="s", budget=0.1, sensitive="g", n_boot=0)
    watched = fairscan.audit(dd.DuckDBEngine(path, progress=lambda f, t: seen.append((f, t))), **kw)
    assert seen and all(0 <= f < 1 for f, _ in seen)
    assert all(t.startswith("DuckDB pass ") and t.endswith(f"over file '{path}'") for _, t in seen)
    plain = fairscan.audit(dd.DuckDBEngine(path), **kw)
    assert watched.groups.equals(plain.groups)

    import io
    import sys

    from fairscan.cli import main

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    args = ["audit", str(path), "--target", "y", "--score", "s", "--budget", "0.1", "--sensitive", "g",
            "--n-boot", "0", "--format", "json", "--out", str(tmp_path / "a.json")]
    for quiet, terminal in ((False, True), (True, True), (False, False)):
        err = Terminal() if terminal else io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)
        assert main(args + ["--quiet"] * quiet) == 0
        assert ("DuckDB pass" in err.getvalue()) == (terminal and not quiet)



@pytest.mark.spark
@pytest.mark.skipif(not _spark_available(), reason="needs pyspark and Java")
def test_spark_value_audit_equals_memory(spark, tmp_path):
    """The offer value audit through Spark (grouping sets over keys, strata, offer flag and
    value) gives the memory engine's result."""
    from fairscan.engines.spark import SparkEngine
    from fairscan.value import audit_value
    from tests.test_value import ENGINE_KW, assert_same_result, messy_prices

    df = messy_prices(3000, seed=11)
    path = tmp_path / "prices.parquet"
    df.to_parquet(path)
    mem = audit_value(df, engine="memory", **ENGINE_KW)
    sp = audit_value(SparkEngine(str(path), spark=spark), **ENGINE_KW)
    assert sp.meta["engine"] == "spark"
    assert_same_result(mem, sp)
    one = dict(value="price", favourable="higher", sensitive="tier", n_boot=0)  # one grouping: a plain groupBy
    assert_same_result(audit_value(df, engine="memory", **one), audit_value(SparkEngine(str(path), spark=spark), **one))
    with pytest.raises(FairscanError, match="value column 'tier' is not numeric"):
        audit_value(SparkEngine(str(path), spark=spark), value="tier", favourable="lower", sensitive="tier")
    from tests.test_value import clustered_prices

    lines = clustered_prices(150, seed=4)
    lines.to_parquet(tmp_path / "lines.parquet")
    kw = dict(value="price", favourable="lower", sensitive="tier", within="product", cluster="customer", n_boot=30)
    assert_same_result(audit_value(lines, engine="memory", **kw),
                       audit_value(SparkEngine(str(tmp_path / "lines.parquet"), spark=spark), **kw))
