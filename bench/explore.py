"""Exploration figures for bench/RESULTS.md (explore section).

``figures``: schedules, distinct states and seconds for 1..N senders, per shape (``--peer eof``,
``--peer close``, ``--with-ping``, each ``--party``), with every reduction (state pruning, the
symmetry of sends, sleep sets), without the sleep sets (``--reduce states``, the default),
without the symmetry of sends, with sleep sets alone, and without any (each run cut at
``--deadline`` seconds: then marked as cut, and larger sizes of it are not run).
``mutations``: which scenario's exhaustive exploration catches which mutation of the core
(explore/mutants.py), with the invariant it reports. Both print Markdown tables.

    .venv/bin/python bench/explore.py figures [--max-senders 6] [--deadline 60] [--shapes A,B]
        [--reductions all,states + symmetry]
    .venv/bin/python bench/explore.py mutations [--deadline 60]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import platform
import sys
from collections.abc import Callable

from wschan_cli.channel import Channel
from wschan_cli.explore.engine import Report, explore
from wschan_cli.explore.mutants import MUTATIONS, mutant
from wschan_cli.explore.parties import PARTIES
from wschan_cli.explore.scenario import Schedule
from wschan_cli.explore.setup import Setup, with_parties
from wschan_cli.explore.workflow import WorkflowSchedule

SHAPES: dict[str, Callable[[int], Setup]] = {
    "peer eof": lambda n: Setup(senders=n),
    "peer close": lambda n: Setup(senders=n, peer_close=True),
    "with ping": lambda n: Setup(senders=n, with_ping=True),
    "ping + close": lambda n: Setup(senders=n, with_ping=True, peer_close=True),
    **{
        f"--party {p}": functools.partial(lambda p, n: with_parties(Setup(senders=n), [p]), p)
        for p in PARTIES
    },
}

# The scenarios of the mutation table: name -> Setup for a channel class.
SCENARIOS: dict[str, Callable[[type[Channel]], Setup]] = {
    "2 sends (eof)": lambda c: Setup(senders=2, channel_cls=c),
    "1 send, peer close": lambda c: Setup(senders=1, peer_close=True, channel_cls=c),
    "autobahn": lambda c: with_parties(Setup(senders=0, channel_cls=c), ["autobahn"]),
    "fragments": lambda c: with_parties(Setup(senders=2, channel_cls=c), ["fragments"]),
    "connector": lambda c: with_parties(Setup(senders=2, channel_cls=c), ["connector"]),
    "keepalive": lambda c: with_parties(Setup(senders=0, channel_cls=c), ["keepalive"]),
    "cancel + fragments": lambda c: with_parties(
        Setup(senders=2, channel_cls=c), ["cancel", "fragments"]
    ),
    "cancel + connector": lambda c: with_parties(
        Setup(senders=2, channel_cls=c), ["cancel", "connector"]
    ),
    "cancel-deinit": lambda c: with_parties(Setup(senders=1, channel_cls=c), ["cancel-deinit"]),
    "slow-close": lambda c: with_parties(Setup(senders=0, channel_cls=c), ["slow-close"]),
}


def run(
    setup: Setup,
    deadline: float,
    *,
    reduce: bool = True,
    por: bool = False,
    workflow: bool = False,
) -> Report:
    cls = WorkflowSchedule if workflow else Schedule
    return explore(lambda choose: cls(setup, choose), reduce=reduce, por=por, deadline=deadline)


def figures(
    max_senders: int, deadline: float, shapes: list[str], only: list[str] | None = None
) -> None:
    print("| shape | senders | reductions | schedules | distinct states | seconds | result |")
    print("|---|---:|---|---:|---:|---:|---|")
    reductions = (
        ("all (states + symmetry + sleep sets)", {}, True, True),
        ("states + symmetry", {}, True, False),
        ("states only", {"symmetric": False}, True, False),
        ("sleep sets only", {"symmetric": False}, False, True),
        ("none", {}, False, False),
    )
    for shape in shapes:
        make = SHAPES[shape]
        cut: set[str] = set()  # reductions that did not finish: larger runs would not either
        for senders in range(1, max_senders + 1):
            for label, changes, reduce, por in reductions:
                if label in cut or (only is not None and label.split(" (")[0] not in only):
                    continue
                setup = dataclasses.replace(make(senders), **changes)
                report = run(setup, deadline, reduce=reduce, por=por)
                if report.exhausted:
                    result = "no violation" if report.ok else f"{len(report.found)} violation(s)"
                else:
                    result = f"cut at {deadline:g} s"
                    cut.add(label)
                states = report.states if reduce else "-"
                print(
                    f"| {shape} | {senders} | {label} | {report.schedules} | {states} "
                    f"| {report.seconds:.1f} | {result} |",
                    flush=True,
                )


def mutations(deadline: float) -> None:
    names = list(SCENARIOS)
    print("| mutation | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for name in ("none (the real core)", *MUTATIONS):
        cls = Channel if name.startswith("none") else mutant(name)
        cells = []
        for scenario in names:
            report = run(SCENARIOS[scenario](cls), deadline, por=True)
            kinds = sorted({f.violation.invariant for f in report.found.values()})
            cell = ", ".join(kinds) if kinds else ("-" if report.exhausted else "cut")
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["figures", "mutations"])
    parser.add_argument("--max-senders", type=int, default=6)
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated")
    parser.add_argument(
        "--reductions",
        default=None,
        help="comma-separated subset of: all, states + symmetry, states only, sleep sets only, "
        "none",
    )
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"load average at start: {os.getloadavg()[0]:.1f} (the machine is shared)")
    print()
    if args.what == "figures":
        only = args.reductions.split(",") if args.reductions else None
        figures(args.max_senders, args.deadline, args.shapes.split(","), only)
    else:
        mutations(args.deadline)


if __name__ == "__main__":
    main()
