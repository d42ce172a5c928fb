"""The byte pipe under the channel, and the function that opens one over TCP (and TLS).

The channel only ever calls ``write``, ``drain``, ``read``, ``close`` and ``abort``; a simulated
transport with the same five methods lets a scheduler run the channel without sockets.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Protocol

from websockets.uri import WebSocketURI

from .errors import ConnectError, ConnectionRefused, DNSError, TLSError
from .options import ChannelOptions


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None:
        """Return when the write buffer is below its high-water mark."""

    async def read(self) -> bytes:
        """The next bytes received; b"" at end of stream. Raises OSError on a read error."""

    def close(self) -> None:
        """Flush what is buffered, then close."""

    def abort(self) -> None:
        """Close now, dropping what is buffered."""


TransportFactory = Callable[[WebSocketURI, ChannelOptions], Awaitable[Transport]]


class StreamTransport(asyncio.Protocol):
    """An asyncio protocol exposing awaitable ``read`` and ``drain`` with flow control."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._chunks: list[bytes] = []
        self._eof = False
        self._error: Exception | None = None
        self._read_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._paused = False

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._wake_reader()

    def eof_received(self) -> bool | None:
        self._eof = True
        self._wake_reader()
        return None  # let asyncio close our side too: the server ends a WebSocket's TCP

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._wake_reader()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(ConnectionResetError("connection lost"))

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # Transport methods used by the channel

    def write(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)

    async def drain(self) -> None:
        if self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("connection closed")
        if not self._paused:
            return
        self._drain_waiter = asyncio.get_running_loop().create_future()
        await self._drain_waiter

    async def read(self) -> bytes:
        if not self._chunks and not self._eof:
            self._read_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._read_waiter
            finally:
                self._read_waiter = None
        if self._chunks:
            data = b"".join(self._chunks)
            self._chunks.clear()
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
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _wake_reader(self) -> None:
        if self._read_waiter is not None and not self._read_waiter.done():
            self._read_waiter.set_result(None)


async def open_tcp(uri: WebSocketURI, options: ChannelOptions) -> Transport:
    """Open TCP (and TLS for wss://) to the URI's host and port, with typed errors."""
    loop = asyncio.get_running_loop()
    where = f"{uri.host}:{uri.port}"
    context = options.ssl_context() if uri.secure else None
    try:
        _, protocol = await loop.create_connection(
            StreamTransport,
            uri.host,
            uri.port,
            ssl=context,
            server_hostname=uri.host if context else None,
        )
    except socket.gaierror as exc:
        raise DNSError(
            f"cannot resolve host {uri.host!r}: {exc.strerror}", host=uri.host, port=uri.port
        ) from exc
    except ConnectionRefusedError as exc:
        raise ConnectionRefused(
            f"connection refused by {where}: is a server listening there?",
            host=uri.host,
            port=uri.port,
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise TLSError(
            f"TLS certificate verification failed for {where}: {exc.verify_message}"
            " (trust its CA with --cacert, or skip checks with --insecure)",
            host=uri.host,
            port=uri.port,
        ) from exc
    except ssl.SSLError as exc:
        raise TLSError(
            f"TLS handshake with {where} failed: {exc.reason or exc}", host=uri.host, port=uri.port
        ) from exc
    except OSError as exc:
        raise ConnectError(
            f"cannot connect to {where}: {exc.strerror or exc}", host=uri.host, port=uri.port
        ) from exc
    return protocol
