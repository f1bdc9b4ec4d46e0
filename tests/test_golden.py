"""The JSON outputs of a fixed set of commands on the bundled data, held against recorded files.

A guard for restructuring: moving code must not move a number. Each case runs one command
(CLI in-process, or the Python call a face makes) and compares its JSON with
``tests/golden/<case>.json``: keys and strings exactly, numbers to 1e-9 (relative), nothing
but the run's date, fairscan's version and timings left out. Audits of files run in memory
and in DuckDB. A change that is meant to change an output re-records the files with
``FAIRSCAN_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and says why in its commit.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fairscan import datasets
from fairscan.cli import main

GOLDEN = Path(__file__).resolve().parent / "golden"
#: dates, versions, timings, and a history record's hash (it chains the record's date)
VOLATILE = {"created", "fairscan_version", "seconds", "elapsed_seconds", "hash", "prev_hash"}
UPDATE = os.environ.get("FAIRSCAN_UPDATE_GOLDEN") == "1"


def stable(doc: Any, folders: dict[str, str]) -> Any:
    """The document without what changes from run to run (dates, versions, timings), this run's
    temporary folders written as placeholders."""
    if isinstance(doc, dict):
        return {k: stable(v, folders) for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc, list):
        return [stable(v, folders) for v in doc]
    if isinstance(doc, str):
        for folder, name in folders.items():
            doc = doc.replace(folder, name)
    return doc


def differences(got: Any, want: Any, path: str = "$") -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        out = [f"{path}: keys {sorted(set(got) ^ set(want))}"] if set(got) != set(want) else []
        return out + [d for k in want if k in got for d in differences(got[k], want[k], f"{path}.{k}")]
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return [f"{path}: {len(got)} items, recorded {len(want)}"]
        return [d for i, (g, w) in enumerate(zip(got, want, strict=True)) for d in differences(g, w, f"{path}[{i}]")]
    numbers = (int, float)
    if isinstance(want, numbers) and isinstance(got, numbers) and not isinstance(want, bool) \
            and not isinstance(got, bool):
        return [] if math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12) else [f"{path}: {got} != {want}"]
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]


def cli_json(tmp: Path, *args: str) -> dict:
    out = tmp / "out.json"
    code = main([*args, "--format", "json", "--out", str(out)])
    assert code == 0, args
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Bundled data as a user's files: adult with a decision and census weights; bank."""
    d = tmp_path_factory.mktemp("golden-data")
    adult = datasets.load("adult")
    adult = adult.assign(offer=(adult["hours_per_week"] >= 45).astype(int))
    adult.to_parquet(d / "adult.parquet")
    datasets.load("bank").to_parquet(d / "bank.parquet")
    retail = datasets.load("online-retail").dropna(subset=["CustomerID"]).head(60_000)
    retail = retail.assign(amount=retail["Quantity"] * retail["UnitPrice"],
                           score=np.random.default_rng(0).random(len(retail)))
    retail[["CustomerID", "Country", "amount", "score"]].to_parquet(d / "retail.parquet")
    return {"adult": d / "adult.parquet", "bank": d / "bank.parquet", "retail": d / "retail.parquet", "dir": d}


def audit_bank_budget(tmp: Path, files: dict) -> dict:
    return cli_json(tmp, "audit", "dataset:bank", "--score", "balance", "--budget", "0.2", "--sensitive", "job",
                    "--tiers", "age=24,59", "--tiers", "balance=4", "--n-boot", "200")


def audit_bank_threshold_intersect(tmp: Path, files: dict) -> dict:
    return cli_json(tmp, "audit", "dataset:bank", "--score", "balance", "--threshold", "1000", "--sensitive",
                    "marital", "--tiers", "age=3", "--intersect", "--reference", "marital=married",
                    "--n-boot", "200")


def audit_file(engine: str) -> Callable[[Path, dict], dict]:
    def run(tmp: Path, files: dict) -> dict:
        return cli_json(tmp, "audit", str(files["adult"]), "--target", "income", "--positive-label", ">50K",
                        "--prediction", "offer",
                        "--weights", "fnlwgt", "--sensitive", "sex", "--sensitive", "race", "--tiers", "age=4",
                        "--intersect", "--n-boot", "200", "--engine", engine)
    return run


def audit_file_budget(engine: str) -> Callable[[Path, dict], dict]:
    def run(tmp: Path, files: dict) -> dict:
        return cli_json(tmp, "audit", str(files["bank"]), "--target", "y", "--score", "duration", "--budget",
                        "0.1", "--sensitive", "job", "--tiers", "balance=4", "--n-boot", "200", "--engine", engine)
    return run


def audit_inferred_spend(tmp: Path, files: dict) -> dict:
    return cli_json(tmp, "audit", str(files["retail"]), "--score", "score", "--budget", "0.3", "--sensitive",
                    "Country", "--infer-tier", "spend:CustomerID,amount,4", "--n-boot", "200")


def recs_coupon(tmp: Path, files: dict) -> dict:
    from fairscan.explore import coupon_recs_example
    from fairscan.recs import audit_recs

    ex = coupon_recs_example(2)
    res = audit_recs(ex["recs"], ex["users"], ex["items"], user_group="income", item_group="coupon", k=2,
                     truth=ex["truth"], n_boot=200)
    return json.loads(res.to_json())


def mitigate_german(tmp: Path, files: dict) -> dict:
    return cli_json(tmp, "mitigate", "dataset:german", "--target", "credit", "--positive-label", "1",
                    "--sensitive", "personal_status_and_sex", "--method", "budget", "--budget", "0.3",
                    "--no-sweep")


def review_bank(tmp: Path, files: dict) -> dict:
    cfg = tmp / "review.yaml"
    shutil.copy(files["bank"], tmp / "bank.parquet")
    cfg.write_text(textwrap.dedent("""\
        name: golden
        data: bank.parquet
        score: duration
        label: y
        sensitive: [job]
        tiers: {balance: 4}
        decision: {budget: 0.2}
        policy:
          n_boot: 200
          metrics:
            selection_rate: {min_ratio: 0.8}
        outputs: {dir: out, formats: [json]}
        """))
    assert main(["review", "run", str(cfg)]) in (0, 1)
    return json.loads((tmp / "out" / "golden.json").read_text())


CASES: dict[str, Callable[[Path, dict], dict]] = {
    "audit_bank_budget": audit_bank_budget,
    "audit_bank_threshold_intersect": audit_bank_threshold_intersect,
    "audit_file_prediction_weights_memory": audit_file("memory"),
    "audit_file_prediction_weights_duckdb": audit_file("duckdb"),
    "audit_file_budget_memory": audit_file_budget("memory"),
    "audit_file_budget_duckdb": audit_file_budget("duckdb"),
    "audit_inferred_spend": audit_inferred_spend,
    "recs_coupon": recs_coupon,
    "mitigate_german": mitigate_german,
    "review_bank": review_bank,
}


@pytest.mark.parametrize("case", list(CASES))
def test_output_is_as_recorded(case, files, tmp_path):
    got = stable(json.loads(json.dumps(CASES[case](tmp_path, files))),
                 {str(files["dir"]): "<data>", str(tmp_path): "<tmp>"})
    path = GOLDEN / f"{case}.json"
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"no recorded output {path.name}: record it with FAIRSCAN_UPDATE_GOLDEN=1")
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    diff = differences(got, json.loads(path.read_text()))
    assert not diff, f"{case}: {len(diff)} differences, first: {diff[:8]}"
