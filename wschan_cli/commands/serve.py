"""``wschan serve``: run the embedded WebSocket server from the command line.

The server itself lives in :mod:`wschan_cli.server`; it is imported when the
command runs, so that loading this module (for ``wschan serve --help``) stays
cheap.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import signal
import sys
from typing import TYPE_CHECKING, Any

import click

from wschan_cli.options import Seconds

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable
    from ssl import SSLContext

    from wschan_cli.server import EmbeddedServer

from wschan_cli.commands.exec_usage import check_exec_usage, check_program_found
from wschan_cli.exitcodes import ExitStatus

EPILOG = """\b
Examples:
  wschan serve                          echo server on a free loopback port
  wschan serve --port 9000 --greeting hello
  wschan serve --close-after 3 --close-code 4000 --close-reason bye
  wschan serve --drop-after 1 --drop-mid-frame
  wschan serve --reject 403 --reject-body "go away"
  wschan serve --port 8080 --exec ./count.sh          a program per connection
  wschan serve --exec python3 -u bot.py --verbose     (its own options after CMD)

\b
Faults that need a count (--close-after, --drop-after) apply per
connection, counting messages echoed on it; 0 means right after the
handshake. On-connect actions run in this order: --ping-on-connect,
--greeting, --send-size, --invalid-utf8.

The URL (e.g. ws://127.0.0.1:45123/) is the only line written to stdout,
flushed at once, so a script can read it from a pipe; notes go to stderr.
SIGTERM stops the server with exit status 0, Ctrl-C with 130.

\b
With --exec, each connection runs CMD [ARGS]... (no shell: write
sh -c '...' for one). Each message is a line on its stdin; each line of
its stdout is a message; its stderr is the server's. The client closing
sends SIGTERM to its process group (SIGKILL after --kill-grace); the
program exiting closes the connection (1000, reason "exit status N").
Request details are in its environment, named as CGI and websocketd
do: REMOTE_ADDR, REMOTE_PORT, SERVER_NAME, SERVER_PORT, REQUEST_URI,
SCRIPT_NAME (/), PATH_INFO (the path), QUERY_STRING, HTTPS, HTTP_*
(one per request header). Over --max-processes, a handshake is refused
with HTTP 503. Options of serve go before --exec; all after CMD are its own.
"""

# The echo server's fault options, which mean nothing to a program behind --exec.
ECHO_ONLY = (
    "close_after",
    "close_code",
    "close_reason",
    "drop_after",
    "drop_mid_frame",
    "ignore_close",
    "reject_status",
    "reject_body",
    "stall_before_upgrade",
    "ping_on_connect",
    "invalid_utf8",
    "send_size",
    "greeting",
)
EXEC_ONLY = ("max_processes", "kill_grace")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _option_names(message: str) -> str:
    """Turn Behaviour field names in a validation message into the option names typed."""

    def option(match: re.Match[str]) -> str:
        name = match.group(0)
        return "--reject" if name == "reject_status" else "--" + name.replace("_", "-")

    return re.sub(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b", option, message)


def _ssl_context(certfile: str, keyfile: str | None) -> SSLContext:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise click.BadParameter(
            f"cannot load certificate/key: {exc}", param_hint="--certfile"
        ) from exc
    return context


@click.command(
    "serve",
    epilog=EPILOG,
    context_settings={
        "help_option_names": ["-h", "--help"],
        "max_content_width": 100,
        # Everything after CMD belongs to CMD: `--exec python3 -v` must not turn on --verbose.
        "allow_interspersed_args": False,
    },
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind. Anything but loopback exposes the server to the network "
    "and prints a warning.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="TCP port to listen on; 0 picks a free port (read the URL from stdout).",
)
@click.option(
    "--close-after",
    type=click.IntRange(min=0),
    metavar="N",
    help="After echoing N messages, close the connection cleanly with --close-code "
    "and --close-reason (a proper close handshake).",
)
@click.option(
    "--close-code",
    type=click.IntRange(1000, 4999),
    default=1000,
    show_default=True,
    metavar="CODE",
    help="Close code sent by --close-after (1000-1003, 1007-1014 or 3000-4999).",
)
@click.option(
    "--close-reason",
    default="",
    metavar="TEXT",
    help="Close reason sent by --close-after (at most 123 bytes of UTF-8).",
)
@click.option(
    "--drop-after",
    type=click.IntRange(min=0),
    metavar="N",
    help="After echoing N messages, drop the TCP connection without sending a Close frame.",
)
@click.option(
    "--drop-mid-frame",
    is_flag=True,
    help="With --drop-after: before dropping, send half a frame (a header announcing a "
    "1000-byte text frame, then only 10 bytes of it).",
)
@click.option(
    "--ignore-close",
    is_flag=True,
    help="Never answer the client's Close frame and never close TCP; the client has to time out.",
)
@click.option(
    "--reject",
    "reject_status",
    type=click.IntRange(200, 599),
    metavar="STATUS",
    help="Refuse the WebSocket upgrade with this HTTP status (e.g. 403).",
)
@click.option(
    "--reject-body",
    default="",
    metavar="TEXT",
    help="Body of the HTTP response sent by --reject.",
)
@click.option(
    "--stall-before-upgrade",
    type=Seconds(min=0),
    metavar="SECONDS",
    help="Wait this long before answering the handshake request, then proceed normally.",
)
@click.option(
    "--ping-on-connect",
    metavar="TEXT",
    help="Right after the handshake, send a Ping with this payload (UTF-8, at most 125 "
    "bytes); the Pong is logged with --verbose.",
)
@click.option(
    "--invalid-utf8",
    is_flag=True,
    help="Right after the handshake, send a text frame whose payload is invalid UTF-8 "
    "(a conforming client closes with 1007).",
)
@click.option(
    "--send-size",
    type=click.IntRange(min=0),
    metavar="BYTES",
    help="Right after the handshake, send one binary message of this many random bytes "
    "(to exceed a client's maximum message size).",
)
@click.option(
    "--greeting",
    metavar="TEXT",
    help="Right after the handshake, send this text message.",
)
@click.option(
    "--no-compression",
    is_flag=True,
    help="Do not negotiate permessage-deflate.",
)
@click.option(
    "--certfile",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM certificate chain: serve wss:// (TLS) instead of ws://.",
)
@click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM private key for --certfile, if it is not in the certificate file.",
)
@click.option(
    "--exec",
    "exec_",
    is_flag=True,
    help="Run CMD [ARGS]... for each connection, bridged by its stdin and stdout "
    "(websocketd's job), instead of echoing. See below.",
)
@click.option(
    "--max-processes",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    metavar="N",
    help="With --exec: programs running at once; a connection over the bound is refused "
    "with HTTP 503.",
)
@click.option(
    "--kill-grace",
    type=Seconds(min=0),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="With --exec: after the client closes, wait this long between SIGTERM and SIGKILL.",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Log connections, messages, pongs and closes (with --exec: each program's start, "
    "end and refusals) on stderr.",
)
@click.argument("command", nargs=-1, metavar="[--exec CMD [ARGS]...]", type=click.UNPROCESSED)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    close_after: int | None,
    close_code: int,
    close_reason: str,
    drop_after: int | None,
    drop_mid_frame: bool,
    ignore_close: bool,
    reject_status: int | None,
    reject_body: str,
    stall_before_upgrade: float | None,
    ping_on_connect: str | None,
    invalid_utf8: bool,
    send_size: int | None,
    greeting: str | None,
    no_compression: bool,
    certfile: str | None,
    keyfile: str | None,
    exec_: bool,
    max_processes: int,
    kill_grace: float,
    verbose: bool,
    command: tuple[str, ...],
) -> None:
    """Run the embedded WebSocket server: an echo server with optional faults,
    or a program per connection (--exec).

    Every message is echoed back with the same type (text or binary). The
    options below make the server misbehave in the ways a client must survive.
    The server listens on loopback only, unless --host says otherwise.
    """
    # Imported here, not at module level: ``wschan serve --help`` should not pay
    # for asyncio and websockets.
    from wschan_cli.runner import CtrlC, run_main
    from wschan_cli.secrets import mask_url

    if keyfile is not None and certfile is None:
        raise click.UsageError("--keyfile needs --certfile")
    check_exec_usage(ctx, exec_, command, not_with_exec=ECHO_ONLY, exec_only=EXEC_ONLY)
    ssl_context = None if certfile is None else _ssl_context(certfile, keyfile)
    compression = not no_compression
    server: EmbeddedServer
    if exec_:
        from wschan_cli.server.exec import ExecServer, ExecSpec

        check_program_found(command)
        spec = ExecSpec(command, max_processes=max_processes, kill_grace=kill_grace)
        server = ExecServer(spec, host, port, compression=compression, ssl=ssl_context)
        notes = [spec.describe()]
    else:
        server, notes = _echo_server(
            host,
            port,
            compression,
            ssl_context,
            close_after=close_after,
            close_code=close_code,
            close_reason=close_reason,
            drop_after=drop_after,
            drop_mid_frame=drop_mid_frame,
            ignore_close=ignore_close,
            reject_status=reject_status,
            reject_body=reject_body,
            stall_before_upgrade=stall_before_upgrade,
            ping_on_connect=None if ping_on_connect is None else ping_on_connect.encode(),
            invalid_utf8=invalid_utf8,
            send_size=send_size,
            greeting=greeting,
        )

    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("wschan serve: %(message)s"))
        server_logger = logging.getLogger("wschan_cli.server")
        server_logger.addHandler(handler)
        server_logger.setLevel(logging.INFO)
        server_logger.propagate = False

    if not _is_loopback(host):
        click.echo(
            f"wschan serve: warning: binding {host!r}, not loopback: the server is reachable "
            "from the network and has no authentication.",
            err=True,
        )

    import asyncio

    stop = asyncio.Event()
    caught: list[signal.Signals] = []

    def on_signal(signum: signal.Signals) -> None:
        caught.append(signum)
        stop.set()

    def error(message: str) -> None:
        click.echo(f"wschan serve: {message}", err=True)

    # The first Ctrl-C stops serving (connections closed with 1001), as SIGTERM does; a second
    # one quits at once (runner.CtrlC). serve has no --debug (debug=None).
    status = run_main(
        _run(server, notes, f"{host}:{port}", stop, caught, on_signal),
        debug=None,
        error=error,
        mask=mask_url,
        ctrl_c=CtrlC(lambda: on_signal(signal.SIGINT), error=error),
        fast_loop=True,
    )
    sys.exit(status)


def _echo_server(
    host: str,
    port: int,
    compression: bool,
    ssl_context: SSLContext | None,
    **faults: Any,
) -> tuple[EmbeddedServer, list[str]]:
    """The echo server with the faults asked for, and a note per fault."""
    from wschan_cli.server import Behaviour, EmbeddedServer

    try:
        behaviour = Behaviour(**faults)
    except ValueError as exc:
        raise click.UsageError(_option_names(str(exc))) from exc
    # record=False: nobody reads the records of a served process, and keeping every message
    # would grow the heap (and slow the echo) for as long as it runs.
    server = EmbeddedServer(
        behaviour, host=host, port=port, compression=compression, ssl=ssl_context, record=False
    )
    return server, behaviour.describe() or ["echo"]


async def _run(
    server: EmbeddedServer,
    notes: list[str],
    where: str,
    stop: asyncio.Event,
    caught: list[signal.Signals],
    on_signal: Callable[[signal.Signals], None],
) -> int:
    """Serve until SIGINT (run_main's Ctrl-C rule) or SIGTERM; return the exit status."""
    import asyncio

    loop = asyncio.get_running_loop()
    # Handle SIGTERM in the loop rather than letting it kill the process: shutdown then
    # closes connections properly (1001).
    installed: list[signal.Signals] = []
    for signum in (signal.SIGTERM,):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # e.g. Windows
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
    try:
        try:
            await server.start()
        except OSError as exc:
            click.echo(f"wschan serve: cannot listen on {where}: {exc.strerror or exc}", err=True)
            return ExitStatus.ERROR
        try:
            # The URL alone on stdout, flushed now: scripts and tests block on it.
            click.echo(server.url)
            sys.stdout.flush()
            click.echo(
                f"wschan serve: listening on {server.url} ({'; '.join(notes)}). Ctrl-C to stop.",
                err=True,
            )
            await stop.wait()
        finally:
            await server.stop()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    if caught and caught[0] == signal.SIGINT:
        return ExitStatus.INTERRUPTED
    return ExitStatus.OK
