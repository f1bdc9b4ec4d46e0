"""Counts files: an audit's sufficient statistics instead of rows.

- Equality: the audit from a counts file equals the row-level audit (groups, rates, intervals,
  tests, verdicts) on every bundled dataset case of the engine tests — prediction, threshold,
  budget, weights, intersections, missing values — counted in memory and through DuckDB, and
  with inferred purchasing-power tiers from the command line.
- Merging: ten shards counted apart and added up equal the whole counted at once (and an
  independent pandas groupby); mismatched files are refused with what differs.
- Privacy: nothing in the file identifies a person (the raw-value scan), and a group of 5 is
  withheld together with a complement, so neither its cells nor its size can be worked out
  from the file and the row count.
"""

from __future__ import annotations

import itertools
import json

import jsonschema
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from test_engines import CASES, _frame, _parquet
from test_privacy import assert_no_raw_values

import fairscan
from fairscan import Counts, schemas
from fairscan.engines.counts import COUNTS_KEY, is_counts_file
from fairscan.errors import FairscanError

PARTS = ("groups", "disparities", "summary", "findings")


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return tmp_path_factory.mktemp("counts")


def same_audit(row: fairscan.AuditResult, from_counts: fairscan.AuditResult) -> None:
    a, b = row.to_dict(), from_counts.to_dict()
    for part in PARTS:
        assert a[part] == b[part], part  # exactly: every number, every verdict
    for key in ("n_rows", "data_sha256", "data_hash", "decision", "attributes", "reference", "target"):
        assert a[key] == b[key], key
    assert b["engine"] == "counts" and set(a["warnings"]) <= set(b["warnings"])


@pytest.mark.parametrize("case", list(CASES))
def test_audit_from_counts_equals_the_row_level_audit(case, frames, files, tmp_path):
    name, kw = CASES[case]
    df = _frame(frames, name)
    row = fairscan.audit(df, **kw, n_boot=200)
    path = fairscan.counts(df, **kw).write(tmp_path / "c.parquet")
    assert is_counts_file(path)
    got = fairscan.audit(path, n_boot=200)
    same_audit(row, got)
    jsonschema.validate(json.loads(pq.read_schema(path).metadata[COUNTS_KEY]), schemas.load("counts"))
    assert any("audited from a counts file" in w for w in got.meta["warnings"])
    # counted by DuckDB from Parquet: the same file contents, the same audit
    duck = fairscan.counts(str(_parquet(frames, files, name)), **kw)
    assert duck.meta["engine"] == "duckdb"
    pd.testing.assert_frame_equal(duck.to_frame(), Counts.read(path).to_frame())
    same_audit(row, fairscan.audit(duck, n_boot=200))


def test_counts_audit_picks_attributes_and_keeps_the_policy(frames, tmp_path):
    name, kw = CASES["bank-threshold-quantile-tiers-intersection"]
    df = _frame(frames, name)
    path = fairscan.counts(df, **kw).write(tmp_path / "c.parquet")
    one = fairscan.audit(path, sensitive="job", n_boot=0, min_group_size=50, tolerances={
        "selection_rate": {"min_ratio": 0.9}})
    assert one.meta["attributes"] == ["job"]
    row = fairscan.audit(df, target="y", score="score", threshold=0.5, sensitive="job", n_boot=0, min_group_size=50,
                         tolerances={"selection_rate": {"min_ratio": 0.9}})
    assert one.to_dict()["findings"] == row.to_dict()["findings"]
    with pytest.raises(FairscanError, match=r"no attribute 'jobb'.*did you mean: job"):
        fairscan.audit(path, sensitive="jobb")
    with pytest.raises(FairscanError, match="leave out score"):
        fairscan.audit(path, score="score")
    with pytest.raises(FairscanError, match="tiers cannot be cut again"):
        fairscan.audit(path, tiers={"age": [30, 50]})
    with pytest.raises(FairscanError, match="--suppress-below 10 or more"):
        fairscan.audit(path, suppress_below=5)
    more = fairscan.audit(path, suppress_below=200, n_boot=0)  # suppressing more than the file: allowed
    assert more.groups["suppressed"].sum() > fairscan.audit(path, n_boot=0).groups["suppressed"].sum()


def test_counts_with_inferred_spend_tiers_from_the_cli(cli, tmp_path):
    from test_inferred import customers

    df = customers(3000, seed=3)
    df.to_csv(tmp_path / "c.csv", index=False)
    flags = ["--target", "bought", "--score", "score", "--budget", "0.3", "--infer-tier",
             "spend:customer,basket,3"]
    assert cli("audit", str(tmp_path / "c.csv"), *flags, "--format", "json", "--out", str(tmp_path / "a.json")).code == 0
    r = cli("counts", str(tmp_path / "c.csv"), *flags, "--out", str(tmp_path / "n.parquet"))
    assert r.code == 0 and "wrote" in r.err
    assert cli("audit", str(tmp_path / "n.parquet"), "--format", "json", "--out", str(tmp_path / "b.json")).code == 0
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    for part in PARTS:
        assert a[part] == b[part], part


def _shards(n: int = 40_000, k: int = 10, seed: int = 4) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"region": rng.choice(["n", "s", "e", "w", "tiny"], n, p=[0.3, 0.3, 0.2, 0.1998, 0.0002]),
                       "age": rng.integers(18, 90, n), "y": rng.integers(0, 2, n), "score": rng.random(n),
                       "w": rng.gamma(2.0, 1.0, n)})
    edges = np.linspace(0, n, k + 1).astype(int)
    return [df.iloc[a:b].reset_index(drop=True) for a, b in itertools.pairwise(edges)]


def test_ten_shards_merged_equal_the_whole(tmp_path):
    shards = _shards()
    whole = pd.concat(shards, ignore_index=True)
    kw = dict(target="y", score="score", threshold=0.7, sensitive="region", tiers={"age": [30, 50, 65]},
              intersect=True, weights="w")
    paths = [fairscan.counts(s, protect="none", **kw).write(tmp_path / f"part-{i}.parquet")
             for i, s in enumerate(shards)]
    merged = Counts.merge([Counts.read(p) for p in paths], names=[str(p) for p in paths])
    at_once = fairscan.counts(whole, protect="none", **kw)
    for m, o in zip(merged.stats, at_once.stats, strict=True):
        assert (m.codes == o.codes).all() and (m.n == o.n).all()
        np.testing.assert_allclose(m.w, o.w, rtol=1e-12)
        np.testing.assert_allclose(m.w2, o.w2, rtol=1e-12)
    # the cells against an independent pandas groupby
    d = (whole["score"] >= 0.7).astype(int)
    want = whole.assign(c=2 * whole["y"] + d).groupby(["region", "c"]).size().unstack(fill_value=0)
    region = next(s for s in merged.stats if s.grouping.name == "region")
    assert (region.n == want.loc[region.labels].to_numpy()).all()
    assert merged.n_rows == len(whole) and len(merged.meta["parts"]) == 10
    # protected after merging, the audit equals the row-level audit of the whole
    protected = Counts.merge([Counts.read(p) for p in paths], suppress_below=10)
    assert protected.protection["kind"] == "suppressed"
    a = fairscan.audit(whole, **kw, n_boot=100).to_dict()
    b = fairscan.audit(protected, n_boot=100).to_dict()
    for part in PARTS:  # weights summed shard by shard: equal to the last bits of a float
        assert_close(a[part], b[part])


def assert_close(a, b, rel: float = 1e-9) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_close(a[k], b[k], rel)
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_close(x, y, rel)
    elif isinstance(a, float) and isinstance(b, float):
        assert b == pytest.approx(a, rel=rel, abs=1e-12)
    else:
        assert a == b


def test_merge_refuses_what_does_not_add_up(cli, tmp_path):
    a, b = _shards(4000, 2)
    base = dict(target="y", score="score", threshold=0.5, sensitive="region")
    pa = fairscan.counts(a, protect="none", **base).write(tmp_path / "a.parquet")
    other = fairscan.counts(b, protect="none", **{**base, "threshold": 0.6}).write(tmp_path / "b.parquet")
    r = cli("counts", "merge", str(pa), str(other), "--out", str(tmp_path / "m.parquet"))
    assert r.code == 2 and "another decision rule" in r.err and "at 0.6" in r.err and "at 0.5" in r.err
    groups = fairscan.counts(b, protect="none", **{**base, "sensitive": "age"}).write(tmp_path / "g.parquet")
    r = cli("counts", "merge", str(pa), str(groups), "--out", str(tmp_path / "m.parquet"))
    assert r.code == 2 and "other groups" in r.err and "age against region" in r.err
    protected = fairscan.counts(b, **base).write(tmp_path / "p.parquet")
    r = cli("counts", "merge", str(pa), str(protected), "--out", str(tmp_path / "m.parquet"))
    assert r.code == 2 and "is protected" in r.err and "--protect none" in r.err
    quantiles = [fairscan.counts(x, protect="none", **{**base, "tiers": {"age": 3}}) for x in (a, b)]
    with pytest.raises(FairscanError, match=r"count 'age' differently \(cut at .* against .*\).*--tiers COL=c1,c2"):
        Counts.merge(quantiles)
    budget = fairscan.counts(a, protect="none", **{**base, "threshold": None, "budget": 100})
    with pytest.raises(FairscanError, match="budget counts do not add up"):
        Counts.merge([budget, budget])
    r = cli("counts", "merge", str(pa), str(tmp_path / "b.parquet"), "--out", str(tmp_path / "ok.parquet"),
                       "--protect", "none")
    assert r.code == 2  # still the rule mismatch
    r = cli("counts", "merge", str(pa), str(pa), "--out", str(tmp_path / "ok.parquet"))
    assert r.code == 0 and "2 files" in r.err


def test_bad_counts_files_are_one_line_errors(tmp_path):
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "plain.parquet")
    assert not is_counts_file(tmp_path / "plain.parquet")
    with pytest.raises(FairscanError, match="was not written by 'fairscan counts'"):
        Counts.read(tmp_path / "plain.parquet")
    df = _shards(2000, 1)[0]
    path = fairscan.counts(df, target="y", score="score", threshold=0.5, sensitive="region").write(tmp_path / "c.parquet")
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[COUNTS_KEY])
    meta["schema_version"] = "9.0"
    pq.write_table(table.replace_schema_metadata({COUNTS_KEY: json.dumps(meta)}), tmp_path / "future.parquet")
    with pytest.raises(FairscanError, match=r"schema version '9\.0'.*upgrade fairscan") as e:
        Counts.read(tmp_path / "future.parquet")
    assert "\n" not in str(e.value)
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(FairscanError, match=r"not a readable Parquet"):
        Counts.read(tmp_path / "junk.parquet")


def test_nothing_in_a_counts_file_identifies_a_person(tmp_path):
    rng = np.random.default_rng(9)
    n = 500
    ids = [f"CUST-{i:06d}-{rng.integers(1e9)}" for i in range(n)]
    spend = np.round(rng.lognormal(6, 1, n), 2) + 0.001
    df = pd.DataFrame({"customer_id": ids, "spend": spend, "region": rng.choice(["north", "south", "east"], n),
                       "y": rng.integers(0, 2, n), "score": rng.random(n)})
    path = fairscan.counts(df, target="y", score="score", budget=100, sensitive="region", histograms=20,
                           tiers={"spend": [100, 1000]}).write(tmp_path / "c.parquet")
    table = pq.read_table(path)
    text = table.to_pandas().to_csv() + table.schema.metadata[COUNTS_KEY].decode()
    assert_no_raw_values({"counts": text}, ids[:100], spend[:100], df["score"].head(100))
    assert "customer_id" not in text  # an unaudited column is not even named


def test_a_group_of_five_cannot_be_told_apart(tmp_path):
    """Without DP: the group of 5 is withheld, and so is a complement, so its cells are not in
    the file and its size is not the row count minus the listed groups."""
    rng = np.random.default_rng(5)
    region = np.array(["a"] * 5 + ["b"] * 400 + ["c"] * 300 + ["d"] * 295)
    df = pd.DataFrame({"region": region, "y": rng.integers(0, 2, 1000), "score": rng.random(1000)})
    c = fairscan.counts(df, target="y", score="score", threshold=0.5, sensitive="region")
    path = c.write(tmp_path / "c.parquet")
    frame = pd.read_parquet(path)
    small = frame[frame["group"] == "a"]
    assert small["withheld"].all() and small["count"].isna().all() and (small["suppression"] == "primary").all()
    withheld = frame[frame["withheld"]]["group"].unique()
    assert len(withheld) >= 2  # a complement: the small group's size cannot be subtracted out
    listed = frame[~frame["withheld"]]["count"].sum()
    assert c.n_rows - listed != 5
    audit = fairscan.audit(path, n_boot=0)
    assert audit.groups.set_index("group").loc["a", "suppressed"]


# -- differentially private counts ----------------------------------------------------------------
def test_discrete_laplace_has_its_distribution():
    """The sampler against the exact pmf, P(k) = (1 - a) / (1 + a) a^|k| with a = exp(-epsilon),
    and its variance: the guarantee P(k | n) / P(k | n + 1) <= e^epsilon follows from the pmf."""
    from fairscan.privacy import discrete_laplace, discrete_laplace_variance

    rng = np.random.default_rng(1)
    for eps in (1.0, 0.1):
        a = np.exp(-eps)
        x = discrete_laplace((400_000,), eps, rng)
        for k in range(-4, 5):
            want = (1 - a) / (1 + a) * a ** abs(k)
            assert abs((x == k).mean() - want) < 4 * np.sqrt(want * (1 - want) / len(x)) + 1e-4, (eps, k)
        assert x.var() == pytest.approx(discrete_laplace_variance(eps), rel=0.03)
        assert abs(x.mean()) < 5 * np.sqrt(discrete_laplace_variance(eps) / len(x))


def _population(rng, n):
    g = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    h = rng.choice(["x", "y"], n)
    p_offer = np.select([g == "a", g == "b"], [0.30, 0.22], 0.15)
    return pd.DataFrame({"g": g, "h": h, "y": rng.integers(0, 2, n), "d": (rng.random(n) < p_offer).astype(int)})


@pytest.mark.parametrize("epsilon", [1.0, 0.1])
def test_private_intervals_cover_the_true_rate(epsilon):
    """500 seeded repetitions: a fresh sample of 4,000 customers, its private counts, the audit
    from them; the 95% interval of each group's selection rate covers the true rate about 95%
    of the time (the noise included), where the exact-count interval would cover far less."""
    from fairscan.audit import audit_counts
    from fairscan.engines.counts import private_counts
    from fairscan.groups import resolve
    from fairscan.params import audit_params
    from fairscan.policy import AuditPolicy
    from fairscan.types import Decision, Label

    rng = np.random.default_rng(7)
    truth = {"a": 0.30, "b": 0.22, "c": 0.15}
    covered, naive, reps = {g: 0 for g in truth}, {g: 0 for g in truth}, 500
    template = fairscan.counts(_population(rng, 4000), target="y", prediction="d", sensitive=["g", "h"],
                               protect="none")
    policy = AuditPolicy(n_boot=0)
    for _ in range(reps):
        df = _population(rng, 4000)
        from fairscan.engines.memory import MemoryEngine

        eng = MemoryEngine(df)
        groupings = resolve(audit_params(prediction="d", sensitive=["g", "h"], intersect=True).groups, eng)
        agg = eng.aggregate(groupings, Label("y", 1), Decision("prediction", "d"), None)
        joint = agg.stats[-1]
        c = private_counts(agg.stats[:2], joint, dict(template.meta), epsilon, rng)
        r = audit_counts(c, policy=policy).groups.set_index("group")
        for g, p in truth.items():
            lo, hi = r.loc[g, "selection_rate_ci_low"], r.loc[g, "selection_rate_ci_high"]
            covered[g] += lo <= p <= hi
            # the same rate's plain Wilson interval, as if the noisy counts were exact
            from fairscan.metrics.stats import wilson

            n = r.loc[g, "count"]
            wl, wh = wilson(np.array([r.loc[g, "selection_rate"]]), np.array([float(n)]))
            naive[g] += wl[0] <= p <= wh[0]
    for g in truth:
        assert 0.925 <= covered[g] / reps <= 0.975, (epsilon, g, covered[g] / reps)
    if epsilon == 0.1:  # the noise is then larger than the sampling error: ignoring it undercovers
        assert min(naive.values()) / reps < 0.9


def test_a_private_file_round_trips_and_states_its_protection(tmp_path, cli):
    rng = np.random.default_rng(3)
    df = _population(rng, 5000)
    df.to_csv(tmp_path / "d.csv", index=False)
    r = cli("counts", str(tmp_path / "d.csv"), "--target", "y", "--prediction", "d", "--sensitive", "g",
            "--sensitive", "h", "--intersect", "--epsilon", "0.5", "--out", str(tmp_path / "p.parquet"))
    assert r.code == 0, r.err
    c = Counts.read(tmp_path / "p.parquet")
    assert c.protection["kind"] == "differential privacy" and c.protection["epsilon"] == 0.5
    gh = next(s for s in c.stats if s.grouping.name == "g x h")
    g = next(s for s in c.stats if s.grouping.name == "g")
    assert len(gh.codes) == 6 and (gh.n >= 0).all()  # every combination released, none negative
    assert g.n.sum() == gh.n.sum() == c.n_rows  # the tables add up to the same total
    assert g.noise_var[0, 0] == 2 * gh.noise_var[0, 0]  # a group of g sums the 2 cells of h
    r = cli("audit", str(tmp_path / "p.parquet"), "--format", "md")
    assert "from differentially private counts (ε = 0.5)" in r.out
    r = cli("counts", "merge", str(tmp_path / "p.parquet"), str(tmp_path / "p.parquet"), "--out",
            str(tmp_path / "m.parquet"))
    assert r.code == 2 and "is protected (differential privacy)" in r.err
    r = cli("counts", str(tmp_path / "d.csv"), "--prediction", "d", "--sensitive", "g", "--epsilon", "0",
            "--out", str(tmp_path / "x.parquet"))
    assert r.code == 2 and "epsilon must be > 0" in r.err


# -- score histograms: other thresholds and budgets, budget files merged ---------------------------
def _scored(n: int = 30_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c", "d", "tiny"], n, p=[0.4, 0.3, 0.2, 0.0998, 0.0002])
    return pd.DataFrame({"g": g, "y": rng.integers(0, 2, n),
                         "s": np.round(rng.beta(2, 5, n) + np.where(g == "a", 0.05, 0.0), 3)})


def test_thresholds_cut_from_histograms_equal_the_row_level_audit(tmp_path, files):
    df = _scored()
    kw = dict(target="y", score="s", threshold=0.4, sensitive="g")
    path = fairscan.counts(df, histograms=40, **kw).write(tmp_path / "h.parquet")
    c = Counts.read(path)
    edges = c.meta["histograms"]["edges"]
    assert 0.4 in edges  # the threshold is an edge
    # every other edge is a quantile of the scores (numpy, the oracle) rounded down to 3 significant digits:
    # no more digits than that, at most the quantile, and within the rounding step below it
    from decimal import Decimal

    qs = np.quantile(df["s"], np.linspace(0, 1, 41)[1:-1])
    for e in (e for e in edges if e != 0.4):
        assert len(Decimal(repr(e)).normalize().as_tuple().digits) <= 3, e
        nearest = qs[np.argmin(np.where(qs >= e, qs - e, np.inf))]
        assert e <= nearest < e + 10.0 ** (Decimal(repr(e)).adjusted() - 2) + 1e-12, (e, nearest)
    for t in (edges[3], 0.4, edges[-2]):
        a = fairscan.audit(df, **{**kw, "threshold": t}, n_boot=100).to_dict()
        b = fairscan.audit(path, threshold=t, n_boot=100).to_dict()
        for part in PARTS:
            assert a[part] == b[part], (t, part)
    # between two edges: rounded up to the next one, and said so
    r = fairscan.audit(path, threshold=(edges[5] + edges[6]) / 2, n_boot=0)
    assert any(f"rounded up to the next histogram edge {edges[6]:g}" in w for w in r.meta["warnings"])
    # counted by DuckDB: the same bins (edges just below each value, so v >= edge exactly)
    df.to_parquet(files / "scored.parquet")
    duck = fairscan.counts(str(files / "scored.parquet"), histograms=edges, **kw)
    assert duck.meta["engine"] == "duckdb"
    for x, y in zip(duck.stats, c.stats, strict=True):
        assert (x.codes == y.codes).all() and (x.n == y.n).all()


def test_a_budget_cut_from_histograms_offers_at_least_the_budget():
    df = _scored()
    c = fairscan.counts(df, target="y", score="s", budget=0.2, sensitive="g", histograms=60, protect="none")
    cut, note = c.recut(budget=3000)
    offered = sum(int(st.n[:, [1, 3]].sum()) for st in cut.audited[:1])
    used = cut.decision.threshold
    assert offered >= 3000 and offered == int((df["s"] >= used).sum())  # everyone from the edge up
    assert f"{offered:,} offered" in note
    # the same cells as the row-level audit at that edge
    a = fairscan.audit(df, target="y", score="s", threshold=used, sensitive="g", n_boot=0).to_dict()
    b = fairscan.audit(c, budget=3000, n_boot=0).to_dict()
    assert a["groups"] == b["groups"]
    # a protected file withholds small groups' histograms, not everyone's: the same cut
    protected = fairscan.counts(df, target="y", score="s", budget=0.2, sensitive="g", histograms=60)
    assert protected.recut(budget=3000)[0].decision.threshold == used


def test_budget_shards_merge_through_their_histograms(tmp_path, cli):
    shards = _shards(20_000, 4)
    whole = pd.concat(shards, ignore_index=True)
    edges = [round(x, 2) for x in np.linspace(0.05, 0.95, 19)]
    kw = dict(target="y", score="score", budget=0.1, sensitive="region")
    paths = [fairscan.counts(s, protect="none", histograms=edges, **kw).write(tmp_path / f"p{i}.parquet")
             for i, s in enumerate(shards)]
    r = cli("counts", "merge", *map(str, paths), "--out", str(tmp_path / "m.parquet"))
    assert r.code == 0, r.err
    m = Counts.read(tmp_path / "m.parquet")
    used = m.decision.threshold
    assert any("budget 2,000 cut from the score histograms" in w for w in m.meta["warnings"])
    a = fairscan.audit(whole, target="y", score="score", threshold=used, sensitive="region", n_boot=50).to_dict()
    b = fairscan.audit(m, n_boot=50).to_dict()
    for part in PARTS:
        assert a[part] == b[part], part
    quantile = [fairscan.counts(s, protect="none", histograms=10, **kw) for s in shards[:2]]
    with pytest.raises(FairscanError, match=r"same histogram edges \(--histograms e1,e2"):
        Counts.merge(quantile)


def test_histograms_are_withheld_with_their_group_and_private_ones_add_up():
    df = _scored()
    c = fairscan.counts(df, target="y", score="s", threshold=0.4, sensitive="g", histograms=20)
    g, h = c.audited[0], c.histograms[0]
    tiny = g.labels.index("tiny")
    assert c.withheld[0][tiny] > 0
    in_tiny = (h.codes[:, 0] == g.codes[tiny, 0])
    assert (c.withheld[1][in_tiny] > 0).all() and h.n[in_tiny].sum() == 0
    p = fairscan.counts(df, target="y", score="s", threshold=0.4, sensitive="g", histograms=20, epsilon=1.0)
    g, h = p.audited[0], p.histograms[0]
    per_group = np.zeros_like(g.n)
    np.add.at(per_group, h.codes[:, 0], h.n)
    assert (per_group == g.n).all()  # the private histograms add up to the private cells


def test_the_explorer_from_a_counts_file_equals_the_audit_at_its_edges(tmp_path):
    from fairscan.explore import ThresholdExplorer

    df = _scored()
    path = fairscan.counts(df, target="y", score="s", threshold=0.4, sensitive="g", histograms=30).write(
        tmp_path / "h.parquet")
    ex = ThresholdExplorer.from_counts(path)
    assert ex.n_rows == len(df) and not ex.exact
    for t in ex.thresholds[1::7]:
        cut = ex.at_threshold(float(t)).groups.set_index("group")
        audit = fairscan.audit(df, target="y", score="s", threshold=float(t), sensitive="g", n_boot=0).groups
        for r in audit.itertuples():
            if r.suppressed:
                assert cut.loc[r.group, "suppressed"]
                continue
            assert cut.loc[r.group, "count"] == r.count
            assert cut.loc[r.group, "selection_rate"] == pytest.approx(r.selection_rate, abs=1e-15)
            assert cut.loc[r.group, "true_positive_rate"] == pytest.approx(r.true_positive_rate, abs=1e-15)
    with pytest.raises(FairscanError, match="--histograms N to explore"):
        ThresholdExplorer.from_counts(fairscan.counts(df, target="y", score="s", threshold=0.4, sensitive="g"))
    with pytest.raises(FairscanError, match="does not yet widen its intervals"):
        ThresholdExplorer.from_counts(fairscan.counts(df, target="y", score="s", threshold=0.4, sensitive="g",
                                                      histograms=10, epsilon=1.0))


# -- two decisions counted pair by pair: the model comparison from counts --------------------------
def _pair_scores(n: int = 20_000, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c", "d", "tiny"], n, p=[0.4, 0.3, 0.2, 0.0996, 0.0004])
    base = rng.normal(0, 1, n)
    return pd.DataFrame({"g": g, "y": (base + rng.normal(0, 1, n) > 0).astype(int),
                         "old": base + rng.normal(0, 0.3, n),
                         "new": base + rng.normal(0, 0.3, n) - np.where(g == "b", 0.3, 0.0)})


def test_compare_from_paired_counts_equals_the_row_level_comparison(tmp_path, cli):
    df = _pair_scores()
    kw = dict(target="y", score="old", budget=0.2, sensitive="g")
    path = fairscan.counts(df, paired="new", **kw).write(tmp_path / "pair.parquet")
    got = fairscan.compare(path, n_boot=300)
    want = fairscan.compare(df, scores=["old", "new"], budget=0.2, target="y", sensitive="g", n_boot=300)
    pd.testing.assert_frame_equal(got.changes, want.changes)
    pd.testing.assert_frame_equal(got.switches, want.switches)
    assert got.switches.set_index("group").loc["tiny", "suppressed"]  # withheld in the file, suppressed here
    assert [m["sha256"] for m in got.meta["models"]] == [m["sha256"] for m in want.meta["models"]]
    # the audit of the paired file is the audit of the first decision
    a = fairscan.audit(df, **kw, n_boot=100).to_dict()
    b = fairscan.audit(path, n_boot=100).to_dict()
    for part in PARTS:
        assert a[part] == b[part], part
    r = cli("compare", str(path), "--format", "json")
    assert r.code == 0 and json.loads(r.out)["changes"]
    one = fairscan.counts(df, **kw).write(tmp_path / "one.parquet")
    with pytest.raises(FairscanError, match="--paired-score COL"):
        fairscan.compare(one)
    with pytest.raises(FairscanError, match="holds its own two decisions"):
        fairscan.compare(path, scores=["old", "new"])


def test_paired_shards_merge_and_private_pairs_are_audited_not_compared():
    df = _pair_scores()
    kw = dict(target="y", score="old", threshold=0.5, sensitive="g", paired="new")
    halves = [df.iloc[:8000], df.iloc[8000:].reset_index(drop=True)]
    merged = Counts.merge([fairscan.counts(h, protect="none", **kw) for h in halves])
    whole = fairscan.counts(df, protect="none", **kw)
    for m, w in zip(merged.stats, whole.stats, strict=True):
        assert m.n.shape[1] == 8 and (m.codes == w.codes).all() and (m.n == w.n).all()
    private = fairscan.counts(df, epsilon=1.0, **kw)
    assert private.stats[0].n.shape[1] == 8 and fairscan.audit(private, n_boot=0).groups["count"].notna().any()
    with pytest.raises(FairscanError, match="differentially private counts is not supported yet"):
        fairscan.compare(private)


# -- subgroup discovery from the subgroups' counts -----------------------------------------------
def test_discovery_from_a_subgroups_counts_file_equals_discovery_of_the_rows(tmp_path, cli):
    from fairscan.datasets.synthetic import planted_subgroups

    df = planted_subgroups(100_000, seed=3)
    attrs = ["a1", "a2", "a3", "a4"]
    exact = fairscan.counts(df, prediction="offer", sensitive=attrs, subgroups=3, protect="none")
    want = fairscan.discover(df, prediction="offer", attributes=attrs, max_depth=3).to_dict()
    got = fairscan.discover(exact, max_depth=3).to_dict()
    assert got["subgroups"] == want["subgroups"] and got["overall"] == want["overall"]
    assert got["tested"] == want["tested"] and got["engine"] == "counts"
    # a file that withholds small subgroups: searched without them, and said so
    path = fairscan.counts(df, prediction="offer", sensitive=attrs, subgroups=3).write(tmp_path / "s.parquet")
    r = cli("discover", str(path), "--format", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert any("subgroups withheld in the file are not tested" in w for w in doc["warnings"])
    assert doc["overall"] == want["overall"]  # everyone's cells are in the file
    plain = fairscan.counts(df, prediction="offer", sensitive=attrs)
    with pytest.raises(FairscanError, match="--subgroups D"):
        fairscan.discover(plain)
    with pytest.raises(FairscanError, match="leave out attributes"):
        fairscan.discover(exact, attributes=["a1"])
