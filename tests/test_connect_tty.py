"""``wschan connect`` on a terminal: the real executable on a pseudo-terminal (pexpect), read
through a terminal emulator (pyte), against the embedded server."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wschan_cli.server import Behaviour

from .connect_helpers import PushServer, Terminal, state_env
from .servers import ThreadedServer

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal"),
    pytest.mark.timeout(60),
]


@pytest.fixture(scope="module")
def echo() -> Iterator[ThreadedServer]:
    with ThreadedServer() as server:
        yield server


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return state_env(tmp_path)


def session(url: str, env: dict[str, str], *args: str) -> Terminal:
    term = Terminal("connect", url, *args, env=env)
    # established is 1 from the TCP connect on; the state is success once upgraded.
    term.wait_for("established 1 .*state success", where="toolbar")
    return term


def test_type_a_message_and_see_the_reply_with_marks_and_counts(
    echo: ThreadedServer, env: dict[str, str]
) -> None:
    with session(echo.url, env) as term:
        term.send("hello there\r")
        term.wait_for(r"(?m)^> hello there\n< hello there$")
        term.wait_for(r"in 1 out 1", where="toolbar")
        bar = term.toolbar()
        assert "sending no" in bar and "waiters 0" in bar and "state success" in bar
        term.send("\x04")  # Ctrl-D: close with 1000, exit 0
        assert term.wait_exit() == 0
    echo.wait_ended(len(echo.close_codes))
    assert echo.close_codes[-1] == 1000


def test_a_message_arriving_while_typing_leaves_the_typed_text_intact(env: dict[str, str]) -> None:
    with PushServer() as srv, session(srv.url, env) as term:
        term.send("hello wor")
        term.wait_for(r"(?m)^> hello wor$")
        srv.push("pushed by the server")
        term.wait_for(r"(?m)^< pushed by the server\n> hello wor$")
        term.send("ld\r")
        term.wait_for(r"(?m)^< hello world$")
        assert srv.received == ["hello world"]
        term.send("/quit\r")
        assert term.wait_exit() == 0


def test_server_text_is_shown_inert(env: dict[str, str]) -> None:
    with PushServer() as srv, session(srv.url, env) as term:
        srv.push("\x1b[31mred\x1b[0m [bold]x[/bold] \u202eevil")
        term.wait_for(r"< \\x1b\[31mred\\x1b\[0m \[bold\]x\[/bold\] \\u202eevil")
        term.send("/quit\r")
        assert term.wait_exit() == 0
    assert b"\x1b[31mred" not in term.raw


def test_history_survives_a_restart(echo: ThreadedServer, env: dict[str, str]) -> None:
    with session(echo.url, env) as term:
        term.send("remember me\r")
        term.wait_for("< remember me")
        term.send("/quit\r")
        assert term.wait_exit() == 0
    history = Path(env["XDG_STATE_HOME"]) / "wschan" / "history"
    assert "remember me" in history.read_text()
    assert history.stat().st_mode & 0o777 == 0o600  # what is typed may include tokens
    before = len(echo.received)
    with session(echo.url, env) as term:
        term.send("\x1b[A")  # Up: the previous session's last line
        term.send("\x1b[A")  # (the line before it is /quit)
        term.wait_for(r"(?m)^> remember me$")
        term.send("\r")
        term.wait_for("< remember me")
        term.send("/quit\r")
        assert term.wait_exit() == 0
    assert echo.received[before:] == ["remember me"]


@pytest.mark.timeout(90)
def test_a_100_kib_paste_arrives_as_one_message(echo: ThreadedServer, env: dict[str, str]) -> None:
    lines = [f"{i:06d} " + "x" * 93 for i in range(1024)]  # 100 bytes a line with its newline
    text = "\n".join(lines)
    assert len(text) >= 100 * 1024 - 1
    before = len(echo.received)
    with session(echo.url, env, "--max-size", "1MiB") as term:
        term.send("\x1b[200~" + text + "\x1b[201~")
        term.send("\r")
        echo.wait_received(before + 1, timeout=30)
        term.wait_for("in 1 out 1", where="toolbar", timeout=30)
        term.send("/quit\r")
        assert term.wait_exit(30) == 0
    assert echo.received[before:] == [text]


def test_slash_commands_send_binary_base64_files_and_literal_slashes(
    echo: ThreadedServer, env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "message.txt"
    path.write_text("from a file\nsecond line")
    before = len(echo.received)
    with session(echo.url, env) as term:
        term.send("/binary 00 01 ff\r")
        term.wait_for(r"< 0001ff")
        term.send("/base64 AAH/\r")
        term.wait_for(r"(?s)< 0001ff.*< 0001ff")
        term.send(f"/file {path}\r")
        term.wait_for(r"< from a file\n  second line")
        term.send("//not a command\r")
        term.wait_for(r"< /not a command")
        term.send("/binary zz\r")
        term.wait_for("not valid hex")
        term.send("/nope\r")
        term.wait_for("unknown command /nope")
        term.send("/quit\r")
        assert term.wait_exit() == 0
    assert echo.received[before:] == [
        b"\x00\x01\xff",
        b"\x00\x01\xff",
        "from a file\nsecond line",
        "/not a command",
    ]


def test_ping_pretty_state_and_help(echo: ThreadedServer, env: dict[str, str]) -> None:
    with session(echo.url, env) as term:
        term.send("/ping hi\r")
        term.wait_for(r"pong in \d+\.\d+ ms")
        term.wait_for(r"rtt \d+\.\d ms", where="toolbar")
        term.send("/pretty\r")
        term.wait_for("pretty-printing on")
        term.send('{"a": [1]}\r')
        term.wait_for(r'< \{\n    "a": \[\n      1\n    \]\n  \}')
        term.send("/state\r")
        term.wait_for(r"established   1\n  sending       false")
        term.wait_for(r"messages out  1")
        term.send("/help\r")
        term.wait_for(r"/terminate .*local simulation")
        term.send("/quit\r")
        assert term.wait_exit() == 0


def test_deinit_takes_established_from_1_to_0_in_the_toolbar(
    echo: ThreadedServer, env: dict[str, str]
) -> None:
    with session(echo.url, env) as term:
        assert "established 1" in term.toolbar()
        term.send("/deinit\r")
        term.wait_for(r"client\.deinit\(\) established 1->0")
        term.wait_for("deinit done")
        term.wait_for(r"^ ?established 0 .*state undefined", where="toolbar")
        term.send("after\r")
        term.wait_for("the channel is deinitialized")
        term.send("/quit\r")
        assert term.wait_exit() == 0


def test_abrupt_deinit_sends_no_close_frame(env: dict[str, str]) -> None:
    with ThreadedServer() as srv:
        with session(srv.url, env) as term:
            term.send("/deinit --abrupt\r")
            term.wait_for("deinit done")
            term.wait_for("established 0", where="toolbar")
            term.send("/quit\r")
            assert term.wait_exit() == 0
        srv.wait_ended(1)
        assert srv.close_codes == [None]


def test_close_with_a_code_and_reason(env: dict[str, str]) -> None:
    with ThreadedServer() as srv:
        with session(srv.url, env) as term:
            term.send("/close 9 x\r")
            term.wait_for("cannot be sent in a Close frame")
            term.send("/close 4000 bye now\r")
            assert term.wait_exit() == 0
        srv.wait_ended(1)
        assert srv.close_codes == [4000]


def test_terminate_ends_the_session_as_a_dropped_connection(
    echo: ThreadedServer, env: dict[str, str]
) -> None:
    with session(echo.url, env) as term:
        term.send("/terminate\r")
        term.wait_for("local simulation")
        term.wait_for("dropped the connection without a Close frame")
        assert term.wait_exit() == 5


def test_a_server_close_says_how_and_sets_the_status(env: dict[str, str]) -> None:
    behaviour = Behaviour(close_after=1, close_code=4001, close_reason="go away")
    with ThreadedServer(behaviour) as srv, session(srv.url, env) as term:
        term.send("one\r")
        term.wait_for('the server closed the connection: 4001 \\(private use\\) "go away"')
        assert term.wait_exit() == 5
    with (
        ThreadedServer(Behaviour(close_after=0)) as srv,
        Terminal("connect", srv.url, env=env) as term,
    ):
        term.wait_for(r"the server closed the connection: 1000 \(normal closure\)")
        assert term.wait_exit() == 0


def test_ctrl_c_clears_the_line_and_twice_exits_130(
    echo: ThreadedServer, env: dict[str, str]
) -> None:
    with session(echo.url, env) as term:
        term.send("half typed")
        term.wait_for(r"(?m)^> half typed$")
        term.send("\x03")
        term.wait_for("Ctrl-C again to quit", where="toolbar")
        assert "half typed" not in term.text()
        term.send("x")  # typing disarms
        term.wait_for(r"(?m)^> x$")
        term.send("\x03")
        term.send("\x03")
        assert term.wait_exit() == 130


def test_verbose_prints_transitions_and_timestamps_prefix_messages(
    echo: ThreadedServer, env: dict[str, str]
) -> None:
    with session(echo.url, env, "-v", "--timestamps") as term:
        term.wait_for(r"established 0->1")
        term.send("stamped\r")
        term.wait_for(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z < stamped")
        term.wait_for(r"send#1 take")
        term.send("/quit\r")
        assert term.wait_exit() == 0


# A -v transition as a line of trace-shutdown's swimlanes: number, ms, the sending and
# established step lines (█ true, │ false), the party's glyph, who did what.
STEP = re.compile(r"(?m)^ *(\d+) +\d+\.\d\d  ([█│]) ([█│])  (\S) (\S+) (.*)$")


def test_verbose_transitions_are_swimlane_lines(echo: ThreadedServer, env: dict[str, str]) -> None:
    with session(echo.url, env, "-v", "--color", "always") as term:
        term.send("hi\r")
        term.wait_for(r"(?m)^< hi$")
        term.send("/deinit\r")
        term.wait_for("deinit done")
        screen = term.text()
        term.send("/quit\r")
        assert term.wait_exit() == 0
    assert "S sending (█ taken, │ free)  E established (█ 1, │ 0)" in screen  # the key, once
    steps = [m.groups() for m in STEP.finditer(screen)]
    assert steps, screen
    seqs = [int(seq) for seq, *_ in steps]
    assert seqs == sorted(seqs)  # one event a line, in order
    shown = {(who, what): (s, e, glyph) for _, s, e, glyph, who, what in steps}
    # each flag drawn as it stands after the event: the token taken on take, free on release
    assert shown[("send#1", "take")] == ("█", "█", "●")
    assert shown[("send#1", "release")] == ("│", "█", "○")
    assert shown[("client.deinit()", "established 1->0")] == ("█", "│", "▼")
    assert shown[("client.deinit()", "dispose")] == ("│", "│", "†")
    assert all(len(line) <= 80 for line in screen.splitlines() if STEP.match(line))
    # drawn in the swimlanes' colours: sending taken (bold yellow where it changed), take
    assert "\x1b[1;33m█\x1b[0m".encode() in term.raw and b"\x1b[33mtake" in term.raw


def test_verbose_transitions_show_a_close_reason_inert(env: dict[str, str]) -> None:
    reason = "\x1b[31mred [bold]x[/bold]"
    behaviour = Behaviour(close_after=1, close_code=4001, close_reason=reason)
    with ThreadedServer(behaviour) as srv, session(srv.url, env, "-v") as term:
        term.send("one\r")
        term.wait_for(r"closed 4001 \"\\x1b\[31mred \[bold\]x\[/bold\]\" by peer")
        assert term.wait_exit() == 5
    assert b"\x1b[31mred" not in term.raw


def test_reconnect_resends_init_with_growing_delays(env: dict[str, str]) -> None:
    # Each connection echoes the --init message, then the server drops it.
    with ThreadedServer(Behaviour(drop_after=1)) as srv:
        args = ("--init", "hello", "--reconnect", "--reconnect-delay", "0.1")
        with Terminal("connect", srv.url, *args, "--reconnect-tries", "2", env=env) as term:
            term.wait_for(r"attempt 1/2")
            term.wait_for(r"attempt 2/2")
            term.wait_for(r"gave up after 2 reconnect attempts")
            assert term.wait_exit() == 5
            shown = term.text()
        assert srv.received == ["hello"] * 3
    assert shown.count("< hello") == 3
    delays = [float(d) for d in re.findall(r"reconnecting in ([\d.]+)s", shown)]
    assert len(delays) == 2 and delays[0] < delays[1]


def test_a_refused_connect_exits_3_and_a_rejected_one_4(env: dict[str, str]) -> None:
    with ThreadedServer() as srv:
        url = srv.url
    with Terminal("connect", url, env=env) as term:
        assert term.wait_exit() == 3
        assert "connection refused" in term.text()
    with (
        ThreadedServer(Behaviour(reject_status=403)) as srv,
        Terminal("connect", srv.url, env=env) as term,
    ):
        assert term.wait_exit() == 4
        assert "HTTP 403" in term.text()


def test_reconnect_attempts_show_in_the_toolbar_and_ctrl_d_stops_them(env: dict[str, str]) -> None:
    with ThreadedServer() as srv:
        url = srv.url
    args = ("--reconnect", "--reconnect-delay", "0.2", "--reconnect-tries", "0")
    with Terminal("connect", url, *args, env=env) as term:
        term.wait_for(r"reconnect 2 in [\d.]+s", where="toolbar")
        term.wait_for(r"connection refused .*; reconnecting in [\d.]+s \(attempt 2\)")
        term.send("\x04")
        # Never connected: the status is the last failure's, not 0 (issue 10).
        assert term.wait_exit() == 3


def test_ctrl_c_interrupts_a_command_that_waits(env: dict[str, str]) -> None:
    from .send_helpers import LoopThread, SilentServer

    with LoopThread() as thread:
        srv = thread.call(SilentServer().start())  # never answers a Ping
        with session(srv.url, env, "-v") as term:
            term.send("/ping\r")
            term.wait_for(r"│ █  ○ ping#1 release")  # written: now awaiting the Pong
            term.send("\x03")
            term.wait_for(r"interrupted \(Ctrl-C again to quit\)")
            term.wait_for("Ctrl-C again to quit", where="toolbar")
            term.send("\x03")
            assert term.wait_exit() == 130
