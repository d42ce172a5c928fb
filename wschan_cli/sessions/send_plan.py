"""What a ``wschan send`` run is asked to do, validated before any connection is made (the
command builds it, :mod:`wschan_cli.sessions.send` carries it out), and what its waits wait for.

Cheap to import (the standard library only): ``wschan send --help`` loads it.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wschan_cli.settings import ConnectionSettings

#: The replies a script keeps for its next "until": the last ones, at most this many and this
#: many characters (a binary reply is kept as its hex); older ones drop off.
UNTIL_WINDOW = 1024
UNTIL_WINDOW_CHARS = 16 << 20


@dataclass
class Plan:
    """Everything the run needs, validated before any connection is made."""

    url: str
    connection: ConnectionSettings
    # ("message", payload) | ("stdin", None) | ("stdin-whole", None) | ("file", path)
    sources: list[tuple[str, Any]]
    binary: bool
    encoding: str  # "utf-8", "hex" or "base64"
    delimiter: bytes
    expect: int | None
    until: re.Pattern[str] | None
    wait: float | None
    timeout: float | None
    close_code: int
    close_reason: str
    abrupt: bool
    fmt: str
    timestamps: bool
    pretty: bool
    script: bool = False  # --input jsonl: stdin is a script of actions (sessions/script.py)
    started: float = field(default_factory=time.monotonic)  # --timeout counts from here

    @property
    def reads_stdin(self) -> bool:
        return self.script or any(kind.startswith("stdin") for kind, _ in self.sources)

    @property
    def has_goal(self) -> bool:
        return self.expect is not None or self.until is not None

    def final_goal(self) -> Goal | None:
        """What --expect / --until wait for after the last message (None: no goal)."""
        return Goal(expect=self.expect, until=self.until) if self.has_goal else None


@dataclass
class Goal:
    """What a wait waits for: ``expect`` replies, or one reply matching ``until``, among the
    replies after the first ``base`` (0 for --expect and --until: from the handshake; in a
    script, those after the reply that met its previous wait). ``line`` is the script line that
    asked (0: the command line); ``met_by`` the number of the reply that met it."""

    expect: int | None = None
    until: re.Pattern[str] | None = None
    line: int = 0
    base: int = 0
    met_by: int = 0

    @property
    def done(self) -> bool:
        return self.met_by > 0

    def check(self, number: int, text: str | None) -> bool:
        """Whether the goal is met, reply ``number`` (from the handshake, 1 first) having
        arrived; ``text`` is that reply as --until matches it (None: count only)."""
        if self.done or number <= self.base:
            return self.done
        if self.expect is not None and number - self.base >= self.expect:
            self.met_by = self.base + self.expect  # the replies after it count for the next wait
        elif self.until is not None and text is not None and self.until.search(text):
            self.met_by = number
        return self.done

    def progress(self, replies: int) -> str:
        got = replies - self.base
        if self.expect is not None:
            line = f" (line {self.line})" if self.line else ""
            return f"after {got} of {self.expect} expected replies{line}"
        assert self.until is not None
        pattern = self.until.pattern
        what = f'"until" {pattern!r} of line {self.line}' if self.line else f"--until {pattern!r}"
        return f"before a reply matched {what} ({got} received)"


@dataclass
class RecentReplies:
    """The last replies as (number, text), within UNTIL_WINDOW and UNTIL_WINDOW_CHARS."""

    items: deque[tuple[int, str]] = field(default_factory=deque)
    chars: int = 0

    def add(self, number: int, text: str) -> None:
        self.items.append((number, text))
        self.chars += len(text)
        while len(self.items) > UNTIL_WINDOW or self.chars > UNTIL_WINDOW_CHARS:
            self.chars -= len(self.items.popleft()[1])

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return iter(self.items)


def match_text(data: str | bytes) -> str:
    """What --until and "until" search: the text, or a binary reply's hex."""
    return data if isinstance(data, str) else data.hex()
