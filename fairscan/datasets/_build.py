"""Convert the original UCI files into the compact Parquet copies bundled with fairscan.

Run from the repository root::

    python -m fairscan.datasets._build [--source /work/shared/data]

Each original is read with a fixed schema, every row is kept in its original order, and the
result is written to ``fairscan/datasets/data/<stem>.parquet`` (zstd, dictionary encoding).
The ``read_*`` functions are also used by the tests to check the bundled copies against the
originals.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_SOURCE = Path("/work/shared/data")
DATA_DIR = Path(__file__).resolve().parent / "data"
ZSTD_LEVEL = 19

# ---------------------------------------------------------------------------------------------
# Schemas of the bundled files (Arrow types; pandas dtypes follow from them on load).
# ---------------------------------------------------------------------------------------------

BANK_SCHEMA = pa.schema(
    [
        ("age", pa.int64()),
        ("job", pa.string()),
        ("marital", pa.string()),
        ("education", pa.string()),
        ("default", pa.string()),
        ("balance", pa.int64()),
        ("housing", pa.string()),
        ("loan", pa.string()),
        ("contact", pa.string()),
        ("day", pa.int64()),
        ("month", pa.string()),
        ("duration", pa.int64()),
        ("campaign", pa.int64()),
        ("pdays", pa.int64()),
        ("previous", pa.int64()),
        ("poutcome", pa.string()),
        ("y", pa.string()),
    ]
)

ADULT_SCHEMA = pa.schema(
    [
        ("age", pa.int64()),
        ("workclass", pa.string()),
        ("fnlwgt", pa.int64()),
        ("education", pa.string()),
        ("education_num", pa.int64()),
        ("marital_status", pa.string()),
        ("occupation", pa.string()),
        ("relationship", pa.string()),
        ("race", pa.string()),
        ("sex", pa.string()),
        ("capital_gain", pa.int64()),
        ("capital_loss", pa.int64()),
        ("hours_per_week", pa.int64()),
        ("native_country", pa.string()),
        ("income", pa.string()),
    ]
)

_COUPON_INT = {
    "temperature",
    "has_children",
    "toCoupon_GEQ5min",
    "toCoupon_GEQ15min",
    "toCoupon_GEQ25min",
    "direction_same",
    "direction_opp",
    "Y",
}
_COUPON_COLUMNS = [
    "destination",
    "passanger",
    "weather",
    "temperature",
    "time",
    "coupon",
    "expiration",
    "gender",
    "age",
    "maritalStatus",
    "has_children",
    "education",
    "occupation",
    "income",
    "car",
    "Bar",
    "CoffeeHouse",
    "CarryAway",
    "RestaurantLessThan20",
    "Restaurant20To50",
    "toCoupon_GEQ5min",
    "toCoupon_GEQ15min",
    "toCoupon_GEQ25min",
    "direction_same",
    "direction_opp",
    "Y",
]
COUPON_SCHEMA = pa.schema(
    [(c, pa.int64() if c in _COUPON_INT else pa.string()) for c in _COUPON_COLUMNS]
)

ONLINE_RETAIL_SCHEMA = pa.schema(
    [
        ("InvoiceNo", pa.string()),
        ("StockCode", pa.string()),
        ("Description", pa.string()),
        ("Quantity", pa.int64()),
        ("InvoiceDate", pa.timestamp("us")),
        ("UnitPrice", pa.float64()),
        ("CustomerID", pa.int64()),
        ("Country", pa.string()),
    ]
)

# German credit: (column name, key in values_maps.json or None for numeric columns).
GERMAN_COLUMNS: list[tuple[str, str | None]] = [
    ("status_of_existing_checking_account", "status"),
    ("duration_in_month", None),
    ("credit_history", "credit_history"),
    ("purpose", "purpose"),
    ("credit_amount", None),
    ("savings_account_bonds", "savings"),
    ("present_employment_since", "present_employment"),
    ("installment_rate_in_percentage_of_disposable_income", None),
    ("personal_status_and_sex", "status_sex"),
    ("other_debtors_guarantors", "other_debtors"),
    ("present_residence_since", None),
    ("property", "property"),
    ("age_in_years", None),
    ("other_installment_plans", "installment_plans"),
    ("housing", "housing"),
    ("number_of_existing_credits_at_this_bank", None),
    ("job", "job"),
    ("number_of_people_being_liable_to_provide_maintenance_for", None),
    ("telephone", "telephone"),
    ("foreign_worker", "foreign_worker"),
    ("credit", None),
]
GERMAN_SCHEMA = pa.schema([(c, pa.string() if key else pa.int64()) for c, key in GERMAN_COLUMNS])

# ---------------------------------------------------------------------------------------------
# Readers: original file(s) -> pandas DataFrame(s) with the bundled column names and values.
# ---------------------------------------------------------------------------------------------


def read_bank(source: Path) -> pd.DataFrame:
    """bank-full.csv: all 17 columns as they are; no cell is missing ("unknown" is a value)."""
    return pd.read_csv(
        source / "bank-marketing" / "bank-full.csv",
        sep=";",
        dtype={f.name: ("int64" if f.type == pa.int64() else str) for f in BANK_SCHEMA},
        keep_default_na=False,
        na_values=[],
    )


def _read_adult_file(path: Path, skiprows: int, label_dot: bool) -> pd.DataFrame:
    df = pd.read_csv(
        path,
        sep=",",
        header=None,
        names=ADULT_SCHEMA.names,
        skiprows=skiprows,
        skipinitialspace=True,
        dtype={f.name: ("int64" if f.type == pa.int64() else str) for f in ADULT_SCHEMA},
        keep_default_na=False,
        na_values=["?"],
    )
    if label_dot:
        if not df["income"].str.endswith(".").all():
            raise ValueError(f"{path}: expected every label to end in '.'")
        df["income"] = df["income"].str.removesuffix(".")
    return df


def read_adult(source: Path) -> dict[str, pd.DataFrame]:
    """adult.data (train) and adult.test (test; first line skipped, trailing '.' removed)."""
    folder = source / "adult"
    return {
        "train": _read_adult_file(folder / "adult.data", skiprows=0, label_dot=False),
        "test": _read_adult_file(folder / "adult.test", skiprows=1, label_dot=True),
    }


def read_coupon(source: Path) -> pd.DataFrame:
    """in-vehicle-coupon-recommendation.csv: UCI names kept, empty cells -> null."""
    return pd.read_csv(
        source / "coupon-recommendation" / "in-vehicle-coupon-recommendation.csv",
        dtype={f.name: ("int64" if f.type == pa.int64() else str) for f in COUPON_SCHEMA},
        keep_default_na=False,
        na_values=[""],
    )


def read_online_retail(source: Path) -> pd.DataFrame:
    """online_retail.csv.gz: typed columns; empty Description / CustomerID -> null."""
    df = pd.read_csv(
        source / "online-retail" / "online_retail.csv.gz",
        dtype={
            "InvoiceNo": str,
            "StockCode": str,
            "Description": str,
            "Quantity": "int64",
            "InvoiceDate": str,
            "UnitPrice": "float64",
            "CustomerID": "Int64",
            "Country": str,
        },
        keep_default_na=False,
        na_values={"Description": [""], "CustomerID": [""]},
    )
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"], format="%Y-%m-%d %H:%M:%S")
    return df


def german_code_map(source: Path) -> dict[str, dict[str, str]]:
    """Column name -> {A-code: readable text} from values_maps.json (texts stripped).

    The JSON gives booleans for ``telephone`` and ``foreign_worker``; they become "yes"/"no".
    """
    raw = json.loads((source / "german-credit" / "values_maps.json").read_text())
    out: dict[str, dict[str, str]] = {}
    for column, key in GERMAN_COLUMNS:
        if key is None:
            continue
        mapping: dict[str, str] = {}
        for code, text in raw[key].items():
            if isinstance(text, bool):
                mapping[code] = "yes" if text else "no"
            else:
                mapping[code] = str(text).strip()
        out[column] = mapping
    return out


def read_german(source: Path) -> pd.DataFrame:
    """german.data: named columns, A-codes decoded into texts, numeric columns int64."""
    df = pd.read_csv(
        source / "german-credit" / "german.data",
        sep=" ",
        header=None,
        names=[c for c, _ in GERMAN_COLUMNS],
        dtype={c: (str if key else "int64") for c, key in GERMAN_COLUMNS},
        keep_default_na=False,
        na_values=[],
    )
    for column, mapping in german_code_map(source).items():
        unknown = set(df[column]) - set(mapping)
        if unknown:
            raise ValueError(f"german.data: column {column} has codes {sorted(unknown)} not in map")
        df[column] = df[column].map(mapping).astype(str)
    return df


# ---------------------------------------------------------------------------------------------
# Bundled files: stem -> (schema, reader returning that file's frame).
# ---------------------------------------------------------------------------------------------

FILES: dict[str, tuple[pa.Schema, Callable[[Path], pd.DataFrame]]] = {
    "bank": (BANK_SCHEMA, read_bank),
    "adult-train": (ADULT_SCHEMA, lambda s: read_adult(s)["train"]),
    "adult-test": (ADULT_SCHEMA, lambda s: read_adult(s)["test"]),
    "coupon": (COUPON_SCHEMA, read_coupon),
    "online-retail": (ONLINE_RETAIL_SCHEMA, read_online_retail),
    "german": (GERMAN_SCHEMA, read_german),
}

# Dataset name -> original files (relative to the source folder), for the checksums.
ORIGINALS: dict[str, list[str]] = {
    "bank": ["bank-marketing/bank-full.csv"],
    "adult": ["adult/adult.data", "adult/adult.test"],
    "coupon": ["coupon-recommendation/in-vehicle-coupon-recommendation.csv"],
    "online-retail": ["online-retail/online_retail.csv.gz"],
    "german": ["german-credit/german.data", "german-credit/values_maps.json"],
}


def original_table(stem: str, source: Path = DEFAULT_SOURCE) -> pa.Table:
    """Read the original file behind bundled file ``stem`` into an Arrow table."""
    schema, reader = FILES[stem]
    df = reader(Path(source))
    if list(df.columns) != schema.names:
        raise ValueError(f"{stem}: columns {list(df.columns)} != {schema.names}")
    return pa.Table.from_pandas(df, schema=schema, preserve_index=False)


def write_table(table: pa.Table, path: Path) -> None:
    """Write ``table`` as a compact Parquet file (zstd, dictionary encoding, one row group)."""
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        use_dictionary=True,
        row_group_size=max(table.num_rows, 1),
    )


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_checksums(source: Path) -> None:
    """Verify the originals against SHA256SUMS, if that file is present."""
    sums = source / "SHA256SUMS"
    if not sums.exists():
        return
    expected: dict[str, str] = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, rel = line.split(None, 1)
            expected[rel.lstrip("*")] = digest
    for files in ORIGINALS.values():
        for rel in files:
            if rel in expected and sha256(source / rel) != expected[rel]:
                raise ValueError(f"{source / rel}: sha256 does not match SHA256SUMS")


def build(source: Path = DEFAULT_SOURCE, out_dir: Path = DATA_DIR) -> dict[str, Path]:
    """Convert every original into ``out_dir/<stem>.parquet``; return stem -> path."""
    source = Path(source)
    check_checksums(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for stem in FILES:
        table = original_table(stem, source)
        path = out_dir / f"{stem}.parquet"
        write_table(table, path)
        written[stem] = path
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m fairscan.datasets._build", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=DEFAULT_SOURCE,
        help=f"folder with the original UCI files (default: {DEFAULT_SOURCE})",
    )
    parser.add_argument(
        "--out", type=Path, default=DATA_DIR, help="output folder for the Parquet files"
    )
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        print(f"error: source folder {args.source} not found", file=sys.stderr)
        return 2
    for stem, path in build(args.source, args.out).items():
        meta = pq.read_metadata(path)
        print(f"{stem:15s} {meta.num_rows:>8,d} rows  {path.stat().st_size:>10,d} bytes  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
