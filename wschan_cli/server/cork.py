"""What the embedded server writes in one turn of the event loop leaves in one system call.

websockets' connection hands each frame to the loop's transport as it is made, and the
transport sends it at once when its buffer is empty: one ``send()`` system call per echo. A
client that streams (``seq 1000000 | websocat``) puts thousands of frames in one read, the echo
loop answers them all in the same turn, and those system calls were most of the server's CPU
per message (issue 13, item 4). :class:`CorkedTransport` sits between websockets' connection and
the loop's transport and holds the small frames of a turn back until its end, as the client
core's ``StreamTransport.write`` does (``wschan_cli.channel.transport``, same ``CORK_LIMIT``).

Nothing else changes: the bytes and their order on the wire are the same, they leave before the
loop next polls, and everything that must come after them (EOF, close, abort, a fault's raw
frame, the buffer size a fault waits on) hands what is held to the loop's transport first. What
is held is bounded by ``CORK_LIMIT``, on top of the transport's own buffer, whose flow control
(``pause_writing``, websockets' ``drain``) is untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from wschan_cli.channel.transport import CORK_LIMIT

__all__ = ["CorkedTransport"]


class CorkedTransport(asyncio.Transport):
    """The loop's transport (asyncio's or uvloop's), with the small writes of a turn joined."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        # Kept, not looked up per write: get_running_loop() makes a getpid() system call.
        self._loop = asyncio.get_running_loop()
        self._corked: list[bytes] = []  # written, not yet handed to the loop's transport
        self._corked_size = 0
        self._flush_scheduled = False
        # websockets' drain() asks once per message sent: the loop's own method, not a frame
        # of ours around it.
        self.is_closing = transport.is_closing  # type: ignore[method-assign]

    # -- the writes ------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """A frame of ``CORK_LIMIT`` or more, or the one that brings what is held to
        ``CORK_LIMIT``, goes out at once (after what is held); the rest at the end of the turn."""
        corked = self._corked
        if corked:
            corked.append(bytes(data))
            self._corked_size += len(data)
            if self._corked_size >= CORK_LIMIT:
                self.flush()
        elif len(data) >= CORK_LIMIT:
            self._send(bytes(data))
        else:
            corked.append(bytes(data))
            self._corked_size = len(data)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._scheduled_flush)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def flush(self) -> None:
        """Hand what is held to the loop's transport now."""
        corked = self._corked
        if not corked:
            return
        data = corked[0] if len(corked) == 1 else b"".join(corked)
        corked.clear()
        self._corked_size = 0
        self._send(data)

    def discard(self) -> None:
        """The connection is lost: what is held can go nowhere."""
        self._corked.clear()
        self._corked_size = 0

    def _send(self, data: bytes) -> None:
        transport = self._transport
        try:
            transport.write(data)
        except RuntimeError:
            # uvloop refuses a write once its handle is closed, where asyncio drops it: held
            # back to the end of the turn, a write may now find the handle closed.
            if not transport.is_closing():
                raise

    # -- what must come after the writes: what is held goes first ------------------------

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        # What was written reaches the loop's transport first, as it did when each write went
        # straight there: the kernel keeps what it took, the abort drops the rest.
        self.flush()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._corked_size

    # -- the rest is the loop's transport's --------------------------------------------

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:  # replaced by the transport's own in __init__
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()
