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

from .footprint import ALL, Footprint, Tracer, changed, independent
from .loop import Prune


class Runnable(Protocol):
    def run(self) -> Any: ...

    def signature(self) -> Hashable: ...

    # partial-order reduction (explore(por=True)):
    def parts(self) -> dict[Hashable, Hashable]: ...  # the state, by location

    def transition_keys(self, labels: list[str]) -> list[Hashable]: ...

    def code_location(self, code: Any) -> Hashable | None: ...

    def clock(self) -> float: ...


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
    exhausted: bool = False  # every schedule was explored (not cut by a bound or Ctrl-C)
    stopped_by: str | None = None  # what cut the search short: "--max-schedules", ... "Ctrl-C"
    found: dict[str, Found] = field(default_factory=dict)  # kind -> shortest
    violating: int = 0  # schedules with a violation
    slept: int = 0  # executions stopped because every transition left was asleep (por)

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


class _Interner:
    """Visited states share their equal parts: most parts of a new state (the channel, a task,
    the transports) were seen in an explored one. A stored state is then a few references
    instead of a copy of everything (132,468 states of ``--senders 3 --with-ping --peer close``
    held 2.3 GB before). Equality, and so pruning, is unchanged: an interned part is equal to
    the part it replaces."""

    def __init__(self) -> None:
        self._parts: dict[Hashable, Hashable] = {}

    def state(self, state: tuple[Hashable, ...]) -> tuple[Hashable, ...]:
        return tuple(self._part(part) for part in state)

    def _part(self, part: Hashable) -> Hashable:
        if isinstance(part, tuple):  # a part of parts (the tasks, a (name, value) pair)
            part = tuple(self._parts.setdefault(item, item) for item in part)
        return self._parts.setdefault(part, part)


@dataclass
class _Node:
    """A choice point on the current path (partial-order reduction's bookkeeping)."""

    keys: list[Hashable]  # the transition of each alternative (its party, or the timer)
    parts: dict[Hashable, Hashable] | None  # the state's parts here (None: not reduced)
    sleep: dict[Hashable, Footprint]  # transitions asleep here, with their footprints
    todo: list[int]  # alternatives still to explore here, in order
    chosen: int = 0
    done: list[tuple[Hashable, Footprint]] = field(default_factory=list)  # explored + footprint


def explore(
    factory: Factory,
    *,
    reduce: bool = True,
    por: bool = False,
    max_schedules: int | None = None,
    max_states: int | None = None,
    stop_at_first: bool = False,
    deadline: float | None = None,
    on_result: Callable[[Any], None] | None = None,
    progress: Callable[[Report], None] | None = None,
    interrupted: Callable[[], bool] = lambda: False,
) -> Report:
    """Every schedule (depth first), pruning states already explored when ``reduce``, and with
    ``por`` skipping transitions that commute with what was explored (sleep sets).

    Sleep sets (Godefroid 1996, chapter 5): after exploring transition ``u`` from a choice
    point, a later alternative ``t`` there starts its subtree with ``u`` asleep when their
    footprints are disjoint (footprint.py): every schedule that takes ``u`` after ``t`` reaches
    the state ``u`` then ``t`` reaches, which was explored. ``u`` stays asleep along the path
    while each transition taken commutes with it, and a sleeping transition is not explored.
    With state pruning, a state is stored with the sleep set it was explored with; reached again
    with a sleep set that is not a superset, it is explored again for the transitions that were
    asleep then and are not now, and stored with the intersection (Godefroid 1996, section 5.3).
    Sleep sets alone visit every reachable state (they skip transitions, not states), so every
    per-step check still runs in every reachable state. Alternatives with the same transition
    key at one choice point (sends not yet started, with symmetry) are explored once."""
    report = Report()
    visited: dict[Hashable, frozenset[Hashable]] = {}
    shared = _Interner()
    stack: list[_Node] = []
    prefix: list[int] = []
    tracer: Tracer | None = None
    clock = [0.0]
    start = time.perf_counter()

    def begin(sched: Any) -> None:
        """The transition chosen now is fresh: observe what it touches."""
        nonlocal tracer
        if tracer is None:
            tracer = Tracer(sched.code_location)
        clock[0] = sched.clock()
        tracer.start()

    def choose(sched: Any, labels: list[str]) -> int:
        depth = len(sched.choices)
        if depth < len(prefix):
            if por and depth == len(prefix) - 1:
                begin(sched)
            return prefix[depth]
        report.choice_points += 1
        if not por:
            if reduce:
                sig = shared.state(sched.signature())
                if sig in visited:
                    raise Prune()
                visited[sig] = frozenset()
            stack.append(_Node([], None, {}, list(range(1, len(labels)))))
            return 0
        touched = tracer.stop() if tracer is not None else set()
        parts = sched.parts()
        sleep: dict[Hashable, Footprint] = {}
        if stack:
            parent = stack[-1]
            moved = sched.clock() != clock[0]  # virtual time moved: every timer shifted
            assert parent.parts is not None
            footprint = frozenset(
                {*touched, *changed(parent.parts, parts), *([ALL] if moved else [])}
            )
            parent.done.append((parent.keys[parent.chosen], footprint))
            for key, other in [*parent.sleep.items(), *parent.done[:-1]]:
                if independent(other, footprint):
                    sleep[key] = other
        keys = sched.transition_keys(labels)
        allowed: Callable[[Hashable], bool] = lambda key: key not in sleep  # noqa: E731
        if reduce:
            sig = shared.state(tuple(parts.items()))
            old = visited.get(sig)
            if old is not None:
                if old <= sleep.keys():
                    raise Prune()
                visited[sig] = old & sleep.keys()
                allowed = lambda key: key in old and key not in sleep  # noqa: E731
            else:
                visited[sig] = frozenset(sleep)
        todo: list[int] = []
        seen: set[Hashable] = set()
        for i, key in enumerate(keys):
            if key not in seen and allowed(key):
                todo.append(i)
            seen.add(key)
        if not todo:
            report.slept += 1
            raise Prune()
        node = _Node(keys, parts, sleep, todo[1:], todo[0])
        stack.append(node)
        begin(sched)
        return node.chosen

    try:
        while True:
            sched = factory(choose)
            try:
                result = sched.run()
            finally:
                if tracer is not None:
                    tracer.stop()
            report.schedules += 1
            if result.complete:
                report.complete += 1
            else:
                report.pruned += 1
            _note(report, result, report.schedules)
            if on_result is not None:
                on_result(result)
            if progress is not None:
                report.states = len(visited)
                report.seconds = time.perf_counter() - start
                progress(report)
            if stop_at_first and report.found:
                report.stopped_by = "the first violation"
                break
            if interrupted():  # a Ctrl-C came (runner.CtrlC.around): stop between schedules
                report.stopped_by = "Ctrl-C"
                break
            if max_schedules is not None and report.schedules >= max_schedules:
                report.stopped_by = "--max-schedules"
                break
            if max_states is not None and len(visited) >= max_states:
                report.stopped_by = "--max-states"  # the memory bound: states are kept
                break
            if deadline is not None and time.perf_counter() - start > deadline:
                report.stopped_by = "the deadline"
                break
            while stack and not stack[-1].todo:
                stack.pop()
            if not stack:
                report.exhausted = True
                break
            stack[-1].chosen = stack[-1].todo.pop(0)
            prefix = [node.chosen for node in stack]
    except KeyboardInterrupt:
        # Ctrl-C without a handler (the library's use): what was explored is still a result,
        # reported as not exhaustive; the interrupted schedule's loop was closed by its own
        # clean-up (Schedule.run).
        report.stopped_by = "Ctrl-C"
    finally:
        if tracer is not None:
            tracer.stop()
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
