"""Typed events: one per transition of the channel (channel-model.md D9).

Views, JSON output and the explorer read these and nothing else. Subscribers are called
synchronously, in order, from inside the step that caused the transition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


class What(StrEnum):
    """What happened. The value is the name used in JSON output."""

    TAKE = "take"  # a party took the token
    WAIT = "wait"  # the token was busy: the party queued a waiter
    SIGNAL = "signal"  # a release woke the first waiter
    WAKE = "wake"  # a woken waiter resumed and will re-compete
    RELEASE = "release"  # the holder released the token
    ESTABLISHED = "established"  # established changed (0->1 or 1->0)
    STATE = "state"  # the protocol state changed
    CONNECT = "connect"  # the connector starts connecting
    UPGRADED = "upgraded"  # the 101 arrived
    FRAME_OUT = "frame_out"  # a frame was written
    FRAME_IN = "frame_in"  # a frame was read
    SHUTDOWN = "shutdown"  # a token holder asked for the connection to shut down
    READER_END = "reader_end"  # the reader ended (EOF, error, timeout)
    CLOSED = "closed"  # the connection is over: code, reason, who closed
    ON_CLOSE = "on_close"  # the on_close callback is being called (outside the token)
    LEAVE = "leave"  # a woken party found nothing to do and left
    DONE = "done"  # an out task completed (after its release)
    FAIL = "fail"  # an out task failed (detail: error)
    DISPOSE = "dispose"  # the channel was disposed


class PartyKind(StrEnum):
    """The kinds of party. The value is the name shown in views and JSON output ("send#2")."""

    SEND = "send"  # an application send (the first one with no connection is the connector)
    OPEN = "open"  # an explicit open(): connects without sending
    PING = "ping"  # an application ping
    KEEPALIVE = "keepalive"  # the keepalive's ping
    AUTO_REPLY = "auto_reply"  # a Pong or Close echo the protocol owes
    READER = "reader"  # the read loop of one connection
    TERMINATE = "terminate"  # handle_terminate(), after the read side ended
    DEINIT = "deinit"  # client.deinit()


class Party(NamedTuple):
    """Who acts: ``kind`` is a ``PartyKind`` (the channel may pass its value, a plain str, which
    compares equal); ``n`` tells parties of the same kind apart. A named tuple, so the channel
    can make one per send with the C tuple constructor."""

    kind: str
    n: int = 0

    def __str__(self) -> str:
        return f"{self.kind}#{self.n}" if self.n else self.kind


def _escaped(text: str) -> str:
    """``text`` with its non-printable characters (controls, bidi overrides) escaped."""
    return text if text.isprintable() else repr(text)[1:-1]


@dataclass(frozen=True, slots=True)
class Event:
    """One transition, with the values after it."""

    seq: int
    time: float
    party: Party
    what: What
    sending: bool
    established: int
    state: str
    holder: Party | None
    waiters: int
    detail: dict[str, Any] = field(default_factory=dict)

    def describe(self, shown: Callable[[str], str] | None = None) -> str:
        """What happened, in a few words ("wait (2 queued)", "closed 1000 by peer"): the words
        every view and every invariant message uses. ``shown`` turns text that came from the
        server (a close reason) into what may be printed; views pass their escaping (it is
        data, never markup or control sequences). By default control characters come out as
        Python escapes, so that no caller prints server text raw by forgetting to pass one."""
        shown = shown or _escaped
        d = self.detail
        match self.what:
            case What.TAKE:
                return "take"
            case What.WAIT:
                return f"wait ({self.waiters} queued)"
            case What.SIGNAL:
                return f"signal -> {d.get('woken')}"
            case What.WAKE:
                return "wake, re-compete"
            case What.RELEASE:
                return "release"
            case What.ESTABLISHED:
                return f"established {d.get('before')}->{self.established}"
            case What.STATE:
                return f"state {self.state}"
            case What.CONNECT:
                return "connect"
            case What.UPGRADED:
                return f"upgraded ({d.get('status')})"
            case What.FRAME_OUT:
                return f"write {d.get('opcode')}"
            case What.FRAME_IN:
                return f"read {d.get('opcode')}"
            case What.SHUTDOWN:
                how = "abort" if d.get("abort") else "graceful" if d.get("graceful") else "close"
                return f"shutdown ({how})"
            case What.READER_END:
                return f"reader ended ({d.get('reason')})"
            case What.CLOSED:
                reason = f' "{shown(str(d.get("reason")))}"' if d.get("reason") else ""
                return f"closed {d.get('code')}{reason} by {d.get('by')}"
            case What.ON_CLOSE:
                return f"on_close({d.get('code')})"
            case What.LEAVE:
                return "established == 0: leave"
            case What.DONE:
                return "sent" if self.party.kind == PartyKind.SEND else "done"
            case What.FAIL:
                return f"failed: {d.get('error_type')}"
            case What.DISPOSE:
                return "dispose"
        return self.what.value

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (bytes in details become their length)."""
        detail = {
            k: (len(v) if isinstance(v, (bytes, bytearray)) else v) for k, v in self.detail.items()
        }
        return {
            "seq": self.seq,
            "t": round(self.time, 6),
            "party": str(self.party),
            "what": self.what.value,
            "sending": self.sending,
            "established": self.established,
            "state": self.state,
            "holder": str(self.holder) if self.holder else None,
            "waiters": self.waiters,
            **detail,
        }


Subscriber = Callable[[Event], None]
