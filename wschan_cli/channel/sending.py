"""Writing one data message under the token: a whole message framed directly (the common
case), its fragments, or a stream of chunks of unknown length; and D12, what happens to a
message left unfinished.

Part of ``Channel``, split off from its out tasks: the token holder calls these, and they write
only through the channel's ``_write`` (owed replies first, then drain, D8 and D10).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from websockets.frames import Opcode
from websockets.protocol import OPEN

from . import outbound
from .connection import Connection
from .events import Party
from .messages import Stream, chunk_bytes
from .protocol import frames_to_write

if TYPE_CHECKING:
    from .channel import Channel

# First bytes of a whole text and binary message's frame: FIN and the opcode (RFC 6455 5.2).
_TEXT_FIN, _BINARY_FIN = 0x80 | Opcode.TEXT, 0x80 | Opcode.BINARY


def whole_message(conn: Connection, text: bool, data: bytes) -> list[bytes] | None:
    """A whole message's frame, for the token holder to write (``ch._write(party, conn,
    ...)``): framed here on an open connection with nothing queued, as websockets'
    ``send_text`` or ``send_binary`` would frame it through ``send_frame`` (no Frame object,
    no detour through the protocol's write queue); otherwise queued in the protocol as
    before, and None (``_write`` then takes what the protocol queued)."""
    proto = conn.proto
    if (
        proto.state is OPEN
        and not proto.expect_continuation_frame
        and not proto.writes
        and not proto.extensions
        and not proto.debug
    ):
        return [outbound.frame_bytes(_TEXT_FIN if text else _BINARY_FIN, data, proto._keys.next())]
    conn.put_first(text, data, True)
    return None


async def write_fragments(
    ch: Channel, party: Party, conn: Connection, pieces: list[bytes], text: bool
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
                conn.put_first(text, piece, fin=False)
            await ch._write(party, conn)
    except BaseException:
        _fail_mid_message(ch, party, conn)
        raise


async def write_stream(ch: Channel, party: Party, conn: Connection, stream: Stream) -> None:
    """Write a message read from a source: one frame per non-empty chunk, each written once
    the next chunk is known (so the last carries FIN) and the one before it drained."""
    piece, first = stream.first, True
    try:
        async for chunk in stream.rest:
            if not (chunk := chunk_bytes(chunk)):
                continue
            if first:
                conn.put_first(stream.text, piece, fin=False)
                first = False
            else:
                conn.proto.send_continuation(piece, fin=False)
            await ch._write(party, conn)
            piece = chunk
        if first:
            conn.put_first(stream.text, piece, fin=True)
        else:
            conn.proto.send_continuation(piece, fin=True)
        await ch._write(party, conn)
    except BaseException:
        _fail_mid_message(ch, party, conn)
        raise


def _fail_mid_message(ch: Channel, party: Party, conn: Connection) -> None:
    """D12: a message was left unfinished on ``conn`` (its send was cancelled or its source
    failed between two fragments). Finishing it is not ours to decide (the rest may never
    come), so the connection is failed as RFC 6455 7.1.7 says: a Close 1011, which 5.4
    allows between fragments, then the reader waits for the peer to end TCP (bounded by the
    close timeout) and terminate releases it. Nothing is awaited here: this runs on the
    way out of a cancelled task, still holding the token."""
    proto = conn.proto
    if conn.closing or proto.state is not OPEN:
        return  # the connection is already going down
    if not proto.expect_continuation_frame:
        return  # the message is complete
    conn.fail(1011, "send interrupted in the middle of a message")
    ch._put(party, conn, frames_to_write(conn.proto))
