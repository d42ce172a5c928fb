"""Whether to colour a stream: ``--color auto|always|never`` and the usual environment.

``auto`` colours a terminal only, and honours NO_COLOR (any non-empty value: no colour),
FORCE_COLOR (any non-empty value: colour even off a terminal) and TERM=dumb (no colour).
"""

from __future__ import annotations

import os
from typing import IO, Any

CHOICES = ("auto", "always", "never")


def is_tty(stream: IO[Any]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def color_enabled(choice: str, stream: IO[Any]) -> bool:
    if choice == "always":
        return True
    if choice == "never":
        return False
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    return is_tty(stream)


class Style:
    """A few ANSI styles, or none. Plain escape codes: no rich import on this path."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def yellow(self, text: str) -> str:
        return self._wrap("33", text)

    def cyan(self, text: str) -> str:
        return self._wrap("36", text)
