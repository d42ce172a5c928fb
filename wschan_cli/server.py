"""An embedded WebSocket server whose misbehaviour can be chosen.

The server echoes every message back with the same type (text or binary). A
:class:`Behaviour` turns on the faults a client has to cope with: closing after
N messages, dropping TCP without a Close frame or in the middle of a frame,
never answering a Close frame, refusing the upgrade, stalling the handshake,
sending invalid UTF-8 or an oversized message, and so on.

It is used by the test suite (:class:`EmbeddedServer` inside an event loop,
:class:`ThreadedServer` for tests that run ``wschan`` as a subprocess) and by
``wschan serve``. It is built on :mod:`websockets.asyncio.server` and imports
nothing of click or rich, so it stays cheap to import from tests.

Everything recorded (messages, pongs, close codes, request headers) is kept in
plain lists on the server object so that tests can assert on what the client
really put on the wire. ``record=False`` (what ``wschan serve`` uses) keeps only
counts, so a long-running server holds flat memory however much it echoes.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ssl import SSLContext
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import CONNECTING
from websockets.typing import Subprotocol

from wschan_cli.channel.close import SENDABLE_CLOSE_CODES, unsendable_part

__all__ = ["DEFAULT_MAX_SIZE", "Behaviour", "EmbeddedServer", "ThreadedServer"]

logger = logging.getLogger("wschan_cli.server")

#: Largest message the server accepts. Generous so that tests can push big messages through.
DEFAULT_MAX_SIZE = 64 * 1024 * 1024

#: Payload of the text frame sent by ``invalid_utf8``: 0xFF and 0xFE never occur in UTF-8.
INVALID_UTF8_PAYLOAD = b"\xff\xfe"

#: Length announced by the truncated frame of ``drop_mid_frame``, and how much of it is sent.
MID_FRAME_ANNOUNCED = 1000
MID_FRAME_SENT = 10


def _raw_server_frame(opcode: Opcode, payload: bytes, announced: int | None = None) -> bytes:
    """Serialize an unmasked, final, uncompressed server frame by hand.

    websockets refuses to emit malformed data (invalid UTF-8 in a text frame, a
    frame shorter than its header says), so the faults that need one are written
    straight to the transport. ``announced`` overrides the payload length written
    in the header, which is how a truncated frame is made.
    """
    length = len(payload) if announced is None else announced
    head = bytes([0x80 | int(opcode)])  # FIN set, RSV bits clear: no compression
    if length < 126:
        head += bytes([length])
    elif length < 1 << 16:
        head += bytes([126]) + length.to_bytes(2, "big")
    else:
        head += bytes([127]) + length.to_bytes(8, "big")
    return head + payload


@dataclass(frozen=True)
class Behaviour:
    """What the server does besides echoing. The default is a plain echo server.

    Counts (``close_after``, ``drop_after``) are numbers of messages echoed on one
    connection; 0 means "right after the handshake" (after the on-connect actions).

    The on-connect actions run right after the handshake, in this order:
    ``ping_on_connect``, ``greeting``, ``send_size``, ``invalid_utf8`` (the last one
    makes a conforming client close, so it goes last).
    """

    close_after: int | None = None
    """After echoing this many messages, close cleanly with ``close_code``/``close_reason``."""
    close_code: int = 1000
    """Close code used by ``close_after``."""
    close_reason: str = ""
    """Close reason used by ``close_after`` (at most 123 bytes of UTF-8)."""
    drop_after: int | None = None
    """After echoing this many messages, abort TCP without sending a Close frame."""
    drop_mid_frame: bool = False
    """With ``drop_after``: first send half a frame (header for 1000 bytes, 10 bytes of it)."""
    ignore_close: bool = False
    """Never answer the client's Close frame and never close TCP; the client must time out."""
    reject_status: int | None = None
    """Refuse the upgrade with this HTTP status."""
    reject_body: str = ""
    """Body of the refusal sent with ``reject_status``."""
    stall_before_upgrade: float | None = None
    """Wait this many seconds before answering the handshake request."""
    ping_on_connect: bytes | None = None
    """Send a Ping with this payload (at most 125 bytes) right after the handshake."""
    invalid_utf8: bool = False
    """Send a text frame whose payload is not UTF-8 right after the handshake."""
    send_size: int | None = None
    """Send one binary message of this many (random, incompressible) bytes after the handshake."""
    greeting: str | None = None
    """Send this text message right after the handshake."""

    def __post_init__(self) -> None:
        # Validate here rather than fail inside a connection handler, where the
        # error would only show up as a log line and a confusing client failure.
        for name in ("close_after", "drop_after", "send_size"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, not {value}")
        if self.close_after is not None and self.drop_after is not None:
            raise ValueError("close_after and drop_after are mutually exclusive")
        if self.drop_mid_frame and self.drop_after is None:
            raise ValueError("drop_mid_frame needs drop_after")
        part = unsendable_part(self.close_code, self.close_reason)
        if part == "code":
            raise ValueError(
                f"close_code {self.close_code} cannot be sent in a Close frame "
                f"(use {SENDABLE_CLOSE_CODES})"
            )
        if part == "reason":
            raise ValueError("close_reason must be at most 123 bytes of UTF-8")
        if self.reject_status is not None:
            try:
                status = http.HTTPStatus(self.reject_status)
            except ValueError:
                raise ValueError(
                    f"reject_status {self.reject_status} is not a known HTTP status"
                ) from None
            if not 200 <= status <= 599:
                raise ValueError("reject_status must be between 200 and 599")
        if self.stall_before_upgrade is not None and self.stall_before_upgrade < 0:
            raise ValueError("stall_before_upgrade must be >= 0")
        if self.ping_on_connect is not None and len(self.ping_on_connect) > 125:
            raise ValueError("ping_on_connect payload must be at most 125 bytes")

    def describe(self) -> list[str]:
        """One short human-readable line per non-default setting (for ``wschan serve``)."""
        lines: list[str] = []
        if self.reject_status is not None:
            lines.append(f"reject the upgrade with HTTP {self.reject_status}")
        if self.stall_before_upgrade is not None:
            lines.append(f"stall {self.stall_before_upgrade:g}s before answering the handshake")
        if self.ping_on_connect is not None:
            lines.append(f"ping on connect with payload {self.ping_on_connect!r}")
        if self.greeting is not None:
            lines.append(f"greet with {self.greeting!r}")
        if self.send_size is not None:
            lines.append(f"send a {self.send_size}-byte binary message on connect")
        if self.invalid_utf8:
            lines.append("send a text frame with invalid UTF-8 on connect")
        if self.close_after is not None:
            reason = f" {self.close_reason!r}" if self.close_reason else ""
            lines.append(
                f"close with {self.close_code}{reason} after {self.close_after} message(s)"
            )
        if self.drop_after is not None:
            how = "mid-frame" if self.drop_mid_frame else "without a Close frame"
            lines.append(f"drop TCP {how} after {self.drop_after} message(s)")
        if self.ignore_close:
            lines.append("ignore the client's Close frame")
        return lines


class _BehaviourConnection(ServerConnection):
    """A server connection that records pongs and close codes and can swallow Close.

    ``serve()`` builds connections through its ``create_connection`` hook, which
    passes a fixed set of arguments; :class:`EmbeddedServer` makes a subclass with
    ``owner`` set so that each connection can reach its recorder.
    """

    owner: EmbeddedServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if self.owner.behaviour.ignore_close:
            # With ignore_close the server must never give up on its own: the
            # whole point is that the *client* times out. A close timeout here
            # would abort TCP and hand the client a clean-looking end. Shutdown
            # of the EmbeddedServer aborts such connections explicitly instead.
            kwargs["close_timeout"] = None
        super().__init__(*args, **kwargs)
        self.accepted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.owner._live.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.owner._live.discard(self)
        if self.accepted:
            close = self.protocol.close_rcvd
            self.owner._record_end(None if close is None else close.code)

    def process_event(self, event: Any) -> None:
        super().process_event(event)
        # Pongs are recorded here rather than through ping()'s waiter so that
        # unsolicited pongs and pongs with unexpected payloads are seen too.
        if isinstance(event, Frame) and event.opcode is Opcode.PONG:
            self.owner._record_pong(bytes(event.data))

    def send_data(self) -> None:
        # How ignore_close works: websockets answers a Close frame inside its
        # Sans-I/O protocol (recv_frame queues the echoed Close frame and, on the
        # server side, an end-of-stream marker), and the connection then writes
        # whatever the protocol queued. Intercepting at this single write point
        # is robust: the protocol state machine stays consistent (it believes
        # it answered, so recv() and the handler behave normally), while nothing
        # reaches the wire. close_rcvd_then_sent tells a client-initiated close
        # (swallowed) from one the server started itself, e.g. close_after or
        # shutdown, which must still go out. The cost: control frames answered in
        # the same read as the Close (a Pong) are dropped as well, which is fine
        # since the client is closing anyway. Once the client gives up and closes
        # its side, asyncio closes ours (eof_received keeps no half-open socket);
        # that is the end the test is after, and it lets close_codes be recorded.
        if (
            self.owner.behaviour.ignore_close
            and self.protocol.close_rcvd is not None
            and self.protocol.close_rcvd_then_sent
        ):
            self.protocol.data_to_send()  # discard the Close reply and the EOF
            return
        super().send_data()


class EmbeddedServer:
    """A WebSocket echo server on one loopback port, with a configurable :class:`Behaviour`.

    Use it as an async context manager inside a running event loop::

        async with EmbeddedServer(Behaviour(greeting="hi")) as srv:
            async with websockets.asyncio.client.connect(srv.url) as ws:
                ...

    Recorded for tests (in order, across connections):

    * ``received``: every message received, ``str`` for text and ``bytes`` for binary;
    * ``pongs``: payload of every Pong received;
    * ``connections``: number of accepted upgrades (counted before the 101 is sent);
    * ``close_codes``: for each ended accepted connection, the close code the client
      sent (1005 for a Close frame without a code), or ``None`` without a Close frame;
    * ``request_headers``: headers of every handshake request, rejected ones too,
      as a dict with lower-case names (repeated headers joined with ", ");
    * ``request_paths``: the request target (path and query) of every handshake request;
    * ``subprotocols``: the subprotocol selected for each accepted connection. The
      server accepts the first subprotocol the client offers, and none if it offers none.

    With ``record=False`` those lists stay empty; the counts ``connections``, ``messages``
    (messages received) and ``ended`` (accepted connections ended) are kept either way.
    """

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        compression: bool = True,
        ssl: SSLContext | None = None,
        max_size: int | None = DEFAULT_MAX_SIZE,
        shutdown_timeout: float = 2.0,
        record: bool = True,
    ) -> None:
        self.behaviour = behaviour if behaviour is not None else Behaviour()
        self.host = host
        self.compression = compression
        self.ssl = ssl
        self.max_size = max_size
        self.shutdown_timeout = shutdown_timeout
        self._requested_port = port

        self.record = record
        self.messages = 0
        self.ended = 0
        self.received: list[str | bytes] = []
        self.pongs: list[bytes] = []
        self.connections = 0
        self.close_codes: list[int | None] = []
        self.request_headers: list[dict[str, str]] = []
        self.request_paths: list[str] = []
        self.subprotocols: list[str | None] = []

        self._server: Server | None = None
        self._port: int | None = None
        self._url: str | None = None
        # Set whenever a record changes; waiters re-check their condition.
        self._changed = asyncio.Event()
        # Set when stopping, to cut short stalled handshakes.
        self._stopping = asyncio.Event()
        # Every TCP connection not yet lost, accepted or not, so that shutdown
        # can abort whatever does not close gracefully in time.
        self._live: set[_BehaviourConnection] = set()

    # -- addresses ----------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port actually bound (useful with ``port=0``)."""
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/`` (``wss://`` with TLS) to connect to this server."""
        if self._url is None:
            raise RuntimeError("the server is not started")
        return self._url

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol selected for the most recent accepted connection."""
        return self.subprotocols[-1] if self.subprotocols else None

    # -- lifecycle ----------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind the listening socket and start accepting connections."""
        if self._server is not None:
            raise RuntimeError("the server is already started")
        sock = self._bind()
        stall = self.behaviour.stall_before_upgrade or 0.0
        try:
            self._server = await serve(
                self._handle,
                sock=sock,
                ssl=self.ssl,
                compression="deflate" if self.compression else None,
                select_subprotocol=self._select_subprotocol,
                process_request=self._process_request,
                process_response=self._process_response,
                # The handshake timeout includes process_request, so a long stall
                # must not be cut short by it.
                open_timeout=10.0 + stall,
                # No keepalive pings: a test server must only send what it is asked to.
                ping_interval=None,
                max_size=self.max_size,
                create_connection=self._connection_class(),
            )
        except BaseException:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        self._url = self._make_url()
        logger.debug("listening on %s", self._url)

    async def stop(self) -> None:
        """Close connections (1001, gracefully when possible) and stop listening.

        Bounded: connections still open after ``shutdown_timeout`` are aborted.
        """
        server = self._server
        if server is None:
            return
        self._stopping.set()
        # A connection whose Close was swallowed would wait for the client forever.
        for conn in list(self._live):
            if conn.protocol.close_rcvd is not None and self.behaviour.ignore_close:
                conn.transport.abort()
        server.close()
        try:
            async with asyncio.timeout(self.shutdown_timeout):
                await server.wait_closed()
        except TimeoutError:
            # Clients that do not answer the closing handshake must not hold up
            # the test suite: abort them, which ends their handlers promptly.
            logger.info("aborting %d connection(s) that did not close in time", len(self._live))
            for conn in list(self._live):
                conn.transport.abort()
            try:
                async with asyncio.timeout(self.shutdown_timeout):
                    await server.wait_closed()
            except TimeoutError:
                logger.warning("server did not stop within %ss", 2 * self.shutdown_timeout)
        logger.info("stopped")

    def _bind(self) -> socket.socket:
        # Bind one socket ourselves instead of passing host/port to serve():
        # with port 0 and a name resolving to several addresses (localhost ->
        # 127.0.0.1 and ::1), asyncio would bind each to a *different* free
        # port, and there would be no single URL for the server.
        infos = socket.getaddrinfo(
            self.host or None,
            self._requested_port,
            type=socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE,
        )
        family, type_, proto, _, address = infos[0]
        sock = socket.socket(family, type_, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(100)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    def _make_url(self) -> str:
        host = self.host
        try:
            ip = ipaddress.ip_address(host) if host else None
        except ValueError:
            ip = None  # a host name: keep it, so that TLS name checks work
        if not host or (ip is not None and ip.is_unspecified):
            # Bound to all interfaces: the URL is about where to connect, so use loopback.
            host = "::1" if ip is not None and ip.version == 6 else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "wss" if self.ssl is not None else "ws"
        return f"{scheme}://{host}:{self.port}/"

    def _connection_class(self) -> type[_BehaviourConnection]:
        # A subclass per server, because create_connection is called with a fixed
        # signature and so cannot be handed the recorder as an argument.
        owner = self

        class Connection(_BehaviourConnection):
            pass

        Connection.owner = owner
        return Connection

    # -- waiting for records --------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float | None = 5.0) -> None:
        """Wait until ``predicate()`` is true; it is re-checked whenever a record changes.

        Raises TimeoutError after ``timeout`` seconds (``None``: no limit).
        """
        async with asyncio.timeout(timeout):
            while not predicate():
                # Safe without a lock: nothing runs between the check and clear().
                self._changed.clear()
                await self._changed.wait()

    async def wait_connections(self, n: int, timeout: float | None = 5.0) -> None:
        """Wait until at least ``n`` upgrades were accepted (TimeoutError after ``timeout``)."""
        await self.wait_until(lambda: self.connections >= n, timeout)

    async def wait_ended(self, n: int, timeout: float | None = 5.0) -> None:
        """Wait until at least ``n`` accepted connections ended (TimeoutError after ``timeout``)."""
        await self.wait_until(lambda: self.ended >= n, timeout)

    async def wait_received(self, n: int, timeout: float | None = 5.0) -> None:
        """Wait until at least ``n`` messages were received in total."""
        await self.wait_until(lambda: self.messages >= n, timeout)

    # -- acting on demand ------------------------------------------------------------

    async def ping_all(self, payload: bytes = b"") -> int:
        """Send a Ping with ``payload`` on every open connection; return how many were pinged.

        Does not wait for the Pongs: they land in ``pongs`` (see :meth:`wait_until`).
        websockets refuses a second Ping with the payload of one still unanswered on
        the same connection, so use distinct payloads for overlapping pings.
        """
        if self._server is None:
            raise RuntimeError("the server is not started")
        pinged = 0
        for connection in list(self._server.connections):
            try:
                await connection.ping(payload)
            except ConnectionClosed:
                continue  # it closed meanwhile: nothing to ping
            pinged += 1
        logger.info("pinged %d connection(s) with %r", pinged, payload)
        return pinged

    def _record_pong(self, payload: bytes) -> None:
        if self.record:
            self.pongs.append(payload)
        logger.info("pong received: %r", payload)
        self._notify()

    def _record_end(self, code: int | None) -> None:
        self.ended += 1
        if self.record:
            self.close_codes.append(code)
        logger.info("connection ended; close code from client: %s", code)
        self._notify()

    # -- handshake hooks -------------------------------------------------------

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        # Accept whatever the client offers first, so that clients can be tested
        # against any subprotocol name without configuring the server.
        return offered[0] if offered else None

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        headers: dict[str, str] = {}
        for name, value in request.headers.raw_items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        if self.record:
            self.request_headers.append(headers)
            self.request_paths.append(request.path)
        self._notify()

        stall = self.behaviour.stall_before_upgrade
        if stall:
            # Interruptible: stop() or the client going away ends the stall early
            # (the handshake then fails or is not answered at all).
            stopping = asyncio.ensure_future(self._stopping.wait())
            waiters: list[asyncio.Future[Any]] = [stopping, connection.connection_lost_waiter]
            try:
                await asyncio.wait(
                    waiters,
                    timeout=stall,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                stopping.cancel()

        if self.behaviour.reject_status is not None:
            logger.info("rejecting upgrade with HTTP %d", self.behaviour.reject_status)
            return connection.respond(self.behaviour.reject_status, self.behaviour.reject_body)
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        # Count the connection here, before the 101 is written, so that a client
        # that has seen its handshake succeed always finds it counted. This is a
        # plain function, so websockets does not yield between here and sending;
        # the conditions mirror its own last-moment checks (server shutting down:
        # 503 instead; connection already lost: no answer).
        if (
            response.status_code == http.HTTPStatus.SWITCHING_PROTOCOLS
            and connection.server.is_serving()
            and connection.protocol.state is CONNECTING
        ):
            assert isinstance(connection, _BehaviourConnection)
            connection.accepted = True
            self.connections += 1
            subprotocol = response.headers.get("Sec-WebSocket-Protocol")
            if self.record:
                self.subprotocols.append(subprotocol)
            logger.info(
                "connection %d accepted: path %s, subprotocol %s",
                self.connections,
                request.path,
                subprotocol,
            )
            self._notify()

    # -- connection handler ------------------------------------------------------

    async def _drain(self, connection: ServerConnection) -> None:
        """Count (and record) the messages still queued on a closed connection."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                self._record_message(await connection.recv())

    def _record_message(self, message: str | bytes) -> None:
        self.messages += 1
        if self.record:
            self.received.append(message)
        self._notify()

    async def _handle(self, connection: ServerConnection) -> None:
        behaviour = self.behaviour
        try:
            await self._on_connect(connection)
            echoed = 0
            while True:
                if behaviour.close_after is not None and echoed >= behaviour.close_after:
                    logger.info("closing with %d after %d message(s)", behaviour.close_code, echoed)
                    await connection.close(behaviour.close_code, behaviour.close_reason)
                    return
                if behaviour.drop_after is not None and echoed >= behaviour.drop_after:
                    await self._drop(connection)
                    return
                message = await connection.recv()
                logger.info(
                    "received %s message, %d bytes",
                    "text" if isinstance(message, str) else "binary",
                    len(message),
                )
                self._record_message(message)
                try:
                    await connection.send(message)
                except ConnectionClosed:
                    # Our echo crossed the client's Close: what it sent before the Close was
                    # still received (RFC 6455 5.5.1), so it is recorded, not lost.
                    await self._drain(connection)
                    raise
                echoed += 1
        except ConnectionClosed:
            # The client closed or went away: that ends the echo loop, it is no error.
            pass

    async def _on_connect(self, connection: ServerConnection) -> None:
        behaviour = self.behaviour
        if behaviour.ping_on_connect is not None:
            # Not awaiting the pong: the client answers pings on its own schedule
            # and process_event() records the Pong whenever it comes.
            await connection.ping(behaviour.ping_on_connect)
        if behaviour.greeting is not None:
            await connection.send(behaviour.greeting)
        if behaviour.send_size is not None:
            # Random bytes, so that permessage-deflate cannot shrink the message
            # below a client's limit on the wire.
            await connection.send(os.urandom(behaviour.send_size))
        if behaviour.invalid_utf8:
            # websockets only sends text it encoded itself, so write the frame raw.
            # It is uncompressed (RSV1 clear), which is legal even with deflate on.
            connection.transport.write(_raw_server_frame(Opcode.TEXT, INVALID_UTF8_PAYLOAD))

    async def _drop(self, connection: ServerConnection) -> None:
        transport = connection.transport
        if self.behaviour.drop_mid_frame:
            payload = b"x" * MID_FRAME_SENT
            transport.write(_raw_server_frame(Opcode.TEXT, payload, announced=MID_FRAME_ANNOUNCED))
            logger.info("dropping TCP mid-frame")
        else:
            logger.info("dropping TCP without a Close frame")
        # abort() throws away what is still buffered in the transport, and the
        # point is that the client *receives* the last echo or the half frame
        # first; so wait (briefly) until the transport handed it to the kernel.
        await self._flush(transport)
        transport.abort()
        await connection.wait_closed()

    @staticmethod
    async def _flush(transport: asyncio.WriteTransport, timeout: float = 2.0) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while transport.get_write_buffer_size() > 0:
                    await asyncio.sleep(0.005)


class ThreadedServer:
    """Runs an :class:`EmbeddedServer` in a background thread with its own event loop.

    For tests that drive the real ``wschan`` executable as a subprocess::

        with ThreadedServer(Behaviour(close_after=1)) as srv:
            subprocess.run(["wschan", ..., srv.url], timeout=10)
            assert srv.close_codes == [1000]

    The record attributes return copies taken from the server thread's lists.
    Entering waits at most ``start_timeout`` for the server to listen; leaving
    stops it (bounded by the server's shutdown) and joins the thread for at most
    ``stop_timeout`` seconds.
    """

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        compression: bool = True,
        ssl: SSLContext | None = None,
        max_size: int | None = DEFAULT_MAX_SIZE,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self._kwargs: dict[str, Any] = {
            "behaviour": behaviour,
            "host": host,
            "port": port,
            "compression": compression,
            "ssl": ssl,
            "max_size": max_size,
        }
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._server: EmbeddedServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Do not mask the test's own exception with a shutdown complaint.
        self.stop(raise_on_hang=exc_type is None)

    def start(self) -> None:
        """Start the thread and wait until the server listens."""
        if self._thread is not None:
            raise RuntimeError("the server is already started")
        self._thread = threading.Thread(target=self._run, name="wschan-test-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            raise TimeoutError(f"server did not start within {self.start_timeout}s")
        if self._error is not None:
            self._thread.join(self.stop_timeout)
            raise self._error

    def stop(self, raise_on_hang: bool = True) -> None:
        """Stop the server and join its thread (bounded by ``stop_timeout``)."""
        thread = self._thread
        if thread is None:
            return
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        thread.join(self.stop_timeout)
        if thread.is_alive() and raise_on_hang:
            raise RuntimeError(f"server thread did not stop within {self.stop_timeout}s")

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start() if it happened before ready
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                logger.exception("server thread failed")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with EmbeddedServer(**self._kwargs) as server:
            self._server = server
            self._ready.set()
            await self._stop.wait()

    # -- access from the test thread ---------------------------------------------

    @property
    def server(self) -> EmbeddedServer:
        """The underlying server; only touch its lists, never its loop objects, from here."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        return self._server

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def behaviour(self) -> Behaviour:
        return self.server.behaviour

    @property
    def received(self) -> list[str | bytes]:
        return list(self.server.received)

    @property
    def pongs(self) -> list[bytes]:
        return list(self.server.pongs)

    @property
    def connections(self) -> int:
        return self.server.connections

    @property
    def close_codes(self) -> list[int | None]:
        return list(self.server.close_codes)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        return [dict(headers) for headers in self.server.request_headers]

    @property
    def request_paths(self) -> list[str]:
        return list(self.server.request_paths)

    @property
    def subprotocols(self) -> list[str | None]:
        return list(self.server.subprotocols)

    @property
    def subprotocol(self) -> str | None:
        return self.server.subprotocol

    def _call(self, make: Callable[[EmbeddedServer], Any], timeout: float) -> None:
        if self._loop is None:
            raise RuntimeError("the server is not started")
        future = asyncio.run_coroutine_threadsafe(make(self.server), self._loop)
        try:
            future.result(timeout + 1.0)
        except TimeoutError:
            future.cancel()
            raise

    def ping_all(self, payload: bytes = b"", timeout: float = 5.0) -> int:
        """Send a Ping with ``payload`` on every open connection; return how many were pinged."""
        if self._loop is None:
            raise RuntimeError("the server is not started")
        future = asyncio.run_coroutine_threadsafe(self.server.ping_all(payload), self._loop)
        return future.result(timeout)

    def wait_until(self, predicate: Callable[[EmbeddedServer], bool], timeout: float = 5.0) -> None:
        """Block until ``predicate(server)`` is true; it runs in the server thread."""
        self._call(lambda srv: srv.wait_until(lambda: predicate(srv), timeout), timeout)

    def wait_connections(self, n: int, timeout: float = 5.0) -> None:
        """Block until at least ``n`` upgrades were accepted (TimeoutError after ``timeout``)."""
        self._call(lambda srv: srv.wait_connections(n, timeout), timeout)

    def wait_ended(self, n: int, timeout: float = 5.0) -> None:
        """Block until at least ``n`` accepted connections ended."""
        self._call(lambda srv: srv.wait_ended(n, timeout), timeout)

    def wait_received(self, n: int, timeout: float = 5.0) -> None:
        """Block until at least ``n`` messages were received in total."""
        self._call(lambda srv: srv.wait_received(n, timeout), timeout)
