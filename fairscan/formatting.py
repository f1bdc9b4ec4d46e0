"""How a value is shown or serialised: one function for each rule, used by every publisher.

- :func:`jsonable`: a JSON-safe value (numpy scalars to Python, NaN, NA and infinities to
  null, mappings with text keys, sequences and arrays to lists): what the JSON outputs hold.
- :func:`round_significant`: a score published without giving any customer's own away.
- :func:`pct`, :func:`points` and :func:`number`: a rate as a percentage, a difference of
  rates in signed percentage points, a number to fixed digits, and the text shown where there
  is no value (``—`` in tables, ``n/a`` in sentences).

Messages of errors show values with :func:`fairscan.errors.plain`.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["NA", "is_missing", "jsonable", "number", "p_value", "pct", "points", "round_significant"]

#: what a sentence shows where there is no value (tables show "—")
NA = "n/a"


def is_missing(v: Any) -> bool:
    """None, pandas' NA, or a NaN: a value that is not there."""
    return v is None or v is pd.NA or (isinstance(v, float | np.floating) and math.isnan(v))


def jsonable(v: Any) -> Any:
    """A JSON-safe value: numpy -> Python, NaN/NA/inf -> None, keys as text, arrays as lists."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | np.ndarray):
        return [jsonable(x) for x in v]
    return v


def p_value(p: Any, sentence: bool = False) -> str:
    """A p-value as every report writes it: ``< 0.001`` or ``0.042`` in a table cell (``—`` when
    missing), ``p < 0.001`` / ``p = 0.042`` / ``p n/a`` in a sentence."""
    if is_missing(p):
        return f"p {NA}" if sentence else "—"
    if p < 0.001:
        return "p < 0.001" if sentence else "< 0.001"
    return f"p = {p:.3f}" if sentence else f"{p:.3f}"


def pct(v: Any, digits: int = 1, missing: str = "—") -> str:
    """A rate as a percentage: 0.1234 -> '12.3%'; ``missing`` where there is none."""
    return missing if is_missing(v) else f"{100 * v:.{digits}f}%"


def points(v: Any, digits: int = 1, missing: str = "—") -> str:
    """A difference of two rates in signed percentage points (the unit is the caller's):
    -0.114 -> '-11.4'; ``missing`` where there is none."""
    return missing if is_missing(v) else f"{100 * v:+.{digits}f}"


def number(v: Any, digits: int = 2, missing: str = "—") -> str:
    """A number to ``digits`` decimals: 1.234 -> '1.23'; ``missing`` where there is none."""
    return missing if is_missing(v) else f"{v:.{digits}f}"


def round_significant(v: float, digits: int = 3, up: bool = False) -> float:
    """``v`` rounded to ``digits`` significant digits, down (or ``up``), in decimal: exact for
    every float. How fairscan publishes a score (a range, a histogram edge) without giving a
    customer's own score away."""
    if v == 0 or not math.isfinite(v):
        return float(v)
    d = Decimal(float(v))
    step = Decimal(1).scaleb(d.adjusted() - digits + 1)
    return float(d.quantize(step, rounding=ROUND_CEILING if up else ROUND_FLOOR))
