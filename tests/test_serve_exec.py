"""``wschan serve --exec``: the real executable serving a real program per connection, reached by
websockets' sync client over 127.0.0.1. Orderings are read from the server's ``-v`` log lines
(each waited for with a bound), never from sleeps."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from wschan_cli.server.exec import ExecServer, ExecSpec

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes and signals"),
    pytest.mark.timeout(60),
]

PY = sys.executable


class Served:
    """A running ``wschan serve -v ... --exec CMD``: its URL and its stderr, line by line."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_log(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """The first log line (not matched before) that matches ``pattern``."""
        for index, line in enumerate(self.log):
            if match := re.search(pattern, line):
                del self.log[index]
                return match
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no log line matching {pattern!r}; got {self.log}") from None
            if match := re.search(pattern, line):
                return match
            self.log.append(line)


@contextmanager
def serve(*args: str) -> Iterator[Served]:
    process = subprocess.Popen(
        [PY, "-m", "wschan_cli", "serve", "-v", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()  # bounded by the test's timeout
        assert url.startswith("ws://127.0.0.1:"), url
        yield Served(process, url)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        finally:
            if process.poll() is None:
                process.kill()


def receive_all(ws: ClientConnection, timeout: float = 15.0) -> list[str | bytes]:
    """Every message until the server closes."""
    messages: list[str | bytes] = []
    try:
        while True:
            messages.append(ws.recv(timeout))
    except ConnectionClosed:
        return messages


def gone(pid: int) -> bool:
    """No such process, or a zombie (dead; whoever is its parent has not reaped it yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    """Poll ``gone(pid)`` (bounded): a signalled process that is not our child cannot be waited
    for, and SIGKILL is delivered asynchronously."""
    tick = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if gone(pid):
            return True
        tick.wait(0.02)
    return gone(pid)


def test_cat_echoes_10000_lines_in_order_and_ends_when_the_client_closes() -> None:
    lines = [f"line {i}" for i in range(10_000)]
    with serve("--exec", "cat") as srv, connect(srv.url, open_timeout=10) as ws:
        pid = int(srv.wait_log(r"started cat, pid (\d+)")[1])

        def send_all() -> None:
            for line in lines:
                ws.send(line)

        # Sent from a thread while this one reads: cat and the pipes hold only so much.
        sender = threading.Thread(target=send_all)
        sender.start()
        received = [ws.recv(15) for _ in lines]
        sender.join(15)
        assert received == lines
        ws.close()
        srv.wait_log(rf"pid {pid} ended")
        assert gone(pid)


def test_request_details_reach_the_program_as_cgi_variables() -> None:
    with serve("--exec", "env") as srv:
        url = srv.url + "chat/room%201?user=ann&x=1"
        with connect(url, additional_headers={"X-Token": "t1", "Proxy": "evil"}) as ws:
            local_port = ws.local_address[1]
            env = dict(str(line).split("=", 1) for line in receive_all(ws) if "=" in str(line))
            code, reason = ws.close_code, ws.close_reason
    port = srv.url.rsplit(":", 1)[1].rstrip("/")
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == str(local_port)
    assert env["SERVER_NAME"] == "127.0.0.1" and env["SERVER_PORT"] == port
    assert env["REQUEST_METHOD"] == "GET" and env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert env["REQUEST_URI"] == "/chat/room%201?user=ann&x=1"
    assert env["SCRIPT_NAME"] == "/" and env["PATH_INFO"] == "/chat/room 1"
    assert env["QUERY_STRING"] == "user=ann&x=1"
    assert env["HTTP_X_TOKEN"] == "t1" and env["HTTP_UPGRADE"] == "websocket"
    assert "HTTP_PROXY" not in env  # httpoxy: a request header must not set the proxy
    assert "HTTPS" not in env
    # env exits by itself: the connection closes normally, naming its status.
    assert (code, reason) == (1000, "exit status 0")


def test_inherited_cgi_variables_do_not_leak_into_the_program() -> None:
    os.environ["QUERY_STRING"] = "leaked"
    os.environ["HTTP_X_LEAK"] = "leaked"
    try:
        with serve("--exec", "env") as srv, connect(srv.url) as ws:
            text = "\n".join(str(m) for m in receive_all(ws))
    finally:
        del os.environ["QUERY_STRING"], os.environ["HTTP_X_LEAK"]
    assert "QUERY_STRING=\n" in text + "\n" and "leaked" not in text


def test_the_exit_status_closes_the_connection_after_all_output() -> None:
    script = "import sys\nfor i in range(500): print(i)\nsys.exit(3)"
    with serve("--exec", PY, "-c", script) as srv, connect(srv.url) as ws:
        messages = receive_all(ws)
        assert messages == [str(i) for i in range(500)]
        assert (ws.close_code, ws.close_reason) == (1000, "exit status 3")


def test_stdin_lines_stderr_passes_through_and_binary_output() -> None:
    script = (
        "import sys\n"
        "for line in sys.stdin:\n"
        "    print('err:' + line.strip(), file=sys.stderr, flush=True)\n"
        "    sys.stdout.buffer.write(b'\\xff' + line.encode()); sys.stdout.flush()\n"
    )
    with serve("--exec", PY, "-u", "-c", script) as srv, connect(srv.url) as ws:
        ws.send("a b")
        assert ws.recv(10) == b"\xffa b"  # not UTF-8: sent as a binary message
        srv.wait_log(r"^err:a b$")
        ws.send(b"\x01\x02")
        assert ws.recv(10) == b"\xff\x01\x02"


def test_client_close_sends_sigterm_then_sigkill_after_the_grace(tmp_path: Path) -> None:
    # Ignores SIGTERM, and has a child of its own: both must go (the process group is signalled).
    script = (
        "import os, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(os.getpid(), child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    with serve("--kill-grace", "0.5", "--exec", PY, "-c", script) as srv:
        with connect(srv.url) as ws:
            pid, child = map(int, str(ws.recv(15)).split())
        srv.wait_log(rf"pid {pid} got SIGKILL: still running 0.5s after SIGTERM")
        srv.wait_log(rf"pid {pid} ended \(killed by SIGKILL\)")
        assert gone(pid)  # the server reaped it before logging its end
        assert wait_gone(child)


def test_a_connection_over_the_bound_is_refused_with_503() -> None:
    with serve("--max-processes", "1", "--exec", "cat") as srv:
        with connect(srv.url) as first:
            pid = int(srv.wait_log(r"started cat, pid (\d+)")[1])
            with pytest.raises(InvalidStatus) as refused:
                connect(srv.url, open_timeout=10)
            assert refused.value.response.status_code == 503
            srv.wait_log(r"refused 127\.0\.0\.1:\d+: 1 program\(s\) running")
            first.send("still served")
            assert first.recv(10) == "still served"
        srv.wait_log(rf"pid {pid} ended")
        # The slot is free again once the program has ended.
        with connect(srv.url) as second:
            second.send("again")
            assert second.recv(10) == "again"


def test_no_shell_runs_unless_written() -> None:
    # One argument with shell syntax in it reaches the program as is.
    with serve("--exec", "echo", "$HOME; ls | wc") as srv, connect(srv.url) as ws:
        assert receive_all(ws) == ["$HOME; ls | wc"]


def test_options_after_cmd_belong_to_cmd() -> None:
    # -v would be serve's --verbose if parsed; after CMD it is the program's.
    script = "import sys; print(sys.argv[1:])"
    with serve("--exec", PY, "-c", script, "-v") as srv, connect(srv.url) as ws:
        assert receive_all(ws) == ["['-v']"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--exec"], "--exec needs a command"),
        (["cat"], "unexpected argument 'cat'"),
        (["--greeting", "hi", "--exec", "cat"], "--greeting cannot be used with --exec"),
        (["--max-processes", "2"], "--max-processes needs --exec"),
        (["--exec", "no-such-program-xyz"], "command not found: no-such-program-xyz"),
        (["--max-processes", "0", "--exec", "cat"], "0 is not in the range x>=1"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    result = subprocess.run(
        [PY, "-m", "wschan_cli", "serve", *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_wschan_send_talks_to_a_program_behind_wschan_serve() -> None:
    with serve("--exec", "cat") as srv:
        result = subprocess.run(
            [PY, "-m", "wschan_cli", "send", srv.url],
            input="one\ntwo\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["one", "two"]


def test_stopping_the_server_closes_with_1001_and_stops_the_programs() -> None:
    with serve("--exec", "cat") as srv, connect(srv.url) as ws:
        pid = int(srv.wait_log(r"started cat, pid (\d+)")[1])
        srv.process.send_signal(signal.SIGTERM)
        assert srv.process.wait(20) == 0
        with pytest.raises(ConnectionClosed):
            ws.recv(10)
        assert ws.close_code == 1001
        assert gone(pid)


def test_an_output_line_over_1_mib_closes_with_1009() -> None:
    script = "print('x' * (2 * 1024 * 1024), flush=True); import time; time.sleep(60)"
    with serve("--exec", PY, "-c", script) as srv, connect(srv.url) as ws:
        assert receive_all(ws) == []
        assert ws.close_code == 1009


def test_the_exec_server_counts_its_connections_but_keeps_no_record_of_them() -> None:
    # serve --exec runs for as long as it is left running: a record per connection (headers,
    # path, subprotocol, close code) would grow without bound (issue 13, item 4).
    async def body() -> None:
        async with ExecServer(ExecSpec((PY, "-c", "print('hi')"))) as srv:
            for _ in range(2):
                async with async_connect(srv.url) as ws:
                    assert [message async for message in ws] == ["hi"]
            await srv.wait_ended(2)
        assert (srv.connections, srv.ended) == (2, 2)
        assert srv.request_headers == [] and srv.request_paths == []
        assert srv.subprotocols == [] and srv.close_codes == []

    asyncio.run(asyncio.wait_for(body(), 30))
