"""A counts file: an audit's sufficient statistics, written so they can cross a boundary.

Every analysis in fairscan reduces rows to small tables of counts per (group, label,
decision) cell. A counts file is those tables and nothing else: per attribute or
intersection, per group, per cell, the row count (and with weights the sum of weights and of
squared weights), plus what is needed to read them — the groups' definitions, the label,
the decision rule, the data hash and how the file is protected. No ids, no rows, no raw
values beyond what an audit publishes (group names and tier cut points).

The file is Parquet: one row per (grouping, group, label, decision) cell, the metadata
as JSON under the key ``fairscan.counts`` (schema: ``fairscan/schemas/counts.schema.json``).

Protection, recorded in the file (``meta["protection"]``):

- ``suppressed`` (the default): groups the audit would suppress (fewer than
  ``suppress_below`` rows, and the complementary suppression that stops them being recovered
  from totals) are listed without their cells. The file is exact for every other group, and
  an audit from it publishes the same numbers as the row-level audit.
- ``none``: every cell, exact (for merging shards inside one organisation; not for handing
  over).
- ``differential privacy`` (``epsilon``): every cell released by the discrete Laplace
  mechanism (:func:`private_counts`); nothing is withheld, and an audit from the file widens
  every interval by the noise.

Files with the same rule, label, weights and groups add up (:meth:`Counts.merge`): daily
files into a quarter, shards from several machines. Merging needs every cell, so it takes
unprotected files and can write a suppressed one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairscan.errors import FairscanError, plain
from fairscan.formatting import jsonable
from fairscan.metrics.tables import count_tables
from fairscan.privacy import suppress
from fairscan.types import (
    N_CELLS,
    PAIRED_CELLS,
    UNKNOWN,
    Attribute,
    CellStats,
    Decision,
    Grouping,
    Label,
)
from fairscan.version import __version__

__all__ = ["COUNTS_KEY", "COUNTS_SCHEMA_VERSION", "Counts", "cell_count", "counts_attribute", "counts_decision",
           "histogram_totals", "is_counts_file", "private_counts", "protect", "refuse_row_options"]

#: the Parquet metadata key that marks a counts file and holds its metadata (JSON)
COUNTS_KEY = b"fairscan.counts"
COUNTS_SCHEMA_VERSION = "1.0"
_COLUMNS = ["attribute", "group", "grouping", "code", "withheld", "suppression", "label", "decision", "decision_b",
            "count", "weight_sum", "weight_sq_sum"]
#: why a group's cells are withheld: 0 they are not, 1 a small group, 2 its complement
_SUPPRESSION = {1: "primary", 2: "complementary"}


def refuse_row_options(given: dict[str, Any], holds: str, advice: str = "") -> None:
    """One-line error when any of the options that describe rows (``given``: name -> value)
    was given for a counts file, which holds its own ``holds``; an empty value (None, False,
    an empty list or mapping) counts as not given."""
    extra = [k for k, v in given.items() if v is not None and v is not False
             and not (isinstance(v, dict | list | tuple) and not v)]
    if extra:
        raise FairscanError(f"a counts file holds its own {holds}: leave out {', '.join(extra)}"
                            + (f" ({advice})" if advice else ""))


def cell_count(meta: dict[str, Any]) -> int:
    """Cells per group in a counts file: 4 (2y + d), or 8 with a paired second decision."""
    return PAIRED_CELLS if meta.get("paired") else N_CELLS


def is_counts_file(path: Any) -> bool:
    """Whether ``path`` is a Parquet file written by :meth:`Counts.write`."""
    if not isinstance(path, str | os.PathLike) or not Path(path).is_file():
        return False
    try:
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
    except Exception:  # not Parquet at all
        return False
    return COUNTS_KEY in meta


def counts_attribute(a: Attribute) -> dict[str, Any]:
    return {"name": a.name, "column": a.column, "kind": a.kind, "labels": list(a.labels),
            "values": [jsonable(v) for v in a.values], "edges": [float(e) for e in a.edges],
            "has_unknown": a.has_unknown, "note": a.note}


def _attribute(d: dict[str, Any]) -> Attribute:
    return Attribute(d["name"], d["column"], d["kind"], tuple(d["labels"]), tuple(d["values"]), tuple(d["edges"]),
                     bool(d["has_unknown"]), d.get("note", ""))


def counts_decision(d: Decision) -> dict[str, Any]:
    return {"kind": d.kind, "column": d.column, "favourable": d.favourable, "positive": jsonable(d.positive),
            "threshold": d.threshold, "k": d.k}


def _decision(d: dict[str, Any]) -> Decision:
    return Decision(d["kind"], d["column"], int(d["favourable"]), d["positive"], d["threshold"], d["k"])


@dataclass
class Counts:
    """Sufficient statistics of an audit (see the module docstring).

    ``stats``: one :class:`~fairscan.types.CellStats` per grouping (4 cells per group);
    ``withheld``: per grouping and group, 0 when its cells are listed, 1 when withheld as a
    small group, 2 when withheld so that a small group cannot be recovered (its cells are zero
    here); ``meta``: the label, the decision rule, the groups' definitions, the data hash and
    the protection.
    """

    stats: list[CellStats]
    withheld: list[np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    # -- what the file says ---------------------------------------------------------------------
    @property
    def label(self) -> Label | None:
        lab = self.meta.get("label")
        return None if lab is None else Label(lab["column"], lab["positive"])

    @property
    def decision(self) -> Decision:
        return _decision(self.meta["decision"])

    @property
    def weights(self) -> str | None:
        return self.meta.get("weights")

    @property
    def protection(self) -> dict[str, Any]:
        return self.meta["protection"]

    @property
    def n_rows(self) -> int:
        return int(self.meta["n_rows"])

    @property
    def n_histograms(self) -> int:
        """How many of ``stats`` (the last ones) are score histograms: one per audited grouping
        crossed with the score's bins, or none."""
        h = self.meta.get("histograms")
        return int(h["groupings"]) if h else 0

    @property
    def audited(self) -> list[CellStats]:
        """The audited groupings' cells (without the histograms)."""
        return self.stats[:len(self.stats) - self.n_histograms]

    @property
    def histograms(self) -> list[CellStats]:
        """Per audited grouping, its groups' cells per score bin (empty without histograms)."""
        return self.stats[len(self.stats) - self.n_histograms:]

    def bin_totals(self) -> np.ndarray:
        """Everyone's rows per (score bin, label), withheld groups included: shape (bins, 2)."""
        h = self.meta["histograms"]
        if h.get("all") is not None:
            return np.asarray(h["all"], dtype=np.int64).reshape(-1, 2)
        return histogram_totals(self.histograms[0], len(h["edges"]) + 1)

    @property
    def groupings(self) -> list[Grouping]:
        """The audited groupings."""
        return [st.grouping for st in self.audited]

    def select(self, names: Sequence[str]) -> Counts:
        """Only the groupings named (attribute or intersection names, as the file lists them)."""
        have = [g.name for g in self.groupings]
        keep = []
        for n in names:
            if n not in have:
                from fairscan.errors import suggest

                raise FairscanError(f"the counts file has no attribute '{n}'{suggest(n, have)}; it holds "
                                    f"{', '.join(have)}")
            keep.append(have.index(n))
        nh = self.n_histograms
        idx = keep + ([len(have) + i for i in keep] if nh else [])
        meta = self.meta if not nh else {**self.meta, "histograms": {**self.meta["histograms"], "groupings": len(keep)}}
        return replace(self, stats=[self.stats[i] for i in idx], withheld=[self.withheld[i] for i in idx], meta=meta)

    def protection_text(self) -> str:
        """How the file is protected, in the words every output of an analysis of it uses."""
        prot = self.protection
        if prot.get("kind") == "differential privacy":
            return (f"from differentially private counts (ε = {prot['epsilon']:g}); every interval includes the "
                    "noise, and groups are suppressed by their noisy sizes")
        if prot.get("kind") == "suppressed":
            return f"groups under {prot['suppress_below']} rows and their complements withheld"
        return "every cell, exact"

    def masks(self, suppress_below: int) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """The (suppressed, complementary) groups of an analysis of the file at
        ``suppress_below``: those the file withholds, and more when asked for more (the
        audit's rule on the listed groups); None when the file withholds nothing (the rule
        then decides on the counts). Fewer than the file withholds is an error."""
        prot = self.protection
        if prot.get("kind") != "suppressed":
            return None
        k = int(prot["suppress_below"])
        if suppress_below < k:
            raise FairscanError(f"the counts file withholds groups under {k} rows (and their complements): analyse it "
                                f"with --suppress-below {k} or more")
        masks = [(w > 0, w == 2) for w in self.withheld[:len(self.audited)]]
        if suppress_below > k:
            fresh = suppress(count_tables(self.audited, {}), suppress_below)
            masks = [(sup | fs, comp | (fc & ~sup)) for (sup, comp), (fs, fc) in zip(masks, fresh, strict=True)]
        return masks

    def recut(self, threshold: float | None = None, budget: int | float | None = None) -> tuple[Counts, str]:
        """The cells under another threshold or budget, cut from the score histograms, and a
        note of how. A threshold is rounded up to the next histogram edge (exact there); a
        budget K offers everyone at or above the highest edge that reaches K, so the number
        offered may exceed K by the rows of the bin at the cut (the audit of rows breaks ties by
        row order to offer exactly K). Missing scores are never offered."""
        if not self.n_histograms:
            raise FairscanError("the counts file has no score histograms to cut another threshold or budget from: "
                                "count it with --histograms N")
        if (threshold is None) == (budget is None):
            raise FairscanError("give exactly one of a threshold or a budget to cut")
        edges = np.asarray(self.meta["histograms"]["edges"], dtype=float)
        n_bins = len(edges) + 1  # bin 0 below the first edge; bin j from edge j - 1 up
        per_bin = self.bin_totals().sum(axis=1)[:n_bins].astype(float)
        above = np.concatenate([np.cumsum(per_bin[::-1])[::-1], [0.0]])  # rows offered when cutting at bin j
        old = self.decision
        if threshold is not None:
            t = float(threshold)
            j = int(np.searchsorted(edges, t, side="left")) + 1 if t > -np.inf else 0
            used = float(edges[j - 1]) if 0 < j <= len(edges) else (-np.inf if j == 0 else np.inf)
            note = (f"threshold {t:g} cut from the score histograms" + ("" if used == t else
                    f", rounded up to the next histogram edge {used:g}"))
            k = None
        else:
            from fairscan.validation import resolve_budget

            k = resolve_budget(budget, self.n_rows)  # type: ignore[arg-type]
            j = int(np.searchsorted(-above, -k, side="right")) - 1
            used = float(edges[j - 1]) if 0 < j <= len(edges) else (-np.inf if j == 0 else np.inf)
            offered = int(above[j])
            note = (f"budget {k:,} cut from the score histograms at edge {used:g}: {offered:,} offered"
                    + ("" if offered == k else f", {offered - k:,} more than the budget (the rows of the bin at "
                                                  "the cut; the audit of rows breaks ties to offer exactly "
                                                  "the budget)"))
        stats = [_recut(st, hist, j, n_bins, old.favourable)
                 for st, hist in zip(self.audited, self.histograms, strict=True)]
        kind = "threshold" if threshold is not None else "budget"
        new = Decision("threshold", old.column, old.favourable, threshold=None if np.isinf(used) else used)
        desc = dict(self.meta["decision_description"])
        desc.update(kind=kind, threshold=None if np.isinf(used) else used, budget=k,
                    description=(f"score '{old.column}' >= {used:g}" if kind == "threshold" else
                                 f"top {k:,} rows by score '{old.column}' (budget {budget}), cut from the histograms "
                                 f"at {used:g}") + ("" if old.favourable == 1 else " means refusal"))
        meta = {**self.meta, "decision": {**counts_decision(new), "budget_spec": jsonable(budget)},
                "decision_description": desc}
        out = Counts([*stats, *self.histograms], list(self.withheld), meta)
        return out, note

    # -- reading and writing ---------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """The file's table: one row per (grouping, group, label, decision) cell."""
        parts = []
        weighted = self.weights is not None
        for gi, (st, held) in enumerate(zip(self.stats, self.withheld, strict=True)):
            sizes = [a.n_levels for a in st.grouping.attributes]
            codes = (np.ravel_multi_index(tuple(st.codes.T), sizes) if len(st.codes)
                     else np.zeros(0, dtype=np.int64))
            g, nc = len(st.labels), st.n.shape[1]
            cell = np.tile(np.arange(nc), g)
            rows = np.repeat(np.arange(g), nc)
            hidden = np.repeat(held > 0, nc)
            why = np.repeat(np.asarray([_SUPPRESSION.get(int(x)) for x in held], dtype=object), nc)
            half = nc // 2  # 4 cells: 2y + d; 8 (a paired second decision): 4y + 2a + b
            count = pd.array(np.where(hidden, 0, st.n.ravel()), dtype="Int64")
            count[hidden] = pd.NA
            part = pd.DataFrame({
                "attribute": st.grouping.name, "group": np.asarray(st.labels, dtype=object)[rows],
                "grouping": np.int32(gi), "code": codes[rows].astype(np.int64), "withheld": hidden,
                "suppression": why,
                "label": (cell // half).astype(np.int8), "decision": ((cell % half) // (half // 2)).astype(np.int8),
                "decision_b": pd.array(np.where(nc == N_CELLS, 0, cell % 2), dtype="Int8"), "count": count,
            })
            if nc == N_CELLS:
                part["decision_b"] = pd.array([pd.NA] * len(part), dtype="Int8")
            for name, x in (("weight_sum", st.w), ("weight_sq_sum", st.w2)):
                v = pd.array(x.ravel() if weighted and x is not None else np.full(len(part), np.nan), dtype="Float64")
                v[hidden | (not weighted)] = pd.NA
                part[name] = v
            parts.append(part)
        if not parts:
            return pd.DataFrame(columns=_COLUMNS)
        return pd.concat(parts, ignore_index=True)[_COLUMNS]

    def write(self, path: str | os.PathLike) -> Path:
        """Write the counts file (Parquet, zstd); the metadata as JSON under ``fairscan.counts``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
        meta = {**(table.schema.metadata or {}), COUNTS_KEY: json.dumps(jsonable(self.meta), allow_nan=False)}
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        pq.write_table(table.replace_schema_metadata(meta), tmp, compression="zstd")
        tmp.replace(out)
        return out

    @classmethod
    def read(cls, path: str | os.PathLike) -> Counts:
        """A counts file, checked: a one-line error names the file and what is wrong."""
        import pyarrow.parquet as pq

        where = f"counts file '{os.fspath(path)}'"
        if not Path(path).is_file():
            raise FairscanError(f"{where} not found")
        try:
            table = pq.read_table(path)
        except Exception as e:
            raise FairscanError(f"{where} is not a readable Parquet file ({type(e).__name__})") from None
        raw = (table.schema.metadata or {}).get(COUNTS_KEY)
        if raw is None:
            raise FairscanError(f"{where} was not written by 'fairscan counts' (no {COUNTS_KEY.decode()} metadata)")
        try:
            meta = json.loads(raw)
        except ValueError:
            raise FairscanError(f"{where} has damaged metadata; write it again with 'fairscan counts'") from None
        version = str(meta.get("schema_version", ""))
        if version.split(".")[0] != COUNTS_SCHEMA_VERSION.split(".")[0]:
            raise FairscanError(f"{where} has schema version {plain(version)}; this fairscan reads "
                                f"{COUNTS_SCHEMA_VERSION.split('.')[0]}.x: upgrade fairscan or write the file again")
        missing = [c for c in _COLUMNS if c not in table.column_names]
        if missing:
            raise FairscanError(f"{where} lacks column(s) {', '.join(missing)}; write it again with 'fairscan counts'")
        return cls.from_frame(table.to_pandas(), meta, where)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, meta: dict[str, Any], where: str = "the counts") -> Counts:
        """Counts from the file's table and metadata (:meth:`to_frame`'s inverse)."""
        weighted = meta.get("weights") is not None
        nc = cell_count(meta)
        stats, withheld = [], []
        for gi, gdef in enumerate(meta["groupings"]):
            grouping = Grouping(tuple(_attribute(a) for a in gdef["attributes"]))
            sizes = [a.n_levels for a in grouping.attributes]
            part = df[df["grouping"] == gi]
            if len(part) % nc:
                raise FairscanError(f"{where}: attribute '{grouping.name}' has an incomplete cell table")
            part = part.sort_values(["code", "label", "decision", "decision_b"], kind="stable")
            codes = part["code"].to_numpy(dtype=np.int64)[::nc]
            if len(codes) and (codes.min() < 0 or codes.max() >= int(np.prod(sizes))):
                raise FairscanError(f"{where}: attribute '{grouping.name}' has group codes outside its groups")
            why = part["suppression"].to_numpy(dtype=object)[::nc]
            held = np.asarray([2 if x == "complementary" else 1 if x == "primary" else 0 for x in why], dtype=np.int8)
            held[(held == 0) & part["withheld"].to_numpy(dtype=bool).reshape(-1, nc).any(axis=1)] = 1
            n = part["count"].fillna(0).to_numpy(dtype=np.int64).reshape(-1, nc)
            if (n < 0).any():
                raise FairscanError(f"{where}: attribute '{grouping.name}' has negative counts")
            w = w2 = None
            if weighted:
                w = part["weight_sum"].astype("Float64").fillna(0).to_numpy(dtype=float).reshape(-1, nc)
                w2 = part["weight_sq_sum"].astype("Float64").fillna(0).to_numpy(dtype=float).reshape(-1, nc)
            unravelled = (np.stack(np.unravel_index(codes, sizes), axis=1) if len(codes)
                          else np.zeros((0, len(sizes)), dtype=np.int64))
            stats.append(CellStats(grouping, unravelled.astype(np.int64), n, w, w2))
            withheld.append(held)
        return cls(_with_noise(stats, meta.get("protection", {})), withheld, meta)

    # -- adding files up ------------------------------------------------------------------------
    @classmethod
    def merge(cls, parts: Sequence[Counts], *, suppress_below: int | None = None,
              names: Sequence[str] | None = None) -> Counts:
        """Add up counts of the same rule, label, weights and groups (shards, days, partners).

        Every part must be unprotected (all cells: a withheld cell cannot be added); the
        result is protected with ``suppress_below`` (None: left unprotected). A part that
        does not match is refused with what differs (``names``: how to call the parts)."""
        if not parts:
            raise FairscanError("give at least one counts file to merge")
        names = list(names) if names else [f"part {i + 1}" for i in range(len(parts))]
        first = parts[0]
        for p, name in zip(parts, names, strict=True):
            if p.protection.get("kind") != "none" or any((w > 0).any() for w in p.withheld):
                raise FairscanError(f"{name} is protected ({p.protection.get('kind')}): its withheld cells cannot be "
                                    "added up; merge files written with --protect none, then protect the merged file")
        for p, name in zip(parts[1:], names[1:], strict=True):
            for key, what in (("label", "label"), ("decision", "decision rule"), ("weights", "weights"),
                              ("paired", "paired decision")):
                if _rule(key, p.meta.get(key)) != _rule(key, first.meta.get(key)):
                    raise FairscanError(f"{name} has another {what} than {names[0]}: "
                                        f"{_describe(key, p.meta.get(key))} against "
                                        f"{_describe(key, first.meta.get(key))}; merge files counted alike")
            if [g.name for g in p.groupings] != [g.name for g in first.groupings]:
                raise FairscanError(f"{name} has other groups than {names[0]}: "
                                    f"{', '.join(g.name for g in p.groupings)} against "
                                    f"{', '.join(g.name for g in first.groupings)}; merge files counted alike")
            if p.n_histograms != first.n_histograms:
                raise FairscanError(f"{name} and {names[0]}: one has score histograms, the other not; count both "
                                    "with the same --histograms")
        if first.decision.kind == "budget" and not first.n_histograms:
            raise FairscanError("a budget picks the top rows of each file, so budget counts do not add up: count "
                                "the files with --histograms (the same edges, e.g. --histograms 0.1,0.2,...) to cut "
                                "the budget again from the merged histograms, or use a threshold")
        # each attribute's groups: the union of the parts' (a shard may lack a rare group)
        merged_attrs = {a.name: _merge_attribute([p_a for p in parts for st in p.stats
                                                   for p_a in st.grouping.attributes if p_a.name == a.name], names)
                        for st in first.stats for a in st.grouping.attributes}
        stats = []
        for gi, st in enumerate(first.stats):
            grouping = Grouping(tuple(merged_attrs[a.name] for a in st.grouping.attributes))
            sizes = [a.n_levels for a in grouping.attributes]
            total = int(np.prod(sizes))
            nc = st.n.shape[1]
            n = np.zeros((total, nc), dtype=np.int64)
            w = np.zeros((total, nc)) if first.weights else None
            w2 = np.zeros((total, nc)) if first.weights else None
            for p in parts:
                ps = p.stats[gi]
                if not len(ps.codes):
                    continue
                new_codes = [np.asarray([m.labels.index(a.labels[int(c)]) for c in ps.codes[:, j]], dtype=np.int64)
                             for j, (a, m) in enumerate(zip(ps.grouping.attributes, grouping.attributes, strict=True))]
                idx = np.ravel_multi_index(tuple(new_codes), sizes)
                np.add.at(n, idx, ps.n)
                if w is not None:
                    np.add.at(w, idx, ps.w)
                    np.add.at(w2, idx, ps.w2)
            keep = np.flatnonzero(n.sum(axis=1) > 0)
            codes = np.stack(np.unravel_index(keep, sizes), axis=1).astype(np.int64)
            stats.append(CellStats(grouping, codes, n[keep], None if w is None else w[keep],
                                   None if w2 is None else w2[keep]))
        meta = dict(first.meta)
        meta.update(
            n_rows=sum(p.n_rows for p in parts),
            data_sha256=None, data_hash="merged: the parts' data hashes are listed in 'parts'",
            parts=[{"name": nm, "n_rows": p.n_rows, "data_sha256": p.meta.get("data_sha256"),
                    "data_hash": p.meta.get("data_hash")} for p, nm in zip(parts, names, strict=True)],
            created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(), fairscan_version=__version__,
            warnings=list(dict.fromkeys(w for p in parts for w in p.meta.get("warnings", []))),
            groupings=[{"attributes": [counts_attribute(a) for a in st.grouping.attributes]} for st in stats],
        )
        if all(p.meta.get("totals") for p in parts):
            tot = [p.meta["totals"] for p in parts]
            meta["totals"] = {k: (None if tot[0].get(k) is None else
                                  np.sum([np.asarray(t[k]) for t in tot], axis=0).tolist()) for k in ("n", "w", "w2")}
        if meta.get("paired"):  # each part's columns were hashed apart: see the parts
            meta["paired"] = {**meta["paired"], "models": [{**m, "sha256": None} for m in meta["paired"]["models"]]}
        merged = cls(stats, [np.zeros(len(s.codes), dtype=np.int8) for s in stats], meta)
        merged.meta["protection"] = {"kind": "none", "exact": "every group"}
        if merged.n_histograms:
            h = merged.meta["histograms"]
            merged.meta["histograms"] = {**h, "all": histogram_totals(merged.histograms[0],
                                                                      len(h["edges"]) + 1).tolist()}
        if first.decision.kind == "budget":  # the top K of the whole: cut again from the merged histograms
            spec = first.meta["decision"].get("budget_spec")
            merged, note = merged.recut(budget=spec if spec is not None else first.decision.k)
            merged.meta["warnings"] = [*merged.meta.get("warnings", []), note]
        return merged if suppress_below is None else protect(merged, suppress_below)


def _merge_attribute(attrs: list[Attribute], names: list[str]) -> Attribute:
    """One attribute's definition across the parts: the same column, kind and cut points;
    its groups the union of the parts' (sorted by value, the missing group last)."""
    first = attrs[0]
    for a in attrs[1:]:
        if (a.column, a.kind, a.edges) != (first.column, first.kind, first.edges):
            what = (f"cut at {', '.join(f'{e:g}' for e in a.edges)} against {', '.join(f'{e:g}' for e in first.edges)}"
                    if a.kind == first.kind == "tiers" else f"{a.kind} of '{a.column}' against {first.kind} of "
                                                            f"'{first.column}'")
            how = ("histogram edges" if first.name.startswith("bins of ") else "cut points")
            flag = "--histograms e1,e2,..." if first.name.startswith("bins of ") else "--tiers COL=c1,c2"
            raise FairscanError(f"the parts count '{first.name}' differently ({what}); quantiles differ from shard "
                                f"to shard: count every part with the same {how} ({flag})")
    has_unknown = any(a.has_unknown for a in attrs)
    if first.kind == "tiers":
        base = [lab for lab in first.labels if not (first.has_unknown and lab == first.labels[-1])]
        return replace(first, labels=(*base, UNKNOWN) if has_unknown else tuple(base), has_unknown=has_unknown)
    if all(a.values == first.values for a in attrs):
        values, labels = list(first.values), [lab for lab in first.labels[:len(first.values)]]
    else:
        pairs: dict[Any, str] = {}
        for a in attrs:
            pairs.update(zip(a.values, a.labels[:len(a.values)], strict=True))
        try:
            values = sorted(pairs)
        except TypeError:
            raise FairscanError(f"the parts hold values of different types in '{first.name}'; convert the column "
                                "to one type in every part") from None
        labels = [pairs[v] for v in values]
    notes = list(dict.fromkeys(a.note for a in attrs if a.note))
    return replace(first, labels=(*labels, UNKNOWN) if has_unknown else tuple(labels), values=tuple(values),
                   has_unknown=has_unknown, note="; ".join(notes))


def _rule(key: str, value: Any) -> Any:
    """What must agree between merged files: a budget's own top-K count differs from file to
    file (the budget as given, a share or a count, must not)."""
    v = jsonable(value)
    if key == "paired" and isinstance(v, dict):  # the second rule, not its range or its column's hash
        return _rule("decision", v["decision"])
    if key == "decision" and isinstance(v, dict) and v.get("kind") == "budget":
        v = {**v, "k": None}
    return v


def _describe(key: str, value: Any) -> str:
    if key == "decision" and value:
        return (f"{value['kind']} on '{value['column']}'" +
                (f" at {value['threshold']}" if value.get("threshold") is not None else "") +
                (f" (budget {value['budget_spec']})" if value.get("budget_spec") is not None else ""))
    return plain(value)


def histogram_totals(hist: CellStats, n_bins: int) -> np.ndarray:
    """Rows per (score bin, label) over every group of one histogram grouping: (bins, 2), the
    missing scores' bin dropped."""
    out = np.zeros((n_bins, 2), dtype=np.int64)
    b = hist.codes[:, -1]
    keep = b < n_bins
    for y in (0, 1):
        np.add.at(out[:, y], b[keep], (hist.n[keep, 2 * y] + hist.n[keep, 2 * y + 1]).astype(np.int64))
    return out


def _recut(st: CellStats, hist: CellStats, j: int, n_bins: int, favourable: int) -> CellStats:
    """A grouping's cells when everyone from bin ``j`` up is offered (missing scores never):
    its histogram's counts per (group, label) summed over the bins on each side of the cut."""
    offered = (hist.codes[:, -1] >= j) & (hist.codes[:, -1] < n_bins)
    d = (offered ^ (favourable == 0)).astype(np.int64)
    pos = {tuple(c): i for i, c in enumerate(st.codes)}
    rows = np.asarray([pos[tuple(c)] for c in hist.codes[:, :-1]], dtype=np.int64)

    def cells(x: np.ndarray | None) -> np.ndarray | None:
        if x is None:
            return None
        out = np.zeros((len(st.codes), N_CELLS), dtype=x.dtype)
        for y in (0, 1):  # the stored decision is summed out: the bin decides
            np.add.at(out, (rows, 2 * y + d), x[:, 2 * y] + x[:, 2 * y + 1])
        return out

    return CellStats(st.grouping, st.codes, cells(hist.n), cells(hist.w), cells(hist.w2), cells(hist.noise_var))


def _with_noise(stats: list[CellStats], prot: dict[str, Any]) -> list[CellStats]:
    """A private release's cells with the variance of their noise: each cell of a grouping is
    the sum of the joint table's cells over the attributes it does not use, each noised once."""
    if prot.get("kind") != "differential privacy":
        return stats
    levels = {a["name"]: int(a["levels"]) for a in prot["joint"]}
    out = []
    for st in stats:
        used = {a.name for a in st.grouping.attributes}
        summed = int(np.prod([n for name, n in levels.items() if name not in used], dtype=np.float64))
        out.append(replace(st, noise_var=np.full(st.n.shape, summed * float(prot["noise_variance_per_cell"]))))
    return out


def private_counts(stats: list[CellStats], joint: CellStats, meta: dict[str, Any], epsilon: float,
                   rng: np.random.Generator | None = None) -> Counts:
    """The epsilon-differentially private release of an audit's counts.

    The joint table of every audited attribute (all their groups crossed, times the 4 cells)
    holds each person in exactly one cell, so noising it costs epsilon once (sensitivity 1),
    where noising each attribute's table apart would split epsilon between them. Every cell,
    empty ones too, gets discrete Laplace noise and is clipped at 0
    (:func:`fairscan.privacy.private_joint_counts`); each grouping's table, and the row count,
    are sums of the noisy cells, so they are non-negative and add up consistently. The noise
    comes from the operating system's randomness (``rng`` only in tests), never from a seed.
    The groups' names are taken as public, as an audit's output names them."""
    from fairscan.privacy import discrete_laplace_variance, private_joint_counts

    rng = rng or np.random.default_rng()
    attrs = joint.grouping.attributes
    sizes = [a.n_levels for a in attrs]
    nc = joint.n.shape[1]
    dense = np.zeros((*sizes, nc), dtype=np.int64)
    if len(joint.codes):
        dense[tuple(joint.codes.T)] = joint.n
    noisy = private_joint_counts(dense, epsilon, rng)
    names = [a.name for a in attrs]
    out = []
    for st in stats:
        axes = [names.index(a.name) for a in st.grouping.attributes]
        other = tuple(i for i in range(len(names)) if i not in axes)
        table = noisy.sum(axis=other) if other else noisy
        # the remaining axes are in joint order: put them in the grouping's order
        order = sorted(axes)
        table = np.moveaxis(table, [order.index(i) for i in axes] + [len(axes)], list(range(len(axes) + 1)))
        g_sizes = [a.n_levels for a in st.grouping.attributes]
        codes = np.indices(g_sizes).reshape(len(g_sizes), -1).T.astype(np.int64)
        out.append(CellStats(st.grouping, codes, table.reshape(-1, nc).astype(np.int64)))
    prot = {"kind": "differential privacy", "epsilon": float(epsilon),
            "mechanism": "discrete Laplace noise on every cell of the joint table of the audited attributes "
                         "(sensitivity 1: a person is in one cell), clipped at 0; every table and the row count "
                         "are sums of those cells",
            "noise_variance_per_cell": discrete_laplace_variance(epsilon),
            "joint": [{"name": a.name, "levels": a.n_levels} for a in attrs],
            "exact": "no group: every count carries noise; intervals include it"}
    meta = {**meta, "n_rows": int(noisy.sum()), "protection": prot,
            "totals": {"n": noisy.reshape(-1, nc).sum(axis=0).tolist(), "w": None, "w2": None}}
    if meta.get("histograms"):  # everyone's histogram, from the same noisy cells
        h = meta["histograms"]
        first_hist = out[len(out) - int(h["groupings"])]
        meta["histograms"] = {**h, "all": histogram_totals(first_hist, len(h["edges"]) + 1).tolist()}
    return Counts(_with_noise(out, prot), [np.zeros(len(st.codes), dtype=np.int8) for st in out], meta)


def protect(counts: Counts, suppress_below: int, reference: dict[str, str] | None = None) -> Counts:
    """The counts as the audit releases them: the groups the audit suppresses (fewer than
    ``suppress_below`` rows, plus complementary suppression, the ``reference`` groups kept)
    listed without their cells. The one suppression rule, :func:`fairscan.privacy.suppress`."""
    masks = suppress(count_tables(counts.audited, reference or {}), suppress_below)
    for st, hist, (sup, comp) in zip(counts.audited, counts.histograms, masks, strict=False):
        # a histogram's cells are withheld with their group (a bin is what the explorer publishes)
        pos = {tuple(c): i for i, c in enumerate(st.codes)}
        base = np.asarray([pos[tuple(c)] for c in hist.codes[:, :-1]], dtype=np.int64)
        masks.append((sup[base], comp[base]))
    stats, withheld = [], []
    for st, (sup, comp) in zip(counts.stats, masks, strict=True):
        keep = ~sup[:, None]
        stats.append(CellStats(st.grouping, st.codes, np.where(keep, st.n, 0),
                               None if st.w is None else np.where(keep, st.w, 0.0),
                               None if st.w2 is None else np.where(keep, st.w2, 0.0)))
        withheld.append(np.where(sup, np.where(comp, 2, 1), 0).astype(np.int8))
    meta = {**counts.meta, "protection": {
        "kind": "suppressed", "suppress_below": int(suppress_below),
        "exact": "the groups listed with cells; the others are suppressed as an audit suppresses them (fewer "
                 f"than {int(suppress_below)} rows, or complementary)"}}
    return Counts(stats, withheld, meta)
