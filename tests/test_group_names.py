"""Naming a group: the exact label, a quantile tier's short name (Q4) or range, in the CLI,
the Python API, review files, recommendation audits and re-ranking. Expected labels and
counts come from numpy quantiles and the labels written out by hand."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest

import fairscan
from fairscan.errors import FairscanError
from fairscan.groups import match_group

BALANCE = ["Q1 (..72]", "Q2 (72..448]", "Q3 (448..1428]", "Q4 (1428..]", "unknown"]


@pytest.mark.parametrize("name", ["Q4 (1428..]", "Q4", "q4", " Q4 ", "(1428..]", "  Q4 (1428..] "])
def test_a_tier_answers_to_its_label_short_name_and_range(name):
    assert match_group(name, BALANCE) == "Q4 (1428..]"


def test_cut_point_tiers_categories_and_numbers():
    ages = ["(..24]", "(24..59]", "(59..]"]
    assert match_group("(24..59]", ages) == "(24..59]"
    assert match_group(" (24..59] ", ages) == "(24..59]"
    assert match_group("Yes", ["no", "yes"]) == "yes"  # case only when it leaves one group
    assert match_group("Q4", ["Q4", "Q4 (1428..]"]) == "Q4"  # an exact label wins over a short name
    assert match_group(1.0, ["0", "1"]) == "1"
    assert match_group(np.int64(0), ["0", "1"]) == "0"


def test_unknown_and_ambiguous_names_are_one_line_errors():
    with pytest.raises(FairscanError) as e:
        match_group("Q7", BALANCE, what="reference group", where="attribute 'balance'")
    msg = str(e.value)
    assert msg == ("reference group 'Q7' not found in attribute 'balance'; groups are: Q1 (..72], Q2 (72..448], "
                   "Q3 (448..1428], Q4 (1428..], unknown")
    with pytest.raises(FairscanError, match=r"'blue collar' not found \(did you mean: blue-collar\?\)"):
        match_group("blue collar", ["admin.", "blue-collar"])
    with pytest.raises(FairscanError) as e:
        match_group("yes", ["Yes", "YES", "no"])
    assert str(e.value) == "group 'yes' is ambiguous: it matches Yes, YES; give the exact label"
    many = [f"g{i:02d}" for i in range(20)]
    with pytest.raises(FairscanError, match=r"groups are: g00, .*, g11 and 8 more$"):
        match_group("zz", many)


def test_intersection_groups_are_named_part_by_part():
    labels = ["(..24] x Q1 (..72]", "(24..59] x Q1 (..72]", "(24..59] x Q4 (1428..]"]
    assert match_group("(24..59] x Q4", labels) == "(24..59] x Q4 (1428..]"
    assert match_group("(24..59] x Q4 (1428..]", labels) == "(24..59] x Q4 (1428..]"
    with pytest.raises(FairscanError, match=r"part 2 'Q9' matches no group among Q1 \(..72\], Q4 \(1428..\]"):
        match_group("(24..59] x Q9", labels)
    with pytest.raises(FairscanError, match=r"the group '\(..24\] x Q4 \(1428..\]' has no rows"):
        match_group("(..24] x Q4", labels)


@pytest.fixture(scope="module")
def q4(bank) -> tuple[str, int]:
    """Bank's balance Q4 label and row count, from numpy's quantile (pandas.qcut's edges)."""
    q75 = float(np.quantile(bank["balance"].to_numpy(dtype=float), 0.75))
    assert q75.is_integer()
    return f"Q4 ({int(q75)}..]", int((bank["balance"] > q75).sum())


def _reference_row(groups: list[dict], attribute: str) -> dict:
    (row,) = [g for g in groups if g["attribute"] == attribute and g["reference"]]
    return row


@pytest.mark.parametrize("spelling", ["Q4", "full"])
def test_cli_reference_by_short_name_or_full_label(cli, q4, spelling):
    label, count = q4
    r = cli("audit", "dataset:bank", "--prediction", "y", "--tiers", "balance=4", "--reference",
            f"balance={label if spelling == 'full' else 'Q4'}", "--n-boot", "0", "--format", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["reference"] == {"balance": label}
    row = _reference_row(doc["groups"], "balance")
    assert (row["group"], row["count"]) == (label, count)
    assert {d["reference"] for d in doc["disparities"] if d["attribute"] == "balance"} == {label}


def test_cli_unknown_reference_lists_the_groups(cli):
    r = cli("audit", "dataset:bank", "--prediction", "y", "--tiers", "balance=4", "--reference", "balance=Q5",
            "--n-boot", "0")
    assert r.code == 2
    assert "reference group 'Q5' not found in attribute 'balance'; groups are: Q1 (" in r.err
    assert r.err.count("\n") == 1 and "Traceback" not in r.err


def test_python_reference_by_short_name_and_for_an_intersection(bank, q4):
    label, count = q4
    age = bank["age"].to_numpy()
    kw = dict(prediction="y", tiers={"age": [24, 59], "balance": 4}, n_boot=0)
    r = fairscan.audit(bank, **kw, reference={"balance": "Q4"})
    assert r.meta["reference"]["balance"] == label
    g = r.groups[r.groups["reference"] & (r.groups["attribute"] == "balance")]
    assert g["group"].tolist() == [label] and g["count"].tolist() == [count]
    assert fairscan.audit(bank, prediction="y", tiers={"balance": 4}, reference="q4", n_boot=0
                          ).meta["reference"] == {"balance": label}
    cross = fairscan.audit(bank, **kw, intersect=True, reference={"age x balance": "(24..59] x Q4"})
    want = f"(24..59] x {label}"
    assert cross.meta["reference"]["age x balance"] == want
    g = cross.groups[cross.groups["reference"] & (cross.groups["attribute"] == "age x balance")]
    q75 = float(np.quantile(bank["balance"].to_numpy(dtype=float), 0.75))
    assert g["group"].tolist() == [want]
    assert g["count"].tolist() == [int(((age > 24) & (age <= 59) & (bank["balance"] > q75)).sum())]


def test_python_ambiguous_reference_is_an_error():
    df = pd.DataFrame({"g": ["Yes", "YES", "no"] * 20, "p": [1, 0, 1, 0, 0, 1] * 10})
    with pytest.raises(FairscanError, match="reference group 'yes' in attribute 'g' is ambiguous: it matches "
                                            "YES, Yes; give the exact label"):  # labels sorted
        fairscan.audit(df, prediction="p", sensitive="g", reference={"g": "yes"}, n_boot=0)
    r = fairscan.audit(df, prediction="p", sensitive="g", reference={"g": "YES"}, n_boot=0, min_group_size=0)
    assert r.meta["reference"] == {"g": "YES"}


def test_review_file_names_a_tier_by_its_short_name(tmp_path, cli):
    rng = np.random.default_rng(3)
    n = 3000
    df = pd.DataFrame({"income": rng.integers(0, 100_000, n), "y": rng.integers(0, 2, n), "score": rng.random(n)})
    df.to_parquet(tmp_path / "scores.parquet")
    (tmp_path / "review.yaml").write_text(textwrap.dedent("""\
        name: tiers
        data: scores.parquet
        score: score
        label: y
        tiers: {income: 4}
        reference: {income: Q1}
        decision: {threshold: 0.5}
        policy: {n_boot: 0}
        outputs: {dir: out, formats: [json]}
        """))
    r = cli("review", "run", str(tmp_path / "review.yaml"))
    assert r.code in (0, 1), r.err
    doc = json.loads((tmp_path / "out" / "tiers.json").read_text())
    q25 = float(np.quantile(df["income"].to_numpy(dtype=float), 0.25))
    row = _reference_row(doc["groups"], "income")
    assert row["group"].startswith("Q1 (..") and row["count"] == int((df["income"] <= q25).sum())
    assert doc["reference"]["income"] == row["group"]


def test_recs_reference_and_rerank_groups_by_short_name():
    from fairscan.mitigation import rerank as RR
    from fairscan.recs import audit_recs

    rng = np.random.default_rng(5)
    users = pd.DataFrame({"user": [f"u{i}" for i in range(200)],
                          "power": np.repeat(["Q1 (..10]", "Q2 (10..50]", "Q3 (50..]"], [50, 70, 80])})
    items = pd.DataFrame({"item": [f"i{j}" for j in range(30)], "price": ["cheap", "dear"] * 15})
    recs = pd.DataFrame([(u, f"i{j}", r + 1) for u in users["user"]
                         for r, j in enumerate(rng.choice(30, 5, replace=False))], columns=["user", "item", "rank"])
    res = audit_recs(recs, users, items, user_group="power", item_group="price", reference="q2", n_boot=0)
    assert res.meta["reference"] == "Q2 (10..50]"
    with pytest.raises(FairscanError, match=r"reference user group 'Q4' not found; groups are: Q1 \(..10\]"):
        audit_recs(recs, users, items, user_group="power", item_group="price", reference="Q4", n_boot=0)
    cand = recs.assign(score=1.0 / recs["rank"])
    groups = items.set_index("item")["price"]
    out = RR.exposure_floor_rerank(cand, groups, users, "power", k=5, protected_item_group="Dear", strength=0.5,
                                   apply_to=["Q1"])
    assert out.attrs["protected_item_group"] == "dear"
    base = recs.set_index(["user", "rank"])["item"]
    got = out.set_index(["user", "rank"])["item"]
    others = users.loc[users["power"] != "Q1 (..10]", "user"]
    assert (got.loc[others] == base.loc[others]).all()  # only Q1's lists may change
    assert out.attrs["users_reranked"] == 50
