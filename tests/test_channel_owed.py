"""D10: control replies the protocol owes come first, on the wire of a hand-written peer.

A Pong or Close echo reaches the wire before any frame whose send started after the frame that
caused it was read (RFC 6455 5.5.2, Autobahn 5.6/5.19); a received Close is echoed even when
deinit or terminate holds the token next (5.5.1); after failing the connection nothing but the
Close goes out (7.1.7).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import pytest

from wschan_cli.channel import Channel, CloseInfo, Event, Message, What

from .helpers import QUIET, Recorder, frame, is_, open_watched, park_send, run
from .test_channel_cancel import Peer, close_code

PING, PONG, CLOSE, TEXT, CONT = 0x9, 0xA, 0x8, 0x1, 0x0


def test_d10_a_pong_owed_between_fragments_goes_out_before_the_echo_process_starts() -> None:
    """The Autobahn 5.6 shape: fragment, Ping, fragment in one segment; ``process`` starts the
    echo of the message; the peer must see the Pong first."""
    burst = frame(TEXT, b"frag", fin=False) + frame(PING, b"ping!") + frame(CONT, b"ment")

    async def main() -> None:
        async with Peer(answers={b"go": burst}) as peer:
            echoes: list[asyncio.Future[None]] = []
            ch: Channel

            def process(message: Message) -> None:
                echoes.append(asyncio.ensure_future(ch.send(message.data)))

            ch = Channel(peer.url, options=QUIET, process=process)
            await ch.send("go")
            while not echoes:
                await asyncio.sleep(0)
            await echoes[0]
            await ch.deinit()
            assert peer.data(0) == [
                (TEXT, b"go"),
                (PONG, b"ping!"),
                (TEXT, b"fragment"),
                (CLOSE, b"\x03\xe8"),
            ]

    run(main())


def test_d10_a_pong_owed_while_a_stream_holds_the_token_goes_out_between_its_fragments() -> None:
    async def main() -> None:
        async with Peer(answers={b"a": frame(PING, b"p")}) as peer:
            rec = Recorder()
            ch = Channel(peer.url, options=QUIET)
            ch.subscribe(rec)
            await ch.open()

            async def parts():  # type: ignore[no-untyped-def]
                yield b"a"
                yield b"b"  # frame "a" goes out once this is read; the peer pings back
                await rec.wait_for(is_(What.FRAME_IN, opcode="ping"))
                yield b"c"

            await ch.send_stream(parts())
            await ch.deinit()
            assert [op for op, _ in peer.data(0)] == [0x2, PONG, CONT, CONT, CLOSE]

    run(main())


@pytest.mark.parametrize("holder", ["deinit", "terminate"])
def test_d10_a_received_close_is_echoed_even_when_shutdown_takes_the_token_first(
    holder: str,
) -> None:
    async def main() -> None:
        close = frame(CLOSE, b"\x0f\xa1bye")  # 4001
        async with Peer(answers={b"go": close}) as peer:
            rec = Recorder()
            ch = Channel(peer.url, options=QUIET)
            ch.subscribe(rec)
            later: list[asyncio.Future[None]] = []

            def hook(event: Event) -> None:
                if event.what is What.FRAME_IN and event.detail["opcode"] == "close":
                    # Inside the reader's step, before it queues the echo's auto reply.
                    if holder == "deinit":
                        later.append(asyncio.ensure_future(ch.deinit()))
                    else:
                        ch.end_reading()  # the reader ends next: terminate runs first

            rec.hooks.append(hook)
            await ch.send("go")
            await rec.wait_for(is_(What.CLOSED))
            for task in later:
                await task
            await ch.deinit()
            first_taker = next(
                e.party.kind for e in rec.events if e.what is What.TAKE and e.seq > _close_in(rec)
            )
            assert first_taker == holder
            assert peer.data(0)[-1] == (CLOSE, b"\x0f\xa1bye")  # the echo reached the peer

    run(main())


def _close_in(rec: Recorder) -> int:
    return next(
        e.seq for e in rec.events if e.what is What.FRAME_IN and e.detail["opcode"] == "close"
    )


def test_d10_after_failing_with_1007_nothing_but_the_close_is_written() -> None:
    burst = frame(TEXT, b"\xff\xfe") + frame(PING, b"late")

    async def main() -> None:
        async with Peer(answers={b"go": burst}) as peer:
            rec = Recorder()
            ch = Channel(peer.url, options=QUIET)
            ch.subscribe(rec)
            await ch.send("go")
            await rec.wait_for(is_(What.CLOSED))
            await ch.deinit()
            sent = peer.data(0)
            assert [op for op, _ in sent] == [TEXT, CLOSE]
            assert close_code(sent[-1][1]) == 1007

    run(main())


def test_the_close_timeout_starts_when_our_close_echo_is_written_not_while_it_is_owed() -> None:
    """A send holds the token (its drain is slow: the peer reads slowly) when the peer's Close
    arrives; the echo is owed behind it (D10). The peer cannot end TCP before it has our echo
    (RFC 6455 5.5.1, 7.1.1), so the reader's close timeout must not run out meanwhile: it did,
    and the connection ended as 1006 "peer did not close TCP after the Close" although the
    send drained within its write timeout and the peer closed cleanly (found by exploring
    --peer close --party auto-reply --party write-timeout)."""
    close = frame(CLOSE, b"\x03\xe8bye")  # 1000

    async def main() -> None:
        async with Peer(answers={b"go": close}) as peer:
            options = dataclasses.replace(QUIET, close_timeout=0.2)
            closes: list[CloseInfo] = []
            ch, rec, gate = await open_watched(peer.url, options, on_close=closes.append)
            send = await park_send(ch, gate, "go")  # holds the token in its drain
            await rec.wait_for(is_(What.FRAME_IN, opcode="close"))
            # Three close timeouts while the echo is owed: the reader must still be reading.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rec.wait_for(is_(What.READER_END)), 0.6)
            assert not rec.of(What.READER_END), "the reader gave up while our echo was owed"
            gate.drain_gate.open()
            await send
            await rec.wait_for(is_(What.CLOSED))
            await ch.deinit()
            assert closes == [CloseInfo(1000, "bye", "peer", True)]
            assert (CLOSE, b"\x03\xe8bye") in peer.data(0)  # the echo reached the peer

    run(main())
