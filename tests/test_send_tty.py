"""On a terminal, server text is shown inert: ANSI escapes and other control characters are
escaped, rich markup is printed as the text it is. The terminal here is a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator

import pytest

from .send_helpers import clean_env
from .servers import ThreadedServer

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")


@pytest.fixture(scope="module")
def echo() -> Iterator[ThreadedServer]:
    with ThreadedServer() as server:
        yield server


def on_a_terminal(*args: str, **env: str) -> tuple[int, str]:
    """Run wschan with stdout on a pseudo-terminal; return its status and what it showed."""
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "wschan_cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            env=clean_env(TERM="xterm-256color", **env),
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not data:
                break
            chunks.append(data)
        status = process.wait(timeout=20)
        assert process.stderr is not None
        process.stderr.close()
    finally:
        os.close(master)
    return status, b"".join(chunks).decode().replace("\r\n", "\n")


HOSTILE = "\x1b[31mred\x1b[0m \x1b]0;title\x07 [bold red]not bold[/] back\bspace \u202eevil"


def test_escapes_and_markup_are_shown_inert_on_a_terminal(echo: ThreadedServer) -> None:
    status, shown = on_a_terminal("send", echo.url, HOSTILE)
    assert status == 0
    assert "\x1b" not in shown and "\x07" not in shown and "\b" not in shown
    assert "\u202e" not in shown
    assert shown == (
        "\\x1b[31mred\\x1b[0m \\x1b]0;title\\x07 [bold red]not bold[/] back\\x08space \\u202eevil\n"
    )


def test_raw_passes_the_bytes_through_even_on_a_terminal(echo: ThreadedServer) -> None:
    status, shown = on_a_terminal("send", echo.url, "\x1b[1mbold\x1b[0m", "--raw")
    assert status == 0
    assert shown == "\x1b[1mbold\x1b[0m\n"


def test_pretty_json_is_highlighted_on_a_terminal_and_stays_inert(echo: ThreadedServer) -> None:
    status, shown = on_a_terminal("send", echo.url, '{"m": "[b]x[/b]\\u001b[2J"}', "--pretty")
    assert status == 0
    assert "\x1b[" in shown  # colour codes from the highlighter
    assert "\x1b[2J" not in shown  # but never the server's own escape
    assert "[b]x[/b]" in shown


def test_no_color_turns_highlighting_off(echo: ThreadedServer) -> None:
    status, shown = on_a_terminal("send", echo.url, '{"a": 1}', "--pretty", NO_COLOR="1")
    assert status == 0
    assert shown == '{\n  "a": 1\n}\n'


def test_color_never_turns_highlighting_off_on_a_terminal(echo: ThreadedServer) -> None:
    status, shown = on_a_terminal("send", echo.url, '{"a": 1}', "--pretty", "--color", "never")
    assert status == 0
    assert shown == '{\n  "a": 1\n}\n'


def test_json_lines_on_a_terminal_escape_c1_and_bidi_controls_and_stay_json(
    echo: ThreadedServer,
) -> None:
    # json.dumps escapes C0 controls itself, but writes DEL, C1 (a CSI is 0x9b) and bidi
    # controls as they are: on a terminal they are written as \uXXXX escapes too.
    status, shown = on_a_terminal("send", echo.url, "a\x9b2J\x7f\u202eb", "--json")
    assert status == 0
    first = shown.splitlines()[0]
    assert "\x9b" not in shown and "\x7f" not in shown and "\u202e" not in shown
    assert '"data": "a\\u009b2J\\u007f\\u202eb"' in first
    assert json.loads(first)["data"] == "a\x9b2J\x7f\u202eb"
