"""One schedule of the shutdown race, run on the real ``Channel`` under ``ScheduleLoop``.

Set-up (not explored): a channel over a ``SimTransport`` connects and upgrades. Then the parties
start together and the scheduler orders every step of theirs: ``--senders`` sends, deinit
(graceful, or abrupt as the C++), the peer ending TCP (the reader then runs
``handle_terminate()``), and optionally one ping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from wschan_cli.channel import (
    Channel,
    ChannelClosed,
    ChannelDisposed,
    ChannelOptions,
    CloseInfo,
    Event,
    Party,
)
from wschan_cli.channel.channel import _Connection
from wschan_cli.trace.scenarios import Run
from wschan_cli.trace.verdicts import check

from .loop import Prune, ScheduleLoop, StepLimit, task_label
from .monitor import Monitor, Violation
from .sim import SimTransport, sim_factory

URL = "ws://sim.invalid/"


@dataclass(frozen=True)
class Setup:
    senders: int = 2
    with_ping: bool = False
    abrupt: bool = False
    channel_cls: type[Channel] = Channel  # a broken variant substitutes its subclass
    peer_close: bool = False  # the peer sends a Close frame (then ends TCP) instead of only EOF
    symmetric: bool = True  # sends not yet started are interchangeable in the explored state


@dataclass
class Result:
    """What one schedule produced."""

    choices: list[str] = field(default_factory=list)  # the party chosen at each choice point
    events: list[Event] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    complete: bool = False  # ran to the end (not pruned)
    steps: int = 0


class Schedule:
    """One execution: ``choose(labels)`` decides at each choice point."""

    def __init__(self, setup: Setup, choose: Callable[[Schedule, list[str]], int]) -> None:
        self.setup = setup
        self._choose = choose
        self.monitor = Monitor()
        self.outcomes: dict[str, str] = {}
        self.closes: list[CloseInfo] = []
        self.choices: list[str] = []
        self.loop: ScheduleLoop | None = None
        self.ch: Channel | None = None
        self.conns: list[Any] = []
        self.made: list[SimTransport] = []
        self.transport: SimTransport | None = None
        self._checked: set[int] = set()
        self.ping_outcome: str | None = None
        self.refused: list[str] = []  # sends refused at the door (never a party)

    # ------------------------------------------------------------------ running

    def chooser(self, labels: list[str]) -> int:
        index = self._choose(self, labels)
        self.choices.append(labels[index])
        return index

    def run(self) -> Result:
        loop = ScheduleLoop(self.chooser)
        self.loop = loop
        loop.after_step = self._after_step
        result = Result()
        asyncio.set_event_loop(loop)
        try:
            try:
                loop.run_until_complete(self._main(loop))
                result.complete = True
                left = [task_label(t) for t in loop.tasks if not t.done()]
                if left:
                    self.monitor.violate("7", f"hang: {', '.join(left)} still pending at the end")
            except RuntimeError:
                if not loop.hung:
                    raise
                self.monitor.violate("7", "hang: no party can make progress and no timer is set")
                result.complete = True
            except StepLimit as exc:
                self.monitor.violate("7", f"hang: {exc} (a livelock)")
                result.complete = True
            except Prune:
                pass
            if result.complete and not self.monitor.violations:
                self._final_checks()
        finally:
            self.monitor.finished = True
            self._cleanup(loop)
            asyncio.set_event_loop(None)
        result.choices = self.choices
        result.events = self.monitor.events
        result.violations = self.monitor.violations
        result.steps = loop.steps
        return result

    async def _main(self, loop: ScheduleLoop) -> None:
        made: list[SimTransport] = []
        options = ChannelOptions(ping_interval=None, compression=False, reconnect=True)
        ch = self.setup.channel_cls(
            URL, options=options, transport_factory=sim_factory(made), on_close=self.closes.append
        )
        self.ch = ch
        ch.subscribe(self.monitor.feed)
        await ch.open()
        self.transport = made[0]
        self.made = made
        self.conns = [ch._conn]
        loop.exploring = True
        parties: list[asyncio.Task[Any]] = []
        for i in range(1, self.setup.senders + 1):
            parties.append(loop.create_task(self._send(ch, i), name=f"send#{i}"))
        parties.append(
            loop.create_task(self._deinit(ch), name="deinit"),
        )
        parties.append(loop.create_task(self._peer_end(), name="peer"))
        if self.setup.with_ping:
            parties.append(loop.create_task(self._ping(ch), name="ping#1"))
        await asyncio.gather(*parties, return_exceptions=True)
        loop.exploring = False

    async def _send(self, ch: Channel, i: int) -> None:
        before = ch._parties.get("send", 0)
        try:
            await ch.send("pending send")  # the same data for every send (symmetry)
        except (ChannelDisposed, ChannelClosed) as exc:
            if ch._parties.get("send", 0) == before:
                # It arrived after the dispose, or after an error close: refused at the door
                # before it became a party (documented), so it was never pending.
                self.refused.append(f"{type(exc).__name__}: {exc}")
                return
            if isinstance(exc, ChannelClosed):
                self._record(before, f"ChannelClosed: {exc}")
                return
            self._record(before, f"ChannelDisposed: {exc}")
            self.monitor.violate("7", f"send#{before + 1} raised ChannelDisposed inside")
        except Exception as exc:
            self._record(before, f"{type(exc).__name__}: {exc}")
            self.monitor.violate("3, 7", f"send#{before + 1} failed with {type(exc).__name__}")
        else:
            self._record(before, "sent")

    def _record(self, before: int, outcome: str) -> None:
        self.outcomes[str(Party("send", before + 1))] = outcome

    async def _deinit(self, ch: Channel) -> None:
        try:
            await ch.deinit(abrupt=self.setup.abrupt)
        except Exception as exc:
            self.monitor.violate("7", f"deinit raised {type(exc).__name__}: {exc}")

    async def _peer_end(self) -> None:
        assert self.transport is not None
        if self.setup.peer_close:
            self.transport.peer.close(1001, "going away")
        else:
            self.transport.peer.end_tcp()

    async def _ping(self, ch: Channel) -> None:
        try:
            await ch.ping(b"explore")
            self.ping_outcome = "pong"
        except ChannelDisposed:
            self.ping_outcome = "rejected"
        except ChannelClosed as exc:
            self.ping_outcome = f"ChannelClosed: {exc}"
        except Exception as exc:
            self.ping_outcome = f"{type(exc).__name__}: {exc}"
            self.monitor.violate("3, 7", f"the ping failed with {type(exc).__name__}: {exc}")

    def _after_step(self) -> None:
        self.monitor.end_step()
        loop = self.loop
        assert loop is not None
        for task in loop.tasks:
            if id(task) in self._checked or not task.done():
                continue
            self._checked.add(id(task))
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is not None:
                self.monitor.violate(
                    "7", f"{task_label(task)} raised {type(exc).__name__}: {exc}".rstrip(": ")
                )

    def _final_checks(self) -> None:
        run = Run("explore", len(self.outcomes), self.setup.abrupt)
        run.events = self.monitor.events
        run.outcomes = self.outcomes
        run.closes = self.closes
        for verdict in check(run):
            if not verdict.ok:
                self.monitor.violate(verdict.invariant, f"{verdict.claim}: {verdict.evidence}")

    def _cleanup(self, loop: ScheduleLoop) -> None:
        """Close what a pruned or hung schedule left suspended, quietly."""
        pending = [t for t in loop.tasks if not t.done()]
        if pending:
            asyncio.events._set_running_loop(loop)
            try:
                for task in pending:
                    task._log_destroy_pending = False  # type: ignore[attr-defined]
                    with contextlib.suppress(BaseException):  # whatever its finally blocks do
                        task.get_coro().close()  # type: ignore[union-attr]
            finally:
                asyncio.events._set_running_loop(None)
        loop._ready.clear()  # type: ignore[attr-defined]
        loop.close()

    # ------------------------------------------------------------------ state

    def signature(self) -> Hashable:
        """Everything the rest of the schedule depends on (see engine.py on soundness)."""
        loop, ch = self.loop, self.ch
        assert loop is not None and ch is not None
        token = ch._token
        channel = (
            str(token.holder),
            tuple(str(p) for p in token.waiters.parties()),
            ch._established,
            ch._state.value,
            ch._inside,
            ch._disposed,
            ch._deiniting,
            len(ch._close_callbacks),
            ch._conn is None,
            tuple(sorted(ch._parties.items())),
            len(ch._tasks),
        )
        if ch._conn is not None and ch._conn not in self.conns:
            self.conns.append(ch._conn)  # a send after a clean close reconnected
        connection = tuple(
            (
                conn.shutdown_requested,
                conn.released,
                conn.reader_done.is_set(),
                len(conn.replies),
                conn.replier_running,
                conn.proto.state.name,
                len(conn.pings),
                conn.close is not None,
                conn.local_close is not None,
            )
            for conn in self.conns
        )
        if self.setup.symmetric:
            names = {
                id(t): _send_party(t) if t.get_name().startswith("send#") else task_label(t)
                for t in loop.tasks
            }
        else:
            names = {id(t): task_label(t) for t in loop.tasks}
        tasks = tuple(sorted((_task_state(t, names[id(t)]) for t in loop.tasks), key=repr))
        ready = tuple(
            sorted(names.get(id(loop.owner(h)), "callback") for h in loop._ready)  # type: ignore[attr-defined]
        )
        now = loop.time()
        timers = tuple(
            sorted(round(h.when() - now, 6) for h in loop._scheduled if not h.cancelled())  # type: ignore[attr-defined]
        )
        return (
            channel,
            connection,
            tuple(t.signature() for t in self.made),
            tasks,
            ready,
            timers,
            self.monitor.summary(),
            tuple(sorted(self.outcomes.items())),
            len(self.closes),
            self.ping_outcome,
            len(self.refused),
        )


def _abstract(value: Any) -> Hashable:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ("bytes", len(value))
    if isinstance(value, Party):
        return str(value)
    if isinstance(value, _Connection):
        return ("connection", value.n)  # which one matters once a send has reconnected
    if isinstance(value, asyncio.Future):
        return ("future", value.done())
    if isinstance(value, (list, tuple, dict, set)):
        return (type(value).__name__, len(value))
    return type(value).__name__


def _task_state(task: asyncio.Task[Any], label: str | None = None) -> Hashable:
    label = label or task_label(task)
    if task.done():
        if task.cancelled():
            return (label, "cancelled")
        exc = task.exception()
        return (label, "done", type(exc).__name__ if exc else None)
    frames = []
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        local = tuple(
            sorted((k, _abstract(v)) for k, v in frame.f_locals.items() if k not in _SKIP)
        )
        frames.append((frame.f_code.co_name, frame.f_lasti, local))
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return (label, tuple(frames))


_SKIP = frozenset({"self", "i"})  # ``i`` only numbers the scenario's send tasks


def _send_party(task: asyncio.Task[Any]) -> str:
    """A send task by what the channel knows of it: its party, once it has one. Sends that
    have not started are interchangeable (symmetry: they run the same code on equal data)."""
    if task.done():
        return "send"
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        party = frame.f_locals.get("party")
        if isinstance(party, Party):
            return str(party)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return "send"
