"""The byte pipe under the channel.

The channel only ever calls ``write``, ``drain``, ``read``, ``close`` and ``abort``; a simulated
transport with the same five methods lets a scheduler run the channel without sockets.
``StreamTransport`` is the real one, over an asyncio transport; ``dial.open_tcp`` opens it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, cast

from websockets.uri import WebSocketURI

from .cork import CORK_LIMIT, Cork
from .options import ChannelOptions

__all__ = ["CORK_LIMIT", "SocketTransport", "StreamTransport", "Transport", "TransportFactory"]


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    @property
    def writing_paused(self) -> bool:
        """True when ``drain`` may suspend; the channel bounds only such drains by its write
        timeout (arming a timer for a drain that returns at once costs a fifth of a send)."""

    def drain(self) -> Awaitable[None]:
        """Return when the write buffer is below its high-water mark (an awaitable: a
        transport may hand back one that is already complete)."""

    async def read(self) -> bytes:
        """The next bytes received; b"" at end of stream. Raises OSError on a read error."""

    def close(self) -> None:
        """Flush what is buffered, then close."""

    def abort(self) -> None:
        """Close now, dropping what is buffered."""


TransportFactory = Callable[[WebSocketURI, ChannelOptions], Awaitable[Transport]]


#: Received, unread bytes at which the socket stops being read. One read of the loop may bring
#: up to 256 KiB (asyncio's 262,144 bytes, uvloop's 256,000), so at most this plus 256 KiB are
#: held: uvloop goes on reading (libuv loops while the socket has data) until told to pause,
#: without the channel's reader running in between, so the mark must be below one such read.
READ_HIGH_WATER = 128 * 1024


class SocketTransport(Protocol):
    """What ``StreamTransport`` calls on the event loop's transport: typed by use, because
    uvloop's transports have these methods without subclassing ``asyncio.Transport``."""

    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class StreamTransport(Cork, asyncio.Protocol):
    """An asyncio protocol exposing awaitable ``read`` and ``drain`` with flow control."""

    def __init__(self) -> None:
        self._transport: SocketTransport | None = None
        # Kept, not looked up per read: get_running_loop() makes a getpid() system call.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._chunks: list[bytes] = []
        self._eof = False
        self._error: Exception | None = None
        self._read_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._buffered = 0  # received, not yet read
        self._reading_paused = False
        self._init_cork()  # write(): the frames of one loop turn leave together (cork.py)

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's TCPTransport is no asyncio.Transport subclass, and
        # the channel runs on uvloop's loop when it is installed (runner.loop_factory).
        self._transport = cast(SocketTransport, transport)
        self._loop = asyncio.get_running_loop()
        self._drained = self._loop.create_future()  # what an unpaused drain hands back
        self._drained.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered >= READ_HIGH_WATER and not self._reading_paused and self._transport:
            # Flow control: a reader that does not read (a full receive queue) stops the
            # socket being read, so the peer is slowed down by TCP instead of filling memory.
            self._reading_paused = True
            self._transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool | None:
        self._eof = True
        self._wake_reader()
        return None  # let asyncio close our side too: the server ends a WebSocket's TCP

    def connection_lost(self, exc: Exception | None) -> None:
        self.discard()
        self._eof = True
        self._error = exc
        self._wake_reader()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(ConnectionResetError("connection lost"))
            self._drain_waiter.exception()  # retrieved here too: a cancelled drain logs nothing

    @property
    def writing_paused(self) -> bool:
        return self._paused

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # Transport methods used by the channel (write: Cork's)

    def drain(self) -> Awaitable[None]:
        # Not a coroutine: an unpaused drain, the common case, costs no coroutine per frame.
        if self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("connection closed")
        assert self._loop is not None
        if not self._paused:
            return self._drained
        self._drain_waiter = self._loop.create_future()
        return self._drain_waiter

    async def read(self) -> bytes:
        if not self._chunks and not self._eof:
            assert self._loop is not None
            self._read_waiter = self._loop.create_future()
            try:
                await self._read_waiter
            finally:
                self._read_waiter = None
        if self._chunks:
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._buffered = 0
            if self._reading_paused and self._transport is not None:
                self._reading_paused = False
                self._transport.resume_reading()
            return data
        if self._error is not None:
            raise ConnectionResetError(str(self._error) or "connection lost")
        return b""

    def feed_eof(self) -> None:
        """End the read side locally: after what is buffered, ``read`` returns b"".

        The channel then runs ``handle_terminate`` exactly as when the peer ends TCP; this is
        how ``/terminate`` and ``trace-shutdown`` trigger it on demand.
        """
        self._eof = True
        self._wake_reader()

    def close(self) -> None:
        if self._transport is not None:
            self.flush()  # close() sends what is buffered first: what is held back too
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            # What was written goes to the loop's transport first, as it did when each write
            # went straight there: the kernel keeps what it already took, the abort drops the
            # rest (the transport's own buffer), exactly as before frames were held back.
            self.flush()
            self._transport.abort()

    def _wake_reader(self) -> None:
        if self._read_waiter is not None and not self._read_waiter.done():
            self._read_waiter.set_result(None)

    # Used while tunnelling through a proxy, before the channel sees the pipe.

    def _unread(self, data: bytes) -> None:
        """Put bytes read past the proxy's answer back in front of the stream."""
        if data:
            self._chunks.insert(0, data)

    @property
    def _loop_transport(self) -> asyncio.WriteTransport:
        """The event loop's own transport (asyncio's or uvloop's), for ``loop.start_tls``."""
        assert self._transport is not None
        self.flush()  # what was written in the clear goes before the TLS layer
        return cast(asyncio.WriteTransport, self._transport)

    def _replace_transport(self, transport: asyncio.BaseTransport) -> None:
        """After ``loop.start_tls``: write through the TLS layer from now on."""
        self._transport = cast(SocketTransport, transport)
