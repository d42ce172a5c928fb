"""``wschan send``: the command line (options, help, the exit statuses it documents) and the
validation of the plan, before any connection is made; the run itself is a
:class:`~wschan_cli.sessions.send.SendSession`.

Loading this module (for ``wschan send --help``) imports click and the option definitions only;
asyncio, the channel core (websockets) and the output writers are imported when the command runs.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

import click

from wschan_cli.channel.sendable import SENDABLE_CLOSE_CODES
from wschan_cli.options import (
    Seconds,
    check_url,
    connection_options,
    output_format,
)

if TYPE_CHECKING:
    from wschan_cli.sessions.send_plan import Plan
    from wschan_cli.settings import ConnectionSettings

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
    from wschan_cli.render.closecodes import close_frame_problem

    if problem := close_frame_problem(code, reason):
        which, why = problem
        raise click.BadParameter(why, param_hint=f"'--close-{which}'")


def make_plan(ctx: click.Context, url: str, messages: tuple[str, ...], **o: Any) -> Plan:
    """Validate the command line (click.UsageError / BadParameter: exit 2, nothing sent)."""
    # Here, not at the top: `wschan send --help` needs none of them.
    import dataclasses

    from wschan_cli.sessions.payload import InputError, check_file, decode_message
    from wschan_cli.sessions.send_plan import Plan

    check_url(url)
    connection: ConnectionSettings = dataclasses.replace(o["connection"], target=url)
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
    type=Seconds(min=0),
    metavar="SECONDS",
    help="After sending, wait until SECONDS pass without a reply (see below).",
)
@click.option(
    "--timeout",
    type=Seconds(min=0, min_open=True),
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
    from wschan_cli.sessions.send import run_send

    plan = make_plan(ctx, url, messages, **options)
    ctx.exit(run_send(plan))
