"""A simulated transport and peer: no sockets, every byte handed over synchronously.

The peer is websockets' sans-I/O ``ServerProtocol`` driven in place: what the channel writes is
fed to it at once, and what it answers (the 101, a Pong, its Close and the end of TCP that
follows) lands in the channel's read buffer at once. The only places where the channel yields
are therefore its own: waiting to read (until the peer or the scenario supplies bytes or EOF) and
waiting for a write to drain (one scheduler turn: the write completes "later").
"""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.uri import WebSocketURI

from wschan_cli.channel import ChannelOptions, Transport


class SimPeer:
    """The server end: a ``ServerProtocol`` that accepts the upgrade and answers by the RFC."""

    def __init__(self) -> None:
        self.proto = ServerProtocol()
        self.transport: SimTransport | None = None
        self.received: list[str] = []  # opcodes of frames the peer received, in order

    def receive(self, data: bytes) -> None:
        proto = self.proto
        proto.receive_data(data)
        for event in proto.events_received():
            if isinstance(event, Request):
                proto.send_response(proto.accept(event))
            else:
                self.received.append(event.opcode.name.lower())
        self.flush()

    def flush(self) -> None:
        assert self.transport is not None
        for chunk in self.proto.data_to_send():
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
        from websockets.protocol import OPEN

        if self.proto.state is OPEN:
            self.proto.send_close(code, reason)
            self.flush()


class SimTransport:
    """The channel's ``Transport`` over a ``SimPeer``."""

    def __init__(self, peer: SimPeer, *, drain_yields: bool = True) -> None:
        self.peer = peer
        peer.transport = self
        self.inbound = bytearray()
        self.eof = False
        self.closed = False
        self.drain_yields = drain_yields
        self._read_waiter: asyncio.Future[None] | None = None

    # bytes from the peer
    def deliver(self, data: bytes) -> None:
        if self.closed:
            return
        self.inbound += data
        self._wake()

    def feed_eof(self) -> None:
        self.eof = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # Transport
    def write(self, data: bytes) -> None:
        if self.closed:
            return
        self.peer.receive(data)

    @property
    def writing_paused(self) -> bool:
        return self.drain_yields or self.closed  # a closed transport's drain raises

    async def drain(self) -> None:
        if self.closed:
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
            return data
        return b""

    def close(self) -> None:
        self.closed = True
        self.feed_eof()

    def abort(self) -> None:
        self.closed = True
        self.inbound.clear()
        self.feed_eof()

    def signature(self) -> tuple[Any, ...]:
        return (len(self.inbound), self.eof, self.closed, self.peer.proto.state.name)


def sim_factory(made: list[SimTransport], *, drain_yields: bool = True) -> Any:
    async def factory(uri: WebSocketURI, options: ChannelOptions) -> Transport:
        transport = SimTransport(SimPeer(), drain_yields=drain_yields)
        made.append(transport)
        return transport

    return factory
