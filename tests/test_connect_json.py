"""``wschan connect --json`` (issue 14, item 4): received messages and each close written as the
JSON Lines ``wschan send --json`` writes (one writer, render/replies.py), in the bridge (pipes)
and on a terminal (a pseudo-terminal), by the real executable against a raw server on
127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .connect_helpers import Terminal, state_env
from .helpers import RawServer, frame
from .send_helpers import LoopThread, err_line, wschan
from .test_send_jsonl import CLOSE, TEXT, read_frame

pytestmark = pytest.mark.timeout(60)

#: What the server sends once it got "go": a text with a C1 control (CSI) and a bidi override,
#: a binary message, then a Close 4001 "bye".
GREETING = "hé\x9b31m\u202e"
BLOB = b"\x00\xff\x10"


async def on_go(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        opcode, payload = await read_frame(reader)
        if opcode == TEXT and payload == b"go":
            break
    writer.write(frame(TEXT, GREETING.encode()) + frame(2, BLOB))
    writer.write(frame(CLOSE, struct.pack("!H", 4001) + b"bye"))
    await writer.drain()
    while (await read_frame(reader))[0] != CLOSE:  # the client answers our Close
        pass


@pytest.fixture
def url() -> Iterator[str]:
    with LoopThread() as loop:
        server = RawServer(on_go)
        loop.call(server.__aenter__())
        yield server.url


def records(stdout: bytes) -> list[dict[str, Any]]:
    """The JSON Lines, without their times (two runs differ only there)."""
    out = []
    for line in stdout.decode().splitlines():
        record = json.loads(line)
        assert isinstance(record.pop("t"), float)
        out.append(record)
    return out


EXPECTED = [
    {"dir": "in", "type": "text", "data": GREETING},
    {"dir": "in", "type": "binary", "data": "00ff10"},
    {"type": "close", "code": 4001, "reason": "bye", "by": "peer", "clean": False},
]


def test_the_bridge_writes_what_send_json_writes(url: str) -> None:
    bridge = wschan("connect", url, "--json", "--wait", "10", input="go\n")
    sent = wschan("send", url, "go", "--json", "--wait", "10")
    assert records(bridge.stdout) == records(sent.stdout) == EXPECTED
    # Both report the server's 4001 the same way (exit 5: not a normal close).
    assert bridge.returncode == sent.returncode == 5
    assert (
        err_line(bridge)
        == err_line(sent)
        == ('wschan: the server closed the connection: 4001 (private use) "bye"')
    )


def test_the_bridge_without_json_still_writes_lines(url: str) -> None:
    result = wschan("connect", url, "--wait", "10", input="go\n")
    assert result.stdout.decode().splitlines() == [GREETING, "00ff10"]


def test_the_bridge_writes_the_close_it_made_itself() -> None:
    from .servers import ThreadedServer

    with ThreadedServer() as echo:
        result = wschan("connect", echo.url, "--json", "--wait", "0.2", input="a\n")
    assert result.returncode == 0, err_line(result)
    assert records(result.stdout) == [
        {"dir": "in", "type": "text", "data": "a"},
        {"type": "close", "code": 1000, "reason": "", "by": "local", "clean": True},
    ]


def test_with_reconnect_each_connection_has_its_close_record() -> None:
    from wschan_cli.server import Behaviour

    from .servers import ThreadedServer

    with ThreadedServer(Behaviour(close_after=0, close_code=4001, close_reason="go away")) as srv:
        result = wschan(
            "connect", srv.url, "--json", "--reconnect", "--reconnect-tries", "1",
            "--reconnect-delay", "0", input="",
        )  # fmt: skip
    assert result.returncode == 5
    close = {"type": "close", "code": 4001, "reason": "go away", "by": "peer", "clean": False}
    assert records(result.stdout) == [close, close]


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_on_a_terminal_the_records_are_shown_with_controls_escaped(
    url: str, tmp_path: Path
) -> None:
    with Terminal("connect", url, "--json", env=state_env(tmp_path)) as term:
        term.wait_for("established 1 .*state success", where="toolbar")
        term.send("go\r")
        term.wait_for(r'"type": "close", "code": 4001')
        status = term.wait_exit()
        screen, raw = term.text(), bytes(term.raw)
    assert status == 5
    shown = [json.loads(line) for line in screen.splitlines() if line.startswith('{"t"')]
    for record in shown:
        record.pop("t")
    assert shown == EXPECTED
    # The C1 CSI and the bidi override reach the terminal as JSON escapes, never as themselves.
    assert "\x9b".encode() not in raw and "\u202e".encode() not in raw
    assert '"data": "hé\\u009b31m\\u202e"' in screen


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (["--pretty"], "--json cannot be combined with --pretty"),
        (["--exec", "cat"], "--json cannot be used with --exec"),
    ],
)
def test_json_clashes_are_usage_errors(extra: list[str], error: str) -> None:
    result = wschan("connect", "ws://127.0.0.1:9/", "--json", *extra)
    assert result.returncode == 2
    assert error in err_line(result)
