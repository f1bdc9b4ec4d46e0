"""fairscan's version, for every output that records it (importing it imports nothing else)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fairscan")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

__all__ = ["__version__"]
