"""User-facing errors: one line that names the file, column or value and says what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FairscanError(ValueError):
    """A mistake in the user's input or configuration.

    The CLI prints ``str(err)`` on one line and exits with code 2; it never shows a traceback
    for these. Raise it for anything the user can fix.
    """


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean: a, b?)' for close matches of ``name``, or ''."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in choices], n=3, cutoff=0.6)
    if not matches:
        lowered = {str(c).lower(): str(c) for c in choices}
        if str(name).lower() in lowered:
            matches = [lowered[str(name).lower()]]
    return f" (did you mean: {', '.join(matches)}?)" if matches else ""
