"""Replies go through wschan's own buffer, whatever PYTHONUNBUFFERED says (issue 13, streaming):
one write system call per reply made ``seq 1000000 | wschan send URL`` pay a million of them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from .send_helpers import clean_env, err_line, wschan
from .servers import ThreadedServer

PROBE = (
    "import os\n"
    "from wschan_cli.render.output import buffered_stdout\n"
    "out = buffered_stdout()\n"
    "out.write(b'buffered ')\n"
    "os.write(1, b'direct ')\n"  # reaches the pipe first: the write above is still held
    "out.flush()\n"
)


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_stdout_is_buffered_even_under_pythonunbuffered(unbuffered: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        env=clean_env(PYTHONUNBUFFERED=unbuffered),
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"direct buffered "


@pytest.fixture(scope="module")
def echo() -> Iterator[ThreadedServer]:
    with ThreadedServer() as server:
        yield server


def test_a_stream_prints_every_reply_in_order_under_pythonunbuffered(echo: ThreadedServer) -> None:
    lines = b"".join(b"line %d\n" % i for i in range(2000))
    result = wschan("send", echo.url, input=lines, env=clean_env(PYTHONUNBUFFERED="1"))
    assert result.returncode == 0, err_line(result)
    assert result.stdout == lines
