"""fairscan: find and fix disparate exclusion in targeting and recommendation models."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fairscan")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

from fairscan.audit import AuditResult, audit
from fairscan.errors import FairscanError

__all__ = ["AuditResult", "FairscanError", "__version__", "audit"]
