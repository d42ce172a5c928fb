"""``wschan send`` failures: each misbehaviour of the embedded server gives its exit status and
one clear line on stderr; bad input gives exit 2, says what is wrong, and sends nothing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from wschan_cli.server import Behaviour

from .send_helpers import HttpAnswer, LoopThread, err_line, wschan
from .servers import ThreadedServer


def one_line(result: object) -> str:
    text = err_line(result)  # type: ignore[arg-type]
    assert "\n" not in text and "Traceback" not in text, text
    return text


# ---------------------------------------------------------------------- server misbehaviour


@pytest.mark.parametrize(
    ("behaviour", "extra", "status", "says"),
    [
        (
            Behaviour(close_after=1, close_code=4001, close_reason="go away"),
            [],
            5,
            'wschan: the server closed the connection: 4001 (private use) "go away"',
        ),
        (
            Behaviour(close_after=0, close_code=1011, close_reason="oops"),
            [],
            5,
            'wschan: the server closed the connection: 1011 (internal error) "oops"',
        ),
        (
            Behaviour(drop_after=1),
            [],
            5,
            "wschan: the server dropped the connection without a Close frame (1006)",
        ),
        (
            Behaviour(drop_after=1, drop_mid_frame=True),
            [],
            5,
            "wschan: the server dropped the connection without a Close frame (1006)",
        ),
        (
            Behaviour(ignore_close=True),
            ["--close-timeout", "0.3"],
            5,
            "wschan: the server did not answer the Close frame within 0.3s (--close-timeout);"
            " connection aborted (1006)",
        ),
        (
            Behaviour(reject_status=403, reject_body="go away"),
            [],
            4,
            "rejected the upgrade with HTTP 403 Forbidden: go away",
        ),
        (
            Behaviour(reject_status=500),
            [],
            4,
            "rejected the upgrade with HTTP 500 Internal Server Error",
        ),
        (
            Behaviour(stall_before_upgrade=5),
            ["--open-timeout", "0.3"],
            3,
            "timed out after 0.3s opening",
        ),
        (
            Behaviour(stall_before_upgrade=5),
            ["--timeout", "0.3"],
            124,
            "wschan: timed out after 0.3s (--timeout): 0 sent, 0 replies received",
        ),
        (
            Behaviour(invalid_utf8=True),
            [],
            5,
            'closed the connection: 1007 (invalid data) "invalid UTF-8 at position 0"',
        ),
        (
            Behaviour(send_size=2_000_000),
            [],
            5,
            "closed the connection: 1009 (message too big)",
        ),
    ],
    ids=[
        "close-4001",
        "close-1011",
        "drop",
        "drop-mid-frame",
        "ignore-close",
        "reject-403",
        "reject-500",
        "stall-open-timeout",
        "stall-timeout",
        "invalid-utf8",
        "too-big",
    ],
)
def test_each_misbehaviour_maps_to_its_status_and_message(
    behaviour: Behaviour, extra: list[str], status: int, says: str
) -> None:
    with ThreadedServer(behaviour) as server:
        result = wschan("send", server.url, "a", "b", *extra)
    assert result.returncode == status, err_line(result)
    assert says in one_line(result)


def test_a_normal_close_before_all_messages_were_sent_is_exit_1() -> None:
    with ThreadedServer(Behaviour(close_after=0)) as server:
        server_url = server.url
        # 200 messages: the server's Close (right after the handshake) lands while sending.
        result = wschan("send", server_url, "--wait", "5", input="x\n" * 200)
    assert result.returncode in (0, 1), err_line(result)
    if result.returncode == 1:  # (every write may also have gone out before the Close arrived)
        assert "closed the connection (1000 normal closure) before all messages were sent" in (
            one_line(result)
        )


def test_a_normal_close_before_the_expected_replies_is_exit_1() -> None:
    with ThreadedServer(Behaviour(close_after=1)) as server:
        result = wschan("send", server.url, "a", "b", "--expect", "2")
    assert result.returncode == 1
    assert "the server closed the connection (1000 normal closure) after 1 of 2 expected" in (
        one_line(result)
    )


def test_a_normal_close_by_the_server_after_everything_is_exit_0() -> None:
    with ThreadedServer(Behaviour(close_after=1, close_code=1001)) as server:
        result = wschan("send", server.url, "a")
    assert result.returncode == 0, err_line(result)
    assert result.stdout == b"a\n"


def test_refused_port_is_exit_3() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = wschan("send", f"ws://127.0.0.1:{port}/", "x")
    assert result.returncode == 3
    assert one_line(result) == (
        f"wschan: connection refused by 127.0.0.1:{port}: is a server listening there?"
    )


def test_expect_with_wait_fails_with_124_on_silence(tmp_path: Path) -> None:
    with ThreadedServer() as server:
        result = wschan("send", server.url, "a", "--expect", "2", "--wait", "0.3")
    assert result.returncode == 124
    assert one_line(result) == "wschan: no reply for 0.3s (--wait): after 1 of 2 expected replies"
    assert result.stdout == b"a\n"


def test_timeout_bounds_a_run_waiting_for_replies() -> None:
    with ThreadedServer() as server:
        result = wschan("send", server.url, "a", "--until", "never", "--timeout", "0.5")
    assert result.returncode == 124
    assert "timed out after 0.5s (--timeout): 1 sent, 1 reply received" in one_line(result)
    assert result.stdout == b"a\n"


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        (tuple(f"X-Junk-{i}: a" for i in range(200)), "(expected no more than 128 headers)"),
        (("X-Long: " + "a" * 10000,), "(read 10010 bytes, expected no more than 8192 bytes)"),
    ],
)
def test_an_oversized_response_head_is_exit_4_saying_which_limit(
    headers: tuple[str, ...], says: str
) -> None:
    # websockets bounds the response head; the line said only "did not receive a valid HTTP
    # response", the limit that was hit was left out.
    with LoopThread() as loop:
        server = loop.call(HttpAnswer(101, headers).start())
        result = wschan("send", server.url, "x")
    assert result.returncode == 4, err_line(result)
    assert one_line(result) == (
        f"wschan: handshake failed: connection to {server.url} sent an invalid handshake "
        f"response: did not receive a valid HTTP response {says}"
    )


# ---------------------------------------------------------------------- bad input: exit 2


@pytest.fixture
def untouched() -> Iterator[ThreadedServer]:
    """A server that must see no connection at all."""
    with ThreadedServer() as server:
        yield server
        assert server.request_headers == [], "a connection was made"
        assert server.received == []


def bad(tmp_path: Path, url: str) -> list[tuple[list[str], str]]:
    missing = str(tmp_path / "missing.txt")
    return [
        (["send", "ws//no-scheme", "x"], "Invalid value for 'URL'"),
        (["send", "http://127.0.0.1:1/", "x"], "scheme isn't ws or wss"),
        (["send", "ws://127.0.0.1:99999/", "x"], "Port out of range"),
        (["send", url, "--hex", "abc"], "message 1 is not valid hex"),
        (["send", url, "--hex", "zz"], "message 1 is not valid hex"),
        (["send", url, "ok", "--base64", "a$=="], "message 1 is not valid base64"),
        (["send", url, "--file", missing], "cannot read"),
        (["send", url, "--file", str(tmp_path)], "Is a directory"),
        (["send", url, "x", "-H", "NoColon"], "has no colon"),
        (["send", url, "x", "-H", ": empty"], "empty header name"),
        (["send", url, "x", "--close-code", "1005"], "1005 cannot be sent in a Close frame"),
        (["send", url, "x", "--close-code", "999"], "999 cannot be sent"),
        (["send", url, "x", "--close-code", "2000"], "2000 cannot be sent"),
        (["send", url, "x", "--close-code", "5000"], "5000 cannot be sent"),
        (["send", url, "x", "--close-code", "1015"], "1015 cannot be sent"),
        (["send", url, "x", "--close-reason", "r" * 124], "at most 123 bytes"),
        (["send", url, "x", "--abrupt", "--close-code", "4000"], "--abrupt sends no Close"),
        (["send", url, "x", "--until", "("], "invalid regular expression"),
        (["send", url, "x", "--auth", "nocolon"], "USER:PASSWORD"),
        (["send", url, "x", "--auth", "a:b", "--bearer", "t"], "--auth and --bearer"),
        (["send", url, "x", "--key", missing], "does not exist"),
        (["send", url, "x", "--proxy", "ftp://127.0.0.1:1"], "unsupported proxy scheme"),
        (["send", url, "x", "--proxy", "http://127.0.0.1:1", "--no-proxy"], "contradict"),
        (["send", url, "x", "--max-size", "lots"], "is not a size"),
        (["send", url, "x", "--max-size", "99999999999999999999999G"], "too large"),
        (["send", url, "x", "--timeout", "nan"], "not a number of seconds"),
        (["send", url, "x", "--wait", "inf"], "not a number of seconds"),
        (["send", url, "x", "--open-timeout", "nan"], "not a number of seconds"),
        (["send", url, "x", "--ping-interval", "inf"], "not a number of seconds"),
        (["send", url, "x", "--json", "--raw"], "--json cannot be combined"),
        (["send", url, "x", "--expect", "0"], "x>=1"),
        (["send", url, "-", "-"], "can be read only once"),
        (["send", url, "-0", "--delimiter", ";"], "give one"),
    ]


def test_bad_input_is_exit_2_with_a_clear_message_and_nothing_sent(
    untouched: ThreadedServer, tmp_path: Path
) -> None:
    for args, says in bad(tmp_path, untouched.url):
        result = wschan(*args, input=b"")
        assert result.returncode == 2, (args, err_line(result))
        assert says in err_line(result), (args, err_line(result))
        assert "Traceback" not in err_line(result)


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        # a line break, or a subprotocol that is not a token
        ("--origin", "http://a\r\nX-Injected: 1", "--origin"),
        ("--subprotocol", "chat\r\nX-Injected: 1", "--subprotocol"),
        ("--subprotocol", "two words", "--subprotocol"),
        ("--subprotocol", "", "--subprotocol"),
        # control characters other than CR/LF/NUL, and characters beyond latin-1
        ("-H", "X-Note: a\x1b[2Jb", "'-H' / '--header'"),
        ("-H", "X-Note: a\x7fb", "'-H' / '--header'"),
        ("-H", "X-Note: 日本", "'-H' / '--header'"),
        ("--bearer", "tok\x01en", "'--bearer'"),
        ("--origin", "http://a\x01", "'--origin'"),
    ],
)
def test_a_header_value_no_header_can_carry_is_a_usage_error(
    untouched: ThreadedServer, option: str, value: str, says: str
) -> None:
    # websockets refused them at connect time: "internal error: InvalidHeaderValue", exit 1
    # (and a subprotocol with a space went out for the server to refuse: exit 4).
    for command in ("send", "connect"):
        result = wschan(command, untouched.url, "x", option, value, input=b"")
        assert result.returncode == 2, (command, err_line(result))
        assert says in err_line(result) and "internal error" not in err_line(result)


def test_invalid_utf8_argument_is_exit_2(untouched: ThreadedServer) -> None:
    import subprocess
    import sys

    from .send_helpers import clean_env

    result = subprocess.run(
        [sys.executable, "-m", "wschan_cli", "send", untouched.url, b"\xff\xfe"],
        capture_output=True,
        env=clean_env(),
        timeout=20,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "message 1 is not valid UTF-8" in err_line(result)  # type: ignore[arg-type]


def test_bad_stdin_line_stops_there_with_exit_2() -> None:
    with ThreadedServer() as server:
        result = wschan("send", server.url, "--hex", input="0102\nzz\n0304\n")
        assert result.returncode == 2
        assert one_line(result) == (
            "wschan: stdin message 2 is not valid hex: non-hexadecimal number found in input "
            "at position 0; nothing after it was sent"
        )
        server.wait_ended(1)
        assert server.received == [b"\x01\x02"]
        assert server.close_codes == [1000]


def test_internal_failure_shows_no_traceback_without_debug(tmp_path: Path) -> None:
    # A text message that is not UTF-8 on stdin: a usage problem, reported in one line.
    with ThreadedServer() as server:
        result = wschan("send", server.url, input=b"\xff\n")
    assert result.returncode == 2
    assert "stdin message 1 is not valid UTF-8 (byte 0); send bytes with --binary" in one_line(
        result
    )


# ---------------------------------------------------------------------- signals and pipes


def test_ctrl_c_closes_gracefully_and_exits_130() -> None:
    import signal
    import subprocess
    import sys

    from .send_helpers import clean_env

    with ThreadedServer() as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "wschan_cli", "send", server.url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(b"first\n")
            process.stdin.flush()
            assert process.stdout.readline() == b"first\n"  # connected, sent, echoed
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=15)
        finally:
            process.kill()
        assert process.returncode == 130
        assert err.decode().strip() == "wschan: interrupted after 1 sent, 1 reply received"
        server.wait_ended(1)
        assert server.close_codes == [1000]


def test_a_closed_stdout_ends_the_run_with_1001_and_exit_1() -> None:
    import subprocess
    import sys

    from .send_helpers import clean_env

    with ThreadedServer() as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "wschan_cli", "send", server.url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(b"x\n" * 50_000)
            process.stdin.close()
            assert process.stdout.readline() == b"x\n"
            process.stdout.close()  # like `| head -1`
            assert process.stderr is not None
            err = process.stderr.read()
            process.wait(timeout=15)
        finally:
            process.kill()
        assert process.returncode == 1
        assert b"stdout was closed (broken pipe); closed the connection with 1001" in err
        assert b"Traceback" not in err
        server.wait_ended(1, timeout=20)  # the server first works through its echo backlog
        assert server.close_codes == [1001]


@pytest.mark.parametrize("command", [["send", "{url}", "a", "b"], ["connect", "{url}"]])
def test_a_full_stdout_is_one_line_and_a_1001_close(command: list[str]) -> None:
    # /dev/full: every write fails with ENOSPC, as on a full disk. Before: send said "internal
    # error" (exit 1), connect closed with 1011 "process callback failed" (exit 5).
    import subprocess
    import sys

    from .send_helpers import clean_env

    with ThreadedServer() as server, open("/dev/full", "wb") as full:
        result = subprocess.run(
            [sys.executable, "-m", "wschan_cli", *(a.format(url=server.url) for a in command)],
            input=b"a\nb\n",
            stdout=full,
            stderr=subprocess.PIPE,
            env=clean_env(),
            timeout=20,
            check=False,
        )
        server.wait_ended(1)
        codes = server.close_codes
    assert result.returncode == 1, result.stderr
    assert result.stderr.decode() == (
        "wschan: cannot write to stdout: No space left on device; closed the connection with 1001\n"
    )
    assert codes == [1001]


def test_debug_adds_the_traceback_before_the_one_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = wschan("send", f"ws://127.0.0.1:{port}/", "x", "--debug")
    assert result.returncode == 3
    err = err_line(result)
    assert err.startswith("Traceback (most recent call last):")
    assert "ConnectionRefused" in err
    assert err.splitlines()[-1].startswith("wschan: connection refused by 127.0.0.1:")


def planted(tmp_path: Path, failure: str, *args: str, stdin: bytes = b"") -> tuple[int, str]:
    """Run ``wschan`` with ``failure`` planted: a sitecustomize (Python code) run at start-up
    that makes some part raise an error no code path of wschan expects (every real one found is
    fixed, so the error rule is exercised with one planted). Its exit status and stderr."""
    import subprocess
    import sys

    from .send_helpers import clean_env

    (tmp_path / "sitecustomize.py").write_text(failure)
    env = clean_env()
    env["PYTHONPATH"] = str(tmp_path)
    result = subprocess.run(
        [Path(sys.executable).parent / "wschan", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=20,
        check=False,
    )
    return result.returncode, err_line(result)


def test_debug_prints_one_masked_traceback_for_an_unexpected_error(tmp_path: Path) -> None:
    # With --debug the traceback comes once, then the one line; it used to come twice (send
    # printed it and re-raised, and run_main printed it again).
    failure = (
        "import wschan_cli.sessions.script as script\n"
        "def parse_line(raw, number):\n"
        "    raise OverflowError('planted')\n"
        "script.parse_line = parse_line\n"
    )
    with ThreadedServer() as server:
        url = server.url.replace("ws://", "ws://user:PW123@") + "?token=TOKEN1"
        args = ("send", url, "--input", "jsonl", "--debug")
        status, err = planted(tmp_path, failure, *args, stdin=b'{"text": "a"}\n')
    assert status == 1, err
    assert err.count("Traceback (most recent call last):") == 1, err
    assert "OverflowError" in err
    assert err.splitlines()[-1].startswith("wschan: internal error: OverflowError: ")
    assert "PW123" not in err and "TOKEN1" not in err, err


def test_a_failure_inside_websockets_is_one_line_without_debug(tmp_path: Path) -> None:
    # websockets logs an unexpected parser failure with its traceback ("parser failed") and
    # fails the connection with 1011; with no logging set up, Python's last-resort handler
    # printed that traceback: wschan's words only, a traceback only with --debug.
    failure = (
        "import websockets.frames as frames\n"
        "def parse(*args, **kwargs):\n"
        "    raise RuntimeError('planted')\n"
        "    yield\n"
        "frames.Frame.parse = staticmethod(parse)\n"
    )
    with ThreadedServer() as server:
        status, quiet = planted(tmp_path, failure, "send", server.url, "a")
        _, debug = planted(tmp_path, failure, "send", server.url, "a", "--debug")
    assert status == 5, quiet
    assert quiet == "wschan: closed the connection: 1011 (internal error)", quiet
    assert "Traceback" in debug and "planted" in debug
