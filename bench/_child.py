"""Run a benchmark step in a fresh interpreter: one rule for every benchmark that measures a
process from its start (its wall time, and what it printed as JSON on its last line)."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any


def run_json(cmd: list[str], kind: str) -> dict[str, Any]:
    """Run ``cmd``; its last output line is a JSON object, returned with
    ``process_wall_seconds`` added. A failed child stops the benchmark with its error."""
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{out.stderr[-3000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process_wall_seconds"] = wall
    return res
