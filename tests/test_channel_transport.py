"""``StreamTransport`` over a real socket: small frames written in one turn of the loop leave
together at the end of the turn (one system call, full segments), a large one at once, and
``close`` and ``abort`` hand what is held back to the socket first, as when every write went
straight there (``abort`` then drops only what the kernel did not take).

Loopback delivers synchronously: once the kernel took a write, the peer's socket can read it,
so "not sent yet" is a non-blocking ``recv`` that finds nothing.
"""

from __future__ import annotations

import asyncio
import socket

from wschan_cli.channel.transport import CORK_LIMIT, StreamTransport

from .helpers import run


async def connected() -> tuple[StreamTransport, socket.socket, socket.socket]:
    """A StreamTransport on one end of a socket pair; the other end, non-blocking."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(StreamTransport, sock=ours)
    return protocol, ours, theirs


def received(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 20)
    except BlockingIOError:
        return b""


def test_small_frames_of_one_turn_leave_together_at_its_end() -> None:
    async def main() -> None:
        transport, ours, theirs = await connected()
        with ours, theirs:
            frames = [bytes([i]) * 10 for i in range(100)]
            for data in frames:
                transport.write(data)
            assert received(theirs) == b""  # held back for the rest of the turn
            await asyncio.sleep(0)
            assert received(theirs) == b"".join(frames)  # ...then sent in one write
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
            assert data == b"a" * 10 + big  # in order, before the turn ends
            transport.write(b"c" * CORK_LIMIT)  # nothing held: straight to the socket
            assert received(theirs)[:1] == b"c"
            transport.abort()

    run(main())


def test_close_and_abort_send_what_is_held_first() -> None:
    async def main() -> None:
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
