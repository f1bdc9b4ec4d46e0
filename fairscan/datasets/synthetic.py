"""Seeded synthetic customers with a known answer, for subgroup discovery's tests, benchmarks
and demos: eight categorical attributes (2 to 6 levels), one number, an outcome and an offer,
with one excluded three-way subgroup planted (or none).

Everything is drawn independently except the offer inside the planted subgroup, so the one
true finding is known: ``a1 = L0``, ``a2 = L1`` and ``a3 = L2`` (1 in 24 customers) are
offered at ``planted_rate`` instead of ``base_rate``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["LEVELS", "PLANTED", "planted_subgroups"]

#: levels of a1 .. a8
LEVELS = (2, 3, 4, 5, 6, 3, 4, 2)
#: the planted subgroup's conditions (attribute, group)
PLANTED = (("a1", "L0"), ("a2", "L1"), ("a3", "L2"))


def planted_subgroups(n: int, seed: int = 0, *, planted: bool = True, base_rate: float = 0.3,
                      planted_rate: float = 0.05) -> pd.DataFrame:
    """``n`` customers: ``a1`` .. ``a8`` (text levels ``L0``, ``L1``, ...), ``spend`` (a
    number), ``y`` (0/1 outcome, independent of everything) and ``offer`` (0/1 decision, at
    ``base_rate``; at ``planted_rate`` inside :data:`PLANTED` when ``planted``)."""
    rng = np.random.default_rng(seed)
    codes = {f"a{i + 1}": rng.integers(0, k, n).astype(np.int8) for i, k in enumerate(LEVELS)}
    rate = np.full(n, base_rate)
    if planted:
        inside = np.ones(n, dtype=bool)
        for attr, group in PLANTED:
            inside &= codes[attr] == int(group[1:])
        rate[inside] = planted_rate
    frame = {a: pd.Categorical.from_codes(c, categories=[f"L{j}" for j in range(k)])
             for (a, c), k in zip(codes.items(), LEVELS, strict=True)}
    frame["spend"] = rng.lognormal(3.0, 1.0, n).round(2)
    frame["y"] = (rng.random(n) < 0.4).astype(np.int8)
    frame["offer"] = (rng.random(n) < rate).astype(np.int8)
    return pd.DataFrame(frame)
