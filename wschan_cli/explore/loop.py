"""A deterministic asyncio event loop: one chosen ready party step per turn, virtual time.

asyncio's own loop runs every ready callback in FIFO order each turn. ``ScheduleLoop`` instead
runs exactly one ready callback per step and asks a *chooser* which one, whenever more than one
task step is ready. That is the only thing it changes: the channel code, its futures, events and
tasks are the ordinary asyncio ones, so the explorer drives the same code the client runs.

- A *party step* is a ready callback that resumes a task (a Task's step or wake-up). When two or
  more are ready, that is a choice point.
- Other ready callbacks (a future's done-callbacks, gather's bookkeeping, a due timer) are not a
  party's step; they run first, in FIFO order, as the tail of the step that caused them.
- Time is virtual: it only moves when nothing is ready, straight to the earliest timer. So a
  timeout fires only when no party can make progress (timeouts are long compared to steps).
- When nothing is ready and no timer is pending but the main task has not finished, the loop
  stops and reports a hang.

Tasks are created as the pure-Python ``asyncio.tasks._PyTask`` so that every resumption is a
ready callback whose owner task is known.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Coroutine
from typing import Any

# The pure-Python Task: its ready callbacks are bound methods of the task itself.
_PyTask: Any = asyncio.tasks._PyTask  # type: ignore[attr-defined]

Chooser = Callable[[list[str]], int]

_KNOWN = {
    "Channel._run_reader": "reader",
    "Channel._auto_reply": "auto_reply",
    "Channel._keepalive": "keepalive",
}


class Hang(Exception):
    """Nothing is ready, no timer is pending, and the main task has not finished."""


class Prune(Exception):
    """The explorer reached a state explored before: stop this schedule here."""


class StepLimit(Exception):
    """A schedule ran more steps than allowed (a livelock, for the explorer)."""


def task_label(task: asyncio.Task[Any]) -> str:
    name = task.get_name()
    if not name.startswith("Task-"):
        return name
    coro = task.get_coro()
    qual = getattr(coro, "__qualname__", "")
    return _KNOWN.get(qual, qual.rsplit(".", 1)[-1] or name)


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
        self.hung = False
        self.set_task_factory(self._make_task)

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
        if self.exploring and len(ready) > 1:
            handles = list(ready)
            if self.on_choice is not None:
                self.on_choice(handles)
            index = self.chooser([self.label(h) for h in handles])
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
