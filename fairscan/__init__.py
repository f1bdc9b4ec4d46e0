"""fairscan: find and fix disparate exclusion in targeting and recommendation models.

The public names below are imported on first use, so that ``fairscan --version``, ``fairscan
app`` and ``python -c "import fairscan.errors"`` do not pay for pandas and the analyses up
front. ``fairscan.audit``, ``fairscan.compare``, ``fairscan.discover`` and ``fairscan.explain``
are always the functions, also after their modules have been imported.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from fairscan.errors import FairscanError
from fairscan.version import __version__

if TYPE_CHECKING:
    from fairscan.audit import AuditResult, audit, counts
    from fairscan.compare import ComparisonResult, compare
    from fairscan.discover import DiscoveryResult, discover
    from fairscan.engines.counts import Counts
    from fairscan.explain import ExplainResult, explain
    from fairscan.value import ValueResult, audit_value

__all__ = ["AuditResult", "ComparisonResult", "Counts", "DiscoveryResult", "ExplainResult", "FairscanError",
           "ValueResult", "__version__", "audit", "audit_value", "compare", "counts", "discover", "explain"]

#: public name -> the module that defines it
_HOME = {"AuditResult": "fairscan.audit", "audit": "fairscan.audit", "counts": "fairscan.audit",
         "ComparisonResult": "fairscan.compare", "compare": "fairscan.compare",
         "DiscoveryResult": "fairscan.discover", "discover": "fairscan.discover",
         "Counts": "fairscan.engines.counts", "ExplainResult": "fairscan.explain", "explain": "fairscan.explain",
         "ValueResult": "fairscan.value", "audit_value": "fairscan.value"}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'fairscan' has no attribute '{name}'")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})


class _Package(types.ModuleType):
    """Importing the submodule ``fairscan.audit`` makes Python set the package's ``audit``
    attribute to that module; a public function of the same name keeps its place instead."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _HOME.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
