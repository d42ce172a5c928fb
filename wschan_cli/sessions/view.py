"""The channel's state as the toolbar and ``/state`` show it, built from the channel's events only.

Each event carries the values after its transition (sending, established, state, holder,
waiters), so the view copies them; it counts messages in and out from the frame events, and takes
the round-trip time of a ping (the user's or the keepalive's) from its ``frame_out`` to the next
``pong`` ``frame_in``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_DATA = ("text", "binary")


@dataclass
class ChannelView:
    on_change: Callable[[], None] = lambda: None
    established: int = 0
    sending: bool = False
    holder: str | None = None
    waiters: int = 0
    state: str = "undefined"
    messages_in: int = 0
    messages_out: int = 0
    rtt: float | None = None
    last: str = ""  # the last transition, e.g. "deinit release"
    events: int = 0
    _ping_at: float | None = None
    _frames_in: dict[str, int] = field(default_factory=dict)

    def __call__(self, event: Any) -> None:
        what = event.what.value
        self.events += 1
        self.established = event.established
        self.sending = event.sending
        self.holder = str(event.holder) if event.holder is not None else None
        self.waiters = event.waiters
        self.state = event.state
        detail = event.detail
        if what == "frame_out":
            opcode = detail.get("opcode")
            if opcode in _DATA:
                self.messages_out += 1
            elif opcode == "ping":
                self._ping_at = event.time
        elif what == "frame_in":
            opcode = detail.get("opcode")
            if opcode in (*_DATA, "cont") and detail.get("fin", True):
                self.messages_in += 1
            elif opcode == "pong" and self._ping_at is not None:
                self.rtt = event.time - self._ping_at
                self._ping_at = None
        if what not in ("frame_in", "frame_out"):
            self.last = f"{event.party} {what}"
        self.on_change()

    def toolbar(self, extra: str = "") -> str:
        sending = "no"
        if self.sending:
            sending = f"yes ({self.holder})" if self.holder else "yes"
        rtt = f"{self.rtt * 1000:.1f} ms" if self.rtt is not None else "-"
        parts = [
            f"established {self.established}",
            f"sending {sending}",
            f"waiters {self.waiters}",
            f"state {self.state}",
            f"in {self.messages_in} out {self.messages_out}",
            f"rtt {rtt}",
        ]
        if extra:
            parts.append(extra)
        return " | ".join(parts)

    def lines(self) -> list[str]:
        rtt = f"{self.rtt * 1000:.3f} ms" if self.rtt is not None else "none yet"
        return [
            f"established   {self.established}",
            f"sending       {str(self.sending).lower()}",
            f"holder        {self.holder or '-'}",
            f"waiters       {self.waiters}",
            f"state         {self.state}",
            f"messages in   {self.messages_in}",
            f"messages out  {self.messages_out}",
            f"last ping rtt {rtt}",
            f"last event    {self.last or '-'} ({self.events} events)",
        ]
