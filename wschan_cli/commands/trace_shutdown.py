"""``wschan trace-shutdown``: run the deinit / handle_terminate race for real and show it.

Heavy imports (asyncio, websockets, rich) happen inside the command, so ``--help`` stays fast.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from typing import Any

import click

from wschan_cli.exitcodes import ExitStatus, status_for
from wschan_cli.explore.limits import MAX_STATES
from wschan_cli.explore.mutation_names import NAMES as MUTATION_NAMES
from wschan_cli.explore.parties import PARTIES, WORKFLOW_PARTIES
from wschan_cli.options import Seconds

EPILOG = """\b
Scenarios (channel-model.md section 3):
  deinit-first     deinit holds the token when the read side ends; terminate queues
  terminate-first  the read side ends first; terminate queues, then deinit
  race             the read-side end and deinit start in the same loop turn
  all              each of the above in turn (default)

With --senders N, N sends are pending when the race starts: the first holds the token
(parked in its drain), the others queue. Terminate is triggered by ending the read side
locally, exactly as when the peer ends TCP; with no URL the embedded server is used.

With --explore, no server is used: the same Channel code runs over a simulated transport
and peer under a deterministic scheduler, which enumerates every order of the parties'
steps (sends, deinit, the peer ending TCP, with --with-ping a ping) and checks every
invariant after every step. --model workflow explores a small model of the C++ ordering
instead, which has use-after-delete schedules (R1, R2 of channel-model.md). Both were
reproduced on the C++ (crosscheck/workflow: sogou/workflow b45352cb under AddressSanitizer
and ThreadSanitizer): R1, R2 as the explorer prints it, R2 with deinit queued, and H6
(deinit() inside the close callback) each ended in a heap-use-after-free in 50 of 50 forced
runs under each sanitizer, the two controls in none; with no pause at all, deinit() called as
soon as the close callback wakes the program did so in 13 of 50 (AddressSanitizer). The
model leaves out that the queued R2 needs deinit's woken waiter timer on another poller
thread than the connection's.

{parties}
\b
Exit status: 0 every invariant held, 6 an invariant was violated, 2 usage error,
3 could not connect, 4 handshake rejected, 1 other error.
"""


def _parties_help() -> str:
    lines = ["\b", "Parties --party adds to the race (with --explore; repeatable):"]
    for name, (_, text) in PARTIES.items():
        first, *rest = textwrap.wrap(text, 60)
        lines.append(f"  {name:<15}{first}")
        lines.extend(f"  {'':<15}{more}" for more in rest)
    return "\n".join(lines) + "\n"


EPILOG = EPILOG.format(parties=_parties_help())


@click.command("trace-shutdown", epilog=EPILOG)
@click.argument("url", required=False)
@click.option(
    "--scenario",
    type=click.Choice(["deinit-first", "terminate-first", "race", "all"]),
    default="all",
    show_default=True,
    help="Which ordering of deinit and terminate to run.",
)
@click.option(
    "--senders",
    type=click.IntRange(0, 64),
    default=2,
    show_default=True,
    help="Sends pending when the race starts.",
)
@click.option("--abrupt", is_flag=True, help="deinit without a Close frame, as the C++ does.")
@click.option("--json", "as_json", is_flag=True, help="Events and verdicts as JSON Lines.")
@click.option(
    "--timeout",
    type=Seconds(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds a scenario may take before it counts as a hang.",
)
@click.option(
    "--pace",
    type=click.IntRange(0, 2000),
    default=0,
    show_default=True,
    metavar="MS",
    help="Hold each drain, read and scenario step MS milliseconds, to watch the race "
    "step by step (said in the title; --timeout counts the pauses).",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="K",
    help="Run each scenario K times and count how often each ordering occurred.",
)
@click.option(
    "--export",
    "export",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    metavar="FILE",
    help="Also write the timelines and verdicts to FILE: .svg, .html or .md.",
)
@click.option("-k", "--insecure", is_flag=True, help="Do not verify the server's TLS certificate.")
@click.option(
    "--explore",
    is_flag=True,
    help="Enumerate every schedule under a deterministic scheduler (no network).",
)
@click.option(
    "--model",
    type=click.Choice(["wschan", "workflow"]),
    default="wschan",
    show_default=True,
    help="With --explore: wschan's own channel, or a model of the C++ ordering.",
)
@click.option("--with-ping", is_flag=True, help="With --explore: a ping joins the race.")
@click.option(
    "--peer",
    type=click.Choice(["eof", "close"]),
    default="eof",
    show_default=True,
    help="With --explore: how the peer ends: TCP only, or a Close frame first.",
)
@click.option(
    "--random",
    "random_runs",
    type=click.IntRange(min=1),
    default=None,
    metavar="K",
    help="With --explore: sample K random schedules instead of enumerating them all.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of --random (same seed, same runs).",
)
@click.option(
    "--max-schedules",
    type=click.IntRange(min=1),
    default=None,
    help="With --explore: stop after this many schedules.",
)
@click.option(
    "--max-states",
    type=click.IntRange(min=1),
    default=MAX_STATES,
    show_default=True,
    help="With --explore: stop after this many distinct states (each is kept: the memory "
    "bound; about a gigabyte at the default).",
)
@click.option(
    "--reduce",
    "reduction",
    type=click.Choice(["all", "states", "none"]),
    default="states",
    show_default=True,
    help="With --explore: states: prune states explored before and fold the sends not yet "
    "started; all: also skip steps that commute with explored ones (sleep sets: fewer "
    "schedules, the same states); none: run every interleaving.",
)
@click.option(
    "--no-reduce",
    is_flag=True,
    help="With --explore: the same as --reduce none.",
)
@click.option(
    "--party",
    "parties",
    type=click.Choice(list(PARTIES)),
    multiple=True,
    help="With --explore: add this party to the race (repeatable; listed below).",
)
@click.option(
    "--broken",
    type=click.Choice(list(MUTATION_NAMES)),
    default=None,
    help="With --explore: explore a deliberately broken variant of the core (a check must bite).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def trace_shutdown(
    url: str | None,
    scenario: str,
    senders: int,
    abrupt: bool,
    as_json: bool,
    timeout: float,
    pace: int,
    repeat: int,
    export: str | None,
    insecure: bool,
    explore: bool,
    model: str,
    with_ping: bool,
    peer: str,
    random_runs: int | None,
    seed: int,
    max_schedules: int | None,
    max_states: int,
    reduction: str,
    no_reduce: bool,
    broken: str | None,
    parties: tuple[str, ...],
    debug: bool,
) -> None:
    """Run the client.deinit() / handle_terminate() race and render every transition.

    Each run shows one row per event, a lane per party, and the values of `sending` and
    `established` after each event; then a verdict for each invariant of the channel model.
    With --explore, every schedule of the race is enumerated instead, on the same channel code.
    """
    if explore:
        if url is not None:
            raise click.UsageError("--explore runs without a network: give no URL")
        if repeat != 1 or export is not None or pace:
            raise click.UsageError(
                "--repeat, --export and --pace apply to live traces, not --explore"
            )
        if broken is not None and model != "wschan":
            raise click.UsageError("--broken applies to --model wschan")
        if model == "workflow" and set(parties) - set(WORKFLOW_PARTIES):
            raise click.UsageError(
                "--model workflow takes only --party " + ", ".join(WORKFLOW_PARTIES)
            )
        sys.exit(
            _explore(
                broken,
                model,
                senders,
                with_ping,
                abrupt,
                random_runs,
                seed,
                max_schedules,
                max_states,
                "none" if no_reduce else reduction,
                as_json,
                peer == "close",
                parties,
            )
        )
    if export is not None and not export.lower().endswith((".svg", ".html", ".htm", ".md")):
        raise click.UsageError("--export FILE must end in .svg, .html or .md")
    if export is not None:
        import os

        directory = os.path.dirname(os.path.abspath(export))
        if not os.path.isdir(directory):  # said now, not after the whole run
            raise click.BadParameter(f"no such directory: {directory}", param_hint="'--export'")
    if (
        model != "wschan"
        or with_ping
        or random_runs is not None
        or max_schedules
        or max_states != MAX_STATES
        or no_reduce
        or reduction != "states"
        or broken
        or parties
        or peer != "eof"
    ):
        raise click.UsageError(
            "--model, --with-ping, --peer, --random, --max-schedules, --max-states, --reduce, "
            "--no-reduce, "
            "--party and --broken need --explore"
        )
    from wschan_cli.channel import ChannelError, ChannelOptions
    from wschan_cli.runner import print_traceback, run_main
    from wschan_cli.secrets import mask_url
    from wschan_cli.trace.scenarios import SCENARIOS

    plan = _Plan(
        scenarios=list(SCENARIOS) if scenario == "all" else [scenario],
        senders=senders,
        abrupt=abrupt,
        as_json=as_json,
        timeout=timeout,
        options=ChannelOptions(insecure=insecure, reconnect=True),
        repeat=repeat,
        export=export,
        pace=pace / 1000,
    )

    def error(message: str) -> None:
        from wschan_cli.render.escape import escape_control

        # Server text (a refusal's reason and body) is data: escaped, on one line; masked.
        click.echo(f"wschan: {escape_control(mask_url(message), one_line=True)}", err=True)

    async def traced() -> int:
        try:
            failed = await _main(url, plan)
        except ChannelError as exc:  # could not connect (3), rejected (4): one line
            if debug:
                print_traceback(mask_url)
            error(str(exc))
            return status_for(exc)
        except ExportError as exc:  # a full disk, no permission: one line, 1
            if debug:
                print_traceback(mask_url)
            error(str(exc))
            return ExitStatus.ERROR
        return ExitStatus.VIOLATION if failed else ExitStatus.OK

    sys.exit(run_main(traced(), debug=debug, error=error, mask=mask_url))


def _explore(
    broken: str | None,
    model: str,
    senders: int,
    with_ping: bool,
    abrupt: bool,
    random_runs: int | None,
    seed: int,
    max_schedules: int | None,
    max_states: int,
    reduction: str,
    as_json: bool,
    peer_close: bool,
    parties: tuple[str, ...],
) -> int:
    import threading

    from rich.console import Console

    from wschan_cli.explore.report import Config, run
    from wschan_cli.render.exploration import ProgressLine, print_report
    from wschan_cli.runner import CtrlC

    if senders > 6:
        raise click.UsageError("--explore takes at most 6 senders (the space grows too fast)")
    config = Config(
        model,
        senders,
        with_ping,
        abrupt,
        random_runs,
        seed,
        max_schedules,
        reduction != "none",
        broken,
        peer_close,
        parties,
        por=reduction == "all",
        max_states=max_states,
    )
    progress = ProgressLine(Console(stderr=True)) if sys.stderr.isatty() else None
    # The first Ctrl-C stops the search between two schedules (it then reports what it
    # explored); a second quits at once (runner.CtrlC).
    stop = threading.Event()
    ctrl_c = CtrlC(stop.set, error=lambda message: click.echo(f"wschan: {message}", err=True))
    try:
        with ctrl_c.around():
            report = run(config, progress=progress, interrupted=stop.is_set)
    finally:
        if progress is not None:
            progress.clear()
    console = Console()
    print_report(config, report, console, as_json=as_json, lanes=console.is_terminal)
    if model == "workflow" and not as_json:
        from wschan_cli.explore.workflow import CROSSCHECK

        console.print()
        console.print(CROSSCHECK, markup=False, highlight=False, soft_wrap=True)
    if not report.ok:
        return ExitStatus.VIOLATION  # found before a Ctrl-C too: a violation is a violation
    return status_for(KeyboardInterrupt()) if report.stopped_by == "Ctrl-C" else ExitStatus.OK


@dataclass(frozen=True)
class _Plan:
    scenarios: list[str]
    senders: int
    abrupt: bool
    as_json: bool
    timeout: float
    options: Any  # ChannelOptions, imported lazily
    repeat: int = 1
    export: str | None = None
    pace: float = 0.0  # seconds (--pace)


async def _main(url: str | None, plan: _Plan, console: Any = None) -> bool:
    """Run the plan against ``url``, or against the embedded server when there is none."""
    if console is None:
        from rich.console import Console

        console = Console()
    if url is not None:
        from wschan_cli.channel import Channel

        Channel(url)  # a bad URL is a usage error before anything runs
        return await _run_all(url, plan, console)
    from wschan_cli.server import EmbeddedServer

    async with EmbeddedServer() as srv:
        return await _run_all(srv.url, plan, console)


# The live view redraws at most this often, from rich's refresh thread: an event only appends
# to the timeline, so drawing never runs inside the channel's event stream (issue 16).
REFRESH_PER_SECOND = 8
# Columns of an exported picture (--export .svg/.html): the swimlanes fit 80, the verdicts
# read better with a little more.
EXPORT_WIDTH = 100


async def _run_all(url: str, plan: _Plan, console: Any) -> bool:
    """Run each scenario (``repeat`` times), render it, print its verdicts and, when repeated,
    how often each ordering occurred; True if any verdict failed."""
    import contextlib
    import json
    from collections import Counter

    from rich.live import Live

    from wschan_cli.invariants.verdicts import check
    from wschan_cli.render.timeline import Timeline, markdown, ordering, verdict_table
    from wschan_cli.trace.scenarios import run_scenario

    failed = False
    exported: list[tuple[Timeline, list[Any]]] = []
    for name in plan.scenarios:
        mode = "abrupt" if plan.abrupt else "graceful"
        orderings: Counter[str] = Counter()
        for i in range(1, plan.repeat + 1):
            shown = i == 1  # repeated runs are checked and counted, the first one is drawn
            label = f" (run {i} of {plan.repeat})" if plan.repeat > 1 else ""
            paced = f", paced {plan.pace * 1000:.0f} ms per step" if plan.pace else ""
            timeline = Timeline(
                f"{name}: {plan.senders} pending sends, {mode} deinit{paced}, {url}{label}"
            )
            # Live on a terminal; off one, a plain table once the run is over (cli.md).
            live = (
                None
                if plan.as_json or not console.is_terminal or not shown
                else Live(timeline, console=console, refresh_per_second=REFRESH_PER_SECOND)
            )

            def on_event(
                event: Any,
                name: str = name,
                timeline: Timeline = timeline,
                i: int = i,
            ) -> None:
                if plan.as_json:
                    run_no = {"run": i} if plan.repeat > 1 else {}
                    print(json.dumps({"scenario": name, **run_no, **event.to_json()}), flush=True)
                    return
                timeline.add(event)  # only recorded: the live view draws it on its own clock

            timeline.following = live is not None
            with live or contextlib.nullcontext():
                run = await run_scenario(
                    url,
                    name,
                    senders=plan.senders,
                    abrupt=plan.abrupt,
                    options=plan.options,
                    on_event=on_event,
                    timeout=plan.timeout,
                    pace=plan.pace,
                )
                timeline.following = False  # the last frame, drawn as the view stops: all of it
            verdicts = check(run)
            orderings[ordering(run.events)] += 1
            failed = failed or not all(v.ok for v in verdicts)
            if shown and plan.export is not None:
                if plan.as_json:
                    for event in run.events:
                        timeline.add(event)
                exported.append((timeline, verdicts))
            if plan.as_json:
                for v in verdicts:
                    record = {
                        "scenario": name,
                        "invariant": v.invariant,
                        "claim": v.claim,
                        "ok": v.ok,
                        "evidence": v.evidence,
                    }
                    if plan.repeat > 1:
                        record["run"] = i
                    print(json.dumps(record), flush=True)
                continue
            if not shown:
                if not all(v.ok for v in verdicts):
                    console.print(verdict_table(f"{name}: verdicts, run {i}", verdicts))
                continue
            if live is None:
                console.print(timeline.compact())
            console.print(verdict_table(f"{name}: verdicts", verdicts))
            for party, outcome in run.outcomes.items():
                console.print(f"  {party}: {outcome}", markup=False, highlight=False)
            console.print()
        if plan.repeat > 1:
            _print_orderings(console, name, orderings, plan.as_json)
    if plan.export is not None:
        try:
            _export(plan.export, exported, markdown)
        except OSError as exc:
            raise ExportError(
                f"cannot write {plan.export} (--export): {exc.strerror or exc}"
            ) from exc
    return failed


class ExportError(Exception):
    """The --export file could not be written."""


def _print_orderings(console: Any, name: str, orderings: Any, as_json: bool) -> None:
    import json

    from rich.table import Table

    total = sum(orderings.values())
    if as_json:
        for shape, count in orderings.most_common():
            print(json.dumps({"scenario": name, "ordering": shape, "count": count}), flush=True)
        return
    table = Table(title=f"{name}: orderings over {total} runs", title_justify="left")
    table.add_column("runs", justify="right")
    table.add_column("ordering (token takes, shutdown, leaves, failed sends)", overflow="fold")
    for shape, count in orderings.most_common():
        table.add_row(str(count), shape or "(none)")
    console.print(table)
    console.print()


def _export(path: str, exported: list[tuple[Any, list[Any]]], markdown: Any) -> None:
    """Write the first run of each scenario: SVG or HTML through rich, Markdown by hand."""
    import io

    from rich.console import Console

    from wschan_cli.render.timeline import verdict_table

    if path.lower().endswith(".md"):
        text = "\n".join(markdown(timeline, verdicts) for timeline, verdicts in exported)
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
        return
    record = Console(record=True, width=EXPORT_WIDTH, file=io.StringIO(), force_terminal=True)
    for timeline, verdicts in exported:
        record.print(timeline)
        record.print(verdict_table(f"{timeline.title.split(':')[0]}: verdicts", verdicts))
        record.print()
    if path.lower().endswith(".svg"):
        record.save_svg(path, title="wschan trace-shutdown")
    else:
        record.save_html(path)
