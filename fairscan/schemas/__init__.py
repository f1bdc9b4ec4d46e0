"""Published JSON Schemas of fairscan's outputs (the output contract)."""

from __future__ import annotations

import json
from importlib import resources


def load(name: str = "audit") -> dict:
    """The JSON Schema named ``name`` (``audit``)."""
    return json.loads(resources.files(__package__).joinpath(f"{name}.schema.json").read_text("utf-8"))
