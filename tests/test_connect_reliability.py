"""``wschan connect --reconnect`` (issue 10): the status says what happened when no connection
was ever made (3, 4), and permanent errors are given up at once while transient ones are retried.

The real executable runs as a bridge (stdin at end of input) against servers on 127.0.0.1. No
test queries real DNS: the unknown host is answered "no such name" in the child process
(``no_dns_env``).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from .send_helpers import HttpAnswer, LoopThread, clean_env, err_line, no_dns_env, wschan
from .servers import ThreadedServer
from .test_send_net import server_context

UNKNOWN_HOST = "nonexistent.invalid"
FAST = ("--reconnect", "--reconnect-delay", "0.05", "--reconnect-max-delay", "0.05")
# "At once": any retry would first wait 30 s, so a run well under that gave up without one,
# however loaded the machine (the 1 s default left only a second of margin).
SLOW = ("--reconnect", "--reconnect-delay", "30", "--reconnect-max-delay", "30")


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connect(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = wschan("connect", *args, env=env, timeout=30)
    return result.returncode, err_line(result)


@pytest.mark.timeout(60)
def test_an_unknown_host_is_given_up_at_once_with_3(tmp_path: Path) -> None:
    status, err = connect(*SLOW, f"ws://{UNKNOWN_HOST}/", env=no_dns_env(tmp_path))
    assert status == 3, err
    assert f"cannot resolve host '{UNKNOWN_HOST}'" in err and "not retried" in err, err
    assert "reconnecting" not in err, err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("status", [401, 403, 404])
def test_an_http_4xx_is_given_up_at_once_with_4(status: int) -> None:
    with LoopThread() as loop:
        server = loop.call(HttpAnswer(status).start())
        code, err = connect(*SLOW, server.url)
        assert code == 4, err
        assert f"HTTP {status}" in err and "not retried" in err, err
        assert len(server.requests) == 1


@pytest.mark.timeout(60)
def test_an_untrusted_certificate_is_given_up_at_once_with_3() -> None:
    with ThreadedServer(ssl=server_context(trustme.CA())) as server:
        code, err = connect(*FAST, server.url)
    assert code == 3, err
    assert "certificate verification failed" in err and "not retried" in err, err
    assert "reconnecting" not in err, err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("status", [503, 408])
def test_a_5xx_or_408_is_retried_then_gives_4(status: int) -> None:
    with LoopThread() as loop:
        server = loop.call(HttpAnswer(status).start())
        code, err = connect(*FAST, "--reconnect-tries", "2", server.url)
        assert code == 4, err
        assert "gave up after 2 reconnect attempts" in err, err
        assert len(server.requests) == 3  # the first attempt and two retries


@pytest.mark.timeout(60)
def test_429_waits_as_long_as_retry_after_asks() -> None:
    with LoopThread() as loop:
        server = loop.call(HttpAnswer(429, ("Retry-After: 1",)).start())
        # (--wait 3: at end of input the bridge would otherwise stop waiting after 1 s)
        code, err = connect(
            *FAST, "--reconnect-tries", "1", "--reconnect-max-delay", "5", "--wait", "3", server.url
        )
        assert code == 4, err
        first, second = server.requests
    assert second - first >= 0.9, "the 0.05 s backoff was used instead of Retry-After: 1"


@pytest.mark.timeout(60)
def test_a_refused_port_at_end_of_input_gives_3_not_0() -> None:
    code, err = connect(*FAST, "--reconnect-tries", "0", f"ws://127.0.0.1:{refused_port()}/")
    assert code == 3, err
    assert err.splitlines()[-1].startswith("wschan: connection refused"), err


@pytest.mark.timeout(60)
def test_a_refused_port_gives_3_once_the_tries_are_used_up() -> None:
    code, err = connect(*FAST, "--reconnect-tries", "3", f"ws://127.0.0.1:{refused_port()}/")
    assert code == 3, err
    assert "gave up after 3 reconnect attempts" in err, err


@pytest.mark.timeout(120)
def test_ctrl_c_in_the_bridge_closes_with_1001_and_exits_130_twenty_times() -> None:
    # One Ctrl-C rule for send, the bridge and the prompt (runner.CtrlC): the first
    # closes cleanly (here with 1001 "interrupted"), one line on stderr, status 130.
    with ThreadedServer() as server:
        for run in range(20):
            proc = subprocess.Popen(
                [sys.executable, "-m", "wschan_cli", "connect", server.url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=clean_env(),
            )
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(b"hello\n")
            proc.stdin.flush()
            assert proc.stdout.readline() == b"hello\n"  # connected, the line echoed
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=15)
            assert proc.returncode == 130, (run, err)
            assert err == b"wschan: interrupted\n", (run, err)
            server.wait_ended(run + 1)
        assert server.close_codes == [1001] * 20
