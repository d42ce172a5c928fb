"""``wschan trace-shutdown`` end to end: the real executable, the embedded server or one given."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import subprocess
import sys

import pytest

from .send_helpers import HttpAnswer, LoopThread
from .servers import ThreadedServer


def wschan(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wschan_cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.timeout(60)
def test_all_scenarios_on_the_embedded_server_pass_every_invariant() -> None:
    result = wschan("trace-shutdown")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for scenario in ("deinit-first", "terminate-first", "race"):
        assert f"{scenario}: verdicts" in out
    assert "FAIL" not in out and out.count("pass") == 24  # 8 verdicts x 3 scenarios
    assert "\x1b[" not in out  # not a terminal: no colour, no live display


@pytest.mark.parametrize("abrupt", [[], ["--abrupt"]])
def test_json_lines_carry_every_event_then_the_verdicts(abrupt: list[str]) -> None:
    result = wschan(
        "trace-shutdown", "--scenario", "deinit-first", "--senders", "3", "--json", *abrupt
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    events = [o for o in lines if "what" in o]
    verdicts = [o for o in lines if "invariant" in o]
    assert {
        "seq",
        "t",
        "party",
        "what",
        "sending",
        "established",
        "state",
        "holder",
        "waiters",
        "scenario",
    } <= set(events[0])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["what"] == "dispose"
    falls = [e for e in events if e["what"] == "established" and e["established"] == 0]
    assert len(falls) == 1 and falls[0]["party"] == "deinit"  # deinit-first: deinit released it
    assert [e["party"] for e in events if e["what"] == "leave"] == ["terminate#1"]
    closes = [e for e in events if e["what"] == "frame_out" and e["opcode"] == "close"]
    assert bool(closes) is (not abrupt)
    assert len(verdicts) == 8 and all(v["ok"] for v in verdicts)


def test_terminate_first_against_a_given_url() -> None:
    with ThreadedServer() as srv:
        result = wschan("trace-shutdown", srv.url, "--scenario", "terminate-first", "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    falls = [e for e in events if e.get("what") == "established" and e["established"] == 0]
    assert falls[0]["party"] == "terminate#1"
    assert [e["party"] for e in events if e.get("what") == "leave"] == ["deinit"]


def test_a_refused_url_exits_3_with_one_line() -> None:
    result = wschan("trace-shutdown", "ws://127.0.0.1:1/")
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "wschan: connection refused by 127.0.0.1:1: is a server listening there?"
    ]


def test_a_server_that_never_answers_the_upgrade_is_a_failed_connect_not_a_violation() -> None:
    # The hang timer covered the connect: a silent server was reported as a broken invariant
    # of the channel ("no hang ... FAIL", exit 6).
    with LoopThread() as loop:
        silent = loop.call(HttpAnswer(200, silent=True).start())
        result = wschan(
            "trace-shutdown", silent.url, "--scenario", "deinit-first", "--timeout", "0.5"
        )
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"wschan: timed out after 0.5s opening {silent.url}"
    ]
    assert "FAIL" not in result.stdout


def test_a_refusal_s_text_is_escaped_in_the_error_line() -> None:
    # The reason phrase and body of a refused upgrade are the server's: trace-shutdown echoed
    # them raw (a C1 CSI reached stderr as is; ESC only left out because click strips it off a
    # terminal, not on one). The body's lone byte 0x9b is not UTF-8: U+FFFD.
    with LoopThread() as loop:
        server = loop.call(HttpAnswer(403, reason="\x9b31mNo", body="\x1b[2J\x9bx").start())
        result = wschan("trace-shutdown", server.url, "--scenario", "deinit-first")
    assert result.returncode == 4, result.stderr
    assert result.stderr.strip() == (
        f"wschan: {server.url} rejected the upgrade with HTTP 403 \\x9b31mNo: \\x1b[2J\ufffdx"
    )


def test_debug_adds_one_masked_traceback_and_keeps_the_status() -> None:
    # The runner's rule, as for send and connect: with --debug the traceback (secrets masked),
    # then the one line, and the documented status (it used to re-raise: exit 1, unmasked).
    result = wschan("trace-shutdown", "ws://user:PW123@127.0.0.1:1/?token=TOKEN1", "--debug")
    err = result.stderr.strip()
    assert result.returncode == 3, err
    assert err.startswith("Traceback (most recent call last):"), err
    assert err.count("errors.ConnectionRefused: connection refused") == 1, err  # printed once
    assert err.splitlines()[-1] == (
        "wschan: connection refused by 127.0.0.1:1: is a server listening there?"
    )
    assert "PW123" not in err and "TOKEN1" not in err, err


def test_a_bad_url_is_a_usage_error() -> None:
    result = wschan("trace-shutdown", "http://example.test/")
    assert result.returncode == 2 and result.stderr.startswith("wschan: invalid WebSocket URL")


class DrawingRecorder(io.StringIO):
    """A terminal's screen that notes, for each write, whether it came from inside the
    channel's event stream (a subscriber called by ``Channel._emit``)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.from_event_stream = 0

    def write(self, text: str) -> int:
        frame = sys._getframe()
        inside = False
        while frame is not None:
            if frame.f_code.co_name == "_emit" and frame.f_code.co_filename.endswith("channel.py"):
                inside = True
            frame = frame.f_back  # type: ignore[assignment]
        self.writes += 1
        self.from_event_stream += inside
        return super().write(text)

    def isatty(self) -> bool:
        return True


@pytest.mark.timeout(60)
def test_the_live_view_never_draws_inside_the_event_stream() -> None:
    """Issue 16: drawing inside a subscriber made each event wait for a screen refresh. Events
    are only recorded; the live view draws from its own refresh thread."""
    from rich.console import Console

    from wschan_cli.channel import ChannelOptions
    from wschan_cli.commands.trace_shutdown import _main, _Plan
    from wschan_cli.trace.scenarios import SCENARIOS

    screen = DrawingRecorder()
    console = Console(file=screen, force_terminal=True, width=100)
    assert console.is_terminal
    plan = _Plan(list(SCENARIOS), 2, False, False, 10.0, ChannelOptions())
    failed = asyncio.run(_main(None, plan, console))
    assert not failed
    assert screen.writes and "deinit-first: verdicts" in screen.getvalue()
    assert screen.from_event_stream == 0


@pytest.mark.timeout(60)
def test_pace_holds_each_step_and_says_so_in_the_title() -> None:
    pace_ms = 40
    result = wschan(
        "trace-shutdown", "--scenario", "deinit-first", "--senders", "1", "--pace", str(pace_ms)
    )
    assert result.returncode == 0, result.stderr
    assert f"paced {pace_ms} ms per step" in result.stdout
    events = [
        json.loads(line)
        for line in wschan(
            "trace-shutdown", "--scenario", "deinit-first", "--pace", str(pace_ms), "--json"
        ).stdout.splitlines()
    ]
    times = [e["t"] for e in events if "what" in e]
    held = sum(1 for a, b in itertools.pairwise(times) if b - a >= pace_ms / 1000)
    assert held >= 3  # held at the drain gate, the read side and the scenario's steps
    # The order is the scenario's own: terminate still queues behind deinit and leaves.
    assert [e["party"] for e in events if e.get("what") == "leave"] == ["terminate#1"]


@pytest.mark.timeout(60)
def test_on_an_80_column_terminal_the_live_view_ends_with_the_whole_picture() -> None:
    from .connect_helpers import Terminal

    with Terminal("trace-shutdown", "--scenario", "deinit-first", env={}, rows=150, cols=80) as t:
        t.wait_for(r"deinit-first: verdicts", timeout=30)
        while not t.eof:
            t.pump()
        assert t.child.wait() == 0
        lines = t.text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:4] == ["#", "ms", "S", "E"])
    assert lines[header].rstrip().endswith("event")
    seqs = [int(line.split()[0]) for line in lines[header + 1 :] if line[:3].strip().isdigit()]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 30  # drawn once, in order
    assert any(line.startswith("S sending") for line in lines)  # the legend under it
