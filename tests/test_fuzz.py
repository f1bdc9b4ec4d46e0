"""Hostile input (issue #10): malformed CSV, gzip CSV, Parquet and review.yaml files never crash.

Files are made by mutating small valid ones (byte flips, truncation, inserted NULs, quotes,
newlines, BOMs, foreign encodings, huge fields, ragged rows, odd headers) or from random
bytes. Each reader either returns a normal result (a harmless mutation) or raises
``FairscanError`` with a one-line message that names the file; the CLI turns that into
``fairscan: error: ...`` and exit code 2, never a traceback or an internal error.
"""

from __future__ import annotations

import csv
import gzip
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairscan.cli import main
from fairscan.errors import FairscanError
from fairscan.io import read_table
from fairscan.review.config import ReviewConfig, load_config, starter
from tests.conftest import assert_plain_message, examples

# function-scoped tmp_path / capsys are fine here: every example overwrites its own file
pytestmark = pytest.mark.fuzz
FUZZ = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
COLUMNS = ["y", "p", "g"]
AUDIT = ["--target", "y", "--prediction", "p", "--sensitive", "g"]


# -- valid seeds -----------------------------------------------------------------------------------
def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"g": rng.choice(["a", "b", "ü ñ"], n), "y": rng.integers(0, 2, n),
                         "p": rng.integers(0, 2, n), "s": np.round(rng.random(n), 3)})


VALID_CSV = _frame().to_csv(index=False).encode()


def _parquet_bytes(compression: str | None) -> bytes:
    buf = io.BytesIO()
    _frame().to_parquet(buf, compression=compression, index=False)
    return buf.getvalue()


VALID_PARQUET = {"none": _parquet_bytes(None), "snappy": _parquet_bytes("snappy")}
VALID_YAML = starter("bank")


# -- mutations ------------------------------------------------------------------------------------
TOKENS = [
    b"\x00", b'"', b"'", b"\n", b"\r", b"\r\n", b"\xef\xbb\xbf", b"\xff\xfe", b",", b";", b"\t", b"|",
    b",,,,", b'""', b'"\n"', b"\xe9", b"\xc3", b"\x80\x81", "é".encode("latin-1"), "ü ñ".encode("utf-16"),
    b"\x1f\x8b", b"PAR1", b"nan", b"-inf", b"1e309", b"9" * 400, b"x" * 70_000, b'"' + b"y" * 70_000,
    b',"a' * 3000,
]


@st.composite
def mutated(draw, seed: bytes, max_mutations: int = 4, footer: int = 0) -> bytes:
    """``seed`` after 1..max_mutations random edits; ``footer`` > 0 aims half the edits at the last
    ``footer`` bytes (a Parquet file's metadata)."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, max_mutations))):
        n = len(data)
        if footer and n and draw(st.booleans()):
            pos = draw(st.integers(max(0, n - footer), n))
        else:
            pos = draw(st.integers(0, n))
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "token", "delete", "overwrite", "dup"]))
        if kind == "flip" and pos < n:
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "token":
            data[pos:pos] = draw(st.sampled_from(TOKENS)) * draw(st.integers(1, 3))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[pos:pos + len(chunk)] = chunk
        elif kind == "dup" and n:
            end = min(n, pos + draw(st.integers(1, 200)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


def _cell() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["", "a", "b", "0", "1", " ", "NA", "nan", "ü ñ", '"', "x,y", "a\nb",
                                      "1e400", "-0", "\x00", "🙂"]),
                     st.text(max_size=12))


@st.composite
def ragged_csv(draw) -> bytes:
    """Structurally odd CSV: duplicate / empty / weird header names, rows of differing lengths,
    quoted or unquoted cells, a separator and an encoding of its own."""
    header = draw(st.lists(st.one_of(st.sampled_from(["y", "p", "g", "", " ", "y", "Y", "y ", "g\n", "Unnamed: 0"]),
                                     st.text(max_size=8)), min_size=1, max_size=6))
    rows = draw(st.lists(st.lists(_cell(), max_size=8), max_size=12))
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, None]))
    if quoting is None:  # no quoting at all: separators and newlines inside cells break the rows
        text = "".join(sep.join(row) + end for row in [header, *rows])
    else:
        out = io.StringIO()
        w = csv.writer(out, delimiter=sep, quoting=quoting, lineterminator=end)
        for row in [header, *rows]:
            w.writerow(row)
        text = out.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"]))
    return text.encode(encoding, errors="replace")


# -- checks ---------------------------------------------------------------------------------------
def assert_clear(err: FairscanError, path: Path) -> None:
    msg = str(err)
    assert_plain_message(msg)
    assert str(path) in msg, msg


def check_read(path: Path, **kw) -> None:
    try:
        df = read_table(path, **kw)
    except FairscanError as e:
        assert_clear(e, path)
    else:
        assert isinstance(df, pd.DataFrame)
        if kw.get("columns"):
            assert sorted(df.columns) == sorted(kw["columns"])


def check_config(path: Path) -> None:
    try:
        cfg = load_config(path)
    except FairscanError as e:
        assert_clear(e, path)
    else:
        assert isinstance(cfg, ReviewConfig) and isinstance(cfg.raw, dict) and len(cfg.sha256) == 64


def check_cli(path: Path, capsys, must_fail: bool = False) -> None:
    capsys.readouterr()
    code = main(["audit", str(path), *AUDIT])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    if must_fail or code != 0:
        assert code == 2, (code, out, err)
        assert err.startswith("fairscan: error: ") and err.count("\n") == 1, err
        assert_plain_message(err.removesuffix("\n"))
    else:
        assert out.strip(), "an audit that succeeds prints a report"


# -- CSV ------------------------------------------------------------------------------------------
@settings(max_examples=examples(150), **FUZZ)
@given(data=mutated(VALID_CSV), columns=st.sampled_from([None, COLUMNS]))
def test_mutated_csv(tmp_path, data, columns):
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    check_read(path, columns=columns)


@settings(max_examples=examples(100), **FUZZ)
@given(data=ragged_csv(), columns=st.sampled_from([None, COLUMNS]))
def test_ragged_csv(tmp_path, data, columns):
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    check_read(path, columns=columns)


@settings(max_examples=examples(40), **FUZZ)
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".csv", ".tsv", ".parquet", ".csv.gz"]))
def test_random_bytes(tmp_path, data, suffix):
    path = tmp_path / f"data{suffix}"
    path.write_bytes(data)
    check_read(path, columns=COLUMNS)


@settings(max_examples=examples(60), **FUZZ)
@given(data=st.one_of(mutated(gzip.compress(VALID_CSV), footer=16),  # a broken gzip stream
                      mutated(VALID_CSV).map(gzip.compress)))  # good gzip, broken CSV inside
def test_mutated_gzip_csv(tmp_path, data):
    path = tmp_path / "data.csv.gz"
    path.write_bytes(data)
    check_read(path, columns=COLUMNS)


@pytest.mark.parametrize("name, data", [
    ("newline in a header name", b'"y\n",p,g\n1,0,a\n'),
    ("one column with a newline", b'"a\nb"\n1\n'),
    ("carriage return in a header name", b'"y\r",p,g\n1,0,a\n'),
    ("unterminated quote", b'y,p,g\n1,0,"a\n'),
    ("latin-1 after 64 KiB", VALID_CSV + b"1,0,a,0.5\n" * 7000 + "1,0,é,0.5\n".encode("latin-1")),
    ("ragged rows", b"y,p,g\n1,0\n1,0,a,b,c,d\n1\n"),
    ("header only", b"y,p,g\n"),
    ("only NULs", b"\x00" * 100),
    ("utf-16", _frame().to_csv(index=False).encode("utf-16")),
])
def test_known_bad_csv(tmp_path, name, data):
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    check_read(path, columns=COLUMNS)


def test_pathological_header_is_not_quadratic(tmp_path):
    """csv.Sniffer's quote regex is quadratic in the line length: a 64 KiB header of ',"a' took
    ~35 s; the sniff now looks at the start of the header only."""
    path = tmp_path / "data.csv"
    path.write_bytes(b',"a' * 22_000 + b"\n1,2\n")
    start = time.perf_counter()
    check_read(path, columns=COLUMNS)
    assert time.perf_counter() - start < 5


# -- Parquet --------------------------------------------------------------------------------------
@settings(max_examples=examples(150), **FUZZ)
@given(codec=st.sampled_from(sorted(VALID_PARQUET)), data=st.data(),
       columns=st.sampled_from([None, COLUMNS]))
def test_mutated_parquet(tmp_path, codec, data, columns):
    path = tmp_path / "data.parquet"
    path.write_bytes(data.draw(mutated(VALID_PARQUET[codec], footer=600)))
    check_read(path, columns=columns, categorical=["g"])


@pytest.mark.parametrize("cut", [0, 3, 4, 8, 100, -8, -5, -1])
def test_truncated_parquet(tmp_path, cut):
    path = tmp_path / "data.parquet"
    path.write_bytes(VALID_PARQUET["snappy"][:cut])
    check_read(path, columns=COLUMNS, categorical=["g"])


def test_parquet_footer_length_lies(tmp_path):
    data = VALID_PARQUET["none"]
    for length in (0, 1, len(data) - 8, len(data), 2**31 - 1, 2**32 - 1):
        path = tmp_path / "data.parquet"
        path.write_bytes(data[:-8] + length.to_bytes(4, "little") + b"PAR1")
        check_read(path, columns=COLUMNS, categorical=["g"])


# -- review.yaml ----------------------------------------------------------------------------------
YAML_TOKENS = [
    "&a ", "*a", "!!python/object:os.system ", "!!python/name:os.system", "!!binary ", "!!set ", "!!int ",
    "!!float ", "!!timestamp ", "[", "]", "{", "}", ": ", "- ", '"', "'", "\t", "\x00", "%YAML 1.1\n", "---\n",
    "...\n", "? ", "|", ">", "<<: ", "#", "\n", "\r", "\ufeff", "\u2028", "\x85", "9" * 5000, "2020-13-45",
    "yes", "null", ".nan", "-.inf", "0x1F", "1_000", "~",
]


@st.composite
def mutated_yaml(draw) -> bytes:
    text = VALID_YAML
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["token", "delete", "truncate", "line", "indent"]))
        if kind == "token":
            text = text[:pos] + draw(st.sampled_from(YAML_TOKENS)) + text[pos:]
        elif kind == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 20)):]
        elif kind == "truncate":
            text = text[:pos]
        elif kind == "line":  # duplicate or drop a whole line
            lines = text.splitlines(keepends=True)
            i = draw(st.integers(0, max(0, len(lines) - 1)))
            lines[i:i + 1] = [] if draw(st.booleans()) or not lines else lines[i:i + 1] * 2
            text = "".join(lines)
        else:  # indentation decides YAML structure
            start = text.rfind("\n", 0, pos) + 1
            text = text[:start] + " " * draw(st.integers(1, 5)) + text[start:]
    data = text.encode("utf-8")
    if draw(st.integers(0, 9)) == 0:  # sometimes a byte-level edit (may break UTF-8)
        data = draw(mutated(data, max_mutations=2))
    return data


@settings(max_examples=examples(200), **FUZZ)
@given(data=mutated_yaml())
def test_mutated_review_yaml(tmp_path, data):
    path = tmp_path / "review.yaml"
    path.write_bytes(data)
    check_config(path)


@settings(max_examples=examples(60), **FUZZ)
@given(data=st.one_of(st.binary(max_size=500), st.text(max_size=300).map(str.encode)))
def test_random_review_yaml(tmp_path, data):
    path = tmp_path / "review.yaml"
    path.write_bytes(data)
    check_config(path)


# every setting of the schema, and a few nested ones, each given a value of every YAML type
SETTINGS = ["name", "data", "data.sql", "model", "trust", "score", "prediction", "label", "positive_label",
            "sensitive", "tiers", "tiers.age", "tiers.balance", "intersect", "reference", "weights", "decision",
            "decision.budget", "favourable_decision", "metrics", "policy", "policy.alpha", "policy.min_group_size",
            "policy.suppress_below", "policy.insufficient", "policy.regression", "policy.n_boot",
            "policy.metrics", "policy.metrics.selection_rate", "policy.metrics.selection_rate.min_ratio",
            "outputs", "outputs.dir", "outputs.formats", "history", "allow_outside_paths"]
WRONG_VALUES = [
    "null", "~", "true", "no", "0", "-1", "1.5", "1e-999", ".nan", "-.inf", '""', "x", "'a\\nb'", '"a\\nb"',
    "[]", "[1, [2, [3]]]", "{}", "{1: 2}", "{null: 1, a: 2}", "{2020-01-01: 3}", '{"a\\nb": 1}', "2020-01-01",
    "2020-13-45", "2001-12-14 21:59:43.10 +99:99", "!!binary aGk=", "!!binary ###", "!!int abc",
    "!!float abc", "!!set {a, b}", "!!python/object:os.system {}", "!!str", "9" * 5000, "0o" + "7" * 5000,
    "1" * 4000 + ".5",
]


def _with_value(path: str, value: str) -> str:
    raw = yaml.safe_load(VALID_YAML)
    node = raw
    keys = path.split(".")
    for k in keys[:-1]:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    node[keys[-1]] = "__VALUE__"
    return yaml.safe_dump(raw, sort_keys=False).replace("__VALUE__", value)


@pytest.mark.parametrize("setting", SETTINGS)
def test_wrong_types_for_every_setting(tmp_path, setting):
    path = tmp_path / "review.yaml"
    for value in WRONG_VALUES:
        path.write_text(_with_value(setting, value), encoding="utf-8")
        check_config(path)


@pytest.mark.parametrize("key", ["1", "null", "true", "2020-01-01", "1.5", '"a\\nb"', '"a\\rb"', '"a\\u2028b"'])
@pytest.mark.parametrize("where", ["", "tiers", "reference", "policy", "policy.metrics", "decision", "outputs"])
def test_odd_keys(tmp_path, where, key):
    """Keys that YAML reads as numbers, null, booleans or dates, and keys with line breaks."""
    text = _with_value(where, f"{{{key}: 3}}") if where else VALID_YAML + f"{key}: 3\n"
    path = tmp_path / "review.yaml"
    path.write_text(text, encoding="utf-8")
    check_config(path)


def refused(tmp_path, text: str) -> None:
    """review.yaml holding ``text`` is refused with a clear one-line error."""
    path = tmp_path / "review.yaml"
    path.write_text(text)
    with pytest.raises(FairscanError) as info:
        load_config(path)
    assert_clear(info.value, path)


@pytest.mark.parametrize("text", [
    "!!python/object/apply:os.system ['echo hi']\n",
    "name: !!python/name:os.system\n",
    "name: !!python/object/new:str ['x']\n",
    "!!python/module:os\n",
    "name: !custom x\n",
    "a: &a [1, 2]\nb: *a\n",
    "&x name: x\n",
    "%TAG ! tag:yaml.org,2002:python/\n---\nname: !object:os.system {}\n",
], ids=["apply", "name", "new", "module", "custom-tag", "alias", "anchor-key", "tag-directive"])
def test_unsafe_tags_and_aliases(tmp_path, text):
    refused(tmp_path, text)


def test_billion_laughs(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
    path = tmp_path / "review.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    with pytest.raises(FairscanError, match="not allowed") as info:
        load_config(path)
    assert_clear(info.value, path)
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize("text", [
    "[" * 10_000,
    "[" * 10_000 + "]" * 10_000,
    "{a: " * 5_000,
    "{a: " * 5_000 + "1" + "}" * 5_000,
    "".join(f"{'  ' * i}k{i}:\n" for i in range(3_000)) + "  " * 3_000 + "v\n",
    "".join(f"{'  ' * i}- \n" for i in range(3_000)),
    "name: x\npolicy: " + "[" * 2_000 + "]" * 2_000 + "\n",
    "- " * 5_000 + "x\n",
], ids=["open-brackets", "balanced-brackets", "open-braces", "balanced-braces", "block-mappings",
        "block-sequences", "nested-value", "compact-sequences"])
def test_deep_nesting(tmp_path, text):
    refused(tmp_path, text)


def test_huge_documents(tmp_path):
    path = tmp_path / "review.yaml"
    path.write_bytes(VALID_YAML.encode() + b"# " + b"x" * (1 << 20) + b"\n")
    with pytest.raises(FairscanError, match="larger than 64 KiB") as info:
        load_config(path)
    assert_clear(info.value, path)
    # under the limit: a long list, a long string and a long name load or fail cleanly
    for extra in ("trust: [" + ", ".join(["t"] * 20_000) + "]\n", "weights: " + "w" * 60_000 + "\n",
                  "name: " + "n" * 60_000 + "\n"):
        path.write_text(VALID_YAML.replace("name: bank-reference\n", "") + extra)
        check_config(path)
    with pytest.raises(FairscanError, match="name: 'nnnn") as info:
        load_config(path)
    assert_clear(info.value, path)
    assert len(str(info.value)) < 500


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "utf-32", "cp1252"])
def test_non_utf8_review(tmp_path, encoding):
    path = tmp_path / "review.yaml"
    path.write_bytes(VALID_YAML.replace("bank-reference", "bänk").encode(encoding))
    with pytest.raises(FairscanError, match="not UTF-8") as info:
        load_config(path)
    assert_clear(info.value, path)


def test_name_cannot_end_in_a_newline(tmp_path):
    """The name's pattern ends in ``$``, which Python also matches before a final newline; the
    name becomes report file names, so ``"bank\\n"`` must be refused like any other bad name."""
    path = tmp_path / "review.yaml"
    for name in ('"bank\\n"', "|\n  bank\n"):
        path.write_text(VALID_YAML.replace("name: bank-reference", f"name: {name}"))
        with pytest.raises(FairscanError, match="name") as info:
            load_config(path)
        assert_clear(info.value, path)


# -- end to end: the CLI ---------------------------------------------------------------------------
@settings(max_examples=examples(15), **FUZZ)
@given(suffix=st.sampled_from([".csv", ".parquet", ".csv.gz"]), data=st.data())
def test_cli_mutated_files(tmp_path, capsys, suffix, data):
    seed = {".csv": VALID_CSV, ".parquet": VALID_PARQUET["snappy"], ".csv.gz": gzip.compress(VALID_CSV)}[suffix]
    blob = data.draw(mutated(seed, footer=600 if suffix == ".parquet" else 16))
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(blob)
    check_cli(path, capsys)


BAD_FILES = {
    "junk.csv": bytes(range(256)) * 4,
    "latin1.csv": "y,p,g\n1,0,é\n".encode("latin-1"),
    "unterminated.csv": b'y,p,g\n1,0,"a\n1,1,b\n',
    "nuls.csv": b"\x00" * 64,
    "empty.csv": b"",
    "newline-header.csv": b'"y\n",p,g\n1,0,a\n',
    "truncated.parquet": VALID_PARQUET["snappy"][: len(VALID_PARQUET["snappy"]) // 2],
    "flipped.parquet": VALID_PARQUET["snappy"][:-20] + bytes(b ^ 0xFF for b in VALID_PARQUET["snappy"][-20:-8])
    + VALID_PARQUET["snappy"][-8:],
    "not.parquet": VALID_CSV,
    "truncated.csv.gz": gzip.compress(VALID_CSV)[:40],
    "corrupt.csv.gz": b"\x1f\x8b\x08\x00" + b"\xff" * 60,
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_cli_bad_files(tmp_path, capsys, name):
    path = tmp_path / name
    path.write_bytes(BAD_FILES[name])
    check_cli(path, capsys, must_fail=True)


def test_cli_valid_seeds_pass(tmp_path, capsys):
    """The seeds themselves audit fine: the fuzzing starts from working files."""
    for name, blob in (("ok.csv", VALID_CSV), ("ok.parquet", VALID_PARQUET["snappy"]),
                       ("ok.csv.gz", gzip.compress(VALID_CSV))):
        path = tmp_path / name
        path.write_bytes(blob)
        capsys.readouterr()
        assert main(["audit", str(path), *AUDIT]) == 0, capsys.readouterr().err


def test_cli_newline_in_a_parquet_column_name(tmp_path, capsys):
    path = tmp_path / "nl.parquet"
    pd.DataFrame({"y\n": [0, 1] * 20, "p": [1, 0] * 20, "g": ["a", "b"] * 20}).to_parquet(path)
    check_cli(path, capsys, must_fail=True)
