"""The core used from Python: ``closed()``, ``messages()`` with backpressure, and reconnect
after a clean close as an explicit option (issue 8 item 5)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from wschan_cli.channel import Channel, ChannelClosed, ChannelDisposed, CloseInfo, Message, What
from wschan_cli.server import Behaviour, EmbeddedServer

from .helpers import QUIET, RawServer, Recorder, frame, run


def opts(**changes: object):  # type: ignore[no-untyped-def]
    return dataclasses.replace(QUIET, **changes)


def test_closed_returns_how_the_connection_ended() -> None:
    async def main() -> None:
        behaviour = Behaviour(close_after=1, close_code=4001, close_reason="bye")
        async with EmbeddedServer(behaviour) as srv:
            ch = Channel(srv.url, options=QUIET)
            waiting = asyncio.ensure_future(ch.closed())  # before any connection: waits
            await ch.send("x")
            expected = CloseInfo(4001, "bye", "peer", False)
            assert await waiting == expected
            assert await ch.closed() == expected  # none open: the last close, at once
            await ch.deinit()
            never = Channel(srv.url, options=QUIET)
            pending = asyncio.ensure_future(never.closed())
            await asyncio.sleep(0)
            await never.deinit()
            with pytest.raises(ChannelDisposed):
                await pending

    run(main())


@pytest.mark.parametrize("reconnect", [False, True])
def test_reconnect_after_a_clean_close_is_an_option_off_by_default(reconnect: bool) -> None:
    async def main() -> None:
        async with EmbeddedServer(Behaviour(close_after=1)) as srv:
            options = opts(reconnect=True) if reconnect else QUIET
            ch = Channel(srv.url, options=options)
            await ch.send("one")
            assert await ch.closed() == CloseInfo(1000, "", "peer", True)
            if reconnect:
                await ch.send("two")  # a new connection
                assert srv.connections == 2 and ch.state == "success"
            else:
                with pytest.raises(ChannelClosed) as caught:
                    await ch.send("two")
                assert (caught.value.code, caught.value.by) == (1000, "peer")
                assert srv.connections == 1 and ch.state == "closed"
            await ch.deinit()

    run(main())


def test_messages_iterates_what_arrives_in_order_and_ends_at_the_close() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            ch = Channel(srv.url, options=opts(receive_queue=4))
            got: list[Message] = []

            async def consume() -> None:
                async for message in ch.messages():
                    got.append(message)
                    if len(got) == 20:
                        await ch.deinit()

            consumer = asyncio.ensure_future(consume())
            for i in range(20):
                await ch.send(f"{i}" if i % 2 else f"{i}".encode())
            await consumer  # ended after the close
            assert [m.data for m in got] == [
                f"{i}" if i % 2 else f"{i}".encode() for i in range(20)
            ]
            with pytest.raises(ValueError, match="receive_queue"):
                await anext(Channel(srv.url, options=QUIET).messages())

    run(main())


def test_a_slow_consumer_stops_the_reader_and_tcp_slows_the_peer() -> None:
    """Backpressure: with nobody taking messages, the client stops reading, so the peer cannot
    write everything; once the consumer reads, everything arrives, in order."""
    n, size = 400, 64 * 1024  # 25 MiB: more than the socket buffers of both ends hold
    all_written = asyncio.Event()

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for i in range(n):
            writer.write(frame(0x2, i.to_bytes(4, "big") * (size // 4)))
            await writer.drain()
        all_written.set()
        await reader.read(65536)  # our Close
        writer.write(frame(0x8, b"\x03\xe8"))

    async def main() -> None:
        async with RawServer(flood) as srv:
            rec = Recorder()
            ch = Channel(srv.url, options=opts(receive_queue=2, max_size=2**20))
            ch.subscribe(rec)
            await ch.open()
            with pytest.raises(TimeoutError):  # a bound for a negative: it must not finish
                await asyncio.wait_for(all_written.wait(), 1.0)
            held = len(rec.of(What.FRAME_IN))
            assert held <= 2 + 256 * 1024 // size + 1  # the queue, plus one read's worth
            seen = 0
            async for message in ch.messages():
                assert message.data[:4] == seen.to_bytes(4, "big")
                seen += 1
                if seen == n:
                    break
            assert all_written.is_set()
            await ch.deinit()

    run(main(), timeout=30)
