"""The core types every layer speaks: an audited attribute and a grouping of them, the label
and decision rules, and the sufficient statistics an engine returns. Plain data, no logic
beyond naming groups: the engines, metrics and groups all import them from here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["INTERSECTION_SEP", "N_CELLS", "PAIRED_CELLS", "UNKNOWN", "Aggregate", "Attribute", "CellStats", "Decision", "Grouping",
           "Label", "ValueAggregate", "ValueStats"]

#: the label of the group of missing values
UNKNOWN = "unknown"
#: joins the attributes of an intersection and their groups' labels ("sex x age", "F x Q1")
INTERSECTION_SEP = " x "

# Cell index within a group: 2 * y + d, with y = 1 for the positive label and d = 1 for the
# favourable decision. So 0 = TN, 1 = FP, 2 = FN, 3 = TP. Without a label every row has y = 0.
N_CELLS = 4
# Two models' decisions on the same rows (a paired aggregation): cell 4 * y + 2 * a + b, with a
# and b the favourable-decision indicators of the first and the second decision.
PAIRED_CELLS = 8


@dataclass(frozen=True)
class Attribute:
    """One audited attribute, resolved: every row maps to a code in ``range(len(labels))``."""

    name: str
    column: str
    kind: Literal["categorical", "tiers"]
    labels: tuple[str, ...]
    # categorical: the observed non-missing values, in label order
    values: tuple = ()
    # tiers: interior cut points, increasing; a value v goes to the first bin with v <= edge
    edges: tuple[float, ...] = ()
    has_unknown: bool = False
    note: str = ""

    @property
    def n_levels(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Grouping:
    """A set of attributes crossed together: one attribute alone, or an intersection."""

    attributes: tuple[Attribute, ...]

    @property
    def name(self) -> str:
        return INTERSECTION_SEP.join(a.name for a in self.attributes)

    def label(self, codes: Sequence[int]) -> str:
        return INTERSECTION_SEP.join(a.labels[c] for a, c in zip(self.attributes, codes, strict=True))


@dataclass(frozen=True)
class Label:
    """The outcome column and the value that counts as positive (e.g. y == "yes")."""

    column: str
    positive: object


@dataclass(frozen=True)
class Decision:
    """How a row's decision is made; d = 1 marks the *favourable* decision (an offer).

    kind="prediction": decision 1 where ``column == positive``.
    kind="threshold": decision 1 where ``score >= threshold``.
    kind="budget": decision 1 for the ``k`` rows with the highest score; ties at the cut are
    broken by row order (earlier rows first).
    ``favourable`` says which decision value (1 or 0) is the favourable one: with 0 (risk
    scores) the rows above the threshold / in the top k are the ones *refused*.
    """

    kind: Literal["prediction", "threshold", "budget"]
    column: str
    favourable: int = 1
    positive: object = 1
    threshold: float | None = None
    k: int | None = None


@dataclass
class CellStats:
    """Sufficient statistics of one grouping: counts per (group, cell).

    ``codes[g]`` are the attribute codes of group g (only non-empty groups are kept);
    ``n[g, c]`` the number of rows in cell c; ``w``/``w2`` the sums of weights and squared
    weights per cell when the audit is weighted (else None); ``noise_var[g, c]`` the variance
    of the noise added to each count when they are a differentially private release (else
    None), which widens every interval.
    """

    grouping: Grouping
    codes: np.ndarray
    n: np.ndarray
    w: np.ndarray | None = None
    w2: np.ndarray | None = None
    noise_var: np.ndarray | None = None

    @property
    def labels(self) -> list[str]:
        return [self.grouping.label(c) for c in self.codes]


@dataclass
class Aggregate:
    """What one aggregation pass returns."""

    n_rows: int
    stats: list[CellStats]
    data_sha256: str
    #: what ``data_sha256`` hashes (fairscan.engines.datahash.DEFINITION, or the fast digest's name)
    data_hash: str = ""
    #: each hashed column's own stream sha256 (empty for the fast digest)
    column_sha256: dict[str, str] = field(default_factory=dict)


@dataclass
class ValueStats:
    """Sufficient statistics of an offer's value (price, discount, limit) for one grouping.

    Per non-empty group g (``codes[g]`` its attribute codes, sorted as in :class:`CellStats`):
    ``rows[g]`` rows in all, ``base[g]`` of them audited (the offered ones, or all) and
    ``missing[g]`` audited rows without a value. Per cell, one (group, stratum, value) of the
    audited rows with a value, sorted by (``group``, ``stratum``, ``value``): its row count
    ``n`` and its sums of weights ``w`` and squared weights ``w2`` (``w = w2 = n`` unweighted).
    """

    grouping: Grouping
    codes: np.ndarray
    rows: np.ndarray
    base: np.ndarray
    missing: np.ndarray
    group: np.ndarray
    stratum: np.ndarray
    value: np.ndarray
    n: np.ndarray
    w: np.ndarray
    w2: np.ndarray
    #: with clusters (the rows of one customer, say): each cell's cluster code, the cells
    #: then per (group, stratum, cluster, value)
    cluster: np.ndarray | None = None

    @property
    def labels(self) -> list[str]:
        return [self.grouping.label(c) for c in self.codes]


@dataclass
class ValueAggregate:
    """What one value pass returns: the row count, the strata's labels (``["all"]`` without
    strata) and each grouping's :class:`ValueStats`. ``precision``: None when every distinct
    value has its own cells; else the values were binned (more distinct values than the
    engines keep exactly) and each cell's value is its rows' weighted mean, within this
    relative precision of each of them."""

    n_rows: int
    strata: list[str]
    stats: list[ValueStats]
    precision: float | None = None
    #: the number of distinct clusters (0 without clusters)
    n_clusters: int = 0
    #: a digest of the audited columns computed in the same pass, and what it is (engines
    #: that read data in place; None when the engine computed none)
    data_sha256: str | None = None
    data_hash: str = ""
