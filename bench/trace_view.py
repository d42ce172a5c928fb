"""Benchmark of the observer effect of ``wschan trace-shutdown``'s live view (issue 16).

    python bench/trace_view.py [--rounds 15] [--cols 80] [--rows 50] [--senders 2] [--python EXE]

Each round runs ``wschan trace-shutdown`` (all three scenarios, against the embedded server)
twice, in turn: on a real pseudo-terminal of ``--cols`` x ``--rows`` (pexpect), where the live
view draws, and with ``--json`` into a pipe. The figure per scenario is its *span*: the time
from its first event to its last, as the channel stamped them (the terminal run's events are
read from ``--export FILE.md``, written after the runs, so reading them costs the race
nothing). Reported: the median span of each mode over the rounds, and their ratio. The view
has no observer effect when the ratio stays near 1 (the issue's bound: within 2x).

``--python EXE`` runs the wschan installed for that interpreter instead (e.g. an older version in
another venv, for a before/after figure). Results go to bench/RESULTS.md between
``<!-- trace-view:start -->`` and ``<!-- trace-view:end -->``; ``--no-write`` only prints them.
Loopback only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pexpect

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
START, END = "<!-- trace-view:start -->", "<!-- trace-view:end -->"
SCENARIOS = ("deinit-first", "terminate-first", "race")


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    return env


def senders(args: argparse.Namespace) -> list[str]:
    return ["--senders", str(args.senders)]


def spans_from_markdown(text: str) -> dict[str, float]:
    """Each scenario's span (ms) from the exported Markdown: the ms column of its last row."""
    spans: dict[str, float] = {}
    scenario = None
    for line in text.splitlines():
        if line.startswith("**"):
            scenario = line.strip("*").split(":")[0]
        elif scenario and line.startswith("| ") and line.split("|")[1].strip().isdigit():
            ms = line.split("|")[2].strip()
            if ms.replace(".", "", 1).isdigit():  # an event row, not a verdict's
                spans[scenario] = float(ms)
    return spans


def on_terminal(args: argparse.Namespace, env: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.md"
        child = pexpect.spawn(
            args.python,
            ["-m", "wschan_cli", "trace-shutdown", *senders(args), "--export", str(out)],
            env=env,
            dimensions=(args.rows, args.cols),
            timeout=60,
        )
        child.expect(pexpect.EOF)  # reads (and drops) what the view draws, as a terminal would
        child.close()
        if child.exitstatus != 0:
            raise SystemExit(f"terminal run exited {child.exitstatus}")
        return spans_from_markdown(out.read_text())


def piped_json(args: argparse.Namespace, env: dict[str, str]) -> dict[str, float]:
    result = subprocess.run(
        [args.python, "-m", "wschan_cli", "trace-shutdown", "--json", *senders(args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise SystemExit(f"--json run exited {result.returncode}: {result.stderr}")
    times: dict[str, list[float]] = {}
    for line in result.stdout.splitlines():
        record = json.loads(line)
        if "what" in record:
            times.setdefault(record["scenario"], []).append(record["t"])
    return {name: (t[-1] - t[0]) * 1000 for name, t in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--cols", type=int, default=80)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--python", default=sys.executable, help="run this interpreter's wschan")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    env = environment()
    spans: dict[str, dict[str, list[float]]] = {
        m: {s: [] for s in SCENARIOS} for m in ("tty", "json")
    }
    for i in range(args.rounds):
        for mode, measure in (("tty", on_terminal), ("json", piped_json)):
            for name, span in measure(args, env).items():
                spans[mode][name].append(span)
        print(f"round {i + 1}/{args.rounds}", file=sys.stderr)

    rows = []
    for name in SCENARIOS:
        tty = statistics.median(spans["tty"][name])
        js = statistics.median(spans["json"][name])
        slowest = [max(spans[mode][name]) for mode in ("tty", "json")]
        rows.append(
            f"| {name} | {tty:.2f} | {js:.2f} | {tty / js:.2f} "
            f"| {slowest[0]:.2f} | {slowest[1]:.2f} |"
        )
    command = "python bench/trace_view.py " + " ".join(sys.argv[1:])
    section = "\n".join(
        [
            START,
            f"`{command.strip()}` ({datetime.date.today()}, Python {platform.python_version()},",
            f"{os.cpu_count()} cores, shared machine; a {args.cols}x{args.rows} pseudo-terminal;",
            f"{args.senders} pending sends; {args.rounds} rounds, each mode once per round):",
            "",
            "| scenario | terminal, median span (ms) | `--json` piped, median span (ms) "
            "| terminal / json | terminal, slowest (ms) | `--json`, slowest (ms) |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
            END,
        ]
    )
    print(section)
    if args.no_write:
        return 0
    text = RESULTS.read_text()
    if START in text:
        before, rest = text.split(START, 1)
        text = before + section + rest.split(END, 1)[1]
    else:
        text = (
            text.rstrip("\n")
            + "\n\n## trace-shutdown's live view (observer effect)\n\n"
            + section
            + "\n"
        )
    RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
