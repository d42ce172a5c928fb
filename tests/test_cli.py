"""The ``wschan`` group itself: version, help, ``python -m``, unknown commands."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from wschan_cli import __version__


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
