"""Messages: one received, as delivered, and one to send, as it goes on the wire (a whole
frame, fragments, or a stream of chunks of unknown length)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import NamedTuple


class Message(NamedTuple):
    """One inbound message, delivered to ``process``. A named tuple: immutable, and the reader
    makes one per message with the C tuple constructor (a frozen dataclass's __init__ cost
    as much as a tenth of a small message's whole receive path)."""

    type: str  # "text" or "binary"
    data: str | bytes


def fragments(data: bytes, fragment_size: int | None) -> bytes | list[bytes]:
    """One outgoing data message as it goes on the wire: ``data`` itself when it fits in one
    frame (the common case: no slicing, no copy, no container), else its fragments."""
    if fragment_size is None:
        return data
    if fragment_size <= 0:
        raise ValueError("fragment_size must be positive")
    if len(data) <= fragment_size:
        return data
    return [data[i : i + fragment_size] for i in range(0, len(data), fragment_size)]


@dataclass(frozen=True, slots=True)
class Stream:
    """One outgoing data message of unknown length: its first piece (read before taking the
    token), the source of the rest, and whether it is text."""

    first: bytes
    rest: AsyncIterator[bytes | str]
    text: bool


def chunk_bytes(chunk: bytes | str) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode()
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"send_stream needs bytes or str chunks, not {type(chunk).__name__}")
