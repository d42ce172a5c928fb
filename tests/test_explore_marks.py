"""An explored counterexample is drawn with the violated invariant marked at its step (issue 16,
item 4): as swimlanes on a terminal ("✗" on the step, "§N violated: ..." under its words) and as
a marker column in the plain table off one, so a pipe or a log shows the step too."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest
from rich.cells import cell_len

from wschan_cli.explore.engine import explore
from wschan_cli.explore.mutants import mutant
from wschan_cli.explore.scenario import Schedule
from wschan_cli.explore.setup import Setup

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SHOWING = re.compile(r"^shortest schedule showing §(\S+): (.*)$")
# The event a violation's text is about: "#12: send#1 ..." (not the "#1" of a party's name).
NAMED = re.compile(r"(?<!\w)#(\d+):")
# A step drawn with the mark: "✗ 11 0.00 ..." (swimlanes) or "✗ §7   11   0.00 ..." (plain)
# (the legend's "✗ failed" is the glyph of a failed party, not the mark).
MARKED = re.compile(r"^\s*✗\s+(?:§\S+\s+)?(\d+)\s+\d+\.\d+\s")


def wschan(*args: str, width: int, terminal: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env["COLUMNS"] = str(width)
    if terminal:
        env["TTY_COMPATIBLE"] = "1"  # rich draws as on a terminal, into the pipe
    return subprocess.run(
        [sys.executable, "-m", "wschan_cli", "trace-shutdown", "--explore", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def counterexamples(out: str) -> list[tuple[str, str, list[str]]]:
    """(invariant, message, the lines drawn under it) for each schedule the report shows."""
    shown: list[tuple[str, str, list[str]]] = []
    drawing = False
    for line in ANSI.sub("", out).splitlines():
        heading = SHOWING.match(line)
        if heading:
            shown.append((heading[1], heading[2], []))
            drawing = True
        elif drawing and not line:
            drawing = False  # the drawing ends at a blank line; the report's prose may follow
        elif drawing:
            shown[-1][2].append(line)
    return shown


def marked_step(lines: list[str]) -> tuple[int, str]:
    """The number of the one step drawn with "✗", and that line."""
    rows = [(MARKED.match(line), line) for line in lines]
    marked = [(int(m[1]), line) for m, line in rows if m]
    assert len(marked) == 1, lines
    return marked[0]


CASES = [
    # (arguments, words of the step the text names)
    (("--model", "workflow", "--senders", "0"), "failed"),  # failed: use after delete
    (("--senders", "2", "--broken", "lifo-wake-up"), "signal"),
    (("--senders", "2", "--broken", "release-without-signal"), "release"),
]


def marked_where_named(result: subprocess.CompletedProcess[str], width: int) -> list[Marked]:
    """Each counterexample shown is marked at the step its violation's text names, and its
    picture fits ``width`` (the report's own prose lines, like "choices:", wrap softly)."""
    assert result.returncode == 6, result.stderr
    shown = counterexamples(result.stdout)
    assert shown
    marked = []
    for invariant, message, lines in shown:
        named = NAMED.search(message)
        assert named, message
        step, line = marked_step(lines)
        assert step == int(named[1]), (message, line)
        picture = [text for text in lines if not text.startswith("choices:")]
        assert all(cell_len(text) <= width for text in picture), picture
        marked.append(Marked(invariant, lines, line))
    return marked


@dataclass
class Marked:
    invariant: str
    lines: list[str]  # what the report drew for it
    line: str  # its marked step


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("args", "words"), CASES)
@pytest.mark.parametrize("width", [80, 120])
def test_terminal_swimlanes_mark_the_step_the_violation_names(
    args: tuple[str, ...], words: str, width: int
) -> None:
    for shown in marked_where_named(wschan(*args, width=width, terminal=True), width):
        assert words in shown.line
        # the violation's own line sits under the marked step, not elsewhere
        at = shown.lines.index(shown.line)
        violated = f"§{shown.invariant} violated:"
        note = next(i for i, text in enumerate(shown.lines) if violated in text)
        assert note == at + 1, shown.lines[at : note + 1]


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("args", "words"), CASES[:2])
def test_plain_table_marks_the_step_off_a_terminal(args: tuple[str, ...], words: str) -> None:
    result = wschan(*args, width=80, terminal=False)
    assert "\x1b[" not in result.stdout
    for shown in marked_where_named(result, 80):
        assert f"✗ §{shown.invariant}" in shown.line and words in shown.line


@pytest.mark.timeout(60)
def test_a_violation_naming_no_event_is_marked_at_the_last_one() -> None:
    """A hang is found at the end of the schedule: its step is the last event."""
    setup = Setup(senders=2, channel_cls=mutant("waiter-after-yield"))
    report = explore(lambda choose: Schedule(setup, choose))
    hangs = [f for f in report.found.values() if f.violation.message.startswith("hang")]
    assert hangs
    for found in hangs:
        assert NAMED.search(found.violation.message) is None
        assert found.violation.seq == found.events[-1].seq
    result = wschan("--senders", "2", "--broken", "waiter-after-yield", width=80, terminal=True)
    assert result.returncode == 6
    for _, message, lines in counterexamples(result.stdout):
        step, _ = marked_step(lines)
        if message.startswith("hang"):
            rows = re.finditer(r"^\s*(?:✗\s+)?(\d+)\s+\d+\.\d+\s", "\n".join(lines), re.M)
            numbers = [int(m[1]) for m in rows]
            assert step == max(numbers)
