"""Why a group is offered less: the gap attributed to the model's features.

The selection-rate gap between a group and its reference (everyone else by default) is split
into one contribution per model feature, by the Shapley decomposition over features of "give
the group the reference's distribution of these features":

- **Replacement by sampling reference rows.** Each of the group's rows gets a donor, a row
  drawn at random from the reference (seeded; a new donor in every pass). A coalition S of
  features takes the donor's values for S and keeps the row's own for the rest, so the
  features in S carry the reference's joint distribution.
- **The decision keeps the audit's rule.** A threshold stays the threshold; a budget's cut
  stays at the original model's cut score (the score of the K-th offer), so a contribution is
  a change in who clears the same bar.
- **Shapley per row.** For each row, v(S) = its decision with S replaced; the row's Shapley
  values over features sum to v(all) - v(none) exactly. With few features (2^p row scorings
  within ``exact_budget``) every coalition is evaluated (exact enumeration); otherwise each
  row walks its own random permutation of the features (the standard permutation estimator,
  unbiased, still adding up exactly per row). The contribution of a feature is minus the mean
  of its per-row values over the group's rows and the passes, so the contributions add up to
  the gap the features explain: the group's rate minus its rate with every feature taken
  from the reference. The rest of the observed gap (donor sampling) is the ``remainder``.
- **Intervals**: a percentile bootstrap over the group's rows (each row's contributions
  averaged over the passes) and, for the gap, over the group's and the reference's rows. With
  permutations, the Monte Carlo standard error of each contribution is stated too.
- The same decomposition of the gap in **mean score** (no cut, so SHAP-style additivity is
  exact), **what-if rates** for the top features (the group's rate with only that feature
  from the reference) and, from :func:`fairscan.groups.proxies.detect_proxies`, whether each
  top feature predicts membership of the group.

Outputs are aggregates over the group and the reference, each at least the suppression
threshold; no row value leaves.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairscan.discover import candidate_attributes, describe_conditions
from fairscan.engines.memory import MemoryEngine
from fairscan.errors import FairscanError, plain, suggest
from fairscan.formatting import jsonable
from fairscan.groups import TierSpec, match_group, resolve
from fairscan.metrics.stats import percentile_interval
from fairscan.params import decision_rule, outward
from fairscan.schemas import SCHEMA_VERSION
from fairscan.version import __version__

__all__ = ["EXACT_BUDGET", "ExplainResult", "explain", "parse_group"]

#: exact enumeration when a pass needs at most this many row scorings (rows x 2^features)
EXACT_BUDGET = 2_000_000
WHAT_IF_TOP = 5


def parse_group(spec: str | Mapping[str, str] | None, what: str) -> dict[str, str]:
    """``{"attribute": "group"}`` from a mapping or ``"ATTR=VALUE[,ATTR=VALUE]"``."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        return {str(k): str(v) for k, v in spec.items()}
    out = {}
    for part in str(spec).split(","):
        attr, eq, value = part.partition("=")
        if not eq or not attr.strip():
            raise FairscanError(f"{what} {plain(spec)}: write ATTRIBUTE=GROUP, e.g. balance=Q1")
        out[attr.strip()] = value.strip()
    return out


@dataclass
class ExplainResult:
    """The gap, its attribution to features, what-if rates and proxies: aggregates only."""

    contributions: pd.DataFrame
    what_if: pd.DataFrame
    meta: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON structure (``fairscan/schemas/explain.schema.json``)."""
        def rows(df: pd.DataFrame, cols: Sequence[str]) -> list[dict[str, Any]]:
            out = []
            for r in df.to_dict("records"):
                obj = {c: jsonable(r[c]) for c in cols}
                for k in [c.removesuffix("_ci_low") for c in df.columns if c.endswith("_ci_low")]:
                    obj[f"{k}_ci" if k != "contribution" and k != "selection_rate" else "ci"] = [
                        jsonable(r[f"{k}_ci_low"]), jsonable(r[f"{k}_ci_high"])]
                out.append(obj)
            return out

        return {
            "schema_version": SCHEMA_VERSION,
            **{k: jsonable(v) for k, v in self.meta.items()},
            "contributions": rows(self.contributions, ["feature", "contribution", "score_contribution", "mc_error",
                                                       "proxy_auc", "is_attribute"]),
            "what_if": rows(self.what_if, ["feature", "selection_rate"]),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_markdown(self, title: str = "fairscan: why is this group offered less?") -> str:
        from fairscan.report.explain import render_explain_markdown

        return render_explain_markdown(self, title)

    def to_html(self, title: str = "fairscan: why is this group offered less?") -> str:
        from fairscan.report.explain import render_explain_html

        return render_explain_html(self, title)


def _membership(data: pd.DataFrame, spec: Mapping[str, str], tiers: Mapping[str, TierSpec] | None,
                what: str) -> tuple[np.ndarray, list[tuple[str, str]], dict[str, Any], str]:
    """Which rows are in the group ``spec`` ({attribute: group}), its conditions, the tier
    specs used and its description in discovery's words; groups named as the audit names them
    (a tier by its short name, Q1), resolved as discovery resolves attributes."""
    engine = MemoryEngine(data)
    cands = candidate_attributes(engine, exclude=[], attributes=list(spec), tiers=tiers)
    attrs = {a.name: a for g in resolve(cands.spec, engine) for a in g.attributes}
    inside = np.ones(len(data), dtype=bool)
    conditions, pairs = [], []
    for attr, value in spec.items():
        a = attrs[attr]
        label = match_group(value, list(a.labels), what=what, where=f"attribute '{attr}'")
        codes = engine.attribute_codes(a)
        inside &= codes == a.labels.index(label)
        conditions.append((attr, label))
        pairs.append((a, label))
    return inside, conditions, dict(cands.spec.tiers), describe_conditions(pairs)


def explain(
    data: Any,
    *,
    model: Any,
    group: str | Mapping[str, str],
    reference: str | Mapping[str, str] | None = None,
    target: str | None = None,
    threshold: float | None = None,
    budget: int | float | str | None = None,
    features: Sequence[str] | None = None,
    method: str = "shapley",
    n_permutations: int | None = None,
    seed: int = 0,
    tiers: Mapping[str, TierSpec] | None = None,
    favourable_decision: int = 1,
    positive_label: object = None,
    n_boot: int = 500,
    confidence: float = 0.95,
    suppress_below: int = 10,
    max_rows: int = 50_000,
    scoring_budget: int = 600_000,
    proxies: bool = True,
    trust: Sequence[str] = (),
    trust_pickle: bool = False,
    progress: Any = None,
) -> ExplainResult:
    """Attribute the selection-rate gap between ``group`` and ``reference`` to the model's
    features (see the module docstring for the method).

    ``group``/``reference``: ``{attribute: group}`` or ``"ATTR=GROUP[,ATTR=GROUP]"`` (a tier
    by its short name, ``balance=Q1``; numbers are cut in 4 quantile tiers unless ``tiers``
    says otherwise); the reference defaults to everyone else. ``model``: a model file,
    ``reference:NAME`` or a fitted object; ``threshold`` or ``budget`` as in the audit.
    ``features``: the features to attribute to (default: the model's). ``n_permutations``:
    passes, each with new donors (and, when the features are too many to enumerate, a new
    permutation per row); by default as many as fit in ``scoring_budget`` row scorings by the
    model (at least 1; the model's speed sets the time). ``max_rows``: at most this many rows of
    the group and of the reference are used (a seeded sample; the gap is always measured on
    all rows). ``target`` and ``positive_label`` are recorded only.
    """
    note = progress or (lambda fraction, text: None)
    from fairscan import modeling

    if method != "shapley":
        raise FairscanError(f"method '{method}' is not known{suggest(str(method), ['shapley'])}; use shapley")
    rule = decision_rule(None, None, threshold, budget, favourable_decision, model=True)
    if isinstance(data, str | os.PathLike):
        from fairscan.io import read_table

        data = read_table(data)
    if not isinstance(data, pd.DataFrame):
        data = data.to_pandas() if hasattr(data, "to_pandas") else pd.DataFrame(data)
    group_spec, ref_spec = parse_group(group, "--group"), parse_group(reference, "--reference")
    if not group_spec:
        raise FairscanError("name the group to explain: --group ATTRIBUTE=GROUP, e.g. balance=Q1")
    for attr in [*group_spec, *ref_spec]:
        if attr not in data.columns:
            raise FairscanError(f"attribute column '{attr}' not found{suggest(attr, [str(c) for c in data.columns])}")

    note(0.02, "loading the model")
    model, card, model_meta = modeling.open_model(model, trust=trust, trust_pickle=trust_pickle)
    inputs = modeling.model_features(model, card)
    if inputs is None:
        raise FairscanError("the model does not say which columns it reads: give features=[...] (--features)")
    missing = [c for c in inputs if c not in data.columns]
    if missing:
        raise FairscanError(f"the data lack the model's input column(s) {', '.join(missing[:5])}")
    feats = list(features) if features is not None else list(inputs)
    for f in feats:
        if f not in inputs:
            raise FairscanError(f"'{f}' is not an input of the model{suggest(f, inputs)}")
    p = len(feats)
    if p == 0:
        raise FairscanError("no feature to attribute the gap to")

    in_group, g_conditions, tier_specs, g_text = _membership(data, group_spec, tiers, "group")
    if ref_spec:
        in_ref, r_conditions, more, r_text = _membership(data, ref_spec, tiers, "reference group")
        tier_specs |= more
        if (in_group & in_ref).any():
            raise FairscanError("the group and the reference overlap; name two groups that share no one")
    else:
        in_ref, r_conditions, r_text = ~in_group, [], "everyone else"
    n_g, n_r = int(in_group.sum()), int(in_ref.sum())
    for n, who in ((n_g, "the group"), (n_r, "the reference")):
        if n < max(1, suppress_below):
            raise FairscanError(f"{who} has {'no one' if n == 0 else f'fewer than {suppress_below} people'}: too few "
                                "to explain without revealing them; choose a larger group")

    note(0.08, "scoring everyone and placing the cut")
    X = data[inputs]
    scores = modeling.score(model, X, positive_label=positive_label, card=card)
    lo, hi = float(np.min(scores)), float(np.max(scores))
    if rule.budget is not None:
        from fairscan.validation import resolve_budget

        k = resolve_budget(rule.budget, len(data))
        if k == 0:
            raise FairscanError("a budget of 0 offers no one: there is no gap to explain")
        cut = float(np.sort(scores)[::-1][k - 1])
    else:
        cut = float(rule.threshold)  # type: ignore[arg-type]
        if not lo <= cut <= hi:
            raise FairscanError(f"threshold {cut:g} is outside the scores ({lo:g} to {hi:g}): everyone would get the "
                                "same decision")
    fav = rule.favourable

    def offered(s: np.ndarray) -> np.ndarray:
        above = s >= cut
        return above if fav == 1 else ~above

    d_all = offered(scores)

    def scorer(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(modeling.score(model, frame, positive_label=positive_label, card=card), dtype=float)

    rng = np.random.default_rng(seed)
    g_rows = np.flatnonzero(in_group)
    r_rows = np.flatnonzero(in_ref)
    sr_g, sr_r = float(d_all[g_rows].mean()), float(d_all[r_rows].mean())
    ms_g, ms_r = float(scores[g_rows].mean()), float(scores[r_rows].mean())
    work = rng.choice(g_rows, max_rows, replace=False) if n_g > max_rows else g_rows
    donors_pool = rng.choice(r_rows, max_rows, replace=False) if n_r > max_rows else r_rows
    n = len(work)
    exact = n * (1 << p) <= EXACT_BUDGET
    per_pass = n * max(1, (1 << p) - 2 if exact else p - 1)
    passes = int(n_permutations) if n_permutations is not None else max(1, min(50, scoring_budget // per_pass))
    if passes < 1:
        raise FairscanError(f"n_permutations must be at least 1, got {plain(n_permutations)}")

    cols = {c: X[c].to_numpy() for c in inputs}  # once: pandas' text columns convert slowly
    dtypes = {c: X[c].dtype for c in inputs}
    full_known = set(feats) == set(inputs)  # every input replaced: the donor's own score
    own = {c: v[work] for c, v in cols.items()}
    phis, phis_s, picks = [], [], []  # per pass: each row's contributions and its donor
    v_none = offered(scores[work]).astype(float)
    v_full = np.zeros(n)
    for r in range(passes):
        note(0.1 + 0.6 * r / passes, f"attributing the gap: pass {r + 1} of {passes}")
        pick = rng.choice(donors_pool, n, replace=True)
        donor = {c: v[pick] for c, v in cols.items()}
        ends = (scores[work], scores[pick] if full_known else None)
        if exact:
            phi, phi_s, full = _exact_pass(scorer, own, donor, feats, inputs, dtypes, offered, ends)
        else:
            phi, phi_s, full = _permutation_pass(scorer, own, donor, feats, inputs, dtypes, offered, ends, rng)
        phis.append(-phi)  # a contribution to the gap: minus the change when the group takes the reference's
        phis_s.append(-phi_s)
        picks.append(np.searchsorted(donors_pool, pick) if np.all(np.diff(donors_pool) > 0) else
                     pd.Index(donors_pool).get_indexer(pick))
        v_full += full / passes
    contrib_rows = np.mean(phis, axis=0)
    score_rows = np.mean(phis_s, axis=0)

    # contributions to the gap group - reference: minus the change when the group takes the
    # reference's features
    explained = float(v_none.mean() - v_full.mean())
    gap = sr_g - sr_r
    note(0.75, "bootstrapping the intervals")
    boot_c, boot_s = _two_sample_bootstrap(np.stack(phis), np.stack(phis_s), np.stack(picks), len(donors_pool),
                                           n_boot, rng)
    nan = np.full(p, np.nan)
    c_lo, c_hi = percentile_interval(boot_c, confidence) if n_boot else (nan, nan)
    s_lo, s_hi = percentile_interval(boot_s, confidence) if n_boot else (nan, nan)
    bg = rng.integers(0, n_g, size=(n_boot, n_g)) if n_boot else None
    br = rng.integers(0, n_r, size=(n_boot, n_r)) if n_boot else None
    d_g, d_r = d_all[g_rows].astype(float), d_all[r_rows].astype(float)
    if n_boot:
        gap_reps = d_g[bg].mean(axis=1) - d_r[br].mean(axis=1)
        gap_ci = [float(x[0]) for x in percentile_interval(gap_reps[:, None], confidence)]
    else:
        gap_ci = [math.nan, math.nan]
    mc = contrib_rows.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.full(p, np.nan)
    contributions = pd.DataFrame({
        "feature": feats,
        "contribution": contrib_rows.mean(axis=0),
        "contribution_ci_low": c_lo, "contribution_ci_high": c_hi,
        "score_contribution": score_rows.mean(axis=0),
        "score_contribution_ci_low": s_lo, "score_contribution_ci_high": s_hi,
        "mc_error": mc if not exact else np.zeros(p),
    })
    attrs_used = {a for a, _ in [*g_conditions, *r_conditions]}
    contributions["is_attribute"] = contributions["feature"].isin(attrs_used)
    contributions = contributions.reindex(contributions["contribution"].abs().sort_values(ascending=False).index)
    contributions = contributions.reset_index(drop=True)

    note(0.8, "what-if rates for the top features")
    top = list(contributions["feature"].head(WHAT_IF_TOP))
    what_if = _what_if(scorer, own, cols, dtypes, donors_pool, top, inputs, offered, rng, n_boot, confidence)
    contributions["proxy_auc"] = np.nan
    proxy_doc = None
    if proxies:
        note(0.9, "checking which top features are proxies of the group")
        proxy_doc = _proxies(data, in_group, in_ref, top, seed)
        auc = {f["feature"]: f["score"] for f in proxy_doc["features"]}
        contributions["proxy_auc"] = contributions["feature"].map(auc).astype(float)

    tied = int(np.sum(scores == cut)) if rule.budget is not None else 0
    meta = {
        "fairscan_version": __version__,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "n_rows": len(data),
        "group": {"conditions": [{"attribute": a, "group": g} for a, g in g_conditions],
                  "description": g_text, "count": n_g},
        "reference": {"conditions": [{"attribute": a, "group": g} for a, g in r_conditions],
                      "description": r_text, "count": n_r},
        "tiers": {c: (list(t) if not isinstance(t, int) else t) for c, t in tier_specs.items()},
        "model": model_meta,
        "target": target,
        # a budget's cut is one customer's score: published rounded outward, as the audit's score range
        "decision": {"kind": "budget" if rule.budget is not None else "threshold",
                     "cut_score_range": outward((cut, cut)) if rule.budget is not None else [cut, cut],
                     "budget": rule.budget, "threshold": rule.threshold, "favourable_decision": fav,
                     "description": (f"score at or above the cut of a budget of {rule.budget} (about "
                                     f"{outward((cut, cut))[0]:.3g})"
                                     if rule.budget is not None else f"score >= {cut:g}")
                     + ("" if fav == 1 else "; those are refused"),
                     "rows_tied_at_cut": tied},
        "selection_rate": {"group": sr_g, "reference": sr_r},
        "mean_score": {"group": ms_g, "reference": ms_r, "gap": ms_g - ms_r},
        "gap": gap,
        "gap_ci": gap_ci,
        "explained": explained,
        "remainder": gap - explained,
        "method": {
            "name": "shapley", "enumeration": "exact" if exact else "permutations", "passes": passes,
            "replacement": "sampling reference rows (one donor per group row and pass, seeded)",
            "rows_used": {"group": n, "reference": len(donors_pool)}, "seed": seed, "n_boot": n_boot,
            "confidence": confidence,
            "interval": "percentile bootstrap over the group's rows (the gap: over the group's and the reference's)",
        },
        "proxies": proxy_doc,
        "features": feats,
    }
    note(1.0, "done")
    return ExplainResult(contributions, what_if, meta)


def _two_sample_bootstrap(phi: np.ndarray, phi_s: np.ndarray, picks: np.ndarray, n_donors: int, n_boot: int,
                          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap replicates of the mean contributions over the group's rows and the
    reference's: each replicate draws both with replacement, and a (row, pass) counts as often
    as its row times its donor were drawn. ``phi``: (passes, rows, features); ``picks``:
    (passes, rows) each row's donor, as a position in the reference's rows."""
    passes, n, p = phi.shape
    out_c, out_s = np.zeros((n_boot, p)), np.zeros((n_boot, p))
    flat_c, flat_s = phi.reshape(passes * n, p), phi_s.reshape(passes * n, p)
    for start in range(0, n_boot, 16):
        b = min(16, n_boot - start)
        wg = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(b)]).astype(float)
        wr = np.stack([np.bincount(rng.integers(0, n_donors, n_donors), minlength=n_donors)
                       for _ in range(b)]).astype(float)
        w = (wg[:, None, :] * wr[:, picks]).reshape(b, passes * n)  # (replicates, passes x rows)
        total = w.sum(axis=1, keepdims=True)
        total[total == 0] = np.nan
        out_c[start:start + b] = (w @ flat_c) / total
        out_s[start:start + b] = (w @ flat_s) / total
    return out_c, out_s


def _frame(arrays: Mapping[str, np.ndarray], inputs: Sequence[str], dtypes: Mapping[str, Any]) -> pd.DataFrame:
    """Rows for the model, each column in the dtype it was trained on."""
    return pd.DataFrame({c: pd.array(arrays[c], dtype=dtypes[c]) if isinstance(dtypes[c], pd.CategoricalDtype)
                         else arrays[c] for c in inputs})


def _stack(own: Mapping[str, np.ndarray], donor: Mapping[str, np.ndarray], masks: np.ndarray, feats: Sequence[str],
           inputs: Sequence[str], dtypes: Mapping[str, Any]) -> pd.DataFrame:
    """len(masks) blocks of the group's rows: in block b, feature j comes from the donor where
    masks[b, :, j] (shape: blocks x rows x features)."""
    blocks = masks.shape[0]
    out = {}
    for c in inputs:
        mine = np.tile(own[c], blocks)
        if c in feats:
            out[c] = np.where(masks[:, :, feats.index(c)].reshape(-1), np.tile(donor[c], blocks), mine)
        else:
            out[c] = mine
    return _frame(out, inputs, dtypes)


def _exact_pass(scorer: Any, own: Mapping[str, np.ndarray], donor: Mapping[str, np.ndarray], feats: list[str],
                inputs: Sequence[str], dtypes: Mapping[str, Any], offered: Any,
                ends: tuple[np.ndarray, np.ndarray | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every row's exact Shapley values (decision and score) over all 2^p coalitions."""
    p = len(feats)
    n = len(ends[0])
    coalitions = np.arange(1 << p)
    bits = ((coalitions[:, None] >> np.arange(p)) & 1).astype(bool)  # (2^p, p)
    inner = slice(1, (1 << p) - 1 if ends[1] is not None else 1 << p)  # the none and all ends are known
    masks = np.broadcast_to(bits[inner][:, None, :], (len(coalitions[inner]), n, p))
    s = np.empty((1 << p, n))
    s[0] = ends[0]
    if ends[1] is not None:
        s[-1] = ends[1]
    s[inner] = scorer(_stack(own, donor, masks, feats, inputs, dtypes)).reshape(-1, n)
    d = offered(s).astype(float)
    size = bits.sum(axis=1)
    fact = [math.factorial(i) for i in range(p + 1)]
    phi, phi_s = np.zeros((n, p)), np.zeros((n, p))
    for j in range(p):
        without = np.flatnonzero(~bits[:, j])
        w = np.array([fact[size[c]] * fact[p - size[c] - 1] / fact[p] for c in without])
        phi[:, j] = w @ (d[without | (1 << j)] - d[without])
        phi_s[:, j] = w @ (s[without | (1 << j)] - s[without])
    return phi, phi_s, d[-1]


def _permutation_pass(scorer: Any, own: Mapping[str, np.ndarray], donor: Mapping[str, np.ndarray], feats: list[str],
                      inputs: Sequence[str], dtypes: Mapping[str, Any], offered: Any,
                      ends: tuple[np.ndarray, np.ndarray | None],
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every row walks its own random order of the features, taking them from its donor one
    by one: the changes are that row's (unbiased) Shapley estimates, adding up exactly."""
    p = len(feats)
    n = len(ends[0])
    order = np.argsort(rng.random((n, p)), axis=1)  # order[i, k]: the k-th feature row i takes
    rank = np.argsort(order, axis=1)  # rank[i, j]: when row i takes feature j
    last = p if ends[1] is not None else p + 1  # steps 1 .. last-1 are scored
    steps = np.arange(1, last)
    masks = rank[None, :, :] < steps[:, None, None]  # after k steps, the first k features taken
    s = np.empty((p + 1, n))
    s[0] = ends[0]
    if ends[1] is not None:
        s[p] = ends[1]
    if len(steps):
        s[1:last] = scorer(_stack(own, donor, masks, feats, inputs, dtypes)).reshape(-1, n)
    d = offered(s).astype(float)
    rows = np.arange(n)
    phi, phi_s = np.zeros((n, p)), np.zeros((n, p))
    for k in range(p):
        j = order[:, k]
        phi[rows, j] = d[k + 1] - d[k]
        phi_s[rows, j] = s[k + 1] - s[k]
    return phi, phi_s, d[-1]


def _what_if(scorer: Any, own: Mapping[str, np.ndarray], cols: Mapping[str, np.ndarray], dtypes: Mapping[str, Any],
             donors_pool: np.ndarray, top: list[str], inputs: Sequence[str], offered: Any, rng: np.random.Generator,
             n_boot: int, confidence: float) -> pd.DataFrame:
    """The group's selection rate with only one feature taken from the reference (one donor
    per row; all top features scored in one batch)."""
    n = len(next(iter(own.values())))
    pick = rng.choice(donors_pool, n, replace=True)
    blocks = {c: np.tile(own[c], len(top)) for c in inputs}
    for b, f in enumerate(top):
        blocks[f][b * n:(b + 1) * n] = cols[f][pick]
    d = offered(scorer(_frame(blocks, inputs, dtypes))).astype(float).reshape(len(top), n)
    rows = []
    for b, f in enumerate(top):
        reps = d[b][rng.integers(0, n, size=(n_boot, n))].mean(axis=1) if n_boot else np.zeros(0)
        lo, hi = percentile_interval(reps[:, None], confidence) if n_boot else ([math.nan], [math.nan])
        rows.append({"feature": f, "selection_rate": float(d[b].mean()),
                     "selection_rate_ci_low": float(lo[0]), "selection_rate_ci_high": float(hi[0])})
    return pd.DataFrame(rows, columns=["feature", "selection_rate", "selection_rate_ci_low", "selection_rate_ci_high"])


def _proxies(data: pd.DataFrame, in_group: np.ndarray, in_ref: np.ndarray, top: list[str], seed: int) -> dict:
    """How well each top feature alone predicts membership of the group (vs the reference)."""
    from fairscan.groups.proxies import detect_proxies

    keep = in_group | in_ref
    frame = data.loc[keep, top].assign(__group__=np.where(in_group[keep], "group", "reference"))
    report = detect_proxies(frame, "__group__", top, seed=seed, positive="group")
    return report.to_dict()
