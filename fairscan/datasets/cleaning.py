"""What is specific to one bundled dataset: Online Retail's cleaning and the coupon survey's
income brackets. The general tools (spend tiers, proxy models of a tier) live in
:mod:`fairscan.groups.purchasing` and know nothing of these datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairscan.validation import require_columns

__all__ = [
    "COUPON_INCOME_TIERS", "COUPON_RESPONDENT_COLUMNS", "clean_online_retail",
    "coupon_income_order",
]


def clean_online_retail(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Clean the Online Retail lines (the data card's rules); return (lines, removed).

    Removed, each line counted under the first reason that applies, in this order:
    ``cancellation`` (InvoiceNo starts with "C"), ``non_positive_quantity``,
    ``non_positive_price`` (UnitPrice <= 0) and ``missing_customer`` (no CustomerID). The
    counts add up to the number of lines removed. The kept lines keep their original index
    and gain ``amount`` = Quantity * UnitPrice.
    """
    require_columns(df, ["InvoiceNo", "Quantity", "UnitPrice", "CustomerID"])
    invoice = df["InvoiceNo"].astype("string")
    reasons = {
        "cancellation": invoice.str.startswith("C").fillna(False).to_numpy(dtype=bool),
        "non_positive_quantity": ~(df["Quantity"] > 0).fillna(False).to_numpy(dtype=bool),
        "non_positive_price": ~(df["UnitPrice"] > 0).fillna(False).to_numpy(dtype=bool),
        "missing_customer": df["CustomerID"].isna().to_numpy(dtype=bool),
    }
    removed: dict[str, int] = {}
    drop = np.zeros(len(df), dtype=bool)
    for reason, mask in reasons.items():
        removed[reason] = int((mask & ~drop).sum())
        drop |= mask
    out = df.loc[~drop].copy()
    out["amount"] = out["Quantity"].astype("float64") * out["UnitPrice"].astype("float64")
    return out, removed


_COUPON_INCOME = (
    "Less than $12500",
    "$12500 - $24999",
    "$25000 - $37499",
    "$37500 - $49999",
    "$50000 - $62499",
    "$62500 - $74999",
    "$75000 - $87499",
    "$87500 - $99999",
    "$100000 or More",
)

#: Coupon income brackets -> purchasing-power tiers: low below $37,500; middle $37,500 to
#: $87,499; high $87,500 and more.
COUPON_INCOME_TIERS: dict[str, str] = {
    b: ("low" if i < 3 else "middle" if i < 7 else "high") for i, b in enumerate(_COUPON_INCOME)
}

#: Coupon columns describing the respondent (demographics and habits), not the scenario.
#: Their combination identifies a respondent (567 profiles, each with one income bracket):
#: pass it as ``groups`` to :func:`fit_tier_model` for an accuracy that holds for new people.
COUPON_RESPONDENT_COLUMNS: tuple[str, ...] = (
    "gender", "age", "maritalStatus", "has_children", "education", "occupation", "car",
    "Bar", "CoffeeHouse", "CarryAway", "RestaurantLessThan20", "Restaurant20To50",
)


def coupon_income_order() -> list[str]:
    """The coupon data's 9 income brackets, lowest first."""
    return list(_COUPON_INCOME)
