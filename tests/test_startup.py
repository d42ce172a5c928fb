"""What the real ``wschan`` executable loads on its short paths (issue 13, start-up).

A one-shot ``wschan send URL msg --expect 1`` must not import the heavy libraries only other
paths need (rich for colour and pretty-printing, prompt_toolkit for the interactive mode,
python-socks for SOCKS proxies, tenacity for --reconnect), and ``wschan --version`` must answer
before click and importlib.metadata are loaded. Seen with ``python -X importtime``, which lists
every module the process imported. Speed itself is measured in bench/send.py, not here.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .send_helpers import clean_env
from .servers import ThreadedServer

SCRIPT = Path(sys.executable).parent / "wschan"
HEAVY = ("rich", "prompt_toolkit", "python_socks", "tenacity", "pygments")


def imported(*argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``argv`` under ``python -X importtime``; the result and the top-level packages it
    imported."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=30,
        check=False,
    )
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return result, names


@pytest.fixture(scope="module")
def echo() -> Iterator[ThreadedServer]:
    with ThreadedServer() as server:
        yield server


def test_the_probe_sees_an_import() -> None:
    _, names = imported("-c", "import rich.text")
    assert "rich" in names


def test_a_one_shot_send_imports_none_of_the_heavy_libraries(echo: ThreadedServer) -> None:
    result, names = imported(str(SCRIPT), "send", echo.url, "hello", "--expect", "1")
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout == "hello\n"
    assert "websockets" in names and "click" in names  # the probe saw the real work
    assert sorted(names & set(HEAVY)) == []


def test_a_socks_proxy_is_what_loads_python_socks(echo: ThreadedServer) -> None:
    # Port 9 on loopback: nothing listens, the connect fails after python-socks is loaded.
    result, names = imported(
        str(SCRIPT), "send", echo.url, "x", "--proxy", "socks5://127.0.0.1:9", "--open-timeout", "5"
    )
    assert result.returncode != 0
    assert "python_socks" in names


def test_version_answers_before_click_and_package_metadata_load() -> None:
    result, names = imported(str(SCRIPT), "--version")
    assert result.returncode == 0 and result.stdout.startswith("wschan ")
    assert "click" not in names
    assert "importlib.metadata" not in result.stderr


def test_trace_shutdown_help_loads_only_the_names_of_the_explorer() -> None:
    # --broken and --party list their choices, --max-states its default, from names-only
    # modules; the patches of the core
    # (explore/mutants.py), the scheduler and the checks load when --explore runs.
    result, _ = imported(str(SCRIPT), "trace-shutdown", "--help")
    assert result.returncode == 0 and "--broken" in result.stdout
    loaded = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    explore = sorted(name for name in loaded if name.startswith("wschan_cli.explore."))
    assert explore == [
        "wschan_cli.explore.limits",
        "wschan_cli.explore.mutation_names",
        "wschan_cli.explore.parties",
    ]


def test_send_help_loads_nothing_only_a_run_or_an_archive_needs() -> None:
    # shutil (click's way to the terminal width) loads bz2, lzma and zlib; base64 is for
    # --auth and --base64 input; json for JSON output: none of them is needed to show help.
    result, names = imported(str(SCRIPT), "send", "--help")
    assert result.returncode == 0, result.stderr[-500:]
    assert "--close-code" in result.stdout
    assert not names & {"shutil", "bz2", "lzma", "base64", "json"}, names


def test_a_plain_one_shot_does_not_load_json(echo: ThreadedServer) -> None:
    result, names = imported(str(SCRIPT), "send", echo.url, "hello", "--expect", "1")
    assert result.returncode == 0, result.stderr[-500:]
    assert "json" not in names
