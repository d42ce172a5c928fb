"""A program behind each WebSocket connection, bridged by its standard streams (websocketd's job).

:class:`ExecServer` is the embedded server (:mod:`wschan_cli.server`: binding, URL, counts,
bounded shutdown) with a different handler: for every accepted connection it starts one process
from a fixed argument vector, never through a shell, and bridges it:

* each message from the client is written to the program's stdin followed by a newline (text as
  UTF-8, binary as is);
* each line the program writes to stdout is sent back as one message (text when it is UTF-8,
  binary otherwise); stderr is the server's own;
* the client closing (or going away) closes the program's stdin, then sends SIGTERM to its
  process group and SIGKILL ``kill_grace`` seconds later if it is still running;
* the program exiting closes the connection with 1000, once its output is all sent, with the
  exit status as the close reason.

Request details reach the program as environment variables named the way CGI (RFC 3875 section
4.1) and websocketd name them. At most ``max_processes`` programs run at once: a handshake over
the bound is refused with HTTP 503 before any process starts, so the client sees why at once and
no program is started only to be stopped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from ssl import SSLContext
from urllib.parse import unquote

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from wschan_cli import __version__, programs

from .embedded import EmbeddedServer

__all__ = ["CGI_NAMES", "ExecServer", "ExecSpec", "cgi_environ"]

# A child of the embedded server's logger, so ``wschan serve -v`` shows both.
logger = logging.getLogger("wschan_cli.server.exec")

#: The request variables a program is given (besides ``HTTP_*``). Inherited variables of these
#: names are dropped first, so a value never leaks from the server's own environment.
CGI_NAMES = (
    "AUTH_TYPE",
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "GATEWAY_INTERFACE",
    "HTTPS",
    "PATH_INFO",
    "PATH_TRANSLATED",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_HOST",
    "REMOTE_IDENT",
    "REMOTE_PORT",
    "REMOTE_USER",
    "REQUEST_METHOD",
    "REQUEST_URI",
    "SCRIPT_NAME",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "SERVER_SOFTWARE",
)

# Header names that map to a variable unambiguously: "X_Y" and "X-Y" would both become HTTP_X_Y.
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]+")


@dataclass(frozen=True)
class ExecSpec:
    """What ``wschan serve --exec`` runs, and its bounds."""

    argv: tuple[str, ...]
    """The program and its arguments, run as is (no shell)."""
    max_processes: int = 16
    """Programs running at once; a connection over the bound is refused with HTTP 503."""
    kill_grace: float = 2.0
    """Seconds between SIGTERM and SIGKILL once the client has closed."""

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError("--exec needs a command")
        if self.max_processes < 1:
            raise ValueError("max_processes must be >= 1")
        if self.kill_grace < 0:
            raise ValueError("kill_grace must be >= 0")

    def describe(self) -> str:
        command = " ".join(self.argv)
        return f"run {command!r} per connection, at most {self.max_processes} at once"


def cgi_environ(
    request: Request,
    connection: ServerConnection,
    inherited: Mapping[str, str],
    tls: bool,
) -> dict[str, str]:
    """The program's environment: ``inherited`` without CGI names, plus this request's."""
    env = {
        name: value
        for name, value in inherited.items()
        if name not in CGI_NAMES and not name.startswith("HTTP_")
    }
    target = request.path
    path, _, query = target.partition("?")
    remote_host, remote_port = connection.remote_address[:2]
    local_host, local_port = connection.local_address[:2]
    host_header = request.headers.get("Host", "")
    # Host is "name", "name:port" or "[v6]:port"; SERVER_NAME is the name part (RFC 3875 4.1.14).
    server_name = re.sub(r":\d*$", "", host_header).strip("[]") or str(local_host)
    env.update(
        GATEWAY_INTERFACE="CGI/1.1",
        SERVER_SOFTWARE=f"wschan/{__version__}",
        SERVER_PROTOCOL="HTTP/1.1",
        SERVER_NAME=server_name,
        SERVER_PORT=str(local_port),
        REQUEST_METHOD="GET",
        REQUEST_URI=target,
        # As websocketd names them when it runs one program: the script is the root and the
        # whole (decoded) path is the extra path information.
        SCRIPT_NAME="/",
        PATH_INFO=unquote(path),
        PATH_TRANSLATED=unquote(path),
        QUERY_STRING=query,
        REMOTE_ADDR=str(remote_host),
        REMOTE_HOST=str(remote_host),  # no reverse lookup: it would stall the handshake
        REMOTE_PORT=str(remote_port),
    )
    if tls:
        env["HTTPS"] = "on"
    for name, value in request.headers.raw_items():
        # "Proxy" would become HTTP_PROXY, which many programs read as their proxy (httpoxy).
        if not _HEADER_NAME.fullmatch(name) or name.lower() == "proxy":
            continue
        key = "HTTP_" + name.upper().replace("-", "_")
        env[key] = f"{env[key]}, {value}" if key in env else value
    return env


class ExecServer(EmbeddedServer):
    """The embedded server running one program per connection (see the module docstring)."""

    def __init__(
        self,
        spec: ExecSpec,
        host: str = "127.0.0.1",
        port: int = 0,
        compression: bool = True,
        ssl: SSLContext | None = None,
    ) -> None:
        # Shutdown closes every connection, which stops every program: allow for the grace.
        # record=False: the server runs for as long as it is left running, and a record per
        # connection would grow with every client (issue 13, item 4); the counts are kept.
        super().__init__(
            None,
            host=host,
            port=port,
            compression=compression,
            ssl=ssl,
            shutdown_timeout=spec.kill_grace + 3.0,
            record=False,
        )
        self.spec = spec
        # Slots taken: by handshakes accepted but not yet handled, and by running handlers.
        self._busy = 0
        self._unclaimed: set[ServerConnection] = set()

    # -- the bound on processes ------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        await super()._process_request(connection, request)
        if self._busy >= self.spec.max_processes:
            logger.info(
                "refused %s:%s: %d program(s) running (--max-processes)",
                *connection.remote_address[:2],
                self._busy,
            )
            return connection.respond(
                503, f"{self._busy} program(s) running, the most allowed; try again later\n"
            )
        # Taken now, before the 101, so that concurrent handshakes cannot overshoot the bound.
        self._busy += 1
        self._unclaimed.add(connection)
        connection.connection_lost_waiter.add_done_callback(
            lambda _: self._release_unclaimed(connection)
        )
        return None

    def _release_unclaimed(self, connection: ServerConnection) -> None:
        # The handshake failed or the client left before the handler ran: free its slot.
        if connection in self._unclaimed:
            self._unclaimed.discard(connection)
            self._busy -= 1

    # -- connection handler ------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        if connection not in self._unclaimed:
            return  # lost before the handler ran; its slot is already free
        self._unclaimed.discard(connection)
        try:
            await self._bridge(connection)
        finally:
            self._busy -= 1
            self._notify()

    async def _bridge(self, connection: ServerConnection) -> None:
        assert connection.request is not None  # the handler runs after the handshake
        env = cgi_environ(connection.request, connection, os.environ, self.ssl is not None)
        peer = "{}:{}".format(*connection.remote_address[:2])
        try:
            process = await programs.start(self.spec.argv, env)
        except OSError as exc:
            logger.warning("cannot start %s for %s: %s", self.spec.argv[0], peer, exc)
            await connection.close(1011, "cannot start the program")
            return
        logger.info("%s: started %s, pid %d", peer, self.spec.argv[0], process.pid)
        assert process.stdin is not None and process.stdout is not None
        feed = asyncio.create_task(self._feed(connection, process.stdin, process.pid))
        relay = asyncio.create_task(self._relay(process.stdout, connection))
        exited = asyncio.create_task(process.wait())
        try:
            await asyncio.wait({feed, exited}, return_when=asyncio.FIRST_COMPLETED)
            if not feed.done():
                # The program ended: send all it wrote, then close (unless the client did).
                await asyncio.wait({feed, relay}, return_when=asyncio.FIRST_COMPLETED)
                assert process.returncode is not None
                await connection.close(1000, programs.status_text(process.returncode))
        finally:
            for task in (feed, relay):
                task.cancel()
            await asyncio.gather(feed, relay, return_exceptions=True)
            await self._stop_process(process, peer)
            exited.cancel()
            await asyncio.gather(exited, return_exceptions=True)

    @staticmethod
    async def _feed(connection: ServerConnection, stdin: asyncio.StreamWriter, pid: int) -> None:
        """Each client message to the program's stdin as a line; returns when the client
        closed. ``drain()`` holds off reading the next message while the program is not
        reading, so the pipe, not memory, absorbs a fast client."""
        dropped = 0
        try:
            async for message in connection:
                if dropped or stdin.is_closing():
                    dropped += 1  # the program closed its stdin; keep reading to see a Close
                    continue
                try:
                    stdin.write(programs.message_line(message))
                    await stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    dropped += 1
        except ConnectionClosed:
            pass  # closed without a proper close handshake: the client is gone all the same
        finally:
            if dropped:
                logger.info("pid %d stopped reading stdin; %d message(s) dropped", pid, dropped)
            stdin.close()

    async def _relay(self, stdout: asyncio.StreamReader, connection: ServerConnection) -> None:
        """Each line of the program's stdout to the client as one message, until EOF."""
        try:
            if not await programs.relay_lines(stdout, connection.send):
                await connection.close(1009, f"output line longer than {programs.MAX_LINE} bytes")
        except ConnectionClosed:
            pass  # the client left; the feed sees it too

    async def _stop_process(self, process: asyncio.subprocess.Process, peer: str) -> None:
        grace = self.spec.kill_grace
        if await programs.stop(process, grace):
            logger.info("pid %d got SIGKILL: still running %gs after SIGTERM", process.pid, grace)
        assert process.returncode is not None
        status = programs.status_text(process.returncode)
        logger.info("%s: pid %d ended (%s)", peer, process.pid, status)
