"""User-facing errors: one line that names the file, column or value and says what to do."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Mapping

__all__ = ["FairscanError", "one_line", "plain", "suggest"]

#: line breaks (as Python's str.splitlines knows them), shown escaped in messages
_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


def one_line(text: str) -> str:
    """``text`` with its line breaks shown escaped (``\\n``): names from the data may hold them."""
    return str(text).translate(_BREAKS)


def plain(value: object) -> str:
    """``value`` as an error message shows it: text quoted (``'A'``), numbers and flags as Python
    prints them (``15``, ``0.5``, ``True``), never a numpy or pandas repr (``np.int64(15)``);
    sequences and arrays as ``[a, b]``, mappings as ``{a: b}``.

    Values read from data are numpy scalars, whose repr (used by ``!r`` and by the repr of a
    list) names their type; interpolate data values in messages with this instead.
    """
    np = sys.modules.get("numpy")  # a numpy value exists only once numpy is imported
    if np is not None and isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if np is not None and isinstance(value, np.generic):
        if isinstance(value, np.datetime64 | np.timedelta64 | np.inexact):
            return str(value)  # .item() would give nanoseconds or float32 noise (0.10000000149)
        value = value.item()
    if isinstance(value, str):
        return repr(str(value))
    if isinstance(value, bytes):
        return repr(bytes(value))
    if isinstance(value, bool | int | float | complex) or value is None:
        return repr(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{plain(k)}: {plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(sorted(map(plain, value))) + "}"
    if isinstance(value, list | tuple) or (hasattr(value, "tolist") and hasattr(value, "__len__")):
        return "[" + ", ".join(map(plain, value)) + "]"  # lists, tuples, arrays, Series, Index
    return str(value)  # Timestamp, Decimal, NA, Path, an exception: their text, not their repr


class FairscanError(ValueError):
    """A mistake in the user's input or configuration.

    The CLI prints ``str(err)`` on one line and exits with code 2; it never shows a traceback
    for these. Raise it for anything the user can fix. The message is made one line here
    (line breaks from names in the data are shown escaped), so no caller can break that.
    Interpolate values from the data with :func:`plain`; a message that is not text (a bare
    value) is shown with it too.
    """

    def __init__(self, message: object = "") -> None:
        super().__init__(one_line(str(message) if isinstance(message, str | BaseException) else plain(message)))


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean: a, b?)' for close matches of ``name``, or ''."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in choices], n=3, cutoff=0.6)
    if not matches:
        lowered = {str(c).lower(): str(c) for c in choices}
        if str(name).lower() in lowered:
            matches = [lowered[str(name).lower()]]
    return f" (did you mean: {', '.join(matches)}?)" if matches else ""
