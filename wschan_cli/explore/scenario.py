"""One schedule of the channel's races, run on the real ``Channel`` under ``ScheduleLoop``.

Set-up (not explored): a channel over a ``SimTransport`` connects and upgrades (unless the
``connector`` party is explored: then the sends connect). Then the parties start together and
the scheduler orders every step of theirs: ``senders`` sends, deinit (graceful, or abrupt as the
C++), the peer (ending TCP, or its Close first; optionally pinging and sending data), and the
parties of ``PARTIES`` (keepalive, a cancellation, the peer stopping to read, ...).
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
    Message,
    OpenTimeout,
    Party,
    PartyKind,
    PingTimeout,
    What,
    WriteTimeout,
)
from wschan_cli.channel.close import UNDRAINED
from wschan_cli.invariants.monitor import PER_STEP, Monitor, Violation
from wschan_cli.invariants.record import Run
from wschan_cli.invariants.verdicts import check

from .loop import Prune, ScheduleLoop, StepLimit, task_label
from .setup import TIMEOUT, URL, Setup, deterministic_bytes
from .sim import SimTransport, newest_open, sim_factory
from .state import code_location, send_party, task_state


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
        self.options = ChannelOptions(
            ping_interval=TIMEOUT if setup.keepalive else None,
            ping_timeout=TIMEOUT,
            open_timeout=TIMEOUT,
            close_timeout=TIMEOUT,
            write_timeout=TIMEOUT,
            compression=False,
            reconnect=True,  # the C++ design: a send after a clean close reconnects
        )
        # Bound: the write timeout, the close timeout, then the wait for TCP's end (D5).
        self.monitor = Monitor(close_bound=3 * TIMEOUT, cancelled=self._was_cancelled)
        self._party_tasks: dict[str, asyncio.Task[Any]] = {}
        self.outcomes: dict[str, str] = {}
        self.closes: list[CloseInfo] = []
        self.choices: list[str] = []
        self.loop: ScheduleLoop | None = None
        self.ch: Channel | None = None
        self.made: list[SimTransport] = []
        self._checked: set[int] = set()
        self.ping_outcome: str | None = None
        self.refused: list[str] = []  # sends refused at the door (never a party)
        self.sends: list[asyncio.Task[Any]] = []
        self.echoes: list[asyncio.Task[Any]] = []  # and the application's deinit from on_close
        self._holder_task: asyncio.Task[Any] | None = None

    # ------------------------------------------------------------------ running

    def chooser(self, labels: list[str]) -> int:
        index = self._choose(self, labels)
        self.choices.append(labels[index])
        return index

    def run(self) -> Result:
        with deterministic_bytes(self.setup.channel_cls):
            return self._run()

    def _run(self) -> Result:
        loop = ScheduleLoop(self.chooser)
        loop.timers_compete = self.setup.timers_compete
        self.monitor.now = loop.time
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
        setup = self.setup
        ch = setup.channel_cls(
            URL,
            options=self.options,
            transport_factory=sim_factory(self.made),
            on_close=self._on_close,
            process=self._process,
        )
        self.ch = ch
        ch.subscribe(self.monitor.feed)
        ch.subscribe(self._track_holder)
        if not setup.connector:
            await ch.open()
        for transport in self.made:
            self._watch(transport)
        loop.exploring = True
        self.sends = [
            loop.create_task(self._send(ch, "pending send"), name=f"send#{i}")
            for i in range(1, setup.senders + 1)
        ]
        deinit = loop.create_task(self._deinit(ch), name="deinit")
        parties = [*self.sends, deinit]
        parties.append(loop.create_task(self._peer(), name="peer"))
        if setup.with_ping:
            parties.append(loop.create_task(self._ping(ch), name="ping#1"))
        if setup.stall:
            parties.append(loop.create_task(self._stall(), name="stall"))
        if setup.cancel and self.sends:
            parties.append(loop.create_task(self._cancel(self.sends[0]), name="cancel"))
        if setup.cancel_deinit:
            parties.append(loop.create_task(self._cancel(deinit), name="cancel-deinit"))
        await asyncio.gather(*parties, return_exceptions=True)
        if setup.cancel_deinit:
            # D11: a cancelled deinit does not stop a later one from finishing and disposing.
            await loop.create_task(self._deinit(ch), name="deinit#2")
        while not all(t.done() for t in self.echoes):
            await asyncio.gather(*self.echoes, return_exceptions=True)
        loop.exploring = False
        while loop._ready:  # type: ignore[attr-defined]
            await asyncio.sleep(0)  # let what is ready finish (a cancelled keepalive's last step)

    def _transport(self) -> SimTransport | None:
        """The peer's end of the newest connection, if it is still open."""
        return newest_open(self.made)

    def _watch(self, transport: SimTransport) -> None:
        transport.on_write = self._check_wire
        transport.undrained = self._cut_undrained
        transport.peer.on_violation = self.monitor.violate
        transport.peer.close_received = asyncio.get_running_loop().create_future()

    def _cut_undrained(self) -> bool:
        """The channel is cutting its connection because its own writes did not drain in time
        (the 1006 it records, close.UNDRAINED): a Close it read then goes unanswered."""
        conn = dict(self.ch.snapshot())["_conn"] if self.ch is not None else None
        local = dict(conn).get("local_close") if conn else None  # type: ignore[call-overload]
        return isinstance(local, CloseInfo) and local.reason in UNDRAINED

    def _track_holder(self, e: Event) -> None:
        if e.what is What.TAKE:
            self._holder_task = asyncio.current_task()
        elif e.what is What.RELEASE:
            self._holder_task = None
        elif e.what is What.WAIT and (task := asyncio.current_task()) is not None:
            self._party_tasks[str(e.party)] = task
        elif e.what is What.ESTABLISHED and e.established == 1 and self.made:
            self._watch(self.made[-1])
        elif e.what is What.UPGRADED and self.made:
            self.made[-1].upgraded = True

    def _was_cancelled(self, party: str) -> bool:
        task = self._party_tasks.get(party)
        return task is not None and (task.cancelling() > 0 or task.cancelled())

    def _check_wire(self, data: bytes) -> None:
        """Peer side: bytes reach the wire only from the task of the token holder (1, 8)."""
        task = asyncio.current_task()
        if task is not self._holder_task:
            ch = self.ch
            holder = dict(ch.snapshot())["_token"][0] if ch is not None else "?"
            who = task_label(task) if task is not None else "a callback"
            self.monitor.violate(
                "1", f"{who} put {len(data)} bytes on the wire while {holder} held the token"
            )

    async def _send(self, ch: Channel, data: str) -> None:
        before = _send_count(ch)
        try:
            await ch.send(data, fragment_size=_fragment_size(data, self.setup.fragments))
        except asyncio.CancelledError:
            if _send_count(ch) != before:
                self._record(before, "cancelled")
        except (WriteTimeout, OpenTimeout) as exc:
            # D8: the connection was aborted; or the open timeout fired (with competing
            # timers, time may pass at any step, also while connecting)
            self._record(before, f"{type(exc).__name__}: {exc}")
        except (ChannelDisposed, ChannelClosed) as exc:
            if _send_count(ch) == before:
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
        self.outcomes[str(Party(PartyKind.SEND, before + 1))] = outcome

    def _on_close(self, info: CloseInfo) -> None:
        """The application's close callback; with ``on_close_deinit`` it calls deinit() (D7:
        allowed, the callback runs outside the token)."""
        self.closes.append(info)
        ch, loop = self.ch, self.loop
        if self.setup.on_close_deinit and ch is not None and loop is not None:
            self.echoes.append(loop.create_task(self._app_deinit(ch), name="on-close-deinit"))

    async def _app_deinit(self, ch: Channel) -> None:
        try:
            await ch.deinit(abrupt=self.setup.abrupt)
        except Exception as exc:
            self.monitor.violate("7", f"deinit from on_close raised {type(exc).__name__}: {exc}")

    def _process(self, message: Message) -> None:
        """The application: answer each message with a send (the Autobahn echo client)."""
        ch, loop = self.ch, self.loop
        assert ch is not None and loop is not None
        data = message.data if isinstance(message.data, str) else message.data.decode()
        name = f"echo#{len(self.echoes) + 1}"
        self.echoes.append(loop.create_task(self._send(ch, data), name=name))

    async def _deinit(self, ch: Channel) -> None:
        if self.setup.deinit_last:
            await asyncio.gather(*self.sends, return_exceptions=True)
        try:
            await ch.deinit(abrupt=self.setup.abrupt)
        except Exception as exc:
            self.monitor.violate("7", f"deinit raised {type(exc).__name__}: {exc}")

    async def _peer(self) -> None:
        """The peer's own steps: pings and data if asked, then its end (Close or EOF)."""
        setup = self.setup
        if setup.peer_ping and (t := self._transport()):
            t.peer.ping(b"peer")
            await asyncio.sleep(0)
        if setup.autobahn and (t := self._transport()):
            t.peer.message(["frag", "ment"], ping_between=True)
            await asyncio.sleep(0)
        if setup.peer_data:
            for piece, last in (("frag", False), ("ment", True)):
                if t := self._transport():
                    t.peer.text(piece, fin=last, continuation=last)
                    await asyncio.sleep(0)
                if not last and (t := self._transport()):
                    t.peer.ping(b"between")
                    await asyncio.sleep(0)
        if setup.slow_close:
            await self._slow_close()
            return
        t = self._transport()
        if t is None:
            return  # no connection (yet, or any more): nothing to end
        if setup.peer_close:
            t.peer.close(1001, "going away")
        else:
            t.peer.end_tcp()

    async def _slow_close(self) -> None:
        """After the channel's Close arrives, ping every half close timeout, five times, and
        never end TCP: a graceful close must still end within its bound (D5)."""
        t = self._transport()
        if t is None or t.peer.close_received is None:
            return
        t.peer.mute_close = True
        await t.peer.close_received
        for _ in range(5):
            await asyncio.sleep(TIMEOUT / 2)
            t.deliver_ping()

    async def _stall(self) -> None:
        if t := self._transport():
            t.stall()

    async def _cancel(self, target: asyncio.Task[Any]) -> None:
        target.cancel()

    async def _ping(self, ch: Channel) -> None:
        try:
            await ch.ping(b"explore")
            self.ping_outcome = "pong"
        except ChannelDisposed:
            self.ping_outcome = "rejected"
        except (ChannelClosed, PingTimeout, WriteTimeout) as exc:
            self.ping_outcome = f"{type(exc).__name__}: {exc}"  # a stalled peer: D8, no Pong
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
        # 1, 2, 5, D7 and D10 ran at every step (monitor.py), with the cancellations that the
        # events do not show (a cancelled waiter leaves the queue silently).
        for verdict in check(run, skip=PER_STEP):
            if not verdict.ok:
                self.monitor.violate(verdict.invariant, f"{verdict.claim}: {verdict.evidence}")
        assert self.loop is not None
        for future in self.loop.unretrieved():
            exc = future.exception()
            self.monitor.violate(
                "7", f"an error nobody retrieved (a lost future): {type(exc).__name__}: {exc}"
            )

    def _cleanup(self, loop: ScheduleLoop) -> None:
        """Close what a pruned or hung schedule left suspended, quietly."""
        pending = [t for t in loop.tasks if not t.done()]
        try:
            if pending:
                asyncio.events._set_running_loop(loop)
                try:
                    for task in pending:
                        task._log_destroy_pending = False  # type: ignore[attr-defined]
                        # Whatever its finally blocks raise, but a Ctrl-C: it ends the search.
                        with contextlib.suppress(Exception, asyncio.CancelledError):
                            task.get_coro().close()  # type: ignore[union-attr]
                finally:
                    asyncio.events._set_running_loop(None)
        finally:
            loop._ready.clear()  # type: ignore[attr-defined]
            loop.unretrieved()  # a pruned schedule stopped before anyone could retrieve them
            loop.close()

    # ------------------------------------------------------------------ state

    def signature(self) -> Hashable:
        """Everything the rest of the schedule depends on (see engine.py on soundness): the
        channel's and every connection's ``snapshot()``, the simulated transports and peers,
        every task's stack, the ready steps, the timers, and what the checks keep."""
        loop, ch = self.loop, self.ch
        assert loop is not None and ch is not None
        connections: dict[int, Hashable] = {}
        names = self._task_names(loop)
        tasks = tuple(
            sorted((task_state(t, names[id(t)], connections) for t in loop.tasks), key=repr)
        )
        ready = tuple(
            sorted(names.get(id(loop.owner(h)), "callback") for h in loop._ready)  # type: ignore[attr-defined]
        )
        now = loop.time()
        timers = tuple(
            sorted(round(h.when() - now, 6) for h in loop._scheduled if not h.cancelled())  # type: ignore[attr-defined]
        )
        return (
            ch.snapshot(),
            tuple(sorted(connections.items())),
            tuple(t.snapshot() for t in self.made),
            tasks,
            ready,
            timers,
            loop.timer_choices if loop.timers_compete else None,
            self.monitor.summary(),
            tuple(sorted(self.outcomes.items())),
            len(self.closes),
            self.ping_outcome,
            len(self.refused),
        )

    # ------------------------------------------------------------ partial-order reduction

    def parts(self) -> dict[Hashable, Hashable]:
        """The same state as ``signature()``, split by location (footprint.py): the channel
        with its connections, the transports and peers, each task (by its name in the state:
        with symmetry, the sends not yet started share one), the timers, the monitor's summary
        and each of the scenario's records. A transition's footprint holds the parts it
        changed."""
        loop, ch = self.loop, self.ch
        assert loop is not None and ch is not None
        connections: dict[int, Hashable] = {}
        names = self._task_names(loop)
        ready: dict[str, int] = {}
        for h in loop._ready:  # type: ignore[attr-defined]
            name = names.get(id(loop.owner(h)), "callback")
            ready[name] = ready.get(name, 0) + 1
        tasks: dict[str, list[Hashable]] = {}
        for t in loop.tasks:
            name = names[id(t)]
            tasks.setdefault(name, []).append(task_state(t, name, connections))
        parts: dict[Hashable, Hashable] = {}
        for name in sorted(tasks):
            states = tasks[name]
            if len(states) > 1:
                states.sort(key=repr)
            parts["task:" + name] = (tuple(states), ready.pop(name, 0))
        now = loop.time()
        parts["channel"] = (ch.snapshot(), tuple(sorted(connections.items())))
        parts["transport"] = tuple(t.snapshot() for t in self.made)
        parts["ready"] = tuple(sorted(ready.items()))  # ready steps of no task (none, normally)
        parts["timers"] = (
            tuple(sorted(round(h.when() - now, 6) for h in loop._scheduled if not h.cancelled())),  # type: ignore[attr-defined]
            loop.timer_choices if loop.timers_compete else None,
        )
        parts["monitor"] = self.monitor.summary()
        parts["outcomes"] = tuple(sorted(self.outcomes.items()))
        parts["closes"] = len(self.closes)
        parts["ping"] = self.ping_outcome
        parts["refused"] = len(self.refused)
        return parts

    def transition_keys(self, labels: list[str]) -> list[Hashable]:
        """Each alternative's transition: its task by its name in the state, or the timer."""
        loop = self.loop
        assert loop is not None
        names = self._task_names(loop)
        keys: list[Hashable] = [
            names.get(id(loop.owner(h)), "callback")
            for h in loop._ready  # type: ignore[attr-defined]
        ]
        return keys + ["timer"] * (len(labels) - len(keys))

    @staticmethod
    def code_location(code: Any) -> Hashable | None:
        return code_location(code)

    def clock(self) -> float:
        assert self.loop is not None
        return self.loop.time()

    def _task_names(self, loop: ScheduleLoop) -> dict[int, str]:
        """Each task's name in the state. With symmetry, a send task is named by its channel
        party once it has one, and sends not yet started are interchangeable (the cancelled
        one excepted: it is the only one a party targets)."""
        names = {}
        target = self.sends[0] if self.setup.cancel and self.sends else None
        for t in loop.tasks:
            label = task_label(t)
            if self.setup.symmetric and label.startswith("send#"):
                label = send_party(t)
                if t is target:
                    label = "cancel-target " + label
            names[id(t)] = label
        return names


def _send_count(ch: Channel) -> int:
    return dict(dict(ch.snapshot())["_parties"]).get(PartyKind.SEND, 0)  # type: ignore[call-overload]


def _fragment_size(data: str, fragments: int) -> int | None:
    return None if fragments <= 1 else max(1, -(-len(data.encode()) // fragments))
