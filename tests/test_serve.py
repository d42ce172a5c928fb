"""Tests of ``wschan serve``, the command around the embedded server (tested in test_server.py):
the real executable over 127.0.0.1, its signals and exit statuses, its memory, its usage errors."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from click.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as sync_connect

from wschan_cli.commands.serve import _echo_server, _is_loopback
from wschan_cli.commands.serve import serve as serve_command

T = TypeVar("T")


def run(make: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
    """Run one async test body with a hard timeout."""

    async def main() -> T:
        return await asyncio.wait_for(make(), timeout)

    return asyncio.run(main())


def test_the_server_wschan_serve_runs_keeps_no_record() -> None:
    # A long-running ``wschan serve`` must hold flat memory however much it echoes (issue 13,
    # item 4): the server the command builds counts, and keeps no message.
    async def body() -> None:
        server, _ = _echo_server("127.0.0.1", 0, True, None)
        async with server as srv:
            async with connect(srv.url) as ws:
                await ws.send("one")
                assert await ws.recv() == "one"
            await srv.wait_ended(1)
        assert (srv.messages, srv.connections, srv.ended) == (1, 1, 1)
        assert srv.received == [] and srv.close_codes == [] and srv.request_headers == []

    run(body)


# -- the serve command ---------------------------------------------------------------------------


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """Read one stdout line from a subprocess, or fail after ``timeout`` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise AssertionError(f"no line on stdout within {timeout}s")
    return proc.stdout.readline()


def start_serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "wschan_cli", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_process(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str, str]:
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, out, err


@pytest.mark.timeout(40)
def test_serve_subprocess_echo_and_sigterm() -> None:
    proc = start_serve("--port", "0")
    try:
        url = read_line(proc, 15).rstrip("\n")
        assert url.startswith("ws://127.0.0.1:") and url.endswith("/")
        with sync_connect(url, open_timeout=5) as ws:
            ws.send("round trip")
            assert ws.recv(timeout=5) == "round trip"
            ws.send(b"\x01\x02")
            assert ws.recv(timeout=5) == b"\x01\x02"
        status, out, err = stop_process(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert status == 0, err
    assert out == ""  # the URL was the only line
    assert "listening on" in err


def resident_kib(pid: int) -> int:
    """VmRSS of a process, in KiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS line")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")
@pytest.mark.timeout(60)
def test_serve_keeps_no_message_so_its_memory_stays_flat() -> None:
    # 48 messages of 512 KiB: a server that kept them would hold 24 MiB more at the end.
    payload = os.urandom(512 * 1024)
    proc = start_serve("--port", "0", "--no-compression")
    try:
        url = read_line(proc, 15).rstrip("\n")
        with sync_connect(url, open_timeout=5, max_size=None) as ws:
            for _ in range(8):  # warm-up: buffers and the allocator reach their working size
                ws.send(payload)
                assert ws.recv(timeout=10) == payload
            before = resident_kib(proc.pid)
            for _ in range(48):
                ws.send(payload)
                assert ws.recv(timeout=10) == payload
            after = resident_kib(proc.pid)
        stop_process(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert after - before < 8 * 1024, f"RSS grew from {before} KiB to {after} KiB"


# The serve process's own Python, started so that it can (or cannot) import uvloop.
WITH_UVLOOP = ["-m", "wschan_cli"]
WITHOUT_UVLOOP = [
    "-c",
    "import sys; sys.modules['uvloop'] = None; sys.argv[0] = 'wschan'\n"
    "from wschan_cli.entry import main; main()",
]


@pytest.mark.parametrize("installed", [True, False], ids=["uvloop", "asyncio"])
@pytest.mark.timeout(40)
def test_serve_runs_on_uvloop_when_it_is_installed(installed: bool) -> None:
    start = WITH_UVLOOP if installed else WITHOUT_UVLOOP
    if installed:
        pytest.importorskip("uvloop")
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", *start, "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = read_line(proc, 15).rstrip("\n")
        with sync_connect(url, open_timeout=5) as ws:
            ws.send("on which loop?")
            assert ws.recv(timeout=5) == "on which loop?"
        status, _, err = stop_process(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert status == 0, err
    assert (" uvloop.loop\n" in err) is installed  # the compiled loop, not a blocked import


@pytest.mark.timeout(40)
def test_serve_subprocess_behaviour_and_sigint() -> None:
    proc = start_serve("--close-after", "1", "--close-code", "4000", "--close-reason", "enough")
    try:
        url = read_line(proc, 15).rstrip("\n")
        with sync_connect(url, open_timeout=5) as ws:
            ws.send("one")
            assert ws.recv(timeout=5) == "one"
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "enough")
        status, _, err = stop_process(proc, signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert status == 130, err


def test_serve_help_mentions_every_option() -> None:
    result = CliRunner().invoke(serve_command, ["--help"], prog_name="wschan serve")
    assert result.exit_code == 0
    expected = [
        "--host", "--port", "--close-after", "--close-code", "--close-reason",
        "--drop-after", "--drop-mid-frame", "--ignore-close", "--reject", "--reject-body",
        "--stall-before-upgrade", "--ping-on-connect", "--invalid-utf8", "--send-size",
        "--greeting", "--no-compression", "--certfile", "--keyfile", "--exec",
        "--max-processes", "--kill-grace",
    ]  # fmt: skip
    for option in expected:
        assert option in result.output, option
    # And every option the command really has, with some help text (CMD is in the usage line).
    for param in serve_command.params:
        if param.param_type_name == "argument":
            continue
        for opt in param.opts:
            assert opt in result.output, opt
        assert getattr(param, "help", None), param.name


@pytest.mark.parametrize(
    "args",
    [
        ["--drop-mid-frame"],
        ["--close-after", "1", "--drop-after", "1"],
        ["--close-code", "1005"],
        ["--reject", "600"],
        ["--keyfile", __file__],
    ],
)
def test_serve_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(serve_command, args)
    assert result.exit_code == 2, result.output


def test_serve_usage_error_names_the_option() -> None:
    result = CliRunner().invoke(serve_command, ["--close-after", "1", "--drop-after", "1"])
    assert result.exit_code == 2
    assert "--close-after and --drop-after are mutually exclusive" in result.output


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("", False), ("192.0.2.1", False), ("example.test", False)],
)  # fmt: skip
def test_non_loopback_hosts_are_detected(host: str, loopback: bool) -> None:
    # Only the check: binding a non-loopback address is not allowed in these tests.
    assert _is_loopback(host) is loopback
