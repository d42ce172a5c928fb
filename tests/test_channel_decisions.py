"""channel-model.md section 4: what wschan decides (D1-D9), on real sockets."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from wschan_cli.channel import (
    Channel,
    ChannelClosed,
    ChannelDisposed,
    CloseInfo,
    HandshakeInterrupted,
    Message,
    OpenTimeout,
    What,
    WriteTimeout,
)
from wschan_cli.server import Behaviour, EmbeddedServer
from wschan_cli.trace import gates

from .helpers import (
    QUIET,
    GatedTransport,
    RawServer,
    Recorder,
    discard_forever,
    frame,
    gated_factory,
    is_,
    never_read,
    open_watched,
    park_send,
    run,
)


def opts(**changes: object):  # type: ignore[no-untyped-def]
    return dataclasses.replace(QUIET, **changes)


# D1 --------------------------------------------------------------------------------------------


def test_d1_the_first_out_task_connects_and_the_others_wait_for_it() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            rec = Recorder()
            ch = Channel(srv.url, options=QUIET)
            ch.subscribe(rec)
            assert ch.established == 0 and srv.connections == 0  # lazy: nothing yet
            await asyncio.gather(*(ch.send(f"{i}") for i in range(10)))
            await ch.deinit()
            assert srv.connections == 1
            assert [str(e.party) for e in rec.of(What.CONNECT)] == ["send#1"]
            assert sorted(srv.received) == sorted(f"{i}" for i in range(10))

    run(main())


def test_d1_open_is_an_out_task_that_carries_no_frame() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            rec = Recorder()
            ch = Channel(srv.url, options=QUIET)
            ch.subscribe(rec)
            await ch.open()
            assert ch.established == 1 and ch.state == "success"
            await ch.open()  # already open: takes the token, writes nothing
            await ch.deinit()
            frames = [
                e.detail["opcode"]
                for e in rec.events
                if e.what is What.FRAME_OUT and e.party.kind == "open"
            ]
            assert frames == ["http"]
            assert len(rec.of(What.TAKE, "open#2")) == 1 and srv.received == []

    run(main())


# D2 --------------------------------------------------------------------------------------------


def test_d2_a_fast_101_is_not_missed_even_before_the_request_write_returns() -> None:
    """H1: the reader exists before the request is written."""

    async def main() -> None:
        made: list[GatedTransport] = []

        async def factory(uri, options):  # type: ignore[no-untyped-def]
            transport = await gated_factory(made)(uri, options)
            made[-1].drain_gate.close()  # the connector's write "returns" only when we say
            return transport

        async with EmbeddedServer() as srv:
            ch = Channel(srv.url, options=QUIET, transport_factory=factory)
            opening = asyncio.ensure_future(ch.open())
            while not made:
                await asyncio.sleep(0)
            await made[0].arrived.wait()  # the 101 reached the reader first
            made[0].drain_gate.open()
            await opening
            assert ch.state == "success"
            await ch.deinit()

    run(main())


def test_d2_a_stalled_upgrade_fails_with_open_timeout_and_leaves_nobody_waiting() -> None:
    async def main() -> None:
        async with EmbeddedServer(Behaviour(stall_before_upgrade=10)) as srv:
            rec = Recorder()
            ch = Channel(srv.url, options=opts(open_timeout=0.3))
            ch.subscribe(rec)
            results = await asyncio.gather(ch.send("a"), ch.send("b"), return_exceptions=True)
            assert all(isinstance(r, OpenTimeout) for r in results), results
            assert "timed out after 0.3s opening" in str(results[0])
            assert not ch.sending and rec.events[-1].waiters == 0 and ch.established == 0
            await ch.deinit()

    run(main())


def test_d2_a_peer_that_closes_before_the_101_fails_the_connector() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def main() -> None:
        async with RawServer(hang_up, upgrade=False) as srv:
            ch = Channel(srv.url, options=QUIET)
            with pytest.raises(HandshakeInterrupted, match="closed before the 101"):
                await ch.open()
            assert ch.established == 0 and not ch.sending
            await ch.deinit()

    run(main())


def test_d2_a_response_that_is_not_http_fails_the_connector() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await reader.read(100)

    async def main() -> None:
        async with RawServer(garbage, upgrade=False) as srv:
            ch = Channel(srv.url, options=QUIET)
            with pytest.raises(
                HandshakeInterrupted,
                match="invalid handshake response: did not receive a valid HTTP",
            ):
                await ch.open()
            await ch.deinit()

    run(main())


# D3 --------------------------------------------------------------------------------------------


def test_d3_a_send_waiting_when_the_peer_closed_fails_with_code_and_reason() -> None:
    async def main() -> None:
        behaviour = Behaviour(close_after=1, close_code=4001, close_reason="go away")
        async with EmbeddedServer(behaviour) as srv:
            ch, rec, gate = await open_watched(srv.url)
            first = await park_send(ch, gate, "one")  # echoed, then the server closes
            second = asyncio.ensure_future(ch.send("two"))
            await rec.wait_for(is_(What.WAIT, "send#2"))
            await rec.wait_for(lambda e: e.what is What.FRAME_IN and e.detail["opcode"] == "close")
            gate.drain_gate.open()
            assert await first is None
            with pytest.raises(ChannelClosed) as caught:
                await second
            assert (caught.value.code, caught.value.reason, caught.value.by) == (
                4001,
                "go away",
                "peer",
            )
            await srv.wait_ended(1)
            await rec.wait_for(is_(What.CLOSED))
            # It passed the wake-up on: the Close echo (queued behind it) still went out.
            assert rec.index(What.SIGNAL, "send#2") < rec.index(What.TAKE, "auto_reply#1")
            # An error close is terminal: the next send fails at once, with the same reason.
            with pytest.raises(ChannelClosed, match="4001"):
                await ch.send("three")
            await ch.deinit()
            assert srv.close_codes == [4001]

    run(main())


# D5 --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (4000, "bye now")])
def test_d5_graceful_deinit_sends_close_and_waits_for_the_peer(code: int, reason: str) -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            closes: list[CloseInfo] = []
            ch = Channel(srv.url, options=QUIET, on_close=closes.append)
            await ch.send("x")
            await ch.deinit(code, reason)
            assert ch.disposed  # awaited deinit returns only once disposed
            await srv.wait_ended(1)
            assert srv.close_codes == [code]
            assert closes == [CloseInfo(code, reason, "local", code == 1000)]

    run(main())


def test_d5_abrupt_deinit_sends_no_close_frame() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            rec = Recorder()
            ch = Channel(srv.url, options=QUIET)
            ch.subscribe(rec)
            await ch.send("x")
            await ch.deinit(abrupt=True)
            await srv.wait_ended(1)
            assert srv.close_codes == [None]
            assert not [e for e in rec.of(What.FRAME_OUT) if e.detail["opcode"] == "close"]

    run(main())


def test_d5_an_abrupt_deinit_is_reported_as_a_local_close() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            closes: list[CloseInfo] = []
            ch = Channel(srv.url, options=QUIET, on_close=closes.append)
            await ch.send("hi")
            await ch.deinit(abrupt=True)
            await srv.wait_ended(1)
            assert closes == [
                CloseInfo(1006, "closed without a Close frame (abrupt deinit)", "local", False)
            ]

    run(main())


def test_d5_deinit_gives_up_on_a_peer_that_never_answers_the_close() -> None:
    async def main() -> None:
        async with EmbeddedServer(Behaviour(ignore_close=True)) as srv:
            closes: list[CloseInfo] = []
            ch = Channel(srv.url, options=opts(close_timeout=0.3), on_close=closes.append)
            await ch.open()
            await ch.deinit()
            assert ch.disposed
            assert closes == [
                CloseInfo(1006, "no Close answer within the close timeout", "local", False)
            ]

    run(main())


# D6 --------------------------------------------------------------------------------------------


def test_d6_any_use_after_dispose_raises_channel_disposed() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            ch = Channel(srv.url, options=QUIET)
            await ch.send("x")
            await ch.deinit()
            for use in (ch.send("y"), ch.open(), ch.ping()):
                with pytest.raises(ChannelDisposed):
                    await use
            await ch.deinit()  # idempotent: a second deinit is not an error

    run(main())


def test_d6_concurrent_deinits_share_one_teardown() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            rec = Recorder()
            ch = Channel(srv.url, options=QUIET)
            ch.subscribe(rec)
            await ch.open()
            await asyncio.gather(ch.deinit(), ch.deinit(), ch.deinit())
            assert len(rec.of(What.DISPOSE)) == 1 and len(rec.of(What.SHUTDOWN)) == 1

    run(main())


# D7 --------------------------------------------------------------------------------------------


def test_d7_on_close_runs_outside_the_token_and_may_deinit() -> None:
    async def main() -> None:
        async with EmbeddedServer(Behaviour(close_after=1)) as srv:
            seen: list[tuple[bool, int]] = []
            started: list[asyncio.Future[None]] = []
            ch: Channel

            def on_close(info: CloseInfo) -> None:
                seen.append((ch.sending, ch.established))
                started.append(asyncio.ensure_future(ch.deinit()))  # H6: allowed here

            ch = Channel(srv.url, options=QUIET, on_close=on_close)
            await ch.send("x")
            while not started:
                await asyncio.sleep(0)
            await started[0]
            assert seen == [(False, 0)] and ch.disposed

    run(main())


def test_d7_a_failing_process_callback_closes_with_1011_and_the_reader_survives() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            closes: list[CloseInfo] = []

            def process(message: Message) -> None:
                raise RuntimeError("consumer broke")

            ch = Channel(srv.url, options=QUIET, process=process, on_close=closes.append)
            await ch.send("x")
            await srv.wait_ended(1)
            await ch.deinit()
            assert closes[0].code == 1011 and "consumer broke" in closes[0].reason
            assert srv.close_codes == [1011]

    run(main())


# D8 --------------------------------------------------------------------------------------------


def test_d8_a_write_that_cannot_drain_aborts_the_connection() -> None:
    async def main() -> None:
        async with RawServer(never_read) as srv:
            rec = Recorder()
            closes: list[CloseInfo] = []
            ch = Channel(
                srv.url, options=opts(write_timeout=0.3, compression=False), on_close=closes.append
            )
            ch.subscribe(rec)
            await ch.open()
            with pytest.raises(WriteTimeout, match=r"did not drain within 0\.3s"):
                await ch.send(b"\0" * (32 * 2**20), fragment_size=2**20)
            assert closes == [CloseInfo(1006, "write timed out", "local", False)]
            assert ch.established == 0 and not ch.sending
            assert rec.of(What.SHUTDOWN)[0].detail["abort"] is True
            with pytest.raises(ChannelClosed, match="write timed out"):
                await ch.send("after")  # never on a connection that may hold half a frame
            await ch.deinit()

    run(main())


# D9 --------------------------------------------------------------------------------------------


def test_d9_events_are_numbered_in_order_and_delivered_synchronously() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            checked: list[bool] = []
            ch: Channel

            def subscriber(event) -> None:  # type: ignore[no-untyped-def]
                # Synchronous: the channel is exactly as the event says, at delivery time.
                checked.append(
                    event.sending == ch.sending
                    and event.established == ch.established
                    and event.state == ch.state
                )

            ch = Channel(srv.url, options=QUIET)
            rec = Recorder()
            ch.subscribe(subscriber)
            ch.subscribe(rec)
            await asyncio.gather(*(ch.send("x") for _ in range(20)))
            await ch.ping()
            await ch.deinit()
            assert checked and all(checked)
            assert [e.seq for e in rec.events] == list(range(1, len(rec.events) + 1))
            times = [e.time for e in rec.events]
            assert times == sorted(times)
            kinds = {e.what for e in rec.events}
            assert {
                What.TAKE,
                What.WAIT,
                What.SIGNAL,
                What.WAKE,
                What.RELEASE,
                What.ESTABLISHED,
                What.STATE,
                What.DISPOSE,
            } <= kinds

    run(main())


def test_d9_unsubscribe_stops_delivery() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            rec = Recorder()
            ch = Channel(srv.url, options=QUIET)
            undo = ch.subscribe(rec)
            await ch.open()
            undo()
            count = len(rec.events)
            await ch.send("x")
            await ch.deinit()
            assert len(rec.events) == count

    run(main())


# Protocol errors, keepalive, ping ------------------------------------------------------------


def test_invalid_utf8_from_the_server_closes_with_1007() -> None:
    async def main() -> None:
        async with EmbeddedServer(Behaviour(greeting="hello", invalid_utf8=True)) as srv:
            got: list[Message] = []
            closes: list[CloseInfo] = []
            ch = Channel(srv.url, options=QUIET, process=got.append, on_close=closes.append)
            await ch.open()
            await srv.wait_ended(1)
            await ch.deinit()
            assert got == [Message("text", "hello")]  # what came before is not lost
            assert closes[0].code == 1007 and closes[0].by == "local"
            assert srv.close_codes == [1007]

    run(main())


def test_a_message_over_max_size_closes_with_1009() -> None:
    async def main() -> None:
        async with EmbeddedServer(Behaviour(send_size=2**20 + 1)) as srv:
            closes: list[CloseInfo] = []
            ch = Channel(srv.url, options=opts(max_size=2**20), on_close=closes.append)
            await ch.open()
            await srv.wait_ended(1)
            await ch.deinit()
            assert closes[0].code == 1009 and srv.close_codes == [1009]

    run(main())


def test_a_frame_with_a_reserved_bit_closes_with_1002() -> None:
    async def bad_frame(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(frame(0x1, b"hi", rsv1=True))  # RSV1 without a negotiated extension
        await reader.read(1024)  # the client's Close 1002

    async def main() -> None:
        async with RawServer(bad_frame) as srv:
            closes: list[CloseInfo] = []
            ch = Channel(srv.url, options=opts(compression=False), on_close=closes.append)
            await ch.open()
            while not closes:
                await asyncio.sleep(0.01)  # bounded by run()'s timeout
            await ch.deinit()
            assert closes[0].code == 1002 and closes[0].by == "local"

    run(main())


@pytest.mark.parametrize("mid_frame", [False, True])
def test_a_dropped_connection_is_1006_by_the_peer_and_terminal(mid_frame: bool) -> None:
    async def main() -> None:
        async with EmbeddedServer(Behaviour(drop_after=1, drop_mid_frame=mid_frame)) as srv:
            got: list[Message] = []
            closes: list[CloseInfo] = []
            ch = Channel(srv.url, options=QUIET, process=got.append, on_close=closes.append)
            await ch.send("last words")
            await srv.wait_ended(1)
            while not closes:
                await asyncio.sleep(0.01)
            assert got == [Message("text", "last words")]
            assert closes == [
                CloseInfo(1006, "connection dropped without a Close frame", "peer", False)
            ]
            with pytest.raises(ChannelClosed, match="1006"):
                await ch.send("again")
            await ch.deinit()

    run(main())


def test_ping_returns_the_round_trip_time() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            ch = Channel(srv.url, options=QUIET)
            rtt = await ch.ping(b"abc")
            assert 0 < rtt < 5
            await ch.deinit()

    run(main())


def test_keepalive_pings_go_through_the_token() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            rec = Recorder()
            ch = Channel(srv.url, options=opts(ping_interval=0.05, ping_timeout=2))
            ch.subscribe(rec)
            await ch.open()
            await rec.wait_for(lambda e: e.what is What.DONE and e.party.kind == "keepalive")
            await ch.deinit()
            ping = next(e for e in rec.of(What.FRAME_OUT) if e.detail["opcode"] == "ping")
            assert ping.party.kind == "keepalive" and ping.holder == ping.party

    run(main())


def test_keepalive_without_pong_closes_with_1011() -> None:
    async def main() -> None:
        async with RawServer(discard_forever) as srv:
            closes: list[CloseInfo] = []
            ch = Channel(
                srv.url, options=opts(ping_interval=0.05, ping_timeout=0.2), on_close=closes.append
            )
            await ch.open()
            while not closes:
                await asyncio.sleep(0.01)
            assert closes == [CloseInfo(1011, "keepalive ping timeout", "local", False)]
            await ch.deinit()

    run(main())


def test_end_reading_runs_handle_terminate_as_a_peer_close_would() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            rec = Recorder()
            closes: list[CloseInfo] = []
            ch = Channel(srv.url, options=QUIET, on_close=closes.append)
            ch.subscribe(rec)
            assert ch.end_reading() is False  # nothing to end yet
            await ch.open()
            assert ch.end_reading() is True
            await rec.wait_for(is_(What.ESTABLISHED))
            while not closes:
                await asyncio.sleep(0.01)
            falls = [e for e in rec.of(What.ESTABLISHED) if e.established == 0]
            assert [str(e.party) for e in falls] == ["terminate#1"]
            assert closes[0].code == 1006
            await ch.deinit()

    run(main())


def test_d5_deinit_ends_even_when_the_transport_close_never_completes() -> None:
    """asyncio's close() waits for the write buffer to flush; against a peer that stopped
    reading it never completes. deinit must still end, by aborting after the close timeout."""

    class StuckClose(GatedTransport):
        def close(self) -> None:
            pass  # as if the buffer could never be flushed

    async def main() -> None:
        made: list[GatedTransport] = []
        async with EmbeddedServer() as srv:
            closes: list[CloseInfo] = []
            ch = Channel(
                srv.url,
                options=opts(close_timeout=0.2),
                transport_factory=gates.gated_factory(made, StuckClose),
                on_close=closes.append,
            )
            await ch.open()
            await ch.deinit(abrupt=True)
            assert ch.disposed and len(closes) == 1

    run(main())
