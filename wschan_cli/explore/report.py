"""``trace-shutdown --explore``: run the explorer for a configuration and print what it found."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from .engine import Found, Report, explore, sample
from .mutants import mutant
from .scenario import Schedule, Setup, with_parties
from .workflow import WorkflowSchedule

MODELS = ("wschan", "workflow")


@dataclass(frozen=True)
class Config:
    model: str = "wschan"
    senders: int = 2
    with_ping: bool = False
    abrupt: bool = False
    random: int | None = None  # sample this many schedules instead of enumerating
    seed: int = 0
    max_schedules: int | None = None
    reduce: bool = True
    broken: str | None = None  # a deliberately broken variant of the core (mutants.py)
    peer_close: bool = False  # the peer sends Close (1001) before ending TCP
    parties: tuple[str, ...] = ()  # more parties in the race (parties.py)
    por: bool = False  # sleep sets on top of state pruning (engine.py); only with ``reduce``


def setup_for(config: Config) -> Setup:
    setup = Setup(config.senders, config.with_ping, config.abrupt, peer_close=config.peer_close)
    if config.broken is not None:
        setup = dataclasses.replace(setup, channel_cls=mutant(config.broken))
    return with_parties(setup, list(config.parties))


def factory_for(config: Config, setup: Setup | None = None) -> Any:
    setup = setup or setup_for(config)
    cls = WorkflowSchedule if config.model == "workflow" else Schedule
    return lambda choose: cls(setup, choose)


def run(config: Config, setup: Setup | None = None) -> Report:
    factory = factory_for(config, setup)
    if config.random is not None:
        return sample(factory, config.random, config.seed)
    return explore(
        factory,
        reduce=config.reduce,
        por=config.reduce and config.por,
        max_schedules=config.max_schedules,
    )


def title(config: Config) -> str:
    model = (
        "MODEL of the C++ ordering (sogou/workflow, websocket branch tip)"
        if config.model == "workflow"
        else "wschan's Channel (the real code) over a simulated transport"
    )
    if config.broken:
        model = f"BROKEN variant {config.broken!r} of wschan's Channel"
    parties = [f"{config.senders} sends", "deinit" + (" (abrupt)" if config.abrupt else "")]
    if config.peer_close and config.model == "wschan":
        parties.append("terminate (the peer sends Close, then ends TCP)")
    else:
        parties.append("terminate (the peer ends TCP)")
    if config.with_ping and config.model == "wschan":
        parties.append("a ping")
    parties.extend(config.parties)
    return f"{model}: {', '.join(parties)}"


def summary(config: Config, report: Report) -> dict[str, Any]:
    mode = (
        f"random {config.random} (seed {config.seed})"
        if config.random is not None
        else ("exhaustive" if report.exhausted else "bounded by --max-schedules")
    )
    return {
        "model": config.model,
        "senders": config.senders,
        "with_ping": config.with_ping,
        "abrupt": config.abrupt,
        "broken": config.broken,
        "peer": "close" if config.peer_close else "eof",
        "parties": list(config.parties),
        "mode": mode,
        "reduced": config.reduce and config.random is None,
        "reduction": (
            "none"
            if config.random is not None or not config.reduce
            else ("all" if config.por else "states")
        ),
        "schedules": report.schedules,
        "complete": report.complete,
        "pruned": report.pruned,
        "asleep": report.slept,
        "states": report.states,
        "choice_points": report.choice_points,
        "seconds": round(report.seconds, 3),
        "schedules_per_second": round(report.rate, 1),
        "violations": len(report.found),
        "ok": report.ok,
    }


def _distinct(report: Report) -> list[tuple[str, Found]]:
    """Each kind of violation with its shortest schedule, shortest first."""
    return sorted(report.found.items(), key=lambda kv: (len(kv[1].events), kv[0]))


def print_report(
    config: Config, report: Report, console: Console, *, as_json: bool, lanes: bool
) -> None:
    from wschan_cli.render.swimlanes import Mark
    from wschan_cli.render.timeline import Timeline

    if as_json:
        print(json.dumps({"explore": summary(config, report)}), flush=True)
        for kind, found in _distinct(report):
            record = {
                "violation": kind,
                "invariant": found.violation.invariant,
                "message": found.violation.message,
                "schedule": found.choices,
                "events": [e.to_json() for e in found.events],
            }
            print(json.dumps(record), flush=True)
        return
    s = summary(config, report)
    console.print(title(config), markup=False, highlight=False, soft_wrap=True)
    how = (
        f"{s['complete']} complete, {s['pruned'] - s['asleep']} stopped at a state explored "
        f"before, {s['asleep']} where every step left was asleep"
        if s["reduced"]
        else "every interleaving"
    )
    states = "distinct schedules drawn" if config.random is not None else "distinct states"
    console.print(
        f"schedules: {s['schedules']} ({how}); {states}: {s['states']}; "
        f"time: {s['seconds']:.2f} s ({s['schedules_per_second']:.0f} schedules/s); "
        f"{s['mode']}",
        markup=False,
        soft_wrap=True,
        highlight=False,
    )
    if report.ok:
        console.print(
            "no violation: every invariant of channel-model.md section 5 held after every step "
            "of every schedule",
            markup=False,
            soft_wrap=True,
        )
        return
    console.print(f"{len(report.found)} kind(s) of violation:", markup=False, soft_wrap=True)
    for kind, _found in _distinct(report):
        console.print(f"  §{kind}", markup=False, highlight=False, soft_wrap=True)
    for _kind, found in _distinct(report):
        v = found.violation
        console.print()
        console.print(
            f"shortest schedule showing §{v.invariant}: {v.message}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            "choices: " + " -> ".join(found.choices), markup=False, highlight=False, soft_wrap=True
        )
        mark = None if v.seq is None else Mark(v.seq, v.invariant, v.message)
        timeline = Timeline(f"{config.model}: schedule {found.schedule_no}", mark)
        for event in found.events:
            timeline.add(event)
        console.print(timeline if lanes else timeline.compact())
