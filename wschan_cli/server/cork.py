"""What the embedded server writes in one turn of the event loop leaves in one system call.

websockets' connection hands each frame to the loop's transport as it is made, and the
transport sends it at once when its buffer is empty: one ``send()`` system call per echo. A
client that streams (``seq 1000000 | websocat``) puts thousands of frames in one read, the echo
loop answers them all in the same turn, and those system calls were most of the server's CPU
per message (issue 13, item 4). :class:`CorkedTransport` sits between websockets' connection and
the loop's transport and holds the small frames of a turn back until its end: the client core's
rule (``wschan_cli.channel.cork.Cork``, which ``StreamTransport`` uses too).

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

from wschan_cli.channel.cork import Cork

__all__ = ["CorkedTransport"]


class CorkedTransport(Cork, asyncio.Transport):
    """The loop's transport (asyncio's or uvloop's), with the small writes of a turn joined."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        # Kept, not looked up per write: get_running_loop() makes a getpid() system call.
        self._loop = asyncio.get_running_loop()
        self._init_cork()
        # websockets' drain() asks once per message sent: the loop's own method, not a frame
        # of ours around it.
        self.is_closing = transport.is_closing  # type: ignore[method-assign]

    # -- the writes ------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        # websockets may hand a bytearray or a memoryview: held back, it must not change.
        Cork.write(self, bytes(data))

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

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
