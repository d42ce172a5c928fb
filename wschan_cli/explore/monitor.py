"""Invariant checks after every step (channel-model.md section 5), fed the channel's events.

The checks that depend on the order of events run here, as each event arrives, so every
executed prefix of every schedule is checked. What is left for the end of a schedule depends
only on counts (every send resolved, established fell once, on_close once, dispose last, no
hang): ``trace/verdicts.py`` checks those over the whole history.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from wschan_cli.channel import Event, Party, What


@dataclass(frozen=True)
class Violation:
    invariant: str  # the number in channel-model.md section 5
    message: str


class Monitor:
    def __init__(self) -> None:
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
        self._last_release: dict[Party, Event] = {}
        self._signalled: set[Party] = set()

    def violate(self, invariant: str, message: str) -> None:
        self.violations.append(Violation(invariant, message))

    def feed(self, e: Event) -> None:
        if self.finished:
            return
        self.events.append(e)
        self.counts[(str(e.party), e.what.value)] += 1
        what = e.what
        if self._disposed is not None:
            self.violate(
                "7",
                f"#{e.seq}: {e.party} {describe_what(e)} after the dispose at "
                f"#{self._disposed.seq} (use after dispose)",
            )
        pending = self._pending_release
        if pending is not None:
            self._pending_release = None
            if what is not What.SIGNAL or e.party != pending.party:
                self.violate(
                    "2",
                    f"#{pending.seq}: {pending.party} released with {pending.waiters} "
                    "waiting and woke nobody",
                )
        if what is What.TAKE:
            if self._holder is not None:
                self.violate("1", f"#{e.seq}: {e.party} took the token held by {self._holder}")
            self._holder = e.party
        elif what is What.RELEASE:
            self._holder = None
            self._last_release[e.party] = e
            self._signalled.discard(e.party)
            if e.waiters:
                self._pending_release = e
        elif what is What.SIGNAL:
            self._signalled.add(e.party)
            if e.holder is not None and e.holder == e.party:
                self.violate("2", f"#{e.seq}: {e.party} woke a waiter while still holding")
        elif what is What.FRAME_OUT:
            if e.holder != e.party:
                self.violate("1", f"#{e.seq}: {e.party} wrote while {e.holder} held the token")
        elif what is What.READER_END:
            self._reader_ended = True
        elif what is What.SHUTDOWN:
            self._shutdown = True
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
        elif what is What.ON_CLOSE:
            if self.counts[(str(e.party), "on_close")] + self._other_on_close(e) > max(
                self._rises, 1
            ):
                self.violate("6", f"#{e.seq}: on_close called a second time for one connection")
        elif what is What.DONE and e.party.kind == "send":
            release = self._last_release.get(e.party)
            if release is None:
                self.violate("5", f"#{e.seq}: {e.party} completed without releasing")
            elif release.waiters and e.party not in self._signalled:
                self.violate("5", f"#{e.seq}: {e.party} completed before waking a waiter")
        elif what is What.DISPOSE:
            self._disposed = e

    def _other_on_close(self, e: Event) -> int:
        mine = str(e.party)
        return sum(n for (party, w), n in self.counts.items() if w == "on_close" and party != mine)

    def end_step(self) -> None:
        """Called between steps: a release with waiters must have signalled within its step."""
        pending = self._pending_release
        if pending is not None:
            self._pending_release = None
            self.violate(
                "2",
                f"#{pending.seq}: {pending.party} released with {pending.waiters} waiting "
                "and woke nobody",
            )

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


def describe_what(e: Event) -> str:
    from wschan_cli.render.timeline import describe

    return describe(e)
