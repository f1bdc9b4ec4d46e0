"""Published JSON Schemas of fairscan's outputs (the output contract)."""

from __future__ import annotations

import json
from importlib import resources

__all__ = ["SCHEMA_VERSION", "load"]

#: the version of every JSON output's layout (audit, recommendation audit, mitigation)
SCHEMA_VERSION = "1.0"


def load(name: str = "audit") -> dict:
    """The JSON Schema named ``name`` (``audit``)."""
    return json.loads(resources.files(__package__).joinpath(f"{name}.schema.json").read_text("utf-8"))
