"""fairscan: find and fix disparate exclusion in targeting and recommendation models."""

from fairscan.audit import AuditResult, audit, counts
from fairscan.compare import ComparisonResult, compare
from fairscan.discover import DiscoveryResult, discover
from fairscan.engines.counts import Counts
from fairscan.errors import FairscanError
from fairscan.explain import ExplainResult, explain
from fairscan.version import __version__

__all__ = ["AuditResult", "ComparisonResult", "Counts", "DiscoveryResult", "ExplainResult", "FairscanError",
           "__version__", "audit", "compare", "counts", "discover", "explain"]
