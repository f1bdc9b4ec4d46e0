"""Checks and readings of the user's inputs that several faces and analyses share: which
label value is positive, and what a budget means. One function for each rule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fairscan.errors import FairscanError, plain, suggest

if TYPE_CHECKING:
    from fairscan.engines.base import Engine

__all__ = ["binary_positive", "parse_budget", "parse_epsilon", "require_columns", "resolve_budget"]

_YES_NO = ("no", "yes")


def parse_budget(value: object, what: str = "budget") -> int | float | None:
    """A budget as typed (CLI text, a review file's number): a count (``500``, ``2000.0``) or a
    fraction (``0.1``, ``1.0`` = everyone); None stays None. :func:`resolve_budget` checks it
    against the data."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text) if any(ch in text for ch in ".eE") else int(text)
        except ValueError:
            raise FairscanError(f"{what} {plain(value)} is not a number: give a count (500) or a fraction (0.1)") \
                from None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise FairscanError(f"{what} must be a count or a fraction, got {plain(value)}")
    if isinstance(value, float | np.floating) and float(value) > 1 and float(value).is_integer():
        return int(value)  # 2000.0 (as YAML or a spreadsheet writes it) is a count
    return value.item() if isinstance(value, np.generic) else value


def parse_epsilon(value: object, what: str = "dp epsilon") -> float | None:
    """A differential-privacy budget: a finite number > 0 (None stays None)."""
    if value is None:
        return None
    try:
        eps = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FairscanError(f"{what} must be a number > 0, got {plain(value)}") from None
    if not eps > 0 or not math.isfinite(eps):
        raise FairscanError(f"{what} must be > 0, got {plain(value)}")
    return eps


def binary_positive(engine: Engine, column: str, given: object, role: str, flag: str) -> object:
    """The value of ``column`` that means positive/1: the one the user gave (matched by value
    or by text, so "1" finds 1), or recognised in {0, 1}, {False, True}, {no, yes}."""
    values, _ = engine.levels(column, 3)
    if given is not None:
        for v in values:
            if v == given or str(v) == str(given):
                return v
        raise FairscanError(
            f"{role} column '{column}' has no value {plain(given)}; its values are: "
            f"{', '.join(map(str, values[:10]))}"
        )
    if len(values) > 2:
        shown = ", ".join(map(str, values[:3]))
        raise FairscanError(
            f"{role} column '{column}' is not binary (values include {shown}, ...); "
            f"audit a binary {role} or give a score with --threshold/--budget"
        )
    if values and all(not isinstance(v, str) for v in values) and set(values) <= {0, 1}:
        return True if any(isinstance(v, bool | np.bool_) for v in values) else 1
    lowered = {str(v).strip().lower(): v for v in values}
    if set(lowered) <= set(_YES_NO) and lowered:
        return lowered.get("yes", "yes")
    raise FairscanError(
        f"{role} column '{column}' has values {', '.join(map(plain, values))}: say which one is "
        f"positive with {flag} VALUE"
    )


def resolve_budget(budget: int | float | str, n_rows: int) -> int:
    """Top-K count from an integer K or a fraction in (0, 1] (rounded down)."""
    budget = parse_budget(budget)
    if isinstance(budget, int | np.integer):
        k = int(budget)
        if k < 0:
            raise FairscanError(f"budget {k} is negative: give how many customers get the offer")
        if k > n_rows:
            raise FairscanError(
                f"budget {k:,} is larger than the data ({n_rows:,} rows): give at most {n_rows:,}, or a fraction like 0.1"
            )
        return k
    if not (0 < budget <= 1) or math.isnan(budget):
        raise FairscanError(f"budget fraction {budget} must be in (0, 1]; for a count give a whole number")
    return math.floor(budget * n_rows + 1e-9)


def require_columns(data: Any, columns: Sequence[str | None]) -> None:
    """A one-line error naming the first of ``columns`` (None skipped) that ``data`` lacks,
    with close matches."""
    available = [str(c) for c in data.columns]
    for c in columns:
        if c is not None and c not in data.columns:
            raise FairscanError(f"column '{c}' not found{suggest(str(c), available)}")
