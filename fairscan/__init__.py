"""fairscan: find and fix disparate exclusion in targeting and recommendation models."""

from fairscan.audit import AuditResult, audit
from fairscan.errors import FairscanError
from fairscan.version import __version__

__all__ = ["AuditResult", "FairscanError", "__version__", "audit"]
