"""The byte pipe under the channel, and the function that opens one over TCP (and TLS).

The channel only ever calls ``write``, ``drain``, ``read``, ``close`` and ``abort``; a simulated
transport with the same five methods lets a scheduler run the channel without sockets.

``open_tcp`` also goes through a proxy (HTTP CONNECT over http:// or https://, SOCKS5 with local
or remote name resolution) or a Unix socket, as the options ask; whichever way, the result is the
same byte pipe and the WebSocket handshake that follows does not know the difference.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, cast
from urllib.parse import unquote, urlsplit

from websockets.uri import WebSocketURI

from .errors import ConnectError, ConnectionRefused, DNSError, TLSError
from .options import ChannelOptions


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

#: Frames smaller than this, written in one turn of the event loop, leave in one system call
#: (``StreamTransport.write``); what is held back never exceeds it.
CORK_LIMIT = 64 * 1024


class SocketTransport(Protocol):
    """What ``StreamTransport`` calls on the event loop's transport: typed by use, because
    uvloop's transports have these methods without subclassing ``asyncio.Transport``."""

    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class StreamTransport(asyncio.Protocol):
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
        self._corked: list[bytes] = []  # written, not yet handed to the loop's transport
        self._corked_size = 0
        self._flush_scheduled = False

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
        self._corked.clear()
        self._corked_size = 0
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

    # Transport methods used by the channel

    def write(self, data: bytes) -> None:
        """Frames written in one turn of the loop leave together: a thousand small frames of a
        burst (``seq 1000000 | wschan send``) make a few system calls, not a thousand, and
        reach the peer in full segments. A frame of CORK_LIMIT or more, or the one that
        brings what is held to CORK_LIMIT, goes out at once; the rest at the end of the turn
        (before the loop polls), or with ``close`` or ``abort``. ``drain`` is unchanged: what
        is held is bounded by CORK_LIMIT, on top of the transport's own buffer."""
        corked = self._corked
        if corked:
            corked.append(data)
            self._corked_size += len(data)
            if self._corked_size >= CORK_LIMIT:
                self._flush()
        elif len(data) >= CORK_LIMIT:
            self._send(data)
        else:
            corked.append(data)
            self._corked_size = len(data)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                assert self._loop is not None
                self._loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._flush()

    def _flush(self) -> None:
        corked = self._corked
        if not corked:
            return
        data = corked[0] if len(corked) == 1 else b"".join(corked)
        corked.clear()
        self._corked_size = 0
        self._send(data)

    def _send(self, data: bytes) -> None:
        transport = self._transport
        assert transport is not None
        try:
            transport.write(data)
        except RuntimeError:
            # uvloop refuses a write once its handle is closed; asyncio drops it silently, and
            # so does the channel on either loop: the next drain() reports the closed
            # connection (deinit's Close frame after terminate closed it: channel-model.md,
            # the deinit/terminate race).
            if not transport.is_closing():
                raise

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
            self._flush()  # close() sends what is buffered first: what is held back too
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            # What was written goes to the loop's transport first, as it did when each write
            # went straight there: the kernel keeps what it already took, the abort drops the
            # rest (the transport's own buffer), exactly as before frames were held back.
            self._flush()
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
        self._flush()  # what was written in the clear goes before the TLS layer
        return cast(asyncio.WriteTransport, self._transport)

    def _replace_transport(self, transport: asyncio.BaseTransport) -> None:
        """After ``loop.start_tls``: write through the TLS layer from now on."""
        self._transport = cast(SocketTransport, transport)


class ProxyError(ConnectError):
    """The proxy could not be reached, refused the tunnel, or failed to open it."""


PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
_PROXY_DEFAULT_PORTS = {"http": 1080, "https": 443, "socks5": 1080, "socks5h": 1080}  # as curl


@dataclass(frozen=True)
class ProxyURL:
    """A parsed proxy URL. ``str()`` never shows the password."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> ProxyURL:
        """Parse ``scheme://[user[:password]@]host[:port]``; a missing scheme means http.

        Raises ValueError with a message fit for a command line (the password is never in it).
        """
        if "://" not in url:
            url = "http://" + url
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        shown = f"{scheme}://{parts.hostname or ''}"
        if scheme not in PROXY_SCHEMES:
            raise ValueError(
                f"unsupported proxy scheme {scheme!r} in {shown}: use one of "
                + ", ".join(f"{s}://" for s in PROXY_SCHEMES)
            )
        if not parts.hostname:
            raise ValueError(f"proxy URL {shown} has no host")
        try:
            port = parts.port or _PROXY_DEFAULT_PORTS[scheme]
        except ValueError:
            raise ValueError(f"proxy URL {shown} has an invalid port") from None
        return cls(
            scheme=scheme,
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.username}:****@" if self.username is not None else ""
        return f"{self.scheme}://{user}{host}:{self.port}"


def proxy_from_environment(uri: WebSocketURI) -> str | None:
    """The proxy the environment names for this URI, or None (also when no_proxy matches).

    ws:// looks at ws_proxy, then http_proxy; wss:// at wss_proxy, then https_proxy; both then
    fall back to all_proxy (upper-case names too, as urllib reads them).
    """
    import urllib.request

    proxies = urllib.request.getproxies()
    keys = ("wss", "https", "all") if uri.secure else ("ws", "http", "all")
    chosen = next((proxies[key] for key in keys if proxies.get(key)), None)
    if chosen is None:
        return None
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    if urllib.request.proxy_bypass(f"{host}:{uri.port}"):
        return None
    return chosen


def proxy_for(uri: WebSocketURI, options: ChannelOptions) -> ProxyURL | None:
    """The proxy ``open_tcp`` will use for this URI, if any."""
    if options.unix_socket is not None:
        return None
    url = options.proxy
    if url is None and options.trust_env:
        url = proxy_from_environment(uri)
    if not url:
        return None
    try:
        return ProxyURL.parse(url)
    except ValueError as exc:
        raise ProxyError(str(exc), host=uri.host, port=uri.port) from None


@contextlib.contextmanager
def _typed_errors(uri: WebSocketURI, where: str, host: str | None = None) -> Iterator[None]:
    """Turn the OS's and the TLS layer's exceptions into the channel's typed errors.

    ``where`` names what was being reached; ``host`` the name resolved (default: the URI's).
    """
    try:
        yield
    except socket.gaierror as exc:
        raise DNSError(
            f"cannot resolve host {host or uri.host!r}: {exc.strerror}",
            host=uri.host,
            port=uri.port,
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


async def open_tcp(uri: WebSocketURI, options: ChannelOptions) -> Transport:
    """Open TCP (and TLS for wss://) to the URI's host and port, with typed errors.

    Through ``options.unix_socket`` or a proxy (``proxy_for``) when the options say so.
    """
    loop = asyncio.get_running_loop()
    context = options.ssl_context() if uri.secure else None
    server_hostname = uri.host if context else None
    if options.unix_socket is not None:
        where = f"unix socket {options.unix_socket}"
        with _typed_errors(uri, where):
            _, protocol = await loop.create_unix_connection(
                StreamTransport, options.unix_socket, ssl=context, server_hostname=server_hostname
            )
        return protocol
    proxy = proxy_for(uri, options)
    if proxy is not None:
        if proxy.scheme in ("http", "https"):
            return await _open_http_tunnel(uri, options, proxy, context)
        return await _open_socks(uri, options, proxy, context)
    where = f"{uri.host}:{uri.port}"
    with _typed_errors(uri, where):
        _, protocol = await loop.create_connection(
            StreamTransport, uri.host, uri.port, ssl=context, server_hostname=server_hostname
        )
    return protocol


def _target(uri: WebSocketURI) -> str:
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    return f"{host}:{uri.port}"


_MAX_PROXY_RESPONSE = 64 * 1024


async def _open_http_tunnel(
    uri: WebSocketURI,
    options: ChannelOptions,
    proxy: ProxyURL,
    context: ssl.SSLContext | None,
) -> Transport:
    """HTTP CONNECT through an http:// or https:// proxy, then TLS to the server for wss://."""
    loop = asyncio.get_running_loop()
    at = f"proxy {proxy.host}:{proxy.port}"
    proxy_context = options.ssl_context() if proxy.scheme == "https" else None
    with _typed_errors(uri, at, proxy.host):
        _, protocol = await loop.create_connection(
            StreamTransport,
            proxy.host,
            proxy.port,
            ssl=proxy_context,
            server_hostname=proxy.host if proxy_context else None,
        )
    target = _target(uri)
    try:
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if proxy.username is not None:
            credentials = f"{proxy.username}:{proxy.password or ''}".encode()
            lines.append(f"Proxy-Authorization: Basic {base64.b64encode(credentials).decode()}")
        protocol.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            try:
                data = await protocol.read()
            except OSError as exc:
                raise ProxyError(
                    f"{at} dropped the connection during CONNECT: {exc}",
                    host=uri.host,
                    port=uri.port,
                ) from exc
            if not data:
                raise ProxyError(
                    f"{at} closed the connection without answering CONNECT {target}",
                    host=uri.host,
                    port=uri.port,
                )
            head += data
            if len(head) > _MAX_PROXY_RESPONSE:
                raise ProxyError(
                    f"{at} sent an oversized answer to CONNECT", host=uri.host, port=uri.port
                )
        head, rest = head.split(b"\r\n\r\n", 1)
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ProxyError(
                f"{at} sent an invalid answer to CONNECT: {status_line[:80]!r}",
                host=uri.host,
                port=uri.port,
            )
        status = int(parts[1])
        if not 200 <= status < 300:
            phrase = parts[2] if len(parts) > 2 else ""
            hint = ""
            if status == 407:
                hint = (
                    " (check the credentials in the proxy URL)"
                    if proxy.username is not None
                    else " (put user:password@ before the host in the proxy URL)"
                )
            raise ProxyError(
                f"{at} refused CONNECT {target}: HTTP {status} {phrase}".rstrip() + hint,
                host=uri.host,
                port=uri.port,
            )
        protocol._unread(rest)
        if context is not None:
            with _typed_errors(uri, f"{target} (through {at})"):
                tls = await loop.start_tls(
                    protocol._loop_transport, protocol, context, server_hostname=uri.host
                )
            assert tls is not None
            protocol._replace_transport(tls)
    except BaseException:
        protocol.abort()
        raise
    return protocol


async def _open_socks(
    uri: WebSocketURI,
    options: ChannelOptions,
    proxy: ProxyURL,
    context: ssl.SSLContext | None,
) -> Transport:
    """SOCKS5 with python-socks: socks5:// resolves the name here, socks5h:// at the proxy."""
    at = f"proxy {proxy.host}:{proxy.port}"
    try:
        from python_socks import ProxyError as SocksReplyError
        from python_socks import ProxyTimeoutError, ProxyType
        from python_socks.async_.asyncio import Proxy
    except ImportError:
        raise ProxyError(
            f"{proxy.scheme}:// proxies need the python-socks package (pip install python-socks)",
            host=uri.host,
            port=uri.port,
        ) from None
    loop = asyncio.get_running_loop()
    socks = Proxy(
        ProxyType.SOCKS5,
        proxy.host,
        proxy.port,
        username=proxy.username,
        password=proxy.password,
        rdns=proxy.scheme == "socks5h",
    )
    try:
        sock = await socks.connect(uri.host, uri.port, timeout=options.open_timeout or 3600.0)
    except ProxyTimeoutError:
        raise ProxyError(
            f"{at} did not open a tunnel to {_target(uri)} in time", host=uri.host, port=uri.port
        ) from None
    except SocksReplyError as exc:
        raise ProxyError(
            f"{at} could not open a tunnel to {_target(uri)}: {exc}", host=uri.host, port=uri.port
        ) from exc
    except socket.gaierror as exc:
        raise DNSError(
            f"cannot resolve host {uri.host!r}: {exc.strerror} (socks5h:// lets the proxy"
            " resolve it)",
            host=uri.host,
            port=uri.port,
        ) from exc
    except OSError as exc:  # python-socks' ProxyConnectionError is an OSError
        raise ProxyError(
            f"cannot reach {at}: {exc.strerror or exc}", host=uri.host, port=uri.port
        ) from exc
    try:
        with _typed_errors(uri, f"{_target(uri)} (through {at})"):
            _, protocol = await loop.create_connection(
                StreamTransport,
                sock=sock,
                ssl=context,
                server_hostname=uri.host if context else None,
            )
    except BaseException:
        sock.close()
        raise
    return protocol
