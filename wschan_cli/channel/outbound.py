"""A client's frames on the wire (RFC 6455 5.2, 5.3), serialized with fewer copies and calls.

websockets builds each frame in a ``BytesIO`` (header, key, masked payload, then a copy out)
and draws each masking key with its own ``getrandom`` system call. Here the header is packed in
one call, the masked payload is joined to it once, and keys are cut from a pool filled by the
OS's CSPRNG: RFC 6455 10.3 asks that a key be unpredictable from the frames sent before it,
which independent random bytes are whether drawn 4 or 4096 at a time.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from websockets.frames import Frame
from websockets.typing import BytesLike

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets built without its C extension
    from websockets.utils import apply_mask

_SHORT = struct.Struct("!BB").pack
_MEDIUM = struct.Struct("!BBH").pack
_LONG = struct.Struct("!BBQ").pack
_MASKED = 0x80  # the MASK bit of the second byte: every client frame is masked (5.3)
_POOL = 4096  # bytes of keys drawn per system call


class MaskKeys:
    """Masking keys, 4 random bytes each, cut from a pool filled by ``random`` (default
    ``os.urandom``; the channel passes the one its module sees, which the explorer fixes)."""

    def __init__(self, random: Callable[[int], bytes] = os.urandom) -> None:
        self._random = random
        self._pool = b""
        self._pos = 0

    def next(self) -> bytes:
        pos = self._pos
        if pos + 4 > len(self._pool):
            self._pool, pos = self._random(_POOL), 0
        self._pos = pos + 4
        return self._pool[pos : pos + 4]


def serialize(frame: Frame, key: bytes) -> bytes:
    """``frame`` as a client sends it, masked with ``key``. The caller has checked the frame
    (``Frame.check``): no reserved bit set, control frames short and final."""
    return frame_bytes((0x80 if frame.fin else 0) | frame.opcode, frame.data, key)


def frame_bytes(head1: int, data: BytesLike, key: bytes) -> bytes:
    """A client frame whose first byte is ``head1`` (FIN, reserved bits, opcode), payload
    ``data`` masked with ``key``."""
    length = len(data)
    if length < 126:
        header = _SHORT(head1, _MASKED | length)
    elif length < 65536:
        header = _MEDIUM(head1, _MASKED | 126, length)
    else:
        header = _LONG(head1, _MASKED | 127, length)
    return b"".join((header, key, apply_mask(data, key)))
