"""Input (stdin or a file), read in a thread and handed to the event loop as batches of raw
messages, in order. Used by ``wschan send`` and the ``connect`` bridge.

A thread reads, so pipes, files, devices and terminals behave alike and the loop never blocks on
input. Everything is bounded:

- the thread waits when the loop is ``QUEUE_BATCHES`` batches behind, a batch holding at most
  ``BATCH_MESSAGES`` messages;
- a message longer than ``STREAM_AFTER`` bytes (a long line, all of stdin with ``whole``, a
  file) is not gathered: it is handed over at once as a ``StreamedMessage`` whose chunks follow
  while it is sent (a fragmented message, ``Channel.send_stream``), ``STREAM_CHUNKS`` chunks
  ahead at most. Memory stays constant whatever the input (``/dev/zero`` included);
- splitting is linear: the delimiter is searched for only in bytes not searched before.

The thread never prints: when the loop stops first (Ctrl-C, a timeout, a write timeout), its
pending hand-over is cancelled and the thread just ends (a daemon thread: it does not hold the
exit).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

#: Batches the loop may be behind before the thread waits.
QUEUE_BATCHES = 64
#: Messages in one batch at most: one read of tiny lines (64 KiB of "a\n") is 32,768 objects,
#: so the queue is bounded in messages too, not only in bytes read.
BATCH_MESSAGES = 4096
#: Bytes read at a time.
READ_SIZE = 1 << 16
#: A message still without its delimiter after this many bytes is streamed.
STREAM_AFTER = 1 << 20
#: Chunks of a streamed message read ahead of the sending.
STREAM_CHUNKS = 16


class StreamedMessage:
    """A message read while it is sent: iterate over it for its raw chunks (an OSError from
    the read is raised there)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | OSError | None] = asyncio.Queue(STREAM_CHUNKS)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self.queue.get()) is not None:
            if isinstance(chunk, OSError):
                raise chunk
            yield chunk


Batch = list[bytes | StreamedMessage] | OSError | None  # messages, a read error, end of input


class InputReader:
    """``queue`` yields batches of messages split at ``delimiter`` (the whole input as one
    streamed message when ``whole``), then None at end of input, or the OSError that stopped
    the read. ``fd`` is read from, and closed at the end when ``close``."""

    def __init__(
        self, fd: int, delimiter: bytes = b"\n", *, whole: bool = False, close: bool = False
    ) -> None:
        self.fd = fd
        self.delimiter = delimiter
        self.whole = whole
        self.close = close
        self.strip_cr = delimiter == b"\n"  # CRLF lines lose their CR
        self.queue: asyncio.Queue[Batch] = asyncio.Queue(QUEUE_BATCHES)
        self.count = 0  # messages taken by the consumer (for "stdin message N")

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._run, args=(loop,), name="input", daemon=True).start()

    # ------------------------------------------------------------------ the thread

    @staticmethod
    def _put(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], item: Any) -> bool:
        """Hand ``item`` to the loop, waiting while ``queue`` is full; False once the loop is
        gone (closed, or the hand-over cancelled by its shutdown)."""
        put = queue.put(item)
        try:
            future = asyncio.run_coroutine_threadsafe(put, loop)
        except RuntimeError:  # the loop is closed: the command is ending
            put.close()
            return False
        try:
            future.result()
        # The thread's future is a concurrent.futures.Future: its CancelledError is not
        # asyncio's (they are distinct classes in Python 3.11).
        except (concurrent.futures.CancelledError, asyncio.CancelledError, RuntimeError):
            return False
        return True

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._read(loop)
        except OSError as exc:
            self._put(loop, self.queue, exc)
        except BaseException:  # a thread must not print a traceback (cli.md)
            return
        finally:
            if self.close:
                os.close(self.fd)

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        def batch(items: list[bytes | StreamedMessage]) -> bool:
            return self._put(loop, self.queue, items)

        def chunk(item: bytes | OSError | None) -> bool:
            assert stream is not None
            return self._put(loop, stream.queue, item)

        buffer = bytearray()
        scanned = 0  # bytes of ``buffer`` already searched for the delimiter
        delimiter, width = self.delimiter, len(self.delimiter)
        # Bytes held back from a streamed line: a delimiter's first width-1 bytes, or the CR
        # before a newline, may end it.
        hold = width - 1 + self.strip_cr
        stream: StreamedMessage | None = None
        if self.whole:
            stream = StreamedMessage()
            if not batch([stream]):
                return
        while data := os.read(self.fd, READ_SIZE):
            if self.whole:
                if not chunk(data):
                    return
                continue
            buffer += data
            messages: list[bytes | StreamedMessage] = []
            start = 0
            # A delimiter may straddle two reads: search its last width-1 bytes again.
            at = buffer.find(delimiter, max(scanned - width + 1, 0))
            while at >= 0:
                body = self._message(buffer, start, at)
                if stream is not None:  # the streamed line ends here
                    if (body and not chunk(body)) or not chunk(None):
                        return
                    stream = None
                else:
                    messages.append(body)
                start = at + width
                at = buffer.find(delimiter, start)
            del buffer[:start]
            for first in range(0, len(messages), BATCH_MESSAGES):
                if not batch(messages[first : first + BATCH_MESSAGES]):
                    return
            if stream is None and len(buffer) >= STREAM_AFTER:
                stream = StreamedMessage()
                if not batch([stream]):
                    return
            if stream is not None and len(buffer) > hold:
                cut = len(buffer) - hold
                if not chunk(bytes(buffer[:cut])):
                    return
                del buffer[:cut]
            scanned = len(buffer)
        if stream is not None:
            rest = self._message(buffer, 0, len(buffer))
            if (rest and not chunk(rest)) or not chunk(None):
                return
        elif buffer and not batch([self._message(buffer, 0, len(buffer))]):
            return
        self._put(loop, self.queue, None)

    def _message(self, buffer: bytearray, start: int, end: int) -> bytes:
        if self.strip_cr and end > start and buffer[end - 1] == 0x0D:
            end -= 1
        return bytes(buffer[start:end])


def stdin_reader(delimiter: bytes = b"\n", *, whole: bool = False) -> InputReader:
    """A reader of this process's stdin (empty when there is none, as under some launchers)."""
    import sys

    try:
        return InputReader(sys.stdin.fileno(), delimiter, whole=whole)
    except (AttributeError, ValueError, OSError):
        return InputReader(os.open(os.devnull, os.O_RDONLY), delimiter, whole=whole, close=True)
