"""Tests of the embedded WebSocket server (wschan_cli.server); ``wschan serve`` is in test_serve.py.

Everything runs over 127.0.0.1. Async tests are plain functions that run a
coroutine under ``asyncio.run`` with a hard timeout, so no plugin is needed.
Time-based assertions only use lower bounds (a stall lasts *at least* so long),
which cannot flake on a slow machine.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect as sync_connect

from wschan_cli.server import Behaviour, EmbeddedServer

from .servers import ThreadedServer

T = TypeVar("T")


def run(make: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
    """Run one async test body with a hard timeout."""

    async def main() -> T:
        return await asyncio.wait_for(make(), timeout)

    return asyncio.run(main())


# -- a minimal raw client, for checking exact bytes on the wire ----------------


async def raw_connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open TCP and perform an opening handshake without extensions by hand."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET / HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    return reader, writer


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A final client frame (clients must mask), for payloads under 126 bytes."""
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


# -- echo ------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [True, False])
def test_echo_text_and_binary(compression: bool) -> None:
    async def body() -> None:
        async with EmbeddedServer(compression=compression) as srv:
            assert srv.url == f"ws://127.0.0.1:{srv.port}/"
            # max_size=None: the client's own 1 MiB limit would refuse the big echo.
            compression_arg = "deflate" if compression else None
            async with connect(srv.url, compression=compression_arg, max_size=None) as ws:
                await ws.send("héllo")
                assert await ws.recv() == "héllo"
                await ws.send(b"\x00\x01\xff")
                assert await ws.recv() == b"\x00\x01\xff"
                big = os.urandom(3 * 1024 * 1024)  # over websockets' 1 MiB default
                await ws.send(big)
                assert await ws.recv(decode=False) == big
            await srv.wait_ended(1)
            assert srv.received == ["héllo", b"\x00\x01\xff", big]
            assert srv.connections == 1
            assert srv.close_codes == [1000]
            assert srv.pongs == []
            extensions = srv.request_headers[0].get("sec-websocket-extensions", "")
            assert ("permessage-deflate" in extensions) is compression

    run(body)


def test_records_across_connections() -> None:
    async def body() -> None:
        async with EmbeddedServer() as srv:
            for text in ("one", "two"):
                async with connect(srv.url) as ws:
                    await ws.send(text)
                    assert await ws.recv() == text
            await srv.wait_ended(2)
            assert srv.received == ["one", "two"]
            assert srv.connections == 2
            assert srv.close_codes == [1000, 1000]
            assert len(srv.request_headers) == 2

    run(body)


def test_without_a_record_only_counts_are_kept() -> None:
    async def body() -> None:
        async with EmbeddedServer(record=False) as srv:
            async with connect(srv.url) as ws:
                for text in ("one", "two", "three"):
                    await ws.send(text)
                    assert await ws.recv() == text
                await srv.wait_received(3)
            await srv.wait_ended(1)
            assert (srv.messages, srv.connections, srv.ended) == (3, 1, 1)
            assert srv.received == [] and srv.close_codes == []
            assert srv.request_headers == [] and srv.subprotocols == []

    run(body)


# -- closing and dropping -------------------------------------------------------------


def test_messages_that_arrive_with_the_clients_close_are_all_recorded() -> None:
    """Eight messages and a Close in one write: the echo of the first crosses the Close, and
    every message the client sent before its Close is still recorded (none is lost)."""

    async def body() -> None:
        async with EmbeddedServer() as srv:
            reader, writer = await raw_connect(srv.port)
            sent = [f"m{i}" for i in range(8)]  # fewer than websockets' max_queue (16)
            burst = b"".join(masked_frame(0x1, m.encode()) for m in sent)
            writer.write(burst + masked_frame(0x8, (1000).to_bytes(2, "big")))
            await reader.read()  # until the server ends TCP
            writer.close()
            await srv.wait_ended(1)
            await srv.wait_received(len(sent))
            assert srv.received == sent
            assert srv.close_codes == [1000]

    run(body)


def test_a_backlog_over_max_queue_that_arrives_with_the_close_is_read_before_the_end() -> None:
    """A hundred messages and a Close in one read: websockets queues them all and pauses the
    socket (over max_queue, 16). Before, the echo loop tried to echo the first one: send()
    then waits for the end of TCP without reading on, so the client's end went unseen and
    the connection ended only at websockets' close timeout (10 s), its backlog recorded
    after the end (`wschan send | head -1` after perf3 batched the Close with the burst).
    Now the backlog is read first, which resumes reading: the end comes after all of it."""

    async def body() -> None:
        async with EmbeddedServer() as srv:
            recorded_at_end: list[int] = []
            record_end = srv.record_end

            def record_end_counting(code: int | None) -> None:
                recorded_at_end.append(srv.messages)
                record_end(code)

            srv.record_end = record_end_counting  # type: ignore[method-assign]
            reader, writer = await raw_connect(srv.port)
            sent = [f"m{i}" for i in range(100)]
            burst = b"".join(masked_frame(0x1, m.encode()) for m in sent)
            writer.write(burst + masked_frame(0x8, (1001).to_bytes(2, "big")))
            await reader.read()  # the server's Close, then its end of TCP
            writer.close()
            await srv.wait_ended(1, timeout=None)  # bounded by run()'s timeout
            assert recorded_at_end == [len(sent)]
            assert srv.received == sent
            assert srv.close_codes == [1001]

    run(body, timeout=30)


def test_close_after_with_code_and_reason() -> None:
    async def body() -> None:
        behaviour = Behaviour(close_after=2, close_code=4001, close_reason="bye now")
        async with EmbeddedServer(behaviour) as srv, connect(srv.url) as ws:
            for text in ("a", "b"):
                await ws.send(text)
                assert await ws.recv() == text
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 4001
            assert info.value.rcvd.reason == "bye now"
            # A proper handshake: the client answered with the same code.
            assert info.value.sent is not None and info.value.sent.code == 4001
            await srv.wait_ended(1)
            assert srv.close_codes == [4001]

    run(body)


def test_close_after_zero_closes_right_after_handshake() -> None:
    async def body() -> None:
        behaviour = Behaviour(close_after=0, greeting="hi")
        async with EmbeddedServer(behaviour) as srv, connect(srv.url) as ws:
            assert await ws.recv() == "hi"  # on-connect actions still run first
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1000

    run(body)


def test_drop_after_sends_no_close_frame() -> None:
    async def body() -> None:
        async with EmbeddedServer(Behaviour(drop_after=1)) as srv, connect(srv.url) as ws:
            await ws.send("last")
            assert await ws.recv() == "last"  # the echo arrives before the drop
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.rcvd is None
            await srv.wait_ended(1)
            assert srv.close_codes == [None]

    run(body)


def test_drop_mid_frame_bytes_on_the_wire() -> None:
    async def body() -> None:
        behaviour = Behaviour(drop_after=1, drop_mid_frame=True)
        async with EmbeddedServer(behaviour) as srv:
            reader, writer = await raw_connect(srv.port)
            writer.write(masked_frame(0x1, b"hi"))
            assert await reader.readexactly(4) == b"\x81\x02hi"
            rest = await reader.read()  # until EOF
            # FIN+text, 16-bit length 1000, then only 10 bytes of payload.
            assert rest == b"\x81\x7e\x03\xe8" + b"x" * 10
            writer.close()
            await srv.wait_ended(1)
            assert srv.close_codes == [None]

    run(body)


def test_a_burst_in_one_read_is_echoed_in_order_before_the_drop() -> None:
    # Fifty frames in one write: the server answers them all in one turn of its loop (its
    # writes leave together at the end of the turn, server/cork.py), and the half frame of
    # drop_mid_frame, written straight to the transport, still comes after every echo.
    async def body() -> None:
        behaviour = Behaviour(drop_after=50, drop_mid_frame=True)
        async with EmbeddedServer(behaviour) as srv:
            reader, writer = await raw_connect(srv.port)
            texts = [f"m{i:02d}".encode() for i in range(50)]
            writer.write(b"".join(masked_frame(0x1, text) for text in texts))
            echoes = b"".join(b"\x81\x03" + text for text in texts)
            assert await reader.readexactly(len(echoes)) == echoes
            assert await reader.read() == b"\x81\x7e\x03\xe8" + b"x" * 10  # then EOF
            writer.close()
            await srv.wait_ended(1)
            assert srv.received == [text.decode() for text in texts]

    run(body)


def test_drop_mid_frame_seen_by_websockets_client() -> None:
    async def body() -> None:
        behaviour = Behaviour(drop_after=0, drop_mid_frame=True)
        async with EmbeddedServer(behaviour) as srv, connect(srv.url) as ws:
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.rcvd is None

    run(body)


def test_ignore_close_client_times_out() -> None:
    async def body() -> None:
        async with EmbeddedServer(Behaviour(ignore_close=True)) as srv:
            ws: ClientConnection = await connect(srv.url, close_timeout=0.5)
            await ws.send("still echoing")
            assert await ws.recv() == "still echoing"
            start = time.monotonic()
            await ws.close()
            assert time.monotonic() - start >= 0.45  # waited out its close timeout
            assert ws.protocol.close_sent is not None
            assert ws.protocol.close_rcvd is None  # the server never answered
            await srv.wait_ended(1)
            assert srv.close_codes == [1000]  # but it did see the client's Close

    run(body)


def test_ignore_close_keeps_tcp_open() -> None:
    async def body() -> None:
        async with EmbeddedServer(Behaviour(ignore_close=True)) as srv:
            reader, writer = await raw_connect(srv.port)
            writer.write(masked_frame(0x8, (1000).to_bytes(2, "big") + b"done"))
            # Neither a Close frame nor EOF comes back.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await reader.read(1)
            assert srv.close_codes == []
            writer.close()
            await srv.wait_ended(1)
            assert srv.close_codes == [1000]

    run(body)


def test_shutdown_is_bounded_with_ignoring_connection() -> None:
    async def body() -> None:
        srv = EmbeddedServer(Behaviour(ignore_close=True))
        await srv.start()
        reader, writer = await raw_connect(srv.port)
        writer.write(masked_frame(0x8, (1000).to_bytes(2, "big")))
        await asyncio.sleep(0.1)
        start = time.monotonic()
        await srv.stop()
        assert time.monotonic() - start < 5
        assert await reader.read() == b""  # aborted: EOF, still no Close frame
        writer.close()

    run(body)


def test_shutdown_closes_open_connections_with_1001() -> None:
    async def body() -> None:
        srv = EmbeddedServer()
        await srv.start()
        ws = await connect(srv.url)
        await srv.stop()
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001

    run(body)


# -- handshake behaviours ------------------------------------------------------------------


def test_reject_with_status_and_body() -> None:
    async def body() -> None:
        behaviour = Behaviour(reject_status=403, reject_body="not you")
        async with EmbeddedServer(behaviour) as srv:
            with pytest.raises(InvalidStatus) as info:
                await connect(srv.url)
            assert info.value.response.status_code == 403
            assert info.value.response.body == b"not you"
            assert srv.connections == 0
            assert len(srv.request_headers) == 1  # rejected requests are recorded too
            assert srv.close_codes == []

    run(body)


def test_stall_before_upgrade() -> None:
    async def body() -> None:
        async with EmbeddedServer(Behaviour(stall_before_upgrade=0.5)) as srv:
            start = time.monotonic()
            async with connect(srv.url) as ws:
                # Lower bound only; the margin covers asyncio's timer resolution.
                assert time.monotonic() - start >= 0.49
                await ws.send("after the stall")
                assert await ws.recv() == "after the stall"

    run(body)


def test_stall_is_cut_short_by_shutdown() -> None:
    async def body() -> None:
        srv = EmbeddedServer(Behaviour(stall_before_upgrade=60))
        await srv.start()
        attempt = asyncio.ensure_future(connect(srv.url))
        await srv.wait_until(lambda: len(srv.request_headers) == 1)
        start = time.monotonic()
        await srv.stop()
        assert time.monotonic() - start < 5
        with pytest.raises(InvalidStatus) as info:
            await attempt
        assert info.value.response.status_code == 503

    run(body)


def test_request_headers_and_path_recorded() -> None:
    async def body() -> None:
        async with EmbeddedServer() as srv:
            url = srv.url + "some/path?x=1"
            async with connect(
                url,
                origin="http://origin.test",  # type: ignore[arg-type]
                additional_headers={"X-Custom": "abc", "Authorization": "Bearer t"},
                user_agent_header="wschan-test",
            ):
                pass
            headers = srv.request_headers[0]
            assert headers["origin"] == "http://origin.test"
            assert headers["x-custom"] == "abc"
            assert headers["authorization"] == "Bearer t"
            assert headers["user-agent"] == "wschan-test"
            assert headers["host"] == f"127.0.0.1:{srv.port}"
            assert srv.request_paths == ["/some/path?x=1"]

    run(body)


def test_subprotocol_first_offer_accepted() -> None:
    async def body() -> None:
        async with EmbeddedServer() as srv:
            async with connect(srv.url, subprotocols=["chat.v2", "chat.v1"]) as ws:  # type: ignore[list-item]
                assert ws.subprotocol == "chat.v2"
            async with connect(srv.url) as ws:
                assert ws.subprotocol is None
            assert srv.subprotocols == ["chat.v2", None]
            assert srv.subprotocol is None
            assert srv.request_headers[0]["sec-websocket-protocol"] == "chat.v2, chat.v1"

    run(body)


def test_connection_counted_before_client_sees_upgrade() -> None:
    async def body() -> None:
        async with EmbeddedServer() as srv:
            for expected in (1, 2, 3):
                async with connect(srv.url):
                    assert srv.connections == expected

    run(body)


# -- on-connect behaviours -------------------------------------------------------------------


def test_ping_on_connect_records_pong() -> None:
    async def body() -> None:
        async with EmbeddedServer(Behaviour(ping_on_connect=b"are you there")) as srv:
            async with connect(srv.url):
                await srv.wait_until(lambda: len(srv.pongs) == 1)
            assert srv.pongs == [b"are you there"]

    run(body)


def test_unsolicited_pongs_are_recorded_too() -> None:
    # A Pong nobody asked for is allowed (RFC 6455 5.5.3, a unidirectional heartbeat): the
    # record shows every Pong the client sent, not only the answers to the server's pings.
    async def body() -> None:
        async with EmbeddedServer() as srv, connect(srv.url) as ws:
            await ws.pong(b"heartbeat")
            await srv.wait_until(lambda: srv.pongs == [b"heartbeat"])
            assert await srv.ping_all(b"asked") == 1
            await srv.wait_until(lambda: srv.pongs == [b"heartbeat", b"asked"])

    run(body)


def test_each_message_and_pong_is_logged_when_info_is_on(caplog: pytest.LogCaptureFixture) -> None:
    # What ``wschan serve -v`` shows; without a record too (serve keeps none). The capture
    # sits on the server's logger itself, so it sees the lines whatever its propagation.
    caplog.set_level(logging.INFO, logger="wschan_cli.server")
    server_logger = logging.getLogger("wschan_cli.server")
    server_logger.addHandler(caplog.handler)

    def logged() -> list[str]:
        return [record.getMessage() for record in caplog.records]

    async def body() -> None:
        async with EmbeddedServer(record=False) as srv, connect(srv.url) as ws:
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\x01")
            assert await ws.recv() == b"\x00\x01"
            await ws.pong(b"beat")
            await srv.wait_until(lambda: "pong received: b'beat'" in logged())

    try:
        run(body)
    finally:
        server_logger.removeHandler(caplog.handler)
    assert "received text message, 5 bytes" in logged()
    assert "received binary message, 2 bytes" in logged()


def test_ping_all_on_demand() -> None:
    async def body() -> None:
        async with EmbeddedServer() as srv:
            assert await srv.ping_all(b"nobody") == 0
            async with connect(srv.url), connect(srv.url):
                assert await srv.ping_all(b"both") == 2
                await srv.wait_until(lambda: len(srv.pongs) == 2)
            assert srv.pongs == [b"both", b"both"]

    run(body)


def test_invalid_utf8_makes_client_close_1007() -> None:
    async def body() -> None:
        async with EmbeddedServer(Behaviour(invalid_utf8=True)) as srv, connect(srv.url) as ws:
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.sent is not None and info.value.sent.code == 1007
            await srv.wait_ended(1)
            assert srv.close_codes == [1007]

    run(body)


def test_invalid_utf8_raw_frame() -> None:
    async def body() -> None:
        async with EmbeddedServer(Behaviour(invalid_utf8=True)) as srv:
            reader, writer = await raw_connect(srv.port)
            assert await reader.readexactly(4) == b"\x81\x02\xff\xfe"
            writer.close()

    run(body)


def test_send_size_exceeds_client_max_size() -> None:
    async def body() -> None:
        async with EmbeddedServer(Behaviour(send_size=64 * 1024)) as srv:
            async with connect(srv.url, max_size=1024) as ws:
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.sent is not None and info.value.sent.code == 1009
            await srv.wait_ended(1)
            assert srv.close_codes == [1009]
            async with connect(srv.url, max_size=None) as ws:
                message = await ws.recv()
                assert isinstance(message, bytes) and len(message) == 64 * 1024

    run(body)


def test_greeting() -> None:
    async def body() -> None:
        async with EmbeddedServer(Behaviour(greeting="welcome")) as srv, connect(srv.url) as ws:
            assert await ws.recv() == "welcome"
            await ws.send("x")
            assert await ws.recv() == "x"

    run(body)


def test_on_connect_order() -> None:
    async def body() -> None:
        behaviour = Behaviour(ping_on_connect=b"p", greeting="g", send_size=3, invalid_utf8=True)
        async with EmbeddedServer(behaviour) as srv:
            reader, writer = await raw_connect(srv.port)
            assert await reader.readexactly(3) == b"\x89\x01p"  # Ping
            assert await reader.readexactly(3) == b"\x81\x01g"  # greeting
            assert (await reader.readexactly(5))[:2] == b"\x82\x03"  # 3 random bytes
            assert await reader.readexactly(4) == b"\x81\x02\xff\xfe"
            writer.close()

    run(body)


# -- TLS, threads, validation -----------------------------------------------------------------


def test_wss_echo() -> None:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def body() -> None:
        async with EmbeddedServer(ssl=server_ctx) as srv:
            assert srv.url == f"wss://127.0.0.1:{srv.port}/"
            async with connect(srv.url, ssl=client_ctx) as ws:
                await ws.send("secret")
                assert await ws.recv() == "secret"

    run(body)


def test_threaded_server_echo_and_records() -> None:
    with ThreadedServer(Behaviour(greeting="hi")) as srv:
        with sync_connect(srv.url, subprotocols=["p1"]) as ws:  # type: ignore[list-item]
            assert ws.recv(timeout=5) == "hi"
            ws.send("ping")
            assert ws.recv(timeout=5) == "ping"
            assert srv.ping_all(b"threaded") == 1
            srv.wait_until(lambda server: server.pongs == [b"threaded"])
        srv.wait_ended(1)
        assert srv.received == ["ping"]
        assert srv.connections == 1
        assert srv.close_codes == [1000]
        assert srv.subprotocols == ["p1"]
        assert srv.request_headers[0]["sec-websocket-protocol"] == "p1"


def test_threaded_server_stop_is_bounded() -> None:
    srv = ThreadedServer(Behaviour(ignore_close=True))
    srv.start()
    try:
        with sync_connect(srv.url, close_timeout=0.2) as ws:
            ws.send("x")
            assert ws.recv(timeout=5) == "x"
            # Stop with the connection still open: it must not hang.
            start = time.monotonic()
            srv.stop()
            assert time.monotonic() - start < 8
    finally:
        srv.stop(raise_on_hang=False)


def test_threaded_server_start_failure_is_raised() -> None:
    with ThreadedServer() as first, pytest.raises(OSError):  # noqa: SIM117
        with ThreadedServer(port=first.port):
            pass


@pytest.mark.parametrize(
    "kwargs",
    [
        {"close_after": 1, "drop_after": 1},
        {"drop_mid_frame": True},
        {"close_after": -1},
        {"close_code": 1005},
        {"close_code": 999},
        {"close_reason": "x" * 124},
        {"reject_status": 999},
        {"reject_status": 101},
        {"stall_before_upgrade": -1.0},
        {"ping_on_connect": b"x" * 126},
        {"send_size": -5},
    ],
)
def test_behaviour_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Behaviour(**kwargs)
