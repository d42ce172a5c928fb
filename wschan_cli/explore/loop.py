"""A deterministic asyncio event loop: one chosen ready party step per turn, virtual time.

asyncio's own loop runs every ready callback in FIFO order each turn. ``ScheduleLoop`` instead
runs exactly one ready callback per step and asks a *chooser* which one, whenever more than one
task step is ready. That is the only thing it changes: the channel code, its futures, events and
tasks are the ordinary asyncio ones, so the explorer drives the same code the client runs.

- A *party step* is a ready callback that resumes a task (a Task's step or wake-up). When two or
  more are ready, that is a choice point.
- Other ready callbacks (a future's done-callbacks, gather's bookkeeping, a due timer) are not a
  party's step; they run first, in FIFO order, as the tail of the step that caused them.
- Time is virtual: it moves straight to the earliest timer when nothing is ready. With
  ``timers_compete`` (up to ``timer_choices`` times per schedule) a pending timer is also an
  alternative at every choice point, labelled ``timer``: a timeout can fire while parties could
  still run (a write that does not drain, a keepalive ping and its timeout).
- When nothing is ready and no timer is pending but the main task has not finished, the loop
  stops and reports a hang.

Tasks are created as the pure-Python ``asyncio.tasks._PyTask`` so that every resumption is a
ready callback whose owner task is known. That, ``loop._ready``, ``loop._scheduled`` and the
handles' private fields are CPython internals: ``SUPPORTED_PYTHONS`` names the versions checked
(tests/test_explore_loop.py fails on any other).
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Coroutine
from typing import Any

# The pure-Python Task: its ready callbacks are bound methods of the task itself.
_PyTask: Any = asyncio.tasks._PyTask

Chooser = Callable[[list[str]], int]

SUPPORTED_PYTHONS = ((3, 11), (3, 12), (3, 13))

TIMER = "timer"  # the label of "let the earliest timer fire now" at a choice point


class Hang(Exception):
    """Nothing is ready, no timer is pending, and the main task has not finished."""


class Prune(Exception):
    """The explorer reached a state explored before: stop this schedule here."""


class StepLimit(Exception):
    """A schedule ran more steps than allowed (a livelock, for the explorer)."""


def task_label(task: asyncio.Task[Any]) -> str:
    """The task's name: the channel names its tasks after their party (reader#1, ...)."""
    name = task.get_name()
    if not name.startswith("Task-"):
        return name
    coro = task.get_coro()
    qual = getattr(coro, "__qualname__", "")
    return qual.rsplit(".", 1)[-1] or name


class ScheduleLoop(asyncio.BaseEventLoop):
    """Run one chosen ready step per turn. ``chooser(labels)`` returns the index to run; it is
    only asked when ``exploring`` is on and two or more party steps are ready."""

    def __init__(self, chooser: Chooser, *, max_steps: int = 5000) -> None:
        super().__init__()
        self._now = 0.0
        self.chooser = chooser
        self.exploring = False
        self.max_steps = max_steps
        self.steps = 0
        self.after_step: Callable[[], None] | None = None
        self.on_choice: Callable[[list[asyncio.Handle]], None] | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.futures: list[asyncio.Future[Any]] = []
        self.hung = False
        self.timers_compete = False
        self.timer_choices = 2
        self.set_task_factory(self._make_task)

    def create_future(self) -> asyncio.Future[Any]:
        future = super().create_future()
        self.futures.append(future)  # the schedule checks that every exception was retrieved
        return future

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        # A schedule stopped at an explored state abandons its tasks, and with them futures
        # (a gather's, a task's) that would have been retrieved had it run on: asyncio would
        # warn when they are collected. Complete schedules are checked by unretrieved().
        if "never retrieved" in str(context.get("message", "")):
            return
        super().call_exception_handler(context)

    def unretrieved(self) -> list[asyncio.Future[Any]]:
        """Futures that hold an exception nobody retrieved (asyncio would warn on collection);
        marks them retrieved, so the warning is this report, once."""
        lost = [
            f
            for f in [*self.futures, *self.tasks]
            if f.done() and getattr(f, "_log_traceback", False)
        ]
        for future in lost:
            future._log_traceback = False
        return lost

    # virtual time
    def time(self) -> float:
        return self._now

    def _make_task(self, loop: Any, coro: Coroutine[Any, Any, Any], **kwargs: Any) -> Any:
        task = _PyTask(coro, loop=self, **kwargs)
        self.tasks.append(task)
        return task

    # no I/O at all
    def _process_events(self, event_list: Any) -> None:  # pragma: no cover - never polled
        pass

    def _write_to_self(self) -> None:  # pragma: no cover - no threads
        pass

    @staticmethod
    def owner(handle: asyncio.Handle) -> asyncio.Task[Any] | None:
        callback = getattr(handle, "_callback", None)
        owner = getattr(callback, "__self__", None)
        return owner if isinstance(owner, _PyTask) else None

    def label(self, handle: asyncio.Handle) -> str:
        task = self.owner(handle)
        return task_label(task) if task is not None else "callback"

    def _due_timers(self) -> None:
        scheduled = self._scheduled
        while scheduled and scheduled[0]._cancelled:
            heapq.heappop(scheduled)
            self._timer_cancelled_count -= 1
        if not self._ready and scheduled:
            self._now = max(self._now, scheduled[0]._when)
        while scheduled and scheduled[0]._when <= self._now:
            handle = heapq.heappop(scheduled)
            if handle._cancelled:
                self._timer_cancelled_count -= 1
                continue
            handle._scheduled = False
            self._ready.append(handle)

    def _competing_timer(self) -> asyncio.TimerHandle | None:
        if not (self.timers_compete and self.timer_choices > 0):
            return None
        live = [h for h in self._scheduled if not h._cancelled]
        return min(live, key=lambda h: h._when) if live else None

    def _fire(self, timer: asyncio.TimerHandle) -> None:
        """Time jumps to ``timer`` and it runs now, ahead of the ready party steps."""
        self._now = max(self._now, timer.when())
        self._scheduled.remove(timer)
        heapq.heapify(self._scheduled)
        timer._scheduled = False
        timer._run()

    def _run_once(self) -> None:
        ready = self._ready
        # Drop cancelled handles; move due timers in (advancing time only if nothing is ready).
        if any(h._cancelled for h in ready):
            kept = [h for h in ready if not h._cancelled]
            ready.clear()
            ready.extend(kept)
        self._due_timers()
        if not ready:
            self.hung = True
            self._stopping = True
            return
        # Callbacks that are no party's step run first, in FIFO order.
        for i, handle in enumerate(ready):
            if self.owner(handle) is None:
                del ready[i]
                handle._run()
                return
        self.steps += 1
        if self.steps > self.max_steps:
            raise StepLimit(f"more than {self.max_steps} steps")
        index = 0
        timer = self._competing_timer()
        if self.exploring and (len(ready) > 1 or timer is not None):
            handles = list(ready)
            if self.on_choice is not None:
                self.on_choice(handles)
            labels = [self.label(h) for h in handles] + ([TIMER] if timer is not None else [])
            index = self.chooser(labels)
            if index == len(handles):
                self.timer_choices -= 1
                self._fire(timer)
                return
        handle = ready[index]
        del ready[index]
        handle._run()
        if self.exploring and self.after_step is not None:
            self.after_step()


def run_scheduled(
    main: Callable[[ScheduleLoop], Coroutine[Any, Any, Any]],
    chooser: Chooser,
    *,
    max_steps: int = 5000,
    setup: Callable[[ScheduleLoop], None] | None = None,
) -> tuple[ScheduleLoop, Any]:
    """Run ``main(loop)`` on a fresh ScheduleLoop; returns the loop (for its state) and the
    result. Raises Hang when the schedule cannot finish."""
    loop = ScheduleLoop(chooser, max_steps=max_steps)
    if setup is not None:
        setup(loop)
    try:
        asyncio.set_event_loop(loop)
        try:
            result = loop.run_until_complete(main(loop))
        except RuntimeError:
            if loop.hung:
                raise Hang("no party can make progress") from None
            raise
        return loop, result
    finally:
        for task in loop.tasks:
            if not task.done():
                task._log_destroy_pending = False
        asyncio.set_event_loop(None)
        loop.close()
