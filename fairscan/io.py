"""Reading users' files (CSV, Parquet) and bundled datasets, with one-line errors."""

from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import pandas as pd

from fairscan.errors import FairscanError, plain, suggest

__all__ = [
    "DATASET_PREFIX", "SNIFF_CHARS", "SUFFIXES", "csv_separator", "dataset_spec", "files_separator",
    "read_table",
]

DATASET_PREFIX = "dataset:"
SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
SNIFF_CHARS = 4096  # csv.Sniffer is quadratic in the line length (a 64 KiB header took 35 s)
def dataset_spec(data: object) -> tuple[str, str] | None:
    """(name, split) of ``dataset:NAME`` (split ``all``) or ``dataset:NAME:SPLIT``; None for
    anything else."""
    if not isinstance(data, str) or not data.startswith(DATASET_PREFIX):
        return None
    name, _, split = data[len(DATASET_PREFIX):].partition(":")
    return name, split or "all"


def _select(names: list[str], columns: list[str] | None, where: str) -> list[str] | None:
    """Check that every requested column exists (with suggestions); return them, de-duplicated."""
    if columns is None:
        return None
    for c in columns:
        if c not in names:
            raise FairscanError(f"column '{c}' not found{suggest(c, names)} in {where}")
    return list(dict.fromkeys(columns))


def read_table(path: str | os.PathLike, columns: list[str] | None = None,
               categorical: list[str] | None = None) -> pd.DataFrame:
    """Read ``dataset:NAME``, a CSV (separator sniffed: , ; tab |) or a Parquet file.

    ``columns`` limits what is read (each must exist: a one-line error names a missing one,
    with close matches); ``categorical`` columns are read as pandas categoricals where the
    format allows it cheaply (Parquet dictionary decoding), which makes grouping faster.
    """
    text = str(path)
    if text.startswith(DATASET_PREFIX):
        from fairscan import datasets

        name, split = dataset_spec(text)  # type: ignore[misc]
        df = datasets.load(name, split)
        cols = _select(list(df.columns), columns, f"dataset '{text}'")
        return df if cols is None else df[cols]
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
        return _read_parquet(p, columns, categorical or [])
    return _read_csv(p, columns)


def _read_parquet(p: Path, columns: list[str] | None, categorical: list[str]) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(p)
        cols = _select(schema.names, columns, f"file '{p}'")
        strings = [c for c in categorical if (c in schema.names and pa.types.is_string(schema.field(c).type))
                   or (c in schema.names and pa.types.is_large_string(schema.field(c).type))]
        table = pq.read_table(p, columns=cols, read_dictionary=strings or None)
        try:
            df = table.to_pandas(split_blocks=True, self_destruct=True)  # frees Arrow buffers as it goes
        except (ValueError, KeyError, TypeError, IndexError) as e:  # damaged b"pandas" metadata (JSON)
            if isinstance(e, pa.ArrowException):
                raise
            why = f"{type(e).__name__}: {str(e).splitlines()[0][:80]}" if str(e) else type(e).__name__
            raise FairscanError(f"file '{p}' is not a readable Parquet file (damaged pandas metadata, "
                                          f"{why}); re-export it") from None
        for c in strings:  # dictionary order is the file's: sort, as text columns are sorted
            if c in df.columns and isinstance(df[c].dtype, pd.CategoricalDtype):
                df[c] = df[c].cat.reorder_categories(sorted(df[c].cat.categories))
        return df
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FairscanError(f"file '{p}' is not a readable Parquet file ({first}); re-export it") from None


def csv_separator(p: Path) -> str:
    """The separator of a CSV file (sniffed from its first line: , ; tab |), after the checks
    every reader makes: the file is not empty, starts as UTF-8 text and has more than one
    column. The in-memory reader and the DuckDB engine both call it (the same errors)."""
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
    except (OSError, EOFError, zlib.error) as e:  # a broken .gz: truncated, corrupt, not gzip
        raise FairscanError(f"file '{p}' cannot be read ({e}); re-export it") from None
    first = sample.split("\n", 1)[0]
    if not first.strip():
        raise FairscanError(f"file '{p}' has no header line; the first line must name the columns")
    try:
        sep = csv.Sniffer().sniff(first[:SNIFF_CHARS] + "\n", delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    try:
        header = pd.read_csv(io.StringIO(first + "\n"), sep=sep, nrows=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise FairscanError(f"file '{p}' is not a well-formed CSV ({str(e).splitlines()[0]})") from None
    if header.shape[1] == 1:  # an audit needs at least a group and a decision column
        raise FairscanError(
            f"file '{p}' was read as a single column '{str(header.columns[0])[:40]}': the separator "
            "looks wrong; fairscan reads CSV separated by , ; tab or |"
        )
    return sep


def files_separator(files: list[str]) -> str:
    """The one separator of several CSV files, each checked as :func:`csv_separator` does (the
    DuckDB and Spark engines read them with it)."""
    seps = {f: csv_separator(Path(f)) for f in files}
    if len(set(seps.values())) > 1:
        raise FairscanError("the CSV files use different separators (" + ", ".join(
            f"'{f}': {plain(s)}" for f, s in list(seps.items())[:3]) + "); re-export them alike")
    return next(iter(seps.values()))


def _read_csv(p: Path, columns: list[str] | None) -> pd.DataFrame:
    sep = csv_separator(p)
    try:
        header = pd.read_csv(p, sep=sep, encoding="utf-8", nrows=0)
        columns = _select([str(c) for c in header.columns], columns, f"file '{p}'")
        df = pd.read_csv(p, sep=sep, encoding="utf-8", low_memory=False, usecols=columns)
    except UnicodeDecodeError:
        raise FairscanError(f"file '{p}' is not UTF-8 text; re-save it as UTF-8 CSV") from None
    except pd.errors.EmptyDataError:
        raise FairscanError(f"file '{p}' is empty") from None
    except pd.errors.ParserError as e:
        raise FairscanError(f"file '{p}' is not a well-formed CSV ({str(e).splitlines()[0]})") from None
    except (OSError, EOFError, zlib.error) as e:  # a .gz broken after the first 64 KiB
        raise FairscanError(f"file '{p}' cannot be read ({e}); re-export it") from None
    if len(df) == 0:
        raise FairscanError(f"file '{p}' has a header but no rows")
    return df
