"""Small-group protection: primary and complementary suppression, and DP releases of counts.

**Suppression rule** (applied to every output of an audit):

1. *Primary*: a group with fewer than ``k`` rows is suppressed — its count, rates, intervals
   and disparities are null, so no one can read an individual's outcome.
2. *Complementary*: published totals must not give a suppressed group away. Every published
   table is a set of lines whose totals are known: the groups of one attribute add up to the
   number of rows (and, for a budget, to the number of offers); the cells of an intersection
   add up, along each attribute, to the published group of the other attributes. A line with
   exactly one suppressed cell would let a reader subtract; so another cell of that line is
   suppressed too (the one that leaves the fewest new lines to fix, then the smallest). A
   suppressed cell that is alone on its line equals the published marginal: that marginal
   group is suppressed instead. The rule is applied until nothing changes.

What remains recoverable, by design: the *sum* over the suppressed cells of a line (never
one of them alone, since each line then has at least two).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CountTable", "discrete_laplace", "discrete_laplace_variance", "laplace_counts", "private_joint_counts",
           "suppress"]


@dataclass(frozen=True)
class CountTable:
    """One published table of groups, as a reader could add it up.

    ``columns``: the attribute columns it crosses (one for a plain attribute, several for an
    intersection); ``keys[g]``: group g's label on each of those columns; ``counts[g]``: its
    size (rows, or users); ``protect``: the index of a group to keep published unless no other
    group can be the complementary partner (the user's reference group), or None.
    """

    columns: tuple[str, ...]
    keys: Sequence[tuple[str, ...]]
    counts: np.ndarray
    protect: int | None = None


def suppress(tables: Sequence[CountTable], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The one suppression rule (module docstring) over every table one output publishes: for
    each table, boolean masks (suppressed, complementary) over its groups. Every publisher of
    group numbers (audit, threshold explorer, recommendation audit, and through the audit the
    mitigation comparison, reviews and the dashboard) calls this.

    The complementary partner on a line is the one that closes most other lines and opens the
    fewest new ones (each line through it that had no suppressed member would need a partner of
    its own), then the smallest: in a two-way table this suppresses a rectangle around a small
    cell, not a cascade through the whole table."""
    counts = [np.asarray(t.counts) for t in tables]
    primary = [c < k for c in counts]
    sup = [p.copy() for p in primary]
    by_cols = {tuple(t.columns): i for i, t in enumerate(tables)}
    index = [{tuple(key): g for g, key in enumerate(t.keys)} for t in tables]
    # every line whose total is published, as (table, group) cells; and the cells alone on
    # their line, which equal a published marginal group
    lines: list[list[tuple[int, int]]] = []
    alone: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for i, t in enumerate(tables):
        cols = tuple(t.columns)
        if len(cols) == 1:  # the whole attribute is one line: its total is the row count
            lines.append([(i, g) for g in range(len(counts[i]))])
            continue
        for axis in range(len(cols)):
            marginal = by_cols.get(cols[:axis] + cols[axis + 1:])
            if marginal is None:
                continue  # the line's total is not published: nothing to subtract from
            members: dict[tuple, list[int]] = defaultdict(list)
            for g, key in enumerate(t.keys):
                members[tuple(key[:axis]) + tuple(key[axis + 1:])].append(g)
            for key, gs in members.items():
                if len(gs) > 1:
                    lines.append([(i, g) for g in gs])
                elif (j := index[marginal].get(key)) is not None:
                    alone.append(((i, gs[0]), (marginal, j)))
    through: dict[tuple[int, int], list[int]] = defaultdict(list)
    for li, cells in enumerate(lines):
        for c in cells:
            through[c].append(li)

    def hidden(li: int) -> int:
        return sum(bool(sup[i][g]) for i, g in lines[li])

    def cost(cell: tuple[int, int], line: int) -> tuple[int, float]:
        others = [hidden(li) for li in through[cell] if li != line]
        return sum(h == 0 for h in others) - sum(h == 1 for h in others), float(counts[cell[0]][cell[1]])

    changed = True
    while changed:
        changed = False
        for cell, (m, j) in alone:
            if sup[cell[0]][cell[1]] and not sup[m][j]:
                sup[m][j] = True
                changed = True
        for li, cells in enumerate(lines):
            if hidden(li) != 1:
                continue
            free = [c for c in cells if not sup[c[0]][c[1]]]
            free = [c for c in free if tables[c[0]].protect != c[1]] or free  # the reference only if it must
            if free:
                i, g = min(free, key=lambda c: cost(c, li))
                sup[i][g] = True
                changed = True
    return [(s, s & ~p) for s, p in zip(sup, primary, strict=True)]


def laplace_counts(counts: np.ndarray, epsilon: float, rng: np.random.Generator,
                   sensitivity: float = 1.0) -> np.ndarray:
    """Counts with Laplace noise of scale sensitivity / epsilon (epsilon-DP for counts that
    change by at most ``sensitivity`` when one person is added or removed), rounded and
    clipped at 0 (post-processing keeps the guarantee)."""
    if not epsilon > 0:
        raise ValueError("epsilon must be > 0")
    noisy = np.asarray(counts, dtype=float) + rng.laplace(0.0, sensitivity / epsilon, size=np.shape(counts))
    return np.clip(np.rint(noisy), 0, None)


def discrete_laplace(shape: tuple[int, ...], epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Integer noise of the discrete Laplace (two-sided geometric) mechanism: P(k) is
    proportional to exp(-epsilon |k|), epsilon-DP for a count of sensitivity 1. Drawn as the
    difference of two geometric counts of failures with success probability 1 - exp(-epsilon)."""
    if not epsilon > 0:
        raise ValueError("epsilon must be > 0")
    p = -np.expm1(-epsilon)  # 1 - exp(-epsilon), accurate for small epsilon
    return (rng.geometric(p, size=shape) - rng.geometric(p, size=shape)).astype(np.int64)


def discrete_laplace_variance(epsilon: float) -> float:
    """The variance of :func:`discrete_laplace` noise: 2 a / (1 - a)^2 with a = exp(-epsilon)."""
    a = float(np.exp(-epsilon))
    return 2 * a / (1 - a) ** 2


def private_joint_counts(joint: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """The epsilon-DP release of a joint table of counts in which every person is in exactly
    one cell (sensitivity 1 under adding or removing a person): discrete Laplace noise on
    *every* cell, empty ones included (which cells are empty is itself private), then clipped
    at 0. Every table published from the result is a sum of its cells (post-processing), so
    all of them are non-negative and add up consistently: an attribute's groups to the same
    total, an intersection's cells to their attributes' groups."""
    noisy = np.asarray(joint, dtype=np.int64) + discrete_laplace(np.shape(joint), epsilon, rng)
    return np.clip(noisy, 0, None)
