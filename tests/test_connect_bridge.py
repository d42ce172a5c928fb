"""``wschan connect`` off a terminal: a line bridge. Lines in, messages out, in order, nothing
lost; the exit status says how the connection ended. The real executable against the embedded
server."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator

import pytest

from wschan_cli.server import Behaviour

from .helpers import RawServer, discard_forever, frame
from .send_helpers import LoopThread, SilentServer, err_line, wschan
from .servers import ThreadedServer


@pytest.fixture(scope="module")
def echo() -> Iterator[ThreadedServer]:
    with ThreadedServer() as server:
        yield server


@pytest.mark.timeout(180)
def test_2000_lines_in_give_2000_replies_out_in_order_20_times(echo: ThreadedServer) -> None:
    lines = [f"line {i} ✓" for i in range(2000)]
    data = "".join(f"{line}\n" for line in lines)
    for run in range(20):
        result = wschan("connect", echo.url, "--wait", "0.2", input=data, timeout=60)
        assert result.returncode == 0, (run, err_line(result))
        assert result.stdout.decode().splitlines() == lines, run
        assert result.stderr == b""
    assert echo.close_codes[-20:] == [1000] * 20


def test_the_bridge_waits_for_silence_before_closing() -> None:
    # The server greets after the handshake: with no input at all the greeting still arrives.
    with ThreadedServer(Behaviour(greeting="hello there")) as srv:
        result = wschan("connect", srv.url, "--wait", "0.5", input=b"")
    assert result.returncode == 0, err_line(result)
    assert result.stdout == b"hello there\n"


def test_binary_replies_are_hex() -> None:
    with ThreadedServer(Behaviour(send_size=3)) as srv:
        result = wschan("connect", srv.url, "--wait", "0.2", input=b"text\r\n")
    assert result.returncode == 0, err_line(result)
    binary, text = result.stdout.decode().splitlines()
    assert len(bytes.fromhex(binary)) == 3 and text == "text"


@pytest.mark.parametrize("command", ["connect", "send"])
def test_a_non_utf8_line_ends_with_2_and_sends_nothing_after_it(command: str) -> None:
    # One rule for the bridge and send (issue 10): the lines before the bad one are sent,
    # nothing after it. (The echo of "before" may lose the race with the server's reply to
    # our Close: websockets answers a Close before its handler echoes, so count what arrived.)
    with ThreadedServer() as srv:
        result = wschan(command, srv.url, input=b"before\n\xff\x00\x01\nafter\n")
        srv.wait_ended(1)
        assert srv.received == ["before"], command
    assert result.returncode == 2, err_line(result)
    assert err_line(result) == (
        "wschan: stdin message 2 is not valid UTF-8 (byte 0); send bytes with --binary; "
        "nothing after it was sent"
    )


def test_a_clean_server_close_exits_0() -> None:
    with ThreadedServer(Behaviour(close_after=2)) as srv:
        result = wschan("connect", srv.url, input="a\nb\nc\n")
    assert result.returncode == 0, err_line(result)
    assert result.stdout == b"a\nb\n"


def test_a_close_code_other_than_1000_exits_5_and_says_how() -> None:
    with ThreadedServer(Behaviour(close_after=1, close_code=4001, close_reason="go away")) as srv:
        result = wschan("connect", srv.url, input="a\nb\n")
    assert result.returncode == 5
    assert err_line(result) == (
        'wschan: the server closed the connection: 4001 (private use) "go away"'
    )


def test_a_dropped_connection_exits_5() -> None:
    with ThreadedServer(Behaviour(drop_after=1)) as srv:
        result = wschan("connect", srv.url, input="a\nb\n")
    assert result.returncode == 5
    assert "dropped the connection without a Close frame" in err_line(result)


def test_a_refused_connection_exits_3() -> None:
    with ThreadedServer() as srv:
        url = srv.url
    result = wschan("connect", url, input="a\n")
    assert result.returncode == 3
    assert "refused" in err_line(result)


def test_a_rejected_handshake_exits_4() -> None:
    with ThreadedServer(Behaviour(reject_status=403)) as srv:
        result = wschan("connect", srv.url, input="a\n")
    assert result.returncode == 4
    assert "403" in err_line(result)


def test_a_malformed_url_is_a_usage_error() -> None:
    result = wschan("connect", "http://nope", input="")
    assert result.returncode == 2


def test_init_messages_go_first_then_the_lines(echo: ThreadedServer) -> None:
    result = wschan(
        "connect", echo.url, "--init", "first", "--init", "second", "--wait", "0.2", input="x\n"
    )
    assert result.returncode == 0, err_line(result)
    assert result.stdout == b"first\nsecond\nx\n"


def test_reconnect_resends_init_with_growing_delays_then_gives_up() -> None:
    with ThreadedServer(Behaviour(drop_after=1)) as srv:
        result = wschan(
            "connect",
            srv.url,
            "--init",
            "hello",
            "--reconnect",
            "--reconnect-delay",
            "0.05",
            "--reconnect-tries",
            "2",
            input="",
        )
        received = srv.received
    assert result.returncode == 5
    assert received == ["hello"] * 3  # the first connection and two reconnects
    assert result.stdout == b"hello\n" * 3
    err = err_line(result).splitlines()
    assert "attempt 1/2" in err[0] and "attempt 2/2" in err[1]
    delays = [float(line.split("reconnecting in ")[1].split("s")[0]) for line in err[:2]]
    # Delay n is 0.05 * 2**(n-1) plus up to 0.05 of jitter: they never shrink. Shown to two
    # decimals, 0.096 and 0.104 both read 0.10, so "grows" is <= here (it failed 1 run in ~100).
    assert delays[0] <= delays[1]
    assert "gave up after 2 reconnect attempts" in err[2]


def test_ctrl_c_in_the_bridge_exits_130(echo: ThreadedServer) -> None:
    import signal
    import subprocess
    import sys

    from .send_helpers import clean_env

    before = echo.connections
    process = subprocess.Popen(
        [sys.executable, "-m", "wschan_cli", "connect", echo.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        echo.wait_connections(before + 1, timeout=10)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130
    assert err.decode().strip() == "wschan: interrupted"


def test_a_line_over_1_mib_is_streamed_and_arrives_whole() -> None:
    line = "x" * (3 << 20)
    with ThreadedServer(max_size=None) as srv:
        result = wschan("connect", srv.url, "--max-size", "0", input=line + "\n", timeout=60)
        srv.wait_ended(1)
        assert srv.received == [line]
    assert result.returncode == 0, err_line(result)
    assert result.stdout == (line + "\n").encode()


# ---------------------------------------------------------------------- hostile servers


async def _fail_after_the_first_message(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Once the first line is in, a Close with a code no one may send (999: the client fails
    the connection with 1002), then silence with TCP left open."""
    await reader.read(65536)
    writer.write(frame(0x8, struct.pack("!H", 999)))
    await discard_forever(reader, writer)


def test_a_connection_failed_while_waiting_for_silence_exits_5_not_0() -> None:
    # The failure (our Close 1002 out, TCP still open) was only seen by the final close: the
    # bridge used to report the close as it went and exit 0, saying nothing.
    with LoopThread() as loop:
        server = RawServer(_fail_after_the_first_message)
        loop.call(server.__aenter__())
        result = wschan(
            "connect", server.url, "--wait", "0.3", "--close-timeout", "5", input="hi\n"
        )
    assert result.returncode == 5, err_line(result)
    assert (
        err_line(result)
        == 'wschan: closed the connection: 1002 (protocol error) "invalid status code"'
    )


def test_a_write_timeout_in_the_bridge_is_one_line_and_exit_5() -> None:
    # A server that stopped reading: the send that cannot drain used to escape as
    # "internal error: WriteTimeout" with exit 1.
    lines = ("x" * (1 << 16) + "\n") * 256  # 16 MiB: more than the socket buffers hold
    with LoopThread() as loop:
        server = loop.call(SilentServer(reads=False).start())
        result = wschan(
            "connect",
            server.url,
            "--write-timeout",
            "0.3",
            "--close-timeout",
            "0.3",
            input=lines,
        )
    assert result.returncode == 5, err_line(result)
    assert err_line(result) == (
        "wschan: a frame could not be written within 0.3s (--write-timeout): the server "
        "stopped reading; connection aborted (1006)"
    )
