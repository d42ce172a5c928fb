"""Typed errors of the channel.

Each message says what failed and where, so a command line can print it as one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio


class ChannelError(Exception):
    """Base class of every error the channel raises."""


class InvalidURL(ChannelError):
    """The URL is not a usable ws:// or wss:// URL."""


class ConnectError(ChannelError):
    """The TCP or TLS connection could not be made (before any HTTP was exchanged)."""

    def __init__(self, message: str, *, host: str, port: int) -> None:
        super().__init__(message)
        self.host = host
        self.port = port


class DNSError(ConnectError):
    """The host name did not resolve."""


class ConnectionRefused(ConnectError):
    """Nothing listens at host:port."""


class TLSError(ConnectError):
    """The TLS handshake failed, typically certificate verification."""


class ProxyError(ConnectError):
    """The proxy could not be reached, refused the tunnel, or failed to open it."""


class OpenTimeout(ConnectError):
    """Connecting or upgrading took longer than the open timeout."""


class HandshakeError(ChannelError):
    """The HTTP upgrade did not complete."""


class HandshakeRejected(HandshakeError):
    """The server answered the upgrade with an HTTP status other than 101."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: bytes,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.headers = headers  # the response's, in order (e.g. Retry-After, for a retry)


class HandshakeInterrupted(HandshakeError):
    """The connection ended, or the response was invalid, before the 101."""


class ChannelClosed(ChannelError):
    """The connection closed before (or while) this operation could use it.

    ``code`` and ``reason`` are the close code and reason of that connection (1006 and "" when
    there was no Close frame); ``by`` says who closed it first: "peer", "local" or "network".
    """

    def __init__(self, code: int, reason: str, by: str) -> None:
        detail = f' "{reason}"' if reason else ""
        super().__init__(f"connection closed by {by}: {code}{detail}")
        self.code = code
        self.reason = reason
        self.by = by


class ChannelDisposed(ChannelError):
    """The channel was deinitialized; it cannot be used any more."""


class WriteTimeout(ChannelError):
    """A write did not drain within the write timeout; the connection was aborted (D8)."""


class PingTimeout(ChannelError):
    """No Pong arrived within the ping timeout."""


def reject(future: asyncio.Future[Any], error: BaseException) -> None:
    """Resolve a future the core made with an error, and count that error as retrieved: its
    awaiter, if it still runs, gets it all the same, but a task cancelled between its wake-up
    and its next step (asyncio.run's shutdown, a timeout) leaves no "Future exception was
    never retrieved" behind."""
    if not future.done():
        future.set_exception(error)
        future.exception()
