"""Channel.send_stream: one fragmented message of any length, in constant memory, on real
sockets; cancelled or failing at any await it never leaves half a message (D12)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from wschan_cli.channel import Channel, ChannelClosed, Event, What
from wschan_cli.trace import gates

from .helpers import QUIET, GatedTransport, Recorder, is_, open_watched, run
from .test_channel_cancel import Peer, close_code


async def chunks(*items: bytes | str, read: list[int] | None = None) -> AsyncIterator[bytes | str]:
    for item in items:
        if read is not None:
            read.append(len(read))
        await asyncio.sleep(0)
        yield item


def test_a_stream_goes_out_as_one_fragmented_message_and_nothing_interleaves() -> None:
    async def main() -> None:
        async with Peer() as peer:
            rec = Recorder()
            ch = Channel(peer.url, options=QUIET)
            ch.subscribe(rec)
            await ch.open()
            stream = asyncio.ensure_future(ch.send_stream(chunks("ab", "", "cd", "é")))
            await rec.wait_for(is_(What.TAKE, "send#1"))  # the stream holds the token...
            other = asyncio.ensure_future(ch.send(b"other"))  # ...so this one waits for it
            await asyncio.gather(stream, other)
            await ch.send_stream(chunks(b"\x00\x01", b"\x02"))  # binary from bytes
            await ch.send_stream(chunks(b"t"), text=True)  # one chunk: one frame
            await ch.send_stream(chunks())  # an empty source: one empty message
            await ch.deinit()
            assert [(fin, op, data) for fin, op, data in peer.frames[0]] == [
                (False, 0x1, b"ab"),
                (False, 0x0, b"cd"),  # the empty chunk made no frame
                (True, 0x0, "é".encode()),
                (True, 0x2, b"other"),
                (False, 0x2, b"\x00\x01"),
                (True, 0x0, b"\x02"),
                (True, 0x1, b"t"),
                (True, 0x2, b""),
                (True, 0x8, b"\x03\xe8"),
            ]

    run(main())


class CountingTransport(GatedTransport):
    """Counts the drains that completed."""

    drained = 0

    async def drain(self) -> None:
        await super().drain()
        self.drained += 1


def test_the_next_chunk_is_read_only_after_the_previous_frame_drained() -> None:
    async def main() -> None:
        async with Peer() as peer:
            made: list[GatedTransport] = []
            rec = Recorder()
            factory = gates.gated_factory(made, CountingTransport)
            ch = Channel(peer.url, options=QUIET, transport_factory=factory)
            ch.subscribe(rec)
            await ch.open()
            transport = made[0]
            assert isinstance(transport, CountingTransport)
            seen: list[tuple[int, int]] = []  # per chunk asked for: (frames written, drained)

            async def source() -> AsyncIterator[bytes]:
                for _ in range(5):
                    written = len([e for e in rec.of(What.FRAME_OUT) if e.party.kind == "send"])
                    seen.append((written, transport.drained - 1))  # minus the handshake's
                    yield b"x" * 1000

            await ch.send_stream(source())
            await ch.deinit()
            # Chunk j is asked for once frame j-2 is written and drained: one chunk of lookahead
            # tells which frame is the last, and memory holds two chunks at most.
            assert seen == [(0, 0), (0, 0), (1, 1), (2, 2), (3, 3)]
            assert [op for _, op, _ in peer.frames[0]] == [0x2, 0, 0, 0, 0, 0x8]

    run(main())


# Where the stream is cancelled: awaiting a chunk (0 is read before the token is taken) or in
# the drain of a frame; and whether a message was left unfinished at that point.
POINTS = [
    ("chunk", 0, False),
    ("chunk", 1, False),  # the lookahead for frame 0: nothing written yet
    ("chunk", 2, True),
    ("drain", 0, True),
    ("drain", 1, True),
    ("drain", 2, False),  # the last frame: the message is whole
]


@pytest.mark.parametrize(("where", "k", "unfinished"), POINTS)
def test_a_stream_cancelled_at_any_await_never_leaves_half_a_message(
    where: str, k: int, unfinished: bool
) -> None:
    async def main() -> None:
        async with Peer() as peer:
            ch, rec, gate = await open_watched(peer.url)
            stalled = asyncio.Event()

            async def source() -> AsyncIterator[bytes]:
                for i in range(3):
                    if where == "chunk" and i == k:
                        stalled.set()
                        await asyncio.Event().wait()  # this chunk never comes
                    yield bytes([0x61 + i])

            sending = asyncio.ensure_future(ch.send_stream(source()))
            written = 0

            def hook(event: Event) -> None:
                nonlocal written
                if event.what is What.FRAME_OUT and event.party.kind == "send":
                    if where == "drain" and written == k:
                        gate.drain_gate.close()
                        sending.cancel()
                    written += 1

            rec.hooks.append(hook)
            if where == "chunk":
                await stalled.wait()
                sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
            gate.drain_gate.open()
            if not unfinished:
                await ch.send("next")
                await ch.deinit()
                ops = [op for _, op, _ in peer.frames[0]]
                assert ops[-2:] == [0x1, 0x8] and close_code(peer.frames[0][-1][2]) == 1000
                return
            with pytest.raises(ChannelClosed, match="1011"):
                await ch.send("next")
            await rec.wait_for(is_(What.CLOSED))
            await ch.deinit()
            ops = [op for _, op, _ in peer.frames[0]]
            assert ops[-1] == 0x8 and 0x1 not in ops  # fragments, then only the Close
            assert close_code(peer.frames[0][-1][2]) == 1011

    run(main())


def test_a_source_that_fails_mid_message_fails_the_connection_and_raises_its_error() -> None:
    async def source() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"
        raise OSError("disk gone")

    async def main() -> None:
        async with Peer() as peer:
            ch = Channel(peer.url, options=QUIET)
            await ch.open()
            with pytest.raises(OSError, match="disk gone"):
                await ch.send_stream(source())
            with pytest.raises(ChannelClosed, match="1011"):
                await ch.send("next")
            await ch.deinit()
            assert [op for _, op, _ in peer.frames[0]] == [0x2, 0x8]

    run(main())


def test_a_chunk_that_is_neither_bytes_nor_str_is_refused() -> None:
    async def main() -> None:
        async with Peer() as peer:
            ch = Channel(peer.url, options=QUIET)
            with pytest.raises(TypeError, match="not int"):
                await ch.send_stream(chunks(5))  # type: ignore[arg-type]  # bytes(5) is 5 zeros
            with pytest.raises(TypeError, match="not int"):
                await ch.send_stream(chunks(b"a", b"b", 5))  # type: ignore[arg-type]
            with pytest.raises(ChannelClosed, match="1011"):  # D12: it was mid-message
                await ch.send("next")
            await ch.deinit()

    run(main())
