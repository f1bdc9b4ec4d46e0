"""The data hash: one definition, the same value from the memory and DuckDB engines for the
same rows in the same order, whatever the chunk size or the file format.

What it hashes (``DEFINITION``): the columns the audit reads — the audited attributes, the
decision (or score) column (and a paired comparison's second one), the weights and the label,
in that order — each as one stream
of its values in row order, canonically encoded:

- ``number`` (a numeric column): float64, little-endian; every missing value and NaN as the
  one NaN pattern;
- ``codes`` (a text or boolean attribute): the group code of each row, int32 little-endian,
  the groups' labels named in the header;
- ``bits`` (a text or boolean label or decision): one byte per row, 1 for the positive label
  or the favourable decision.

The digest is the sha256 of a header — the definition's name, the row count, the label's
positive value, and per column its name, kind, labels and the sha256 of its stream. Each
column's stream sha256 also names that column alone: a model comparison names the score (or
prediction) column that stands for a model by it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
import pandas as pd

from fairscan.errors import plain
from fairscan.types import Attribute, Decision, Label

__all__ = [
    "DEFINITION", "FAST", "VALUE_DIGEST", "DataHasher", "Kind", "arrow_codes", "arrow_numbers", "frame_sha256",
    "hashed_columns",
]

#: the name of this definition, first in every digest's header and in every audit's output
DEFINITION = "fairscan data sha256 v2: audited attributes, decision, weights and label, in row order"
#: what an engine asked for ``data_hash="fast"`` returns instead (never equal to the above)
FAST = "fairscan fast digest: order-independent sums of row hashes (DuckDB and Spark only)"
#: what a value audit's digest of data read in place is (DuckDB computes it in its one pass)
VALUE_DIGEST = ("fairscan fast value digest: the sum and the xor of each row's hash of the audited columns "
                "(order-independent; DuckDB)")

Kind = Literal["number", "codes", "bits"]


def hashed_columns(attrs: dict[str, Attribute], label: Label | None, decision: Decision, weights: str | None,
                   is_numeric: Callable[[str], bool],
                   paired: Decision | None = None) -> list[tuple[str, Kind, tuple[str, ...]]]:
    """(column, kind, group labels) of every hashed column, in the definition's order (a
    ``paired`` second decision's column right after the first's)."""
    names = [c for c in dict.fromkeys([*attrs, decision.column, paired.column if paired else None, weights,
                                       label.column if label else None]) if c]
    out: list[tuple[str, Kind, tuple[str, ...]]] = []
    for c in names:
        if is_numeric(c):
            out.append((c, "number", ()))
        elif c in attrs:
            out.append((c, "codes", tuple(attrs[c].labels)))
        else:
            out.append((c, "bits", ()))
    return out


def _encode(kind: Kind, values: np.ndarray) -> np.ndarray:
    if kind == "number":
        a = np.asarray(values, dtype="<f8")
        nan = np.isnan(a)
        return np.where(nan, np.nan, a) if nan.any() else a
    if kind == "codes":
        return np.asarray(values, dtype="<i4")
    return np.asarray(values, dtype=bool).astype(np.uint8)


class DataHasher:
    """Feeds each hashed column's canonical stream to its own sha256, on a background thread
    (hashlib releases the GIL: on two cores the hash costs little wall time)."""

    def __init__(self, columns: Sequence[tuple[str, Kind, tuple[str, ...]]], label: Label | None) -> None:
        self.columns = list(columns)
        self.label = label
        self._h = {c: hashlib.sha256() for c, _, _ in self.columns}
        self._kind = {c: k for c, k, _ in self.columns}
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._futures: list = []

    def update(self, values: dict[str, np.ndarray]) -> None:
        """The next rows of every hashed column (one chunk, in row order)."""
        bufs = [(c, np.ascontiguousarray(_encode(self._kind[c], values[c]))) for c, _, _ in self.columns]
        self._futures.append(self._pool.submit(self._feed, bufs))

    def _feed(self, bufs: list[tuple[str, np.ndarray]]) -> None:
        for c, b in bufs:
            self._h[c].update(b.data)

    def hexdigest(self, n_rows: int) -> str:
        """The digest, once every fed chunk is hashed."""
        return self.digests(n_rows)[0]

    def digests(self, n_rows: int) -> tuple[str, dict[str, str]]:
        """The digest and each column's stream sha256, once every fed chunk is hashed."""
        for f in self._futures:
            f.result()
        self._pool.shutdown()
        header = {"definition": DEFINITION, "rows": int(n_rows),
                  "label": None if self.label is None else [self.label.column, plain(self.label.positive)],
                  "columns": [[c, k, list(labels), self._h[c].hexdigest()] for c, k, labels in self.columns]}
        return (hashlib.sha256(json.dumps(header, ensure_ascii=False).encode()).hexdigest(),
                {c: self._h[c].hexdigest() for c, _, _ in self.columns})

    def cancel(self) -> None:
        """Stop without a digest."""
        self._pool.shutdown(cancel_futures=True)


def arrow_codes(attr: Attribute, arr: object, missing: int) -> np.ndarray:
    """The group codes of a categorical attribute's raw values read as Arrow (SQL engines):
    the index of each value among the attribute's values, ``missing`` for null or NaN."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    vs = pa.array([v.item() if isinstance(v, np.generic) else v for v in attr.values])
    if vs.type != arr.type:
        vs = vs.cast(arr.type)
    idx = pc.index_in(arr, value_set=vs)
    if pa.types.is_floating(arr.type):
        idx = pc.if_else(pc.is_nan(arr), pa.scalar(None, pa.int32()), idx)
    return idx.fill_null(missing).to_numpy(zero_copy_only=False)


def arrow_numbers(arr: object) -> np.ndarray:
    """A numeric column read as Arrow, as float64 with null as NaN."""
    return np.asarray(arr.fill_null(float("nan")).to_numpy(zero_copy_only=False), dtype=np.float64)


def frame_sha256(data: pd.DataFrame) -> str:
    """The fingerprint of a whole frame, which a model card records as ``data_sha256``: every
    column's name and dtype, then every value (pandas' row hashes, index excluded). It names
    a training set, not an audit's inputs: the audit compares it with its own rows to warn
    when it is auditing the rows a model was trained on."""
    h = hashlib.sha256(repr([(str(c), str(t)) for c, t in data.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes())
    return h.hexdigest()
