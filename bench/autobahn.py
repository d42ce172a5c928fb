#!/usr/bin/env python
"""RFC 6455 conformance: wschan's ``Channel`` and websockets' client against Autobahn|Testsuite.

Opt-in, not part of CI: the suite's fuzzing server (``wstest -m fuzzingserver``) runs on
Python 2.7. This script

1. installs the suite once into a cache directory outside the repository (default
   ``~/.cache/wschan-autobahn``): ``pip install --target`` of the pinned packages that work
   together on 2.7, then ``autobahntestsuite`` with ``--no-deps``. No virtualenv (none ships with
   Python 2.7): the server is started as ``python2.7 -c LAUNCHER``, where the launcher adds the
   install directory with ``site.addsitedir`` (which also reads its ``.pth`` files) and binds the
   server to 127.0.0.1 only;
2. writes the server's spec (a free port on 127.0.0.1, the chosen cases) and starts it;
3. runs the two echo clients of ``bench/autobahn_clients.py`` case by case, taking turns
   (``/runCase?case=N&agent=NAME``), then ``/updateReports`` (which writes every agent's);
4. reads ``reports/clients/index.json`` and the per-case reports, and prints (and writes into
   its own marked section of ``bench/RESULTS.md``) the counts per client, the 9.* timings and
   every case where wschan is worse or better than websockets.

    python bench/autobahn.py                    # all 517 cases, compression off (~4 min)
    python bench/autobahn.py --compression      # 12.*, 13.*, permessage-deflate on (~40 min)
    python bench/autobahn.py --cases 5.*,7.1.5 --no-write     # a few cases, a quick look
    python bench/autobahn.py --wschan ../other-worktree --label core   # test another checkout

The clients run under ``--python`` (default: this interpreter) with ``--wschan`` (a checkout)
first on ``PYTHONPATH``; the section records which ``wschan_cli`` was imported and its commit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from throughput import cpu_model  # bench/ is on the path: this script's own directory

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
CLIENTS_SCRIPT = HERE / "autobahn_clients.py"
AGENTS = ("wschan", "websockets")  # wschan first: the one tested against the reference

SUITE = "autobahntestsuite==25.10.1"
# Known to install and work together on Python 2.7 (the suite's own requirements are unpinned
# and today's releases no longer support 2.7, hence --no-deps for the suite itself).
PINS = (
    "setuptools==44.0.0",
    "txaio==2.1.0",
    "incremental==16.10.1",
    "pyOpenSSL==19.1.0",
    "cryptography==3.3.2",
    "Twisted==19.10.0",
    "zope.interface==4.6.0",
    "jinja2==2.11.3",
    "markupsafe==1.1.1",
    "Werkzeug==1.0.1",
    "klein==17.10.0",
    "service_identity==18.1.0",
    "unittest2==1.1.0",
    "six==1.16.0",
    "autobahn[accelerate,twisted]==0.10.9",
)

# Python 2.7 source, run by the suite's interpreter: put the install on the path, bind the
# server to loopback only (the suite's listenWS binds every interface), start wstest.
LAUNCHER = """
import site, sys
site.addsitedir(sys.argv[1])
import autobahntestsuite.fuzzing as fuzzing
_listen = fuzzing.listenWS
fuzzing.listenWS = lambda factory, ctx=None: _listen(factory, ctx, interface='127.0.0.1')
sys.argv = ['wstest'] + sys.argv[2:]
from autobahntestsuite.wstest import run
run()
"""

# Case sets. Without permessage-deflate the server marks 12.* and 13.* UNIMPLEMENTED.
SETS = {
    "off": (["*"], "all cases, compression off"),
    "deflate": (["12.*", "13.*"], "12.* and 13.*, permessage-deflate on"),
}

# How good a verdict is, to say which client did better. INFORMATIONAL is no verdict: it ranks
# with OK, and a difference between the two is listed as a difference, not as worse or better.
RANK = {"OK": 3, "INFORMATIONAL": 3, "NON-STRICT": 2, "UNIMPLEMENTED": 1}
BEHAVIORS = ("OK", "NON-STRICT", "FAILED", "INFORMATIONAL", "UNIMPLEMENTED")
CLOSE_BEHAVIORS = ("OK", "INFORMATIONAL", "FAILED", "WRONG CODE", "UNCLEAN", "FAILED BY CLIENT")


def rank(verdict: str) -> int:
    return RANK.get(verdict, 0)  # FAILED, WRONG CODE, UNCLEAN, FAILED BY CLIENT


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split("."))


# --------------------------------------------------------------------------- the suite


def default_python2() -> str:
    pyenv = Path.home() / ".pyenv/versions/2.7.18/bin/python"
    return str(pyenv) if pyenv.exists() else (shutil.which("python2.7") or "python2.7")


def ensure_suite(python2: str, cache: Path) -> Path:
    """The suite's install directory, installed on first use (pip --target, ~1 min)."""
    site = cache / f"site-{SUITE.replace('==', '-')}"
    if (site / ".complete").exists():
        return site
    partial = cache / "site.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    pip = [python2, "-m", "pip", "install", "--quiet", "--target", str(partial)]
    for extra, packages in (([], PINS), (["--no-deps"], (SUITE,))):
        print(f"installing {' '.join(packages)} for {python2}", file=sys.stderr)
        done = subprocess.run(pip + extra + list(packages), capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"pip install for the suite failed:\n{done.stderr[-3000:]}")
    (partial / ".complete").touch()
    shutil.rmtree(site, ignore_errors=True)
    partial.rename(site)
    return site


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class FuzzingServer:
    """``wstest -m fuzzingserver`` in its own process group, on 127.0.0.1:port."""

    def __init__(self, python2: str, site: Path, workdir: Path, cases: list[str]) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.workdir = workdir
        spec = {
            "url": self.url,
            "outdir": "./reports/clients",
            "cases": cases,
            "exclude-cases": [],
            "exclude-agent-cases": {},
        }
        (workdir / "fuzzingserver.json").write_text(json.dumps(spec, indent=2))
        self.log = (workdir / "fuzzingserver.log").open("w")
        argv = [python2, "-c", LAUNCHER, str(site), "-m", "fuzzingserver"]
        argv += ["-s", "fuzzingserver.json", "-u", "0"]  # -u 0: no web server on 8080
        self.proc = subprocess.Popen(
            argv, cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_listening(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.flush()
                tail = (self.workdir / "fuzzingserver.log").read_text()[-3000:]
                sys.exit(f"the fuzzing server exited ({self.proc.returncode}):\n{tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        sys.exit(f"the fuzzing server did not listen on {self.url} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


async def ask(url: str) -> Any:
    """One message from a control path of the server (getCaseCount, getCaseInfo...)."""
    from websockets.asyncio.client import connect

    async with asyncio.timeout(30):
        async with connect(url, compression=None, ping_interval=None) as ws:
            return json.loads(await ws.recv())


async def case_ids(url: str) -> list[str]:
    count = await ask(f"{url}/getCaseCount")
    return [(await ask(f"{url}/getCaseInfo?case={n}"))["id"] for n in range(1, count + 1)]


async def update_reports(url: str, agent: str) -> None:
    from websockets.asyncio.client import connect

    async with asyncio.timeout(300):  # the server writes every report before it closes
        async with connect(f"{url}/updateReports?agent={agent}", ping_interval=None) as ws:
            await ws.wait_closed()


# --------------------------------------------------------------------------- the clients


@dataclass
class ClientRun:
    agent: str
    tested: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # case id -> client wall time
    errors: dict[str, str] = field(default_factory=dict)  # case id -> what the client raised

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


class EchoClient:
    """One client of ``autobahn_clients.py`` in its own process, run one case at a time."""

    def __init__(self, agent: str, args: argparse.Namespace, url: str) -> None:
        env = dict(os.environ)
        if args.wschan:
            env["PYTHONPATH"] = os.pathsep.join(
                [str(Path(args.wschan).resolve())] + [p for p in [env.get("PYTHONPATH")] if p]
            )
            env["PYTHONDONTWRITEBYTECODE"] = "1"  # read the other checkout, write nothing there
        argv = [args.python, str(CLIENTS_SCRIPT), agent, "--url", url, "--agent", agent]
        argv += ["--case-timeout", str(args.case_timeout)]
        if args.compression:
            argv.append("--compression")
        if args.websockets_max_fragments:
            argv += ["--max-fragments", str(args.websockets_max_fragments)]
        self.run = ClientRun(agent)
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.run.tested = self._answer()["tested"]

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # bounded: the client bounds each case
        if not line:
            self.proc.wait(10)
            sys.exit(f"the {self.run.agent} client exited ({self.proc.returncode})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run_case(self, number: int, case_id: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{number}\n")
        self.proc.stdin.flush()
        record = self._answer()
        self.run.seconds[case_id] = record["seconds"]
        if record["error"]:
            self.run.errors[case_id] = record["error"]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def run_clients(args: argparse.Namespace, url: str, ids: list[str]) -> dict[str, ClientRun]:
    """Every case for both clients, in turn (the first to go alternates from case to case)."""
    clients = [EchoClient(agent, args, url) for agent in AGENTS]
    try:
        for number, case_id in enumerate(ids, 1):
            for client in clients if number % 2 else clients[::-1]:
                client.run_case(number, case_id)
            if number % 50 == 0 or number == len(ids):
                print(f"  {number}/{len(ids)} cases", file=sys.stderr)
    finally:
        for client in clients:
            client.close()
    return {client.run.agent: client.run for client in clients}


# --------------------------------------------------------------------------- the report


@dataclass
class Outcome:
    """Everything one run found, for the two agents."""

    title: str
    compression: bool
    cases: list[str]
    reports: Path
    index: dict[str, dict[str, dict[str, Any]]]
    runs: dict[str, ClientRun]
    code: str

    def verdict(self, agent: str, case_id: str) -> dict[str, Any]:
        return self.index[agent][case_id]

    def detail(self, agent: str, case_id: str) -> dict[str, Any]:
        name = self.verdict(agent, case_id)["reportfile"]
        data: dict[str, Any] = json.loads((self.reports / name).read_text())
        return data


def counts_table(outcome: Outcome, key: str, names: tuple[str, ...]) -> str:
    counts = {a: Counter(v[key] for v in outcome.index[a].values()) for a in AGENTS}
    seen = [n for n in names if any(counts[a][n] for a in AGENTS)]
    seen += sorted({n for a in AGENTS for n in counts[a]} - set(seen))
    lines = ["| client | " + " | ".join(seen) + " | total |", "|---|" + "---:|" * (len(seen) + 1)]
    for agent in AGENTS:
        cells = " | ".join(str(counts[agent][n]) for n in seen)
        lines.append(f"| {client_label(outcome, agent)} | {cells} | {len(outcome.index[agent])} |")
    return "\n".join(lines)


def client_label(outcome: Outcome, agent: str) -> str:
    if agent == "wschan":
        return "wschan `Channel` echo client"
    return f"websockets {outcome.runs[agent].tested.get('websockets', '?')} asyncio client"


def compare(outcome: Outcome) -> tuple[list[str], list[str], list[str]]:
    """Case ids where wschan is worse, better, or only different (same rank)."""
    worse, better, different = [], [], []
    for case_id in outcome.cases:
        ours, ref = outcome.verdict("wschan", case_id), outcome.verdict("websockets", case_id)
        pairs = [(rank(ours[k]), rank(ref[k])) for k in ("behavior", "behaviorClose")]
        if any(o < r for o, r in pairs):
            worse.append(case_id)
        elif any(o > r for o, r in pairs):
            better.append(case_id)
        elif any(ours[k] != ref[k] for k in ("behavior", "behaviorClose", "remoteCloseCode")):
            different.append(case_id)
    return worse, better, different


def one_line(text: Any, limit: int = 160) -> str:
    flat = " ".join(str(text).split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def case_rows(outcome: Outcome, ids: list[str]) -> str:
    lines = [
        "| case | wschan | websockets | wschan: what the suite says |",
        "|---|---|---|---|",
    ]
    for case_id in ids:
        cells = []
        for agent in AGENTS:
            v = outcome.verdict(agent, case_id)
            cells.append(f"{v['behavior']} / {v['behaviorClose']} ({v['remoteCloseCode']})")
        detail = outcome.detail("wschan", case_id)
        said = detail.get("result", "")
        if detail.get("behaviorClose") not in ("OK", "INFORMATIONAL"):
            said = f"{said} — close: {detail.get('resultClose', '')}"
        lines.append(f"| {case_id} | {cells[0]} | {cells[1]} | {one_line(said)} |")
    return "\n".join(lines)


def timing_rows(outcome: Outcome, prefix: str) -> str:
    """Time per group of ``prefix`` cases (9.1, 9.2...), both clients: the server's case
    durations (from the open to the TCP close) and the client's wall time (connect to close).
    The server runs both clients' cases, so its durations are the fairer comparison."""
    ids = [c for c in outcome.cases if c.startswith(prefix)]
    if not ids:
        return ""
    groups = sorted({".".join(c.split(".")[:2]) for c in ids}, key=case_key)
    lines = [
        "| cases | wschan, server-side | websockets, server-side | wschan / websockets "
        "| wschan, client wall | websockets, client wall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for group in [*groups, f"{prefix}*"]:
        members = [c for c in ids if group.endswith("*") or case_key(c)[:2] == case_key(group)]
        server = {a: sum(outcome.verdict(a, c)["duration"] for c in members) / 1000 for a in AGENTS}
        client = {a: sum(outcome.runs[a].seconds.get(c, 0.0) for c in members) for a in AGENTS}
        ratio = server["wschan"] / server["websockets"] if server["websockets"] else float("nan")
        name = f"**all {group}**" if group.endswith("*") else f"{group}.*"
        lines.append(
            f"| {name} | {server['wschan']:.3f} s | {server['websockets']:.3f} s | {ratio:.2f} "
            f"| {client['wschan']:.3f} s | {client['websockets']:.3f} s |"
        )
    return "\n".join(lines)


# Cases whose time is compared, when they ran (not UNIMPLEMENTED) for both clients.
TIMED = (
    ("9.", "large messages, many fragments"),
    ("12.", "permessage-deflate, 1000 messages of one size"),
    ("13.", "permessage-deflate parameters, 1000 messages"),
)


def ran_for_both(outcome: Outcome, prefix: str) -> bool:
    """Whether every ``prefix`` case ran for both clients (its time means something)."""
    return all(
        outcome.verdict(a, c)["behavior"] != "UNIMPLEMENTED"
        for a in AGENTS
        for c in outcome.cases
        if c.startswith(prefix)
    )


def not_ok(outcome: Outcome) -> list[str]:
    """Cases where some client got neither OK nor a mere INFORMATIONAL/UNIMPLEMENTED."""
    fine = ("OK", "INFORMATIONAL", "UNIMPLEMENTED")
    return [
        c
        for c in outcome.cases
        if any(
            outcome.verdict(a, c)["behavior"] not in fine
            or outcome.verdict(a, c)["behaviorClose"] not in ("OK", "INFORMATIONAL")
            for a in AGENTS
        )
    ]


def section(outcome: Outcome, args: argparse.Namespace) -> str:
    worse, better, different = compare(outcome)
    tested = outcome.runs["wschan"].tested
    errors = {a: outcome.runs[a].errors for a in AGENTS if outcome.runs[a].errors}
    reproduce = "python bench/autobahn.py" + (" --compression" if args.compression else "")
    if args.cases:
        reproduce += f" --cases '{args.cases}'"
    if args.wschan:
        reproduce += f" --wschan {args.wschan}"
    if args.label:
        reproduce += f" --label {args.label}"

    label = f" ({args.label})" if args.label else ""
    fragments = outcome.runs["websockets"].tested.get("websockets_max_fragments", "?")
    if args.websockets_max_fragments != 2**24:
        reproduce += f" --websockets-max-fragments {args.websockets_max_fragments}"

    def listing(ids: list[str]) -> str:
        return case_rows(outcome, ids) if ids else "none"

    parts = [
        f"<!-- {marker(args)}:start -->",
        f"### {len(outcome.cases)} cases: {outcome.title}{label}",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {cpu_model()}, "
        f"{os.cpu_count()} cores; clients on Python {tested.get('python', '?')}",
        f"- wschan: {outcome.code}; echo client on `{tested.get('wschan_api', '?')}`",
        f"- server: {SUITE} (`wstest -m fuzzingserver`) on Python 2.7, 127.0.0.1",
        f"- clients: echo, compression {'on' if outcome.compression else 'off'}, no keepalive, "
        f"16 MiB max message; websockets' client accepts up to {fragments} frames per message "
        "(`WEBSOCKETS_MAX_FRAGMENTS`; its default is 4096)",
        f"- reproduce: `{reproduce}`",
        "",
        "Behaviour (the frames and messages the client sent):",
        "",
        counts_table(outcome, "behavior", BEHAVIORS),
        "",
        "Close behaviour:",
        "",
        counts_table(outcome, "behaviorClose", CLOSE_BEHAVIORS),
        "",
        f"**wschan worse than websockets** (behaviour or close): {len(worse)}",
        "",
        listing(worse),
        "",
        f"**wschan better than websockets**: {len(better)}",
        "",
        listing(better),
        "",
    ]
    if different:
        parts += ["Same rank, different verdict or close code:", "", listing(different), ""]
    rest = [c for c in not_ok(outcome) if c not in worse + better + different]
    parts += [
        f"Not OK for either client, the same for both: {len(rest)}",
        "",
        listing(rest),
        "",
    ]
    for prefix, what in TIMED:
        timing = timing_rows(outcome, prefix)
        if timing and ran_for_both(outcome, prefix):
            parts += [f"Time of the {prefix}* cases ({what}; one run: expect 10-30 % noise):", ""]
            parts += [timing, ""]
    whole = ", ".join(f"{a} {outcome.runs[a].total:.1f} s" for a in AGENTS)
    parts += [f"Whole run, client wall time: {whole}.", ""]
    if errors:
        parts += ["Client-side errors (the verdict is the server's; what the client raised):", ""]
        for agent, errs in errors.items():
            shown = ", ".join(f"{c}: {one_line(e, 80)}" for c, e in list(errs.items())[:10])
            more = f" (+{len(errs) - 10} more)" if len(errs) > 10 else ""
            parts.append(f"- {agent}: {len(errs)} cases — {shown}{more}")
        parts.append("")
    parts.append(f"<!-- {marker(args)}:end -->")
    return "\n".join(parts)


def marker(args: argparse.Namespace) -> str:
    name = "autobahn-" + set_name(args)
    return f"{name}-{args.label}" if args.label else name


def set_name(args: argparse.Namespace) -> str:
    if args.cases:
        return "custom"
    return "deflate" if args.compression else "off"


def write_results(text: str, name: str) -> None:
    """Replace this set's marked section, or add it after the last Autobahn section (or at the
    end of the file)."""
    old = RESULTS.read_text() if RESULTS.exists() else "# wschan benchmarks\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start in old and end in old:
        before, rest = old.split(start, 1)
        new = before + text + rest.split(end, 1)[1]
    else:
        last = old.rfind("<!-- autobahn-")
        if last >= 0 and ":end -->" in old[last:]:
            cut = old.index(":end -->", last) + len(":end -->")
            new = f"{old[:cut]}\n\n{text}{old[cut:]}"
        else:
            new = f"{old.rstrip()}\n\n{text}\n"
    RESULTS.write_text(new)


def code_version(tested: dict[str, str]) -> str:
    """The commit of the checkout the wschan client imported, and whether it was dirty."""
    module = tested.get("wschan_cli", "")
    if not module.endswith("__init__.py"):
        return module or "unknown"
    root = Path(module).parent.parent

    def git(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(root), *argv], capture_output=True, text=True)

    head = git("log", "-1", "--format=%h (%s)")
    if head.returncode != 0:
        return f"`{root}` (not a git checkout)"
    dirty = git("diff", "--quiet", "HEAD", "--", "wschan_cli").returncode == 1
    branch = git("rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    core = git("log", "-1", "--format=%h", "--", "wschan_cli").stdout.strip()
    note = " + uncommitted changes in wschan_cli/" if dirty else ""
    return (
        f"commit {head.stdout.strip()} on `{branch}` (wschan_cli/ as of {core}), "
        f"imported from `{root}`{note}"
    )


# --------------------------------------------------------------------------- one case, in detail

OPCODES = {0: "CONT", 1: "TEXT", 2: "BINARY", 8: "CLOSE", 9: "PING", 10: "PONG"}
MARKS = {
    "CT": "server waits {1}s",
    "CTE": "server goes on",
    "KL": "server will drop TCP in {1}s",
    "KLE": "server drops TCP",
    "TI": "server will send Close in {1}s",
    "TIE": "server sends Close",
}


def wire_lines(wirelog: list[list[Any]]) -> list[str]:
    """The frames of a case's wire log, one line each (the raw octets are left out, as is the
    HTTP upgrade)."""
    lines = []
    for entry in wirelog:
        kind = entry[0]
        if kind in ("TF", "RF"):
            (size, payload), opcode, fin, rsv = entry[1], entry[2], entry[3], entry[4]
            who = "server ->" if kind == "TF" else "<- client"
            name = OPCODES.get(opcode, f"opcode {opcode}")
            flags = f" rsv={rsv}" if rsv else ""
            if opcode == 8 and payload.startswith("0x") and size >= 2:
                raw = bytes.fromhex(payload[2:])  # a binary payload is logged as hex
                reason = raw[2:].decode(errors="replace")
                payload = f"code {int.from_bytes(raw[:2], 'big')} {reason}".strip()
            shown = payload if len(payload) <= 60 else payload[:57] + "..."
            lines.append(f"  {who} {name} fin={int(bool(fin))}{flags} len={size} {shown!r}")
        elif kind in MARKS:
            lines.append("  -- " + MARKS[kind].format(*entry))
    return lines


def show(reports: Path, case_ids: list[str]) -> str:
    index = json.loads((reports / "index.json").read_text())
    out = []
    for case_id in case_ids:
        for agent in sorted(index):
            verdict = index[agent].get(case_id)
            if verdict is None:
                continue
            case = json.loads((reports / verdict["reportfile"]).read_text())
            out.append(
                f"== {case_id} {agent}: {case['behavior']} / {case['behaviorClose']}, "
                f"{case['duration']} ms"
            )
            out.append(f"  case: {one_line(case['description'], 400)}")
            out.append(f"  expected: {one_line(case['expectation'], 400)}")
            out.append(f"  result: {one_line(case['result'], 400)}")
            out.append(f"  close: {one_line(case['resultClose'], 400)}")
            out.append(f"  expected events: {one_line(case['expected'], 400)}")
            out.append(f"  received events: {one_line(case['received'], 400)}")
            out.append(
                f"  close codes: client sent {case['remoteCloseCode']} "
                f"({one_line(case['remoteCloseReason'], 80)!r}), server sent "
                f"{case['localCloseCode']}; clean={case['wasClean']}, "
                f"TCP dropped by {'server' if case['droppedByMe'] else 'client'}"
            )
            out += wire_lines(case["wirelog"])
    return "\n".join(out)


def latest_reports(cache: Path) -> Path:
    runs = sorted((cache / "runs").glob("*/reports/clients/index.json"), key=os.path.getmtime)
    if not runs:
        sys.exit(f"no reports under {cache / 'runs'}: run the suite first")
    return runs[-1].parent


# --------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> Outcome:
    cache = Path(args.cache).expanduser()
    site = ensure_suite(args.python2, cache)
    if args.cases:
        cases = [c.strip() for c in args.cases.split(",") if c.strip()]
        title = f"{args.cases}, compression {'on' if args.compression else 'off'}"
    else:
        cases, title = SETS[set_name(args)]
    workdir = cache / "runs" / f"{set_name(args)}-{time.strftime('%Y%m%d-%H%M%S')}"
    workdir.mkdir(parents=True)
    server = FuzzingServer(args.python2, site, workdir, cases)
    try:
        server.wait_listening()
        ids = asyncio.run(case_ids(server.url))
        print(f"{len(ids)} cases, server {server.url}, reports in {workdir}", file=sys.stderr)
        runs = run_clients(args, server.url, ids)
        asyncio.run(update_reports(server.url, AGENTS[0]))  # reports for every agent
    finally:
        server.stop()
    reports = workdir / "reports" / "clients"
    index = json.loads((reports / "index.json").read_text())
    return Outcome(
        title,
        args.compression,
        sorted(ids, key=case_key),
        reports,
        index,
        runs,
        code_version(runs["wschan"].tested),
    )


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: server and clients stop


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--compression",
        action="store_true",
        help="run 12.* and 13.* with permessage-deflate on for both clients "
        "(default: all cases, compression off)",
    )
    parser.add_argument("--cases", help="comma-separated case patterns, e.g. '5.*,7.1.5'")
    parser.add_argument("--wschan", help="a wschan checkout to test: put first on PYTHONPATH")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the clients")
    parser.add_argument("--python2", default=default_python2(), help="a Python 2.7 for the suite")
    parser.add_argument(
        "--cache", default="~/.cache/wschan-autobahn", help="where the suite and reports go"
    )
    parser.add_argument("--case-timeout", type=float, default=120.0, help="per case (s)")
    parser.add_argument(
        "--websockets-max-fragments",
        type=int,
        default=2**24,
        help="frames per message websockets' client accepts (default 2**24, as many as "
        "16 MiB can hold; 0 keeps websockets' own default of 4096, which fails 9.3.1-3 and "
        "9.4.1-3 with 1009)",
    )
    parser.add_argument("--label", help="name this run's section (e.g. another branch)")
    parser.add_argument("--no-write", action="store_true", help="do not touch bench/RESULTS.md")
    parser.add_argument(
        "--show",
        metavar="CASES",
        help="print what happened in these cases (comma-separated ids) in the last run's "
        "reports (or --reports), frame by frame, instead of running",
    )
    parser.add_argument("--reports", help="with --show: a reports/clients directory")
    args = parser.parse_args()
    if args.show:
        reports = Path(args.reports) if args.reports else None
        reports = reports or latest_reports(Path(args.cache).expanduser())
        print(show(reports, [c.strip() for c in args.show.split(",")]))
        return 0
    outcome = run(args)
    text = section(outcome, args)
    print(text)
    print(f"\nreports: {outcome.reports}", file=sys.stderr)
    if not args.no_write:
        write_results(text, marker(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
