"""Small-group protection: primary and complementary suppression, and a DP release of counts.

**Suppression rule** (applied to every output of an audit):

1. *Primary*: a group with fewer than ``k`` rows is suppressed — its count, rates, intervals
   and disparities are null, so no one can read an individual's outcome.
2. *Complementary*: published totals must not give a suppressed group away. Every published
   table is a set of lines whose totals are known: the groups of one attribute add up to the
   number of rows (and, for a budget, to the number of offers); the cells of an intersection
   add up, along each attribute, to the published group of the other attributes. A line with
   exactly one suppressed cell would let a reader subtract; so the smallest other non-empty
   cell of that line is suppressed too. A suppressed cell that is alone on its line equals
   the published marginal: that marginal group is suppressed instead. The rule is applied
   until nothing changes.

What remains recoverable, by design: the *sum* over the suppressed cells of a line (never
one of them alone, since each line then has at least two).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CountTable", "laplace_counts", "suppress"]


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
    mitigation comparison, reviews and the dashboard) calls this."""
    counts = [np.asarray(t.counts) for t in tables]
    keep = [np.arange(len(c)) == (-1 if t.protect is None else t.protect) for t, c in zip(tables, counts, strict=True)]
    primary = [c < k for c in counts]
    sup = [p.copy() for p in primary]
    # each published table by its attribute columns, and its groups by their labels
    by_cols = {tuple(t.columns): i for i, t in enumerate(tables)}
    index = [{tuple(key): g for g, key in enumerate(t.keys)} for t in tables]
    changed = True
    while changed:
        changed = False
        for i, t in enumerate(tables):
            cols = tuple(t.columns)
            if len(cols) == 1:  # the whole attribute is one line: its total is the row count
                changed |= _fix_line(np.arange(len(counts[i])), counts[i], sup[i], keep[i])
                continue
            for axis in range(len(cols)):
                marginal = by_cols.get(cols[:axis] + cols[axis + 1:])
                if marginal is None:
                    continue  # the line's total is not published: nothing to subtract from
                lines: dict[tuple, list[int]] = defaultdict(list)
                for g, key in enumerate(t.keys):
                    lines[tuple(key[:axis]) + tuple(key[axis + 1:])].append(g)
                for key, members in lines.items():
                    m = np.asarray(members)
                    if len(m) == 1:
                        if sup[i][m[0]]:  # alone on its line: it equals the marginal group
                            j = index[marginal].get(key)
                            if j is not None and not sup[marginal][j]:
                                sup[marginal][j] = True
                                changed = True
                        continue
                    changed |= _fix_line(m, counts[i], sup[i], keep[i])
    return [(s, s & ~p) for s, p in zip(sup, primary, strict=True)]


def _fix_line(members: np.ndarray, counts: np.ndarray, sup: np.ndarray, keep: np.ndarray) -> bool:
    """If exactly one member of a line is suppressed, suppress the smallest other one (not a
    protected one, unless it is the only choice)."""
    s = sup[members]
    if s.sum() != 1 or len(members) < 2:
        return False
    others = members[~s]
    if (~keep[others]).any():
        others = others[~keep[others]]
    sup[others[np.argmin(counts[others])]] = True
    return True


def laplace_counts(counts: np.ndarray, epsilon: float, rng: np.random.Generator,
                   sensitivity: float = 1.0) -> np.ndarray:
    """Counts with Laplace noise of scale sensitivity / epsilon (epsilon-DP for counts that
    change by at most ``sensitivity`` when one person is added or removed), rounded and
    clipped at 0 (post-processing keeps the guarantee)."""
    if not epsilon > 0:
        raise ValueError("epsilon must be > 0")
    noisy = np.asarray(counts, dtype=float) + rng.laplace(0.0, sensitivity / epsilon, size=np.shape(counts))
    return np.clip(np.rint(noisy), 0, None)
