"""User-facing errors: one line that names the file, column or value and says what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: line breaks (as Python's str.splitlines knows them), shown escaped in messages
_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


def one_line(text: str) -> str:
    """``text`` with its line breaks shown escaped (``\\n``): names from the data may hold them."""
    return str(text).translate(_BREAKS)


class FairscanError(ValueError):
    """A mistake in the user's input or configuration.

    The CLI prints ``str(err)`` on one line and exits with code 2; it never shows a traceback
    for these. Raise it for anything the user can fix. The message is made one line here
    (line breaks from names in the data are shown escaped), so no caller can break that.
    """

    def __init__(self, message: object = "") -> None:
        super().__init__(one_line(str(message)))


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean: a, b?)' for close matches of ``name``, or ''."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in choices], n=3, cutoff=0.6)
    if not matches:
        lowered = {str(c).lower(): str(c) for c in choices}
        if str(name).lower() in lowered:
            matches = [lowered[str(name).lower()]]
    return f" (did you mean: {', '.join(matches)}?)" if matches else ""
