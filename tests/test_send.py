"""``wschan send`` end to end: the real executable against the embedded echo server.

Input (arguments, stdin, files, separators, encodings), what is waited for, the close, and each
output format. Failures and exit statuses are in test_send_errors.py; TLS, proxies and sockets in
test_send_net.py.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from wschan_cli.server import Behaviour

from .send_helpers import err_line, wschan
from .servers import ThreadedServer


@pytest.fixture(scope="module")
def echo() -> Iterator[ThreadedServer]:
    with ThreadedServer() as server:
        yield server


@pytest.fixture
def fresh() -> Iterator[ThreadedServer]:
    """A server of one's own, for tests that look at what it recorded."""
    with ThreadedServer() as server:
        yield server


# ---------------------------------------------------------------------- input


def test_arguments_are_sent_in_order_and_each_reply_printed(fresh: ThreadedServer) -> None:
    result = wschan("send", fresh.url, "one", "two", "three")
    assert result.returncode == 0, err_line(result)
    assert result.stdout == b"one\ntwo\nthree\n"
    assert result.stderr == b""
    fresh.wait_ended(1)
    assert fresh.received == ["one", "two", "three"]
    assert fresh.close_codes == [1000]


def test_stdin_one_message_per_line_with_crlf_and_empty_lines(fresh: ThreadedServer) -> None:
    result = wschan("send", fresh.url, input=b"a\r\n\nb\nlast-without-newline")
    assert result.returncode == 0, err_line(result)
    assert fresh.received == ["a", "", "b", "last-without-newline"]
    assert result.stdout == b"a\n\nb\nlast-without-newline\n"


def test_dash_reads_stdin_at_its_place_then_files_follow(
    fresh: ThreadedServer, tmp_path: Path
) -> None:
    path = tmp_path / "body.txt"
    path.write_text("whole\nfile\n")
    result = wschan("send", fresh.url, "first", "-", "last", "--file", str(path), input="x\ny\n")
    assert result.returncode == 0, err_line(result)
    assert fresh.received == ["first", "x", "y", "last", "whole\nfile\n"]


def test_file_dash_sends_all_of_stdin_as_one_message(fresh: ThreadedServer) -> None:
    result = wschan("send", fresh.url, "--file", "-", input="l1\nl2\n")
    assert result.returncode == 0, err_line(result)
    assert fresh.received == ["l1\nl2\n"]


@pytest.mark.parametrize(
    ("flags", "data", "sent"),
    [
        (["-0"], b"a\0b c\0", ["a", "b c"]),
        (["--null"], b"a\nb\0c", ["a\nb", "c"]),
        (["--delimiter", ";"], b"a;b;c", ["a", "b", "c"]),
        (["--delimiter", r"\t"], b"a\tb\n", ["a", "b\n"]),
        (["--delimiter", "<>"], b"a<>b", ["a", "b"]),
    ],
)
def test_separators(flags: list[str], data: bytes, sent: list[str], fresh: ThreadedServer) -> None:
    result = wschan("send", fresh.url, *flags, input=data)
    assert result.returncode == 0, err_line(result)
    assert fresh.received == sent


def test_binary_hex_and_base64_send_binary_frames_printed_as_hex(fresh: ThreadedServer) -> None:
    b64 = base64.b64encode(b"\x00\xff\x10").decode()
    r1 = wschan("send", fresh.url, "--hex", "00ff10", "de ad")
    r2 = wschan("send", fresh.url, "--base64", b64)
    r3 = wschan("send", fresh.url, "--binary", "héllo")
    r4 = wschan("send", fresh.url, "--binary", "--hex", input="0102\n0304\n")
    for r in (r1, r2, r3, r4):
        assert r.returncode == 0, err_line(r)
    assert r1.stdout == b"00ff10\ndead\n"
    assert r2.stdout == b"00ff10\n"
    assert r3.stdout == "héllo".encode().hex().encode() + b"\n"
    assert r4.stdout == b"0102\n0304\n"
    assert fresh.received == [
        b"\x00\xff\x10",
        b"\xde\xad",
        b"\x00\xff\x10",
        "héllo".encode(),
        b"\x01\x02",
        b"\x03\x04",
    ]


def test_binary_file_round_trips_with_raw(fresh: ThreadedServer, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 40
    path = tmp_path / "blob.bin"
    path.write_bytes(payload)
    result = wschan("send", fresh.url, "--binary", "--file", str(path), "--raw")
    assert result.returncode == 0, err_line(result)
    assert result.stdout == payload  # bytes as they came, nothing added
    assert fresh.received == [payload]


def test_stdin_piped_before_the_handshake_completes_is_not_lost() -> None:
    # The server answers the upgrade only after 0.5 s; everything piped is already waiting.
    with ThreadedServer(Behaviour(stall_before_upgrade=0.5)) as server:
        lines = [f"m{i}" for i in range(200)]
        result = wschan("send", server.url, input="\n".join(lines) + "\n")
        assert result.returncode == 0, err_line(result)
        assert result.stdout.decode().splitlines() == lines
        assert server.received == lines


# ---------------------------------------------------------------------- waiting


def test_expect_stops_after_n_replies_and_prints_only_those() -> None:
    with ThreadedServer(Behaviour(greeting="welcome")) as server:
        result = wschan("send", server.url, "a", "b", "--expect", "2")
        assert result.returncode == 0, err_line(result)
        assert result.stdout == b"welcome\na\n"


def test_until_stops_at_the_matching_reply(echo: ThreadedServer) -> None:
    result = wschan("send", echo.url, "alpha", "beta", "gamma", "--until", "^b.t")
    assert result.returncode == 0, err_line(result)
    assert result.stdout == b"alpha\nbeta\n"


def test_until_matches_binary_replies_as_hex(echo: ThreadedServer) -> None:
    result = wschan("send", echo.url, "--hex", "0102", "cafe", "--until", "ca")
    assert result.returncode == 0, err_line(result)
    assert result.stdout == b"0102\ncafe\n"


def test_wait_zero_closes_right_after_sending_and_still_exits_0(fresh: ThreadedServer) -> None:
    result = wschan("send", fresh.url, "x", "--wait", "0")
    assert result.returncode == 0, err_line(result)
    fresh.wait_ended(1)
    assert fresh.received == ["x"] and fresh.close_codes == [1000]


def test_wait_keeps_printing_until_the_silence() -> None:
    # The greeting makes one more reply than messages: the default rule would stop at 1.
    with ThreadedServer(Behaviour(greeting="hi")) as server:
        result = wschan("send", server.url, "x", "--wait", "0.5")
        assert result.returncode == 0, err_line(result)
        assert result.stdout == b"hi\nx\n"


def test_default_rule_gives_up_after_two_silent_seconds() -> None:
    # A server that never answers: the run ends after the idle limit, cleanly.
    from .send_helpers import LoopThread, SilentServer

    with LoopThread() as lt:
        silent = lt.call(SilentServer().start())
        result = wschan("send", silent.url, "anyone?", "--close-timeout", "0.5")
    # Nobody answers our Close either: the close timeout makes it abnormal.
    assert result.returncode == 5
    assert "did not answer the Close frame within 0.5s" in err_line(result)
    assert result.stdout == b""


# ---------------------------------------------------------------------- closing


def test_close_code_and_reason_are_sent(fresh: ThreadedServer) -> None:
    result = wschan("send", fresh.url, "x", "--close-code", "4000", "--close-reason", "bye")
    assert result.returncode == 0, err_line(result)
    fresh.wait_ended(1)
    assert fresh.close_codes == [4000]


def test_abrupt_sends_no_close_frame(fresh: ThreadedServer) -> None:
    result = wschan("send", fresh.url, "x", "--abrupt", "--json")
    assert result.returncode == 0, err_line(result)
    fresh.wait_ended(1)
    assert fresh.close_codes == [None]
    close = json.loads(result.stdout.splitlines()[-1])
    assert close["type"] == "close" and close["code"] == 1006 and close["by"] == "local"


# ---------------------------------------------------------------------- output


def test_json_lines_schema_with_final_close(echo: ThreadedServer) -> None:
    result = wschan("send", echo.url, "text", "--json")
    assert result.returncode == 0, err_line(result)
    binary = wschan("send", echo.url, "--hex", "00ff", "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    records += [json.loads(line) for line in binary.stdout.splitlines()]
    assert [r["type"] for r in records] == ["text", "close", "binary", "close"]
    text, close, blob, _ = records
    assert set(text) == {"t", "dir", "type", "data"}
    assert text["dir"] == "in" and text["data"] == "text" and isinstance(text["t"], float)
    assert blob["data"] == "00ff"
    assert close == {
        "t": close["t"],
        "type": "close",
        "code": 1000,
        "reason": "",
        "by": "local",
        "clean": True,
    }


def test_timestamps_prefix_each_reply(echo: ThreadedServer) -> None:
    result = wschan("send", echo.url, "a", "b", "--timestamps")
    assert result.returncode == 0, err_line(result)
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 2
    for line, text in zip(lines, ["a", "b"], strict=True):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z " + text, line), line


def test_pretty_indents_json_replies_and_leaves_others(echo: ThreadedServer) -> None:
    result = wschan("send", echo.url, '{"a":[1,2]}', "not json", "--pretty")
    assert result.returncode == 0, err_line(result)
    assert result.stdout.decode() == '{\n  "a": [\n    1,\n    2\n  ]\n}\nnot json\n'
    assert "\x1b[" not in result.stdout.decode()  # not a terminal: no colour


def test_pretty_with_color_always_highlights_without_reading_markup(echo: ThreadedServer) -> None:
    reply = json.dumps({"k": "[bold red]x[/] \x1b[31m"})
    result = wschan("send", echo.url, reply, "--pretty", "--color", "always")
    assert result.returncode == 0, err_line(result)
    out = result.stdout.decode()
    assert "\x1b[" in out  # highlighted
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert "[bold red]x[/]" in plain  # markup shown, not interpreted
    assert "\\u001b[31m" in plain  # the escape inside the JSON string stays escaped


def test_text_in_a_pipe_is_passed_through_as_data(echo: ThreadedServer) -> None:
    reply = "\x1b[31mred\x1b[0m [bold]b[/bold]"
    result = wschan("send", echo.url, reply)
    assert result.returncode == 0, err_line(result)
    assert result.stdout.decode() == reply + "\n"


def test_include_prints_the_handshake_response_on_stderr(echo: ThreadedServer) -> None:
    result = wschan("send", echo.url, "x", "-i")
    assert result.returncode == 0, err_line(result)
    err = result.stderr.decode()
    assert err.startswith("< HTTP/1.1 101 Switching Protocols\n")
    assert "< Upgrade: websocket" in err and "< Sec-WebSocket-Accept: " in err
    assert result.stdout == b"x\n"


def test_verbose_shows_frames_and_transitions_with_secrets_masked(echo: ThreadedServer) -> None:
    result = wschan(
        "send",
        echo.url,
        "hello",
        "-v",
        "--bearer",
        "s3cr3t-token",
        "-H",
        "Cookie: session=abc123",
        "-H",
        "X-Trace: visible",
    )
    assert result.returncode == 0, err_line(result)
    err = result.stderr.decode()
    assert "s3cr3t-token" not in err and "abc123" not in err
    assert "> Authorization: Bearer ****" in err and "> Cookie: ****" in err
    assert "> X-Trace: visible" in err
    assert "> text frame" in err and '< text frame, 5 bytes: "hello"' in err
    assert "take: sending -> true" in err and "established 0 -> 1" in err
    assert "established 1 -> 0" in err and "> close frame" in err
    assert result.stdout == b"hello\n"


def test_verbose_with_json_writes_events_as_json_lines(echo: ThreadedServer) -> None:
    result = wschan("send", echo.url, "hi", "-v", "--json", "--auth", "user:pa55")
    assert result.returncode == 0, err_line(result)
    events = [json.loads(line) for line in result.stderr.splitlines()]
    whats = [e.get("what") for e in events]
    assert "take" in whats and "frame_out" in whats and "dispose" in whats
    assert b"pa55" not in result.stderr
    assert base64.b64encode(b"user:pa55") not in result.stderr
    request = next(e for e in events if e.get("type") == "request")
    assert ["Authorization", "Basic ****"] in request["headers"]


# ---------------------------------------------------------------------- connection options


def test_headers_origin_subprotocol_and_auth_reach_the_server(fresh: ThreadedServer) -> None:
    result = wschan(
        "send",
        fresh.url.rstrip("/") + "/path?q=1",
        "x",
        "-H",
        "X-One: 1",
        "--header",
        "X-Two:  two words ",
        "--origin",
        "https://origin.test",
        "--subprotocol",
        "chat.v2",
        "--subprotocol",
        "chat.v1",
        "--auth",
        "alice:wonder land",
    )
    assert result.returncode == 0, err_line(result)
    headers = fresh.request_headers[0]
    assert headers["x-one"] == "1" and headers["x-two"] == "two words"
    assert headers["origin"] == "https://origin.test"
    assert headers["sec-websocket-protocol"] == "chat.v2, chat.v1"
    assert headers["authorization"] == "Basic " + base64.b64encode(b"alice:wonder land").decode()
    assert fresh.request_paths == ["/path?q=1"]
    assert fresh.subprotocols == ["chat.v2"]


def test_bearer_token(fresh: ThreadedServer) -> None:
    result = wschan("send", fresh.url, "x", "--bearer", "tok")
    assert result.returncode == 0, err_line(result)
    assert fresh.request_headers[0]["authorization"] == "Bearer tok"


def test_no_compression_offers_no_extension(fresh: ThreadedServer) -> None:
    assert wschan("send", fresh.url, "x").returncode == 0
    assert wschan("send", fresh.url, "x", "--no-compression").returncode == 0
    first, second = fresh.request_headers
    assert "permessage-deflate" in first["sec-websocket-extensions"]
    assert "sec-websocket-extensions" not in second


def test_max_size_accepts_a_big_message_when_raised() -> None:
    with ThreadedServer(Behaviour(send_size=2_000_000)) as server:
        small = wschan("send", server.url, "x", "--expect", "1")
        big = wschan("send", server.url, "x", "--expect", "1", "--max-size", "4M")
    assert small.returncode == 5
    assert "1009 (message too big)" in err_line(small) and "--max-size" in err_line(small)
    assert big.returncode == 0, err_line(big)
    assert len(big.stdout) == 2 * 2_000_000 + 1  # hex of the bytes, and a newline


def test_keepalive_pings_go_out_at_the_interval(echo: ThreadedServer) -> None:
    result = wschan("send", echo.url, "x", "--wait", "0.6", "--ping-interval", "0.1", "-v")
    assert result.returncode == 0, err_line(result)
    assert result.stderr.decode().count("> ping frame") >= 2


def test_ping_timeout_closes_with_1011_and_exit_5() -> None:
    from .send_helpers import LoopThread, SilentServer

    with LoopThread() as lt:
        silent = lt.call(SilentServer().start())
        result = wschan(
            "send",
            silent.url,
            "x",
            "--expect",
            "1",
            "--ping-interval",
            "0.1",
            "--ping-timeout",
            "0.2",
            "--timeout",
            "10",
        )
    assert result.returncode == 5, err_line(result)
    assert "1011" in err_line(result) and "keepalive ping timeout" in err_line(result)


def test_answers_the_servers_ping() -> None:
    with ThreadedServer(Behaviour(ping_on_connect=b"are you there")) as server:
        result = wschan("send", server.url, "x")
        assert result.returncode == 0, err_line(result)
        server.wait_until(lambda srv: bool(srv.pongs))
        assert server.pongs == [b"are you there"]


# ---------------------------------------------------------------------- start-up cost


def test_help_imports_neither_asyncio_nor_websockets_nor_rich() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from wschan_cli.cli import cli\n"
        "try:\n"
        "    cli(['send', '--help'], prog_name='wschan')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('asyncio', 'websockets', 'rich'))\n"
        "print(heavy, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "--close-code" in result.stdout
    assert result.stderr.strip() == "[]"


def test_a_plain_run_does_not_import_rich(echo: ThreadedServer) -> None:
    import subprocess
    import sys

    from .send_helpers import clean_env

    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "wschan_cli", "send", echo.url, "x", "-v"],
        capture_output=True,
        text=True,
        timeout=20,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    assert "wschan_cli.channel" in imported  # the run did import the core...
    assert not [m for m in imported if m.split(".")[0] == "rich"]  # ...and not rich


# ---------------------------------------------------------------------- event loop

#: ``python -c`` for a wschan whose Python cannot import uvloop (as without the fast extra).
WITHOUT_UVLOOP = (
    "import sys; sys.modules['uvloop'] = None; sys.argv[0] = 'wschan'\n"
    "from wschan_cli.entry import main; main()"
)


@pytest.mark.parametrize(
    ("setting", "installed", "loop"),
    [
        (None, True, "uvloop"),
        ("asyncio", True, "asyncio"),
        (None, False, "asyncio"),
    ],
    ids=["uvloop-installed", "WSCHAN_LOOP=asyncio", "uvloop-missing"],
)
def test_send_runs_on_uvloop_when_it_is_installed(
    echo: ThreadedServer, setting: str | None, installed: bool, loop: str
) -> None:
    import subprocess
    import sys

    from .send_helpers import clean_env

    if installed:
        pytest.importorskip("uvloop")
    env = clean_env()
    env.pop("WSCHAN_LOOP", None)
    if setting is not None:
        env["WSCHAN_LOOP"] = setting
    start = ["-m", "wschan_cli"] if installed else ["-c", WITHOUT_UVLOOP]
    result = subprocess.run(
        [sys.executable, *start, "send", echo.url, "on which loop?", "-v"],
        capture_output=True,
        text=True,
        timeout=20,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "on which loop?\n"
    # -v names the loop that runs the connection (the running loop's own package).
    assert f"* event loop: {loop}\n" in result.stderr, result.stderr[:500]
