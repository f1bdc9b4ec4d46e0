"""Audits by an *inferred* group (purchasing power from a proxy model), with the doubt shown.

When the tier is not observed for everyone, a proxy model (``fit_tier_model``) gives each
person a probability of belonging to each tier. The audit is then run twice:

- **hard**: everyone assigned to their most likely tier;
- **soft**: everyone counted in every tier with their membership probability (weighted
  counts; intervals on the Kish effective size);

and, where the tier is observed (the labelled rows), a third time by the **observed** tier.
Labelled rows use their *out-of-fold* probabilities, so the model never predicts a person it
was trained on. The comparison table shows, per metric and tier, how much the disparity and
the verdict depend on the inference, next to the proxy model's out-of-fold accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairscan.audit import AuditResult, audit, decide
from fairscan.errors import FairscanError
from fairscan.groups.purchasing import INFERRED, hard_tiers, infer_tiers, membership

__all__ = ["INFERRED", "InferredAudit", "audit_inferred", "infer_tiers", "membership"]


@dataclass
class InferredAudit:
    """Hard, soft and (where possible) observed audits by an inferred tier, compared."""

    name: str
    hard: AuditResult
    soft: AuditResult
    observed: AuditResult | None
    comparison: pd.DataFrame
    proxy: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        from fairscan.formatting import jsonable

        return {
            "attribute": self.name,
            "proxy": jsonable(self.proxy),
            "comparison": [{k: jsonable(v) for k, v in r.items()} for r in self.comparison.to_dict("records")],
            "hard": self.hard.to_dict(),
            "soft": self.soft.to_dict(),
            "observed": self.observed.to_dict() if self.observed is not None else None,
        }


def audit_inferred(
    data: pd.DataFrame,
    tier_model: Any,
    *,
    name: str = INFERRED,
    sensitive: list[str] | None = None,
    observed: bool = True,
    **kwargs: Any,
) -> InferredAudit:
    """Audit by a tier inferred by ``tier_model`` (see the module docstring).

    ``kwargs`` are ``fairscan.audit``'s (target, score/prediction, threshold/budget, ...); the
    decision is taken once on the original rows, so a budget means the same offers in all
    three audits.
    """
    if name in data.columns:
        raise FairscanError(f"column '{name}' already exists; choose another name for the inferred tier")
    weights = kwargs.pop("weights", None)
    proba = membership(data, tier_model)
    classes = [str(c) for c in proba.columns]
    offer = decide(data, prediction=kwargs.pop("prediction", None), score=kwargs.pop("score", None),
                   threshold=kwargs.pop("threshold", None), budget=kwargs.pop("budget", None),
                   favourable_decision=kwargs.pop("favourable_decision", 1))
    kwargs.pop("model", None)
    base = data.assign(__offer__=offer)
    others = list(sensitive or [])
    hard = audit(base.assign(**{name: hard_tiers(proba)}), prediction="__offer__", sensitive=[name, *others],
                 weights=weights, **kwargs)

    # soft: every row once per tier it may belong to, weighted by its probability
    p = proba.to_numpy()
    rows, tiers = np.nonzero(p > 0)
    long = base.iloc[rows].reset_index(drop=True)
    long[name] = pd.Categorical(np.asarray(classes, dtype=object)[tiers], categories=classes)
    # a row's weight (if any) times its membership probability
    long["__membership__"] = p[rows, tiers] * (long[weights].to_numpy(dtype=float) if weights else 1.0)
    soft = audit(long, prediction="__offer__", sensitive=[name], weights="__membership__", **kwargs)

    obs = None
    tier_col = getattr(tier_model, "tier", None)
    if observed and tier_col in data.columns and data[tier_col].notna().sum() > 0:
        labelled = base[data[tier_col].notna()]
        obs = audit(labelled.assign(**{name: labelled[tier_col].astype(str)}), prediction="__offer__",
                    sensitive=[name], weights=weights, **kwargs)

    proxy = {
        "tier_column": tier_col, "classes": classes,
        "accuracy": getattr(tier_model, "accuracy", None), "accuracy_ci": list(getattr(tier_model, "accuracy_ci", ())),
        "majority_rate": getattr(tier_model, "majority_rate", None),
        "n_labelled": getattr(tier_model, "n_labelled", None),
        "note": "labelled rows use out-of-fold membership probabilities",
    }
    return InferredAudit(name, hard, soft, obs, _compare(name, hard, soft, obs), proxy)


def _compare(name: str, hard: AuditResult, soft: AuditResult, obs: AuditResult | None) -> pd.DataFrame:
    """Per judged metric and tier: value, difference to the reference and verdict, side by side."""
    def pick(r: AuditResult | None, label: str) -> pd.DataFrame:
        if r is None:
            return pd.DataFrame(columns=["metric", "group"])
        d = r.disparities[r.disparities["attribute"] == name][["metric", "group", "reference", "group_value",
                                                                 "difference", "ratio"]]
        f = r.findings[r.findings["attribute"] == name][["metric", "group", "verdict"]]
        out = d.merge(f, on=["metric", "group"], how="left")
        return out.rename(columns={c: f"{c}_{label}" for c in ("reference", "group_value", "difference", "ratio",
                                                               "verdict")})

    out = pick(hard, "hard").merge(pick(soft, "soft"), on=["metric", "group"], how="outer")
    if obs is not None:
        out = out.merge(pick(obs, "observed"), on=["metric", "group"], how="left")
    judged = set(hard.meta["settings"]["tolerances"])
    out = out[out["metric"].isin(judged)].reset_index(drop=True)
    out["verdict_changes"] = out["verdict_hard"] != out["verdict_soft"]
    return out
