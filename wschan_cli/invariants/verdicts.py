"""Check a run's events against channel-model.md section 5; each verdict cites its events."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from wschan_cli.channel import Event, PartyKind, What

from .record import Run


@dataclass(frozen=True)
class Verdict:
    invariant: str  # the number in channel-model.md section 5
    claim: str
    ok: bool
    evidence: str


def _seqs(events: list[Event]) -> str:
    shown = ", ".join(f"#{e.seq}" for e in events[:6])
    return shown + (f" (+{len(events) - 6} more)" if len(events) > 6 else "")


def check(run: Run, skip: Collection[str] = ()) -> list[Verdict]:
    """Every verdict on ``run``, but those of the invariants in ``skip``: the explorer's
    monitor checks some after every step already (``monitor.PER_STEP``)."""
    ev = run.events
    verdicts: list[tuple[str, Callable[[], Verdict]]] = [
        ("1", lambda: _single_holder(ev)),
        ("2", lambda: _one_wakeup_per_release(ev)),
        ("3, 7", lambda: _sends_resolve_once(run)),
        ("5", lambda: _callback_after_release(ev)),
        ("6", lambda: _established_falls_once(run)),
        ("7", lambda: _no_hang_no_use_after_dispose(run)),
        ("D7", lambda: _on_close_outside_the_token(ev)),
        ("D10", lambda: _owed_replies_first(ev)),
    ]
    return [verdict() for invariant, verdict in verdicts if invariant not in skip]


class OwedReplies:
    """D10, fed one event at a time (the explorer's monitor feeds it every step): a Pong or a
    Close echo the protocol owes reaches the wire before any data frame of a send that started
    after the frame that caused it was read. ``feed`` returns the broken rule, or None."""

    def __init__(self) -> None:
        self.owed: list[tuple[str, Event]] = []  # ("pong" | "close", the frame that owes it)
        self.started: dict[str, int] = {}  # send party -> seq of its first event

    def feed(self, e: Event) -> str | None:
        party = str(e.party)
        if e.party.kind == PartyKind.SEND:
            self.started.setdefault(party, e.seq)
        if e.what is What.FRAME_IN and e.detail.get("opcode") in ("ping", "close"):
            self.owed.append(("pong" if e.detail["opcode"] == "ping" else "close", e))
        elif e.what is What.FRAME_OUT:
            opcode = e.detail.get("opcode")
            if opcode in ("pong", "close"):
                reply = next((o for o in self.owed if o[0] == opcode), None)
                if reply is not None:
                    self.owed.remove(reply)
            elif opcode in ("text", "binary", "cont") and self.owed:
                kind, cause = self.owed[0]
                if self.started.get(party, e.seq) > cause.seq:
                    return (
                        f"#{e.seq}: {party} (started #{self.started[party]}) wrote {opcode} "
                        f"before the {kind} owed for the {cause.detail['opcode']} read at "
                        f"#{cause.seq}"
                    )
        elif e.what is What.SHUTDOWN or (e.what is What.ESTABLISHED and not e.established):
            self.owed.clear()  # the connection is going: nothing more is owed on it
        return None

    def state(self) -> tuple[object, ...]:
        """What the rest of a history can depend on (for the explorer's state): each owed
        reply and the sends started after its cause (a later cause comes after every start)."""
        return tuple(
            (kind, tuple(sorted(p for p, seq in self.started.items() if seq > cause.seq)))
            for kind, cause in self.owed
        )


def _first_broken(ev: list[Event], rule: Callable[[Event], str | None]) -> str | None:
    """What the first event that breaks ``rule`` (fed each event in turn) broke, or None."""
    for e in ev:
        broken = rule(e)
        if broken is not None:
            return broken
    return None


def _owed_replies_first(ev: list[Event]) -> Verdict:
    claim = "an owed Pong or Close echo is not overtaken by a later-started send (D10)"
    broken = _first_broken(ev, OwedReplies().feed)
    if broken is not None:
        return Verdict("D10", claim, False, broken)
    replies = [e for e in ev if e.what is What.FRAME_OUT and e.detail.get("opcode") == "pong"]
    return Verdict("D10", claim, True, f"{len(replies)} Pong(s) written: {_seqs(replies)}")


def on_close_under_token(e: Event) -> str | None:
    """D7: on_close runs after the release, while nobody holds the token."""
    if e.what is What.ON_CLOSE and e.holder is not None:
        return f"#{e.seq}: on_close ran while {e.holder} held the token"
    return None


def _on_close_outside_the_token(ev: list[Event]) -> Verdict:
    claim = "on_close runs outside the token (D7)"
    broken = _first_broken(ev, on_close_under_token)
    if broken is not None:
        return Verdict("D7", claim, False, broken)
    calls = [e for e in ev if e.what is What.ON_CLOSE]
    return Verdict("D7", claim, True, f"{len(calls)} call(s), none under the token: {_seqs(calls)}")


def _single_holder(ev: list[Event]) -> Verdict:
    holder = None
    for e in ev:
        if e.what is What.TAKE:
            if holder is not None:
                return Verdict(
                    "1",
                    "at most one party holds sending",
                    False,
                    f"#{e.seq}: {e.party} took it while {holder} held it",
                )
            holder = e.party
        elif e.what is What.RELEASE:
            holder = None
    takes = [e for e in ev if e.what is What.TAKE]
    return Verdict(
        "1", "at most one party holds sending", True, f"{len(takes)} takes, each after a release"
    )


def _one_wakeup_per_release(ev: list[Event]) -> Verdict:
    claim = "every release wakes exactly one queued waiter"
    for i, e in enumerate(ev):
        if e.what is not What.RELEASE or e.waiters == 0:
            continue
        nxt = ev[i + 1] if i + 1 < len(ev) else None
        if nxt is None or nxt.what is not What.SIGNAL or nxt.waiters != e.waiters - 1:
            return Verdict(
                "2",
                claim,
                False,
                f"#{e.seq}: {e.party} released with "
                f"{e.waiters} waiting and did not wake exactly one",
            )
    waits = [e for e in ev if e.what is What.WAIT]
    wakes = [e for e in ev if e.what is What.WAKE]
    if len(waits) != len(wakes):
        return Verdict(
            "2", claim, False, f"{len(waits)} waits but {len(wakes)} wake-ups: {_seqs(waits)}"
        )
    signals = [e for e in ev if e.what is What.SIGNAL]
    return Verdict(
        "2", claim, True, f"{len(waits)} waits, {len(signals)} signals: {_seqs(signals)}"
    )


def _sends_resolve_once(run: Run) -> Verdict:
    claim = "every pending send resolves once: sent, ChannelClosed, a timeout, cancelled"
    for party, outcome in run.outcomes.items():
        ends = [e for e in run.events if str(e.party) == party and e.what in (What.DONE, What.FAIL)]
        if outcome == "cancelled" and len(ends) <= 1:
            continue  # cancelled while waiting for the token (no end) or while holding it (FAIL)
        if len(ends) != 1:
            return Verdict("3, 7", claim, False, f"{party} ended {len(ends)} times")
        if outcome != "sent" and not outcome.startswith(
            ("ChannelClosed", "WriteTimeout", "OpenTimeout")
        ):
            return Verdict("3, 7", claim, False, f"{party}: {outcome}")
    if len(run.outcomes) != run.senders:
        return Verdict("3, 7", claim, False, f"{run.senders - len(run.outcomes)} sends unresolved")
    summary = ", ".join(f"{p} {o.split(':')[0]}" for p, o in run.outcomes.items()) or "no sends"
    return Verdict("3, 7", claim, True, summary)


def _callback_after_release(ev: list[Event]) -> Verdict:
    claim = "a send completes after its release and the next wake-up"
    for i, e in enumerate(ev):
        if e.what not in (What.DONE, What.FAIL) or e.party.kind != PartyKind.SEND:
            continue
        mine = [x for x in ev[:i] if x.party == e.party]
        release = next((x for x in reversed(mine) if x.what is What.RELEASE), None)
        if e.what is What.FAIL:
            continue  # a failure is reported while holding; its release follows at once
        if release is None:
            return Verdict("5", claim, False, f"#{e.seq}: {e.party} done without a release")
        if release.waiters and not any(x.what is What.SIGNAL and x.seq > release.seq for x in mine):
            return Verdict("5", claim, False, f"#{e.seq}: {e.party} done before waking a waiter")
    dones = [e for e in ev if e.what is What.DONE and e.party.kind == PartyKind.SEND]
    return Verdict("5", claim, True, f"{len(dones)} completions: {_seqs(dones)}")


def _established_falls_once(run: Run) -> Verdict:
    claim = "established 1->0 once, after reader end and shutdown; on_close once"
    ev = run.events
    rises = [e for e in ev if e.what is What.ESTABLISHED and e.established == 1]
    falls = [e for e in ev if e.what is What.ESTABLISHED and e.established == 0]
    # Once per connection: a send after a clean close reconnects (channel-model.md section 2).
    if not falls and not any(e.established for e in ev):
        return Verdict("6", claim, True, "no connection was ever made")
    if not falls:
        return Verdict("6", claim, False, "established never fell")
    # A history may begin on a connection that is already up (no rise recorded for it).
    if not rises or (falls and falls[0].seq < rises[0].seq):
        rises = [ev[0], *rises]
    if len(falls) != len(rises):
        return Verdict(
            "6",
            claim,
            False,
            f"established fell {len(falls)} times for {len(rises)} connection(s): {_seqs(falls)}",
        )
    for rise, fall in zip(rises, falls, strict=True):
        span = [e for e in ev if rise.seq <= e.seq <= fall.seq]
        reader_end = next((e for e in span if e.what is What.READER_END), None)
        shutdown = next((e for e in span if e.what is What.SHUTDOWN), None)
        if reader_end is None or shutdown is None:
            return Verdict(
                "6",
                claim,
                False,
                f"#{fall.seq}: fell before the reader ended and a shutdown was asked",
            )
    on_close = [e for e in ev if e.what is What.ON_CLOSE]
    if len(on_close) != len(falls) or len(run.closes) != len(falls):
        return Verdict(
            "6", claim, False, f"on_close ran {len(run.closes)} times for {len(falls)} close(s)"
        )
    fall = falls[-1]
    reader_end = [e for e in ev if e.what is What.READER_END and e.seq < fall.seq][-1]
    shutdown = [e for e in ev if e.what is What.SHUTDOWN and e.seq < fall.seq][-1]
    again = f" ({len(falls)} connections, each once)" if len(falls) > 1 else ""
    return Verdict(
        "6",
        claim,
        True,
        f"reader end #{reader_end.seq}, shutdown #{shutdown.seq} "
        f"by {shutdown.party}, 1->0 #{fall.seq}, on_close #{on_close[-1].seq}{again}",
    )


def _no_hang_no_use_after_dispose(run: Run) -> Verdict:
    claim = "no hang; disposed last, after every party left"
    ev = run.events
    if run.hung:
        return Verdict("7", claim, False, "the run did not finish within its time limit")
    disposes = [e for e in ev if e.what is What.DISPOSE]
    if len(disposes) != 1:
        return Verdict("7", claim, False, f"disposed {len(disposes)} times")
    if ev[-1].what is not What.DISPOSE:
        return Verdict(
            "7", claim, False, f"events after dispose: {_seqs(ev[ev.index(disposes[0]) + 1 :])}"
        )
    leavers = [
        e
        for e in ev
        if e.what is What.LEAVE and e.party.kind in (PartyKind.DEINIT, PartyKind.TERMINATE)
    ]
    who = (
        f"{leavers[0].party} found established == 0 and left (#{leavers[0].seq}); "
        if leavers
        else ""
    )
    return Verdict("7", claim, True, f"{who}dispose #{disposes[0].seq} is the last event")
