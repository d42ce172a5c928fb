"""The WebSocket client channel (channel-model.md).

One ``Channel`` owns at most one live connection at a time. Every party that writes to the wire or
changes the connection's life holds the token first: out tasks (send, ping, open, keepalive), the
connector (the first out task that finds no connection), auto replies (Pong, Close echo),
``handle_terminate`` (the reader ended) and ``deinit``. The protocol itself is websockets'
sans-I/O ``ClientProtocol``; this module decides *who* may hand its bytes to the transport, and
*when* a connection is made, shut down and released.

Each party is written as straight-line code between awaits on things this package owns (the
token's waiters, the transport's ``drain``/``read``, the reader's end, the clock), so a scheduler
can drive the same code with a simulated transport. Here: the out tasks, the connector,
shutdown and release, deinit. The reader with the auto reply and terminate (``reader.py``), the
keepalive (``keepalive.py``) and the writing of a message (``sending.py``: framed directly when
whole, or in several frames) are the same channel's parties, split off by party; the
connection's record and lifecycle are in ``connection.py``.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Hashable
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from websockets.exceptions import InvalidState, InvalidURI
from websockets.protocol import OPEN
from websockets.uri import WebSocketURI, parse_uri

from .clock import Clock, LoopClock
from .close import REPLIES_TIMED_OUT, WRITE_TIMED_OUT, CloseInfo, handshake_done
from .connection import Connection, Lifecycle, future_outcome
from .dial import open_tcp
from .errors import (
    ChannelClosed,
    ChannelDisposed,
    ChannelError,
    HandshakeInterrupted,
    InvalidURL,
    OpenTimeout,
    PingTimeout,
    WriteTimeout,
    reject,
)
from .events import Event, Party, Subscriber, What
from .keepalive import keep_alive
from .messages import Message, Stream, chunk_bytes, fragments
from .options import ChannelOptions
from .protocol import OPCODE_NAMES, frames_to_write, new_protocol, request_headers
from .reader import run_reader
from .sendable import check_sendable
from .sending import whole_message, write_fragments, write_stream
from .token import Token
from .transport import TransportFactory

T = TypeVar("T")


class ProtocolState(StrEnum):
    """The channel's protocol state, as in the C++ ``WFComplexChannel``."""

    UNDEFINED = "undefined"  # needs connect and upgrade (also after a clean close, reconnect on)
    SUCCESS = "success"  # upgraded: can send
    ERROR = "error"  # an error close or a failed connect: terminal until a new channel
    CLOSED = "closed"  # a clean close with reconnect off: terminal too


_new_tuple = tuple.__new__  # Party(...) runs NamedTuple's Python-level __new__


ProcessCallback = Callable[[Message], None]
CloseCallback = Callable[[CloseInfo], None]


class Channel:
    """A WebSocket client channel.

    ``process`` receives inbound messages one at a time, in arrival order. ``on_close`` is called
    once per connection, after the token is released; it is synchronous, and may schedule
    ``deinit()`` (which is idempotent). Use as ``async with Channel(url) as ch: await ch.send(..)``.
    """

    # The seam for the explorer's broken variants (explore/mutants.py): a subclass names another
    # token class; nothing overwrites the private token after construction.
    token_class: ClassVar[type[Token]] = Token

    def __init__(
        self,
        url: str,
        *,
        options: ChannelOptions | None = None,
        process: ProcessCallback | None = None,
        on_close: CloseCallback | None = None,
        transport_factory: TransportFactory | None = None,
        clock: Clock | None = None,
    ) -> None:
        try:
            self.uri: WebSocketURI = parse_uri(url)
        except InvalidURI as exc:
            raise InvalidURL(f"invalid WebSocket URL {url!r}: {exc.msg}") from exc
        except ValueError as exc:  # urllib's own complaints, e.g. a port out of range
            raise InvalidURL(f"invalid WebSocket URL {url!r}: {exc}") from exc
        self.url = url
        self.options = options or ChannelOptions()
        self._process = process
        self._on_close = on_close
        self._open_transport: TransportFactory = transport_factory or open_tcp
        self._clock: Clock = clock or LoopClock()

        self._subscribers: list[Subscriber] = []
        self._seq = 0
        self._token = self.token_class(self._emit)
        self._established = 0
        self._state = ProtocolState.UNDEFINED
        self._error: ChannelError | None = None  # why the state is ERROR or CLOSED (terminal)
        self._conn: Connection | None = None
        self._connections = 0
        self._parties: dict[str, int] = {}
        self._inside = 0  # parties inside a channel step; dispose waits for zero (D6)
        self._idle: asyncio.Event | None = None
        self._close_callbacks: list[tuple[Party, CloseInfo]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._deiniting = False
        self._deinit_done: asyncio.Future[None] | None = None
        self._disposed = False
        self._last_close: CloseInfo | None = None
        self._close_waiters: list[asyncio.Future[CloseInfo]] = []
        queue = self.options.receive_queue
        self._inbox: deque[Message | CloseInfo] | None = deque() if queue and not process else None
        self._inbox_put = asyncio.Event()  # the reader added to the inbox
        self._inbox_taken = asyncio.Event()  # the consumer took from it, or a shutdown began

    # ------------------------------------------------------------------ read-only views

    @property
    def sending(self) -> bool:
        return self._token.sending

    @property
    def established(self) -> int:
        return self._established

    @property
    def state(self) -> ProtocolState:
        return self._state

    @property
    def disposed(self) -> bool:
        return self._disposed

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` synchronously with every event from now on; returns an undo."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def end_reading(self) -> bool:
        """End the read side of the live connection locally: after what is already received,
        the reader sees end of stream and ``handle_terminate()`` runs exactly as when the peer
        ends TCP. A local simulation, for ``/terminate`` and traces. False when there is no
        live connection or its transport cannot do it."""
        conn = self._conn
        feed_eof = getattr(conn.transport, "feed_eof", None) if conn is not None else None
        if feed_eof is None or conn is None or conn.released:
            return False
        feed_eof()
        return True

    async def __aenter__(self) -> Channel:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.deinit()

    # ------------------------------------------------------------------ out tasks

    async def open(self) -> None:
        """Connect and upgrade if not connected: an out task that carries no frame (D1)."""
        await self._out_task("open", None)

    async def send(self, message: str | bytes, *, fragment_size: int | None = None) -> None:
        """Send a text (str) or binary (bytes) message, fragmented if ``fragment_size`` is set."""
        if isinstance(message, str):
            await self._out_task("send", fragments(message.encode(), fragment_size), text=True)
        else:
            await self._out_task("send", fragments(bytes(message), fragment_size))

    async def send_stream(
        self, chunks: AsyncIterable[bytes | str], *, text: bool | None = None
    ) -> None:
        """Send one message of any length, read from ``chunks``, in constant memory.

        Each non-empty chunk becomes one frame of the same fragmented message (str chunks are
        UTF-8 encoded); the message is text if ``text`` is True, binary if False, and when
        None, text if the first chunk is a str. The first chunk is read before the token is
        taken; the rest are read while holding it (one message, no other frame but owed
        control replies in between, D10), each only after the previous frame drained. A source
        that ends at once sends one empty message.

        If the send is cancelled, or ``chunks`` raises, after the first frame went out and
        before the last, the connection is failed with 1011 (D12). A slow source holds the
        token, and so delays every other send, until the message is complete.
        """
        rest = aiter(chunks)
        first = await anext(rest, b"")
        kind = isinstance(first, str) if text is None else text
        await self._out_task("send", Stream(chunk_bytes(first), rest, kind))

    async def send_text(self, text: str, *, fragment_size: int | None = None) -> None:
        await self._out_task("send", fragments(text.encode(), fragment_size), text=True)

    async def send_binary(self, data: bytes, *, fragment_size: int | None = None) -> None:
        await self._out_task("send", fragments(bytes(data), fragment_size))

    async def ping(self, data: bytes | None = None) -> float:
        """Send a Ping and return the round-trip time in seconds once its Pong arrives."""
        return await self._ping(data, keepalive=None)

    async def closed(self) -> CloseInfo:
        """Wait until the connection closes and return how it ended. With no connection open,
        return the last close at once (or wait for the first connection's close); raises
        ``ChannelDisposed`` if the channel is disposed before that."""
        if self._conn is None and self._last_close is not None:
            return self._last_close
        self._check_usable()
        waiter: asyncio.Future[CloseInfo] = asyncio.get_running_loop().create_future()
        self._close_waiters.append(waiter)
        try:
            return await waiter
        finally:
            self._close_waiters.remove(waiter)

    async def messages(self) -> AsyncIterator[Message]:
        """The received messages, in order, as an async iterator that ends after the last
        message of a connection that closed (or when the channel is disposed).

        Needs ``ChannelOptions(receive_queue=N)`` and no ``process`` callback. At most N
        messages wait (plus what one read brought); then the reader stops reading from the
        connection until the consumer takes one, so a slow consumer slows the peer down
        (TCP flow control) instead of filling memory. While held back, the reader sees no
        Ping and no Close either: keepalive may then time out.
        """
        inbox = self._inbox
        if inbox is None:
            raise ValueError("messages() needs ChannelOptions(receive_queue=N) and no process")
        while True:
            while not inbox:
                if self._disposed:
                    return
                self._inbox_put.clear()
                await self._inbox_put.wait()
            item = inbox.popleft()
            self._inbox_taken.set()
            if isinstance(item, CloseInfo):
                return
            yield item

    async def _ping(self, data: bytes | None, *, keepalive: Connection | None) -> float:
        payload = data if data is not None else os.urandom(4)
        pong: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        kind = "keepalive" if keepalive else "ping"
        conn = await self._out_task(kind, ping=(payload, pong), only=keepalive)
        try:
            async with self._clock.timeout(self.options.ping_timeout):
                return await pong
        except TimeoutError:
            conn.pings.pop(payload, None)
            raise PingTimeout(
                f"no Pong from {self.uri.host}:{self.uri.port} within {self.options.ping_timeout}s"
            ) from None

    async def _out_task(
        self,
        kind: str,
        frames: bytes | list[bytes] | Stream | None = None,
        *,
        text: bool = False,
        ping: tuple[bytes, asyncio.Future[float]] | None = None,
        only: Connection | None = None,
    ) -> Connection:
        """Take the token, make sure a connection is ready (connecting if need be), write
        ``frames`` (one frame, fragments or a stream; ``text`` says which opcode) or ``ping``
        (or nothing: ``open``), release. Returns the connection used.

        ``only`` pins the task to one connection (keepalive): it never connects.

        A send that finds the token free, the connection usable and the transport unpaused
        runs straight through: no await here suspends and no timer is armed.
        """
        self._check_usable()
        if self._error is not None:
            self._raise_error()  # after a terminal close, fail at once (no token needed to say so)
        party = self._new_party(kind)
        seen = only or (self._conn if self._conn is not None and self._conn.usable else None)
        token = self._token
        self._enter()
        try:
            if not token.try_take(party):
                await token.take(party)
            try:
                # D3: re-read the channel now that we hold the token.
                if seen is not None and seen.usable:
                    conn = seen
                else:
                    conn = await self._ready(party, seen, connect=only is None)
                try:
                    # A whole message goes out under one holding of the token, so no
                    # other frame can land between two fragments, though each drains.
                    if type(frames) is bytes:
                        await self._write(party, conn, whole_message(conn, text, frames))
                    elif isinstance(frames, list):
                        await write_fragments(self, party, conn, frames, text)
                    elif isinstance(frames, Stream):
                        await write_stream(self, party, conn, frames)
                    elif ping is not None:
                        payload, pong = ping
                        if payload in conn.pings:
                            raise ValueError("a ping with this payload is already in flight")
                        conn.pings[payload] = (pong, self._clock.now())
                        conn.proto.send_ping(payload)
                        await self._write(party, conn)
                except InvalidState:
                    # The peer's Close arrived between two of our fragments.
                    raise conn.closed_error() from None
            except BaseException as exc:
                self._emit(party, What.FAIL, error=str(exc), error_type=type(exc).__name__)
                raise
            finally:
                self._token.release(party)
            self._emit(party, What.DONE)
            return conn
        finally:
            self._leave()

    async def _ready(self, party: Party, seen: Connection | None, *, connect: bool) -> Connection:
        """The channel re-read under the token (D3), when ``seen`` is not simply still usable:
        a connection to write on, made if need be, or the error that says why there is none."""
        if seen is not None:
            # The connection this task was waiting for closed meanwhile.
            raise seen.closed_error()
        conn = self._conn
        if conn is not None:
            if conn.usable:
                return conn  # another connector finished while we waited
            raise conn.closed_error()  # closing, not yet released: no second connection
        if self._error is not None:
            self._raise_error()
        if self._deiniting or not connect:
            raise ChannelClosed(1000, "channel is shutting down", "local")
        return await self._connect(party)

    def _raise_error(self) -> None:
        """Raise why the state is ERROR. The one stored error is raised by every later send, so
        its traceback is reset each time instead of growing with each raise."""
        assert self._error is not None
        raise self._error.with_traceback(None)

    # ------------------------------------------------------------------ connector (D1, D2)

    async def _connect(self, party: Party) -> Connection:
        self._emit(party, What.CONNECT, url=self.url)
        loop = asyncio.get_running_loop()
        conn: Connection | None = None
        try:
            async with self._clock.timeout(self.options.open_timeout):
                transport = await self._open_transport(self.uri, self.options)
                self._connections += 1
                conn = Connection(
                    n=self._connections,
                    transport=transport,
                    proto=new_protocol(self.uri, self.options),
                    upgraded=loop.create_future(),
                )
                self._conn = conn
                self._set_established(party, 1)
                request = conn.proto.connect()
                for name, value in request_headers(self.options):
                    request.headers[name] = value
                conn.proto.send_request(request)
                # H1: the reader, which resolves ``upgraded``, exists before the request is
                # written, so however fast the 101 comes it is not missed.
                self._spawn(run_reader(self, conn), f"reader#{conn.n}")
                await self._write(party, conn, handshake=True)
                response = await conn.upgraded
        # Order matters: TimeoutError is an OSError, and ChannelClosed a ChannelError.
        except TimeoutError:
            timeout = OpenTimeout(
                f"timed out after {self.options.open_timeout}s opening {self.url}",
                host=self.uri.host,
                port=self.uri.port,
            )
            await self._fail_connect(party, conn, timeout)
            raise timeout from None
        except (ChannelClosed, OSError) as exc:
            lost = HandshakeInterrupted(f"connection to {self.url} lost in the handshake: {exc}")
            await self._fail_connect(party, conn, lost)
            raise lost from exc
        except ChannelError as exc:
            await self._fail_connect(party, conn, exc)
            raise
        except asyncio.CancelledError:
            # D13: a cancelled connector releases its half-made connection (established 1 -> 0
            # once, on_close once) and leaves the channel as it found it: the next out task
            # connects anew. A 101 that arrives later finds no one to use it.
            if conn is not None:
                conn.abandoned = True
                conn.settle_upgraded()
                conn.local_close = CloseInfo(1006, "connect cancelled", "local", clean=False)
                await self._shutdown(party, conn, graceful=None, abort=True)
            raise
        conn.transition(Lifecycle.OPEN)
        self._set_state(party, ProtocolState.SUCCESS)
        self._emit(
            party,
            What.UPGRADED,
            status=response.status_code,
            headers=list(response.headers.raw_items()),
            subprotocol=conn.proto.subprotocol,
        )
        if self.options.ping_interval is not None:
            conn.keepalive = loop.create_task(keep_alive(self, conn), name=f"keepalive#{conn.n}")
        return conn

    async def _fail_connect(
        self, party: Party, conn: Connection | None, error: ChannelError
    ) -> None:
        """A failed connect or upgrade: tear down what exists, make the state terminal (D2)."""
        self._error = error
        self._set_state(party, ProtocolState.ERROR, error=str(error))
        if conn is not None:
            conn.settle_upgraded()
            conn.local_close = CloseInfo(1006, str(error), "local", clean=False)
            await self._shutdown(party, conn, graceful=None, abort=True)

    # ------------------------------------------------------------------ writing (token only)

    async def _write(
        self,
        party: Party,
        conn: Connection,
        chunks: list[bytes] | None = None,
        *,
        handshake: bool = False,
    ) -> None:
        """Write what is owed (D10), then ``chunks`` (default: what the protocol has queued),
        then drain.

        Only the token holder writes. A write that fails or cannot drain in time kills the
        connection (D8), unless a shutdown is already under way, which then finishes the job.
        """
        if chunks is None:
            chunks = frames_to_write(conn.proto)
        if conn.replies:  # D10: owed control replies go first (control frames may sit between
            chunks, conn.replies = conn.replies + chunks, []  # fragments, RFC 6455 5.4)
            conn.replies_taken.set()  # a reader held back by too many owed replies reads on
        self._put(party, conn, chunks, handshake=handshake)
        try:
            if conn.transport.writing_paused:
                async with self._clock.timeout(self.options.write_timeout):
                    await conn.transport.drain()
            else:
                await conn.transport.drain()  # returns at once: no timer to arm
        except TimeoutError:
            # D8: a frame may be half written; the connection must not carry anything else.
            conn.local_close = conn.local_close or CloseInfo(
                1006, WRITE_TIMED_OUT, "local", clean=False
            )
            if not conn.closing:
                await self._shutdown(party, conn, graceful=None, abort=True)
            raise WriteTimeout(
                f"write to {self.uri.host}:{self.uri.port} did not drain within "
                f"{self.options.write_timeout}s; the connection was aborted"
            ) from None
        except OSError:
            if not conn.closing:
                await self._shutdown(party, conn, graceful=None, abort=True)
            raise conn.closed_error() from None

    def _put(
        self, party: Party, conn: Connection, chunks: list[bytes], *, handshake: bool = False
    ) -> None:
        """Hand ``chunks`` to the transport, without waiting for them to drain."""
        if self._token.holder is not party and self._token.holder != party:
            raise AssertionError(f"{party} wrote without holding the token")
        for chunk in chunks:
            conn.transport.write(chunk)
            if self._subscribers:
                opcode = "http" if handshake else OPCODE_NAMES.get(chunk[0] & 0x0F, "?")
                self._emit(party, What.FRAME_OUT, opcode=opcode, size=len(chunk))

    # ------------------------------------------------------------------ shutdown and release

    async def _shutdown(
        self,
        party: Party,
        conn: Connection,
        *,
        graceful: tuple[int, str] | None,
        abort: bool = False,
    ) -> None:
        """Shut ``conn`` down and release it. Called by the token holder only.

        graceful: send a Close with this code and reason, then wait up to the close timeout for
        the peer to answer and end TCP. Otherwise close (or abort) at once.
        """
        if conn.released:
            return
        assert self._token.holder == party, "shutdown without the token"
        conn.transition(Lifecycle.SHUTTING_DOWN)
        self._inbox_taken.set()  # a reader held back by a full inbox reads on to the close
        conn.replies_taken.set()  # likewise one held back by owed replies
        self._emit(party, What.SHUTDOWN, graceful=graceful is not None, abort=abort)
        if conn.keepalive is not None and conn.keepalive is not asyncio.current_task():
            conn.keepalive.cancel()
        try:
            for _ in range(2):
                # D10, RFC 6455 5.5.1: a Close echo (or Pong) we owe goes out before we close,
                # even when this holder is deinit or terminate. A second pass writes what the
                # reader queued while the first drained (the peer's Close read then: its echo);
                # bounded, so a peer that keeps pinging cannot hold the close (D5).
                if not conn.replies or abort:
                    break
                try:
                    async with self._clock.timeout(self.options.close_timeout):
                        await self._write(party, conn, [])
                except TimeoutError:
                    conn.local_close = conn.local_close or CloseInfo(
                        1006, REPLIES_TIMED_OUT, "local", clean=False
                    )
                    abort = True
                except ChannelError:
                    abort = True  # the link died under the write; the reader tells how
            if graceful is not None and conn.proto.state is OPEN and not conn.reader_done.is_set():
                conn.proto.send_close(*graceful)
                try:
                    # One bound for writing our Close and hearing the answer, so a peer that
                    # never reads cannot hold deinit even when write_timeout is None.
                    async with self._clock.timeout(self.options.close_timeout):
                        await self._write(party, conn)
                        await conn.reader_done.wait()
                except TimeoutError:
                    if not handshake_done(conn.proto):  # answered, TCP left open: 7.1.4
                        conn.local_close = conn.local_close or CloseInfo(
                            1006, "no Close answer within the close timeout", "local", False
                        )
                    abort = True
                except ChannelError:
                    abort = True  # the link died under our Close; the reader tells how
            if abort:
                conn.transport.abort()
            else:
                conn.transport.close()
            if not conn.reader_done.is_set():
                # close() flushes what is buffered first: a peer that stopped reading would keep
                # the reader (and us) waiting forever, so that wait is bounded too.
                try:
                    async with self._clock.timeout(self.options.close_timeout):
                        await conn.reader_done.wait()
                except TimeoutError:
                    conn.transport.abort()
                    await conn.reader_done.wait()  # abort ends the reader at once
        except asyncio.CancelledError:
            # D11: cancelled while shutting down: cut the link and still release it, so the
            # connection never stays half closed with established == 1.
            if conn.proto.close_rcvd is None:
                conn.local_close = conn.local_close or CloseInfo(
                    1006, "closing was cancelled", "local", clean=False
                )
            conn.transport.abort()
            await conn.reader_done.wait()  # abort ends the reader at once
            self._release(party, conn)
            raise
        self._release(party, conn)

    def _release(self, party: Party, conn: Connection) -> None:
        """established 1 -> 0, exactly once per connection: the reader has ended and a token
        holder asked for shutdown."""
        assert conn.reader_done.is_set()
        conn.transition(Lifecycle.RELEASED)
        info = conn.close_info()
        conn.close = info
        if self._conn is conn:
            self._conn = None
        for future, _ in conn.pings.values():
            reject(future, info.error())
        conn.pings.clear()
        self._set_established(party, 0)
        self._emit(
            party, What.CLOSED, code=info.code, reason=info.reason, by=info.by, clean=info.clean
        )
        if self._error is None:
            if conn.abandoned or (info.clean and self.options.reconnect):
                self._set_state(party, ProtocolState.UNDEFINED)  # next send reconnects
            else:
                self._error = info.error()
                state = ProtocolState.CLOSED if info.clean else ProtocolState.ERROR
                self._set_state(party, state, error=str(self._error))
        self._last_close = info
        for waiter in self._close_waiters:
            if not waiter.done():
                waiter.set_result(info)
        if self._inbox is not None:
            self._inbox.append(info)  # the end of this connection's messages
            self._inbox_put.set()
        self._close_callbacks.append((party, info))

    # ------------------------------------------------------------------ deinit (D5, D6)

    async def deinit(self, code: int = 1000, reason: str = "", *, abrupt: bool = False) -> None:
        """Tear the channel down: close the connection (gracefully unless ``abrupt``), let every
        pending party finish, then dispose. Returns once the channel is disposed; idempotent.

        A close code or reason that may not be sent (RFC 6455 7.4, e.g. 1005, or a reason over
        123 bytes) raises ValueError before anything changes. D14: if the caller running the
        teardown is cancelled (or it fails), the connection is still released (D11) and the
        next ``deinit()`` (or one already waiting) completes the teardown and disposes.
        """
        if self._disposed:
            return
        if not abrupt:
            check_sendable(code, reason)
        while not self._disposed:
            running = self._deinit_done
            if running is None:
                await self._teardown(code, reason, abrupt)
            else:
                await asyncio.shield(running)  # resolves whether that teardown ended or not

    async def _teardown(self, code: int, reason: str, abrupt: bool) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._deinit_done = done
        self._deiniting = True
        party = Party("deinit")
        try:
            self._enter()
            try:
                await self._token.take(party)
                try:
                    conn = self._conn
                    if conn is None or conn.released:
                        self._emit(party, What.LEAVE)  # established == 0: nothing to shut down
                    else:
                        if abrupt and conn.proto.state is OPEN and not conn.reader_done.is_set():
                            # We end it, with no Close frame: whatever the reader sees next
                            # (EOF) is the echo of our own close, not the peer's doing. Only
                            # while nothing else ended it: an earlier record stands.
                            conn.local_close = conn.local_close or CloseInfo(
                                1006, "closed without a Close frame (abrupt deinit)", "local", False
                            )
                        await self._shutdown(
                            party, conn, graceful=None if abrupt else (code, reason), abort=False
                        )
                finally:
                    self._token.release(party)
            finally:
                self._leave()
            await self._quiesce()
            self._disposed = True
            self._emit(party, What.DISPOSE)
            for waiter in self._close_waiters:
                reject(waiter, ChannelDisposed(f"channel to {self.url} was deinitialized"))
            self._inbox_put.set()  # messages() ends
        finally:
            if not self._disposed:
                self._deinit_done = None  # D14: the next deinit() runs the teardown again
            done.set_result(None)

    async def _quiesce(self) -> None:
        """Wait until no party is inside a channel step (D6: dispose last)."""
        while self._inside:
            self._idle = asyncio.Event()
            await self._idle.wait()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------ bookkeeping

    def _check_usable(self) -> None:
        # A send that arrives while deinit runs still queues like any party; when it gets the
        # token it either finds the connection open (and sends) or fails with ChannelClosed.
        if self._disposed:
            raise ChannelDisposed(f"channel to {self.url} was deinitialized")

    def _new_party(self, kind: str) -> Party:
        n = self._parties.get(kind, 0) + 1
        self._parties[kind] = n
        return _new_tuple(Party, (kind, n))

    def _enter(self) -> None:
        self._inside += 1

    def _leave(self) -> None:
        """A party leaves its step; close callbacks run now, outside the token (D7)."""
        self._inside -= 1
        while self._close_callbacks and not self._token.sending:
            party, info = self._close_callbacks.pop(0)
            self._emit(party, What.ON_CLOSE, code=info.code, reason=info.reason, by=info.by)
            if self._on_close is not None:
                try:
                    self._on_close(info)
                except Exception as exc:
                    asyncio.get_running_loop().call_exception_handler(
                        {"message": "on_close callback failed", "exception": exc}
                    )
        if self._inside == 0 and self._idle is not None:
            self._idle.set()

    def _spawn(self, coro: Coroutine[Any, Any, T], name: str) -> None:
        """Start a party in its own task, named after it; it counts as inside from now."""
        self._enter()
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _set_established(self, party: Party, value: int) -> None:
        before, self._established = self._established, value
        self._emit(party, What.ESTABLISHED, before=before)

    def _set_state(self, party: Party, state: ProtocolState, **detail: Any) -> None:
        if state is not self._state:
            self._state = state
            self._emit(party, What.STATE, **detail)

    def _emit(self, party: Party, what: What, **detail: Any) -> None:
        self._seq += 1
        if not self._subscribers:
            return
        event = Event(
            seq=self._seq,
            time=self._clock.now(),
            party=party,
            what=what,
            sending=self._token.sending,
            established=self._established,
            state=self._state.value,
            holder=self._token.holder,
            waiters=len(self._token.waiters),
            detail=detail,
        )
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception as exc:  # an observer must not change what the channel does
                asyncio.get_running_loop().call_exception_handler(
                    {"message": f"event subscriber failed on {event.what.value}", "exception": exc}
                )

    # ------------------------------------------------------------------ snapshot (explorer)

    # Fields snapshot() leaves out, each with the reason (tests/test_explore_snapshot.py holds every
    # field to a decision).
    SNAPSHOT_EXCLUDED: ClassVar[dict[str, str]] = {
        "uri": "constant after __init__",
        "url": "constant after __init__",
        "options": "constant after __init__ (frozen ChannelOptions)",
        "_process": "the user's callback: code, not state",
        "_on_close": "the user's callback: code, not state",
        "_open_transport": "the transport factory: code, not state",
        "_clock": "the clock: its time is the loop's, which the explorer hashes as timers",
        "_subscribers": "observers: events go out, nothing comes back into the channel",
        "_seq": "the event counter: numbers events, decides nothing",
        "_idle": "recreated by each wait in _quiesce; whether someone waits is in 'inside' "
        "and in the waiting task's stack",
    }

    def snapshot(self) -> tuple[tuple[str, Hashable], ...]:
        """A frozen value of everything about the channel that decides what it does next (the
        explorer's state; channel-model.md section 5 is checked on it). Built here, next to the
        fields it reads, so a new field gets a decision where it is added."""
        token = self._token
        conn = self._conn
        return (
            ("_token", (str(token.holder), tuple(str(p) for p in token.waiters.parties()))),
            ("_established", self._established),
            ("_state", self._state.value),
            ("_error", None if self._error is None else str(self._error)),
            ("_conn", None if conn is None else conn.snapshot()),
            ("_connections", self._connections),
            ("_parties", tuple(sorted(self._parties.items()))),
            ("_inside", self._inside),
            ("_close_callbacks", tuple((str(p), i) for p, i in self._close_callbacks)),
            ("_tasks", len(self._tasks)),  # each task's stack is the explorer's to hash
            ("_deiniting", self._deiniting),
            (
                "_deinit_done",
                None if self._deinit_done is None else future_outcome(self._deinit_done),
            ),
            ("_disposed", self._disposed),
            ("_last_close", self._last_close),
            ("_close_waiters", tuple(future_outcome(f) for f in self._close_waiters)),
            ("_inbox", None if self._inbox is None else tuple(self._inbox)),
            ("_inbox_put", self._inbox_put.is_set()),
            ("_inbox_taken", self._inbox_taken.is_set()),
        )
