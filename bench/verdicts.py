"""What the explorer saves by not recomputing, at the end of each schedule, the verdicts its
monitor checked after every step (``check(run, skip=PER_STEP)``, issue 11).

CPU time of ``check`` on one explored schedule's history, all verdicts against the ones left
after ``PER_STEP``: medians of interleaved batches. Beside it, the CPU time per schedule of the
whole exploration of the same shape, for scale. Prints a Markdown line for bench/RESULTS.md.

    .venv/bin/python bench/verdicts.py [--senders 3] [--batches 15] [--calls 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from wschan_cli.explore.engine import explore
from wschan_cli.explore.scenario import Schedule
from wschan_cli.explore.setup import Setup
from wschan_cli.invariants.monitor import PER_STEP
from wschan_cli.invariants.record import Run
from wschan_cli.invariants.verdicts import check


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--batches", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    setup = Setup(senders=args.senders)
    schedule = Schedule(setup, lambda sched, labels: 0)  # the first schedule, as explored
    schedule.run()
    run = Run("explore", len(schedule.outcomes), setup.abrupt)
    run.events, run.outcomes = schedule.monitor.events, schedule.outcomes
    run.closes = schedule.closes
    every: list[float] = []
    left: list[float] = []
    for _ in range(args.batches):
        for times, skip in ((every, frozenset[str]()), (left, PER_STEP)):
            start = time.process_time()
            for _ in range(args.calls):
                check(run, skip=skip)
            times.append((time.process_time() - start) / args.calls * 1e6)
    start = time.process_time()
    report = explore(lambda choose: Schedule(setup, choose))
    per_schedule = (time.process_time() - start) / report.schedules * 1e6
    print(
        f"| {args.senders} sends | {len(run.events)} events | check, all: "
        f"{statistics.median(every):.0f} us | skip PER_STEP: {statistics.median(left):.0f} us | "
        f"explore: {per_schedule:.0f} us CPU per schedule ({report.complete} of "
        f"{report.schedules} complete) |"
    )


if __name__ == "__main__":
    main()
