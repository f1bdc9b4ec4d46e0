"""The catalogue of bad input: each a one-line error and exit code 2, never a traceback;
degenerate but usable input gives a result with explicit warnings, never a crash."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fairscan
from fairscan.errors import FairscanError
from fairscan.groups.proxies import detect_proxies
from fairscan.mitigation.rerank import rerank
from fairscan.modeling import train_targeting
from fairscan.policy import parse_tolerances
from fairscan.recs import audit_recs
from tests.conftest import assert_plain_message


@pytest.fixture
def frame():
    rng = np.random.default_rng(7)
    n = 400
    return pd.DataFrame({
        "g": rng.choice(["a", "b"], n),
        "y": rng.integers(0, 2, n),
        "s": rng.random(n),
        "w": rng.random(n) + 0.5,
    })


def _one_line_error(cli, *args) -> str:
    r = cli("audit", *args)
    assert r.code == 2, (r.out, r.err)
    assert r.err.startswith("fairscan: error: ") and r.err.count("\n") == 1
    assert "Traceback" not in r.err and r.out == ""
    assert_plain_message(r.err.removesuffix("\n"))
    return r.err


def test_empty_file(cli, tmp_path):
    p = tmp_path / "empty.csv"
    p.write_bytes(b"")
    assert "is empty" in _one_line_error(cli, str(p), "--prediction", "y", "--sensitive", "g")


def test_header_only(cli, tmp_path):
    p = tmp_path / "header.csv"
    p.write_text("g,y,s\n")
    assert "header but no rows" in _one_line_error(cli, str(p), "--prediction", "y", "--sensitive", "g")
    q = tmp_path / "header.parquet"
    pd.DataFrame({"g": pd.Series([], dtype=str), "y": pd.Series([], dtype=int)}).to_parquet(q)
    assert "no rows" in _one_line_error(cli, str(q), "--prediction", "y", "--sensitive", "g")


def test_unsupported_type(cli, tmp_path):
    p = tmp_path / "data.json"
    p.write_text("{}")
    assert "unsupported type '.json'" in _one_line_error(cli, str(p), "--prediction", "y", "--sensitive", "g")


def test_semicolon_csv_is_sniffed_and_wrong_separator_is_named(cli, tmp_path, frame):
    p = tmp_path / "semi.csv"
    frame.to_csv(p, sep=";", index=False)
    r = cli("audit", str(p), "--target", "y", "--score", "s", "--threshold", "0.5", "--sensitive", "g")
    assert r.code == 0, r.err
    # a separator fairscan does not read: the file arrives as one column
    q = tmp_path / "colon.csv"
    frame.to_csv(q, sep=":", index=False)
    err = _one_line_error(cli, str(q), "--prediction", "y", "--sensitive", "g")
    assert "single column 'g:y:s:w'" in err and "separator looks wrong" in err


def test_non_utf8_csv(cli, tmp_path):
    p = tmp_path / "latin1.csv"
    p.write_bytes("g,y\nJosé,1\nZoë,0\n".encode("latin-1"))
    assert "not UTF-8" in _one_line_error(cli, str(p), "--prediction", "y", "--sensitive", "g")


def test_truncated_parquet(cli, tmp_path, frame):
    p = tmp_path / "full.parquet"
    frame.to_parquet(p)
    data = p.read_bytes()
    q = tmp_path / "truncated.parquet"
    q.write_bytes(data[: len(data) // 2])
    assert "not a readable Parquet file" in _one_line_error(cli, str(q), "--prediction", "y", "--sensitive", "g")


def test_missing_and_misspelled_columns(cli, tmp_path, frame):
    p = tmp_path / "f.parquet"
    frame.to_parquet(p)
    assert "did you mean: g?" in _one_line_error(cli, str(p), "--prediction", "y", "--sensitive", "gg")
    assert "did you mean: s?" in _one_line_error(cli, str(p), "--target", "y", "--score", "ss",
                                                 "--threshold", "0.5", "--sensitive", "g")
    assert "did you mean: w?" in _one_line_error(cli, str(p), "--prediction", "y", "--sensitive", "g",
                                                 "--weights", "ww")


def test_label_not_binary_needs_positive_label(cli, tmp_path, frame):
    p = tmp_path / "f.parquet"
    frame.assign(grade=np.where(frame["y"] == 1, "A", "B")).to_parquet(p)
    err = _one_line_error(cli, str(p), "--target", "grade", "--score", "s", "--threshold", "0.5", "--sensitive", "g")
    assert "--positive-label" in err and "'A'" in err
    frame.assign(grade=np.arange(len(frame)) % 3).to_parquet(p)
    assert "not binary" in _one_line_error(cli, str(p), "--target", "grade", "--score", "s", "--threshold", "0.5",
                                           "--sensitive", "g")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_scores(cli, tmp_path, frame, bad):
    p = tmp_path / "f.parquet"
    frame.assign(s=frame["s"].where(frame.index != 7, bad)).to_parquet(p)
    err = _one_line_error(cli, str(p), "--score", "s", "--threshold", "0.5", "--sensitive", "g")
    assert "1 missing, NaN or infinite values" in err


def test_threshold_outside_score_range_and_budget_too_large(cli, tmp_path, frame):
    p = tmp_path / "f.parquet"
    frame.to_parquet(p)
    assert "above every score" in _one_line_error(cli, str(p), "--score", "s", "--threshold", "1.5", "--sensitive", "g")
    assert "below every score" in _one_line_error(cli, str(p), "--score", "s", "--threshold", "-1", "--sensitive", "g")
    assert "larger than the data (400 rows)" in _one_line_error(cli, str(p), "--score", "s", "--budget", "401",
                                                                "--sensitive", "g")
    assert "must be in (0, 1]" in _one_line_error(cli, str(p), "--score", "s", "--budget", "1.5", "--sensitive", "g")


def test_negative_weights(cli, tmp_path, frame):
    p = tmp_path / "f.parquet"
    frame.assign(w=frame["w"] - 1).to_parquet(p)
    err = _one_line_error(cli, str(p), "--prediction", "y", "--sensitive", "g", "--weights", "w")
    assert "negative values" in err and "weights must be >= 0" in err


def test_missing_labels_are_an_error_not_a_silent_drop(cli, tmp_path, frame):
    p = tmp_path / "f.parquet"
    frame.assign(y=frame["y"].astype(float).where(frame.index > 2)).to_parquet(p)
    err = _one_line_error(cli, str(p), "--target", "y", "--score", "s", "--threshold", "0.5", "--sensitive", "g")
    assert "3 missing values" in err


def test_a_million_distinct_values_is_refused_with_advice():
    n = 1_000_000
    df = pd.DataFrame({"id": np.arange(n).astype(str), "p": np.arange(n) % 2, "num": np.arange(n) * 1.5})
    with pytest.raises(FairscanError, match="too many to audit as groups: group its values"):
        fairscan.audit(df, prediction="p", sensitive="id")
    with pytest.raises(FairscanError, match=r"--tiers num=4"):
        fairscan.audit(df, prediction="p", sensitive="num")


def test_degenerate_input_gives_warnings_not_crashes(frame):
    # a one-row group, constant predictions, a group with no positives
    # two one-row groups: each suppressed, and together they need no complementary partner
    df = pd.concat([frame, pd.DataFrame({"g": ["solo", "duo"], "y": [0, 1], "s": [0.3, 0.6], "w": [1.0, 1.0]})],
                   ignore_index=True)
    df["const"] = 1
    df.loc[df["g"] == "b", "y"] = 0
    r = fairscan.audit(df, target="y", prediction="const", sensitive="g", reference="a", n_boot=100)
    g = r.groups.set_index("group")
    assert bool(g.loc["solo", "suppressed"]) and pd.isna(g.loc["solo", "selection_rate"])
    assert pd.isna(g.loc["b", "true_positive_rate"])  # no positives: undefined, not 0
    assert g.loc["b", "false_positive_rate"] == 1.0
    tpr_b = r.findings[(r.findings["group"] == "b") & (r.findings["metric"] == "true_positive_rate")]
    assert tpr_b["verdict"].tolist() == ["insufficient"]
    assert any("suppressed" in w for w in r.meta["warnings"])
    r2 = fairscan.audit(df, target="y", score="s", threshold=float(df["s"].min()), sensitive="g", n_boot=0)
    assert any("constant" in w for w in r2.meta["warnings"])


# -- the catalogue of refused values: CLI and Python, numeric keys and labels --------------------------
# Data read from files holds numpy scalars (np.int64(15)); every message must show them plainly.
N_USERS = 40
INT_USERS = pd.DataFrame({"user": np.arange(1, N_USERS + 1), "tier": np.arange(N_USERS) % 2 + 1})
INT_ITEMS = pd.DataFrame({"item": np.arange(4684, 4694), "cls": np.arange(10) % 2 + 7})
INT_RECS = pd.DataFrame({"user": np.repeat(INT_USERS["user"].to_numpy(), 3),
                         "item": np.tile([4684, 4685, 4686], N_USERS), "rank": np.tile([1, 2, 3], N_USERS)})
_rng = np.random.default_rng(11)
SCORED = pd.DataFrame({"g": np.arange(200) % 2 + 1, "y": _rng.integers(0, 2, 200), "y12": _rng.integers(1, 3, 200),
                       "p": _rng.integers(0, 2, 200), "s": _rng.random(200), "x": _rng.random(200)})


def _add(frame: pd.DataFrame, **row) -> pd.DataFrame:
    return pd.concat([frame, pd.DataFrame({k: [v] for k, v in row.items()})], ignore_index=True)


@dataclass(frozen=True)
class Bad:
    """A bad input: the files it needs (written as Parquet), the CLI arguments and the Python call
    that must both refuse it with a plain one-line message containing ``expect`` (or ``api_expect``)."""

    name: str
    argv: list[str] | None
    call: Callable[[Path], object] | None
    expect: str
    files: dict[str, pd.DataFrame] = field(default_factory=dict)
    api_expect: str | None = None


def _recs_files(recs=INT_RECS, users=INT_USERS, items=INT_ITEMS) -> dict[str, pd.DataFrame]:
    return {"recs": recs, "users": users, "items": items}


RECS_ARGV = ["recs", "{d}/recs.parquet", "--users", "{d}/users.parquet", "--items", "{d}/items.parquet",
             "--user-group", "tier", "--item-group", "cls", "--n-boot", "0"]
AUDIT_ARGV = ["audit", "{d}/data.parquet", "--sensitive", "g"]
RERANK_ARGV = ["rerank", "{d}/recs.parquet", "--items", "{d}/items.parquet", "--item-group", "cls",
               "--out", "{d}/new.csv"]


def _recs(d: Path, **kw) -> object:
    return audit_recs(pd.read_parquet(d / "recs.parquet"), pd.read_parquet(d / "users.parquet"),
                      pd.read_parquet(d / "items.parquet"), user_group="tier", item_group="cls", n_boot=0, **kw)


def _audit(d: Path, **kw) -> object:
    return fairscan.audit(pd.read_parquet(d / "data.parquet"), sensitive="g", **kw)


def _rerank(d: Path, **kw) -> object:
    kw = {"method": "calibrated", "strength": 0.5, **kw}
    return rerank(pd.read_parquet(d / "recs.parquet"), None, pd.read_parquet(d / "items.parquet"),
                  item_group="cls", **kw)


CATALOGUE = [
    Bad("duplicate (user, item) pair", RECS_ARGV, _recs, "duplicate (user, item) pair(s), e.g. user 15 item 4684",
        _recs_files(_add(INT_RECS, user=15, item=4684, rank=4))),
    Bad("duplicate (user, rank) pair", RECS_ARGV, _recs, "duplicate (user, rank) pair(s), e.g. user 15 rank 1",
        _recs_files(_add(INT_RECS, user=15, item=4690, rank=1))),
    Bad("duplicate user", RECS_ARGV, _recs, "duplicate 'user' value(s), e.g. 15;",
        _recs_files(users=_add(INT_USERS, user=15, tier=2))),
    Bad("duplicate item", RECS_ARGV, _recs, "duplicate 'item' value(s), e.g. 4684;",
        _recs_files(items=_add(INT_ITEMS, item=4684, cls=8))),
    Bad("rank not whole", RECS_ARGV, _recs, "not whole numbers, e.g. 1.5;",
        _recs_files(INT_RECS.assign(rank=INT_RECS["rank"].astype(float).where(INT_RECS.index != 4, 1.5)))),
    Bad("recs k = 0", [*RECS_ARGV, "--k", "0"], lambda d: _recs(d, k=np.int64(0)),
        "k must be a whole number >= 1, got 0", _recs_files()),
    Bad("recs unknown integer reference", [*RECS_ARGV, "--reference", "9"], lambda d: _recs(d, reference=np.int64(9)),
        "reference user group '9' not found", _recs_files()),
    Bad("integer labels without a positive one", [*AUDIT_ARGV, "--target", "y12", "--prediction", "p"],
        lambda d: _audit(d, target="y12", prediction="p"), "has values 1, 2: say which one is positive",
        {"data": SCORED}),
    Bad("absent positive label", [*AUDIT_ARGV, "--target", "y", "--prediction", "p", "--positive-label", "7"],
        lambda d: _audit(d, target="y", prediction="p", positive_label=np.int64(7)), "has no value '7'",
        {"data": SCORED}, api_expect="has no value 7; its values are: 0, 1"),
    Bad("unknown integer reference group", [*AUDIT_ARGV, "--prediction", "p", "--reference", "g=9"],
        lambda d: _audit(d, prediction="p", reference={"g": "9"}), "reference group '9' not found in attribute 'g'",
        {"data": SCORED}),
    Bad("threshold NaN", [*AUDIT_ARGV, "--score", "s", "--threshold", "nan"],
        lambda d: _audit(d, score="s", threshold=np.float64("nan")), "threshold nan must be a finite number",
        {"data": SCORED}),
    Bad("negative minimum group size", [*AUDIT_ARGV, "--prediction", "p", "--min-group-size", "-1"],
        lambda d: _audit(d, prediction="p", min_group_size=np.int64(-1)),
        "min_group_size must be a whole number >= 0, got -1", {"data": SCORED}),
    Bad("favourable decision 2", [*AUDIT_ARGV, "--prediction", "p", "--favourable-decision", "2"],
        lambda d: _audit(d, prediction="p", favourable_decision=np.int64(2)), "invalid choice: 2",
        {"data": SCORED}, api_expect="favourable decision must be 0 or 1, got 2"),
    Bad("cut points not numbers", ["audit", "{d}/data.parquet", "--prediction", "p", "--tiers", "s=0.5,x"],
        lambda d: fairscan.audit(pd.read_parquet(d / "data.parquet"), prediction="p",
                                 tiers={"s": [np.float64(0.5), "x"]}),
        "'s=0.5,x'", {"data": SCORED}, api_expect="cut points must be numbers, got [0.5, 'x']"),
    Bad("tolerance not a number", None, lambda d: parse_tolerances({"selection_rate": {"min_ratio": np.str_("a")}}),
        "min_ratio must be a number, got 'a'"),
    Bad("tolerance out of range", None,
        lambda d: parse_tolerances({"selection_rate": {"min_ratio": np.float64(2.5)}}), "got min_ratio=2.5"),
    Bad("absent positive label for training", ["train", "targeting", "{d}/data.parquet", "--target", "y", "--positive-label", "5",
                                               "--out", "{d}/model"],
        lambda d: train_targeting(pd.read_parquet(d / "data.parquet"), "y", np.int64(5)),
        "label column 'y' has no value '5'; its values are: 0, 1", {"data": SCORED},
        api_expect="no positive rows for positive label 5;"),
    Bad("absent positive group of a proxy audit", None,
        lambda d: detect_proxies(pd.read_parquet(d / "data.parquet"), "g", ["x"], positive=np.int64(9)),
        "positive group 9 does not occur in 'g'; values: 1, 2", {"data": SCORED}),
    Bad("proxy cv 1", None, lambda d: detect_proxies(pd.read_parquet(d / "data.parquet"), "g", ["x"], cv=np.int64(1)),
        "got 1", {"data": SCORED}),
    Bad("rerank strength 2", [*RERANK_ARGV, "--method", "calibrated", "--strength", "2"],
        lambda d: _rerank(d, strength=np.float64(2)), "strength must be a number in [0, 1], got 2.0",
        _recs_files()),
    Bad("rerank k 0", [*RERANK_ARGV, "--method", "calibrated", "--strength", "0.5", "--k", "0"],
        lambda d: _rerank(d, k=np.int64(0)), "k must be a whole number >= 1, got 0", _recs_files()),
    Bad("rerank duplicate integer item", [*RERANK_ARGV, "--method", "calibrated", "--strength", "0.5"],
        _rerank, "4684", _recs_files(items=_add(INT_ITEMS, item=4684, cls=8))),
    Bad("rerank target share a numpy number", None,
        lambda d: _rerank(d, target=np.float64(0.5)), "got 0.5", _recs_files()),
    Bad("floor alpha 1", None,
        lambda d: _rerank(d, method="floor", protected_item_group="7", alpha=np.float64(1.0)),
        "alpha must be between 0 and 1, got 1.0", _recs_files()),
]


@pytest.mark.parametrize("bad", CATALOGUE, ids=[b.name for b in CATALOGUE])
def test_catalogue_messages_are_plain(cli, tmp_path, bad):
    """Each bad input is refused by the CLI (exit 2) and by the Python API with the same plain
    one-line message: the value as the user wrote it (15), never numpy's repr (np.int64(15))."""
    for name, frame in bad.files.items():
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    if bad.argv is not None:
        r = cli(*(a.replace("{d}", str(tmp_path)) for a in bad.argv))
        assert r.code == 2, (r.out, r.err)
        assert r.err.startswith("fairscan: error: ") and r.err.endswith("\n"), r.err
        assert_plain_message(r.err.removesuffix("\n"))
        assert bad.expect in r.err, r.err
    if bad.call is not None:
        with pytest.raises(FairscanError) as info:
            bad.call(tmp_path)
        assert_plain_message(str(info.value))
        assert (bad.api_expect or bad.expect) in str(info.value), str(info.value)
