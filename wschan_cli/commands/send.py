"""``wschan send``: send messages, wait for the replies asked for, close cleanly, and exit with a
status that says how it went.

Loading this module (for ``wschan send --help``) imports click and the option definitions only;
asyncio, the channel core (websockets) and the output writers are imported when the command runs.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from wschan_cli.options import ConnectionSettings, check_url, connection_options, output_format
from wschan_cli.render.closecodes import (
    SENDABLE_CLOSE_CODES,
    close_code_name,
    close_frame_problem,
    describe_close,
)
from wschan_cli.sessions.payload import InputError, check_file, decode_message

if TYPE_CHECKING:
    import asyncio

    from wschan_cli.channel import Channel, CloseInfo, Message
    from wschan_cli.render.diagnostics import Diagnostics
    from wschan_cli.render.replies import ReplyWriter
    from wschan_cli.sessions.reader import InputReader

from wschan_cli.exitcodes import ExitStatus, status_for
from wschan_cli.runner import print_traceback, run_main

#: Default rule: seconds without any reply after which wschan stops waiting for the replies
#: still missing (the count rule usually ends the wait long before).
DEFAULT_IDLE = 2.0

#: The replies a script keeps for its next "until": the last ones, at most this many and this
#: many characters (a binary reply is kept as its hex); older ones drop off.
UNTIL_WINDOW = 1024
UNTIL_WINDOW_CHARS = 16 << 20

#: Seconds an abrupt close may take after --timeout expired (a write may hold the token, D8);
#: then wschan exits anyway and leaves the socket to the kernel.
ABORT_GRACE = 0.1

WAIT_RULE = """\
After the last message is sent, wschan waits, then closes:

\b
  default       until as many replies have arrived as messages were sent
                (replies received while sending count), or 2 seconds
                pass with no reply, or the server closes; every reply
                that arrives before the close is printed
  --expect N    until N replies have arrived in all (only N are printed)
  --until RE    until a reply matches the regular expression RE (Python
                syntax, searched anywhere; a binary reply is matched as
                its hex); it is the last one printed
  --wait S      until S seconds pass with no reply (S=0: close at once);
                with --expect or --until, S seconds of silence before
                the goal is a failure (exit 124)

A reply counts from the end of the handshake. Piping N lines into an
echo server therefore always prints its N replies, in order. --timeout
bounds the whole run, start-up, connecting and closing included (exit
124). When the goal is met but the server closed with a code of its
own (e.g. its Close crossed ours), exit is 0 and a note says how.
"""

EPILOG = f"""\
{WAIT_RULE}
\b
Input:
  Each MESSAGE argument is one message; "-" (or no MESSAGE and no
  --file) reads stdin, one message per line (a trailing CR is removed),
  or per --delimiter / -0 (NUL) separator. --file PATH sends the whole
  file as one message ("--file -": all of stdin). Arguments go first, in
  order, then files. Stdin is read while the connection opens, so
  nothing piped or typed before the handshake completes is lost.
  Arguments and files are checked before connecting: a bad one (not
  UTF-8, bad --hex or --base64, unreadable file) exits 2 with nothing
  sent; a bad stdin message stops the run there (exit 2), after the
  messages before it were sent.
  Memory stays bounded: a file, all of stdin and a stdin message over
  1 MiB are sent as one fragmented message while read (even endless
  /dev/zero, until --timeout). A bad byte found in such a message after
  its first frames went out cuts it off (close 1011) and exits 2.

\b
Script (--input jsonl): stdin is one JSON object per line, one action
  each, carried out in order as read (blank lines are skipped):
    {{"text": "..."}}       send a text message
    {{"binary": "00ff"}}    send a binary message given in hex
    {{"base64": "AP8="}}    send a binary message given in base64
    {{"ping": "..."}}       send a Ping (at most 125 bytes of UTF-8), go
                          on when its Pong is back (--ping-timeout)
    {{"sleep": 0.5}}        pause, in seconds (bounded by --timeout)
    {{"expect": N}}         wait for N replies
    {{"until": "REGEX"}}    wait for a reply matching REGEX (as --until)
    {{"close": 1000, "reason": "..."}}  close (code and reason as for
                          --close-code); the rest of stdin is not read
  expect and until look at the replies after the one that met the
  previous expect/until (from the handshake for the first), including
  those that came before the line was read (until: the last 1024, 16
  MiB at most); they wait as --expect and --until do: --wait seconds
  of silence before the goal is a failure (124), --timeout bounds the
  run. At the end of the script (no close line) wschan waits as above
  (--expect counting from the last expect/until met) and closes with
  --close-code.
  A bad line (not JSON, not an object, an unknown key, a wrong type,
  two actions, a bad value, over 1 MiB) stops the run: "wschan: line N:
  ..." and exit 2, after the lines before it went out. No MESSAGE,
  --file or input encoding option with --input jsonl.

\b
Output (stdout): each reply as it arrives; text as is (control
  characters escaped on a terminal), binary as hex. --raw writes text
  unescaped and binary as bytes (no newline after binary). --json
  writes JSON Lines: {{"t", "dir": "in", "type": "text"|"binary",
  "data"}} per reply (binary data in hex), then {{"t", "type": "close",
  "code", "reason", "by", "clean"}}. Diagnostics go to stderr.

\b
Exit status:
  0    done: every message sent and the connection closed normally
       (1000/1001, or the Close we sent was answered), or every
       expected reply (--expect/--until) received
  1    other error (e.g. the server closed normally before all messages
       were sent or before the expected replies)
  2    usage error, bad input (malformed URL, bad header, close code,
       a message that is not UTF-8...)
  3    could not connect: DNS, refused, TLS, proxy, open timeout
  4    handshake rejected (HTTP status other than 101, or no valid 101)
  5    closed abnormally: close code other than 1000/1001, or no Close
       frame (dropped, our Close unanswered within --close-timeout, a
       write stuck longer than --write-timeout)
  124  --timeout expired, or --wait silence before the goal
  130  interrupted (Ctrl-C; a second Ctrl-C quits at once)

\b
Examples:
  wschan send ws://127.0.0.1:8765/ hello
  seq 1000 | wschan send ws://127.0.0.1:8765/ --json
  wschan send wss://example.test/api '{{"op":"ping"}}' --until pong --pretty
  wschan send ws://127.0.0.1:8765/ --binary --hex 0001ff --expect 1
  printf '%s\\n' '{{"text":"login"}}' '{{"expect":1}}' '{{"close":1000}}' |
    wschan send ws://127.0.0.1:8765/ --input jsonl --json
"""


# ---------------------------------------------------------------------- the plan


@dataclass
class Plan:
    """Everything the run needs, validated before any connection is made."""

    url: str
    connection: ConnectionSettings
    # ("message", payload) | ("stdin", None) | ("stdin-whole", None) | ("file", path)
    sources: list[tuple[str, Any]]
    binary: bool
    encoding: str  # "utf-8", "hex" or "base64"
    delimiter: bytes
    expect: int | None
    until: re.Pattern[str] | None
    wait: float | None
    timeout: float | None
    close_code: int
    close_reason: str
    abrupt: bool
    fmt: str
    timestamps: bool
    pretty: bool
    script: bool = False  # --input jsonl: stdin is a script of actions (sessions/script.py)
    started: float = field(default_factory=time.monotonic)  # --timeout counts from here

    @property
    def reads_stdin(self) -> bool:
        return self.script or any(kind.startswith("stdin") for kind, _ in self.sources)

    @property
    def has_goal(self) -> bool:
        return self.expect is not None or self.until is not None

    def final_goal(self) -> Goal | None:
        """What --expect / --until wait for after the last message (None: no goal)."""
        return Goal(expect=self.expect, until=self.until) if self.has_goal else None


@dataclass
class Goal:
    """What a wait waits for: ``expect`` replies, or one reply matching ``until``, among the
    replies after the first ``base`` (0 for --expect and --until: from the handshake; in a
    script, those after the reply that met its previous wait). ``line`` is the script line that
    asked (0: the command line); ``met_by`` the number of the reply that met it."""

    expect: int | None = None
    until: re.Pattern[str] | None = None
    line: int = 0
    base: int = 0
    met_by: int = 0

    @property
    def done(self) -> bool:
        return self.met_by > 0

    def check(self, number: int, text: str | None) -> bool:
        """Whether the goal is met, reply ``number`` (from the handshake, 1 first) having
        arrived; ``text`` is that reply as --until matches it (None: count only)."""
        if self.done or number <= self.base:
            return self.done
        if self.expect is not None and number - self.base >= self.expect:
            self.met_by = self.base + self.expect  # the replies after it count for the next wait
        elif self.until is not None and text is not None and self.until.search(text):
            self.met_by = number
        return self.done

    def progress(self, replies: int) -> str:
        got = replies - self.base
        if self.expect is not None:
            line = f" (line {self.line})" if self.line else ""
            return f"after {got} of {self.expect} expected replies{line}"
        assert self.until is not None
        pattern = self.until.pattern
        what = f'"until" {pattern!r} of line {self.line}' if self.line else f"--until {pattern!r}"
        return f"before a reply matched {what} ({got} received)"


@dataclass
class RecentReplies:
    """The last replies as (number, text), within UNTIL_WINDOW and UNTIL_WINDOW_CHARS."""

    items: deque[tuple[int, str]] = field(default_factory=deque)
    chars: int = 0

    def add(self, number: int, text: str) -> None:
        self.items.append((number, text))
        self.chars += len(text)
        while len(self.items) > UNTIL_WINDOW or self.chars > UNTIL_WINDOW_CHARS:
            self.chars -= len(self.items.popleft()[1])

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return iter(self.items)


def match_text(data: str | bytes) -> str:
    """What --until and "until" search: the text, or a binary reply's hex."""
    return data if isinstance(data, str) else data.hex()


def parse_delimiter(text: str) -> bytes:
    r"""``--delimiter`` value: UTF-8, with \n \r \t \0 \\ and \xHH escapes."""

    def unescape(match: re.Match[str]) -> str:
        token = match.group()
        simple = {"\\n": "\n", "\\r": "\r", "\\t": "\t", "\\0": "\0", "\\\\": "\\"}
        if token in simple:
            return simple[token]
        return chr(int(token[2:], 16))

    value = re.sub(r"\\x[0-9a-fA-F]{2}|\\[nrt0\\]", unescape, text)
    if not value:
        raise click.BadParameter("the delimiter is empty", param_hint="'--delimiter'")
    return value.encode("utf-8", "surrogateescape")


def check_close(code: int, reason: str) -> None:
    if problem := close_frame_problem(code, reason):
        which, why = problem
        raise click.BadParameter(why, param_hint=f"'--close-{which}'")


def make_plan(ctx: click.Context, url: str, messages: tuple[str, ...], **o: Any) -> Plan:
    """Validate the command line (click.UsageError / BadParameter: exit 2, nothing sent)."""
    connection: ConnectionSettings = o["connection"]
    check_url(url)
    if o["null"] and o["delimiter"] is not None:
        raise click.UsageError("-0 and --delimiter both set the separator: give one")
    delimiter = b"\0" if o["null"] else parse_delimiter(o["delimiter"] or "\n")
    if o["input_hex"] and o["input_base64"]:
        raise click.UsageError("--hex and --base64 are two input encodings: give one")
    encoding = "hex" if o["input_hex"] else "base64" if o["input_base64"] else "utf-8"
    binary = o["binary"] or encoding != "utf-8"

    explicit = {
        name
        for name in ("close_code", "close_reason")
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    }
    if o["abrupt"] and explicit:
        raise click.UsageError("--abrupt sends no Close frame: drop --close-code/--close-reason")
    check_close(o["close_code"], o["close_reason"])

    fmt = output_format(
        json_out=o["json_out"], raw=o["raw"], pretty=o["pretty"], timestamps=o["timestamps"]
    )

    until = None
    if o["until"] is not None:
        try:
            until = re.compile(o["until"])
        except re.error as exc:
            raise click.BadParameter(
                f"invalid regular expression: {exc}", param_hint="'--until'"
            ) from None

    sources: list[tuple[str, Any]] = []
    files: tuple[str, ...] = o["files"]
    script = o["input_format"] == "jsonl"
    if script:
        # The script says what each message is: nothing else may add messages or encode them.
        given = [
            name
            for name, value in (
                ("MESSAGE", messages),
                ("--file", files),
                ("--binary", o["binary"]),
                ("--hex", o["input_hex"]),
                ("--base64", o["input_base64"]),
                ("--null", o["null"]),
                ("--delimiter", o["delimiter"] is not None),
            )
            if value
        ]
        if given:
            raise click.UsageError(
                f"--input jsonl reads the whole script from stdin: drop {', '.join(given)}"
            )
    if messages.count("-") > 1:
        raise click.UsageError("stdin ('-') can be read only once")
    if "-" in messages and "-" in files:
        raise click.UsageError("stdin is given both as '-' and as '--file -': give one")
    if files.count("-") > 1:
        raise click.UsageError("stdin ('--file -') can be read only once")
    for n, text in enumerate(messages, 1):
        if text == "-":
            sources.append(("stdin", None))
            continue
        raw = os.fsencode(text)
        try:
            payload = decode_message(raw, binary=binary, encoding=encoding, where=f"message {n}")
        except InputError as exc:
            raise click.BadParameter(str(exc), param_hint="'MESSAGE'") from None
        sources.append(("message", payload))
    for path in files:
        if path == "-":
            sources.append(("stdin-whole", None))
            continue
        try:
            check_file(path, binary=binary, encoding=encoding)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise click.BadParameter(
                f"cannot read {path!r}: {reason}", param_hint="'--file'"
            ) from None
        except InputError as exc:
            raise click.BadParameter(str(exc), param_hint="'--file'") from None
        sources.append(("file", path))
    if not messages and not files and not script:
        sources.append(("stdin", None))

    return Plan(
        url=url,
        connection=connection,
        sources=sources,
        binary=binary,
        encoding=encoding,
        delimiter=delimiter,
        expect=o["expect"],
        until=until,
        wait=o["wait"],
        timeout=o["timeout"],
        close_code=o["close_code"],
        close_reason=o["close_reason"],
        abrupt=o["abrupt"],
        fmt=fmt,
        timestamps=o["timestamps"],
        pretty=o["pretty"],
        script=script,
    )


# ---------------------------------------------------------------------- the command


@click.command(
    "send",
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.argument("url")
@click.argument("messages", nargs=-1, metavar="[MESSAGE]...")
@click.option(
    "--file",
    "files",
    multiple=True,
    metavar="PATH",
    help="Send the whole file as one message (repeatable; '-' is all of stdin).",
)
@click.option(
    "--delimiter",
    metavar="SEP",
    help=r"Split stdin into messages at SEP instead of newlines (escapes \n \r \t \0 \xHH).",
)
@click.option("-0", "--null", is_flag=True, help="Split stdin at NUL bytes (like find -print0).")
@click.option(
    "--input",
    "input_format",
    type=click.Choice(["lines", "jsonl"]),
    default="lines",
    show_default=True,
    help="stdin is messages (lines) or a script of JSON Lines actions (jsonl, see below).",
)
@click.option(
    "--binary",
    is_flag=True,
    help="Send binary frames (the input bytes as they are, or decoded by --hex/--base64).",
)
@click.option(
    "--hex", "input_hex", is_flag=True, help="Input messages are hex; send the bytes (binary)."
)
@click.option(
    "--base64",
    "input_base64",
    is_flag=True,
    help="Input messages are base64; send the bytes (binary).",
)
@click.option(
    "--expect",
    type=click.IntRange(min=1),
    metavar="N",
    help="After sending, wait for N replies in all (see below).",
)
@click.option(
    "--until", metavar="REGEX", help="After sending, wait for a reply matching REGEX (see below)."
)
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="After sending, wait until SECONDS pass without a reply (see below).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Bound the whole run; when it expires, abort and exit 124.",
)
@click.option(
    "--close-code",
    type=int,
    default=1000,
    show_default=True,
    metavar="CODE",
    help=f"Close code sent at the end ({SENDABLE_CLOSE_CODES}).",
)
@click.option(
    "--close-reason",
    default="",
    metavar="TEXT",
    help="Close reason sent at the end (at most 123 bytes of UTF-8).",
)
@click.option(
    "--abrupt",
    is_flag=True,
    help="End the connection without a Close frame (as the C++ deinit does).",
)
@click.option("--json", "json_out", is_flag=True, help="Write replies and the close as JSON Lines.")
@click.option(
    "--timestamps", is_flag=True, help="Prefix each reply with its arrival time (ISO 8601, UTC)."
)
@click.option(
    "--raw", is_flag=True, help="Write payloads untouched: text unescaped, binary as bytes."
)
@click.option(
    "--pretty",
    is_flag=True,
    help="Indent replies that are JSON (highlighted on a colour terminal).",
)
@connection_options
@click.pass_context
def send(ctx: click.Context, url: str, messages: tuple[str, ...], **options: Any) -> None:
    """Send messages to URL, wait for the replies asked for, close cleanly.

    URL is ws://HOST[:PORT]/PATH or wss://... Replies go to stdout,
    diagnostics to stderr; the exit status says how the connection ended.
    """
    plan = make_plan(ctx, url, messages, **options)
    ctx.exit(run(plan))


# ---------------------------------------------------------------------- running


@dataclass
class RunState:
    """What happened so far; the event loop is the only writer."""

    sent: int = 0
    replies: int = 0
    all_sent: bool = False
    goal_done: bool = False
    close: CloseInfo | None = None
    closed_by_deinit: bool = False  # the connection was released by our deinit
    deinit_sent_close: bool = False  # and deinit's own Close frame went out first
    last_activity: float = 0.0
    interrupted: bool = False
    timed_out: bool = False
    silent_too_long: bool = False
    broken_pipe: bool = False
    flush_pending: bool = False
    input_error: str | None = None
    send_error: Exception | None = None
    goal: Goal | None = None  # what the current wait waits for
    wait_base: int = 0  # the reply that met the script's last wait
    window: RecentReplies | None = None  # --input jsonl: for its next "until"
    close_code: int = 1000  # what the Close frame we send carries (--close-code or "close")
    close_reason: str = ""
    script_closed: bool = False  # a script's "close" line ended the run
    changed: asyncio.Event | None = None
    closed: asyncio.Event | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def run(plan: Plan) -> int:
    """Run the plan; returns the exit status. Imports the heavy parts."""

    from wschan_cli.render.color import color_enabled, is_tty
    from wschan_cli.render.output import buffered_stdout
    from wschan_cli.render.replies import ReplyWriter

    conn = plan.connection
    diag = conn.diagnostics(sys.stderr, json_lines=plan.fmt == "json")
    stdout_tty = is_tty(sys.stdout)
    writer = ReplyWriter(
        buffered_stdout(),
        fmt=plan.fmt,
        timestamps=plan.timestamps,
        pretty=plan.pretty,
        escape=stdout_tty,
        color=plan.pretty and color_enabled(conn.color, sys.stdout),
    )
    return run_main(
        _main(plan, diag, writer), debug=conn.debug, error=diag.error, mask=diag.secrets.text
    )


async def _main(plan: Plan, diag: Diagnostics, writer: ReplyWriter) -> int:
    import asyncio
    import time

    from wschan_cli.channel import (
        Channel,
        ChannelClosed,
        ChannelError,
        Event,
        HandshakeError,
        HandshakeRejected,
        OpenTimeout,
        What,
        WriteTimeout,
    )
    from wschan_cli.sessions.interrupt import CtrlC

    loop = asyncio.get_running_loop()
    conn = plan.connection
    diag.t0 = loop.time()
    state = RunState(
        changed=asyncio.Event(),
        closed=asyncio.Event(),
        close_code=plan.close_code,
        close_reason=plan.close_reason,
    )
    if plan.script:
        state.window = RecentReplies()
    else:
        state.goal = plan.final_goal()  # replies received while sending count
    changed, closed = state.changed, state.closed
    assert changed is not None and closed is not None
    # loop.time() is time.monotonic(): the bound covers the start-up as well.
    deadline = plan.started + plan.timeout if plan.timeout is not None else None

    # Stdin is read from now on, while the connection opens.
    stdin: InputReader | None = None
    if plan.reads_stdin:
        from wschan_cli.sessions.reader import stdin_reader

        whole = any(kind == "stdin-whole" for kind, _ in plan.sources)
        stdin = stdin_reader(plan.delimiter, whole=whole)
        stdin.start()
        if sys.stdin.isatty() and sys.stderr.isatty():
            what = "a JSON Lines script" if plan.script else "messages"
            diag.note(f"reading {what} from the terminal, one per line; end with Ctrl-D")

    def flush() -> None:
        state.flush_pending = False
        if state.broken_pipe:
            return
        try:
            writer.flush()
        except (BrokenPipeError, ValueError):
            state.broken_pipe = True
            changed.set()

    def on_message(message: Message) -> None:
        if state.goal_done or state.broken_pipe:
            return
        try:
            writer.message(message.type, message.data, time.time())
        except (BrokenPipeError, ValueError):
            state.broken_pipe = True
            changed.set()
            return
        if not state.flush_pending:
            state.flush_pending = True
            loop.call_soon(flush)
        state.replies += 1
        state.last_activity = loop.time()
        goal = state.goal
        text = None
        if state.window is not None or (goal is not None and goal.until is not None):
            text = match_text(message.data)
        if state.window is not None:
            assert text is not None
            state.window.add(state.replies, text)
        if goal is not None and goal.check(state.replies, text) and not goal.line:
            state.goal_done = True  # --expect/--until met: the run ends, nothing more shown
        changed.set()

    def on_close(info: CloseInfo) -> None:
        if state.close is None:
            state.close = info
        closed.set()
        changed.set()

    def watch_deinit(event: Event) -> None:
        # Who ended the connection, read from the events (on_close itself may be delivered
        # later than the release, when the party that released the token leaves its step).
        if event.party.kind != "deinit":
            return
        if event.what is What.FRAME_OUT and event.detail.get("opcode") == "close":
            state.deinit_sent_close = True
        elif event.what is What.CLOSED:
            state.closed_by_deinit = True

    # The core's own open timeout, capped by --timeout, so a stalled handshake ends cleanly.
    open_timeout = conn.open_timeout
    if plan.timeout is not None and (open_timeout is None or plan.timeout < open_timeout):
        open_timeout = plan.timeout
    ch = Channel(
        plan.url,
        options=conn.channel_options(open_timeout=open_timeout),
        process=on_message,
        on_close=on_close,
    )
    if conn.verbose or conn.include:
        ch.subscribe(diag)
        from urllib.parse import urlsplit

        parts = urlsplit(plan.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        shown = [("Host", parts.netloc.rpartition("@")[2]), *conn.request_headers()]
        if parts.username is not None:
            shown.append(("Authorization", "Basic (user information of the URL)"))
        diag.request(target, shown)

    task = asyncio.current_task()
    assert task is not None

    def stop() -> None:
        state.interrupted = True
        task.cancel()

    CtrlC(stop, error=diag.error, last_words=writer.flush).install()

    exit_code: int | None = None
    message: str | None = None
    try:
        try:
            async with asyncio.timeout_at(deadline):
                await _work(ch, plan, state, stdin)
        except (TimeoutError, InputError, ChannelError):
            if conn.debug:  # the one line still follows; --debug shows where it came from
                print_traceback(diag.secrets.text)
            raise  # (anything else: run_main prints its traceback, once)
    except asyncio.CancelledError:
        if not state.interrupted:
            raise
        task.uncancel()
    except TimeoutError:
        state.timed_out = True
    except InputError as exc:
        state.input_error = str(exc)
    except OpenTimeout as exc:
        if plan.timeout is not None and open_timeout == plan.timeout:
            state.timed_out = True
        else:
            exit_code, message = ExitStatus.CONNECT, f"{exc} (raise --open-timeout)"
    except (ChannelClosed, WriteTimeout) as exc:
        state.send_error = exc  # the close info says the rest
    except ChannelError as exc:  # ConnectError 3, HandshakeError 4, others 1 (exitcodes)
        if isinstance(exc, HandshakeRejected):
            diag.response(exc.status, exc.headers)
        handshake = "handshake failed: " if isinstance(exc, HandshakeError) else ""
        exit_code, message = status_for(exc), f"{handshake}{exc}"

    # Close: gracefully unless --abrupt or the run timed out.
    ch.subscribe(watch_deinit)
    # A script's "close" line asks for a Close frame, --abrupt or not.
    abrupt = (plan.abrupt and not state.script_closed) or state.timed_out
    close_code, close_reason = state.close_code, state.close_reason
    if state.broken_pipe:
        close_code, close_reason = 1001, "stdout closed"
    closing = asyncio.ensure_future(ch.deinit(close_code, close_reason, abrupt=abrupt))
    limit = None
    if state.timed_out:
        limit = ABORT_GRACE  # an abrupt close is immediate, unless a write holds the token
    elif deadline is not None:
        limit = max(deadline - loop.time(), 0.0)
    try:
        done, _ = await asyncio.wait({closing}, timeout=limit)
    except asyncio.CancelledError:
        done = set()  # a Ctrl-C during the close
        task.uncancel()
    if closing not in done:
        if state.interrupted:
            code, message = ExitStatus.INTERRUPTED, "interrupted while closing"
        elif state.timed_out:
            code, message = _outcome(plan, state)
        else:
            code, message = (
                ExitStatus.TIMEOUT,
                f"timed out after {plan.timeout:g}s (--timeout) while closing",
            )
        assert message is not None
        diag.error(message)
        _final_flush(writer, state)
        os._exit(code)  # the close is stuck in the network: leave it to the kernel

    if state.close is not None and exit_code is None:
        info = state.close
        writer.close(
            code=info.code, reason=info.reason, by=info.by, clean=info.clean, when=time.time()
        )
    _final_flush(writer, state)

    if exit_code is not None:
        assert message is not None
        diag.error(message)
        return exit_code
    code, message = _outcome(plan, state)
    if code != ExitStatus.OK and message:
        diag.error(message)
    elif code == ExitStatus.OK and (note := _server_close_note(state)):
        diag.note(note)
    return code


def _final_flush(writer: ReplyWriter, state: RunState) -> None:
    if state.broken_pipe:
        return
    try:
        writer.flush()
    except (BrokenPipeError, ValueError):
        state.broken_pipe = True
    if state.broken_pipe:
        # Keep Python from complaining again when it flushes stdout at exit.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass


async def _work(ch: Channel, plan: Plan, state: RunState, stdin: InputReader | None) -> None:
    """Open, send every message in order, then wait as the plan says."""
    import asyncio

    from wschan_cli.sessions.outgoing import Outbox, Streamed

    loop = asyncio.get_running_loop()
    closed = state.closed
    assert closed is not None
    await ch.open()
    state.last_activity = loop.time()
    if plan.script:
        assert stdin is not None
        await _run_script(ch, plan, state, stdin)
        return
    outbox = Outbox(plan.sources, plan.binary, plan.encoding, stdin, ended=closed)
    async for message in outbox:
        if state.broken_pipe:
            return
        if isinstance(message, Streamed):
            await ch.send_stream(message.chunks, text=message.text)
        else:
            await ch.send(message)
        state.sent += 1
        state.last_activity = loop.time()
    state.all_sent = True
    await _wait_for_replies(plan, state)


async def _run_script(ch: Channel, plan: Plan, state: RunState, stdin: InputReader) -> None:
    """Carry out a --input jsonl script, step by step, each one after the one before it."""
    import asyncio
    import contextlib

    from wschan_cli.sessions.script import Close, Ping, Send, Sleep, Wait, script_steps

    loop = asyncio.get_running_loop()
    closed = state.closed
    assert closed is not None
    async for step in script_steps(stdin, closed):
        if state.broken_pipe:
            return
        if isinstance(step, Send):
            await ch.send(step.data)
            state.sent += 1
        elif isinstance(step, Ping):
            await ch.ping(step.payload)  # on once its Pong is back (bounded: --ping-timeout)
        elif isinstance(step, Sleep):
            with contextlib.suppress(TimeoutError):  # bounded by --timeout as a whole
                async with asyncio.timeout(step.seconds):
                    await closed.wait()
        elif isinstance(step, Wait):
            goal = Goal(expect=step.expect, until=step.until, line=step.line)
            if not await _wait_for(goal, plan, state):
                return
        else:
            assert isinstance(step, Close)
            state.close_code, state.close_reason = step.code, step.reason
            state.script_closed = state.all_sent = True
            return  # the rest of the input is not read
        state.last_activity = loop.time()
    if closed.is_set():
        return  # the connection ended before the end of the script
    state.all_sent = True
    final = plan.final_goal()
    if final is None:
        await _wait_for_replies(plan, state)
    elif await _wait_for(final, plan, state):
        state.goal_done = True


async def _wait_for(goal: Goal, plan: Plan, state: RunState) -> bool:
    """A script's wait, over the replies after the one that met its previous wait (those that
    arrived before this line was reached included). True once met."""
    assert state.window is not None
    goal.base = state.wait_base
    for number, text in state.window:
        if goal.check(number, text):
            break
    goal.check(state.replies, None)  # expect: older replies than the window hold count too
    state.goal = goal
    await _wait_for_replies(plan, state)
    if not goal.done:
        return False
    state.goal = None
    state.wait_base = goal.met_by
    return True


async def _wait_for_replies(plan: Plan, state: RunState) -> None:
    """Until ``state.goal`` is met; without one, by the default rule or --wait (WAIT_RULE)."""
    import asyncio

    loop = asyncio.get_running_loop()
    changed = state.changed
    assert changed is not None
    goal = state.goal
    if plan.wait is not None:
        silence: float | None = plan.wait
    else:
        silence = None if goal is not None else DEFAULT_IDLE
    while True:
        changed.clear()
        if state.close is not None or state.broken_pipe or (goal is not None and goal.done):
            return
        if goal is None and plan.wait is None and state.replies >= state.sent:
            return
        if silence is None:
            await changed.wait()
            continue
        remaining = state.last_activity + silence - loop.time()
        if remaining <= 0:
            if goal is not None:
                state.silent_too_long = True
            return
        try:
            async with asyncio.timeout(remaining):
                await changed.wait()
        except TimeoutError:
            continue


def _outcome(plan: Plan, state: RunState) -> tuple[int, str | None]:
    """The exit status and its one-line message, once the connection is closed."""
    got = f"{state.replies} {'reply' if state.replies == 1 else 'replies'}"
    if state.input_error is not None:
        info = state.close
        if info is not None and info.code == 1011 and info.by == "local":
            # The bad byte was in a streamed message whose first frames were out (D12).
            cut = "the message was cut off: the connection was failed with 1011"
            return ExitStatus.USAGE, f"{state.input_error}; {cut}"
        return ExitStatus.USAGE, f"{state.input_error}; nothing after it was sent"
    if state.interrupted:
        return ExitStatus.INTERRUPTED, f"interrupted after {state.sent} sent, {got} received"
    if state.timed_out:
        return ExitStatus.TIMEOUT, (
            f"timed out after {plan.timeout:g}s (--timeout): {state.sent} sent, {got} received"
        )
    goal = state.goal
    if state.silent_too_long:
        assert goal is not None
        return (
            ExitStatus.TIMEOUT,
            f"no reply for {plan.wait:g}s (--wait): {goal.progress(state.replies)}",
        )
    if state.broken_pipe:
        return ExitStatus.ERROR, "stdout was closed (broken pipe); closed the connection with 1001"
    if state.goal_done:
        return ExitStatus.OK, None
    info = state.close
    if info is None:
        return ExitStatus.ERROR, "the connection ended without a close status"
    # Our own Close went first and the server answered it (whatever code it echoed).
    answered = state.closed_by_deinit and state.deinit_sent_close and info.code != 1006
    abrupt_ok = plan.abrupt and state.closed_by_deinit
    if not (info.clean or answered or abrupt_ok):
        conn = plan.connection
        return ExitStatus.ABNORMAL, describe_close(
            info, close_timeout=conn.close_timeout, write_timeout=conn.write_timeout
        )
    label = f"{info.code} {close_code_name(info.code)}"
    if goal is not None and not goal.done and (state.all_sent or goal.line):
        progress = goal.progress(state.replies)
        return ExitStatus.ERROR, f"the server closed the connection ({label}) {progress}"
    if not state.all_sent:
        return ExitStatus.ERROR, (
            f"the server closed the connection ({label}) before all messages were sent: "
            f"{state.sent} sent"
        )
    return ExitStatus.OK, None


def _server_close_note(state: RunState) -> str | None:
    """A run that met its goal (exit 0) still says so when the server closed with a code of
    its own, e.g. a 4001 that crossed our Close (both sides closed at once, RFC 6455 7.1.3)."""
    import dataclasses

    info = state.close
    if info is None or info.code in (1000, 1001, 1006, state.close_code):
        return None
    return describe_close(dataclasses.replace(info, by="peer"))
