"""Enumerate schedules: stateless depth-first search with replay, or random sampling.

Each schedule is run from the start (set-up included); the choices of a prefix are replayed and
the first untried alternative is taken at the deepest choice point that has one.

Reduction (on by default, ``reduce=False`` turns it off): at each new choice point the explorer
computes the *state*: ``Channel.snapshot()`` and every connection's ``snapshot()`` (the core's
contract: every field is in it or excluded with a reason), the simulated transports and peers
(their protocols' parsers included), every task's coroutine stack (function, instruction offset
and every local but ``self``, by value), the ready party steps, the pending timers, and what the
checks keep of the history (``Monitor.summary()``, outcomes). Two prefixes that reach the same
state have the same futures, and every check that depends on the order of events runs while the
prefix executes (monitor.py), while the end-of-schedule checks depend only on what the state
holds. So a state already explored is not explored again: the schedule stops there (it is
*pruned*), and no violation can be missed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

from wschan_cli.invariants.monitor import Violation

from .loop import Prune


class Runnable(Protocol):
    def run(self) -> Any: ...

    def signature(self) -> Hashable: ...


Factory = Callable[[Callable[[Any, list[str]], int]], Runnable]


@dataclass
class Found:
    """A violation and the shortest schedule seen that shows it."""

    violation: Violation
    choices: list[str]
    events: list[Any]
    schedule_no: int


@dataclass
class Report:
    schedules: int = 0  # executions: complete + pruned
    complete: int = 0
    pruned: int = 0
    states: int = 0  # distinct states at choice points
    choice_points: int = 0
    seconds: float = 0.0
    exhausted: bool = False  # every schedule was explored (not cut by --max-schedules)
    found: dict[str, Found] = field(default_factory=dict)  # kind -> shortest
    violating: int = 0  # schedules with a violation

    @property
    def ok(self) -> bool:
        return not self.found

    @property
    def rate(self) -> float:
        return self.schedules / self.seconds if self.seconds else 0.0

    def shortest(self) -> Found | None:
        if not self.found:
            return None
        return min(self.found.values(), key=lambda f: (len(f.events), f.schedule_no))


def _kind(v: Violation) -> str:
    """Violations of the same kind: the invariant and the message without event numbers."""
    import re

    return v.invariant + ": " + re.sub(r"#\d+", "#", v.message.split(" (#")[0])


def _note(report: Report, result: Any, number: int) -> None:
    if not result.violations:
        return
    report.violating += 1
    for v in result.violations[:1]:  # the first is the cause; later ones follow from it
        kind = _kind(v)
        old = report.found.get(kind)
        if old is None or len(result.events) < len(old.events):
            report.found[kind] = Found(v, list(result.choices), list(result.events), number)


def explore(
    factory: Factory,
    *,
    reduce: bool = True,
    max_schedules: int | None = None,
    stop_at_first: bool = False,
    deadline: float | None = None,
    on_result: Callable[[Any], None] | None = None,
) -> Report:
    """Every schedule (depth first), pruning states already explored when ``reduce``."""
    report = Report()
    visited: set[Hashable] = set()
    stack: list[list[int]] = []  # per choice point: [number of alternatives, chosen]
    prefix: list[int] = []
    start = time.perf_counter()

    def choose(sched: Any, labels: list[str]) -> int:
        depth = len(sched.choices)
        if depth < len(prefix):
            return prefix[depth]
        report.choice_points += 1
        if reduce:
            sig = sched.signature()
            if sig in visited:
                raise Prune()
            visited.add(sig)
        stack.append([len(labels), 0])
        return 0

    while True:
        sched = factory(choose)
        result = sched.run()
        report.schedules += 1
        if result.complete:
            report.complete += 1
        else:
            report.pruned += 1
        _note(report, result, report.schedules)
        if on_result is not None:
            on_result(result)
        if stop_at_first and report.found:
            break
        if max_schedules is not None and report.schedules >= max_schedules:
            break
        if deadline is not None and time.perf_counter() - start > deadline:
            break
        while stack and stack[-1][1] >= stack[-1][0] - 1:
            stack.pop()
        if not stack:
            report.exhausted = True
            break
        stack[-1][1] += 1
        prefix = [chosen for _, chosen in stack]
    report.states = len(visited)
    report.seconds = time.perf_counter() - start
    return report


def sample(factory: Factory, runs: int, seed: int) -> Report:
    """``runs`` schedules, each choice drawn at random (seeded: the same seed, the same runs)."""
    report = Report()
    rng = random.Random(seed)
    seen: set[tuple[str, ...]] = set()
    start = time.perf_counter()

    def choose(sched: Any, labels: list[str]) -> int:
        report.choice_points += 1
        return rng.randrange(len(labels))

    for _ in range(runs):
        sched = factory(choose)
        result = sched.run()
        report.schedules += 1
        report.complete += 1
        seen.add(tuple(result.choices))
        _note(report, result, report.schedules)
    report.states = len(seen)  # here: distinct schedules drawn
    report.seconds = time.perf_counter() - start
    return report
