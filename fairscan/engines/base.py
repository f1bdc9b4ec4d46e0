"""The one small interface every engine implements, and the statistics it returns.

An engine answers a handful of questions about the data (which columns, distinct values,
quantiles) and then does the only heavy work there is: one GROUP BY that counts rows per
(group, label, decision) cell. Everything downstream — rates, intervals, bootstrap, tests,
verdicts, reports — is a pure function of those small tables, so a new engine (DuckDB,
Spark) plugs in by implementing this class and nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import pandas as pd

from fairscan.errors import FairscanError, suggest
from fairscan.types import (
    N_CELLS,
    PAIRED_CELLS,
    UNKNOWN,
    Aggregate,
    Attribute,
    Decision,
    Grouping,
    Label,
)

__all__ = [
    "MAX_JOINT_GROUPS", "Engine", "audited_columns", "cell_count", "changed_error", "column_not_found",
    "fits_jointly", "label_error", "missing_code", "no_values_error", "not_numeric_error",
    "prediction_error", "score_error", "weight_errors",
]

#: Count all attributes jointly (one dense table, or one GROUP BY, then summed out per
#: grouping) while the product of their level counts is at most this; otherwise one count per
#: grouping (sparse in memory, GROUPING SETS in SQL). Read at call time (tests lower it).
MAX_JOINT_GROUPS = 1 << 15


class Engine(ABC):
    """Interface of an aggregation engine. See the module docstring."""

    name: str = "abstract"

    @abstractmethod
    def columns(self) -> list[str]:
        """Column names of the data."""

    @abstractmethod
    def n_rows(self) -> int:
        """Number of rows."""

    @abstractmethod
    def is_numeric(self, column: str) -> bool:
        """Whether the column holds numbers (int, float, bool excluded)."""

    @abstractmethod
    def has_missing(self, column: str) -> bool:
        """Whether the column has any missing value."""

    @abstractmethod
    def levels(self, column: str, limit: int) -> tuple[list, bool]:
        """Sorted distinct non-missing values (at most ``limit + 1``) and whether any are missing."""

    @abstractmethod
    def quantiles(self, column: str, probs: np.ndarray) -> tuple[np.ndarray, bool]:
        """Quantiles (linear interpolation) of the non-missing values, and whether any are missing."""

    def quantile_note(self, column: str) -> str:
        """What the reader should know about the last quantiles of ``column`` (e.g. the
        measured error of approximate ones); empty for exact quantiles."""
        return ""

    @abstractmethod
    def min_max(self, column: str) -> tuple[float, float, int]:
        """Minimum, maximum and the number of non-finite (NaN/inf/missing) values of a numeric column."""

    @abstractmethod
    def fetch(self, columns: list[str]) -> pd.DataFrame:
        """The named columns as a pandas frame: only those leave the engine (rows in no set
        order). For inputs that are reduced in memory, such as recommendation lists."""

    def decisions(self, decision: Decision) -> np.ndarray:
        """Every row's favourable-decision indicator (True = offer), in row order: the
        decisions :meth:`aggregate` counts, for callers that need them row by row. The only
        row-sized result an engine returns (one bool per row)."""
        raise FairscanError(f"the {self.name} engine cannot return row-level decisions; use the memory engine")

    @abstractmethod
    def aggregate(
        self,
        groupings: list[Grouping],
        label: Label | None,
        decision: Decision,
        weights: str | None,
        paired: Decision | None = None,
    ) -> Aggregate:
        """Count rows per (group, cell) for every grouping, in one pass over the rows. With a
        ``paired`` second decision (two models on the same rows), each group has
        :data:`~fairscan.types.PAIRED_CELLS` cells, 4 * y + 2 * a + b, and the data hash covers
        the second decision's column too."""


# -- rules every engine follows ---------------------------------------------------------------
def cell_count(paired: Decision | None) -> int:
    """Cells per group: 4 (2y + d), or 8 (4y + 2a + b) with a paired second decision."""
    return PAIRED_CELLS if paired is not None else N_CELLS


def fits_jointly(sizes: list[int]) -> bool:
    """Whether a key space of these level counts is small enough to count jointly."""
    return float(np.prod(sizes, dtype=np.float64)) <= MAX_JOINT_GROUPS


def audited_columns(groupings: list[Grouping]) -> dict[str, Attribute]:
    """Each audited column once, with its attribute (first grouping that uses it wins)."""
    attrs: dict[str, Attribute] = {}
    for g in groupings:
        for a in g.attributes:
            attrs.setdefault(a.column, a)
    return attrs


def missing_code(attr: Attribute, has_missing: bool) -> int:
    """The code of a missing value of a categorical ``attr``: its own ``unknown`` level, or
    the existing one of that name, else 0 (the column has no missing value)."""
    if attr.has_unknown:
        return attr.n_levels - 1
    return attr.labels.index(UNKNOWN) if has_missing and UNKNOWN in attr.labels else 0


# -- the errors every engine raises the same way -------------------------------------------------
def column_not_found(column: str, columns: list[str]) -> FairscanError:
    return FairscanError(f"column '{column}' not found{suggest(column, columns)}")


def not_numeric_error(column: str, type_text: str, role: str) -> FairscanError:
    """``type_text`` as the engine names the type, e.g. ``dtype object`` or ``type VARCHAR``."""
    return FairscanError(f"column '{column}' is not numeric ({type_text}); {role} need numbers")


def no_values_error(column: str) -> FairscanError:
    return FairscanError(f"column '{column}' has no values to cut into tiers")


def changed_error(column: str) -> FairscanError:
    return FairscanError(f"column '{column}' changed while auditing")


def label_error(column: str, n_missing: int) -> FairscanError:
    return FairscanError(
        f"label column '{column}' has {n_missing:,} missing values; "
        "fill or remove those rows first (fairscan never drops rows silently)")


def prediction_error(column: str, n_missing: int) -> FairscanError:
    return FairscanError(
        f"prediction column '{column}' has {n_missing:,} missing values; fill or remove those rows first")


def weight_errors(column: str, n_bad: int, n_neg: int) -> None:
    """Raise for missing/infinite weights, then for negative ones; nothing when both are 0."""
    if n_bad:
        raise FairscanError(f"weight column '{column}' has {n_bad:,} missing or infinite values; fix them first")
    if n_neg:
        raise FairscanError(f"weight column '{column}' has {n_neg:,} negative values; weights must be >= 0")


def score_error(column: str, n_bad: int) -> FairscanError:
    return FairscanError(
        f"score column '{column}' has {n_bad:,} missing, NaN or infinite values; fix or remove those rows first")
