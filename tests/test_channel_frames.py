"""Inbound fragmented text: UTF-8 checked fragment by fragment (RFC 6455 8.1), on a raw peer."""

from __future__ import annotations

import pytest

from wschan_cli.channel import Channel, CloseInfo, Message, What

from .helpers import QUIET, Recorder, frame, is_, run
from .test_channel_cancel import Peer, close_code

TEXT, CONT = 0x1, 0x0


async def until_closed(burst: bytes) -> tuple[Peer, list[Message], list[CloseInfo]]:
    """Send "go", get ``burst`` back from a recording peer, wait for the close, deinit."""
    async with Peer(answers={b"go": burst}) as peer:
        rec, closes, got = Recorder(), [], []
        ch = Channel(peer.url, options=QUIET, on_close=closes.append, process=got.append)
        ch.subscribe(rec)
        await ch.send("go")
        await rec.wait_for(is_(What.CLOSED))
        await ch.deinit()
    return peer, got, closes


def test_invalid_utf8_fails_at_the_first_bad_fragment_not_at_the_end() -> None:
    # The last fragment never comes: only a fragment-by-fragment check can fail this message.
    burst = frame(TEXT, b"ok ", fin=False) + frame(CONT, b"\xc3\x28", fin=False)

    async def main() -> None:
        peer, got, closes = await until_closed(burst)
        assert got == []
        assert [op for op, _ in peer.data(0)] == [TEXT, 0x8]
        assert close_code(peer.data(0)[-1][1]) == 1007
        assert closes == [
            CloseInfo(1007, "invalid UTF-8 in fragment 2 of a text message", "local", False)
        ]

    run(main(), timeout=5)


@pytest.mark.parametrize(
    ("pieces", "ok"),
    [
        ([b"caf", b"\xc3", b"\xa9!"], True),  # a code point split across fragments is fine
        ([b"a", b"\xe2\x82"], False),  # the message ends inside a code point
        ([b"\xed\xa0\x80", b"x"], False),  # a surrogate is not UTF-8
    ],
)
def test_fragmented_text_is_decoded_across_fragment_boundaries(
    pieces: list[bytes], ok: bool
) -> None:
    last = len(pieces) - 1
    burst = b"".join(
        frame(CONT if i else TEXT, piece, fin=i == last) for i, piece in enumerate(pieces)
    )

    async def main() -> None:
        async with Peer(answers={b"go": burst}) as peer:
            rec, got = Recorder(), []
            ch = Channel(peer.url, options=QUIET, process=got.append)
            ch.subscribe(rec)
            await ch.send("go")
            if ok:
                await rec.wait_for(is_(What.FRAME_IN, fin=True))
            else:
                await rec.wait_for(is_(What.CLOSED))
            await ch.deinit()
            assert got == ([Message("text", b"".join(pieces).decode())] if ok else [])
            assert close_code(peer.data(0)[-1][1]) == (1000 if ok else 1007)

    run(main(), timeout=5)


def test_a_close_between_fragments_is_echoed_and_the_unfinished_message_dropped() -> None:
    """RFC 6455 5.4: control frames may come between fragments, a Close too (Autobahn 7.1.5)."""
    burst = frame(TEXT, b"half", fin=False) + frame(0x8, b"\x03\xe8bye")

    async def main() -> None:
        peer, got, closes = await until_closed(burst)
        assert got == []
        assert peer.data(0) == [(TEXT, b"go"), (0x8, b"\x03\xe8bye")]  # the echo, not 1002
        assert closes == [CloseInfo(1000, "bye", "peer", True)]

    run(main(), timeout=5)


def test_a_whole_message_read_between_two_fragments_fails_the_connection_with_1002() -> None:
    """The reader takes one-frame messages straight from the bytes only between messages:
    between two fragments, a FIN text frame is websockets' protocol error (RFC 6455 5.4),
    even when it arrives in a read of its own."""

    async def main() -> None:
        answers = {b"go": frame(TEXT, b"half", fin=False), b"next": frame(TEXT, b"whole")}
        async with Peer(answers=answers) as peer:
            rec, closes, got = Recorder(), [], []
            ch = Channel(peer.url, options=QUIET, on_close=closes.append, process=got.append)
            ch.subscribe(rec)
            await ch.send("go")
            await rec.wait_for(is_(What.FRAME_IN, fin=False))  # "half" is read and parsed
            await ch.send("next")
            await rec.wait_for(is_(What.CLOSED))
            await ch.deinit()
        assert got == []
        assert close_code(peer.data(0)[-1][1]) == 1002
        assert [(c.code, c.by) for c in closes] == [(1002, "local")]

    run(main(), timeout=5)
