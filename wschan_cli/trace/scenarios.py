"""The three orderings of the shutdown race (channel-model.md section 3), run for real.

Each scenario opens a channel, makes ``--senders`` sends pending (the first one holds the token,
parked in its drain; the others queue), then lets ``client.deinit()`` and ``handle_terminate()``
meet in the order asked:

- ``deinit-first``: deinit queues first; the read side ends only once deinit holds the token, so
  terminate queues behind it (the C++ hazard R1).
- ``terminate-first``: the read side ends first, terminate queues, then deinit (hazard R2).
- ``race``: the read-side end and deinit start in the same loop turn.

The read side is ended locally (as ``/terminate`` does), which runs ``handle_terminate()``
exactly as a peer closing TCP would; this works against any server.

With a ``pace`` (seconds), each drain, each read and each step of the scenario is held that
long (``--pace``), so the race can be watched. The orders the scenarios force (by their gates)
stay the same; in ``race``, where nothing forces the order, the pauses may change who wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from wschan_cli.channel import Channel, ChannelOptions, Event, PartyKind, What
from wschan_cli.invariants.record import Run

from .gates import GatedTransport, gated_factory

SCENARIOS = ("deinit-first", "terminate-first", "race")


class _Watch:
    """Resolves waits on events as the channel emits them (no clock, no polling)."""

    def __init__(self) -> None:
        self.seen: list[Event] = []
        self._pending: list[tuple[Callable[[Event], bool], asyncio.Future[None]]] = []

    def feed(self, event: Event) -> None:
        self.seen.append(event)
        for match, future in self._pending:
            if not future.done() and match(event):
                future.set_result(None)

    async def until(self, match: Callable[[Event], bool]) -> None:
        if any(match(e) for e in self.seen):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((match, future))
        await future


def _is(what: What, kind: PartyKind) -> Callable[[Event], bool]:
    return lambda e: e.what is what and e.party.kind == kind


def _queued(n: int) -> Callable[[Event], bool]:
    return lambda e: e.waiters >= n


async def run_scenario(
    url: str,
    scenario: str,
    *,
    senders: int = 2,
    abrupt: bool = False,
    options: ChannelOptions | None = None,
    on_event: Callable[[Event], None] | None = None,
    timeout: float = 10.0,
    pace: float = 0.0,
) -> Run:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}")
    run = Run(scenario, senders, abrupt)
    made: list[GatedTransport] = []
    # Keepalive off: a ping at a random moment would add a party the scenario did not ask for.
    opts = replace(options or ChannelOptions(reconnect=True), ping_interval=None)
    if opts.open_timeout is None or opts.open_timeout > timeout:
        opts = replace(opts, open_timeout=timeout)
    ch = Channel(
        url,
        options=opts,
        transport_factory=gated_factory(made, pace=pace),
        on_close=run.closes.append,
    )
    watch = _Watch()
    ch.subscribe(run.events.append)
    ch.subscribe(watch.feed)
    if on_event is not None:
        ch.subscribe(on_event)
    # Connecting is the server's part, not the race's: bounded by the open timeout (at most
    # the scenario's), a server that never answers the upgrade is a failed connect (exit 3),
    # not a hang of the channel (a failed invariant, exit 6).
    await ch.open()
    try:
        async with asyncio.timeout(timeout):
            await _play(ch, made, watch, run)
    except TimeoutError:
        run.hung = True
    return run


async def _play(ch: Channel, made: list[GatedTransport], watch: _Watch, run: Run) -> None:
    gate = made[0]
    sends: dict[str, asyncio.Future[None]] = {}

    def start_sends(first: int, last: int) -> None:
        for i in range(first, last + 1):
            sends[f"send#{i}"] = asyncio.ensure_future(ch.send(f"pending send {i}"))

    if run.senders:
        gate.drain_gate.close()
        start_sends(1, 1)  # send#1 takes the token and stays in its drain until the race starts
        await gate.draining.wait()
    await gate.hold()

    if run.scenario == "deinit-first":
        deinit = asyncio.ensure_future(ch.deinit(abrupt=run.abrupt))
        # The read side ends the moment deinit holds the token: terminate must queue.
        ch.subscribe(
            lambda e: (
                gate.end_reading()
                if e.what is What.TAKE and e.party.kind == PartyKind.DEINIT
                else None
            )
        )
        if run.senders:
            await watch.until(_is(What.WAIT, PartyKind.DEINIT))
            start_sends(2, run.senders)
            await watch.until(_queued(run.senders))  # deinit + the other sends
        await gate.hold()
        gate.drain_gate.open()
    elif run.scenario == "terminate-first":
        if run.senders:
            start_sends(2, run.senders)
        if run.senders > 1:
            await watch.until(_queued(run.senders - 1))
        await gate.hold()
        gate.end_reading()
        await watch.until(_is(What.READER_END, PartyKind.READER))
        if run.senders:
            await watch.until(_is(What.WAIT, PartyKind.TERMINATE))
        await gate.hold()
        deinit = asyncio.ensure_future(ch.deinit(abrupt=run.abrupt))
        if run.senders:
            await watch.until(_is(What.WAIT, PartyKind.DEINIT))
        await gate.hold()
        gate.drain_gate.open()
    else:  # race: the read-side end and deinit are both requested in this one loop turn
        if run.senders:
            start_sends(2, run.senders)
        if run.senders > 1:
            await watch.until(_queued(run.senders - 1))
        await gate.hold()
        gate.end_reading()
        deinit = asyncio.ensure_future(ch.deinit(abrupt=run.abrupt))
        gate.drain_gate.open()

    results = await asyncio.gather(*sends.values(), return_exceptions=True)
    await deinit
    for party, result in zip(sends, results, strict=True):
        run.outcomes[party] = "sent" if result is None else f"{type(result).__name__}: {result}"
