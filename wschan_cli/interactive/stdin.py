"""Stdin, read in a thread and handed to the event loop as batches of raw messages, in order.

Used by ``wschan send`` and the ``connect`` bridge. A thread reads, so pipes, files and terminals
behave alike and the loop never blocks on stdin. Bounded: the thread blocks when the loop is
behind (a queue of ``QUEUE_BATCHES`` batches). Splitting is linear in the input: the delimiter
is searched for only in bytes not searched before, so a line of any length costs its length.

The thread never prints: when the loop stops first (Ctrl-C, a timeout, a write timeout), its
pending hand-over is cancelled and the thread just ends (a daemon thread: it does not hold the
exit).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys
import threading

#: Batches the loop may be behind before the thread waits.
QUEUE_BATCHES = 64
#: Bytes read from stdin at a time.
READ_SIZE = 1 << 16

Batch = list[bytes] | OSError | None  # messages, a read error, or None at end of input


class StdinReader:
    """``queue`` yields batches of messages (split at ``delimiter``; the whole input as one
    message when ``whole``), then None at end of input, or the OSError that stopped the read."""

    def __init__(self, delimiter: bytes, *, whole: bool = False) -> None:
        self.delimiter = delimiter
        self.whole = whole
        self.strip_cr = delimiter == b"\n"  # CRLF lines lose their CR
        self.queue: asyncio.Queue[Batch] = asyncio.Queue(QUEUE_BATCHES)
        self.count = 0  # messages taken by the consumer (for "stdin message N")

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._run, args=(loop,), name="stdin", daemon=True).start()

    # ------------------------------------------------------------------ the thread

    def _put(self, loop: asyncio.AbstractEventLoop, item: Batch) -> bool:
        """Hand ``item`` to the loop, waiting while the queue is full; False once the loop is
        gone (closed, or the hand-over cancelled by its shutdown)."""
        put = self.queue.put(item)
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
            fd = sys.stdin.fileno()
        except (AttributeError, ValueError, OSError):
            self._put(loop, None)
            return
        try:
            self._read(fd, loop)
        except OSError as exc:
            self._put(loop, exc)
        except BaseException:  # a thread must not print a traceback (cli.md)
            return

    def _read(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        buffer = bytearray()
        scanned = 0  # bytes of ``buffer`` already searched for the delimiter
        delimiter, width = self.delimiter, len(self.delimiter)
        while chunk := os.read(fd, READ_SIZE):
            buffer += chunk
            if self.whole:
                continue
            messages: list[bytes] = []
            start = 0
            # A delimiter may straddle two reads: search again its last width-1 bytes.
            at = buffer.find(delimiter, max(scanned - width + 1, 0))
            while at >= 0:
                messages.append(self._message(buffer, start, at))
                start = at + width
                at = buffer.find(delimiter, start)
            if messages:
                del buffer[:start]
                if not self._put(loop, messages):
                    return
            scanned = len(buffer)
        if self.whole:
            last = [bytes(buffer)]
        elif buffer:
            last = [self._message(buffer, 0, len(buffer))]
        else:
            last = []
        if last and not self._put(loop, last):
            return
        self._put(loop, None)

    def _message(self, buffer: bytearray, start: int, end: int) -> bytes:
        if self.strip_cr and end > start and buffer[end - 1] == 0x0D:
            end -= 1
        return bytes(buffer[start:end])
