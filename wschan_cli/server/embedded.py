"""The embedded WebSocket server: one listening socket, an echo handler whose misbehaviour a
:class:`~wschan_cli.server.behaviour.Behaviour` chooses, and a bounded shutdown.

The server echoes every message back with the same type (text or binary). A
:class:`Behaviour` turns on the faults a client has to cope with: closing after
N messages, dropping TCP without a Close frame or in the middle of a frame,
never answering a Close frame, refusing the upgrade, stalling the handshake,
sending invalid UTF-8 or an oversized message, and so on.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import ipaddress
import logging
import socket
from collections.abc import Sequence
from ssl import SSLContext
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import CONNECTING
from websockets.typing import Subprotocol

from . import faults
from .behaviour import Behaviour
from .connection import BehaviourConnection, SwallowingCloseConnection
from .record import ServerRecord

__all__ = ["DEFAULT_MAX_SIZE", "EmbeddedServer"]

logger = logging.getLogger("wschan_cli.server")

#: Largest message the server accepts. Generous so that tests can push big messages through.
DEFAULT_MAX_SIZE = 64 * 1024 * 1024


class EmbeddedServer(ServerRecord):
    """A WebSocket echo server on one loopback port, with a configurable :class:`Behaviour`.

    Use it as an async context manager inside a running event loop::

        async with EmbeddedServer(Behaviour(greeting="hi")) as srv:
            async with websockets.asyncio.client.connect(srv.url) as ws:
                ...

    What it received is on the server itself (``srv.received``, ``srv.wait_ended(1)``, ...):
    see :class:`~wschan_cli.server.record.ServerRecord`, kept with ``record=True`` (the
    default, for tests). The server accepts the first subprotocol the client offers, and none
    if it offers none.
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
        super().__init__(record)

        self._server: Server | None = None
        self._port: int | None = None
        self._url: str | None = None
        # Set when stopping, to cut short stalled handshakes.
        self._stopping = asyncio.Event()
        # Every TCP connection not yet lost, accepted or not, so that shutdown
        # can abort whatever does not close gracefully in time.
        self.live: set[BehaviourConnection] = set()

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
        for conn in list(self.live):
            if conn.protocol.close_rcvd is not None and self.behaviour.ignore_close:
                conn.transport.abort()
        server.close()
        try:
            async with asyncio.timeout(self.shutdown_timeout):
                await server.wait_closed()
        except TimeoutError:
            # Clients that do not answer the closing handshake must not hold up
            # the test suite: abort them, which ends their handlers promptly.
            logger.info("aborting %d connection(s) that did not close in time", len(self.live))
            for conn in list(self.live):
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

    def _connection_class(self) -> type[BehaviourConnection]:
        # A subclass per server, because create_connection is called with a fixed
        # signature and so cannot be handed the recorder as an argument.
        # Only a server that swallows Close gets the connection that hooks every write.
        base: type[BehaviourConnection] = (
            SwallowingCloseConnection if self.behaviour.ignore_close else BehaviourConnection
        )
        return type("Connection", (base,), {"owner": self})

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
        self.record_request(request)

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
            assert isinstance(connection, BehaviourConnection)
            connection.accepted = True
            subprotocol = response.headers.get("Sec-WebSocket-Protocol")
            self.record_accepted(subprotocol)
            logger.info(
                "connection %d accepted: path %s, subprotocol %s",
                self.connections,
                request.path,
                subprotocol,
            )

    # -- connection handler ------------------------------------------------------

    async def _drain(self, connection: ServerConnection) -> None:
        """Count (and record) the messages still queued on a closed connection."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                self.record_message(await connection.recv())

    async def _handle(self, connection: ServerConnection) -> None:
        behaviour = self.behaviour
        try:
            await faults.on_connect(connection, behaviour)
            # The echo ends after this many messages (close_after or drop_after, never both), or
            # never. The loop below runs once per message: nothing in it a plain echo skips.
            limit = behaviour.drop_after if behaviour.close_after is None else behaviour.close_after
            echoed = 0
            while limit is None or echoed < limit:
                message = await connection.recv()
                if logger.isEnabledFor(logging.INFO):  # -v; otherwise not even the arguments
                    logger.info(
                        "received %s message, %d bytes",
                        "text" if isinstance(message, str) else "binary",
                        len(message),
                    )
                self.record_message(message)
                if connection.protocol.close_rcvd is not None:
                    # The client's Close came in the same read as the messages before it: no
                    # echo can go out any more (RFC 6455 5.5.1), and websockets' send() would
                    # wait for the end of TCP without reading on, while a backlog over
                    # max_queue keeps the socket paused: the client's end of TCP would go
                    # unseen until websockets' close timeout (10 s). Reading the backlog
                    # instead resumes reading, so that end is seen at once.
                    await self._drain(connection)
                    return
                try:
                    await connection.send(message)
                except ConnectionClosed:
                    # Our echo crossed the client's Close: what it sent before the Close was
                    # still received (RFC 6455 5.5.1), so it is recorded, not lost.
                    await self._drain(connection)
                    raise
                echoed += 1
            if behaviour.close_after is not None:
                logger.info("closing with %d after %d message(s)", behaviour.close_code, echoed)
                await connection.close(behaviour.close_code, behaviour.close_reason)
            else:
                await faults.drop(connection, behaviour.drop_mid_frame)
        except ConnectionClosed:
            # The client closed or went away: that ends the echo loop, it is no error.
            pass
