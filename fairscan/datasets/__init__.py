"""Bundled real datasets (UCI, CC BY 4.0) for examples, tests and demos.

Five public datasets ship with fairscan as compressed Parquet files, each with a data card
(source, citation, licence, columns, target, sensitive and purchasing-power columns, caveats)::

    from fairscan import datasets

    datasets.list_datasets()            # ['bank', 'adult', 'coupon', 'online-retail', 'german']
    df = datasets.load("bank")          # pandas DataFrame, every original row
    info = datasets.card("bank")        # the data card as a dict
    train = datasets.load("adult", split="train")
    held_out = datasets.load("bank", split="holdout")  # the rows the reference models never saw

The files are built from the original UCI files by ``python -m fairscan.datasets._build``.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fairscan.errors import FairscanError, plain, suggest

__all__ = ["HOLDOUT", "NAMES", "ROW_ID", "card", "holdout_split", "list_datasets", "load"]

NAMES: tuple[str, ...] = ("bank", "adult", "coupon", "online-retail", "german")

# Dataset name -> split -> bundled Parquet file stems, concatenated in this order.
_FILES: dict[str, dict[str, tuple[str, ...]]] = {
    "bank": {"all": ("bank",)},
    "adult": {
        "train": ("adult-train",),
        "test": ("adult-test",),
        "all": ("adult-train", "adult-test"),
    },
    "coupon": {"all": ("coupon",)},
    "online-retail": {"all": ("online-retail",)},
    "german": {"all": ("german",)},
}


#: the share of rows every fairscan model is judged on (never trained on), and the column that
#: keeps each held-out row's position in the full dataset
HOLDOUT = 0.3
ROW_ID = "row_id"


def holdout_split(y: np.ndarray, test_size: float = HOLDOUT, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(training, held-out) row positions: the split, stratified by the outcome ``y``, that
    every fairscan model (reference models, presets, mitigations) is trained and judged on,
    so two models trained with the same seed share their held-out rows."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    train, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    return train, test


def list_datasets() -> list[str]:
    """Return the names of the bundled datasets."""
    return list(NAMES)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or name not in NAMES:
        raise FairscanError(
            f"unknown dataset {plain(name)}{suggest(str(name), NAMES)}; valid names: {', '.join(NAMES)}"
        )
    return name


def card(name: str) -> dict:
    """Return the data card of dataset ``name`` (a fresh dict parsed from its JSON file)."""
    _check_name(name)
    text = resources.files(__name__).joinpath("cards", f"{name}.json").read_text("utf-8")
    return json.loads(text)


def _read(stem: str) -> pa.Table:
    resource = resources.files(__name__).joinpath("data", f"{stem}.parquet")
    with resources.as_file(resource) as path:
        return pq.read_table(path)


def load(name: str, split: str = "all") -> pd.DataFrame:
    """Load dataset ``name`` as a pandas DataFrame.

    ``split``: ``"all"`` (every row); for ``"adult"`` also ``"train"`` (adult.data) and
    ``"test"`` (adult.test); for a dataset with an outcome (its card's ``target``) also
    ``"holdout"``: the 30% of rows the reference models are judged on and never trained on
    (:func:`holdout_split`, seed 0), in the order the models' ``scores.parquet`` lists them,
    with their position in the full dataset as a first column ``row_id``. Rows are otherwise
    in the original order; missing values are null (NaN / <NA>).
    """
    _check_name(name)
    splits = dict(_FILES[name])
    target = card(name).get("target")
    if target:
        splits["holdout"] = splits["all"]
    if split not in splits:
        valid = ", ".join(map(plain, splits))
        raise FairscanError(
            f"dataset {plain(name)} has no split {plain(split)}{suggest(str(split), splits)}; "
            f"valid splits: {valid}"
        )
    stems = splits[split]
    tables = [_read(stem) for stem in stems]
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    df = table.to_pandas()
    if split == "holdout":
        positive = card(name)["positive_label"]
        _, test = holdout_split((df[target] == positive).to_numpy())
        df = df.iloc[test].reset_index(drop=True)
        df.insert(0, ROW_ID, test)
    return df
