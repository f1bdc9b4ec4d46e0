"""Shared fixtures: small real frames and a CLI runner that captures exit code and output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest

from fairscan import datasets
from fairscan.cli import main

#: Property and fuzz tests (marked ``fuzz``) run the example counts written in them, which is
#: what CI runs; a thorough run multiplies them: ``FAIRSCAN_FUZZ_SCALE=20 pytest -m fuzz``.
FUZZ_SCALE = float(os.environ.get("FAIRSCAN_FUZZ_SCALE", "1"))


def examples(n: int) -> int:
    """Hypothesis' max_examples for a test written with ``n``, scaled by FAIRSCAN_FUZZ_SCALE."""
    return max(1, round(n * FUZZ_SCALE))


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run ``fairscan ARGS`` in-process; returns exit code, stdout and stderr."""

    def run(*args: str) -> Run:
        code = main(list(args))
        cap = capsys.readouterr()
        return Run(code, cap.out, cap.err)

    return run


@pytest.fixture(scope="session")
def bank():
    return datasets.load("bank")


def run_console(*args: str) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess (checks there is no traceback)."""
    return subprocess.run([sys.executable, "-m", "fairscan.cli", *args], capture_output=True, text=True,
                          timeout=120)


#: what a message must never show: a numpy or pandas repr (np.int64(15), int64(15), np.str_('a'),
#: Timestamp(...)) or a traceback
_NOT_PLAIN = re.compile(r"\bnp\.|\bnumpy\.|\b(?:u?int|float|complex)\d+\(|\b(?:str|bytes|bool)_\(|"
                        r"\b(?:Timestamp|Timedelta|Index|array)\(|Traceback")


def assert_plain_message(message: str) -> None:
    """One line of plain text: values as Python prints them, no numpy repr, no traceback."""
    assert message and "\n" not in message and "\r" not in message, repr(message)
    assert not _NOT_PLAIN.search(message), message
