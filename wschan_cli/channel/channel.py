"""The WebSocket client channel (channel-model.md).

One ``Channel`` owns at most one live connection at a time. Every party that writes to the wire or
changes the connection's life holds the token first: out tasks (send, ping, open, keepalive), the
connector (the first out task that finds no connection), auto replies (Pong, Close echo),
``handle_terminate`` (the reader ended) and ``deinit``. The protocol itself is websockets'
sans-I/O ``ClientProtocol``; this module decides *who* may hand its bytes to the transport, and
*when* a connection is made, shut down and released.

Each party is written as straight-line code between awaits on things this package owns (the
token's waiters, the transport's ``drain``/``read``, the reader's end, the clock), so a scheduler
can drive the same code with a simulated transport.
"""

from __future__ import annotations

import asyncio
import codecs
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple, TypeVar

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidState, InvalidStatus, InvalidURI, ProtocolError
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import CLOSED, OPEN, Protocol
from websockets.typing import Origin, Subprotocol
from websockets.uri import WebSocketURI, parse_uri
from websockets.version import version as websockets_version

from . import outbound
from .clock import Clock, LoopClock
from .errors import (
    ChannelClosed,
    ChannelDisposed,
    ChannelError,
    HandshakeInterrupted,
    HandshakeRejected,
    InvalidURL,
    OpenTimeout,
    PingTimeout,
    WriteTimeout,
)
from .events import Event, Party, Subscriber, What
from .inbound import TEXT_WHOLE, ChunkReader, at_message_boundary, whole_messages
from .options import ChannelOptions
from .token import Token
from .transport import Transport, TransportFactory, open_tcp

T = TypeVar("T")

# Opcodes by the low nibble of a serialized frame's first byte, to name what is written.
_OPCODE_NAMES = {0: "cont", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
_OK_CLOSE_CODES = (1000, 1001)
_UTF8Decoder = codecs.getincrementaldecoder("utf-8")
# Enum members read on every message, looked up once: in Python 3.11 reading an Enum class
# attribute costs about as much as a function call.
_TEXT, _BINARY, _CONT, _CLOSE, _PONG = (
    Opcode.TEXT,
    Opcode.BINARY,
    Opcode.CONT,
    Opcode.CLOSE,
    Opcode.PONG,
)

# First bytes of a whole text and binary message's frame: FIN and the opcode (RFC 6455 5.2).
_TEXT_FIN, _BINARY_FIN = 0x80 | Opcode.TEXT, 0x80 | Opcode.BINARY

# The main loop of websockets' frame parser, where it waits between frames (inbound.py).
_PARSE_CODE = Protocol.parse.__code__


def _reject(future: asyncio.Future[Any], error: BaseException) -> None:
    """Resolve a future the core made with an error, and count that error as retrieved: its
    awaiter, if it still runs, gets it all the same, but a task cancelled between its wake-up
    and its next step (asyncio.run's shutdown, a timeout) leaves no "Future exception was
    never retrieved" behind."""
    if not future.done():
        future.set_exception(error)
        future.exception()


class _ClientProtocol(ClientProtocol):
    """websockets' client protocol, accepting a Close between the fragments of a message.

    RFC 6455 5.4 lets control frames, Close included, come between fragments; 5.5.1 then asks
    for a Close in response, and 1.4 to discard what follows. websockets instead fails such a
    connection with 1002 ("incomplete fragmented message", Autobahn 7.1.5). Forgetting the
    message in progress just before websockets reads the Close gives the RFC's behaviour: the
    unfinished message is dropped and the Close is echoed.

    It also reads through ``ChunkReader``, so that a payload is copied once on its way in, and
    serializes frames with ``outbound`` (fewer copies, pooled masking keys) unless an extension
    or websockets' debug logging needs its own path.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Before any byte is fed; the parser, started by websockets' __init__, is started
        # again so that it reads through the new reader.
        self.reader = ChunkReader()  # type: ignore[assignment]  # same interface, not a subclass
        self._keys = outbound.MaskKeys(os.urandom)  # looked up now: a scheduler may fix it
        self.parser = self.parse()
        next(self.parser)

    def send_frame(self, frame: Frame) -> None:
        if self.extensions or self.debug:  # compression, or websockets' frame logging
            super().send_frame(frame)
            return
        frame.check()
        self.writes.append(outbound.serialize(frame, self._keys.next()))

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is _CLOSE:
            self.current_size = None  # websockets' count of the message in progress
        super().recv_frame(frame)


def _frames_to_write(proto: Any) -> list[bytes]:
    """What the protocol queued for the wire, without its end-of-stream marker (b"": the
    transport's close does that). The marker is rare: the list is copied only when it is in."""
    chunks: list[bytes] = proto.data_to_send()
    return [chunk for chunk in chunks if chunk] if b"" in chunks else chunks


def _check_close(code: int, reason: str) -> None:
    """Raise ValueError unless a Close frame with this code and reason may be sent: websockets'
    own check (RFC 6455 7.4), plus the 125-byte limit of a control frame (5.5)."""
    try:
        payload = Close(code, reason).serialize()
    except ProtocolError:
        raise ValueError(f"close code {code} may not be sent in a Close frame") from None
    if len(payload) > 125:
        raise ValueError(f"close reason too long: {len(payload) - 2} bytes (at most 123)")


class ProtocolState(StrEnum):
    """The channel's protocol state, as in the C++ ``WFComplexChannel``."""

    UNDEFINED = "undefined"  # needs connect and upgrade (also after a clean close, reconnect on)
    SUCCESS = "success"  # upgraded: can send
    ERROR = "error"  # an error close or a failed connect: terminal until a new channel
    CLOSED = "closed"  # a clean close with reconnect off: terminal too


class Message(NamedTuple):
    """One inbound message, delivered to ``process``. A named tuple: immutable, and the reader
    makes one per message with the C tuple constructor (a frozen dataclass's __init__ cost
    as much as a tenth of a small message's whole receive path)."""

    type: str  # "text" or "binary"
    data: str | bytes


_new_tuple = tuple.__new__  # Message(...), Party(...) run NamedTuple's Python-level __new__


@dataclass(frozen=True)
class CloseInfo:
    """How a connection ended: code and reason, who closed first, and whether it was clean."""

    code: int
    reason: str
    by: str  # "peer", "local" or "network"
    clean: bool

    def error(self) -> ChannelClosed:
        return ChannelClosed(self.code, self.reason, self.by)


def _fragments(data: bytes, fragment_size: int | None) -> bytes | list[bytes]:
    """One outgoing data message as it goes on the wire: ``data`` itself when it fits in one
    frame (the common case: no slicing, no copy, no container), else its fragments."""
    if fragment_size is None:
        return data
    if fragment_size <= 0:
        raise ValueError("fragment_size must be positive")
    if len(data) <= fragment_size:
        return data
    return [data[i : i + fragment_size] for i in range(0, len(data), fragment_size)]


@dataclass(frozen=True, slots=True)
class _Stream:
    """One outgoing data message of unknown length: its first piece (read before taking the
    token), the source of the rest, and whether it is text."""

    first: bytes
    rest: AsyncIterator[bytes | str]
    text: bool


def _piece(chunk: bytes | str) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode()
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"send_stream needs bytes or str chunks, not {type(chunk).__name__}")


@dataclass(eq=False)
class _Connection:
    """One kernel connection: from the connector's TCP connect to its release."""

    n: int
    transport: Transport
    proto: Any  # websockets.client.ClientProtocol; Any keeps mypy off its untyped corners
    upgraded: asyncio.Future[Response]
    reader_done: asyncio.Event = field(default_factory=asyncio.Event)
    shutdown_requested: bool = False
    released: bool = False
    close: CloseInfo | None = None
    local_close: CloseInfo | None = None  # set when we cut the link ourselves (timeouts, aborts)
    replies: list[bytes] = field(default_factory=list)
    replier_running: bool = False
    pings: dict[bytes, tuple[asyncio.Future[float], float]] = field(default_factory=dict)
    fragments: list[Any] = field(default_factory=list)  # bytes, or str decoded so far (text)
    fragment_type: str = ""
    decoder: codecs.IncrementalDecoder | None = None  # of the text message being received
    failed: bool = False  # we failed the connection (1007, 1011): deliver nothing more
    abandoned: bool = False  # its connector was cancelled: the channel stays usable (D11)
    keepalive: asyncio.Task[None] | None = None

    @property
    def usable(self) -> bool:
        return not self.released and not self.shutdown_requested and self.proto.state is OPEN

    # Fields snapshot() leaves out, each with the reason (tests/test_explore_snapshot.py holds every
    # field to a decision).
    SNAPSHOT_EXCLUDED: ClassVar[dict[str, str]] = {
        "transport": "I/O, not channel state: a simulated transport is hashed by the explorer",
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
            ("upgraded", _future_outcome(upgraded)),
            ("reader_done", self.reader_done.is_set()),
            ("shutdown_requested", self.shutdown_requested),
            ("released", self.released),
            ("close", self.close),
            ("local_close", self.local_close),
            ("replies", tuple(self.replies)),
            ("replier_running", self.replier_running),
            ("pings", tuple((k, _future_outcome(f)) for k, (f, _) in self.pings.items())),
            ("fragments", tuple(self.fragments)),
            ("fragment_type", self.fragment_type),
            ("decoder", None if self.decoder is None else self.decoder.getstate()),
            ("failed", self.failed),
            ("abandoned", self.abandoned),
            ("keepalive", None if keepalive is None else _future_outcome(keepalive)),
        )


def _future_outcome(future: asyncio.Future[Any]) -> Hashable:
    if not future.done():
        return "pending"
    if future.cancelled():
        return "cancelled"
    exc = future.exception()
    return "done" if exc is None else type(exc).__name__


def protocol_snapshot(proto: Any) -> tuple[Hashable, ...]:
    """websockets' sans-I/O protocol (either side) as a value: its state, the close frames, what
    it has buffered and queued, and where its frame parser stands (a generator: the position of
    each frame of its ``yield from`` chain)."""
    parser: Any = proto.parser
    position = []
    while parser is not None and getattr(parser, "gi_frame", None) is not None:
        position.append((parser.gi_frame.f_code.co_name, parser.gi_frame.f_lasti))
        parser = parser.gi_yieldfrom
    return (
        proto.state.name,
        proto.expect_continuation_frame,
        proto.current_size,
        None if proto.close_rcvd is None else (proto.close_rcvd.code, proto.close_rcvd.reason),
        None if proto.close_sent is None else (proto.close_sent.code, proto.close_sent.reason),
        proto.close_rcvd_then_sent,
        proto.eof_sent,
        type(proto.parser_exc).__name__ if proto.parser_exc is not None else None,
        type(proto.handshake_exc).__name__ if proto.handshake_exc is not None else None,
        bytes(proto.reader.buffer),
        proto.reader.eof,
        len(proto.events),
        tuple(proto.writes),
        tuple(position),
    )


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
        self._conn: _Connection | None = None
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
            await self._out_task("send", _fragments(message.encode(), fragment_size), text=True)
        else:
            await self._out_task("send", _fragments(bytes(message), fragment_size))

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
        await self._out_task("send", _Stream(_piece(first), rest, kind))

    async def send_text(self, text: str, *, fragment_size: int | None = None) -> None:
        await self._out_task("send", _fragments(text.encode(), fragment_size), text=True)

    async def send_binary(self, data: bytes, *, fragment_size: int | None = None) -> None:
        await self._out_task("send", _fragments(bytes(data), fragment_size))

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

    async def _ping(self, data: bytes | None, *, keepalive: _Connection | None) -> float:
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
        frames: bytes | list[bytes] | _Stream | None = None,
        *,
        text: bool = False,
        ping: tuple[bytes, asyncio.Future[float]] | None = None,
        only: _Connection | None = None,
    ) -> _Connection:
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
                        proto = conn.proto
                        if (
                            proto.state is OPEN
                            and not proto.expect_continuation_frame
                            and not proto.writes
                            and not proto.extensions
                            and not proto.debug
                        ):
                            # A whole message framed here, as websockets' send_text or
                            # send_binary would frame it through send_frame (no Frame
                            # object, no detour through the protocol's write queue).
                            first = _TEXT_FIN if text else _BINARY_FIN
                            key = proto._keys.next()
                            await self._write(
                                party, conn, [outbound.frame_bytes(first, frames, key)]
                            )
                        else:
                            self._put_first(conn, text, frames, True)
                            await self._write(party, conn)
                    elif isinstance(frames, list):
                        await self._write_fragments(party, conn, frames, text)
                    elif isinstance(frames, _Stream):
                        await self._write_stream(party, conn, frames)
                    elif ping is not None:
                        payload, pong = ping
                        if payload in conn.pings:
                            raise ValueError("a ping with this payload is already in flight")
                        conn.pings[payload] = (pong, self._clock.now())
                        conn.proto.send_ping(payload)
                        await self._write(party, conn)
                except InvalidState:
                    # The peer's Close arrived between two of our fragments.
                    raise self._closed_error(conn) from None
            except BaseException as exc:
                self._emit(party, What.FAIL, error=str(exc), error_type=type(exc).__name__)
                raise
            finally:
                self._token.release(party)
            self._emit(party, What.DONE)
            return conn
        finally:
            self._leave()

    async def _ready(self, party: Party, seen: _Connection | None, *, connect: bool) -> _Connection:
        """The channel re-read under the token (D3), when ``seen`` is not simply still usable:
        a connection to write on, made if need be, or the error that says why there is none."""
        if seen is not None:
            # The connection this task was waiting for closed meanwhile.
            raise self._closed_error(seen)
        conn = self._conn
        if conn is not None:
            if conn.usable:
                return conn  # another connector finished while we waited
            raise self._closed_error(conn)  # closing, not yet released: no second connection
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

    @staticmethod
    def _put_first(conn: _Connection, text: bool, piece: bytes, fin: bool) -> None:
        if text:
            conn.proto.send_text(piece, fin=fin)
        else:
            conn.proto.send_binary(piece, fin=fin)

    async def _write_fragments(
        self, party: Party, conn: _Connection, pieces: list[bytes], text: bool
    ) -> None:
        """Write a message in several frames. D12: if this is interrupted between two of them
        (cancelled, or a failure that is not the connection's own), the connection is failed
        with 1011 rather than left with half a message on it."""
        last = len(pieces) - 1
        try:
            for i, piece in enumerate(pieces):
                if i:
                    conn.proto.send_continuation(piece, fin=i == last)
                else:
                    self._put_first(conn, text, piece, fin=False)
                await self._write(party, conn)
        except BaseException:
            self._fail_mid_message(party, conn)
            raise

    async def _write_stream(self, party: Party, conn: _Connection, stream: _Stream) -> None:
        """Write a message read from a source: one frame per non-empty chunk, each written once
        the next chunk is known (so the last carries FIN) and the one before it drained."""
        piece, first = stream.first, True
        try:
            async for chunk in stream.rest:
                if not (chunk := _piece(chunk)):
                    continue
                if first:
                    self._put_first(conn, stream.text, piece, fin=False)
                    first = False
                else:
                    conn.proto.send_continuation(piece, fin=False)
                await self._write(party, conn)
                piece = chunk
            if first:
                self._put_first(conn, stream.text, piece, fin=True)
            else:
                conn.proto.send_continuation(piece, fin=True)
            await self._write(party, conn)
        except BaseException:
            self._fail_mid_message(party, conn)
            raise

    def _fail_mid_message(self, party: Party, conn: _Connection) -> None:
        """D12: a message was left unfinished on ``conn`` (its send was cancelled or its source
        failed between two fragments). Finishing it is not ours to decide (the rest may never
        come), so the connection is failed as RFC 6455 7.1.7 says: a Close 1011, which 5.4
        allows between fragments, then the reader waits for the peer to end TCP (bounded by the
        close timeout) and terminate releases it. Nothing is awaited here: this runs on the
        way out of a cancelled task, still holding the token."""
        proto = conn.proto
        if conn.shutdown_requested or proto.state is not OPEN:
            return  # the connection is already going down
        if not proto.expect_continuation_frame:
            return  # the message is complete
        self._fail_connection(conn, 1011, "send interrupted in the middle of a message")
        self._put(party, conn, _frames_to_write(conn.proto))

    # ------------------------------------------------------------------ connector (D1, D2)

    async def _connect(self, party: Party) -> _Connection:
        self._emit(party, What.CONNECT, url=self.url)
        loop = asyncio.get_running_loop()
        conn: _Connection | None = None
        try:
            async with self._clock.timeout(self.options.open_timeout):
                transport = await self._open_transport(self.uri, self.options)
                self._connections += 1
                conn = _Connection(
                    n=self._connections,
                    transport=transport,
                    proto=self._new_protocol(),
                    upgraded=loop.create_future(),
                )
                self._conn = conn
                self._set_established(party, 1)
                request = conn.proto.connect()
                for name, value in self._request_headers():
                    request.headers[name] = value
                conn.proto.send_request(request)
                # H1: the reader, which resolves ``upgraded``, exists before the request is
                # written, so however fast the 101 comes it is not missed.
                self._spawn(self._run_reader(conn), f"reader#{conn.n}")
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
                self._settle_upgraded(conn)
                conn.local_close = CloseInfo(1006, "connect cancelled", "local", clean=False)
                await self._shutdown(party, conn, graceful=None, abort=True)
            raise
        self._set_state(party, ProtocolState.SUCCESS)
        self._emit(
            party,
            What.UPGRADED,
            status=response.status_code,
            headers=list(response.headers.raw_items()),
            subprotocol=conn.proto.subprotocol,
        )
        if self.options.ping_interval is not None:
            conn.keepalive = loop.create_task(self._keepalive(conn), name=f"keepalive#{conn.n}")
        return conn

    def _new_protocol(self) -> Any:
        opts = self.options
        return _ClientProtocol(
            self.uri,
            origin=Origin(opts.origin) if opts.origin else None,
            extensions=enable_client_permessage_deflate(None) if opts.compression else None,
            subprotocols=[Subprotocol(p) for p in opts.subprotocols] or None,
            max_size=opts.max_size,
        )

    def _request_headers(self) -> list[tuple[str, str]]:
        headers = list(self.options.headers)
        if not any(name.lower() == "user-agent" for name, _ in headers):
            agent = self.options.user_agent or f"wschan websockets/{websockets_version}"
            headers.append(("User-Agent", agent))
        return headers

    async def _fail_connect(
        self, party: Party, conn: _Connection | None, error: ChannelError
    ) -> None:
        """A failed connect or upgrade: tear down what exists, make the state terminal (D2)."""
        self._error = error
        self._set_state(party, ProtocolState.ERROR, error=str(error))
        if conn is not None:
            self._settle_upgraded(conn)
            conn.local_close = CloseInfo(1006, str(error), "local", clean=False)
            await self._shutdown(party, conn, graceful=None, abort=True)

    @staticmethod
    def _settle_upgraded(conn: _Connection) -> None:
        """The connector gives up on ``conn``: nobody will await its 101 any more."""
        if not conn.upgraded.done():
            conn.upgraded.cancel()  # an error set on it was retrieved already (_reject)

    # ------------------------------------------------------------------ writing (token only)

    async def _write(
        self,
        party: Party,
        conn: _Connection,
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
            chunks = _frames_to_write(conn.proto)
        if conn.replies:  # D10: owed control replies go first (control frames may sit between
            chunks, conn.replies = conn.replies + chunks, []  # fragments, RFC 6455 5.4)
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
                1006, "write timed out", "local", clean=False
            )
            if not conn.shutdown_requested:
                await self._shutdown(party, conn, graceful=None, abort=True)
            raise WriteTimeout(
                f"write to {self.uri.host}:{self.uri.port} did not drain within "
                f"{self.options.write_timeout}s; the connection was aborted"
            ) from None
        except OSError:
            if not conn.shutdown_requested:
                await self._shutdown(party, conn, graceful=None, abort=True)
            raise self._closed_error(conn) from None

    def _put(
        self, party: Party, conn: _Connection, chunks: list[bytes], *, handshake: bool = False
    ) -> None:
        """Hand ``chunks`` to the transport, without waiting for them to drain."""
        if self._token.holder is not party and self._token.holder != party:
            raise AssertionError(f"{party} wrote without holding the token")
        for chunk in chunks:
            conn.transport.write(chunk)
            if self._subscribers:
                opcode = "http" if handshake else _OPCODE_NAMES.get(chunk[0] & 0x0F, "?")
                self._emit(party, What.FRAME_OUT, opcode=opcode, size=len(chunk))

    # ------------------------------------------------------------------ reader and terminate

    async def _run_reader(self, conn: _Connection) -> None:
        """The reader of one connection; when it ends, it runs ``handle_terminate``."""
        try:
            await self._read_loop(conn)
            await self._handle_terminate(conn)
        finally:
            self._leave()

    async def _read_loop(self, conn: _Connection) -> None:
        party = Party("reader", conn.n)
        proto = conn.proto
        reason = "eof"
        limit = self.options.close_timeout
        deadline: float | None = None  # for the peer to end TCP, once a Close went out
        try:
            while True:
                try:
                    if deadline is None and limit is not None and proto.close_expected():
                        deadline = self._clock.now() + limit
                    if deadline is not None:
                        # A Close went out: the server should end TCP. One bound for the whole
                        # wait, so a peer that keeps sending cannot keep us CLOSING.
                        left = max(deadline - self._clock.now(), 0.0)
                        async with self._clock.timeout(left):
                            data = await conn.transport.read()
                    else:
                        data = await conn.transport.read()
                except TimeoutError:
                    reason = "close timeout"
                    if not conn.failed:  # a connection we failed keeps the code we failed it with
                        conn.local_close = conn.local_close or CloseInfo(
                            1006, "peer did not close TCP after the Close", "local", clean=False
                        )
                    break
                except OSError as exc:
                    reason = f"read error: {exc}"
                    proto.receive_eof()
                    break
                whole = None
                if not data:
                    proto.receive_eof()
                elif (
                    proto.state is OPEN
                    and proto.current_size is None
                    and proto.max_fragment_size is None
                    and not proto.extensions
                    and not proto.debug
                    and at_message_boundary(proto.parser, _PARSE_CODE)
                ):
                    # One-frame messages taken straight from the bytes read, the rest left to
                    # websockets' parser (which then stands where it would after those frames).
                    whole, taken = whole_messages(data, proto.max_message_size)
                    if taken < len(data):
                        proto.receive_data(data[taken:] if taken else data)
                else:
                    proto.receive_data(data)
                if whole:
                    self._on_whole_messages(party, conn, whole)
                for event in proto.events_received():
                    self._on_protocol_event(party, conn, event)
                if not conn.upgraded.done() and proto.handshake_exc is not None:
                    if isinstance(proto.handshake_exc.__cause__, EOFError):
                        problem = "closed before the 101"
                    else:
                        problem = f"sent an invalid handshake response: {proto.handshake_exc}"
                    _reject(
                        conn.upgraded, HandshakeInterrupted(f"connection to {self.url} {problem}")
                    )
                # D10: what the protocol owes for these frames (Pong, Close echo, or our own
                # failure's Close) is queued before this step ends: a send that ``process``
                # started runs only after it, so it cannot overtake them.
                owed = _frames_to_write(proto)
                if proto.parser_exc is not None and not isinstance(proto.parser_exc, EOFError):
                    conn.failed = True  # websockets failed it (1002, 1009): 7.1.7 applies too
                if owed:
                    self._queue_replies(conn, owed)
                if not data or proto.state is CLOSED:
                    break
                inbox = self._inbox
                while (
                    inbox is not None
                    and len(inbox) >= self.options.receive_queue
                    and not conn.shutdown_requested
                ):
                    # Backpressure: read nothing more until the consumer catches up.
                    self._inbox_taken.clear()
                    await self._inbox_taken.wait()
        finally:
            if not conn.upgraded.done():
                _reject(
                    conn.upgraded,
                    HandshakeInterrupted(f"connection to {self.url} closed before the 101"),
                )
            conn.reader_done.set()
            self._emit(party, What.READER_END, reason=reason)

    def _on_whole_messages(
        self, party: Party, conn: _Connection, frames: list[tuple[int, bytes]]
    ) -> None:
        """Frames ``inbound.whole_messages`` took, handled as ``_on_protocol_event`` handles
        the same frames from websockets' parser: same events, same delivery, same failure."""
        for first, payload in frames:
            text = first == TEXT_WHOLE
            if self._subscribers:
                opcode = "text" if text else "binary"
                self._emit(
                    party, What.FRAME_IN, opcode=opcode, size=len(payload), fin=True, data=payload
                )
            if conn.failed:
                continue  # RFC 6455 7.1.7: after failing the connection, process nothing more
            if text:
                try:
                    decoded = payload.decode()
                except UnicodeDecodeError as exc:
                    self._fail_connection(conn, 1007, f"invalid UTF-8 at position {exc.start}")
                    continue
                self._deliver(conn, _new_tuple(Message, ("text", decoded)))
            else:
                self._deliver(conn, _new_tuple(Message, ("binary", payload)))

    def _on_protocol_event(self, party: Party, conn: _Connection, event: Any) -> None:
        if isinstance(event, Response):
            if conn.upgraded.done():
                return
            if conn.proto.handshake_exc is not None:
                _reject(conn.upgraded, self._rejection(conn, event))
            else:
                conn.upgraded.set_result(event)
            return
        opcode = event.opcode
        if self._subscribers:
            self._emit(
                party,
                What.FRAME_IN,
                opcode=_OPCODE_NAMES.get(int(opcode), "?"),
                size=len(event.data),
                fin=event.fin,
                data=bytes(event.data),
            )
        if opcode is _PONG:
            self._resolve_pings(conn, bytes(event.data))
        elif conn.failed:
            return  # RFC 6455 7.1.7: after failing the connection, process nothing more
        elif opcode is _TEXT and event.fin:  # the common case: a whole text message
            try:
                text = bytes(event.data).decode()
            except UnicodeDecodeError as exc:
                self._fail_connection(conn, 1007, f"invalid UTF-8 at position {exc.start}")
                return
            self._deliver(conn, _new_tuple(Message, ("text", text)))
        elif opcode is _BINARY and event.fin:
            self._deliver(conn, _new_tuple(Message, ("binary", bytes(event.data))))
        elif opcode is _TEXT or opcode is _BINARY or opcode is _CONT:
            self._fragment(conn, opcode, event)
        # PING and CLOSE: the protocol queued the Pong / Close echo; the replier writes it.

    def _fragment(self, conn: _Connection, opcode: Opcode, event: Any) -> None:
        """One frame of a fragmented message. Text is decoded fragment by fragment, so invalid
        UTF-8 fails the connection (1007) at the first fragment that cannot be the start of
        valid UTF-8, not at the end of the message (RFC 6455 8.1)."""
        if opcode is not _CONT:
            conn.fragment_type = "text" if opcode is _TEXT else "binary"
            conn.fragments = []
            conn.decoder = _UTF8Decoder() if opcode is _TEXT else None
        if conn.decoder is None:
            conn.fragments.append(bytes(event.data))
        else:
            try:
                conn.fragments.append(conn.decoder.decode(event.data, event.fin))
            except UnicodeDecodeError:
                n = len(conn.fragments) + 1
                self._fail_connection(
                    conn, 1007, f"invalid UTF-8 in fragment {n} of a text message"
                )
                return
        if event.fin:
            parts, conn.fragments, conn.decoder = conn.fragments, [], None
            if conn.fragment_type == "text":
                self._deliver(conn, Message("text", "".join(parts)))
            else:
                self._deliver(conn, Message("binary", b"".join(parts)))

    @staticmethod
    def _fail_connection(conn: _Connection, code: int, reason: str) -> None:
        """Fail the connection (RFC 6455 7.1.7): our Close, then nothing but waiting for TCP."""
        conn.failed = True
        conn.proto.fail(code, reason)

    def _deliver(self, conn: _Connection, message: Message) -> None:
        inbox = self._inbox
        if inbox is not None:
            if len(inbox) < self.options.receive_queue or not conn.shutdown_requested:
                inbox.append(message)  # over the bound only by what one read brought
                self._inbox_put.set()
            return  # closing with a consumer that is behind: the rest is dropped
        if self._process is not None:
            try:
                self._process(message)
            except Exception as exc:  # a failing consumer must not kill the reader
                self._fail_connection(conn, 1011, f"process callback failed: {exc}")

    def _rejection(self, conn: _Connection, response: Response) -> HandshakeRejected:
        exc = conn.proto.handshake_exc
        body = bytes(response.body or b"")
        if isinstance(exc, InvalidStatus):
            status = response.status_code
            text = body.decode(errors="replace").strip()
            detail = f": {text[:200]}" if text else ""
            return HandshakeRejected(
                f"{self.url} rejected the upgrade with HTTP {status} "
                f"{response.reason_phrase}{detail}",
                status=status,
                body=body,
                headers=tuple(response.headers.raw_items()),
            )
        return HandshakeRejected(
            f"{self.url} sent an invalid upgrade response: {exc}",
            status=response.status_code,
            body=body,
        )

    def _resolve_pings(self, conn: _Connection, payload: bytes) -> None:
        if payload not in conn.pings:
            return  # unsolicited Pong
        now = self._clock.now()
        # A Pong acknowledges its Ping and every earlier one (RFC 6455 5.5.3).
        for key in list(conn.pings):
            future, sent_at = conn.pings.pop(key)
            if not future.done():
                future.set_result(now - sent_at)
            if key == payload:
                break

    def _queue_replies(self, conn: _Connection, replies: list[bytes]) -> None:
        """Owe ``replies`` on ``conn`` (D10): the next token holder writes them before anything
        of its own; the auto reply party is only there in case no other party comes."""
        conn.replies.extend(replies)
        if conn.failed:
            # RFC 6455 7.1.7: once we failed the connection, nothing but our Close goes out.
            conn.replies = [chunk for chunk in conn.replies if chunk[0] & 0x0F == _CLOSE]
        if not conn.replier_running:
            conn.replier_running = True
            self._spawn(self._auto_reply(conn), f"auto_reply#{conn.n}")

    async def _auto_reply(self, conn: _Connection) -> None:
        """Write queued Pongs and Close frames, through the token like any other write."""
        party = self._new_party("auto_reply")
        try:
            await self._token.take(party)
            try:
                if not conn.released and not conn.shutdown_requested:
                    while conn.replies:
                        replies, conn.replies = conn.replies, []
                        await self._write(party, conn, replies)
                else:
                    self._emit(party, What.LEAVE, dropped=len(conn.replies))
                    conn.replies = []  # the connection is gone: never write on it (H3)
            except ChannelError:
                pass  # the connection died under us; terminate reports how
            finally:
                conn.replier_running = False
                self._token.release(party)
        finally:
            self._leave()

    async def _handle_terminate(self, conn: _Connection) -> None:
        """The reader ended: take the token and shut the connection down, unless already done."""
        party = Party("terminate", conn.n)
        await self._token.take(party)
        try:
            if conn.released:
                # Woken after someone else released it (established == 0): nothing to do.
                self._emit(party, What.LEAVE)
            else:
                await self._shutdown(party, conn, graceful=None)
        finally:
            self._token.release(party)

    # ------------------------------------------------------------------ keepalive

    async def _keepalive(self, conn: _Connection) -> None:
        interval = self.options.ping_interval
        assert interval is not None
        try:
            while conn.usable:
                await self._clock.sleep(interval)
                await self._ping(None, keepalive=conn)
        except PingTimeout:
            if conn.usable:
                conn.local_close = CloseInfo(1011, "keepalive ping timeout", "local", clean=False)
                await self._kill(conn)
        except (ChannelError, asyncio.CancelledError):
            pass  # the connection is closing anyway

    async def _kill(self, conn: _Connection) -> None:
        party = self._new_party("keepalive")
        self._enter()
        try:
            await self._token.take(party)
            try:
                if not conn.released:
                    await self._shutdown(party, conn, graceful=None, abort=True)
            finally:
                self._token.release(party)
        finally:
            self._leave()

    # ------------------------------------------------------------------ shutdown and release

    async def _shutdown(
        self,
        party: Party,
        conn: _Connection,
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
        conn.shutdown_requested = True
        self._inbox_taken.set()  # a reader held back by a full inbox reads on to the close
        self._emit(party, What.SHUTDOWN, graceful=graceful is not None, abort=abort)
        if conn.keepalive is not None and conn.keepalive is not asyncio.current_task():
            conn.keepalive.cancel()
        try:
            if conn.replies and not abort:
                # D10, RFC 6455 5.5.1: a Close echo (or Pong) we owe goes out before we close,
                # even when this holder is deinit or terminate.
                try:
                    async with self._clock.timeout(self.options.close_timeout):
                        await self._write(party, conn, [])
                except (TimeoutError, ChannelError):
                    abort = True
            if graceful is not None and conn.proto.state is OPEN and not conn.reader_done.is_set():
                conn.proto.send_close(*graceful)
                try:
                    # One bound for writing our Close and hearing the answer, so a peer that
                    # never reads cannot hold deinit even when write_timeout is None.
                    async with self._clock.timeout(self.options.close_timeout):
                        await self._write(party, conn)
                        await conn.reader_done.wait()
                except TimeoutError:
                    conn.local_close = conn.local_close or CloseInfo(
                        1006, "no Close answer within the close timeout", "local", clean=False
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

    def _release(self, party: Party, conn: _Connection) -> None:
        """established 1 -> 0, exactly once per connection: the reader has ended and a token
        holder asked for shutdown."""
        assert conn.reader_done.is_set() and conn.shutdown_requested and not conn.released
        conn.released = True
        info = self._close_info(conn)
        conn.close = info
        if self._conn is conn:
            self._conn = None
        for future, _ in conn.pings.values():
            _reject(future, info.error())
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

    def _close_info(self, conn: _Connection) -> CloseInfo:
        if conn.local_close is not None:
            return conn.local_close
        proto = conn.proto
        rcvd = proto.close_rcvd
        if rcvd is not None:
            # close_rcvd_then_sent is False only when our Close went first.
            by = "local" if proto.close_rcvd_then_sent is False else "peer"
            clean = rcvd.code in _OK_CLOSE_CODES
            return CloseInfo(int(rcvd.code), rcvd.reason, by, clean)
        sent = proto.close_sent
        failed_by_parser = proto.parser_exc is not None and not isinstance(
            proto.parser_exc,
            EOFError,  # EOF is the peer's doing, not a protocol error of ours
        )
        if sent is not None and (conn.failed or failed_by_parser):
            # We failed the connection (1002, 1007, 1009, 1011): the code is ours.
            return CloseInfo(int(sent.code), sent.reason, "local", clean=False)
        return CloseInfo(1006, "connection dropped without a Close frame", "peer", clean=False)

    def _closed_error(self, conn: _Connection) -> ChannelClosed:
        # Before the release the close is still unfolding: say what is known so far.
        return (conn.close or self._close_info(conn)).error()

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
            _check_close(code, reason)
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
                _reject(waiter, ChannelDisposed(f"channel to {self.url} was deinitialized"))
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
                None if self._deinit_done is None else _future_outcome(self._deinit_done),
            ),
            ("_disposed", self._disposed),
            ("_last_close", self._last_close),
            ("_close_waiters", tuple(_future_outcome(f) for f in self._close_waiters)),
            ("_inbox", None if self._inbox is None else tuple(self._inbox)),
            ("_inbox_put", self._inbox_put.is_set()),
            ("_inbox_taken", self._inbox_taken.is_set()),
        )
