"""Exhaustive exploration figures for bench/RESULTS.md (explore section).

Runs ``trace-shutdown --explore``'s engine in process for 1..4 senders (plus deinit and the peer
ending TCP), for wschan's channel and for the workflow model, with state pruning, and once
without pruning where that stays small. Prints a Markdown table.

    /work/venv/bin/python bench/explore.py [--max-senders 4] [--no-reduce-up-to 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

from wschan_cli.explore.report import Config, run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-senders", type=int, default=4)
    parser.add_argument("--no-reduce-up-to", type=int, default=2)
    parser.add_argument("--models", default="wschan,workflow")
    parser.add_argument("--peer", choices=["eof", "close"], default="eof")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"peer: {args.peer}")
    print()
    print(
        "| model | senders | pruning | schedules | complete | distinct states | seconds "
        "| schedules/s | violations |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---|")
    for model in args.models.split(","):
        for senders in range(1, args.max_senders + 1):
            for reduce in (True, False):
                if not reduce and senders > args.no_reduce_up_to - (model == "workflow"):
                    continue
                if model == "workflow" and senders > 2:
                    continue  # the model's space is far larger; R1 and R2 show with 0 senders
                config = Config(
                    model=model, senders=senders, reduce=reduce, peer_close=args.peer == "close"
                )
                report = run(config)
                kinds = sorted({f.violation.message.split(":")[0] for f in report.found.values()})
                print(
                    f"| {model} | {senders} | {'states' if reduce else 'none'} "
                    f"| {report.schedules} | {report.complete} "
                    f"| {report.states if reduce else '-'} | {report.seconds:.2f} "
                    f"| {report.rate:.0f} | {', '.join(kinds) or 'none'} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
