"""Showing server text as inert data.

Text that came from the server is data: on a terminal its control characters (ANSI escape
sequences, carriage returns, backspaces, C1 controls) and the Unicode bidi overrides that can
reorder what a terminal shows are written as visible escapes, never interpreted. Nothing here
parses markup, so square brackets stay square brackets.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, and the bidi controls (Trojan Source).
_UNSAFE_KEEP_LINES = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
# The same, plus tab and newline: for one-line diagnostics.
_UNSAFE_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\x1b"}


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_control(text: str, *, one_line: bool = False) -> str:
    """``text`` with its control characters escaped (``\\x1b``, ``\\r``, ``\\u202e``...).

    Tabs and newlines are kept unless ``one_line``. Backslashes are left alone: the output is
    for eyes, not for parsing (use ``--json`` or ``--raw`` for that).
    """
    pattern = _UNSAFE_ONE_LINE if one_line else _UNSAFE_KEEP_LINES
    return pattern.sub(_escape_one, text)


def escape_json_controls(line: str) -> str:
    """A JSON text (from ``json.dumps(..., ensure_ascii=False)``, which escapes C0 controls
    already) with DEL, C1 and bidi controls written as ``\\uXXXX`` too: still the same JSON,
    inert on a terminal. They can only occur inside strings, where that escape is valid."""
    return _UNSAFE_ONE_LINE.sub(lambda match: f"\\u{ord(match.group()):04x}", line)


def has_control(text: str) -> bool:
    """Whether ``escape_control`` would change ``text`` (newlines and tabs allowed)."""
    return _UNSAFE_KEEP_LINES.search(text) is not None
