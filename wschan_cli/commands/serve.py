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
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ssl import SSLContext

    from wschan_cli.server import Behaviour

from wschan_cli.exitcodes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK

EPILOG = """\b
Examples:
  wschan serve                          echo server on a free loopback port
  wschan serve --port 9000 --greeting hello
  wschan serve --close-after 3 --close-code 4000 --close-reason bye
  wschan serve --drop-after 1 --drop-mid-frame
  wschan serve --reject 403 --reject-body "go away"

\b
Faults that need a count (--close-after, --drop-after) apply per
connection, counting messages echoed on it; 0 means right after the
handshake. On-connect actions run in this order: --ping-on-connect,
--greeting, --send-size, --invalid-utf8.

The URL (e.g. ws://127.0.0.1:45123/) is the only line written to stdout,
flushed at once, so a script can read it from a pipe; notes go to stderr.
SIGTERM stops the server with exit status 0, Ctrl-C with 130.
"""


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
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
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
    type=click.FloatRange(min=0),
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
    "-v",
    "--verbose",
    is_flag=True,
    help="Log connections, messages, pongs and closes on stderr.",
)
def serve(
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
    verbose: bool,
) -> None:
    """Run the embedded WebSocket server: an echo server with optional faults.

    Every message is echoed back with the same type (text or binary). The
    options below make the server misbehave in the ways a client must survive.
    The server listens on loopback only, unless --host says otherwise.
    """
    # Imported here, not at module level: ``wschan serve --help`` should not pay
    # for asyncio and websockets.
    from wschan_cli.runner import run_loop
    from wschan_cli.server import Behaviour

    if keyfile is not None and certfile is None:
        raise click.UsageError("--keyfile needs --certfile")
    try:
        behaviour = Behaviour(
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
    except ValueError as exc:
        raise click.UsageError(_option_names(str(exc))) from exc
    ssl_context = None if certfile is None else _ssl_context(certfile, keyfile)

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

    try:
        status = run_loop(
            _run(behaviour, host, port, compression=not no_compression, ssl_context=ssl_context)
        )
    except KeyboardInterrupt:
        # Ctrl-C before the signal handlers were installed.
        status = EXIT_INTERRUPTED
    sys.exit(status)


async def _run(
    behaviour: Behaviour,
    host: str,
    port: int,
    *,
    compression: bool,
    ssl_context: SSLContext | None,
) -> int:
    """Serve until SIGINT or SIGTERM; return the exit status."""
    import asyncio

    from wschan_cli.server import EmbeddedServer

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    caught: list[signal.Signals] = []

    def on_signal(signum: signal.Signals) -> None:
        caught.append(signum)
        stop.set()

    # Handle signals in the loop rather than letting KeyboardInterrupt unwind
    # through the server: shutdown then closes connections properly (1001).
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # e.g. Windows
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
    try:
        # record=False: nobody reads the records of a served process, and keeping every
        # message would grow the heap (and slow the echo) for as long as it runs.
        server = EmbeddedServer(
            behaviour,
            host=host,
            port=port,
            compression=compression,
            ssl=ssl_context,
            record=False,
        )
        try:
            await server.start()
        except OSError as exc:
            click.echo(
                f"wschan serve: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True
            )
            return EXIT_ERROR
        try:
            # The URL alone on stdout, flushed now: scripts and tests block on it.
            click.echo(server.url)
            sys.stdout.flush()
            notes = behaviour.describe() or ["echo"]
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
        return EXIT_INTERRUPTED
    return EXIT_OK
