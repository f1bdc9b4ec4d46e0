"""The main job on bundled data: audit the reference bank model's campaign calls."""

from __future__ import annotations

from fairscan import datasets
from fairscan.audit import audit
from fairscan.modeling import SCORE, reference_scores
from fairscan.report.table import render_table

__all__ = ["run_demo"]


def run_demo(budget: float = 0.2, seed: int = 0) -> str:
    """Take the reference bank model (gradient boosting, trained without ``duration``, which
    is known only after the call, and without the sensitive attributes), call the top
    ``budget`` share of its held-out customers, and audit those calls by age band and balance
    tier. Returns the report text."""
    card, scores = reference_scores("bank")
    tiers = datasets.card("bank")["default_tiers"]
    result = audit(
        scores, target=card["target"], positive_label=card["positive_label"], score=SCORE,
        budget=budget, tiers=tiers, seed=seed,
    )
    m = card["metrics"]
    head = (
        f"Bank marketing: the reference model ({card['model']}; {len(card['features'])} features, "
        f"without duration and without {', '.join(card['sensitive'])}) ranks {len(scores):,} held-out "
        f"customers (ROC AUC {m['roc_auc']:.3f}); the campaign calls the top {budget:.0%}.\n"
        "Audit of those calls by age band and balance tier:\n\n"
    )
    return head + render_table(result)
