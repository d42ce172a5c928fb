"""The reader of a connection, and what it starts: it reads, feeds websockets, delivers each
message (to ``process`` or the receive queue), owes the control replies websockets queued (an
auto reply party writes them under the token, D10) and, when the stream ends, runs terminate.

Part of ``Channel``, split off by party: these functions read and change the channel's state as
its methods do, and write only through the channel's token-holding ``_write``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import CLOSED, OPEN, Protocol

from .close import CloseInfo, handshake_done
from .connection import Connection
from .errors import ChannelError, HandshakeInterrupted, reject
from .events import Party, What
from .inbound import TEXT_WHOLE, at_message_boundary, whole_messages
from .messages import Message
from .protocol import OPCODE_NAMES, frames_to_write, rejection

if TYPE_CHECKING:
    from .channel import Channel

_new_tuple = tuple.__new__  # Message(...) runs NamedTuple's Python-level __new__
# Enum members read on every message, looked up once: in Python 3.11 reading an Enum class
# attribute costs about as much as a function call.
_TEXT, _BINARY, _CONT, _CLOSE, _PONG = (
    Opcode.TEXT,
    Opcode.BINARY,
    Opcode.CONT,
    Opcode.CLOSE,
    Opcode.PONG,
)

# The main loop of websockets' frame parser, where it waits between frames (inbound.py).
_PARSE_CODE = Protocol.parse.__code__
#: Control replies (Pongs, a Close echo) owed and not yet written past which the reader reads
#: nothing more until a writer takes them: a peer that pings and does not read our Pongs cannot
#: grow our memory; the write timeout ends it (D8). Far past any burst a live peer sends.
OWED_REPLIES_LIMIT = 1024


async def run_reader(ch: Channel, conn: Connection) -> None:
    """The reader of one connection; when it ends, it runs ``handle_terminate``."""
    try:
        await _read_loop(ch, conn)
        await _handle_terminate(ch, conn)
    finally:
        ch._leave()


async def _read_loop(ch: Channel, conn: Connection) -> None:
    party = Party("reader", conn.n)
    proto = conn.proto
    reason = "eof"
    limit = ch.options.close_timeout
    deadline: float | None = None  # for the peer to end TCP, once a Close went out
    try:
        while True:
            try:
                if limit is not None and proto.close_expected():
                    now = ch._clock.now()
                    if deadline is None and not _close_owed(conn):
                        deadline = now + limit
                    # A Close went out: the server should end TCP. One bound for the whole
                    # wait, so a peer that keeps sending cannot keep us CLOSING. While our
                    # Close (the echo) is still owed behind the token holder's write (D10),
                    # the peer cannot end TCP (RFC 6455 5.5.1, 7.1.1): its time starts once
                    # the echo is written (the holder's write is bounded, D8); look again
                    # every close timeout until then.
                    wait = limit if deadline is None else max(deadline - now, 0.0)
                    async with ch._clock.timeout(wait):
                        data = await conn.transport.read()
                else:
                    data = await conn.transport.read()
            except TimeoutError:
                if deadline is None:
                    continue  # the echo was owed: the peer's time starts when it is written
                reason = "close timeout"
                # A connection we failed keeps the code we failed it with; one whose closing
                # handshake completed (both Close frames) keeps its Close: TCP left open after
                # it is the peer's lapse, and we may end TCP ourselves (RFC 6455 7.1.1, 7.1.4).
                if not conn.failed and not handshake_done(proto):
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
                _on_whole_messages(ch, party, conn, whole)
            for event in proto.events_received():
                _on_protocol_event(ch, party, conn, event)
            if not conn.upgraded.done() and proto.handshake_exc is not None:
                if isinstance(proto.handshake_exc.__cause__, EOFError):
                    problem = "closed before the 101"
                else:
                    invalid = proto.handshake_exc
                    # websockets' reason is in the cause: which limit (headers, line, body)
                    # or rule the response broke.
                    why = f" ({invalid.__cause__})" if invalid.__cause__ is not None else ""
                    problem = f"sent an invalid handshake response: {invalid}{why}"
                reject(conn.upgraded, HandshakeInterrupted(f"connection to {ch.url} {problem}"))
            # D10: what the protocol owes for these frames (Pong, Close echo, or our own
            # failure's Close) is queued before this step ends: a send that ``process``
            # started runs only after it, so it cannot overtake them.
            owed = frames_to_write(proto)
            if proto.parser_exc is not None and not isinstance(proto.parser_exc, EOFError):
                conn.failed = True  # websockets failed it (1002, 1009): 7.1.7 applies too
            if owed:
                _queue_replies(ch, conn, owed)
                while len(conn.replies) > OWED_REPLIES_LIMIT and not conn.closing:
                    conn.replies_taken.clear()
                    await conn.replies_taken.wait()
            if not data or proto.state is CLOSED:
                break
            inbox = ch._inbox
            while inbox is not None and len(inbox) >= ch.options.receive_queue and not conn.closing:
                # Backpressure: read nothing more until the consumer catches up.
                ch._inbox_taken.clear()
                await ch._inbox_taken.wait()
    finally:
        if not conn.upgraded.done():
            reject(
                conn.upgraded,
                HandshakeInterrupted(f"connection to {ch.url} closed before the 101"),
            )
        conn.reader_done.set()
        ch._emit(party, What.READER_END, reason=reason)


def _on_whole_messages(
    ch: Channel, party: Party, conn: Connection, frames: list[tuple[int, bytes]]
) -> None:
    """Frames ``inbound.whole_messages`` took, handled as ``_on_protocol_event`` handles the
    same frames from websockets' parser: same events, same delivery, same failure."""
    for first, payload in frames:
        text = first == TEXT_WHOLE
        if ch._subscribers:
            opcode = "text" if text else "binary"
            ch._emit(party, What.FRAME_IN, opcode=opcode, size=len(payload), fin=True, data=payload)
        if conn.failed:
            continue  # RFC 6455 7.1.7: after failing the connection, process nothing more
        if text:
            try:
                decoded = payload.decode()
            except UnicodeDecodeError as exc:
                conn.fail(1007, f"invalid UTF-8 at position {exc.start}")
                continue
            _deliver(ch, conn, _new_tuple(Message, ("text", decoded)))
        else:
            _deliver(ch, conn, _new_tuple(Message, ("binary", payload)))


def _on_protocol_event(ch: Channel, party: Party, conn: Connection, event: Any) -> None:
    if isinstance(event, Response):
        if conn.upgraded.done():
            return
        if conn.proto.handshake_exc is not None:
            reject(conn.upgraded, rejection(ch.url, conn.proto, event))
        else:
            conn.upgraded.set_result(event)
        return
    opcode = event.opcode
    if ch._subscribers:
        ch._emit(
            party,
            What.FRAME_IN,
            opcode=OPCODE_NAMES.get(int(opcode), "?"),
            size=len(event.data),
            fin=event.fin,
            data=bytes(event.data),
        )
    if opcode is _PONG:
        conn.resolve_pings(bytes(event.data), ch._clock.now())
    elif conn.failed:
        return  # RFC 6455 7.1.7: after failing the connection, process nothing more
    elif opcode is _TEXT and event.fin:  # the common case: a whole text message
        try:
            text = bytes(event.data).decode()
        except UnicodeDecodeError as exc:
            conn.fail(1007, f"invalid UTF-8 at position {exc.start}")
            return
        _deliver(ch, conn, _new_tuple(Message, ("text", text)))
    elif opcode is _BINARY and event.fin:
        _deliver(ch, conn, _new_tuple(Message, ("binary", bytes(event.data))))
    elif opcode is _TEXT or opcode is _BINARY or opcode is _CONT:
        message = conn.assemble(opcode, event)  # None until the last fragment
        if message is not None:
            _deliver(ch, conn, message)
    # PING and CLOSE: the protocol queued the Pong / Close echo; the replier writes it.


def _deliver(ch: Channel, conn: Connection, message: Message) -> None:
    inbox = ch._inbox
    if inbox is not None:
        if len(inbox) < ch.options.receive_queue or not conn.closing:
            inbox.append(message)  # over the bound only by what one read brought
            ch._inbox_put.set()
        return  # closing with a consumer that is behind: the rest is dropped
    if ch._process is not None:
        try:
            ch._process(message)
        except Exception as exc:  # a failing consumer must not kill the reader
            conn.fail(1011, f"process callback failed: {exc}")


def _close_owed(conn: Connection) -> bool:
    """Our Close frame is queued on ``conn`` (D10) and not yet written."""
    return any(chunk[0] & 0x0F == _CLOSE for chunk in conn.replies)


def _queue_replies(ch: Channel, conn: Connection, replies: list[bytes]) -> None:
    """Owe ``replies`` on ``conn`` (D10): the next token holder writes them before anything
    of its own; the auto reply party is only there in case no other party comes."""
    conn.replies.extend(replies)
    if conn.failed:
        # RFC 6455 7.1.7: once we failed the connection, nothing but our Close goes out.
        conn.replies = [chunk for chunk in conn.replies if chunk[0] & 0x0F == _CLOSE]
    if not conn.replier_running:
        conn.replier_running = True
        ch._spawn(_auto_reply(ch, conn), f"auto_reply#{conn.n}")


async def _auto_reply(ch: Channel, conn: Connection) -> None:
    """Write queued Pongs and Close frames, through the token like any other write."""
    party = ch._new_party("auto_reply")
    try:
        await ch._token.take(party)
        try:
            if not conn.closing:
                while conn.replies:
                    replies, conn.replies = conn.replies, []
                    conn.replies_taken.set()
                    await ch._write(party, conn, replies)
            else:
                ch._emit(party, What.LEAVE, dropped=len(conn.replies))
                conn.replies = []  # the connection is gone: never write on it (H3)
        except ChannelError:
            pass  # the connection died under us; terminate reports how
        finally:
            conn.replier_running = False
            ch._token.release(party)
    finally:
        ch._leave()


async def _handle_terminate(ch: Channel, conn: Connection) -> None:
    """The reader ended: take the token and shut the connection down, unless already done."""
    party = Party("terminate", conn.n)
    await ch._token.take(party)
    try:
        if conn.released:
            # Woken after someone else released it (established == 0): nothing to do.
            ch._emit(party, What.LEAVE)
        else:
            await ch._shutdown(party, conn, graceful=None)
    finally:
        ch._token.release(party)
