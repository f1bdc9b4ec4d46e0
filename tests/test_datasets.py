"""Tests of the bundled UCI datasets (fairscan.datasets).

All tests except the comparison with the originals run on the bundled Parquet copies only.
The numbers are the "Facts to test against" of the data README (shared/data/README.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from fairscan import datasets
from fairscan.errors import FairscanError

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "fairscan" / "datasets" / "data"

REQUIRED_KEYS = {
    "name",
    "title",
    "description",
    "source",
    "citation",
    "licence",
    "rows",
    "columns",
    "target",
    "positive_label",
    "favourable_meaning",
    "sensitive",
    "purchasing_power",
    "default_tiers",
    "drop_for_modeling",
    "caveats",
    "conversion",
    "sha256_original",
}

SHAPES = {
    "bank": (45_211, 17),
    "adult": (48_842, 15),
    "coupon": (12_684, 26),
    "online-retail": (541_909, 8),
    "german": (1_000, 21),
}


def rate(mask: pd.Series) -> float:
    return float(mask.mean())


@pytest.fixture(scope="module")
def bank() -> pd.DataFrame:
    return datasets.load("bank")


@pytest.fixture(scope="module")
def adult_train() -> pd.DataFrame:
    return datasets.load("adult", split="train")


@pytest.fixture(scope="module")
def adult_test() -> pd.DataFrame:
    return datasets.load("adult", split="test")


@pytest.fixture(scope="module")
def coupon() -> pd.DataFrame:
    return datasets.load("coupon")


@pytest.fixture(scope="module")
def retail() -> pd.DataFrame:
    return datasets.load("online-retail")


@pytest.fixture(scope="module")
def retail_clean(retail: pd.DataFrame) -> pd.DataFrame:
    keep = (
        ~retail["InvoiceNo"].str.startswith("C")
        & (retail["Quantity"] > 0)
        & (retail["UnitPrice"] > 0)
        & retail["CustomerID"].notna()
    )
    return retail[keep]


@pytest.fixture(scope="module")
def german() -> pd.DataFrame:
    return datasets.load("german")


# --- API -------------------------------------------------------------------------------------


def test_names() -> None:
    assert datasets.NAMES == ("bank", "adult", "coupon", "online-retail", "german")
    assert datasets.list_datasets() == list(datasets.NAMES)


@pytest.mark.parametrize("name", datasets.NAMES)
def test_shape_and_card(name: str) -> None:
    df = datasets.load(name)
    info = datasets.card(name)
    assert df.shape == SHAPES[name]
    assert isinstance(df.index, pd.RangeIndex) and df.index.equals(pd.RangeIndex(len(df)))
    assert set(info) >= REQUIRED_KEYS
    assert info["name"] == name
    assert info["licence"] == "CC BY 4.0"
    assert info["source"].startswith("https://archive.ics.uci.edu/dataset/")
    assert info["rows"] == len(df)
    assert list(info["columns"]) == list(df.columns)
    kinds = {
        "int": pd.api.types.is_integer_dtype,
        "float": pd.api.types.is_float_dtype,
        "string": pd.api.types.is_string_dtype,
        "datetime": pd.api.types.is_datetime64_dtype,
    }
    for column, spec in info["columns"].items():
        assert kinds[spec["type"]](df[column]), (name, column, df[column].dtype)
        assert spec["description"]
    for column in [*info["sensitive"], *info["drop_for_modeling"], *info["default_tiers"]]:
        assert column in df.columns, (name, column)
    for proxy in info["purchasing_power"]:
        assert proxy["explanation"]
        for column in proxy.get("derived_from", [proxy["column"]]):
            assert column in df.columns, (name, column)
    if info["target"] is not None:
        assert info["positive_label"] in set(df[info["target"]])
    assert info["caveats"] and all(isinstance(c, str) for c in info["caveats"])
    assert info["sha256_original"]
    assert all(len(h) == 64 for h in info["sha256_original"].values())


def test_card_specifics() -> None:
    expected = {
        "bank": ("y", "yes", ["duration"], {"age": [24, 59], "balance": 4}),
        "adult": ("income", ">50K", [], {"age": [25, 45, 65]}),
        "coupon": ("Y", 1, [], {}),
        "online-retail": (None, None, [], {}),
        "german": ("credit", 1, [], {"age_in_years": [25]}),
    }
    for name, (target, positive, drop, tiers) in expected.items():
        info = datasets.card(name)
        assert info["target"] == target
        assert info["positive_label"] == positive
        assert info["drop_for_modeling"] == drop
        assert info["default_tiers"] == tiers
    assert datasets.card("bank")["sensitive"] == ["age", "job", "marital", "education", "balance"]
    assert datasets.card("online-retail")["sensitive"] == ["Country"]
    assert datasets.card("adult")["splits"] == {"train": 32_561, "test": 16_281}
    assert "splits" not in datasets.card("bank")
    assert "code_map" in datasets.card("german")


def test_card_returns_fresh_dict() -> None:
    datasets.card("bank")["rows"] = 0
    assert datasets.card("bank")["rows"] == 45_211


def test_unknown_name_suggests() -> None:
    with pytest.raises(FairscanError, match=r"did you mean: online-retail\?.*valid names: bank"):
        datasets.load("online_retail")
    with pytest.raises(FairscanError, match="did you mean: german"):
        datasets.card("germn")
    with pytest.raises(FairscanError, match="valid names") as err:
        datasets.load("titanic")
    assert "\n" not in str(err.value)


def test_bad_split() -> None:
    with pytest.raises(FairscanError, match=r"did you mean: train\?"):
        datasets.load("adult", split="trian")
    with pytest.raises(FairscanError, match="valid splits: 'all', 'holdout'"):
        datasets.load("bank", split="train")
    with pytest.raises(FairscanError, match=r"valid splits: 'all'$"):
        datasets.load("online-retail", split="holdout")  # no outcome: no model, no held-out rows


@pytest.mark.parametrize("name", ["bank", "german"])
def test_holdout_is_the_reference_models_held_out_rows(name: str) -> None:
    """The 30% split, stratified by the outcome: exactly the rows (and order) of the shipped
    reference model's scores.parquet, every column of the dataset, and the outcome's share
    kept (a data fact: bank 11.70% yes, german 70% good)."""
    h = datasets.load(name, split="holdout")
    full = datasets.load(name)
    scores = pd.read_parquet(REPO_ROOT / "models" / name / "scores.parquet")
    assert len(h) == len(scores) == -(-3 * len(full) // 10)  # ceil(0.3 n), as scikit-learn rounds the test share
    assert (h["row_id"].to_numpy() == scores["row_id"].to_numpy()).all()
    pd.testing.assert_frame_equal(h.drop(columns="row_id"), full.iloc[h["row_id"]].reset_index(drop=True))
    target, pos = datasets.card(name)["target"], datasets.card(name)["positive_label"]
    assert abs(h[target].eq(pos).mean() - full[target].eq(pos).mean()) < 1e-3


def test_dataset_specs_name_a_split() -> None:
    from fairscan.io import dataset_spec, read_table

    assert dataset_spec("dataset:bank") == ("bank", "all")
    assert dataset_spec("dataset:bank:holdout") == ("bank", "holdout")
    assert dataset_spec("bank.csv") is None
    pd.testing.assert_frame_equal(read_table("dataset:adult:test"), datasets.load("adult", split="test"))
    assert len(read_table("dataset:bank:holdout", columns=["row_id", "y"]).columns) == 2


def test_adult_all_is_train_then_test(adult_train: pd.DataFrame, adult_test: pd.DataFrame) -> None:
    full = datasets.load("adult")
    pd.testing.assert_frame_equal(full, pd.concat([adult_train, adult_test], ignore_index=True))


@pytest.mark.parametrize("path", sorted(DATA_DIR.glob("*.parquet")), ids=lambda p: p.name)
def test_files_are_zstd_compressed(path: Path) -> None:
    meta = pq.ParquetFile(path).metadata
    for rg in range(meta.num_row_groups):
        for col in range(meta.num_columns):
            assert meta.row_group(rg).column(col).compression == "ZSTD"
    assert path.stat().st_size < 15_000_000


# --- Bank Marketing --------------------------------------------------------------------------


def test_bank_facts(bank: pd.DataFrame) -> None:
    yes = bank["y"].eq("yes")
    assert yes.sum() == 5_289
    assert rate(yes) == pytest.approx(0.1170, abs=5e-5)
    assert bank.isna().sum().sum() == 0
    assert set(bank["y"]) == {"yes", "no"}
    assert (bank["job"] == "unknown").sum() == 288
    assert (bank["education"] == "unknown").sum() == 1_857
    assert bank["balance"].quantile([0.25, 0.5, 0.75]).tolist() == [72.0, 448.0, 1_428.0]


def test_bank_rates_by_group(bank: pd.DataFrame) -> None:
    yes = bank["y"].eq("yes")
    by_balance = yes.groupby(pd.qcut(bank["balance"], 4), observed=True).mean()
    assert by_balance.tolist() == pytest.approx([0.072, 0.109, 0.125, 0.162], abs=5e-4)
    by_age = yes.groupby(pd.cut(bank["age"], [0, 24, 59, 200]), observed=True).mean()
    assert by_age.tolist() == pytest.approx([0.256, 0.105, 0.336], abs=5e-4)
    by_job = yes.groupby(bank["job"]).mean()
    assert by_job["blue-collar"] == pytest.approx(0.073, abs=5e-4)
    assert by_job["student"] == pytest.approx(0.287, abs=5e-4)


# --- Adult -----------------------------------------------------------------------------------


def test_adult_columns(adult_train: pd.DataFrame) -> None:
    assert list(adult_train.columns) == [
        "age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
        "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
        "hours_per_week", "native_country", "income",
    ]  # fmt: skip


def test_adult_facts(adult_train: pd.DataFrame, adult_test: pd.DataFrame) -> None:
    assert len(adult_train) == 32_561
    assert len(adult_test) == 16_281
    for df in (adult_train, adult_test):
        assert set(df["income"]) == {">50K", "<=50K"}
        assert not (df.select_dtypes("str") == "?").any().any()
        assert not df.select_dtypes("str").apply(lambda s: s.str.startswith(" ").any()).any()
    rich_train = adult_train["income"].eq(">50K")
    rich_test = adult_test["income"].eq(">50K")
    assert rich_train.sum() == 7_841
    assert rate(rich_train) == pytest.approx(0.2408, abs=5e-5)
    assert rich_test.sum() == 3_846
    assert rate(rich_test) == pytest.approx(0.2362, abs=5e-5)
    by_sex = rich_train.groupby(adult_train["sex"]).mean()
    assert by_sex["Female"] == pytest.approx(0.109, abs=5e-4)
    assert by_sex["Male"] == pytest.approx(0.306, abs=5e-4)
    assert adult_train.isna().any(axis=1).sum() == 2_399
    assert adult_test.isna().any(axis=1).sum() == 1_221
    missing = adult_train.isna().sum()
    assert missing[missing > 0].to_dict() == {
        "workclass": 1_836,
        "occupation": 1_843,
        "native_country": 583,
    }


def test_adult_relationship_is_sex_proxy(adult_train: pd.DataFrame) -> None:
    table = pd.crosstab(adult_train["relationship"], adult_train["sex"])
    assert table.loc["Husband"].to_dict() == {"Female": 1, "Male": 13_192}
    assert table.loc["Wife"].to_dict() == {"Female": 1_566, "Male": 2}


# --- Coupon ----------------------------------------------------------------------------------


def test_coupon_facts(coupon: pd.DataFrame) -> None:
    assert coupon["Y"].sum() == 7_210
    assert rate(coupon["Y"].eq(1)) == pytest.approx(0.5684, abs=5e-5)
    by_coupon = coupon.groupby("coupon")["Y"].mean()
    expected = {
        "Carry out & Take away": 0.735,
        "Restaurant(<20)": 0.707,
        "Coffee House": 0.499,
        "Restaurant(20-50)": 0.441,
        "Bar": 0.410,
    }
    assert set(by_coupon.index) == set(expected)
    for name, value in expected.items():
        assert by_coupon[name] == pytest.approx(value, abs=5e-4), name
    brackets = set(coupon["income"])
    assert len(brackets) == 9
    assert {"Less than $12500", "$100000 or More"} <= brackets
    assert coupon["car"].isna().sum() == 12_576
    assert coupon["car"].notna().mean() < 0.01
    assert coupon["toCoupon_GEQ5min"].nunique() == 1
    assert coupon["income"].notna().all()
    assert coupon.columns[-1] == "Y"  # no stray '\r' from the CRLF line ends
    assert not coupon.select_dtypes("str").apply(lambda s: s.str.endswith("\r").any()).any()


# --- Online Retail ---------------------------------------------------------------------------


def test_retail_types(retail: pd.DataFrame) -> None:
    assert str(retail["CustomerID"].dtype) == "Int64"
    assert retail["Quantity"].dtype == "int64"
    assert retail["UnitPrice"].dtype == "float64"
    assert pd.api.types.is_datetime64_dtype(retail["InvoiceDate"])
    assert retail["InvoiceDate"].dt.tz is None
    assert retail["Description"].isna().sum() == 1_454


def test_retail_facts(retail: pd.DataFrame) -> None:
    assert len(retail) == 541_909
    assert retail["InvoiceNo"].nunique() == 25_900
    assert retail["InvoiceNo"].str.startswith("C").sum() == 9_288
    assert retail["StockCode"].nunique() == 4_070
    assert retail["CustomerID"].nunique() == 4_372
    assert retail["CustomerID"].isna().sum() == 135_080
    assert retail["Country"].nunique() == 38
    assert retail["InvoiceDate"].min().normalize() == pd.Timestamp("2010-12-01")
    assert retail["InvoiceDate"].max().normalize() == pd.Timestamp("2011-12-09")
    total = (retail["Quantity"] * retail["UnitPrice"]).sum()
    assert total == pytest.approx(9_747_747.93, abs=0.01)


def test_retail_clean_facts(retail_clean: pd.DataFrame) -> None:
    clean = retail_clean
    assert len(clean) == 397_884
    assert clean["CustomerID"].nunique() == 4_338
    assert clean["StockCode"].nunique() == 3_665
    assert len(clean[["CustomerID", "StockCode"]].drop_duplicates()) == 266_792
    spend = (clean["Quantity"] * clean["UnitPrice"]).groupby(clean["CustomerID"]).sum()
    quartiles = spend.quantile([0.25, 0.5, 0.75]).tolist()
    # README: "307 / 675 / 1,662". The median is 674.485, which rounds to 674, not 675.
    assert quartiles == pytest.approx([307.415, 674.485, 1_661.74], abs=1e-6)
    assert [round(q) for q in quartiles] == [307, 674, 1_662]


# --- German Credit ---------------------------------------------------------------------------


def test_german_facts(german: pd.DataFrame) -> None:
    good = german["credit"].eq(1)
    assert set(german["credit"]) == {1, 2}
    assert good.sum() == 700
    assert rate(good) == pytest.approx(0.700, abs=1e-9)
    young = german["age_in_years"] <= 25
    assert rate(good[young]) == pytest.approx(0.579, abs=5e-4)
    assert rate(good[~young]) == pytest.approx(0.728, abs=5e-4)


def test_german_decoding(german: pd.DataFrame) -> None:
    info = datasets.card("german")
    code_map = info["code_map"]
    assert code_map["personal_status_and_sex"]["A92"] == "female : divorced/separated/married"
    female = german["personal_status_and_sex"].str.startswith("female")
    assert female.sum() == 310
    assert set(german.loc[female, "personal_status_and_sex"]) == {
        "female : divorced/separated/married"
    }
    assert code_map["status_of_existing_checking_account"]["A12"] == "0 <= ... < 200 DM"
    assert (german["status_of_existing_checking_account"] == "0 <= ... < 200 DM").sum() == 269
    assert code_map["foreign_worker"] == {"A201": "yes", "A202": "no"}
    assert code_map["telephone"] == {"A191": "no", "A192": "yes"}
    string_columns = [c for c, spec in info["columns"].items() if spec["type"] == "string"]
    assert sorted(code_map) == sorted(string_columns)
    assert len(code_map) == 13
    for column, mapping in code_map.items():
        texts = set(mapping.values())
        assert set(german[column]) <= texts, column
        assert all(t == t.strip() for t in texts)
        assert len(texts) == len(mapping), column  # invertible: texts map back to codes
    numeric = [c for c, spec in info["columns"].items() if spec["type"] == "int"]
    assert all(german[c].dtype == "int64" for c in numeric)
    first = german.iloc[0]
    assert first["duration_in_month"] == 6
    assert first["credit_amount"] == 1_169
    assert first["purpose"] == "radio/television"


# --- Comparison with the originals (skipped when they are not available) ---------------------


def _source_dir() -> Path | None:
    for candidate in (Path("/work/shared/data"), REPO_ROOT.parent / "shared" / "data"):
        if (candidate / "SHA256SUMS").is_file():
            return candidate
    return None


def test_bundled_equals_originals() -> None:
    source = _source_dir()
    if source is None:
        pytest.skip("original UCI files (shared/data) not available")
    from fairscan.datasets import _build

    sums = {}
    for line in (source / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, rel = line.split(None, 1)
            sums[rel] = digest
    for name in datasets.NAMES:
        for rel, digest in datasets.card(name)["sha256_original"].items():
            assert sums[rel] == digest, rel
            assert hashlib.sha256((source / rel).read_bytes()).hexdigest() == digest, rel

    pairs = {
        "bank": ("bank", "all"),
        "adult-train": ("adult", "train"),
        "adult-test": ("adult", "test"),
        "coupon": ("coupon", "all"),
        "online-retail": ("online-retail", "all"),
        "german": ("german", "all"),
    }
    assert set(pairs) == set(_build.FILES)
    for stem, (name, split) in pairs.items():
        expected = _build.original_table(stem, source).to_pandas()
        pd.testing.assert_frame_equal(datasets.load(name, split=split), expected, check_exact=True)
    code_map = _build.german_code_map(source)
    assert datasets.card("german")["code_map"] == code_map
