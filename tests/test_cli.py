"""The ``wschan`` group itself: version, help, ``python -m``, unknown commands."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from wschan_cli import __version__
from wschan_cli.server import Behaviour

from . import send_helpers
from .send_helpers import err_line, no_dns_env
from .servers import ThreadedServer


def wschan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wschan_cli", *args], capture_output=True, text=True, timeout=30
    )


def test_version_names_wschan_websockets_and_python() -> None:
    result = wschan("--version")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        f"wschan {__version__}",
        f"websockets {version('websockets')}",
        f"Python {platform.python_version()} ({sys.implementation.name})",
    ]


def test_help_lists_every_command_and_the_exit_statuses() -> None:
    result = wschan("--help")
    assert result.returncode == 0
    for name in ("send", "serve", "trace-shutdown"):
        assert f"  {name}" in result.stdout
    assert "130 interrupted" in result.stdout


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys; from wschan_cli.cli import main; sys.argv=['wschan','--help']\n"
        "try: main()\n"
        "except SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('wschan_cli.commands', "
        "'websockets', 'rich', 'asyncio'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_an_unknown_command_is_a_usage_error() -> None:
    result = wschan("frobnicate")
    assert result.returncode == 2 and "No such command 'frobnicate'" in result.stderr


def test_the_console_script_is_installed_beside_the_interpreter() -> None:
    script = Path(sys.executable).parent / "wschan"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.startswith("wschan ")


@pytest.mark.parametrize("command", ["send", "connect"])
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ws://127.0.0.1:0/", "port 0 cannot be connected to"),
        ("ws://exa mple.test/", "'exa mple.test' is not a valid host name"),
        # The resolver's IDNA encoding refused them: "internal error: UnicodeError", exit 1.
        (f"ws://{'a' * 64}.test/", f"'{'a' * 64}.test' is not a valid host name"),
        ("ws://a..test/", "'a..test' is not a valid host name"),
        # The request line went out as "GET /a b HTTP/1.1": malformed, for the server to refuse.
        ("ws://127.0.0.1:9/a b", "the path and query cannot carry ' ' (percent-encode it)"),
    ],
)
def test_a_url_no_connection_can_use_is_a_usage_error(
    command: str, url: str, problem: str, tmp_path: Path
) -> None:
    # Before issue 10, port 0 meant port 80 and a space went on to the resolver (exit 3).
    result = subprocess.run(
        [sys.executable, "-m", "wschan_cli", command, url, "--open-timeout", "2"],
        input=b"",
        capture_output=True,
        env=no_dns_env(tmp_path),
        timeout=20,
        check=False,
    )
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert f"Invalid value for 'URL': '{url}': {problem}" in err


def test_connect_says_closed_the_connection_not_wschan_wschan() -> None:
    # A close of ours (1009: the server's message is over --max-size) in the connect bridge.
    with ThreadedServer(Behaviour(send_size=2 << 20)) as server:
        result = send_helpers.wschan("connect", server.url)
    assert result.returncode == 5
    assert err_line(result).startswith("wschan: closed the connection: 1009 (message too big) ")
    assert err_line(result).endswith("(raise --max-size)")


@pytest.mark.parametrize(
    ("command", "closed"),
    [("send", "<&-"), ("send", ">&-"), ("connect", "<&-"), ("connect", ">&-")],
)
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_standard_stream_closed_by_the_parent_is_no_crash(
    command: str, closed: str, loop: str
) -> None:
    # With fd 0 (or 1) closed the socket took its number: uvloop aborted (libuv's assertion,
    # status 134), asyncio's loop failed on sys.stdin being None, and a closed stdout was a
    # traceback. Closed means empty (stdin) or discarded (stdout), as for Python's print.
    shell = ["sh", "-c", f'exec "$@" {closed}', "sh", sys.executable, "-m", "wschan_cli"]
    with ThreadedServer() as srv:
        message = ["hi"] if command == "send" else []
        result = subprocess.run(
            [*shell, command, srv.url, *message, "--wait", "0.2"],
            capture_output=True,
            timeout=30,
            env=send_helpers.clean_env(WSCHAN_LOOP=loop),
            stdin=subprocess.DEVNULL,
        )
        srv.wait_ended(1)
        assert result.returncode == 0, err_line(result)
        assert result.stderr == b""
        assert srv.received == (["hi"] if command == "send" else [])
