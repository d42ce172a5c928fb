"""The channel's own frame serializer: what websockets' server side parses back, bit for bit."""

from __future__ import annotations

import os

import pytest
from websockets.exceptions import ProtocolError
from websockets.frames import Close, Frame, Opcode
from websockets.streams import StreamReader
from websockets.uri import parse_uri

from wschan_cli.channel import outbound
from wschan_cli.channel.protocol import ChannelProtocol

pytestmark = pytest.mark.timeout(60)


def _parse_as_server(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=True)  # a server requires masked frames
    try:
        next(parser)
    except StopIteration as stop:
        assert reader.buffer == b""  # nothing left over: the length in the header was right
        frame: Frame = stop.value
        return frame
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 70_000])
@pytest.mark.parametrize("fin", [True, False])
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY, Opcode.CONT])
def test_data_frames_parse_back_unchanged(length: int, fin: bool, opcode: Opcode) -> None:
    frame = Frame(opcode, os.urandom(length), fin)
    key = os.urandom(4)
    wire = outbound.serialize(frame, key)
    assert wire[2 + (0 if length < 126 else 2 if length < 65536 else 8) :][:4] == key
    assert _parse_as_server(wire) == frame


def test_control_frames_parse_back_unchanged() -> None:
    for frame in (
        Frame(Opcode.PING, b"ping"),
        Frame(Opcode.PONG, b""),
        Frame(Opcode.CLOSE, Close(1000, "bye").serialize()),
    ):
        assert _parse_as_server(outbound.serialize(frame, os.urandom(4))) == frame


def test_mask_keys_are_four_fresh_random_bytes_each() -> None:
    keys = outbound.MaskKeys()
    drawn = [keys.next() for _ in range(3000)]  # crosses several pools
    assert all(len(key) == 4 for key in drawn)
    assert len(set(drawn)) > 2900  # 2**32 values: repeats are rare, a stuck pool is not


def test_the_protocol_still_checks_frames_and_sends_through_the_serializer() -> None:
    proto = ChannelProtocol(parse_uri("ws://h/"))
    proto.state = proto.state.__class__.OPEN
    with pytest.raises(ProtocolError):
        proto.send_ping(b"x" * 126)  # a control frame over 125 bytes (RFC 6455 5.5)
    proto.send_binary(b"hello")
    (wire,) = proto.data_to_send()
    assert _parse_as_server(wire) == Frame(Opcode.BINARY, b"hello")
