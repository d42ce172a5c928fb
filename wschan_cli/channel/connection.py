"""One kernel connection's record, from the connector's TCP connect to its release, with its
lifecycle as a checked state machine.

Everything that moves a connection from one stage of its life to the next goes through
``Connection.transition``, and every move allowed is one row of ``TRANSITIONS`` (as h11's
``_state.py`` keeps its tables in one place). ``sending`` and ``established``, the flags the design
studies (channel-model.md), stay the channel's: the lifecycle says which stage this connection
is in, ``established`` whether the channel has one.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Hashable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import OPEN as WS_OPEN

from .close import CloseInfo, close_info
from .errors import ChannelClosed
from .messages import Message
from .protocol import ChannelProtocol, protocol_snapshot
from .transport import Transport


class Lifecycle(StrEnum):
    """The stage of a connection's life."""

    CONNECTING = "connecting"  # TCP made; the connector, holding the token, upgrades it (D2)
    OPEN = "open"  # upgraded: out tasks write on it
    SHUTTING_DOWN = "shutting down"  # a token holder shuts it down; its reader may still run
    RELEASED = "released"  # established 1 -> 0 happened; never used again


CONNECTING, OPEN, SHUTTING_DOWN, RELEASED = Lifecycle

#: Every move a connection may make, and the rule that allows it. Nothing else is a move.
TRANSITIONS: dict[tuple[Lifecycle, Lifecycle], str] = {
    (CONNECTING, OPEN): "the connector saw the 101 (D2)",
    (CONNECTING, SHUTTING_DOWN): "a connect failed, timed out or was cancelled (D2, D13)",
    (OPEN, SHUTTING_DOWN): "a token holder shuts an open connection down (D5, D8, terminate)",
    # Asking again is harmless, as setting the flag this replaces was; the release is what must
    # happen once (a core whose token excludes nobody trips there: test_channel_invariants).
    (SHUTTING_DOWN, SHUTTING_DOWN): "a shutdown asked for while one is under way",
    (SHUTTING_DOWN, RELEASED): "the reader ended and the holder that asked for shutdown "
    "releases it: established 1 -> 0, once per connection",
}


class LifecycleViolation(RuntimeError):
    """A connection was moved along no row of ``TRANSITIONS``: a bug in the core."""


_UTF8Decoder = codecs.getincrementaldecoder("utf-8")
_TEXT, _CONT = Opcode.TEXT, Opcode.CONT  # looked up once: an Enum attribute costs a call


@dataclass(eq=False)
class Connection:
    """One kernel connection: from the connector's TCP connect to its release."""

    n: int
    transport: Transport
    proto: ChannelProtocol
    upgraded: asyncio.Future[Response]
    reader_done: asyncio.Event = field(default_factory=asyncio.Event)
    lifecycle: Lifecycle = CONNECTING
    close: CloseInfo | None = None
    local_close: CloseInfo | None = None  # set when we cut the link ourselves (timeouts, aborts)
    replies: list[bytes] = field(default_factory=list)
    # a writer took the owed replies, or a shutdown began (reader.OWED_REPLIES_LIMIT)
    replies_taken: asyncio.Event = field(default_factory=asyncio.Event)
    replier_running: bool = False
    pings: dict[bytes, tuple[asyncio.Future[float], float]] = field(default_factory=dict)
    fragments: list[Any] = field(default_factory=list)  # bytes, or str decoded so far (text)
    fragment_type: str = ""
    decoder: codecs.IncrementalDecoder | None = None  # of the text message being received
    failed: bool = False  # we failed the connection (1007, 1011): deliver nothing more
    abandoned: bool = False  # its connector was cancelled: the channel stays usable (D11)
    keepalive: asyncio.Task[None] | None = None

    def transition(self, to: Lifecycle) -> None:
        """Move to stage ``to`` along a row of ``TRANSITIONS``; any other move is a bug."""
        if (self.lifecycle, to) not in TRANSITIONS:
            here = self.lifecycle
            rules = [f"to {b} ({rule})" for (a, b), rule in TRANSITIONS.items() if a is here]
            raise LifecycleViolation(
                f"connection #{self.n} moved from {self.lifecycle} to {to}, which no rule allows; "
                f"from {self.lifecycle} it may go only {'; '.join(rules) or 'nowhere'}"
            )
        self.lifecycle = to

    @property
    def usable(self) -> bool:
        """Out tasks may write on it: not shutting down nor released, and websockets has it
        OPEN (the reader sees the 101 before the connector moves the lifecycle to OPEN)."""
        stage = self.lifecycle  # compared by identity: an Enum's hash is a Python-level call
        return (stage is CONNECTING or stage is OPEN) and self.proto.state is WS_OPEN

    @property
    def closing(self) -> bool:
        """A shutdown was asked for (it may be over: released)."""
        return self.lifecycle is SHUTTING_DOWN or self.lifecycle is RELEASED

    @property
    def released(self) -> bool:
        return self.lifecycle is RELEASED

    def close_info(self) -> CloseInfo:
        """How this connection ended, or, before its release, what is known so far."""
        return close_info(self.proto, local_close=self.local_close, failed=self.failed)

    def closed_error(self) -> ChannelClosed:
        # Before the release the close is still unfolding: say what is known so far.
        return (self.close or self.close_info()).error()

    def fail(self, code: int, reason: str) -> None:
        """Fail the connection (RFC 6455 7.1.7): our Close, then nothing but waiting for TCP."""
        self.failed = True
        self.proto.fail(code, reason)

    def settle_upgraded(self) -> None:
        """The connector gives up on this connection: nobody will await its 101 any more."""
        if not self.upgraded.done():
            self.upgraded.cancel()  # an error set on it was retrieved already (_reject)

    def put_first(self, text: bool, piece: bytes, fin: bool) -> None:
        """Queue the first frame of a data message."""
        if text:
            self.proto.send_text(piece, fin=fin)
        else:
            self.proto.send_binary(piece, fin=fin)

    def resolve_pings(self, payload: bytes, now: float) -> None:
        """A Pong with ``payload`` arrived at ``now``."""
        if payload not in self.pings:
            return  # unsolicited Pong
        # A Pong acknowledges its Ping and every earlier one (RFC 6455 5.5.3).
        for key in list(self.pings):
            future, sent_at = self.pings.pop(key)
            if not future.done():
                future.set_result(now - sent_at)
            if key == payload:
                break

    def assemble(self, opcode: Opcode, frame: Frame) -> Message | None:
        """One frame of a fragmented message; the message once its last frame is in. Text is
        decoded fragment by fragment, so invalid UTF-8 fails the connection (1007) at the first
        fragment that cannot be the start of valid UTF-8, not at the end of the message (RFC
        6455 8.1)."""
        if opcode is not _CONT:
            self.fragment_type = "text" if opcode is _TEXT else "binary"
            self.fragments = []
            self.decoder = _UTF8Decoder() if opcode is _TEXT else None
        if self.decoder is None:
            self.fragments.append(bytes(frame.data))
        else:
            try:
                self.fragments.append(self.decoder.decode(frame.data, frame.fin))
            except UnicodeDecodeError:
                n = len(self.fragments) + 1
                self.fail(1007, f"invalid UTF-8 in fragment {n} of a text message")
                return None
        if not frame.fin:
            return None
        parts, self.fragments, self.decoder = self.fragments, [], None
        if self.fragment_type == "text":
            return Message("text", "".join(parts))
        return Message("binary", b"".join(parts))

    # Fields snapshot() leaves out, each with the reason (tests/test_explore_snapshot.py holds every
    # field to a decision).
    SNAPSHOT_EXCLUDED: ClassVar[dict[str, str]] = {
        "transport": "I/O, not channel state: a simulated transport is hashed by the explorer",
        "replies_taken": "waited on only past reader.OWED_REPLIES_LIMIT owed replies, which no "
        "explored schedule reaches (its peers ping a few times); while unreached it decides "
        "nothing",
    }

    def snapshot(self) -> tuple[tuple[str, Hashable], ...]:
        """A frozen value of everything about this connection that decides what the channel does
        next: two connections with equal snapshots behave alike from here (the explorer's
        state). Values only: futures and tasks by their outcome, payloads by their bytes."""
        upgraded = self.upgraded
        keepalive = self.keepalive
        return (
            ("n", self.n),
            ("proto", protocol_snapshot(self.proto)),
            ("upgraded", future_outcome(upgraded)),
            ("reader_done", self.reader_done.is_set()),
            ("lifecycle", self.lifecycle.value),
            ("close", self.close),
            ("local_close", self.local_close),
            ("replies", tuple(self.replies)),
            ("replier_running", self.replier_running),
            ("pings", tuple((k, future_outcome(f)) for k, (f, _) in self.pings.items())),
            ("fragments", tuple(self.fragments)),
            ("fragment_type", self.fragment_type),
            ("decoder", None if self.decoder is None else self.decoder.getstate()),
            ("failed", self.failed),
            ("abandoned", self.abandoned),
            ("keepalive", None if keepalive is None else future_outcome(keepalive)),
        )


def future_outcome(future: asyncio.Future[Any]) -> Hashable:
    """A future as a value: pending, cancelled, done, or the name of its exception."""
    if not future.done():
        return "pending"
    if future.cancelled():
        return "cancelled"
    exc = future.exception()
    return "done" if exc is None else type(exc).__name__
