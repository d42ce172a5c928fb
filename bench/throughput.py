#!/usr/bin/env python
"""Throughput and round-trip benchmark: wschan's ``Channel`` against websockets' asyncio client.

Both clients talk to the same echo server (``python -m wschan_cli serve --no-compression``),
which runs in its own process so that client and server do not share one event loop or core.

* one-way throughput (echo-count definition): with the connection already open, one task sends
  N binary messages of one size as fast as it can (``await send(m)`` in a loop) while the echoes
  are counted (wschan: in the ``process`` callback, which sets an ``asyncio.Event`` at N;
  websockets: a second task doing ``await ws.recv()`` N times). The clock runs from the first
  send to the N-th echo received, so a run ends only once the server has received *and*
  echoed every message. msg/s = N / elapsed.
* round trip: send one 16-byte message, wait for its echo, repeat; a run's figure is the median
  round trip.

Every figure is the median over ``--runs`` runs; wschan and websockets runs alternate (the order
flips every run) so that noise on the machine falls on both. Each run also records the CPU time
of this (client) process per message, which is far less noisy than wall time.

    python bench/throughput.py              # full run (~20 s), rewrites its part of RESULTS.md
    python bench/throughput.py --quick --runs 1 --no-write   # smoke run, a few seconds
    python bench/throughput.py --profile    # cProfile the wschan client side, print hot spots
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import cProfile
import gc
import io
import os
import platform
import pstats
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

from websockets.asyncio.client import ClientConnection, connect
from websockets.version import version as websockets_version

from wschan_cli.channel import Channel, ChannelOptions, Message

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
START = "<!-- throughput:start -->"
END = "<!-- throughput:end -->"
HEADER = (
    "# wschan benchmarks\n\n"
    "All figures are medians of runs on a small, noisy 2-core machine (other tenants share "
    "it): run-to-run spread of 10-30 % in wall time is normal. Compare the two clients within "
    "one run of a benchmark (they run interleaved, against the same server), not across "
    "machines or days.\n"
)


class Size(NamedTuple):
    size: int
    label: str
    n: int  # messages per run
    n_quick: int  # messages per run with --quick


# N per size: each full run takes roughly 0.1-0.5 s on the reference machine.
SIZES = [
    Size(16, "16 B", 20000, 4000),
    Size(1024, "1 KiB", 10000, 2000),
    Size(64 * 1024, "64 KiB", 2000, 200),
    Size(1024 * 1024, "1 MiB", 120, 12),
]
RTT_SIZE = 16
RTT_N = 2000
RTT_N_QUICK = 400

RUN_TIMEOUT = 60.0  # one run of one client (a healthy one takes well under a second)
OPEN_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0
SERVER_START_TIMEOUT = 15.0
SERVER_STOP_TIMEOUT = 5.0
TOTAL_TIMEOUT = 20 * 60.0  # the whole benchmark


class Sample(NamedTuple):
    """One timed run: wall seconds (one-way: whole run; RTT: median round trip) and the
    client process's CPU seconds per message."""

    seconds: float
    cpu_per_msg: float


# --------------------------------------------------------------------------- server process

_LIVE_SERVERS: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftover_servers() -> None:  # last resort, e.g. after an unexpected exit
    for proc in list(_LIVE_SERVERS):
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=SERVER_STOP_TIMEOUT)
        _LIVE_SERVERS.discard(proc)


class ServerProcess:
    """``python -m wschan_cli serve`` in a subprocess; the URL is the first line of its stdout."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        # The server's stderr, shown if it fails to start; closed by __exit__.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115

    def start(self) -> str:
        cmd = [sys.executable, "-m", "wschan_cli", "serve", "--port", "0", "--no-compression"]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # a Ctrl-C meant for the benchmark is handled by us
        )
        _LIVE_SERVERS.add(self.proc)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], SERVER_START_TIMEOUT)
        line = self.proc.stdout.readline().decode(errors="replace").strip() if ready else ""
        if not line.startswith("ws://"):
            self.stop()
            raise RuntimeError(f"server did not print its URL: {line!r}\n{self._stderr_text()}")
        self.url = line
        return line

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=SERVER_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=SERVER_STOP_TIMEOUT)
        finally:
            _LIVE_SERVERS.discard(proc)
            if proc.stdout is not None:
                proc.stdout.close()

    def _stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def __enter__(self) -> ServerProcess:
        try:
            self.start()
        except BaseException:
            self._stderr.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            self._stderr.close()


# --------------------------------------------------------------------------- the two clients


def wschan_channel(url: str, process: Callable[[Message], None]) -> Channel:
    options = ChannelOptions(
        compression=False,
        ping_interval=None,
        max_size=None,
        open_timeout=OPEN_TIMEOUT,
        close_timeout=CLOSE_TIMEOUT,
    )
    return Channel(url, options=options, process=process)


def websockets_connect(url: str) -> connect:
    return connect(
        url,
        compression=None,
        ping_interval=None,
        max_size=None,
        open_timeout=OPEN_TIMEOUT,
        close_timeout=CLOSE_TIMEOUT,
    )


async def _deinit(ch: Channel) -> None:
    await asyncio.wait_for(ch.deinit(), 2 * CLOSE_TIMEOUT + 1)


def _check_echoed(client: str, echoed_bytes: int, n: int, payload: bytes) -> None:
    if echoed_bytes != n * len(payload):
        raise RuntimeError(f"{client}: {echoed_bytes} bytes echoed, expected {n * len(payload)}")


async def wschan_one_way(url: str, payload: bytes, n: int) -> Sample:
    """N sends back to back on an open Channel; timed until the N-th echo is delivered."""
    all_in = asyncio.Event()
    echoed = 0
    echoed_bytes = 0

    def process(message: Message) -> None:
        nonlocal echoed, echoed_bytes
        echoed += 1
        echoed_bytes += len(message.data)
        if echoed == n:
            all_in.set()

    ch = wschan_channel(url, process)
    try:
        async with asyncio.timeout(RUN_TIMEOUT):
            await ch.open()
            cpu, start = time.process_time(), time.perf_counter()
            for _ in range(n):
                await ch.send(payload)
            await all_in.wait()
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        await _deinit(ch)
    _check_echoed("wschan", echoed_bytes, n, payload)
    return Sample(elapsed, cpu / n)


async def websockets_one_way(url: str, payload: bytes, n: int) -> Sample:
    """N sends back to back on an open websockets connection; timed until the N-th recv()."""
    echoed_bytes = 0

    async def count_echoes(ws: ClientConnection) -> None:
        nonlocal echoed_bytes
        for _ in range(n):
            echoed_bytes += len(await ws.recv())

    async with asyncio.timeout(RUN_TIMEOUT), websockets_connect(url) as ws:
        reader = asyncio.ensure_future(count_echoes(ws))
        try:
            await asyncio.sleep(0)  # the reader parks in recv(), as wschan's reader is parked
            cpu, start = time.process_time(), time.perf_counter()
            for _ in range(n):
                await ws.send(payload)
            await reader
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        finally:
            reader.cancel()
    _check_echoed("websockets", echoed_bytes, n, payload)
    return Sample(elapsed, cpu / n)


async def wschan_rtt(url: str, payload: bytes, n: int) -> Sample:
    """Send one message, wait for its echo, n times; the median round trip.

    The echo is awaited on a future of the loop, as websockets' ``recv()`` does inside: an
    ``asyncio.Event`` would look the running loop up on every wait (a getpid() system call),
    a cost of this harness, not of the channel."""
    loop = asyncio.get_running_loop()
    echo: asyncio.Future[None] = loop.create_future()

    def process(message: Message) -> None:
        if not echo.done():
            echo.set_result(None)

    ch = wschan_channel(url, process)
    samples: list[float] = []
    try:
        async with asyncio.timeout(RUN_TIMEOUT):
            await ch.open()
            cpu = time.process_time()
            for _ in range(n):
                echo = loop.create_future()
                start = time.perf_counter()
                await ch.send(payload)
                await echo
                samples.append(time.perf_counter() - start)
            cpu = time.process_time() - cpu
    finally:
        await _deinit(ch)
    return Sample(statistics.median(samples), cpu / n)


async def websockets_rtt(url: str, payload: bytes, n: int) -> Sample:
    """Send one message, wait for its echo, n times; the median round trip."""
    samples: list[float] = []
    async with asyncio.timeout(RUN_TIMEOUT), websockets_connect(url) as ws:
        cpu = time.process_time()
        for _ in range(n):
            start = time.perf_counter()
            await ws.send(payload)
            await ws.recv()
            samples.append(time.perf_counter() - start)
        cpu = time.process_time() - cpu
    return Sample(statistics.median(samples), cpu / n)


# --------------------------------------------------------------------------- the benchmark

Runner = Callable[[str, bytes, int], Awaitable[Sample]]
ONE_WAY: dict[str, Runner] = {"wschan": wschan_one_way, "websockets": websockets_one_way}
RTT: dict[str, Runner] = {"wschan": wschan_rtt, "websockets": websockets_rtt}
CLIENTS = list(ONE_WAY)


async def one_run(runner: Runner, payload: bytes, n: int) -> Sample:
    """One timed run on a fresh server process, after an untimed warm-up on that server.

    A fresh server per run because the server keeps every message it receives
    (``srv.received``): on a long-lived server later runs pay for its growing heap (a 2-3x
    slowdown at 64 KiB was seen once a few hundred MB had piled up).
    """
    with ServerProcess() as server:
        await runner(server.url, payload, max(1, n // 10))  # warm-up: code paths, buffers
        gc.collect()  # every timed run starts from a collected heap
        return await runner(server.url, payload, n)


async def interleaved(
    runners: dict[str, Runner], payload: bytes, n: int, runs: int, label: str, rtt: bool
) -> dict[str, list[Sample]]:
    """``runs`` runs of each client, alternating which goes first."""
    results: dict[str, list[Sample]] = {name: [] for name in CLIENTS}
    for run in range(runs):
        order = CLIENTS if run % 2 == 0 else CLIENTS[::-1]
        for name in order:
            results[name].append(await one_run(runners[name], payload, n))
        if rtt:
            done = ", ".join(f"{c} {results[c][-1].seconds * 1e6:.1f} us" for c in CLIENTS)
        else:
            done = ", ".join(f"{c} {results[c][-1].seconds * 1e3:.1f} ms" for c in CLIENTS)
        print(f"  {label} run {run + 1}/{runs}: {done}", file=sys.stderr, flush=True)
    return results


class Row(NamedTuple):
    label: str
    n: int
    value: dict[str, float]  # median msg/s (one-way) or µs per round trip (RTT)
    cpu_us: dict[str, float]  # median client CPU µs per message
    raw: dict[str, list[float]]  # per run, in the unit of value


class Result(NamedTuple):
    rows: list[Row]
    rtt: Row
    runs: int
    quick: bool


def _summarise(label: str, n: int, samples: dict[str, list[Sample]], rtt: bool) -> Row:
    if rtt:
        raw = {c: [s.seconds * 1e6 for s in samples[c]] for c in CLIENTS}
    else:
        raw = {c: [n / s.seconds for s in samples[c]] for c in CLIENTS}
    return Row(
        label=label,
        n=n,
        value={c: statistics.median(raw[c]) for c in CLIENTS},
        cpu_us={c: statistics.median(s.cpu_per_msg * 1e6 for s in samples[c]) for c in CLIENTS},
        raw=raw,
    )


async def run_benchmark(runs: int, quick: bool) -> Result:
    rows = []
    for size in SIZES:
        n = size.n_quick if quick else size.n
        samples = await interleaved(
            ONE_WAY, os.urandom(size.size), n, runs, f"{size.label} x {n}", rtt=False
        )
        rows.append(_summarise(size.label, n, samples, rtt=False))
    n = RTT_N_QUICK if quick else RTT_N
    samples = await interleaved(RTT, os.urandom(RTT_SIZE), n, runs, f"rtt x {n}", rtt=True)
    return Result(rows, _summarise(f"RTT {RTT_SIZE} B", n, samples, rtt=True), runs, quick)


# --------------------------------------------------------------------------- reporting


def ratio_one_way(row: Row) -> float:
    return row.value["wschan"] / row.value["websockets"]


def ratio_rtt(row: Row) -> float:
    return row.value["websockets"] / row.value["wschan"]


def table(result: Result) -> str:
    lines = [
        "| size | wschan msg/s | websockets msg/s | ratio (>1: wschan faster) |",
        "|---|---:|---:|---:|",
    ]
    for row in result.rows:
        lines.append(
            f"| {row.label} | {row.value['wschan']:,.0f} | {row.value['websockets']:,.0f} "
            f"| {ratio_one_way(row):.2f} (wschan/websockets msg/s) |"
        )
    rtt = result.rtt
    lines.append(
        f"| {rtt.label} round trip, µs | {rtt.value['wschan']:,.1f} | "
        f"{rtt.value['websockets']:,.1f} | {ratio_rtt(rtt):.2f} (websockets/wschan µs) |"
    )
    return "\n".join(lines)


def cpu_table(result: Result) -> str:
    lines = [
        "| size | wschan CPU µs/msg | websockets CPU µs/msg | ratio websockets/wschan "
        "(>1: wschan cheaper) |",
        "|---|---:|---:|---:|",
    ]
    for row in [*result.rows, result.rtt]:
        w, b = row.cpu_us["wschan"], row.cpu_us["websockets"]
        lines.append(f"| {row.label} | {w:,.1f} | {b:,.1f} | {b / w:.2f} |")
    return "\n".join(lines)


def raw_runs(result: Result) -> str:
    lines = []
    for row in [*result.rows, result.rtt]:
        unit = "µs" if row is result.rtt else "msg/s"
        parts = [f"{c} " + " ".join(f"{v:,.0f}" for v in row.raw[c]) for c in CLIENTS]
        lines.append(f"- {row.label} ({unit}): " + "; ".join(parts))
    return "\n".join(lines)


def _overlap(row: Row) -> bool:
    """Do the two clients' per-run values overlap (a shortfall within run-to-run noise)?"""
    w, b = row.raw["wschan"], row.raw["websockets"]
    return min(w) <= max(b) and min(b) <= max(w)


def below_target(result: Result) -> list[str]:
    """Rows whose ratio is below 1.0, marked when the per-run ranges overlap."""
    low = [(row.label, row) for row in result.rows if ratio_one_way(row) < 1.0]
    if ratio_rtt(result.rtt) < 1.0:
        low.append(("round trip", result.rtt))
    return [
        f"{label} (within noise: runs overlap)" if _overlap(row) else label for label, row in low
    ]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def utc_date() -> str:
    try:
        out = subprocess.run(["date", "-u"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime())


def code_version() -> str:
    """The commit measured, and whether wschan_cli had uncommitted changes."""
    repo = HERE.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", str(repo), "diff", "--quiet", "HEAD", "--", "wschan_cli"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    note = " + uncommitted changes in wschan_cli/" if dirty.returncode == 1 else ""
    return f"commit {head.stdout.strip()}{note}"


def section(result: Result) -> str:
    counts = ", ".join(f"{row.label}: {row.n:,}" for row in result.rows)
    quick = " (**--quick**: reduced message counts, a smoke run)" if result.quick else ""
    low = below_target(result)
    target = (
        "Target (ratio >= 1.0 at every size): **met**."
        if not low
        else f"Target (ratio >= 1.0 at every size): **not met** for {', '.join(low)}; see "
        "*Where the time goes* below."
    )
    return f"""{START}
## Throughput and round trip: `Channel` vs websockets' asyncio client

- date: {utc_date()}
- machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}; \
websockets {websockets_version}
- code: {code_version()}
- reproduce: `python bench/throughput.py` (from the repository root, with the project's venv)

Medians of {result.runs} runs{quick}. One-way rows: messages per second, echo-count
definition (below). Ratio column: one-way rows are wschan msg/s / websockets msg/s; the round
trip row is websockets µs / wschan µs. In every row **> 1 means wschan is faster**.

{table(result)}

{target}

Client-process CPU time per message (median; the server runs in another process, so this is
the client library's cost plus the kernel's send/recv work, and much steadier than wall time):

{cpu_table(result)}

Method:

- Server: `python -m wschan_cli serve --port 0 --no-compression` (the embedded echo server,
  websockets' asyncio server underneath) in a **separate process**, started fresh for every
  timed run of either client: it keeps every message it receives, and a long-lived server
  slowed down as its heap grew. Compression off on both sides; no keepalive pings; no client
  size limit (`max_size=None`).
- Clients, in the benchmark process, on a new connection per run (the handshake is not timed):
  wschan `Channel(url, options=ChannelOptions(compression=False, ping_interval=None,
  max_size=None), process=...)`; websockets `websockets.asyncio.client.connect(url,
  compression=None, ping_interval=None, max_size=None)`.
- One-way throughput, **echo-count definition**: binary messages of one size; one task sends
  N messages back to back (`await send(m)` in a loop) while the echoes are counted (wschan: the
  `process` callback counts and sets an `asyncio.Event` at N; websockets: a second task doing
  `await ws.recv()` N times). A run is timed from the first send until the N-th echo is in, so
  it includes the server's receive and echo; msg/s = N / elapsed. (Send completion alone is
  not what is measured.) N per run: {counts}.
- Round trip: send one {RTT_SIZE}-byte message, wait for its echo, repeat {result.rtt.n:,}
  times; a run's figure is its median round trip. wschan's `process` resolves a future of the
  loop that the sender awaits, which is what websockets' `recv()` awaits inside.
- {result.runs} timed runs per client and row, each on its own fresh server after an untimed
  warm-up (N/10 messages) on that server; wschan and websockets runs alternate, the order
  flipping each run. The tables show medians over runs; ratios are ratios of those medians.

Raw per-run values:

{raw_runs(result)}
{END}"""


def write_results(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else ""
    if not old.strip():
        new = f"{HEADER}\n{text}\n"
    elif START in old and END in old:
        before, rest = old.split(START, 1)
        _, after = rest.split(END, 1)
        new = f"{before}{text}{after}"
    else:
        new = f"{old.rstrip()}\n\n{text}\n"
    RESULTS.write_text(new)


# --------------------------------------------------------------------------- profiling


async def profile_wschan(quick: bool) -> None:
    """The wschan one-way runs under cProfile (client side only), hot spots printed."""
    for size in SIZES:
        n = size.n_quick if quick else size.n
        payload = os.urandom(size.size)
        with ServerProcess() as server:
            await wschan_one_way(server.url, payload, max(1, n // 10))  # warm-up
            profiler = cProfile.Profile()
            profiler.enable()
            sample = await wschan_one_way(server.url, payload, n)
            profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("tottime").print_stats(20)
        stats.sort_stats("cumulative").print_stats(30)
        print(
            f"\n=== wschan client, {size.label} x {n}: {n / sample.seconds:,.0f} msg/s "
            f"under cProfile ==="
        )
        print(out.getvalue())


# --------------------------------------------------------------------------- main


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: servers get stopped


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per client (default 5)")
    parser.add_argument("--quick", action="store_true", help="fewer messages: a smoke run")
    parser.add_argument("--no-write", action="store_true", help="do not touch bench/RESULTS.md")
    parser.add_argument("--profile", action="store_true", help="cProfile the wschan client only")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the event loop both clients run on (default asyncio's; uvloop's is printed only, "
        "RESULTS.md keeps the asyncio table)",
    )
    args = parser.parse_args()
    if args.loop == "uvloop":
        args.no_write = True
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    signal.signal(signal.SIGTERM, _terminate)

    async def bounded(coro: Awaitable[Any]) -> Any:
        async with asyncio.timeout(TOTAL_TIMEOUT):
            return await coro

    factory = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop

    def run(coro: Awaitable[Any]) -> Any:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(bounded(coro))

    try:
        if args.profile:
            run(profile_wschan(args.quick))
            return 0
        result: Result = run(run_benchmark(args.runs, args.quick))
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    except SystemExit as exc:  # SIGTERM, via _terminate
        print("terminated; servers stopped", file=sys.stderr)
        return exc.code if isinstance(exc.code, int) else 1
    except TimeoutError:
        print(f"gave up: the benchmark took more than {TOTAL_TIMEOUT:.0f}s", file=sys.stderr)
        return 124
    print(
        "one-way: N messages sent back to back, timed until all N echoes are back (echo count); "
        f"median of {args.runs} interleaved run(s); server in a separate process; compression "
        "off; > 1 means wschan is faster"
    )
    print(table(result))
    print()
    print("client-process CPU per message:")
    print(cpu_table(result))
    low = below_target(result)
    if low:
        print(f"below target (ratio < 1.0): {', '.join(low)}")
    if not args.no_write:
        write_results(section(result))
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
