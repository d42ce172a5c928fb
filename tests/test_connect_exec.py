"""``wschan connect URL --exec CMD``: the real executable with a real program on its end of the
socket, against servers on 127.0.0.1 (the embedded server, or websockets' sync server when the
test needs a server that streams)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.sync.server import ServerConnection, serve

from wschan_cli.server import Behaviour

from .send_helpers import clean_env, wschan
from .servers import ThreadedServer

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes and signals"),
    pytest.mark.timeout(60),
]

PY = sys.executable


def connect_exec(url: str, *args: str, timeout: float = 40.0) -> tuple[int, str]:
    result = wschan("connect", url, *args, env=clean_env(), timeout=timeout)
    return result.returncode, result.stderr.decode()


@contextmanager
def streaming_server(lines: list[str]) -> Iterator[tuple[str, list[str | bytes]]]:
    """Sends ``lines`` (from a thread) while collecting as many messages, then closes 1000."""
    received: list[str | bytes] = []

    def handler(ws: ServerConnection) -> None:
        def send_all() -> None:
            for line in lines:
                ws.send(line)

        sender = threading.Thread(target=send_all)
        sender.start()
        for _ in lines:
            received.append(ws.recv(30))
        sender.join(30)
        ws.close(1000)

    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/", received
        finally:
            server.shutdown()
            thread.join(10)


def test_10000_lines_each_way_through_cat_in_order() -> None:
    lines = [f"line {i}" for i in range(10_000)]
    with streaming_server(lines) as (url, received):
        status, stderr = connect_exec(url, "--exec", "cat")
    assert received == lines
    assert status == 0, stderr


def test_cmd_exiting_closes_with_the_chosen_code_and_wschan_exits_with_its_status() -> None:
    script = "import sys; print('a'); print('b'); sys.exit(3)"
    with ThreadedServer() as server:
        status, stderr = connect_exec(
            server.url, "--exec-close-code", "4000", "--exec", "--", PY, "-c", script
        )
        server.wait_ended(1)
        server.wait_received(2)  # the handler may still be reading what came with the Close
        assert server.received == ["a", "b"]
        assert server.close_codes == [4000]
    assert status == 3
    assert stderr.strip().endswith(f"{Path(PY).name}: exit status 3"), stderr


def test_server_close_ends_cmd_input_and_wschan_waits_for_it(tmp_path: Path) -> None:
    out = tmp_path / "seen"
    # Reads to EOF, then takes its time, writes what it saw and exits 7.
    script = (
        "import sys, time\n"
        "seen = sys.stdin.read()\n"
        "time.sleep(0.3)\n"
        f"open({str(out)!r}, 'w').write(seen)\n"
        "sys.exit(7)\n"
    )
    with ThreadedServer(Behaviour(greeting="hello", close_after=0)) as server:
        status, stderr = connect_exec(server.url, "--exec", "--", PY, "-c", script)
    assert out.read_text() == "hello\n"
    assert status == 7
    # One line names both ends: the server's close and CMD's status.
    assert "the server closed the connection: 1000" in stderr and "exit status 7" in stderr


def test_cmd_still_running_after_exec_wait_is_stopped() -> None:
    script = "import time; time.sleep(60)"
    with ThreadedServer(Behaviour(close_after=0)) as server:
        status, stderr = connect_exec(
            server.url, "--exec-wait", "0.3", "--exec", "--", PY, "-c", script, timeout=20
        )
    assert status == 128 + 15  # SIGTERM, as a shell reports it
    assert "still running 0.3s after its input ended" in stderr
    assert "killed by SIGTERM" in stderr


def test_a_failed_connect_is_the_status_and_cmd_is_stopped() -> None:
    with ThreadedServer(Behaviour(reject_status=403)) as server:
        status, stderr = connect_exec(server.url, "--exec", "cat")
    assert status == 4 and "HTTP 403" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--exec"], "--exec needs a command"),
        (["cat"], "unexpected argument 'cat'"),
        (["--exec-wait", "1"], "--exec-wait needs --exec"),
        (["--reconnect", "--exec", "cat"], "--reconnect cannot be used with --exec"),
        (["--exec", "no-such-program-xyz"], "command not found: no-such-program-xyz"),
        (["--exec-close-code", "1006", "--exec", "cat"], "1006 cannot be sent"),
        (["--exec-close-code", "2000", "--exec", "cat"], "2000 cannot be sent"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    status, stderr = connect_exec("ws://127.0.0.1:1/", *args)
    assert status == 2 and message in stderr, stderr


def test_a_line_over_1_mib_closes_with_1009_and_exits_1() -> None:
    script = "print('x' * (2 * 1024 * 1024))"
    with ThreadedServer() as server:
        status, stderr = connect_exec(server.url, "--exec", "--", PY, "-c", script)
        server.wait_ended(1)
        assert server.close_codes == [1009]
    assert status == 1
    assert "wrote a line over 1048576 bytes: closed the connection with 1009" in stderr, stderr


def test_ctrl_c_stops_the_program_closes_with_1001_and_exits_130() -> None:
    # run_main's first Ctrl-C stage (no stop of its own: the session is cancelled): CMD is
    # stopped, the connection closed with 1001, one line and 130.
    import signal
    import subprocess

    with ThreadedServer() as server:
        before = server.connections
        process = subprocess.Popen(
            [PY, "-m", "wschan_cli", "connect", server.url, "--exec", "cat"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        try:
            server.wait_connections(before + 1, timeout=20)
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        server.wait_ended(1, timeout=20)
        assert server.close_codes == [1001]
    assert process.returncode == 130, err
    assert err.decode().strip() == "wschan: interrupted"
