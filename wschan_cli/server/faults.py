"""The faults the echo server writes on the wire: the on-connect actions and the TCP drop, with the
malformed frames websockets itself refuses to send."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from websockets.asyncio.server import ServerConnection
from websockets.frames import Opcode

from .behaviour import Behaviour

__all__ = ["INVALID_UTF8_PAYLOAD", "MID_FRAME_ANNOUNCED", "MID_FRAME_SENT", "drop", "on_connect"]

logger = logging.getLogger("wschan_cli.server")

#: Payload of the text frame sent by ``invalid_utf8``: 0xFF and 0xFE never occur in UTF-8.
INVALID_UTF8_PAYLOAD = b"\xff\xfe"

#: Length announced by the truncated frame of ``drop_mid_frame``, and how much of it is sent.
MID_FRAME_ANNOUNCED = 1000
MID_FRAME_SENT = 10


def raw_server_frame(opcode: Opcode, payload: bytes, announced: int | None = None) -> bytes:
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


async def on_connect(connection: ServerConnection, behaviour: Behaviour) -> None:
    """The on-connect actions of ``behaviour``, in their documented order."""
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
        connection.transport.write(raw_server_frame(Opcode.TEXT, INVALID_UTF8_PAYLOAD))


async def drop(connection: ServerConnection, mid_frame: bool) -> None:
    """Abort TCP without a Close frame, after half a frame with ``mid_frame``."""
    transport = connection.transport
    if mid_frame:
        payload = b"x" * MID_FRAME_SENT
        transport.write(raw_server_frame(Opcode.TEXT, payload, announced=MID_FRAME_ANNOUNCED))
        logger.info("dropping TCP mid-frame")
    else:
        logger.info("dropping TCP without a Close frame")
    # abort() throws away what is still buffered in the transport, and the
    # point is that the client *receives* the last echo or the half frame
    # first; so wait (briefly) until the transport handed it to the kernel.
    await _flush(transport)
    transport.abort()
    await connection.wait_closed()


async def _flush(transport: asyncio.WriteTransport, timeout: float = 2.0) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while transport.get_write_buffer_size() > 0:
                await asyncio.sleep(0.005)
