"""D11-D14: cancellation and misuse leave the channel consistent, on real sockets.

Each test cancels a party at every await of its path (chosen by the event the party emits just
before that await), then checks the channel: no hang, no half-made connection, no half message,
no websockets exception escaping untyped.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

import pytest

from wschan_cli.channel import Channel, ChannelClosed, CloseInfo, Event, What

from .helpers import (
    QUIET,
    GatedTransport,
    RawServer,
    Recorder,
    gated_factory,
    is_,
    open_watched,
    run,
)

# --------------------------------------------------------------------------- a recording peer


async def read_frame(reader: asyncio.StreamReader) -> tuple[bool, int, bytes]:
    """One (masked) client frame: fin, opcode, unmasked payload."""
    first, second = await reader.readexactly(2)
    n = second & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4) if second & 0x80 else b"\0\0\0\0"
    data = await reader.readexactly(n)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return bool(first & 0x80), first & 0x0F, payload


def close_code(payload: bytes) -> int:
    return struct.unpack("!H", payload[:2])[0] if payload else 1005


class Peer(RawServer):
    """A hand-written server recording every client frame (fin, opcode, payload) per
    connection. It answers a Close with a Close and ends TCP; ``answer_close`` False ignores
    Close frames; ``answers`` maps a data frame's payload to the raw bytes written back at
    once, in one segment."""

    def __init__(
        self, *, answer_close: bool = True, answers: dict[bytes, bytes] | None = None
    ) -> None:
        super().__init__(self._record)
        self.answers = answers or {}
        self.answer_close = answer_close
        self.frames: list[list[tuple[bool, int, bytes]]] = []

    def data(self, n: int = -1) -> list[tuple[int, bytes]]:
        return [(op, payload) for _, op, payload in self.frames[n]]

    async def _record(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames: list[tuple[bool, int, bytes]] = []
        self.frames.append(frames)
        try:
            while True:
                fin, opcode, payload = await read_frame(reader)
                frames.append((fin, opcode, payload))
                if payload in self.answers and opcode in (0x1, 0x2):
                    writer.write(self.answers[payload])
                if opcode == 0x8 and self.answer_close:
                    writer.write(bytes([0x88, len(payload)]) + payload)
                    await writer.drain()
                    return
        except asyncio.CancelledError:
            pass  # the test ended: a quiet end


def cancel_on(rec: Recorder, match: Callable[[Event], bool], task: asyncio.Task[None]) -> None:
    """Cancel ``task`` from inside the step that emits the first event matching ``match``: the
    cancellation lands at that party's next await."""

    def hook(event: Event) -> None:
        if match(event) and not task.done():
            rec.hooks.remove(hook)
            task.cancel()

    rec.hooks.append(hook)


def frame_out(party: str, opcode: str) -> Callable[[Event], bool]:
    return is_(What.FRAME_OUT, party, opcode=opcode)


def falls(rec: Recorder) -> list[int]:
    return [e.established for e in rec.of(What.ESTABLISHED)]


# --------------------------------------------------------------------------- D14 deinit


@pytest.mark.parametrize("where", ["token", "close write", "close wait", "quiesce"])
def test_d14_a_deinit_cancelled_at_any_await_lets_the_next_deinit_complete(where: str) -> None:
    async def main() -> None:
        async with Peer(answer_close=where != "close wait") as peer:
            closes: list[CloseInfo] = []
            ch, rec, gate = await open_watched(peer.url, on_close=closes.append)
            send = None
            if where == "token":  # a send holds the token: deinit waits for it
                gate.drain_gate.close()
                send = asyncio.ensure_future(ch.send("x"))
                await gate.draining.wait()
            first = asyncio.ensure_future(ch.deinit())
            if where == "token":
                cancel_on(rec, is_(What.WAIT, "deinit"), first)
            elif where == "close write":
                gate.drain_gate.close()
                cancel_on(rec, frame_out("deinit", "close"), first)
            elif where == "close wait":
                cancel_on(rec, frame_out("deinit", "close"), first)
            else:  # terminate is still queued for the token when deinit releases it
                cancel_on(rec, is_(What.RELEASE, "deinit"), first)
            with pytest.raises(asyncio.CancelledError):
                await first
            gate.drain_gate.open()
            if send is not None:
                await send
            assert not ch.sending
            await ch.deinit()  # completes and disposes (it hung before D14)
            assert ch.disposed and ch.established == 0
            assert falls(rec) == [1, 0] and len(closes) == 1
            assert len(rec.of(What.DISPOSE)) == 1

    run(main())


def test_d14_concurrent_deinits_survive_the_cancel_of_the_one_running_the_teardown() -> None:
    async def main() -> None:
        async with Peer(answer_close=False) as peer:
            rec = Recorder()
            ch = Channel(peer.url, options=QUIET)
            ch.subscribe(rec)
            await ch.open()
            first = asyncio.ensure_future(ch.deinit())
            cancel_on(rec, frame_out("deinit", "close"), first)
            second = asyncio.ensure_future(ch.deinit())
            with pytest.raises(asyncio.CancelledError):
                await first
            await second
            assert ch.disposed and falls(rec) == [1, 0]

    run(main())


@pytest.mark.parametrize(("code", "reason"), [(1005, ""), (1006, ""), (999, ""), (1000, "x" * 124)])
def test_an_unsendable_close_is_refused_before_anything_changes(code: int, reason: str) -> None:
    async def main() -> None:
        async with Peer() as peer:
            rec = Recorder()
            ch = Channel(peer.url, options=QUIET)
            ch.subscribe(rec)
            await ch.open()
            with pytest.raises(ValueError, match=r"may not be sent|too long"):
                await ch.deinit(code, reason)
            assert ch.established == 1 and not rec.of(What.SHUTDOWN)
            await ch.send("still usable")
            await ch.deinit()
            assert ch.disposed and ch.established == 0
            assert peer.data(0) == [(0x1, b"still usable"), (0x8, b"\x03\xe8")]

    run(main())


# --------------------------------------------------------------------------- D12 fragmented send


@pytest.mark.parametrize("at", [0, 1, 2])
def test_d12_a_fragmented_send_cancelled_at_a_fragment_fails_the_connection_with_1011(
    at: int,
) -> None:
    """Cancelled in the drain of fragment ``at`` of 3: before the last one the peer gets the
    fragments so far, then a Close 1011 and nothing else; after the last one the message is
    whole and the connection stays usable."""

    async def main() -> None:
        async with Peer() as peer:
            closes: list[CloseInfo] = []
            ch, rec, gate = await open_watched(peer.url, on_close=closes.append)
            send = asyncio.ensure_future(ch.send("aaabbbccc", fragment_size=3))
            seen = 0

            def hook(event: Event) -> None:
                nonlocal seen
                if event.what is What.FRAME_OUT and str(event.party) == "send#1":
                    if seen == at:
                        gate.drain_gate.close()  # this fragment's drain waits...
                        send.cancel()  # ...and is cancelled there
                    seen += 1

            rec.hooks.append(hook)
            with pytest.raises(asyncio.CancelledError):
                await send
            gate.drain_gate.open()
            if at == 2:
                await ch.send("next")
                await ch.deinit()
                assert peer.data(0) == [
                    (0x1, b"aaa"),
                    (0x0, b"bbb"),
                    (0x0, b"ccc"),
                    (0x1, b"next"),
                    (0x8, b"\x03\xe8"),
                ]
                return
            with pytest.raises(ChannelClosed) as caught:  # typed, not websockets' ProtocolError
                await ch.send("next")
            await rec.wait_for(is_(What.CLOSED))
            await ch.deinit()
            sent = peer.data(0)
            assert sent[: at + 1] == [(0x1, b"aaa"), (0x0, b"bbb")][: at + 1]
            assert [op for op, _ in sent[at + 1 :]] == [0x8]  # the Close, and nothing after
            assert close_code(sent[-1][1]) == 1011 and caught.value.code == 1011
            assert closes == [
                CloseInfo(1011, "send interrupted in the middle of a message", "local", False)
            ]

    run(main())


# --------------------------------------------------------------------------- D13 connector


@pytest.mark.parametrize("where", ["connect", "request write", "101 wait"])
def test_d13_a_connector_cancelled_at_any_await_releases_its_connection(where: str) -> None:
    async def main() -> None:
        async with Peer() as peer:
            made: list[GatedTransport] = []
            rec, closes = Recorder(), []
            stalled = asyncio.Event()

            async def factory(uri, options):  # type: ignore[no-untyped-def]
                if where == "connect" and not made and not stalled.is_set():
                    stalled.set()
                    await asyncio.Event().wait()  # TCP never completes
                transport = await gated_factory(made)(uri, options)
                if len(made) == 1 and where == "request write":
                    made[0].drain_gate.close()
                if len(made) == 1 and where == "101 wait":
                    made[0].read_gate.close()
                return transport

            ch = Channel(peer.url, options=QUIET, transport_factory=factory, on_close=closes.append)
            ch.subscribe(rec)
            opening = asyncio.ensure_future(ch.open())
            if where == "connect":
                await stalled.wait()
            else:
                while not made:
                    await asyncio.sleep(0)
                await (made[0].draining if where == "request write" else made[0].held).wait()
            opening.cancel()
            if made:  # the request drains, the 101 reaches a reader no one waits for
                made[0].drain_gate.open()
                made[0].read_gate.open()
            with pytest.raises(asyncio.CancelledError):
                await opening
            assert ch.established == 0 and ch.state == "undefined" and not ch.sending
            if where == "connect":
                assert falls(rec) == [] and closes == []
            else:
                assert falls(rec) == [1, 0]
                assert closes == [CloseInfo(1006, "connect cancelled", "local", False)]
            await ch.send("after")  # usable: a new connection
            await ch.deinit()
            assert peer.data(-1) == [(0x1, b"after"), (0x8, b"\x03\xe8")]
            assert falls(rec)[-2:] == [1, 0] and len(rec.of(What.UPGRADED)) == 1

    run(main())
