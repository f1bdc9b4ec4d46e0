"""Shared fixtures: small real frames and a CLI runner that captures exit code and output."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest

from fairscan import datasets
from fairscan.cli import main


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
