"""What a step touched, observed while it runs: the footprints of partial-order reduction.

A *transition* is what runs from one choice point to the next: the chosen party's step, the
callbacks it caused, and the steps that followed while only one party was ready. Its footprint
is a set of *locations* (the channel, the simulated transports and peers, one location per task,
the timers, the monitor's summary, the scenario's records), derived from two observations, never
from a list of which parties commute:

- the code it ran: while a fresh transition runs, a trace function records every Python frame
  that starts or resumes, and the schedule maps the frame's code to the location it belongs to
  (code of ``wschan_cli/channel`` reads and writes the channel, code of ``explore/sim.py`` the
  transports and peers; websockets' code is reached only through one of them). That covers
  reads, which a comparison of states cannot see;
- the state it changed: the schedule's state is split into named parts (``Schedule.parts()``,
  the same values the explored state is made of), and every part that differs between the two
  choice points is in the footprint. That covers effects on objects whose code did not run (a
  future set, a task made ready, a timer armed or cancelled).

A transition during which virtual time moved, or that ran code mapped to ``ALL`` (cancelling a
task), conflicts with every other. Two transitions commute when their footprints are disjoint:
neither wrote what the other read or wrote, so each reads the same values in either order and
both orders end in the same state (Godefroid 1996, section 3: independence). Footprints are
recorded only for transitions run for the first time in an execution (a replayed prefix is not
traced), which is where the sleep sets need them (engine.py).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Hashable, Mapping
from types import CodeType, FrameType
from typing import Any

ALL = "*"  # conflicts with every location

Footprint = frozenset[Hashable]
Locate = Callable[[CodeType], Hashable | None]


class Tracer:
    """Records the locations of the code that runs between ``start()`` and ``stop()``."""

    def __init__(self, locate: Locate) -> None:
        self._locate = locate
        self._cache: dict[CodeType, Hashable | None] = {}
        self.touched: set[Hashable] = set()
        self._saved: Any = None
        self.active = False
        self._collecting = False

    def _trace(self, frame: FrameType, event: str, arg: object) -> None:
        code = frame.f_code
        try:
            where = self._cache[code]
        except KeyError:
            where = self._cache[code] = self._locate(code)
        if where is not None:
            self.touched.add(where)
        # None: no line events for this frame (only calls and resumptions are seen)

    def start(self) -> None:
        if not self.active:
            self.touched = set()
            # No garbage collection while observing: a finalizer of an object left by an earlier
            # schedule would run its code inside this transition and count as its touch (sound,
            # but the footprints, and so the counts, would depend on when collection runs).
            self._collecting = gc.isenabled()
            gc.disable()
            self._saved = sys.gettrace()
            sys.settrace(self._trace)  # type: ignore[arg-type]
            self.active = True

    def stop(self) -> set[Hashable]:
        if self.active:
            sys.settrace(self._saved)
            self._saved = None
            self.active = False
            if self._collecting:
                gc.enable()
        return self.touched


def changed(
    before: Mapping[Hashable, Hashable], after: Mapping[Hashable, Hashable]
) -> set[Hashable]:
    """The parts of the state whose value differs (a part that appeared or vanished, too)."""
    keys = before.keys() | after.keys()
    return {k for k in keys if before.get(k) != after.get(k)}


def independent(a: Footprint, b: Footprint) -> bool:
    return ALL not in a and ALL not in b and a.isdisjoint(b)
