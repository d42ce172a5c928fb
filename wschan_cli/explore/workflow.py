"""A MODEL of the C++ ordering in sogou/workflow (branch ``websocket`` tip), for comparison.

This is not the C++ and not wschan: it is a few dozen lines that keep only what decides the
shutdown race (channel-model.md sections 1 and 3), run under the same scheduler and checked by
the same monitor as the real channel. Each step follows the C++ at b45352cb (file:line below):

- the token ``sending`` under the channel mutex, a FIFO condition of waiters;
- a woken waiter's continuation is *deferred to a later turn* (the 0 ms timer of
  WFCondWaitTask::done()): signalling wakes it, it resumes one scheduler step later, then reads
  ``established``; a woken closer that finds 0 returns without the token, without releasing and
  without signalling (wait_callback, WFChannel.inl:286; deinit_wait_callback,
  WFWebSocketClient.cc:30; hazard H5);
- ``done()`` releases and signals, then calls the close callback and returns: one more step in
  which the woken party may run (in the C++ only when its 0 ms timer is on another poller thread
  than the connection's; the model leaves the poller threads out), then ``done()`` touches the
  channel again;
- terminate: the poller calls handle_terminated() only while the channel is not shut down
  (``channel_flag == 1``, Communicator.cc:1482), then takes the mutex in a later step;
- deinit(): ``established == 0`` deletes the channel at once, without the token
  (WFWebSocketClient.cc:102-106); otherwise it takes the token or queues, shuts down, and the
  callback of its series deletes the channel, waiting for no one;
- shutdown: ``established`` 1 -> 0 once a holder asked for it and the poller has dropped its
  reference (``reader_ended``: after handle_terminated() returned, or at once when not called);
- the condition's destructor wakes every waiter left (~WFCondition broadcasts).

Any touch of the channel after the delete is a use after delete. The explorer finds the two the
notes name: R1 (a woken waiter's deferred continuation reads the deleted channel) and R2 (the
holder is still inside ``done()`` when deinit deletes the channel). Both were forced on the real
C++ under AddressSanitizer and ThreadSanitizer (crosscheck/workflow, CROSSCHECK below).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from wschan_cli.channel import CloseInfo, Event, Party, PartyKind, What
from wschan_cli.invariants.monitor import Monitor
from wschan_cli.invariants.record import Run
from wschan_cli.invariants.verdicts import check

from .loop import Prune, ScheduleLoop, StepLimit, task_label
from .scenario import Result
from .setup import Setup
from .state import code_location, task_state

DEINIT = Party(PartyKind.DEINIT)
TERMINATE, READER = Party(PartyKind.TERMINATE, 1), Party(PartyKind.READER, 1)

R1 = "R1: a woken waiter's deferred continuation read the channel after deinit's series deleted it"
R2 = "R2: deinit's series deleted the channel while the releasing party was still inside done()"
H1 = "H1: the 101 arrived before the connector registered its waiter; the first send hangs"
H2 = "H2: the peer closed before the 101; nothing wakes the connector; the first send hangs"
H5 = (
    "H5: a woken closer found the channel closed and passed the wake-up on to nobody; "
    "the condition's destructor woke the waiter left behind on the deleted channel"
)
H3 = (
    "H3: a woken sender forced the state to SUCCESS and wrote on the connection the closer "
    "had released"
)
H6 = (
    "H6: deinit() called from the close callback deleted the channel; the callback returned "
    "into the channel mutex it ran under"
)
H7 = (
    "H7: a send timed out with half its frame written and the connection stayed open; the next "
    "send's frame follows the partial one on the wire"
)
CROSSCHECK = (
    "reproduced on the C++ (sogou/workflow websocket b45352cb, AddressSanitizer and "
    "ThreadSanitizer): R1 and R2 end in heap-use-after-free of the channel in every forced run; "
    "see crosscheck/workflow"
)

SIGNALLED, BROADCAST = "signal", "destructor"


class UseAfterDelete(Exception):
    pass


class ModelChannel:
    """The state the C++ channel keeps for the race, and a check on every touch."""

    def __init__(self, emit: Callable[..., None]) -> None:
        self.sending = False
        self.holder: Party | None = None
        self.established = 1
        self.waiters: deque[tuple[Party, asyncio.Future[str]]] = deque()
        self.reader_ended = asyncio.Event()
        self.shutdown_requested = False
        self.deleted = False
        self.emit = emit
        self.waited: set[Party] = set()  # parties that queued before taking (H3)
        self.partial: Party | None = None  # a send timed out with half a frame written (H7)

    def touch(self, party: Party, what: str, kind: str = "") -> None:
        if self.deleted:
            self.on_use_after_delete(party, what, kind)
            self.emit(party, What.FAIL, error_type="use after delete", error=what)
            raise UseAfterDelete(f"{party}: {what} on the deleted channel")

    def on_use_after_delete(self, party: Party, what: str, kind: str) -> None:
        pass  # the schedule records the violation

    def take_or_queue(self, party: Party) -> asyncio.Future[str] | None:
        """Under the mutex: take the token (None), or queue a waiter (its future)."""
        self.touch(party, "lock the channel mutex")
        if not self.sending:
            self.sending, self.holder = True, party
            self.emit(party, What.TAKE)
            return None
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiters.append((party, future))
        self.emit(party, What.WAIT)
        return future

    async def take(
        self, party: Party, *, closer: bool = False, queued: Callable[[], None] | None = None
    ) -> bool:
        """Take the token, queueing while it is held; ``queued`` runs once the first attempt
        has taken or queued. False when a woken closer found ``established == 0``: it returns
        holding nothing and wakes no one (H5)."""
        future = self.take_or_queue(party)
        if queued is not None:
            queued()
        if future is not None:
            self.waited.add(party)
        while future is not None:
            how = await future  # the condition's waiter fires
            await asyncio.sleep(0)  # MODEL: its continuation runs in a later turn (0 ms timer)
            kind = "R1" if how == SIGNALLED else "H5"
            self.touch(party, "the woken waiter reads established", kind)
            self.emit(party, What.WAKE)
            if closer and self.established == 0:
                self.emit(party, What.LEAVE)  # WFChannel.inl:286, WFWebSocketClient.cc:30
                return False
            future = self.take_or_queue(party)
        return True

    async def done(self, party: Party, final: What | None) -> None:
        """Release, signal one waiter, and only then return from done()."""
        self.touch(party, "done(): lock the channel mutex")
        self.sending, self.holder = False, None
        self.emit(party, What.RELEASE)
        if self.waiters:
            woken, future = self.waiters.popleft()
            future.set_result(SIGNALLED)
            self.emit(party, What.SIGNAL, woken=str(woken))
        await asyncio.sleep(0)  # MODEL: the woken party may run now (another poller thread)
        self.touch(party, "done() goes on: reads its callback", "R2")
        if final is not None:
            self.emit(party, final)

    def delete(self) -> None:
        """``delete channel``: ~WFCondition broadcasts, waking every waiter still queued."""
        self.deleted = True
        while self.waiters:
            self.waiters.popleft()[1].set_result(BROADCAST)

    async def shutdown(self, party: Party) -> None:
        self.touch(party, "dispatch: established == 1, shut down")
        self.shutdown_requested = True
        self.emit(party, What.SHUTDOWN, graceful=False, abort=False)
        await asyncio.sleep(0)  # the kernel closes the connection
        await self.reader_ended.wait()  # the last reference goes when the poller drops its own
        self.touch(party, "shutdown completes: established = 0")
        self.established = 0
        self.emit(party, What.ESTABLISHED, before=1)
        self.emit(party, What.CLOSED, code=1006, reason="", by="peer", clean=False)


class WorkflowSchedule:
    """One schedule of the model: same interface as ``scenario.Schedule``."""

    def __init__(self, setup: Setup, choose: Callable[[Any, list[str]], int]) -> None:
        self.setup = setup
        self._choose = choose
        self.monitor = Monitor()
        self.outcomes: dict[str, str] = {}
        self.closes: list[CloseInfo] = []
        self.choices: list[str] = []
        self.loop: ScheduleLoop | None = None
        self.ch: ModelChannel | None = None
        self._seq = 0
        self.crashed = False
        # With ``setup.connector`` (hazards H1, H2): the first send connects and upgrades.
        self.request_written = asyncio.Event()
        self.upgrade_waiter: asyncio.Future[None] | None = None
        self.upgraded = False
        self.upgrade_lost: str | None = None  # why the 101 never reached the connector
        self.stalled = False  # with ``setup.stall``: the first write has timed out (H7)

    def chooser(self, labels: list[str]) -> int:
        index = self._choose(self, labels)
        self.choices.append(labels[index])
        return index

    def _emit(self, party: Party, what: What, **detail: Any) -> None:
        ch = self.ch
        assert ch is not None and self.loop is not None
        self._seq += 1
        self.monitor.feed(
            Event(
                self._seq,
                self.loop.time(),
                party,
                what,
                ch.sending,
                ch.established,
                "success" if ch.established else "undefined",  # the model's protocol state
                ch.holder,
                len(ch.waiters),
                detail,
            )
        )

    def run(self) -> Result:
        loop = ScheduleLoop(self.chooser)
        self.loop = loop
        loop.after_step = self.monitor.end_step
        result = Result()
        asyncio.set_event_loop(loop)
        try:
            try:
                loop.run_until_complete(self._main(loop))
                result.complete = True
            except RuntimeError:
                if not self.crashed:
                    if not loop.hung:
                        raise
                    self.monitor.violate("7", self.upgrade_lost or "hang: no party can move")
                result.complete = True
            except StepLimit as exc:
                self.monitor.violate("7", f"hang: {exc}")
                result.complete = True
            except Prune:
                pass
            if result.complete and not self.monitor.violations:
                run = Run("workflow", len(self.outcomes), True)
                run.events, run.outcomes, run.closes = (
                    self.monitor.events,
                    self.outcomes,
                    self.closes,
                )
                for verdict in check(run):
                    if not verdict.ok:
                        self.monitor.violate(
                            verdict.invariant, f"{verdict.claim}: {verdict.evidence}"
                        )
        finally:
            self.monitor.finished = True
            for task in loop.tasks:
                if not task.done():
                    task._log_destroy_pending = False  # type: ignore[attr-defined]
                    # whatever its finally blocks raise, but a Ctrl-C: it ends the search
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        task.get_coro().close()  # type: ignore[union-attr]
            loop._ready.clear()  # type: ignore[attr-defined]
            loop.close()
            asyncio.set_event_loop(None)
        result.choices, result.events = self.choices, self.monitor.events
        result.violations, result.steps = self.monitor.violations, loop.steps
        return result

    async def _main(self, loop: ScheduleLoop) -> None:
        self.ch = ModelChannel(self._emit)
        self.ch.on_use_after_delete = self._use_after_delete  # type: ignore[method-assign]
        loop.exploring = True
        parties = [
            loop.create_task(self._guard(self._send, i), name=f"send#{i}")
            for i in range(1, self.setup.senders + 1)
        ]
        parties.append(loop.create_task(self._guard(self._deinit), name="deinit"))
        parties.append(loop.create_task(self._guard(self._terminate), name="peer"))
        if self.setup.connector:
            self.ch.established = 0
            parties.append(loop.create_task(self._guard(self._upgrade_reader), name="reader"))
        await asyncio.gather(*parties)
        loop.exploring = False

    async def _guard(self, party: Callable[..., Any], *args: Any) -> None:
        try:
            await party(*args)
        except UseAfterDelete:
            self.crashed = True  # the C++ would crash here: the schedule ends
            asyncio.get_running_loop().stop()

    def _use_after_delete(self, party: Party, what: str, kind: str) -> None:
        text = {"R1": R1, "R2": R2, "H5": H5, "H6": H6}.get(kind, "use after delete")
        self.monitor.violate("7", f"{text} (#{self._seq + 1}: {party}: {what})")

    async def _connect(self, party: Party) -> None:
        """MODEL of the C++ connector: connect, write the upgrade request, and only then
        register the waiter for the 101 (H1); a peer close before the 101 wakes nobody (H2)."""
        ch = self.ch
        assert ch is not None
        ch.established = 1
        self._emit(party, What.ESTABLISHED, before=0)
        self._emit(party, What.FRAME_OUT, opcode="http", size=1)
        self.request_written.set()
        await asyncio.sleep(0)  # MODEL: the 101 waiter is set up after the write returns
        if not self.upgraded:
            self.upgrade_waiter = asyncio.get_running_loop().create_future()
            await self.upgrade_waiter
        elif self.upgrade_lost == H1:
            self.upgrade_waiter = asyncio.get_running_loop().create_future()
            await self.upgrade_waiter  # the C++ waits for a signal that was already sent
        self._emit(party, What.UPGRADED, status=101)

    async def _upgrade_reader(self) -> None:
        """The reader of the handshake: the 101 arrives once the request is written, unless
        the peer has closed first."""
        await self.request_written.wait()
        if self.ch is not None and self.ch.deleted:
            return  # deleted before any connection: there is no handshake to read
        if self.ch is not None and self.ch.reader_ended.is_set():
            self.upgrade_lost = H2  # the reader ended: no 101, and the C++ wakes no one
            return
        self.upgraded = True
        if self.upgrade_waiter is None:
            self.upgrade_lost = H1  # signalled with no waiter yet: the wake-up is lost
        else:
            self.upgrade_waiter.set_result(None)

    async def _send(self, i: int) -> None:
        ch = self.ch
        assert ch is not None
        party = Party(PartyKind.SEND, i)
        if ch.deleted:
            return  # issued after deinit: the user's error, not the race's (wschan refuses it)
        await ch.take(party)
        ch.touch(party, "the out task reads established")
        if self.setup.connector and ch.established == 0 and not self.request_written.is_set():
            await self._connect(party)  # the first out task connects (D1 in the C++ too)
        if party in ch.waited:
            # WFChannel.inl:410-415, 431-436: the woken waiter's callback sets the channel's
            # state to SUCCESS and marks the out task ready; it sends without reading
            # established again.
            if ch.established == 0:
                self._hazard(party, H3, "writes on the released connection")
                await ch.done(party, None)
                return
        elif ch.established == 0 or ch.shutdown_requested:
            self.emit_fail(party)
            await ch.done(party, None)
            return
        if ch.partial is not None:
            self._hazard(party, H7, f"writes after the partial frame of {ch.partial}")
            await ch.done(party, None)
            return
        self.emit_write(party)
        if self.setup.stall and not self.stalled:
            # MODEL of a send timeout (the peer stopped reading): half the frame is on the
            # wire when the timeout fires; the task fails and the connection stays open (H7).
            self.stalled = True
            await asyncio.sleep(0)  # the send timeout fires in a later step
            ch.partial = party
            self._emit(party, What.FAIL, error_type="timeout", error="send timed out")
            self.outcomes[str(party)] = "WriteTimeout: send timed out"
            await ch.done(party, None)
            return
        await asyncio.sleep(0)  # the write completes
        await ch.done(party, What.DONE)
        self.outcomes[str(party)] = "sent"

    def _hazard(self, party: Party, text: str, what: str) -> None:
        """A hazard of the C++ shown on the model: the failing step, and its violation."""
        self._emit(party, What.FAIL, error_type=text.split(":")[0], error=what)
        self.monitor.violate("7", f"{text} (#{self._seq}: {party} {what})")
        self.outcomes[str(party)] = text.split(":")[0]

    def emit_fail(self, party: Party) -> None:
        self._emit(party, What.FAIL, error_type="ChannelClosed", error="closed")
        self.outcomes[str(party)] = "ChannelClosed: closed"

    def emit_write(self, party: Party) -> None:
        self._emit(party, What.FRAME_OUT, opcode="text", size=1)

    async def _deinit(self) -> None:
        ch = self.ch
        assert ch is not None
        ch.touch(DEINIT, "deinit() reads established")
        if ch.established == 0:
            self._dispose()  # at once, without the token (WFWebSocketClient.cc:102-106)
            return
        if await ch.take(DEINIT, closer=True):
            await ch.shutdown(DEINIT)
            await ch.done(DEINIT, None)
            self._on_close(DEINIT)
            await asyncio.sleep(0)  # deinit's series ends: its callback runs
        self._dispose()

    def _dispose(self) -> None:
        assert self.ch is not None
        self.ch.delete()
        self._emit(DEINIT, What.DISPOSE)
        self.request_written.set()  # no request can be written now: the handshake reader ends

    async def _terminate(self) -> None:
        ch = self.ch
        assert ch is not None
        if ch.deleted:
            return  # deinit() deleted it before any connection (with the connector): no peer
        self._emit(READER, What.READER_END, reason="eof")  # the poller reads the peer's close
        # handle_terminated() is called only while channel_flag == 1, i.e. before deinit's
        # shutdown (Communicator.cc:1482).
        if not ch.shutdown_requested:
            ch.touch(TERMINATE, "handle_terminated() reads established")
            if ch.established == 1:  # WFChannel.inl:258
                await asyncio.sleep(0)  # MODEL: it locks the mutex in a later step
                # The poller drops its reference only when handle_terminated() has returned
                # (Communicator.cc:1488): established cannot fall before terminate took or queued.
                if await ch.take(TERMINATE, closer=True, queued=ch.reader_ended.set):
                    await ch.shutdown(TERMINATE)
                    await ch.done(TERMINATE, None)
                    self._on_close(TERMINATE)
                return
        ch.reader_ended.set()

    def _on_close(self, party: Party) -> None:
        info = CloseInfo(1006, "", "peer", False)
        self.closes.append(info)
        self._emit(party, What.ON_CLOSE, code=1006, reason="", by="peer")
        if self.setup.on_close_deinit and self.ch is not None:
            # The close callback runs under the channel mutex (channel-model.md H6); the
            # application calls deinit() from it: established == 0, so deinit deletes the
            # channel at once (WFWebSocketClient.cc:102-106); then the callback returns and
            # the mutex it ran under is unlocked on the deleted channel.
            if not self.ch.deleted and self.ch.established == 0:
                self._dispose()
            self.ch.touch(party, "the close callback returns: unlock the channel mutex", "H6")

    def signature(self) -> Hashable:
        """The state: ``parts()`` (it holds the connector's flags, which decide whether the
        101 is lost: H1, H2)."""
        return tuple(self.parts().items())

    # ------------------------------------------------------------ partial-order reduction

    def parts(self) -> dict[Hashable, Hashable]:
        """``signature()`` by location (footprint.py): the model channel with the connector's
        flags, each task, the monitor's summary, the records."""
        ch, loop = self.ch, self.loop
        assert ch is not None and loop is not None
        ready: dict[str, int] = {}
        for h in loop._ready:  # type: ignore[attr-defined]
            ready[loop.label(h)] = ready.get(loop.label(h), 0) + 1
        parts: dict[Hashable, Hashable] = {
            "channel": (
                ch.sending,
                str(ch.holder),
                ch.established,
                tuple(str(p) for p, _ in ch.waiters),
                ch.reader_ended.is_set(),
                ch.shutdown_requested,
                ch.deleted,
                self.request_written.is_set(),
                self.upgrade_waiter is not None,
                self.upgraded,
                self.upgrade_lost,
                self.crashed,
                tuple(sorted(map(str, ch.waited))),
                str(ch.partial),
                self.stalled,
            )
        }
        for t in loop.tasks:
            label = task_label(t)
            parts["task:" + label] = (task_state(t, label), ready.get(label, 0))
        parts["monitor"] = self.monitor.summary()
        parts["outcomes"] = tuple(sorted(self.outcomes.items()))
        parts["closes"] = len(self.closes)
        return parts

    def transition_keys(self, labels: list[str]) -> list[Hashable]:
        return list(labels)

    @staticmethod
    def code_location(code: Any) -> Hashable | None:
        """The model's code (its channel and its parties alike) reads and writes the model
        channel; cancelling a task: everything (scenario.code_location)."""
        if code.co_filename == __file__:
            return "channel"
        return code_location(code)

    def clock(self) -> float:
        assert self.loop is not None
        return self.loop.time()
