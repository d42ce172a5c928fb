"""``trace-shutdown --explore``: run the explorer for a configuration, and what it found as data
(the title, the summary); render/exploration.py prints it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .engine import Report, explore, sample
from .limits import MAX_STATES
from .mutants import mutant
from .scenario import Schedule
from .setup import Setup, with_parties
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
    max_states: int | None = MAX_STATES  # the memory bound (limits.py)


def setup_for(config: Config) -> Setup:
    setup = Setup(config.senders, config.with_ping, config.abrupt, peer_close=config.peer_close)
    if config.broken is not None:
        setup = dataclasses.replace(setup, channel_cls=mutant(config.broken))
    return with_parties(setup, list(config.parties))


def factory_for(config: Config, setup: Setup | None = None) -> Any:
    setup = setup or setup_for(config)
    cls = WorkflowSchedule if config.model == "workflow" else Schedule
    return lambda choose: cls(setup, choose)


def run(
    config: Config,
    setup: Setup | None = None,
    progress: Callable[[Report], None] | None = None,
    interrupted: Callable[[], bool] = lambda: False,
) -> Report:
    factory = factory_for(config, setup)
    if config.random is not None:
        return sample(factory, config.random, config.seed)
    return explore(
        factory,
        reduce=config.reduce,
        por=config.reduce and config.por,
        max_schedules=config.max_schedules,
        max_states=config.max_states,
        progress=progress,
        interrupted=interrupted,
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
        else (
            "exhaustive" if report.exhausted else f"stopped by {report.stopped_by}: not exhaustive"
        )
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
