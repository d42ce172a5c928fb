"""Small writes of one turn of the event loop leave together (issue 13): a burst of a thousand
small frames (``seq 1000000 | wschan send``, or the embedded server echoing them) makes a few
system calls and full segments, not a thousand. The rule, written once, for the client's
``StreamTransport`` and the embedded server's ``CorkedTransport``.

A frame of ``CORK_LIMIT`` or more, or the one that brings what is held to ``CORK_LIMIT``, goes
out at once (after what is held); the rest at the end of the turn, before the loop next polls,
or with whatever must come after them (close, abort, EOF: the class using ``Cork`` flushes
first). Flow control is the transport's, unchanged: what is held is bounded by ``CORK_LIMIT``,
on top of the transport's own buffer.
"""

from __future__ import annotations

from typing import Any

#: Frames smaller than this, written in one turn of the event loop, leave in one system call;
#: what is held back never exceeds it.
CORK_LIMIT = 64 * 1024


class Cork:
    """Mixin: ``write`` holds small frames back until the end of the loop's turn. The class
    using it sets ``_transport`` (the loop's transport) and ``_loop``, and calls
    ``_init_cork``."""

    _transport: Any
    _loop: Any

    def _init_cork(self) -> None:
        self._corked: list[bytes] = []  # written, not yet handed to the loop's transport
        self._corked_size = 0
        self._flush_scheduled = False

    def write(self, data: bytes) -> None:
        corked = self._corked
        if corked:
            corked.append(data)
            self._corked_size += len(data)
            if self._corked_size >= CORK_LIMIT:
                self.flush()
        elif len(data) >= CORK_LIMIT:
            self._send(data)
        else:
            corked.append(data)
            self._corked_size = len(data)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._scheduled_flush)

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
            # uvloop refuses a write once its handle is closed, where asyncio drops it
            # silently; so does the cork on either loop (a write held to the end of the turn
            # may find the handle closed): the next drain() reports the closed connection
            # (deinit's Close frame after terminate closed it: channel-model.md).
            if not transport.is_closing():
                raise
