"""Reading users' files (CSV, Parquet) and bundled datasets, with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from fairscan.errors import FairscanError

DATASET_PREFIX = "dataset:"
SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``dataset:NAME``, a CSV (separator sniffed: , ; tab |) or a Parquet file."""
    text = str(path)
    if text.startswith(DATASET_PREFIX):
        from fairscan import datasets

        return datasets.load(text[len(DATASET_PREFIX):])
    p = Path(text)
    if not p.exists():
        raise FairscanError(f"file '{text}' not found")
    if p.is_dir():
        raise FairscanError(f"'{text}' is a directory; give a CSV or Parquet file")
    suffixes = [s.lower() for s in p.suffixes]
    kind = next((SUFFIXES[s] for s in reversed(suffixes) if s in SUFFIXES), None)
    if kind is None:
        raise FairscanError(
            f"file '{text}': unsupported type '{p.suffix or '(none)'}'; give a .csv or .parquet file"
        )
    if kind == "parquet":
        return _read_parquet(p)
    return _read_csv(p)


def _read_parquet(p: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(p).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FairscanError(f"file '{p}' is not a readable Parquet file ({first}); re-export it") from None


def _read_csv(p: Path) -> pd.DataFrame:
    import csv

    if p.stat().st_size == 0:
        raise FairscanError(f"file '{p}' is empty")
    opener = open
    if p.suffix.lower() == ".gz":
        import gzip

        opener = gzip.open  # type: ignore[assignment]
    try:
        with opener(p, "rt", encoding="utf-8", newline="") as f:
            sample = f.read(64 * 1024)
    except UnicodeDecodeError:
        raise FairscanError(f"file '{p}' is not UTF-8 text; re-save it as UTF-8 CSV") from None
    try:
        sep = csv.Sniffer().sniff(sample.split("\n", 1)[0] + "\n", delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    try:
        df = pd.read_csv(p, sep=sep, encoding="utf-8", low_memory=False)
    except UnicodeDecodeError:
        raise FairscanError(f"file '{p}' is not UTF-8 text; re-save it as UTF-8 CSV") from None
    except pd.errors.EmptyDataError:
        raise FairscanError(f"file '{p}' is empty") from None
    except pd.errors.ParserError as e:
        raise FairscanError(f"file '{p}' is not a well-formed CSV ({str(e).splitlines()[0]})") from None
    if len(df) == 0:
        raise FairscanError(f"file '{p}' has a header but no rows")
    if df.shape[1] == 1:  # an audit needs at least a group and a decision column
        raise FairscanError(
            f"file '{p}' was read as a single column '{str(df.columns[0])[:40]}': the separator "
            "looks wrong; fairscan reads CSV separated by , ; tab or |"
        )
    return df
