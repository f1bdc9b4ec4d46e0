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
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fairscan.engines.base import CellStats


def suppression_masks(stats: list[CellStats], k: int,
                      protect: dict[str, str] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each grouping, (suppressed, complementary) boolean masks over its groups.

    ``protect`` maps a grouping's name to a group label (the user's reference group) that is
    chosen as a complementary partner only when no other group can be."""
    counts = [st.n.sum(axis=1) for st in stats]
    protect = protect or {}
    keep = [np.array([lab == protect.get(st.grouping.name) for lab in st.labels]) for st in stats]
    primary = [c < k for c in counts]
    sup = [p.copy() for p in primary]
    # index of each published grouping by its attribute columns, and of its groups by codes
    by_cols = {tuple(a.column for a in st.grouping.attributes): i for i, st in enumerate(stats)}
    index = [{tuple(int(x) for x in row): g for g, row in enumerate(st.codes)} for st in stats]
    changed = True
    while changed:
        changed = False
        for i, st in enumerate(stats):
            cols = tuple(a.column for a in st.grouping.attributes)
            if len(cols) == 1:  # the whole attribute is one line: its total is the row count
                changed |= _fix_line(np.arange(len(counts[i])), counts[i], sup[i], keep[i])
                continue
            for axis in range(len(cols)):
                rest = cols[:axis] + cols[axis + 1:]
                marginal = by_cols.get(rest)
                lines: dict[tuple, list[int]] = defaultdict(list)
                for g, row in enumerate(st.codes):
                    lines[tuple(int(x) for j, x in enumerate(row) if j != axis)].append(g)
                for key, members in lines.items():
                    if marginal is None:
                        continue  # the line's total is not published: nothing to subtract from
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


def complement_line(counts: np.ndarray, suppressed: np.ndarray, protect: np.ndarray | None = None) -> np.ndarray:
    """Complementary suppression of one line whose total is published (e.g. the user groups of
    a recommendation audit, which add up to its number of users): with exactly one suppressed
    member, the smallest other one is suppressed too (not a protected one unless it must be)."""
    sup = np.asarray(suppressed, dtype=bool).copy()
    keep = np.zeros(len(sup), dtype=bool) if protect is None else np.asarray(protect, dtype=bool)
    _fix_line(np.arange(len(sup)), np.asarray(counts), sup, keep)
    return sup


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
