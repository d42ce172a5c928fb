"""ChunkReader reads what websockets' StreamReader reads, however the bytes were chunked."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest
from websockets.frames import Close, Frame, Opcode
from websockets.streams import StreamReader

from wschan_cli.channel import outbound
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


# ---------------------------------------------------------------------- whole_messages


def _open_protocol(max_size: int | None) -> Any:
    """The channel's protocol, upgraded (OPEN), its parser waiting for the first frame."""
    import base64
    import hashlib

    from websockets.uri import parse_uri

    from .helpers import GUID

    proto = ChannelProtocol(parse_uri("ws://h/"), max_size=max_size)
    request = proto.connect()
    proto.send_request(request)
    key = request.headers["Sec-WebSocket-Key"].encode()
    accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest())
    proto.receive_data(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    assert [type(e).__name__ for e in proto.events_received()] == ["Response"]
    proto.data_to_send()
    proto._keys = outbound.MaskKeys(bytes)  # zero masks: two protocols write alike
    return proto


def _parsed(proto: Any, data: bytes) -> tuple[list[tuple[int, bytes, bool]], Any]:
    if data:
        proto.receive_data(data)
    frames = [(int(e.opcode), bytes(e.data), e.fin) for e in proto.events_received()]
    return frames, proto.parser_exc


def _server_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    from .helpers import frame

    data = bytearray(frame(opcode, payload, fin=fin))
    data[0] |= rsv
    return bytes(data)


MASKED = bytes([0x81, 0x80 | 3]) + b"\x00\x00\x00\x00" + b"abc"

WHOLE_STREAMS = {
    "small text and binary": b"".join(_server_frame(1 + i % 2, str(i).encode()) for i in range(50)),
    "16-bit and 64-bit lengths": _server_frame(2, os.urandom(126))
    + _server_frame(1, b"x" * 70_000)
    + _server_frame(2, b""),
    "a ping between": _server_frame(1, b"a") + _server_frame(9, b"p") + _server_frame(1, b"b"),
    "a fragmented message": _server_frame(1, b"a")
    + _server_frame(1, b"fr", fin=False)
    + _server_frame(0, b"ag")
    + _server_frame(2, b"c"),
    "a continuation out of place": _server_frame(1, b"a") + _server_frame(0, b"x"),
    "masked": _server_frame(1, b"a") + MASKED,
    "a reserved bit": _server_frame(1, b"a") + _server_frame(1, b"b", rsv=0x40),
    "an unknown opcode": _server_frame(2, b"a") + _server_frame(3, b"b"),
    "too big": _server_frame(1, b"a") + _server_frame(2, b"y" * 2000) + _server_frame(1, b"b"),
    "a close then more": _server_frame(1, b"a")
    + _server_frame(8, Close(1000, "bye").serialize())
    + _server_frame(1, b"after"),
    "not UTF-8 (the channel's check, not the parser's)": _server_frame(1, b"\xff\xfe"),
    "a header cut short": _server_frame(1, b"a") + b"\x81",
    "a 16-bit length cut short": _server_frame(1, b"a") + b"\x82\x7e\x01",
    "a 64-bit length cut short": _server_frame(1, b"a") + b"\x82\x7f\x00\x00",
    "a payload cut short": _server_frame(1, b"a") + _server_frame(2, b"b" * 300)[:200],
}


@pytest.mark.parametrize("name", sorted(WHOLE_STREAMS))
def test_whole_messages_and_the_parser_after_them_read_what_the_parser_reads_alone(
    name: str,
) -> None:
    """Taking the one-frame messages off the front and feeding the parser the rest gives the
    same frames, the same error, and leaves the protocol exactly where the parser alone does
    (its explorer snapshot: state, parser position, buffer, queued writes)."""
    from wschan_cli.channel.inbound import at_message_boundary, whole_messages
    from wschan_cli.channel.protocol import protocol_snapshot
    from wschan_cli.channel.reader import _PARSE_CODE

    data = WHOLE_STREAMS[name]
    max_size = 1024
    alone = _open_protocol(max_size)
    assert at_message_boundary(alone.parser, _PARSE_CODE)
    expected, expected_error = _parsed(alone, data)

    proto = _open_protocol(max_size)
    taken, offset = whole_messages(data, max_size)
    frames = [(first & 0x0F, payload, True) for first, payload in taken]
    rest, error = _parsed(proto, data[offset:])
    assert frames + rest == expected
    assert repr(error) == repr(expected_error)
    assert protocol_snapshot(proto) == protocol_snapshot(alone)
    assert name != "small text and binary" or offset == len(data)  # the point: all taken


def test_whole_messages_is_at_a_boundary_only_between_frames() -> None:
    from wschan_cli.channel.inbound import at_message_boundary
    from wschan_cli.channel.reader import _PARSE_CODE

    proto = _open_protocol(None)
    proto.receive_data(b"\x82\x05ab")  # a header, part of the payload: read, not framed
    assert not at_message_boundary(proto.parser, _PARSE_CODE)
    proto.receive_data(b"cde")
    assert at_message_boundary(proto.parser, _PARSE_CODE)
    proto.receive_data(b"\x81")  # one byte of the next header
    assert not at_message_boundary(proto.parser, _PARSE_CODE)
    proto.receive_data(b"\x00" + _server_frame(8, b""))  # a Close: the rest is discarded
    assert not at_message_boundary(proto.parser, _PARSE_CODE)
