"""Where replies are written: standard output's bytes, buffered by wschan itself.

With ``PYTHONUNBUFFERED=1`` (common in containers and CI) ``sys.stdout.buffer`` is the raw file,
so every reply would be one ``write`` system call; streaming a million lines then pays a million
of them. The reply writer buffers here instead and says itself when to flush (``send`` flushes
once the replies that arrived together are written), so output is as prompt as before.
"""

from __future__ import annotations

import io
import sys
from typing import BinaryIO

BUFFER_SIZE = 1 << 16


def buffered_stdout() -> BinaryIO:
    """A buffered binary writer on stdout's file descriptor (left open when it is dropped), or
    ``sys.stdout.buffer`` when stdout has no descriptor (a test's in-memory stream)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return sys.stdout.buffer
    sys.stdout.flush()  # anything already written through sys.stdout goes first
    return open(fd, "wb", buffering=BUFFER_SIZE, closefd=False)
