"""``wschan connect``: an interactive session with the channel's state in view on a terminal,
a line bridge when stdin or stdout is not a terminal.

Loading this module (for ``wschan connect --help``) imports click and the option definitions
only; the channel, prompt_toolkit and the views are imported when the command runs.

A package because ``--exec`` is part of this command: its options and the hand-over to the
program bridge are in ``exec.py``, connect's own helper (no other command imports it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from wschan_cli.options import (
    Seconds,
    check_url,
    connection_options,
    output_format,
)

from .exec import exec_options, run_exec_if_asked

if TYPE_CHECKING:
    from wschan_cli.settings import ConnectionSettings

#: Seconds of silence (no message in or out) after the end of input before the bridge closes.
DEFAULT_BRIDGE_WAIT = 1.0
DEFAULT_RECONNECT_DELAY = 1.0
DEFAULT_RECONNECT_MAX_DELAY = 30.0
DEFAULT_RECONNECT_TRIES = 10

EPILOG = f"""\
\b
On a terminal: a prompt with line editing and persistent history
($XDG_STATE_HOME/wschan/history, or ~/.local/state/wschan/history).
Each line is one message; a paste of any size, newlines included, is
one message. Incoming messages are printed above the prompt ("<"),
sent ones are marked ">". The bottom toolbar shows the channel's state
live: established, sending (and who holds it), waiters, protocol state,
messages in and out, last ping round-trip time, reconnect status.

\b
Commands:
  /ping [TEXT]            send a Ping, print the round-trip time
  /close [CODE] [REASON]  close with a Close frame (default 1000), exit
  /binary HEX             send a binary message given in hex
  /base64 DATA            send a binary message given in base64
  /file PATH              send a file as one message (text if UTF-8)
  /pretty                 toggle JSON pretty-printing
  /deinit [--abrupt]      tear the client down (as the C++ client.deinit()),
                          showing each transition; /quit leaves afterwards
  /terminate              end the read side locally so handle_terminate()
                          runs as when the peer ends TCP (a local simulation)
  /state                  print the full channel state
  /help                   list the commands
  /quit                   close (1000) and exit; so does Ctrl-D
  //TEXT                  send "/TEXT" (a line starting with a slash)
Ctrl-C clears the line or interrupts a command that waits; a second
Ctrl-C in a row exits (130). An empty line sends nothing.

\b
Off a terminal (stdin or stdout is a pipe or a file): a bridge. Each
stdin line is a text message (not UTF-8: exit 2, as in wschan send;
over 1 MiB: streamed), each message received is a line on stdout
(binary as hex); no prompt, colour or toolbar. At end of input every
line has been sent, and the session closes (1000) once --wait seconds
(default {DEFAULT_BRIDGE_WAIT:g}) pass with no message in or out.

\b
--json (bridge and terminal): each message received, and each close,
is written as the JSON Lines of wschan send --json: {{"t", "dir": "in",
"type": "text"|"binary", "data"}} (binary data in hex), then {{"t",
"type": "close", "code", "reason", "by", "clean"}} (one per connection
with --reconnect). On a terminal they replace the "<" lines; DEL, C1
and bidi controls in them are \\uXXXX escapes (the same JSON).

\b
--reconnect: after an abnormal close or a failed connect, connect again
after a delay that doubles each time (from --reconnect-delay up to
--reconnect-max-delay, plus a random jitter of at most one first delay),
at most --reconnect-tries times in a row; a connection that stays up 10s
resets the count. The --init messages are sent after every connect.
Retried: refused, reset, timeouts, TLS or proxy failures other than an
untrusted certificate, HTTP 5xx, HTTP 408 and 429 (after the delay
their Retry-After asks for, at most --reconnect-max-delay), abnormal
closes. Given up at once (permanent): an unknown host name, an
untrusted TLS certificate, any other HTTP 4xx. When no connection was
ever made, the status is that of the last failure (3 or 4).

\b
Exit status:
  0    the session ended normally (Ctrl-D, /quit, /close answered, the
       server closed with 1000/1001, end of input in the bridge)
  1    other error
  2    usage error; in the bridge, a stdin line that is not UTF-8
  3    could not connect: DNS, refused, TLS, proxy, open timeout (also
       when a session that never connected ends: --reconnect, Ctrl-D)
  4    handshake rejected (HTTP status other than 101), likewise
  5    closed abnormally: close code other than 1000/1001, or no Close
       frame (dropped, /terminate, our Close unanswered, a write stuck
       longer than --write-timeout)
  130  interrupted: Ctrl-C twice at the prompt; in the bridge, one
       Ctrl-C closes (1001), a second quits at once

\b
Examples:
  wschan connect ws://127.0.0.1:8765/
  wschan connect wss://example.test/feed --init '{{"op":"subscribe"}}' --reconnect
  seq 100 | wschan connect ws://127.0.0.1:8765/ > replies.txt
  seq 100 | wschan connect ws://127.0.0.1:8765/ --json | jq -r 'select(.dir == "in") | .data'
"""


@click.command(
    "connect",
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.argument("url")
@click.option(
    "--init",
    "init",
    multiple=True,
    metavar="MESSAGE",
    help="Send MESSAGE after every connect and reconnect (repeatable, in order).",
)
@click.option(
    "--reconnect",
    is_flag=True,
    help="After an abnormal close or a failed connect, connect again (see below).",
)
@click.option(
    "--reconnect-delay",
    type=Seconds(min=0),
    default=DEFAULT_RECONNECT_DELAY,
    show_default=True,
    metavar="SECONDS",
    help="Delay before the first reconnect; it doubles with each attempt in a row.",
)
@click.option(
    "--reconnect-max-delay",
    type=Seconds(min=0),
    default=DEFAULT_RECONNECT_MAX_DELAY,
    show_default=True,
    metavar="SECONDS",
    help="Longest delay between two reconnect attempts.",
)
@click.option(
    "--reconnect-tries",
    type=click.IntRange(min=0),
    default=DEFAULT_RECONNECT_TRIES,
    show_default=True,
    metavar="N",
    help="Give up after N reconnect attempts in a row (0: never give up).",
)
@click.option(
    "--wait",
    type=Seconds(min=0),
    default=DEFAULT_BRIDGE_WAIT,
    show_default=True,
    metavar="SECONDS",
    help="Bridge: after the end of input, close once SECONDS pass with no message in or out.",
)
@click.option(
    "--timestamps", is_flag=True, help="Prefix each message with its time (ISO 8601, UTC)."
)
@click.option("--pretty", is_flag=True, help="Indent messages that are JSON (toggle: /pretty).")
@click.option(
    "--json",
    "json",
    is_flag=True,
    help="Write received messages and each close as JSON Lines (as wschan send --json).",
)
@connection_options
@exec_options
@click.pass_context
def connect(ctx: click.Context, url: str, **options: Any) -> None:
    """Open an interactive session with URL, the channel's state in view.

    URL is ws://HOST[:PORT]/PATH or wss://... On a terminal: a prompt,
    messages above it, a live toolbar. Off a terminal: a line bridge.
    """
    import dataclasses
    import sys

    from wschan_cli.render.color import is_tty
    from wschan_cli.sessions.link import LinkConfig

    check_url(url)
    fmt = output_format(
        json_out=options["json"], pretty=options["pretty"], timestamps=options["timestamps"]
    )
    connection: ConnectionSettings = dataclasses.replace(options["connection"], target=url)
    cfg = LinkConfig(
        url=url,
        connection=connection,
        init=tuple(options["init"]),
        reconnect=options["reconnect"],
        reconnect_delay=options["reconnect_delay"],
        reconnect_max_delay=max(options["reconnect_max_delay"], options["reconnect_delay"]),
        reconnect_tries=options["reconnect_tries"],
    )
    run_exec_if_asked(ctx, cfg, options)
    if is_tty(sys.stdin) and is_tty(sys.stdout):
        from wschan_cli.sessions.repl import run_repl

        ctx.exit(run_repl(cfg, fmt=fmt, timestamps=options["timestamps"], pretty=options["pretty"]))
    from wschan_cli.sessions.bridge import run_bridge

    ctx.exit(
        run_bridge(
            cfg,
            wait=options["wait"],
            fmt=fmt,
            timestamps=options["timestamps"],
            pretty=options["pretty"],
        )
    )
