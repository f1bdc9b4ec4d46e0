"""Customer groups: categorical attributes, tiers of continuous ones, intersections.

A :class:`GroupSpec` says *which* groups to audit; :func:`resolve` turns it into concrete
:class:`Attribute` objects (levels, cut points, labels) by asking the engine for the few
facts it needs (distinct values, quantiles). Engines then map every row to an integer code
per attribute; metrics never see the raw values again.

Conventions (documented for users):
- Missing values form an explicit group labelled ``unknown`` (merged with a literal
  ``"unknown"`` value when the column already has one); they are never dropped.
- Tiers are right-closed bins ``(a..b]``; the first tier is open below and the last open
  above. ``N`` alone means N quantile tiers (unweighted quantiles of the rows, linear
  interpolation as in ``pandas.qcut``; duplicate edges are merged, so a column with heavy
  ties may get fewer tiers, with a warning); two or more numbers are cut points.
- Intersections list only the combinations that occur in the data.
- A group is named (a reference group, ...) by its label, or for a quantile tier also by its
  short name (``Q4``) or its range (``(1428..]``); see :func:`match_group`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fairscan.errors import FairscanError, plain, suggest
from fairscan.types import INTERSECTION_SEP, UNKNOWN, Attribute, Grouping

if TYPE_CHECKING:
    from fairscan.engines.base import Engine

__all__ = [
    "DEFAULT_MAX_GROUPS", "GroupSpec", "TierSpec", "assign_groups", "bin_edges", "format_number",
    "group_aliases", "histogram_bins", "match_group", "parse_tier_specs", "resolve", "resolve_references",
    "tier_edges", "tier_labels", "value_label",
]

DEFAULT_MAX_GROUPS = 500

TierSpec = int | Sequence[float]


@dataclass
class GroupSpec:
    """Which groups to audit.

    ``sensitive``: categorical columns. ``tiers``: column -> N quantile tiers or cut points
    (these columns are audited too). ``intersect``: ``True`` crosses all attributes; a list of
    column lists crosses just those. ``reference``: attribute -> reference group label
    (default: the largest group).
    """

    sensitive: Sequence[str] = ()
    tiers: Mapping[str, TierSpec] = field(default_factory=dict)
    intersect: bool | Sequence[Sequence[str]] = False
    reference: Mapping[str, str] = field(default_factory=dict)
    max_groups: int = DEFAULT_MAX_GROUPS

    def columns(self) -> list[str]:
        """Audited columns in order: sensitive first, then tier columns not already listed."""
        cols = list(dict.fromkeys(self.sensitive))
        cols += [c for c in self.tiers if c not in cols]
        return cols


def parse_tier_specs(values: Sequence[str]) -> dict[str, TierSpec]:
    """``["balance=4", "age=24,59", "age2=25,"]`` -> {column: N quantile tiers | cut points}.

    ``N`` alone means N quantile tiers; comma-separated numbers are cut points (a single cut
    point is written with a trailing comma, ``age=25,``)."""
    out: dict[str, TierSpec] = {}
    for v in values:
        col, eq, spec = v.rpartition("=")
        if not eq or not col or not spec:
            raise FairscanError(f"--tiers {plain(v)}: write COL=N (quantile tiers) or COL=c1,c2,... (cut points)")
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        try:
            if len(parts) == 1 and "," not in spec:
                n = float(parts[0])
                if not n.is_integer():
                    raise ValueError
                out[col] = int(n)
            else:
                out[col] = [float(p) for p in parts]
        except ValueError:
            raise FairscanError(
                f"--tiers {plain(v)}: '{spec}' must be a whole number of tiers or comma-separated cut points"
            ) from None
    return out


def format_number(x: float) -> str:
    """Compact, exact-enough label for a cut point: 72 -> '72', 306.545 -> '306.545'."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.6g}"


def tier_labels(edges: Sequence[float], quantile: bool) -> tuple[str, ...]:
    """Readable labels for right-closed bins around ``edges``: 'Q1 (..72]', 'Q2 (72..448]'."""
    bounds = [None, *edges, None]
    labels = []
    for i in range(len(edges) + 1):
        lo, hi = bounds[i], bounds[i + 1]
        rng = f"({'' if lo is None else format_number(lo)}..{'' if hi is None else format_number(hi)}]"
        labels.append(f"Q{i + 1} {rng}" if quantile else rng)
    return tuple(labels)


_QUANTILE_TIER = re.compile(r"^(Q\d+) (\(.*\])$")
#: how many groups an error message lists
_LISTED = 12


def group_aliases(label: str) -> tuple[str, ...]:
    """Other names of a group label: a quantile tier's short name and its range
    ('Q4', '(1428..]' for 'Q4 (1428..]'); none for other labels."""
    m = _QUANTILE_TIER.match(label)
    return m.groups() if m else ()


def _candidates(text: str, labels: Sequence[str], fold: bool) -> list[str]:
    """Labels that ``text`` names (ignoring surrounding whitespace, and case with ``fold``)."""
    norm = (lambda t: t.strip().casefold()) if fold else (lambda t: t.strip())
    want = norm(text)
    return [lab for lab in labels if want == norm(lab) or want in {norm(a) for a in group_aliases(lab)}]


def _match_one(text: str, labels: Sequence[str]) -> list[str]:
    """The labels ``text`` names: the exact label; else the label or a tier's alias without
    surrounding whitespace; else the same ignoring case. Several means ambiguous."""
    if text in labels:
        return [text]
    return _candidates(text, labels, fold=False) or _candidates(text, labels, fold=True)


def _listing(labels: Sequence[str]) -> str:
    more = f" and {len(labels) - _LISTED} more" if len(labels) > _LISTED else ""
    return ", ".join(labels[:_LISTED]) + more


def match_group(name: object, labels: Sequence[str], *, what: str = "group", where: str = "") -> str:
    """The label in ``labels`` that ``name`` names, for every place a user names a group.

    Accepted: the exact label; a quantile tier's short name (``Q4`` for ``Q4 (1428..]``) or
    its range (``(1428..]``); any of these without surrounding whitespace, then ignoring case
    if that leaves one group. An intersection's group may be named part by part
    (``(24..59] x Q4``). ``what`` and ``where`` word the one-line error (``"reference group"``,
    ``"attribute 'balance'"``): an unknown name lists the groups with close matches, an
    ambiguous one the groups it matches.
    """
    text = name if isinstance(name, str) else value_label(name)
    labels = [str(lab) for lab in labels]
    place = f" in {where}" if where else ""
    found = _match_one(text, labels)
    if not found and INTERSECTION_SEP in text:
        found = _match_parts(text, labels, what, place)
    if len(found) == 1:
        return found[0]
    if found:
        raise FairscanError(f"{what} '{text}'{place} is ambiguous: it matches {_listing(found)}; "
                            "give the exact label")
    aliases = [a for lab in labels for a in group_aliases(lab)]
    raise FairscanError(f"{what} '{text}' not found{place}{suggest(text, [*labels, *aliases])}; "
                        f"groups are: {_listing(labels)}")


def resolve_references(labels: Mapping[str, Sequence[str]], reference: Mapping[str, str]) -> dict[str, str]:
    """``reference`` (attribute -> group name) with each name replaced by the exact label it
    names among ``labels`` (attribute -> its groups' labels): a tier's short name ``Q4``
    becomes ``Q4 (1428..]`` (see :func:`match_group`)."""
    out = dict(reference)
    for name, groups in labels.items():
        if name in out:
            out[name] = match_group(out[name], list(groups), what="reference group", where=f"attribute '{name}'")
    return out


def _match_parts(text: str, labels: Sequence[str], what: str, place: str) -> list[str]:
    """An intersection group named part by part: each part matched among that position's labels."""
    parts = text.split(INTERSECTION_SEP)
    split = [lab.split(INTERSECTION_SEP) for lab in labels]
    split = [p for p in split if len(p) == len(parts)]
    if not split:
        return []
    chosen = []
    for i, part in enumerate(parts):
        options = list(dict.fromkeys(p[i] for p in split))
        found = _match_one(part, options)
        if len(found) != 1:
            word = "is ambiguous" if found else "matches no group"
            raise FairscanError(f"{what} '{text}'{place}: part {i + 1} '{part.strip()}' {word} among "
                                f"{_listing(found or options)}{'' if found else suggest(part.strip(), options)}")
        chosen.append(found[0])
    full = INTERSECTION_SEP.join(chosen)
    if full not in labels:
        raise FairscanError(f"{what} '{text}'{place}: the group '{full}' has no rows; groups are: {_listing(labels)}")
    return [full]


def value_label(v: object) -> str:
    """Display label of a categorical value (1.0 -> '1', True -> 'True')."""
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _resolve_categorical(col: str, engine: Engine, max_groups: int) -> Attribute:
    values, has_missing = engine.levels(col, max_groups)
    if len(values) > max_groups:
        advice = (
            f"audit it in tiers instead (--tiers {col}=4, or cut points such as --tiers {col}=25,60)"
            if engine.is_numeric(col)
            else "group its values into fewer categories first"
        )
        raise FairscanError(
            f"sensitive column '{col}' has more than {max_groups} distinct values, too many to "
            f"audit as groups: {advice}"
        )
    labels = [value_label(v) for v in values]
    if len(set(labels)) != len(labels):
        raise FairscanError(
            f"column '{col}': distinct values share a label after conversion to text; "
            "convert the column to strings first"
        )
    has_unknown = has_missing and UNKNOWN not in labels
    note = ""
    if has_missing and not has_unknown:
        note = f"missing values of '{col}' are counted in its existing '{UNKNOWN}' group"
    return Attribute(
        name=col,
        column=col,
        kind="categorical",
        labels=(*labels, UNKNOWN) if has_unknown else tuple(labels),
        values=tuple(values),
        has_unknown=has_unknown,
        note=note,
    )


def tier_edges(spec: TierSpec, quantiles: Callable[[np.ndarray], np.ndarray],
               what: str) -> tuple[tuple[float, ...], bool, str]:
    """Interior cut points of a tier spec, whether they are quantiles, and a note.

    ``spec``: N quantile tiers, or cut points. ``quantiles(probs)`` computes quantiles of the
    values being tiered (an engine's, or numpy's). Duplicate quantile edges are merged, and the
    note says so. ``what`` names the values in error messages. One place for every tiering.
    """
    if isinstance(spec, np.integer):
        spec = int(spec)
    if isinstance(spec, bool | str) or not isinstance(spec, int | Sequence | np.ndarray):
        raise FairscanError(f"tiers of {what}: give a number of quantile tiers (e.g. 4) or cut points")
    if isinstance(spec, int):
        if spec < 2:
            raise FairscanError(f"tiers of {what}: need at least 2 quantile tiers, got {spec}")
        edges = tuple(float(e) for e in np.unique(quantiles(np.arange(1, spec) / spec)))
        note = ""
        if len(edges) < spec - 1:
            note = (f"{what} has many tied values: {spec} quantile tiers collapse to {len(edges) + 1} "
                    f"(cut points {', '.join(map(format_number, edges))})")
        return edges, True, note
    try:
        edges = tuple(float(e) for e in spec)
    except (TypeError, ValueError):
        raise FairscanError(f"tiers of {what}: cut points must be numbers, got {plain(spec)}") from None
    if len(edges) < 1 or any(math.isnan(e) for e in edges):
        raise FairscanError(f"tiers of {what}: give at least one cut point")
    if list(edges) != sorted(set(edges)):
        raise FairscanError(f"tiers of {what}: cut points must be strictly increasing, got {plain(list(edges))}")
    return edges, False, ""


def _resolve_tiers(col: str, spec: TierSpec, engine: Engine) -> Attribute:
    missing: list[bool] = []

    def quantiles(probs: np.ndarray) -> np.ndarray:
        qs, has_missing = engine.quantiles(col, probs)
        missing.append(has_missing)
        return qs

    edges, quantile, note = tier_edges(spec, quantiles, f"'{col}'")
    if quantile:
        note = "; ".join(n for n in (engine.quantile_note(col), note) if n)
    has_missing = missing[0] if missing else engine.has_missing(col)
    labels = tier_labels(edges, quantile)
    return Attribute(
        name=col,
        column=col,
        kind="tiers",
        labels=(*labels, UNKNOWN) if has_missing else labels,
        edges=edges,
        has_unknown=has_missing,
        note=note,
    )


def resolve(spec: GroupSpec, engine: Engine) -> list[Grouping]:
    """Resolve ``spec`` against the data: one Grouping per attribute, then the intersections."""
    cols = spec.columns()
    if not cols:
        raise FairscanError("name at least one sensitive attribute (--sensitive COL or --tiers COL=N)")
    available = engine.columns()
    for c in cols:
        if c not in available:
            raise FairscanError(f"sensitive column '{c}' not found{suggest(c, available)}")
    attrs: dict[str, Attribute] = {}
    for c in cols:
        if c in spec.tiers:
            attrs[c] = _resolve_tiers(c, spec.tiers[c], engine)
        else:
            attrs[c] = _resolve_categorical(c, engine, spec.max_groups)
    groupings = [Grouping((a,)) for a in attrs.values()]
    crosses: list[Sequence[str]] = []
    if spec.intersect is True:
        if len(cols) >= 2:
            crosses = [cols]
    elif spec.intersect:
        crosses = list(spec.intersect)
    for cross in crosses:
        for c in cross:
            if c not in attrs:
                raise FairscanError(
                    f"intersection names '{c}', which is not an audited attribute{suggest(c, attrs)}"
                )
        if len(cross) >= 2:
            groupings.append(Grouping(tuple(attrs[c] for c in cross)))
    return groupings


def assign_groups(data: object, sensitive: Sequence[str] = (), tiers: Mapping[str, TierSpec] | None = None,
                  intersect: bool = False) -> pd.DataFrame:
    """Each row's group label per attribute (categoricals, tiers, and with ``intersect`` their
    cross as one more column), resolved exactly as the audit resolves them. For methods that
    need row-level groups, such as fairlearn's mitigators. ``attrs["crosses"]`` names each
    intersection column's attributes."""
    from fairscan.engines.memory import MemoryEngine

    engine = MemoryEngine(data)
    spec = GroupSpec(sensitive=list(sensitive), tiers=dict(tiers or {}), intersect=intersect)
    out: dict[str, pd.Categorical] = {}
    groupings = resolve(spec, engine)
    for g in groupings:
        codes = [engine.attribute_codes(a) for a in g.attributes]
        if len(codes) == 1:
            out[g.name] = pd.Categorical.from_codes(codes[0], categories=list(g.attributes[0].labels))
        else:
            labels = [INTERSECTION_SEP.join(t) for t in zip(*(np.asarray(a.labels, dtype=object)[c]
                                                              for a, c in zip(g.attributes, codes, strict=True)),
                                                            strict=True)]
            out[g.name] = pd.Categorical(labels)
    frame = pd.DataFrame(out, index=getattr(data, "index", None))
    # which columns are intersections, and of which attributes (for the suppression rule)
    frame.attrs["crosses"] = {g.name: [a.name for a in g.attributes] for g in groupings if len(g.attributes) > 1}
    return frame


def histogram_bins(column: str, edges: Sequence[float], has_missing: bool) -> Attribute:
    """A score's histogram bins on shared ``edges`` e1 < e2 < ...: bin 0 holds the scores
    below e1, bin j the scores in [e_j, e_(j+1)), the last the scores from the last edge up
    (and an ``unknown`` bin for missing scores). Counted like tiers, whose groups are
    (a, b]: each edge is moved to the float just below it, so that ``v > edge`` is
    ``v >= e`` exactly and a threshold on an edge splits the bins where the audit would."""
    clean = [float(e) for e in edges]
    if any(b <= a for a, b in itertools.pairwise(clean)):
        raise FairscanError(f"histogram edges of '{column}' must increase")
    labels = [f"(..{clean[0]:g})" if clean else "(..)"]
    labels += [f"[{a:g}..{b:g})" for a, b in itertools.pairwise(clean)]
    labels += [f"[{clean[-1]:g}..)"] if clean else []
    return Attribute(
        name=f"bins of {column}", column=column, kind="tiers",
        labels=(*labels, UNKNOWN) if has_missing else tuple(labels),
        edges=tuple(float(np.nextafter(e, -np.inf)) for e in clean), has_unknown=has_missing,
        note="",
    )


def bin_edges(spec: int | Sequence[float], engine: Engine, column: str, extra: Sequence[float] = ()) -> list[float]:
    """The shared edges of a score's histograms: ``spec`` edges as given, or for a number N
    the score's N-quantiles rounded down to 3 significant digits (so no customer's own score
    is published), with the ``extra`` edges (a threshold) added."""
    from fairscan.formatting import round_significant

    if isinstance(spec, int | np.integer) and not isinstance(spec, bool):
        if spec < 2:
            raise FairscanError(f"histograms need at least 2 bins, got {spec}")
        probs = np.linspace(0, 1, int(spec) + 1)[1:-1]
        qs, _ = engine.quantiles(column, probs)
        edges = {round_significant(float(q)) for q in qs if math.isfinite(q)}
    else:
        edges = {float(e) for e in spec}
        if not edges or not all(math.isfinite(e) for e in edges):
            raise FairscanError("histogram edges must be finite numbers, e.g. --histograms 0.1,0.2,0.5")
    return sorted(edges | {float(e) for e in extra if math.isfinite(e)})
