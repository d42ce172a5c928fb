"""Where the CPU of a one-shot goes: ``wschan send URL hello --expect 1`` against the plain
websockets script of bench/send.py, part by part (issue 13, start-up and one-shot).

    python bench/startup_parts.py [--runs 21]

Each part is the difference between two processes measured interleaved in the same run (CPU
from ``wait4``, medians): first the modules each command loads are listed (``sys.modules`` at
the exit of a real run of each), then throw-away scripts import the shared modules, then each
side's own, and leave with ``os._exit`` (no teardown), or normally (teardown). What is left of
a whole run once its modules are loaded is its own work: the command line, connecting, the
handshake, the message and its reply, the close handshake, and the exit.

Every script starts the way ``wschan`` does (``startup.defer_import("importlib.metadata")``),
and the plain script's side then loads importlib.metadata for real, as websockets makes it do:
so the shared part is the same for both. Differences of two noisy medians: +-2 ms on a quiet
machine. Prints a Markdown table; RESULTS.md is not touched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from send import ONE_SHOT_SCRIPT, Peer, Run, interleaved, measure, script, wschan_command

PRELUDE = "from wschan_cli.startup import defer_import; defer_import('importlib.metadata')\n"

#: Prints the modules loaded when the process ends, then runs the command (argv[1:]).
LISTER = """
import atexit, runpy, sys
listing = sys.argv.pop(1)
atexit.register(lambda: print("\\n".join(sorted(sys.modules)), file=open(listing, "w")))
if sys.argv[1] == "wschan":
    sys.argv.pop(0)
    from wschan_cli.entry import main
    main()
else:
    sys.argv.pop(0)
    runpy.run_path(sys.argv[0], run_name="__main__")
"""

#: Not importable by name (extension internals, the lister itself).
SKIP = ("__main__", "__editable", "_", "cython_runtime", "runpy", "typing.io", "typing.re")


def modules_of(argv: list[str]) -> set[str]:
    with tempfile.NamedTemporaryFile("r", suffix=".txt", delete=False) as handle:
        listing = handle.name
    subprocess.run(
        [sys.executable, script(LISTER), listing, *argv],
        check=True,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    names = set(Path(listing).read_text().split())
    return {n for n in names if not n.startswith(SKIP) and n != "importlib.metadata"}


def importer(
    modules: list[str],
    *,
    fast_exit: bool = True,
    real_metadata: bool = False,
    start_up_threshold: bool = False,
) -> list[str]:
    code = PRELUDE
    if start_up_threshold:
        code += "from wschan_cli import startup; import gc\n"
        code += "gc.set_threshold(startup.START_UP_THRESHOLD, *gc.get_threshold()[1:])\n"
    if modules:
        code += "import " + ", ".join(modules) + "\n"
    if real_metadata:
        code += "import importlib.metadata; importlib.metadata.version\n"
    if fast_exit:
        code += "import os; os._exit(0)\n"
    return [sys.executable, script(code)]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    wschan = wschan_command()
    server = Peer([*wschan, "serve", "--port", "0"])
    try:
        url = server.url
        one_shot = ["wschan", "send", url, "hello", "--expect", "1"]
        plain = [script(ONE_SHOT_SCRIPT), url]
        ours, theirs = modules_of(one_shot), modules_of(plain)
        shared = sorted(ours & theirs)
        only_theirs = sorted(theirs - ours)
        click = sorted(m for m in ours - theirs if m.startswith("click") or m == "gettext")
        uvloop = sorted(
            m
            for m in ours - theirs
            if m.startswith("uvloop") or m in ("concurrent.futures.thread", "queue")
        )
        own = sorted(m for m in ours - theirs if m not in click and m not in uvloop)
        scripts = {
            "interpreter": importer([]),
            "shared": importer(shared),
            "plain imports": importer(shared + only_theirs, real_metadata=True),
            "plain imports, normal exit": importer(
                shared + only_theirs, fast_exit=False, real_metadata=True
            ),
            "+click": importer(shared + click),
            "+uvloop": importer(shared + click + uvloop),
            "wschan imports": importer(shared + click + uvloop + own),
            "wschan imports, start-up threshold": importer(
                shared + click + uvloop + own, start_up_threshold=True
            ),
            "wschan imports, start-up threshold, normal exit": importer(
                shared + click + uvloop + own, fast_exit=False, start_up_threshold=True
            ),
        }
        commands: dict[str, Callable[[], Run]] = {
            name: (lambda argv=argv: measure(argv)) for name, argv in scripts.items()
        }
        hello = b"hello\n"
        commands["wschan one-shot"] = lambda: measure(
            [*wschan, "send", url, "hello", "--expect", "1"], expect=hello
        )
        commands["plain script"] = lambda: measure([sys.executable, *plain], expect=hello)
        runs = interleaved(commands, args.runs)
    finally:
        server.stop()
    wrong = {name: sum(not r.ok for r in result) for name, result in runs.items()}
    cpu = {name: statistics.median(r.cpu for r in result) * 1000 for name, result in runs.items()}
    plain_own = cpu["plain script"] - cpu["plain imports"]
    wschan_own = cpu["wschan one-shot"] - cpu["wschan imports, start-up threshold"]
    rows = [
        (
            "interpreter and site, and `startup.defer_import` (no teardown)",
            cpu["interpreter"],
            cpu["interpreter"],
        ),
        (
            f"modules both load ({len(shared)}: asyncio, ssl, websockets' sans-I/O core, "
            "logging, inspect, typing, uuid...)",
            cpu["shared"] - cpu["interpreter"],
            cpu["shared"] - cpu["interpreter"],
        ),
        (
            f"the script's own modules ({len(only_theirs)}: websockets.asyncio, python-socks, "
            "urllib.request and email, importlib.metadata and zipfile, csv...)",
            0.0,
            cpu["plain imports"] - cpu["shared"],
        ),
        (f"click ({len(click)} modules, gettext)", cpu["+click"] - cpu["shared"], 0.0),
        (
            f"uvloop ({len(uvloop)}: with concurrent.futures.thread and queue)",
            cpu["+uvloop"] - cpu["+click"],
            0.0,
        ),
        (
            f"wschan_cli ({sum(m.startswith('wschan_cli') for m in own)} modules)",
            cpu["wschan imports"] - cpu["+uvloop"],
            0.0,
        ),
        (
            "the collector during start-up: wschan's threshold (startup.begin) against the default",
            cpu["wschan imports, start-up threshold"] - cpu["wschan imports"],
            0.0,
        ),
        (
            "the run and the exit: command line, connect, handshake, send, reply, close handshake; "
            "exit (the script's includes its teardown, below)",
            wschan_own,
            plain_own,
        ),
    ]
    print(f"One-shot, CPU per part, medians of {args.runs} interleaved rounds (ms):\n")
    print("| part | wschan | plain script |")
    print("|---|---:|---:|")
    for label, ours_ms, theirs_ms in rows:
        print(f"| {label} | {ours_ms:.1f} | {theirs_ms:.1f} |")
    print(
        f"| **whole process** | **{cpu['wschan one-shot']:.1f}** | **{cpu['plain script']:.1f}** |"
    )
    teardown_theirs = cpu["plain imports, normal exit"] - cpu["plain imports"]
    teardown_ours = (
        cpu["wschan imports, start-up threshold, normal exit"]
        - cpu["wschan imports, start-up threshold"]
    )
    print(
        f"\nTeardown at exit of the modules alone (normal exit minus `os._exit`): the script's "
        f"{teardown_theirs:.1f} ms; wschan's modules {teardown_ours:.1f} ms without the freeze "
        "of startup.end (the one-shot freezes them: its exit is in the run row)."
    )
    print(
        f"Wrong output: {wrong['wschan one-shot']}/{args.runs} (wschan), "
        f"{wrong['plain script']}/{args.runs} (script). Load average: {os.getloadavg()[0]:.1f}."
    )


if __name__ == "__main__":
    main()
