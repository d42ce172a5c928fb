"""The scheduler relies on CPython internals (the pure-Python Task, the loop's ready queue and
timer heap, the handles' private fields). These tests name the Python versions it supports and
fail on any other, or when an internal it reads is gone."""

from __future__ import annotations

import asyncio
import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wschan_cli.explore.loop import SUPPORTED_PYTHONS, ScheduleLoop

ROOT = Path(__file__).resolve().parent.parent

# One schedule of two parties, a timer that competes, a future nobody retrieves: every
# internal the scheduler reads is exercised; prints what it saw.
PROBE = """
import asyncio
from wschan_cli.explore.loop import ScheduleLoop, TIMER

seen = []
def chooser(labels):
    seen.append(tuple(labels))
    return len(labels) - 1

async def party(name):
    await asyncio.sleep(0)

async def main():
    loop = asyncio.get_running_loop()
    loop.exploring = True
    loop.timers_compete = True
    lost = loop.create_future()
    lost.set_exception(ValueError("lost"))
    fired = []
    loop.call_later(5, fired.append, 1)
    a, b = loop.create_task(party("a"), name="a"), loop.create_task(party("b"), name="b")
    await asyncio.gather(a, b)
    loop.exploring = False
    assert fired == [1] and loop.time() == 5, (fired, loop.time())
    assert len(loop.unretrieved()) == 1 and not loop.unretrieved()

loop = ScheduleLoop(chooser)
loop.run_until_complete(main())
loop.close()
assert seen[0] == ("a", "b", TIMER), seen
print("ok", len(seen))
"""


def test_this_python_is_supported() -> None:
    assert sys.version_info[:2] in SUPPORTED_PYTHONS, (
        f"the explorer's scheduler is checked on {SUPPORTED_PYTHONS}, not {sys.version_info[:2]}"
    )


def test_the_internals_it_reads_exist() -> None:
    assert issubclass(asyncio.tasks._PyTask, asyncio.futures._PyFuture)  # type: ignore[attr-defined]
    loop = ScheduleLoop(lambda labels: 0)
    try:
        assert hasattr(loop, "_ready") and hasattr(loop, "_scheduled")
        assert hasattr(loop, "_timer_cancelled_count")
        handle = loop.call_later(1, print)
        assert {"_callback", "_cancelled", "_when", "_scheduled"} <= set(dir(handle))
        assert hasattr(asyncio.events, "_set_running_loop")
        assert hasattr(asyncio.Task, "cancelling")
        future = loop.create_future()
        assert hasattr(future, "_log_traceback")
    finally:
        loop.close()


def test_the_probe_passes_here() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert result.returncode == 0 and result.stdout.startswith("ok"), result.stderr


def _interpreters() -> list[tuple[tuple[int, int], str]]:
    """Other supported Pythons installed here (pyenv), to run the probe on."""
    found = []
    for major, minor in SUPPORTED_PYTHONS:
        if (major, minor) == sys.version_info[:2]:
            continue
        pattern = os.path.expanduser(f"~/.pyenv/versions/{major}.{minor}.*/bin/python")
        paths = sorted(glob.glob(pattern))
        if paths:
            found.append(((major, minor), paths[-1]))
    return found


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("version", "python"), _interpreters() or [((0, 0), "")])
def test_the_probe_passes_on_the_other_supported_versions(
    version: tuple[int, int], python: str
) -> None:
    if not python:
        pytest.skip("no other supported Python installed on this machine")
    result = subprocess.run(
        [python, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0 and result.stdout.startswith("ok"), (version, result.stderr)
