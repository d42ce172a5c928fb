"""Invariant checks after every step (channel-model.md section 5), fed the channel's events.

The checks that depend on the order of events run here, as each event arrives, so every
executed prefix of every schedule is checked: one holder; a release wakes exactly one waiter, the
oldest (FIFO), and no waiter wakes without a signal; D2 (the connector holds the token from
connect to upgrade); D7 (on_close outside the token); D10 (owed replies first); each connection
closes within its bound after its shutdown. What is left for the end of a schedule depends only
on what ``summary()`` holds, which is part of the explorer's state (every send resolved,
established fell once, on_close once, dispose last, no hang): ``verdicts.py`` checks those
over the whole history.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from wschan_cli.channel import Event, Party, PartyKind, What

from .verdicts import OwedReplies, on_close_under_token

# Invariants the verdicts also check at the end, which this monitor checks at every step (D2,
# D5 and D11 are checked here only).
PER_STEP = frozenset({"1", "2", "5", "D7", "D10"})

# How a violation's message names the event it is about: "#12: send#1 took the token ..."
# (not the "#1" of a party's name).
NAMED_EVENT = re.compile(r"(?<!\w)#(\d+):")


@dataclass(frozen=True)
class Violation:
    invariant: str  # the number in channel-model.md section 5
    message: str
    # The step that broke it, for the counterexample's picture: the event the message names
    # first ("#N: ..."), else the last event when it was detected (an end-of-schedule check, a
    # hang); None before any event.
    seq: int | None = None


class Monitor:
    """``close_bound``: the longest a connection may take from its shutdown to its release
    (write timeout + twice the close timeout, D5); None: unchecked."""

    def __init__(
        self,
        close_bound: float | None = None,
        cancelled: Callable[[str], bool] = lambda party: False,
    ) -> None:
        self.close_bound = close_bound
        self.now: Callable[[], float] = lambda: 0.0  # the schedule's clock, for the state
        # Whether a party's task was cancelled: a cancelled waiter leaves the queue unwoken
        # (the token emits nothing for that), so it neither must be woken nor counts for FIFO.
        self.cancelled = cancelled
        self.events: list[Event] = []
        self.counts: Counter[tuple[str, str]] = Counter()
        self.violations: list[Violation] = []
        self.finished = False  # after the schedule ends: ignore the clean-up's events
        self._holder: Party | None = None
        self._disposed: Event | None = None
        self._pending_release: Event | None = None
        self._falls = 0  # of established, on the current connection
        self._rises = 0  # connections made
        self._reader_ended = False
        self._shutdown = False
        self._signalled: set[Party] = set()
        self._queue: list[str] = []  # the waiters, oldest first, as WAIT events queued them
        self._woken: Counter[str] = Counter()  # signals not yet followed by their WAKE
        self._waiting_at_release: dict[Party, int] = {}  # live waiters at each party's release
        self._releaser: Party | None = None  # the party whose RELEASE was the last event
        self._signals = 0  # its SIGNALs since that RELEASE
        self._connecting: Party | None = None
        self._failed_connector: Party | None = None
        self._shutdown_at: float | None = None
        self._owed = OwedReplies()

    def violate(self, invariant: str, message: str) -> None:
        if not self.finished:  # not what closing a pruned schedule's coroutines does
            named = NAMED_EVENT.search(message)
            if named is not None:
                seq: int | None = int(named[1])
            else:
                seq = self.events[-1].seq if self.events else None
            self.violations.append(Violation(invariant, message, seq))

    def feed(self, e: Event) -> None:
        if self.finished:
            return
        self.events.append(e)
        self.counts[(str(e.party), e.what.value)] += 1
        what = e.what
        if self._disposed is not None:
            self.violate(
                "7",
                f"#{e.seq}: {e.party} {e.describe()} after the dispose at "
                f"#{self._disposed.seq} (use after dispose)",
            )
        pending = self._pending_release
        if pending is not None:
            self._pending_release = None
            if what is not What.SIGNAL or e.party != pending.party:
                self._woke_nobody(pending)
        broken = self._owed.feed(e)
        if broken is not None:
            self.violate("D10", f"an owed reply was overtaken: {broken}")
        broken = on_close_under_token(e)
        if broken is not None:
            self.violate("D7", broken)
        if what is not What.SIGNAL:
            self._releaser, self._signals = (e.party if what is What.RELEASE else None), 0
        if what is What.TAKE:
            if self._holder is not None:
                self.violate("1", f"#{e.seq}: {e.party} took the token held by {self._holder}")
            self._holder = e.party
        elif what is What.RELEASE:
            self._holder = None
            self._drop_cancelled()
            self._waiting_at_release[e.party] = len(self._queue)
            self._signalled.discard(e.party)
            if e.waiters:
                self._pending_release = e
            if self._connecting is not None and e.party == self._connecting:
                self.violate(
                    "D2", f"#{e.seq}: connector {e.party} released the token before the upgrade"
                )
            if self._failed_connector == e.party:
                self._failed_connector = None
                if e.established:
                    self.violate(
                        "D11",
                        f"#{e.seq}: connector {e.party} failed and released the token with its "
                        "half-made connection still established",
                    )
        elif what is What.WAIT:
            # A cancelled waiter left the queue silently; the same party (a second deinit) may
            # wait again: drop it now, while its name still means the cancelled task.
            self._drop_cancelled()
            self._queue.append(str(e.party))
        elif what is What.WAKE:
            party = str(e.party)
            if self._woken[party] <= 0:
                self.violate("2", f"#{e.seq}: {party} woke without a signal")
            self._woken[party] -= 1
        elif what is What.SIGNAL:
            self._signalled.add(e.party)
            if e.holder is not None and e.holder == e.party:
                self.violate("2", f"#{e.seq}: {e.party} woke a waiter while still holding")
            if e.party == self._releaser:
                self._signals += 1
                if self._signals > 1:
                    self.violate("2", f"#{e.seq}: {e.party} released once and woke a second waiter")
            self._signal_fifo(e)
        elif what is What.CONNECT:
            self._connecting = e.party
        elif what is What.UPGRADED and e.party == self._connecting:
            self._connecting = None
        elif what is What.FAIL and e.party == self._connecting:
            self._connecting = None
            self._failed_connector = e.party
        elif what is What.FRAME_OUT:
            if e.holder != e.party:
                self.violate("1", f"#{e.seq}: {e.party} wrote while {e.holder} held the token")
            opcode = e.detail.get("opcode")
            if opcode in ("text", "binary", "cont", "ping", "pong") and e.state != "success":
                self.violate(
                    "D2", f"#{e.seq}: {e.party} wrote {opcode} with the protocol state {e.state}"
                )
        elif what is What.READER_END:
            self._reader_ended = True
        elif what is What.SHUTDOWN:
            self._shutdown = True
            if self._shutdown_at is None:
                self._shutdown_at = e.time
        elif what is What.ESTABLISHED and e.established == 1:
            # A new connection (a send after a clean close reconnects): its own count.
            self._rises += 1
            self._falls = 0
            self._reader_ended = self._shutdown = False
        elif what is What.ESTABLISHED and e.established == 0:
            self._falls += 1
            if self._falls > 1:
                self.violate("6", f"#{e.seq}: established fell twice for one connection")
            if not (self._reader_ended and self._shutdown):
                self.violate(
                    "6", f"#{e.seq}: established fell before the reader ended and a shutdown"
                )
            took = e.time - self._shutdown_at if self._shutdown_at is not None else 0.0
            if self.close_bound is not None and took > self.close_bound + 1e-9:
                self.violate(
                    "D5",
                    f"#{e.seq}: the connection was released {took:g} s after its shutdown "
                    f"(bound {self.close_bound:g} s)",
                )
            self._shutdown_at = None
        elif what is What.ON_CLOSE:
            if self.counts[(str(e.party), "on_close")] + self._other_on_close(e) > max(
                self._rises, 1
            ):
                self.violate("6", f"#{e.seq}: on_close called a second time for one connection")
        elif what is What.DONE and e.party.kind == PartyKind.SEND:
            if e.party not in self._waiting_at_release:
                self.violate("5", f"#{e.seq}: {e.party} completed without releasing")
            elif self._waiting_at_release.get(e.party) and e.party not in self._signalled:
                self.violate("5", f"#{e.seq}: {e.party} completed before waking a waiter")
        elif what is What.DISPOSE:
            self._disposed = e

    def _signal_fifo(self, e: Event) -> None:
        woken = str(e.detail.get("woken"))
        self._woken[woken] += 1
        self._drop_cancelled(woken)
        if woken in self._queue:
            if self._queue[0] != woken:
                self.violate(
                    "2",
                    f"#{e.seq}: {e.party} woke {woken} before {self._queue[0]}, which waited "
                    "longer (FIFO)",
                )
            self._queue.remove(woken)

    def _drop_cancelled(self, keep: str | None = None) -> None:
        self._queue = [p for p in self._queue if p == keep or not self.cancelled(p)]

    def _woke_nobody(self, release: Event) -> None:
        self._drop_cancelled()
        if self._queue:
            self.violate(
                "2",
                f"#{release.seq}: {release.party} released with {len(self._queue)} waiting "
                "and woke nobody",
            )

    def _other_on_close(self, e: Event) -> int:
        mine = str(e.party)
        return sum(n for (party, w), n in self.counts.items() if w == "on_close" and party != mine)

    def end_step(self) -> None:
        """Called between steps: a release with waiters must have signalled within its step."""
        pending = self._pending_release
        if pending is not None:
            self._pending_release = None
            self._woke_nobody(pending)

    def summary(self) -> tuple[object, ...]:
        """What the end-of-schedule checks read of the history, and nothing more: waits not yet
        woken, each party's completions, on_close and dispose counts, falls, and whether the
        reader ended and a shutdown was asked. The order-dependent checks ran already."""
        c = self.counts
        ends = tuple(sorted((p, n) for (p, w), n in c.items() if w in ("done", "fail") and n))
        waits = sum(n for (_, w), n in c.items() if w == "wait")
        wakes = sum(n for (_, w), n in c.items() if w == "wake")
        on_close = sum(n for (_, w), n in c.items() if w == "on_close")
        disposes = sum(n for (_, w), n in c.items() if w == "dispose")
        return (
            waits - wakes,
            tuple(self._queue),
            tuple(sorted((p, n) for p, n in self._woken.items() if n)),
            self._signals,
            str(self._connecting),
            str(self._failed_connector),
            None if self._shutdown_at is None else self.now() - self._shutdown_at,
            self._owed.state(),
            str(self._releaser),
            ends,
            on_close,
            disposes,
            self._falls,
            self._rises,
            self._reader_ended,
            self._shutdown,
            str(self._holder),
            self._disposed is not None,
        )

    @property
    def holder(self) -> Party | None:
        return self._holder
