"""``wschan trace-shutdown`` end to end: the real executable, the embedded server or one given."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from wschan_cli.server import ThreadedServer


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


def test_a_bad_url_is_a_usage_error() -> None:
    result = wschan("trace-shutdown", "http://example.test/")
    assert result.returncode == 2 and result.stderr.startswith("wschan: invalid WebSocket URL")
