"""A simulated transport and peer: no sockets, every byte handed over synchronously.

The peer is websockets' sans-I/O ``ServerProtocol`` driven in place: what the channel writes is
fed to it at once, and what it answers (the 101, a Pong, its Close and the end of TCP that
follows) lands in the channel's read buffer at once. The only places where the channel yields
are therefore its own: waiting to read (until the peer or the scenario supplies bytes or EOF) and
waiting for a write to drain (one scheduler turn: the write completes "later").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from websockets.http11 import Request
from websockets.protocol import OPEN
from websockets.server import ServerProtocol
from websockets.uri import WebSocketURI

from wschan_cli.channel import ChannelOptions, Transport
from wschan_cli.channel.protocol import protocol_snapshot

# What websockets' ServerProtocol refuses although RFC 6455 allows it: a Close between the
# fragments of a message (section 5.4: control frames may be injected between fragments); the
# channel sends one when it fails the connection mid-message (D11).
_LEGAL = frozenset({"incomplete fragmented message"})


class SimPeer:
    """The server end: a ``ServerProtocol`` that accepts the upgrade and answers by the RFC.

    What it receives is checked on its side: it never sees interleaved frames (its parser would
    fail), and ``on_violation`` is told."""

    def __init__(self) -> None:
        self.proto = ServerProtocol()
        self.transport: SimTransport | None = None
        self.received: list[str] = []  # opcodes of frames the peer received, in order
        self.on_violation: Callable[[str, str], None] = lambda invariant, message: None
        self.close_received: asyncio.Future[None] | None = None
        self.mute_close = False

    def receive(self, data: bytes) -> None:
        proto = self.proto
        proto.receive_data(data)
        for event in proto.events_received():
            if isinstance(event, Request):
                response = proto.accept(event)
                del response.headers["Date"]  # the wall clock: a replay must be byte for byte
                proto.send_response(response)
            else:
                self.received.append(event.opcode.name.lower())
                closed = self.close_received
                if event.opcode.name == "CLOSE" and closed is not None and not closed.done():
                    closed.set_result(None)
        exc = proto.parser_exc
        if exc is not None and not isinstance(exc, EOFError) and str(exc) not in _LEGAL:
            self.on_violation("1", f"the peer received a malformed or interleaved frame: {exc}")
        self.flush()

    def flush(self) -> None:
        assert self.transport is not None
        chunks = self.proto.data_to_send()
        if self.mute_close and self.proto.close_rcvd is not None:
            return  # a slow peer: never answers the channel's Close, never ends TCP
        for chunk in chunks:
            if chunk:
                self.transport.deliver(chunk)
            else:
                self.transport.feed_eof()  # the server ends TCP after the closing handshake

    def end_tcp(self) -> None:
        """The peer ends TCP without a Close frame (what makes the reader run terminate)."""
        assert self.transport is not None
        self.transport.feed_eof()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """The peer starts the closing handshake."""
        if self.proto.state is OPEN:
            self.proto.send_close(code, reason)
            self.flush()
            assert self.transport is not None
            self.transport.close_at = self.transport.delivered

    def ping(self, payload: bytes = b"peer") -> None:
        if self.proto.state is OPEN:
            self.proto.send_ping(payload)
            self.flush()

    def text(self, data: str, *, fin: bool = True, continuation: bool = False) -> None:
        """A text frame (or a continuation of one) from the peer."""
        if self.proto.state is OPEN:
            if continuation:
                self.proto.send_continuation(data.encode(), fin=fin)
            else:
                self.proto.send_text(data.encode(), fin=fin)
            self.flush()

    def message(self, pieces: list[str], *, ping_between: bool) -> None:
        """A fragmented text message, with a Ping after each fragment but the last if asked,
        handed over at once (the channel reads it all in one read)."""
        if self.proto.state is not OPEN:
            return
        last = len(pieces) - 1
        for i, piece in enumerate(pieces):
            if i:
                self.proto.send_continuation(piece.encode(), fin=i == last)
            else:
                self.proto.send_text(piece.encode(), fin=i == last)
            if ping_between and i < last:
                self.proto.send_ping(b"between")
        self.flush()

    def snapshot(self) -> tuple[object, ...]:
        return (protocol_snapshot(self.proto), tuple(self.received), self.mute_close)


class SimTransport:
    """The channel's ``Transport`` over a ``SimPeer``.

    ``stall()``: the peer stops reading; what is written stays unread and every drain blocks
    until the transport is closed or aborted (then it fails), so only the write timeout ends it.
    When the channel closes or aborts TCP, ``on_tcp_close`` checks the peer's side: a Close the
    channel received was answered (RFC 6455 5.5.1), unless the channel's Close went first or
    ``undrained()`` says the channel cut the link because its own writes did not drain in time
    (D8, D5: nothing more could reach the peer).
    """

    def __init__(self, peer: SimPeer, *, drain_yields: bool = True) -> None:
        self.peer = peer
        peer.transport = self
        self.inbound = bytearray()
        self.eof = False
        self.closed = False
        self.stalled = False
        self.drain_yields = drain_yields
        self.delivered = 0  # bytes the peer has sent
        self.read_total = 0  # bytes the channel has read
        self.close_at: int | None = None  # self.delivered once the peer's Close was sent
        # The channel completed the opening handshake on this connection (its UPGRADED event):
        # only then does RFC 6455 7.1.7 ask it to answer a Close before closing TCP; a connector
        # that fails (its open timeout fired) drops TCP, like any client failing the handshake.
        self.upgraded = False
        self.on_write: Callable[[bytes], None] = lambda data: None
        self.undrained: Callable[[], bool] = lambda: False
        self._read_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None

    # bytes from the peer
    def deliver(self, data: bytes) -> None:
        if self.closed:
            return
        self.inbound += data
        self.delivered += len(data)
        self._wake()

    def feed_eof(self) -> None:
        self.eof = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def stall(self) -> None:
        self.stalled = True

    def deliver_ping(self) -> None:
        """A Ping written by hand (the peer's protocol has closed its side)."""
        self.deliver(b"\x89\x04slow")

    # Transport
    def write(self, data: bytes) -> None:
        if self.closed:
            return
        self.on_write(data)
        if not self.stalled:
            self.peer.receive(data)

    @property
    def writing_paused(self) -> bool:
        # Only a stalled peer leaves the write buffered: then the channel arms its write
        # timeout. A drain begun before the stall completes (the bytes had left).
        return self.stalled

    async def drain(self) -> None:
        if self.closed:
            raise ConnectionResetError("connection closed")
        if self.stalled:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None
            raise ConnectionResetError("connection closed")
        if self.drain_yields:
            await asyncio.sleep(0)  # the write completes in a later step

    async def read(self) -> bytes:
        while not self.inbound and not self.eof:
            self._read_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._read_waiter
            finally:
                self._read_waiter = None
        if self.inbound:
            data = bytes(self.inbound)
            self.inbound.clear()
            self.read_total += len(data)
            return data
        return b""

    def close(self) -> None:
        self._tcp_closes()
        self.closed = True
        self.feed_eof()

    def abort(self) -> None:
        self._tcp_closes()
        self.closed = True
        self.inbound.clear()
        self.feed_eof()

    @property
    def read_peer_close(self) -> bool:
        """The channel has read the peer's Close (it lies at ``close_at`` in the stream)."""
        return self.close_at is not None and self.read_total >= self.close_at

    def _tcp_closes(self) -> None:
        if self.closed:
            return
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        peer = self.peer.proto
        if (
            self.read_peer_close
            and peer.close_rcvd is None
            and self.upgraded
            and not self.stalled
            and not self.undrained()
        ):
            self.peer.on_violation(
                "D10",
                "the channel read the peer's Close and closed TCP without answering it "
                "(RFC 6455 5.5.1)",
            )

    def snapshot(self) -> tuple[object, ...]:
        return (
            bytes(self.inbound),
            self.eof,
            self.closed,
            self.stalled,
            self.read_peer_close,
            self.upgraded,
            self.peer.snapshot(),
        )


def newest_open(made: list[SimTransport]) -> SimTransport | None:
    """The peer's end of the newest connection, if it is still open. (Here, not in the
    scenario: reading a transport is code of this module, which footprints observe.)"""
    if not made or made[-1].closed:
        return None
    return made[-1]


def sim_factory(made: list[SimTransport], *, drain_yields: bool = True) -> Any:
    async def factory(uri: WebSocketURI, options: ChannelOptions) -> Transport:
        transport = SimTransport(SimPeer(), drain_yields=drain_yields)
        made.append(transport)
        return transport

    return factory
