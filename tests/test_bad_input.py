"""The catalogue of bad input: each a one-line error and exit code 2, never a traceback;
degenerate but usable input gives a result with explicit warnings, never a crash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import fairscan
from fairscan.errors import FairscanError


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
