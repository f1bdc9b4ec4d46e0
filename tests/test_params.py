"""The one validator behind every face: the same wrong setting gets the same one-line error
from the Python API, the CLI, a review file and mitigation, before any data is read."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fairscan
from fairscan.errors import FairscanError
from fairscan.params import audit_params
from fairscan.policy import FOUR_FIFTHS, four_fifths_flags, impact_ratios

# each: audit keywords with one mistake, and the words the one-line error must carry
MISTAKES = [
    (dict(score="s", threshold=0.5, budget=10), "needs exactly one of --threshold T or --budget K"),
    (dict(prediction="p", threshold=0.5), "applies to a score column, not to a prediction column"),
    (dict(score="s", threshold=float("nan")), "must be a finite number"),
    (dict(score="s", budget="ten"), "is not a number"),
    (dict(prediction="p", favourable_decision=2), "favourable decision must be 0 or 1"),
    (dict(prediction="p", reference={"region": "north"}), "reference names attribute 'region'"),
    (dict(prediction="p", tolerances={"selection_rat": {"min_ratio": 0.8}}), "did you mean: selection_rate?"),
    (dict(prediction="p", min_group_size=-1), "min_group_size must be a whole number >= 0"),
    (dict(prediction="p", alpha=1.5), "confidence and alpha must be between 0 and 1"),
    (dict(prediction="p", dp_epsilon=0), "dp epsilon must be > 0"),
]


@pytest.mark.parametrize(("mistake", "words"), MISTAKES, ids=[w for _, w in MISTAKES])
def test_the_validator_names_the_mistake_before_reading_data(mistake: dict, words: str) -> None:
    kw = {"sensitive": "sex", **mistake}
    with pytest.raises(FairscanError) as e:
        audit_params(**kw)
    assert words in str(e.value) and "\n" not in str(e.value)
    # fairscan.audit is the same validator: it fails the same way, the data never opened
    with pytest.raises(FairscanError) as e2:
        fairscan.audit("no-such-file.parquet", **kw)
    assert str(e2.value) == str(e.value)


def test_no_attribute_is_one_error_everywhere(tmp_path: Path) -> None:
    with pytest.raises(FairscanError, match="name at least one sensitive attribute"):
        audit_params(prediction="p")
    with pytest.raises(FairscanError, match="name at least one sensitive attribute"):
        from fairscan.mitigation import compare

        compare(pd.DataFrame({"y": [0, 1]}), "y", [])


def test_cli_and_review_file_give_the_validators_error(tmp_path: Path, cli) -> None:
    """A threshold on a prediction column: the same sentence from the CLI and a review file,
    whose error also names the file; neither reads the data (it does not exist)."""
    with pytest.raises(FairscanError) as e:
        audit_params(sensitive="sex", prediction="p", threshold=0.5)
    expected = str(e.value)
    r = cli("audit", str(tmp_path / "missing.parquet"), "--prediction", "p", "--threshold", "0.5",
            "--sensitive", "sex", "--target", "y")
    assert r.code == 2 and r.err.strip().endswith(expected), r.err
    cfg = tmp_path / "review.yaml"
    cfg.write_text("name: t\ndata: missing.parquet\nlabel: y\nprediction: p\nsensitive: [sex]\n"
                   "decision: {threshold: 0.5}\n")
    from fairscan.review import run_review

    with pytest.raises(FairscanError) as e2:
        run_review(cfg, write=False)
    assert str(e2.value) == f"review file '{cfg.resolve()}': {expected}"
    r = cli("review", "run", str(cfg))
    assert r.code == 2 and expected in r.err


def test_python_dash_m_fairscan_is_the_command() -> None:
    r = subprocess.run([sys.executable, "-m", "fairscan", "--version"], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith(fairscan.__version__), r.stdout + r.stderr


def test_review_reference_to_an_unaudited_attribute_fails_at_load(tmp_path: Path) -> None:
    cfg = tmp_path / "review.yaml"
    cfg.write_text("name: t\ndata: missing.parquet\nlabel: y\nprediction: p\nsensitive: [sex]\n"
                   "reference: {sexe: female}\n")
    from fairscan.review.config import load_config

    with pytest.raises(FairscanError, match=r"reference names attribute 'sexe'.*did you mean: sex\?"):
        load_config(cfg)


def test_a_path_read_into_memory_reads_only_the_audited_columns(tmp_path: Path) -> None:
    """The engine choice is one rule (make_engine): a file audited in memory is read with only
    the columns the audit needs, so a wide file costs what its audited columns cost."""
    from fairscan.engines.choose import make_engine
    from fairscan.params import audit_params

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"sex": rng.choice(["f", "m"], 200), "p": rng.integers(0, 2, 200),
                       **{f"x{i}": rng.normal(size=200) for i in range(30)}})
    path = tmp_path / "wide.parquet"
    df.to_parquet(path)
    params = audit_params(prediction="p", sensitive="sex")
    eng = make_engine(str(path), "memory", columns=params.columns())
    assert sorted(eng.columns()) == ["p", "sex"]
    r = fairscan.audit(str(path), prediction="p", sensitive="sex", engine="memory", n_boot=0)
    expected = df.groupby("sex")["p"].mean()  # oracle: a pandas groupby
    got = r.groups.set_index("group")["selection_rate"]
    assert np.allclose(got.loc[expected.index], expected)
    with pytest.raises(FairscanError, match="--memory-limit and --threads set the DuckDB engine, not the memory"):
        make_engine(str(path), "memory", memory_limit="1GB")


def test_impact_ratios_and_the_four_fifths_line_by_hand() -> None:
    sr = np.array([[0.5, 0.36, np.nan, 0.4], [0.0, 0.0, 0.0, 0.0]])
    impact, top = impact_ratios(sr)
    assert top.tolist() == [0.5, 0.0]
    assert np.allclose(impact[0], [1.0, 0.72, np.nan, 0.8], equal_nan=True)
    assert np.isnan(impact[1]).all()  # nobody offered: no ratio
    assert four_fifths_flags(impact[0]) == [True, False, None, True]  # 0.8 itself meets the rule
    assert FOUR_FIFTHS == 0.8
    assert math.isnan(impact_ratios(np.array([np.nan, np.nan]))[1])


def test_the_facade_and_the_validator_take_the_same_keywords() -> None:
    """fairscan.audit passes every keyword to audit_params: the two signatures cannot drift."""
    import inspect

    facade = inspect.signature(fairscan.audit).parameters
    validator = inspect.signature(audit_params).parameters
    assert list(facade)[1:] == list(validator)
    for name, p in validator.items():
        assert facade[name].default == p.default, name


def test_one_policy_type_checks_its_numbers_for_every_analysis() -> None:
    from fairscan.policy import AuditPolicy

    assert AuditPolicy(n_boot=np.int64(5)).n_boot == 5
    for bad, words in ((dict(n_boot=1.5), "n_boot must be a whole number"),
                       (dict(suppress_below=True), "suppress_below must be a whole number"),
                       (dict(confidence=1.0), "confidence and alpha")):
        with pytest.raises(FairscanError, match=words):
            AuditPolicy(**bad)
    with pytest.raises(FairscanError, match="n_boot must be a whole number"):  # the recommendation audit too
        from fairscan.recs import audit_recs

        recs = pd.DataFrame({"user": [1], "item": [1], "rank": [1]})
        audit_recs(recs, pd.DataFrame({"user": [1], "g": ["a"]}), pd.DataFrame({"item": [1], "c": ["x"]}),
                   user_group="g", item_group="c", k=1, n_boot=2.5)
