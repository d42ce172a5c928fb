"""The received bytes, as websockets' frame parser reads them, copied once.

websockets' own ``StreamReader`` appends every chunk the transport delivers to one bytearray
(a copy) and slices each frame's payload out of it (a second copy), and the channel then made
the payload ``bytes`` for ``Message`` (a third). ``ChunkReader`` has the same interface but
keeps the chunks as they came: a read inside one chunk is one slice of it, a read of exactly
a whole chunk is that chunk (no copy), and a read across chunks joins exactly the bytes asked
for, once. Payloads come out as ``bytes``, so the channel delivers them as they are. The
parser (framing, limits, errors, the closing handshake) stays websockets' own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from types import CodeType
from typing import Any


class ChunkReader:
    """websockets' ``StreamReader`` interface (generator-based reads) over a deque of chunks."""

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._pos = 0  # read offset into the first chunk
        self._size = 0  # bytes fed and not yet read
        self.eof = False

    @property
    def buffer(self) -> bytes:
        """What was fed and not yet read, as one value (for snapshots, not for the hot path:
        it joins the chunks)."""
        if not self._chunks:
            return b""
        return b"".join([memoryview(self._chunks[0])[self._pos :], *list(self._chunks)[1:]])

    def feed_data(self, data: bytes | bytearray) -> None:
        if self.eof:
            raise EOFError("stream ended")
        if data:
            self._chunks.append(bytes(data))  # bytes of bytes is the same object: no copy
            self._size += len(data)

    def feed_eof(self) -> None:
        if self.eof:
            raise EOFError("stream ended")
        self.eof = True

    def discard(self) -> None:
        self._chunks.clear()
        self._pos = self._size = 0

    def at_eof(self) -> Generator[None, None, bool]:
        while True:
            if self._size:
                return False
            if self.eof:
                return True
            yield

    def read_exact(self, n: int) -> Generator[None, None, bytes]:
        while self._size < n:
            if self.eof:
                raise EOFError(f"stream ends after {self._size} bytes, expected {n} bytes")
            yield
        if n:  # the common case, inline: inside the first chunk, one slice
            head, pos = self._chunks[0], self._pos
            end = pos + n
            if end < len(head):
                self._pos = end
                self._size -= n
                return head[pos:end]
        return self._take(n)

    def read_line(
        self, m: int, too_long_exc_type: type[Exception] = RuntimeError
    ) -> Generator[None, None, bytes]:
        """A LF-terminated line of at most ``m`` bytes (the HTTP response head only)."""
        while True:
            self._coalesce()
            if self._chunks:
                end = self._chunks[0].find(b"\n", self._pos)
                if end >= 0:
                    n = end + 1 - self._pos
                    break
            if self._size > m:
                raise too_long_exc_type(f"read {self._size} bytes, expected no more than {m} bytes")
            if self.eof:
                raise EOFError(f"stream ends after {self._size} bytes, before end of line")
            yield
        if n > m:
            raise too_long_exc_type(f"read {n} bytes, expected no more than {m} bytes")
        return self._take(n)

    def read_to_eof(
        self, m: int, too_long_exc_type: type[Exception] = RuntimeError
    ) -> Generator[None, None, bytes]:
        while not self.eof:
            if self._size > m:
                raise too_long_exc_type(f"read {self._size} bytes, expected no more than {m} bytes")
            yield
        return self._take(self._size)

    def _coalesce(self) -> None:
        if len(self._chunks) > 1:
            self._chunks = deque([self._take(self._size)])
            self._size = len(self._chunks[0])

    def _take(self, n: int) -> bytes:
        """The next ``n`` bytes (all fed already), copied at most once."""
        if not n:
            return b""
        chunks, pos = self._chunks, self._pos
        head = chunks[0]
        end = pos + n
        self._size -= n
        if end < len(head):
            self._pos = end
            return head[pos:end]
        chunks.popleft()
        self._pos = 0
        if end == len(head):
            return head[pos:] if pos else head
        parts: list[bytes | memoryview] = [memoryview(head)[pos:] if pos else head]
        need = end - len(head)
        while need:
            chunk = chunks[0]
            if len(chunk) <= need:
                parts.append(chunks.popleft())
                need -= len(chunk)
            else:
                parts.append(memoryview(chunk)[:need])
                self._pos = need
                need = 0
        return b"".join(parts)


#: First bytes of the frames ``whole_messages`` takes: FIN, no reserved bit, text or binary.
TEXT_WHOLE, BINARY_WHOLE = 0x81, 0x82


def whole_messages(data: bytes, max_size: int | None) -> tuple[list[tuple[int, bytes]], int]:
    """The complete one-frame messages at the start of ``data`` (which must start at a frame
    boundary, between messages): each as (first byte, payload), and the offset of the first
    byte not taken.

    Only what websockets' parser would turn into a FIN text or binary frame with nothing to
    check: unmasked (the server does not mask, RFC 6455 5.1), reserved bits clear, at most
    ``max_size`` bytes. It stops at the first other frame (control, fragment, masked, reserved
    bits, too big) or incomplete one, which the parser then reads from the offset, with its
    own checks and errors. A payload inside ``data`` is one slice of it, as with ChunkReader.
    """
    frames: list[tuple[int, bytes]] = []
    pos, end = 0, len(data)
    limit = max_size if max_size is not None else 1 << 64
    while end - pos >= 2:
        first = data[pos]
        if first != TEXT_WHOLE and first != BINARY_WHOLE:
            break
        length = data[pos + 1]  # 128 and up: the mask bit is set
        if length < 126:
            start = pos + 2
        elif length == 126:
            start = pos + 4
            length = int.from_bytes(data[pos + 2 : start], "big")
        elif length == 127:
            start = pos + 10
            length = int.from_bytes(data[pos + 2 : start], "big")
        else:
            break
        stop = start + length  # past the end if the length itself is cut short
        if length > limit or stop > end:
            break
        frames.append((first, data[start:stop]))
        pos = stop
    return frames, pos


def at_message_boundary(parser: Any, parse: CodeType) -> bool:
    """Whether websockets' parser generator waits for the first byte of a frame in its main
    loop (``parse``'s code: ``Protocol.parse``): the position ChunkReader's ``at_eof`` holds
    it at when every byte fed so far made whole frames."""
    outer, inner = None, parser  # generators, down their ``yield from`` chain
    while (deeper := inner.gi_yieldfrom) is not None:
        outer, inner = inner, deeper
    return (
        inner.gi_code is ChunkReader.at_eof.__code__
        and outer is not None
        and outer.gi_code is parse
    )
