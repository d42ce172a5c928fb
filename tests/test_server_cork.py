"""``CorkedTransport`` (the embedded server's writes) over a real socket: small frames written in
one turn of the loop leave together at the end of the turn, a large one at once, and whatever
must come after them (EOF, close, abort, a wait on the buffer size) hands what is held back to
the socket first.

Loopback delivers synchronously: once the kernel took a write, the peer's socket can read it,
so "not sent yet" is a non-blocking ``recv`` that finds nothing.
"""

from __future__ import annotations

import asyncio
import socket
from typing import cast

from wschan_cli.channel.transport import CORK_LIMIT
from wschan_cli.server.cork import CorkedTransport

from .helpers import run


async def connected() -> tuple[CorkedTransport, socket.socket, socket.socket]:
    """A CorkedTransport over the loop's transport on one end of a socket pair; the other end,
    non-blocking."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
    return CorkedTransport(cast(asyncio.Transport, transport)), ours, theirs


def received(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def test_small_frames_of_one_turn_leave_together_at_its_end() -> None:
    async def main() -> None:
        transport, ours, theirs = await connected()
        with ours, theirs:
            frames = [bytes([i]) * 10 for i in range(100)]
            for data in frames:
                transport.write(data)
            assert received(theirs) == b""  # held back for the rest of the turn
            assert transport.get_write_buffer_size() == 1000  # held bytes count as buffered
            await asyncio.sleep(0)
            assert received(theirs) == b"".join(frames)  # ...then sent in one write
            assert transport.get_write_buffer_size() == 0
            transport.abort()

    run(main())


def test_a_frame_that_reaches_the_limit_leaves_at_once_with_what_was_held() -> None:
    async def main() -> None:
        transport, ours, theirs = await connected()
        with ours, theirs:
            transport.write(b"a" * 10)
            big = b"b" * CORK_LIMIT
            transport.write(big)
            data = b""
            while chunk := received(theirs):
                data += chunk
                await asyncio.sleep(0)  # what the kernel did not take leaves as it drains
            assert data[: 10 + CORK_LIMIT] == b"a" * 10 + big  # in order, the big one not held
            transport.abort()

    run(main())


def test_eof_close_and_abort_send_what_is_held_first() -> None:
    async def main() -> None:
        transport, ours, theirs = await connected()
        with ours, theirs:
            transport.write(b"before the end of stream")
            transport.write_eof()
            assert received(theirs) == b"before the end of stream"  # then EOF: recv gave b""
            transport.close()
        transport, ours, theirs = await connected()
        with ours, theirs:
            transport.write(b"last words")
            transport.close()
            await asyncio.sleep(0)
            assert received(theirs) == b"last words"
        transport, ours, theirs = await connected()
        with ours, theirs:
            transport.write(b"written before the abort")
            transport.abort()
            assert received(theirs) == b"written before the abort"

    run(main())


def test_what_is_held_when_the_connection_is_lost_is_dropped() -> None:
    async def main() -> None:
        transport, ours, theirs = await connected()
        with ours, theirs:
            transport.write(b"never sent")
            transport.discard()  # what connection_lost does
            await asyncio.sleep(0)
            assert received(theirs) == b""
            assert transport.get_write_buffer_size() == 0
            transport.abort()

    run(main())
