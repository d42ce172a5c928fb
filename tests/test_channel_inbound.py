"""ChunkReader reads what websockets' StreamReader reads, however the bytes were chunked."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest
from websockets.frames import Close, Frame, Opcode
from websockets.streams import StreamReader

from wschan_cli.channel.inbound import ChunkReader
from wschan_cli.channel.options import ChannelOptions
from wschan_cli.channel.protocol import ChannelProtocol

pytestmark = pytest.mark.timeout(60)

RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: placeholder\r\n\r\n"
)


def _stream() -> bytes:
    """Frames of every length encoding (7-bit, 16-bit, 64-bit), fragments and control frames."""
    frames = [
        Frame(Opcode.TEXT, "héllo".encode()),
        Frame(Opcode.BINARY, b""),
        Frame(Opcode.BINARY, os.urandom(125)),
        Frame(Opcode.BINARY, os.urandom(126)),
        Frame(Opcode.PING, b"p"),
        Frame(Opcode.BINARY, os.urandom(70_000)),
        Frame(Opcode.TEXT, b"frag", fin=False),
        Frame(Opcode.CONT, b"ment", fin=True),
        Frame(Opcode.CLOSE, Close(1000, "bye").serialize()),
    ]
    return b"".join(frame.serialize(mask=False) for frame in frames)


def _read_all(reader: Any, chunks: list[bytes]) -> list[Any]:
    """Drive reads the way websockets' parser does: a line, exact reads, then to EOF."""

    def script() -> Generator[None, None, list[Any]]:
        got: list[Any] = [(yield from reader.read_line(1000))]
        for n in (2, 0, 1, 126, 70_000):
            got.append((yield from reader.read_exact(n)))
        got.append((yield from reader.at_eof()))
        got.append((yield from reader.read_to_eof(10**6)))
        got.append((yield from reader.at_eof()))
        return got

    gen = script()
    next(gen)
    for chunk in chunks:
        reader.feed_data(chunk)
        try:
            gen.send(None)
        except StopIteration as stop:
            return [bytes(x) if isinstance(x, (bytes, bytearray)) else x for x in stop.value]
    reader.feed_eof()
    try:
        while True:
            gen.send(None)
    except StopIteration as stop:
        return [bytes(x) if isinstance(x, (bytes, bytearray)) else x for x in stop.value]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 125, 4096, 65536, 10**6])
def test_same_bytes_as_websockets_reader_at_any_chunking(size: int) -> None:
    data = RESPONSE + _stream()
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    assert _read_all(ChunkReader(), chunks) == _read_all(StreamReader(), chunks)


def test_errors_match_websockets_reader() -> None:
    def outcome(reader: Any, data: bytes, read: Any) -> str:
        gen = read(reader)
        try:
            next(gen)
            reader.feed_data(data)
            gen.send(None)
            reader.feed_eof()
            gen.send(None)
        except StopIteration as stop:
            return f"value {stop.value!r}"
        except Exception as exc:  # the point is which one, with which message
            return f"{type(exc).__name__}: {exc}"
        return "waiting"

    cases = [
        (b"abc", lambda r: r.read_exact(5)),
        (b"a long line", lambda r: r.read_line(4)),
        (b"no newline", lambda r: r.read_line(100)),
        (b"x" * 20, lambda r: r.read_to_eof(10)),
    ]
    for data, read in cases:
        assert outcome(ChunkReader(), data, read) == outcome(StreamReader(), data, read)
    for reader in (ChunkReader(), StreamReader()):
        reader.feed_eof()
        with pytest.raises(EOFError):
            reader.feed_data(b"x")


def test_buffer_is_what_was_fed_and_not_read_as_websockets_reader_says() -> None:
    """The explorer's snapshot of the protocol reads ``reader.buffer``."""
    readers = (ChunkReader(), StreamReader())
    for reader in readers:
        for chunk in (b"abc", b"defg", b"h"):
            reader.feed_data(chunk)
        gen = reader.read_exact(2)
        with pytest.raises(StopIteration):
            next(gen)
    assert bytes(readers[0].buffer) == bytes(readers[1].buffer) == b"cdefgh"


def test_a_payload_inside_one_chunk_is_one_slice_and_a_whole_chunk_is_not_copied() -> None:
    reader = ChunkReader()
    whole = os.urandom(1000)
    reader.feed_data(whole)
    gen = reader.read_exact(1000)
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value is whole  # no copy at all


def test_the_channel_protocol_parses_through_a_chunk_reader() -> None:
    """websockets starts its parser in __init__ with the reader it made; the channel's protocol
    must start it again on the ChunkReader, or the 101 would be read from the old one."""
    from websockets.uri import parse_uri

    proto = ChannelProtocol(parse_uri("ws://h/"), max_size=ChannelOptions().max_size)
    assert isinstance(proto.reader, ChunkReader)
    proto.receive_data(b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n")
    assert [type(e).__name__ for e in proto.events_received()] == ["Response"]
