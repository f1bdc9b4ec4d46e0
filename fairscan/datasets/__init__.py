"""Bundled real datasets (UCI, CC BY 4.0) for examples, tests and demos.

Five public datasets ship with fairscan as compressed Parquet files, each with a data card
(source, citation, licence, columns, target, sensitive and purchasing-power columns, caveats)::

    from fairscan import datasets

    datasets.list_datasets()            # ['bank', 'adult', 'coupon', 'online-retail', 'german']
    df = datasets.load("bank")          # pandas DataFrame, every original row
    info = datasets.card("bank")        # the data card as a dict
    train = datasets.load("adult", split="train")

The files are built from the original UCI files by ``python -m fairscan.datasets._build``.
"""

from __future__ import annotations

import json
from importlib import resources

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fairscan.errors import FairscanError, plain, suggest

__all__ = ["NAMES", "card", "list_datasets", "load"]

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

    ``split`` is only meaningful for ``"adult"``: ``"train"`` (adult.data), ``"test"``
    (adult.test) or ``"all"`` (train rows, then test rows). Other datasets accept only
    ``"all"``. Rows are in the original order; missing values are null (NaN / <NA>).
    """
    _check_name(name)
    splits = _FILES[name]
    if split not in splits:
        valid = ", ".join(map(plain, splits))
        raise FairscanError(
            f"dataset {plain(name)} has no split {plain(split)}{suggest(str(split), splits)}; "
            f"valid splits: {valid}"
        )
    stems = splits[split]
    tables = [_read(stem) for stem in stems]
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    return table.to_pandas()
