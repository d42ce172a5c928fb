"""Every wait of the close has a bound, and the close record says what really happened."""

from __future__ import annotations

import asyncio
import dataclasses

from wschan_cli.channel import Channel, CloseInfo, Event, What

from .helpers import QUIET, RawServer, Recorder, frame, is_, never_read, run


def opts(**changes: object):  # type: ignore[no-untyped-def]
    return dataclasses.replace(QUIET, **changes)


async def bad_text_then(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(frame(0x1, b"\xff"))  # invalid UTF-8: the client fails the connection, 1007


def test_a_peer_that_keeps_sending_after_our_close_is_cut_after_one_close_timeout() -> None:
    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await bad_text_then(reader, writer)
        while True:  # never ends TCP, never stops talking
            writer.write(frame(0x9, b"still here"))
            await writer.drain()
            await asyncio.sleep(0.02)

    async def main() -> None:
        async with RawServer(chatty) as srv:
            rec, closes = Recorder(), []
            ch = Channel(srv.url, options=opts(close_timeout=0.3), on_close=closes.append)
            ch.subscribe(rec)
            await ch.open()
            await rec.wait_for(is_(What.CLOSED))  # without the overall bound: never
            assert ch.established == 0
            assert closes == [CloseInfo(1007, "invalid UTF-8 at position 0", "local", False)]
            await ch.deinit()

    run(main(), timeout=5)


def test_an_abrupt_deinit_keeps_the_close_record_of_a_connection_already_failed() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await bad_text_then(reader, writer)
        await asyncio.Event().wait()  # reads nothing more, never ends TCP

    async def main() -> None:
        async with RawServer(silent) as srv:
            rec, closes = Recorder(), []
            ch = Channel(srv.url, options=QUIET, on_close=closes.append)
            ch.subscribe(rec)
            await ch.open()
            await rec.wait_for(is_(What.FRAME_OUT, opcode="close"))  # we failed it: 1007
            await ch.deinit(abrupt=True)
            assert closes == [CloseInfo(1007, "invalid UTF-8 at position 0", "local", False)]

    run(main())


def test_deinit_is_bounded_by_the_close_timeout_even_without_a_write_timeout() -> None:
    async def main() -> None:
        async with RawServer(never_read) as srv:
            rec, closes = Recorder(), []
            ch = Channel(
                srv.url,
                options=opts(write_timeout=None, close_timeout=0.3, compression=False),
                on_close=closes.append,
            )
            ch.subscribe(rec)
            await ch.open()
            # Fill the socket buffers: the message is whole in them, but cannot drain.
            send = asyncio.ensure_future(ch.send(b"x" * 8 * 2**20))
            await rec.wait_for(is_(What.FRAME_OUT, "send#1"))
            send.cancel()
            await asyncio.gather(send, return_exceptions=True)
            await ch.deinit()  # its Close cannot drain either: it used to wait forever
            assert ch.disposed
            assert closes == [
                CloseInfo(1006, "no Close answer within the close timeout", "local", False)
            ]

    run(main(), timeout=5)


def test_a_failing_event_subscriber_neither_stops_the_channel_nor_loses_a_wake_up() -> None:
    async def main() -> None:
        async with RawServer(echo_nothing) as srv:
            errors: list[str] = []
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx["message"]))
            ch = Channel(srv.url, options=QUIET)

            def broken(event):  # type: ignore[no-untyped-def]
                if event.what is What.RELEASE:
                    raise RuntimeError("observer bug")

            ch.subscribe(broken)
            await asyncio.gather(*(ch.send(f"{i}") for i in range(5)))
            await ch.deinit()
            assert ch.disposed and "event subscriber failed on release" in errors

    run(main())


async def echo_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        if data[0] & 0x0F == 0x8:
            writer.write(frame(0x8, b"\x03\xe8"))
            return


async def answer_close_keep_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers our Close with the same Close, then keeps TCP open (RFC 6455 7.1.1 says the
    server should end it first; this one never does)."""
    while True:
        head = await reader.readexactly(2)
        assert head[1] & 0x7F < 126, "a test sends only short frames"
        key = await reader.readexactly(4)
        payload = bytes(
            b ^ key[i % 4] for i, b in enumerate(await reader.readexactly(head[1] & 0x7F))
        )
        if head[0] & 0x0F == 0x8:
            writer.write(frame(0x8, payload))
            await asyncio.Event().wait()


def test_a_close_handshake_completed_is_clean_though_the_peer_keeps_tcp_open() -> None:
    # RFC 6455 7.1.1: after sending and receiving a Close the client may end TCP itself, and
    # 7.1.4: TCP closed after the closing handshake is a clean close. It was recorded as 1006
    # "no Close answer within the close timeout", and wschan said the server did not answer.
    async def main() -> None:
        async with RawServer(answer_close_keep_tcp) as srv:
            closes: list[CloseInfo] = []
            ch = Channel(srv.url, options=opts(close_timeout=0.3), on_close=closes.append)
            await ch.open()
            await ch.deinit()
            assert closes == [CloseInfo(1000, "", "local", True)]

    run(main(), timeout=5)


def test_the_peer_s_close_stands_though_it_keeps_tcp_open_after_our_echo() -> None:
    async def close_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(frame(0x8, (4000).to_bytes(2, "big") + b"bye"))
        await asyncio.Event().wait()  # reads our echo or not, never ends TCP

    async def main() -> None:
        async with RawServer(close_first) as srv:
            rec, closes = Recorder(), []
            ch = Channel(srv.url, options=opts(close_timeout=0.3), on_close=closes.append)
            ch.subscribe(rec)
            await ch.open()
            await rec.wait_for(is_(What.CLOSED))
            assert closes == [CloseInfo(4000, "bye", "peer", False)]
            await ch.deinit()

    run(main(), timeout=5)


def test_a_peer_that_pings_without_reading_the_pongs_is_not_read_without_bound() -> None:
    # Every Ping read owes a Pong; while the Pongs cannot drain, the reader went on reading
    # Pings and queuing Pongs until the write timeout: memory grew with the flood (166 MB in
    # 5 s for `wschan send` against such a peer). It now stops reading at a bound of owed
    # replies, and the write timeout ends it as for any peer that stops reading (D8).
    from wschan_cli.channel.reader import OWED_REPLIES_LIMIT

    async def ping_flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.pause_reading()  # type: ignore[attr-defined]
        pings = frame(0x9, b"p" * 125) * 100
        for _ in range(3000):  # 39 MB of Pings: more than the socket buffers hold of Pongs
            writer.write(pings)
            await writer.drain()
        await asyncio.Event().wait()

    async def main() -> None:
        async with RawServer(ping_flood) as srv:
            rec, closes = Recorder(), []
            owed = peak = 0

            def count(event: Event) -> None:
                nonlocal owed, peak
                opcode = event.detail.get("opcode")
                if event.what is What.FRAME_IN and opcode == "ping":
                    owed += 1
                    peak = max(peak, owed)
                elif event.what is What.FRAME_OUT and opcode == "pong":
                    owed -= 1

            ch = Channel(
                srv.url, options=opts(write_timeout=2, close_timeout=0.3), on_close=closes.append
            )
            ch.subscribe(count)
            ch.subscribe(rec)
            await ch.open()
            await rec.wait_for(is_(What.CLOSED))
            assert closes == [CloseInfo(1006, "write timed out", "local", False)]
            # The bound, and what one read adds past it (a read returns up to the transport's
            # read buffer: some 3,000 Pings). Without the bound: every Ping read in the write
            # timeout (56,441 owed in a run with a 1 s timeout).
            assert peak < 5 * OWED_REPLIES_LIMIT, peak
            await ch.deinit()

    run(main(), timeout=30)
