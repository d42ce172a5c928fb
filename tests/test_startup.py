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


def modules(result: subprocess.CompletedProcess[str]) -> set[str]:
    """Every module (dotted name) an ``imported`` run loaded."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_a_one_shot_loads_neither_package_metadata_nor_urllib_request(echo: ThreadedServer) -> None:
    # websockets.version imports importlib.metadata (email, zipfile, csv...) and uses it only
    # in a development checkout: it loads on first use (startup.py). urllib.request (email,
    # http.client) is for the proxy variables, and none is set (clean_env).
    result, _ = imported(str(SCRIPT), "send", echo.url, "hello", "--expect", "1")
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout == "hello\n"
    loaded = modules(result)
    assert "websockets.version" in loaded  # the probe saw websockets load
    unused = {"email", "zipfile", "csv", "importlib.metadata", "urllib.request", "http.client"}
    assert sorted(loaded & unused) == []


def test_a_proxy_variable_is_what_loads_urllib_request(echo: ThreadedServer) -> None:
    # The environment is still read: a proxy variable (bypassed for 127.0.0.1) loads urllib.
    env = clean_env(http_proxy="http://127.0.0.1:9", no_proxy="127.0.0.1")
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(SCRIPT), "send", echo.url, "hi", "--expect", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout == "hi\n"
    assert "urllib.request" in modules(result)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter (the collector and sys.modules of this one stay as they
    are); it fails the test if it raises."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-1500:]
    return result


def test_a_deferred_module_runs_on_first_use_and_is_the_real_one() -> None:
    run_python(
        "import sys\n"
        "from wschan_cli.startup import defer_import\n"
        "defer_import('colorsys')\n"
        "import colorsys\n"
        "assert 'rgb_to_hls' not in vars(colorsys), 'ran at import'\n"
        "assert colorsys.rgb_to_hls(1.0, 0.0, 0.0) == (0.0, 0.5, 1.0)\n"
        "from colorsys import hls_to_rgb\n"
        "assert hls_to_rgb(0.0, 0.5, 1.0) == (1.0, 0.0, 0.0)\n"
        "assert sys.modules['colorsys'] is colorsys and '__getattr__' not in vars(colorsys)\n"
        "try:\n"
        "    colorsys.no_such_name\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('a missing name was found')\n"
    )


def test_deferred_package_metadata_still_answers() -> None:
    # A package (submodules, relative imports), imported the way websockets.version does.
    run_python(
        "import sys\n"
        "from wschan_cli.startup import defer_import\n"
        "defer_import('importlib.metadata')\n"
        "import importlib.metadata\n"
        "import websockets\n"
        "assert 'email' not in sys.modules and 'zipfile' not in sys.modules\n"
        "from importlib.metadata import version\n"
        "assert version('websockets') == websockets.__version__\n"
        "assert importlib.metadata.distribution('click').metadata['Name'] == 'click'\n"
    )


def test_start_up_collects_less_then_the_run_collects_as_usual() -> None:
    run_python(
        "import gc\n"
        "from wschan_cli import startup\n"
        "usual = gc.get_threshold()\n"
        "startup.settled()\n"
        "assert gc.get_threshold() == usual and gc.get_freeze_count() == 0  # begin() did not run\n"
        "startup.begin()\n"
        "assert gc.isenabled() and gc.get_threshold()[0] == startup.START_UP_THRESHOLD\n"
        "startup.settled()\n"
        "assert gc.get_threshold() == usual and gc.get_freeze_count() > 0\n"
    )


@pytest.mark.parametrize("argv", [["send", "--help"], ["send", "ws://127.0.0.1:9/", "x"]])
def test_the_executable_exits_with_nothing_left_to_collect(argv: list[str]) -> None:
    # At exit (atexit handlers run after main), what the process made is frozen: the
    # interpreter's shutdown does not walk it in full collections.
    result = run_python(
        "import atexit, gc, sys\n"
        "def check():\n"
        "    frozen, left = gc.get_freeze_count(), len(gc.get_objects())\n"
        "    print('frozen' if frozen > 10 * left else f'{frozen} frozen, {left} left')\n"
        "atexit.register(check)\n"
        f"sys.argv = ['wschan', *{argv!r}]\n"
        "from wschan_cli.entry import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    assert result.stdout.splitlines()[-1] == "frozen"


@pytest.mark.parametrize("command", ["send", "connect"])
def test_help_builds_no_dataclass(command: str) -> None:
    # The options' defaults are plain numbers (channel/defaults.py); the settings' dataclasses
    # (ChannelOptions, ConnectionSettings: ~3 ms) are built when the command runs.
    result, names = imported(str(SCRIPT), command, "--help")
    assert result.returncode == 0, result.stderr[-500:]
    assert "--open-timeout" in result.stdout
    loaded = modules(result)
    assert "dataclasses" not in names
    assert not loaded & {"wschan_cli.settings", "wschan_cli.channel.options"}, loaded
