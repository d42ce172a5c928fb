"""What ``trace-shutdown --explore`` prints: the configuration, the numbers, and each kind of
violation with its shortest schedule drawn as a timeline (or all of it as JSON Lines)."""

from __future__ import annotations

import json

from rich.console import Console

from wschan_cli.explore.engine import Found, Report
from wschan_cli.explore.report import Config, summary, title

from .swimlanes import Mark
from .timeline import Timeline


class ProgressLine:
    """A long exploration shows how far it got, on a terminal: one line rewritten at most once
    a second (from the first schedule on), cleared before the report."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.shown_at: float | None = None

    def __call__(self, report: Report) -> None:
        if self.shown_at is not None and report.seconds - self.shown_at < 1.0:
            return
        self.shown_at = report.seconds
        self.console.file.write(
            f"\rexploring: {report.schedules} schedules, {report.states} distinct states, "
            f"{report.seconds:.0f} s (Ctrl-C stops and reports)\x1b[K"
        )
        self.console.file.flush()

    def clear(self) -> None:
        if self.shown_at is not None:
            self.console.file.write("\r\x1b[K")
            self.console.file.flush()


def _distinct(report: Report) -> list[tuple[str, Found]]:
    """Each kind of violation with its shortest schedule, shortest first."""
    return sorted(report.found.items(), key=lambda kv: (len(kv[1].events), kv[0]))


def print_report(
    config: Config, report: Report, console: Console, *, as_json: bool, lanes: bool
) -> None:
    if as_json:
        print(json.dumps({"explore": summary(config, report)}), flush=True)
        for kind, found in _distinct(report):
            record = {
                "violation": kind,
                "invariant": found.violation.invariant,
                "message": found.violation.message,
                "schedule": found.choices,
                "events": [e.to_json() for e in found.events],
            }
            print(json.dumps(record), flush=True)
        return
    s = summary(config, report)
    console.print(title(config), markup=False, highlight=False, soft_wrap=True)
    how = (
        f"{s['complete']} complete, {s['pruned'] - s['asleep']} stopped at a state explored "
        f"before, {s['asleep']} where every step left was asleep"
        if s["reduced"]
        else "every interleaving"
    )
    states = "distinct schedules drawn" if config.random is not None else "distinct states"
    console.print(
        f"schedules: {s['schedules']} ({how}); {states}: {s['states']}; "
        f"time: {s['seconds']:.2f} s ({s['schedules_per_second']:.0f} schedules/s); "
        f"{s['mode']}",
        markup=False,
        soft_wrap=True,
        highlight=False,
    )
    if report.ok:
        console.print(
            "no violation: every invariant of channel-model.md section 5 held after every step "
            + ("of every schedule" if report.exhausted else "of every schedule run (not all)"),
            markup=False,
            soft_wrap=True,
        )
        return
    console.print(f"{len(report.found)} kind(s) of violation:", markup=False, soft_wrap=True)
    for kind, _found in _distinct(report):
        console.print(f"  §{kind}", markup=False, highlight=False, soft_wrap=True)
    for _kind, found in _distinct(report):
        v = found.violation
        console.print()
        console.print(
            f"shortest schedule showing §{v.invariant}: {v.message}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            "choices: " + " -> ".join(found.choices), markup=False, highlight=False, soft_wrap=True
        )
        mark = None if v.seq is None else Mark(v.seq, v.invariant, v.message)
        timeline = Timeline(f"{config.model}: schedule {found.schedule_no}", mark)
        for event in found.events:
            timeline.add(event)
        console.print(timeline if lanes else timeline.compact())
