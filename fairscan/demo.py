"""The main job on bundled data: train a model on the bank campaign and audit its calls."""

from __future__ import annotations

from fairscan import datasets
from fairscan.audit import audit
from fairscan.modeling import SCORE, train_targeting
from fairscan.report.table import render_table


def run_demo(budget: float = 0.2, seed: int = 0) -> str:
    """Train a gradient-boosting model on bank (without ``duration``, known only after the
    call, and without the audited attributes), call the top ``budget`` share of the hold-out
    customers, and audit those calls by age band and balance tier. Returns the report text."""
    card = datasets.card("bank")
    data = datasets.load("bank")
    tiers = card["default_tiers"]
    model = train_targeting(
        data, card["target"], card["positive_label"], drop=card["drop_for_modeling"],
        sensitive=list(tiers), seed=seed,
    )
    result = audit(
        model.holdout, target=card["target"], positive_label=card["positive_label"], score=SCORE,
        budget=budget, tiers=tiers, seed=seed,
    )
    head = (
        f"Bank marketing: a gradient-boosting model trained on {len(data) - len(model.holdout):,} "
        f"customers (features: {len(model.features)}, without duration, age and balance) ranks "
        f"{len(model.holdout):,} held-out customers (ROC AUC {model.metrics['roc_auc']:.3f}); the "
        f"campaign calls the top {budget:.0%}.\nAudit of those calls by age band and balance tier:\n\n"
    )
    return head + render_table(result)
