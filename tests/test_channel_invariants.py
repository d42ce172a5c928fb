"""channel-model.md section 5: each invariant, on real sockets to the embedded server."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from wschan_cli.channel import Channel, ChannelClosed, CloseInfo, Message, Token, What
from wschan_cli.server import Behaviour, EmbeddedServer

from .helpers import QUIET, Recorder, is_, open_watched, park_send, run


def check_single_holder(events: list) -> None:
    """Replay the events: a TAKE only ever happens when nobody holds the token."""
    holder = None
    for event in events:
        if event.what is What.TAKE:
            assert holder is None, f"{event.party} took the token held by {holder}"
            holder = event.party
        elif event.what is What.RELEASE:
            assert holder == event.party
            holder = None


# 1 ---------------------------------------------------------------------------------------------


def test_1_one_holder_at_a_time_under_concurrent_sends() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            rec = Recorder()
            ch = Channel(srv.url, options=QUIET)
            ch.subscribe(rec)
            await asyncio.gather(*(ch.send(f"m{i}") for i in range(100)))
            await ch.deinit()
            check_single_holder(rec.events)
            assert len(rec.of(What.TAKE)) >= 102  # 100 sends, deinit, terminate

    run(main())


def _fragmented_sends_reach_the_server_intact() -> tuple[list[bytes], list[bytes], list]:
    async def main() -> tuple[list[bytes], list[bytes], list]:
        async with EmbeddedServer(compression=False) as srv:
            ch = Channel(
                srv.url, options=QUIET.__class__(**{**QUIET.__dict__, "compression": False})
            )
            await ch.open()
            # Large messages in small fragments: each fragment drains (and may yield) before
            # the next, so only the token keeps another sender's frames out of the middle.
            messages = [bytes([i]) * (512 * 1024) for i in range(6)]
            results = await asyncio.gather(
                *(ch.send(m, fragment_size=8 * 1024) for m in messages), return_exceptions=True
            )
            await ch.deinit()
            await srv.wait_ended(1)
            return messages, list(srv.received), [*results, *srv.close_codes]

    return run(main(), timeout=25)


@pytest.mark.timeout(40)
def test_1_frames_of_concurrent_fragmented_sends_never_interleave() -> None:
    messages, received, outcome = _fragmented_sends_reach_the_server_intact()
    # Every message arrives whole, once, made of its own bytes only; the server saw a clean close.
    assert sorted(received) == sorted(messages)
    assert outcome == [None] * 6 + [1000]


@pytest.mark.timeout(40)
def test_1_without_the_token_the_same_sends_do_interleave(monkeypatch: pytest.MonkeyPatch) -> None:
    """The previous test can fail: with a token that excludes nobody, fragments interleave and
    the server fails the connection (or receives mixed messages)."""

    async def take(self: Token, party: object) -> None:
        self.holder = party  # type: ignore[assignment]

    def release(self: Token, party: object) -> None:
        self.holder = None

    monkeypatch.setattr(Token, "take", take)
    monkeypatch.setattr(Token, "release", release)
    monkeypatch.setattr(Channel, "_write", _unchecked_write)
    try:
        messages, received, outcome = _fragmented_sends_reach_the_server_intact()
    except Exception:
        return  # the mutant broke down outright (two parties shutting down at once): detected
    assert sorted(received) != sorted(messages) or outcome != [None] * 6 + [1000]


async def _unchecked_write(self: Channel, party, conn, chunks=None, *, handshake=False) -> None:
    # The core refuses to write without the token; this mutant skips that check on purpose.
    chunks = chunks if chunks is not None else [c for c in conn.proto.data_to_send() if c]
    for chunk in chunks:
        conn.transport.write(chunk)
    await conn.transport.drain()


# 2 ---------------------------------------------------------------------------------------------


def test_2_every_release_with_waiters_signals_exactly_one() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            rec = Recorder()
            ch = Channel(srv.url, options=QUIET)
            ch.subscribe(rec)
            await asyncio.gather(*(ch.send("x" * 1000) for _ in range(50)))
            await ch.deinit()
        events = rec.events
        for i, event in enumerate(events):
            if event.what is What.RELEASE and event.waiters > 0:
                assert events[i + 1].what is What.SIGNAL and events[i + 1].party == event.party
                assert events[i + 1].waiters == event.waiters - 1  # exactly one left the queue
            if event.what is What.RELEASE and event.waiters == 0:
                assert i + 1 == len(events) or events[i + 1].what is not What.SIGNAL
        # Every party that waited was woken: no lost wake-up.
        assert len(rec.of(What.WAIT)) == len(rec.of(What.WAKE)) > 0

    run(main())


def test_2_a_loser_is_queued_before_the_holder_can_release() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            ch, rec, gate = await open_watched(srv.url)
            holder = await park_send(ch, gate, "first")
            loser = asyncio.ensure_future(ch.send("second"))
            await rec.wait_for(is_(What.WAIT, "send#2"))
            assert ch.sending and rec.events[-1].waiters == 1
            gate.drain_gate.open()
            await asyncio.gather(holder, loser)
            assert rec.index(What.WAIT, "send#2") < rec.index(What.RELEASE, "send#1")
            assert rec.of(What.SIGNAL, "send#1")[0].detail["woken"] == "send#2"
            await ch.deinit()
            assert srv.received == ["first", "second"]

    run(main())


# 3 ---------------------------------------------------------------------------------------------


def test_3_n_concurrent_sends_all_complete_exactly_once() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            rec = Recorder()
            ch = Channel(srv.url, options=QUIET)
            ch.subscribe(rec)
            await ch.open()
            n = 300
            results = await asyncio.gather(*(ch.send(f"msg-{i}") for i in range(n)))
            assert results == [None] * n
            await srv.wait_received(n)
            await ch.deinit()
            assert sorted(srv.received) == sorted(f"msg-{i}" for i in range(n))
            done = [str(e.party) for e in rec.of(What.DONE) if e.party.kind == "send"]
            assert len(done) == len(set(done)) == n

    run(main())


# 4 ---------------------------------------------------------------------------------------------


def test_4_awaited_one_after_another_sends_keep_their_order() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            got: list[Message] = []
            ch = Channel(srv.url, options=QUIET, process=got.append)
            for i in range(200):
                await ch.send(f"{i}")
            await srv.wait_received(200)
            await ch.deinit()
            assert srv.received == [f"{i}" for i in range(200)]

    run(main())


def test_4_a_woken_send_recompetes_and_may_lose_to_a_newcomer() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            ch, rec, gate = await open_watched(srv.url)
            first = await park_send(ch, gate, "A")
            waiter = asyncio.ensure_future(ch.send("B"))
            await rec.wait_for(is_(What.WAIT, "send#2"))
            # asyncio runs ready callbacks in FIFO order: send#1's drain resumes first and
            # releases (signalling send#2), then the newcomer starts and finds the token free,
            # and only then does the woken send#2 run.
            # Closing the gate again right away holds the newcomer (not send#1, whose wake-up is
            # already due) in its drain, so the woken send#2 finds the token busy once more.
            gate.drain_gate.open()
            gate.drain_gate.close()
            newcomer = asyncio.ensure_future(ch.send("C"))
            await rec.wait_for(
                lambda e: (
                    e.what is What.WAIT
                    and str(e.party) == "send#2"
                    and e.holder is not None
                    and str(e.holder) == "send#3"
                )
            )
            gate.drain_gate.open()
            await asyncio.gather(first, waiter, newcomer)
            await ch.deinit()
            # send#3 took the token before the woken send#2, which queued again.
            assert rec.index(What.TAKE, "send#3") < rec.index(What.TAKE, "send#2")
            assert len(rec.of(What.WAIT, "send#2")) == 2
            assert srv.received == ["A", "C", "B"]

    run(main())


# 5 ---------------------------------------------------------------------------------------------


def test_5_a_send_completes_after_its_release_and_the_next_wakeup() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            ch, rec, gate = await open_watched(srv.url)
            first = await park_send(ch, gate, "one")
            second = asyncio.ensure_future(ch.send("two"))
            await rec.wait_for(is_(What.WAIT, "send#2"))
            seen_at_completion: list[list[What]] = []
            first.add_done_callback(
                lambda _: seen_at_completion.append(
                    [e.what for e in rec.events if str(e.party) == "send#1"]
                )
            )
            gate.drain_gate.open()
            await asyncio.gather(first, second)
            await ch.deinit()
            assert seen_at_completion[0][-3:] == [What.RELEASE, What.SIGNAL, What.DONE]

    run(main())


# 6 ---------------------------------------------------------------------------------------------


def test_6_established_falls_once_per_connection_after_reader_end_and_shutdown() -> None:
    async def main() -> None:
        async with EmbeddedServer(Behaviour(close_after=1)) as srv:
            rec = Recorder()
            closes: list[CloseInfo] = []
            closed = asyncio.Event()

            def on_close(info: CloseInfo) -> None:
                closes.append(info)
                closed.set()

            reconnecting = dataclasses.replace(QUIET, reconnect=True)
            ch = Channel(srv.url, options=reconnecting, on_close=on_close)
            ch.subscribe(rec)
            for i in range(3):
                # Each connection: echo one message, then the server closes it cleanly (1000).
                await ch.send(f"round {i}")
                await closed.wait()
                closed.clear()
            await ch.deinit()
            assert srv.connections == 3
            established = [(e.detail["before"], e.established) for e in rec.of(What.ESTABLISHED)]
            assert established == [(0, 1), (1, 0)] * 3
            assert [c.code for c in closes] == [1000, 1000, 1000]
            assert all(c.by == "peer" and c.clean for c in closes)
            # Each 1 -> 0 comes after that connection's reader ended and a shutdown was asked.
            for n in (1, 2, 3):
                fall = [
                    i
                    for i, e in enumerate(rec.events)
                    if e.what is What.ESTABLISHED and e.established == 0
                ][n - 1]
                reader_end = rec.index(What.READER_END, f"reader#{n}")
                shutdowns = [i for i, e in enumerate(rec.events) if e.what is What.SHUTDOWN]
                assert reader_end < fall and any(s < fall for s in shutdowns)

    run(main())


# 7 ---------------------------------------------------------------------------------------------
# The race between deinit and handle_terminate, in each order, with sends pending.


async def _race(order: str, abrupt: bool) -> tuple[Recorder, list, list[CloseInfo], Channel]:
    # The server drops TCP after echoing one message. (A clean close would need our Close echo,
    # which needs the token, so terminate could never queue behind a holder.)
    async with EmbeddedServer(Behaviour(drop_after=1)) as srv:
        closes: list[CloseInfo] = []
        ch, rec, gate = await open_watched(srv.url, on_close=closes.append)
        gate.read_gate.close()  # the reader sees nothing until the test says so
        blocker = await park_send(ch, gate, "held")  # its echo makes the server drop
        await srv.wait_ended(1)  # the server is gone; our reader has not noticed yet
        if order == "deinit-first":
            # Queue: deinit, then two sends. deinit gets the token next and, while it holds it,
            # the reader ends and terminate queues behind the sends (the C++ hazard R1).
            deinit = asyncio.ensure_future(ch.deinit(abrupt=abrupt))
            await rec.wait_for(is_(What.WAIT, "deinit"))
            pending = [asyncio.ensure_future(ch.send(f"late {i}")) for i in range(2)]
            await rec.wait_for(lambda e: e.what is What.WAIT and e.waiters == 3)
            rec.hooks.append(
                lambda e: (
                    gate.read_gate.open()
                    if e.what is What.TAKE and e.party.kind == "deinit"
                    else None
                )
            )
            gate.drain_gate.open()
        elif order == "terminate-first":
            # Queue: two sends, terminate, then deinit (the C++ hazard R2).
            pending = [asyncio.ensure_future(ch.send(f"late {i}")) for i in range(2)]
            await rec.wait_for(lambda e: e.what is What.WAIT and e.waiters == 2)
            gate.read_gate.open()
            await rec.wait_for(is_(What.WAIT, "terminate#1"))
            deinit = asyncio.ensure_future(ch.deinit(abrupt=abrupt))
            await rec.wait_for(is_(What.WAIT, "deinit"))
            gate.drain_gate.open()
        else:
            # The reader's wake-up and deinit's start are scheduled in the same loop turn, in
            # the order the parameter says; the holder lets go in that turn too.
            pending = [asyncio.ensure_future(ch.send(f"late {i}")) for i in range(2)]
            await rec.wait_for(lambda e: e.what is What.WAIT and e.waiters == 2)
            if order == "same-turn-reader-first":
                gate.read_gate.open()
                deinit = asyncio.ensure_future(ch.deinit(abrupt=abrupt))
            else:
                deinit = asyncio.ensure_future(ch.deinit(abrupt=abrupt))
                gate.read_gate.open()
            gate.drain_gate.open()
        results = await asyncio.gather(blocker, *pending, return_exceptions=True)
        await deinit
        return rec, results, closes, ch


@pytest.mark.parametrize(
    "order", ["deinit-first", "terminate-first", "same-turn-reader-first", "same-turn-deinit-first"]
)
@pytest.mark.parametrize("abrupt", [False, True], ids=["graceful", "abrupt"])
def test_7_deinit_racing_terminate_never_hangs_or_uses_a_disposed_channel(
    order: str, abrupt: bool
) -> None:
    rec, results, closes, ch = run(_race(order, abrupt))
    assert ch.disposed
    # Dispose is the very last event: nobody touched the channel after it.
    assert rec.events[-1].what is What.DISPOSE
    assert not rec.events[-1].sending and rec.events[-1].waiters == 0
    # Every pending send resolved: sent, or failed with ChannelClosed (never ChannelDisposed).
    assert results[0] is None  # the holder's frame had left before the drop
    for result in results[1:]:
        # Each failed with the close of the connection it waited on, as on_close reported it.
        assert isinstance(result, ChannelClosed), repr(result)
        assert (result.code, result.reason, result.by) == (
            closes[0].code,
            closes[0].reason,
            closes[0].by,
        )
        assert result.code == 1006
    # The connection fell exactly once and on_close fired exactly once.
    assert [e.established for e in rec.of(What.ESTABLISHED)] == [1, 0]
    assert len(closes) == 1
    # terminate and deinit both ran; the one that came second found established == 0 and left.
    assert rec.of(What.TAKE, "terminate#1") and rec.of(What.TAKE, "deinit")
    check_single_holder(rec.events)
    if order == "deinit-first":
        assert rec.index(What.TAKE, "deinit") < rec.index(What.TAKE, "terminate#1")
        assert rec.of(What.LEAVE, "terminate#1")
    elif order == "terminate-first":
        assert rec.index(What.TAKE, "terminate#1") < rec.index(What.TAKE, "deinit")
        assert rec.of(What.LEAVE, "deinit")


# 8 ---------------------------------------------------------------------------------------------


def test_8_a_ping_is_answered_by_a_pong_with_its_payload_through_the_token() -> None:
    async def main() -> None:
        async with EmbeddedServer(Behaviour(ping_on_connect=b"are you there")) as srv:
            ch, rec, _ = await open_watched(srv.url)
            await srv.wait_until(lambda: srv.pongs == [b"are you there"])
            await ch.deinit()
        replier = next(e.party for e in rec.of(What.FRAME_OUT) if e.detail["opcode"] == "pong")
        assert replier.kind == "auto_reply"
        pong_at = next(
            i
            for i, e in enumerate(rec.events)
            if e.what is What.FRAME_OUT and e.detail["opcode"] == "pong"
        )
        assert rec.index(What.TAKE, str(replier)) < pong_at < rec.index(What.RELEASE, str(replier))

    run(main())


def test_8_a_pong_waits_for_the_token_held_by_a_send() -> None:
    async def main() -> None:
        async with EmbeddedServer(Behaviour(close_after=None)) as srv:
            ch, rec, gate = await open_watched(srv.url)
            send = await park_send(ch, gate, "big" * 1000)
            # The server pings while send#1 holds the token: the reply must queue behind it.
            await srv.ping_all(b"p1")
            await rec.wait_for(is_(What.WAIT, "auto_reply#1"))
            gate.drain_gate.open()
            await send
            await srv.wait_until(lambda: srv.pongs == [b"p1"])
            await ch.deinit()
            assert rec.index(What.RELEASE, "send#1") < rec.index(What.TAKE, "auto_reply#1")

    run(main())


# 9 ---------------------------------------------------------------------------------------------


def test_9_inbound_messages_reach_process_one_at_a_time_in_arrival_order() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            got: list[Message] = []
            inside = [0]

            def process(message: Message) -> None:
                inside[0] += 1
                assert inside[0] == 1  # never re-entered
                got.append(message)
                inside[0] -= 1

            ch = Channel(srv.url, options=QUIET, process=process)
            await asyncio.gather(
                *(ch.send(f"{i}" if i % 2 else f"{i}".encode()) for i in range(400))
            )
            await srv.wait_received(400)
            await ch.deinit()
            # The echo server answers in the order it received: so must process see them.
            assert [m.data for m in got] == srv.received
            assert all(m.type == ("text" if isinstance(m.data, str) else "binary") for m in got)

    run(main())


# 10 --------------------------------------------------------------------------------------------


def test_10_a_rejected_handshake_fails_the_first_send_and_every_waiter() -> None:
    from wschan_cli.channel import HandshakeRejected

    async def main() -> None:
        async with EmbeddedServer(Behaviour(reject_status=403, reject_body="no entry")) as srv:
            rec = Recorder()
            ch = Channel(srv.url, options=QUIET)
            ch.subscribe(rec)
            results = await asyncio.gather(
                *(ch.send("x") for _ in range(5)), return_exceptions=True
            )
            assert all(isinstance(r, HandshakeRejected) for r in results), results
            first = results[0]
            assert isinstance(first, HandshakeRejected) and first.status == 403
            assert "403" in str(first) and "no entry" in str(first) and srv.url in str(first)
            assert not ch.sending and rec.events[-1].waiters == 0
            assert ch.established == 0 and ch.state == "error"
            with pytest.raises(HandshakeRejected):
                await ch.send("again")  # terminal: fails at once
            await ch.deinit()

    run(main())
