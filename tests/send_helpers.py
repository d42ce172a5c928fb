"""Helpers for the end-to-end tests of ``wschan send``: run the real executable, and small
loopback-only servers (HTTP CONNECT proxy, SOCKS5 proxy, Unix-socket forwarder, raw server)
running on an event loop in a background thread.

Every helper here only ever listens on, and connects to, 127.0.0.1 or a Unix socket; the proxies
refuse any other destination, so a test cannot send traffic off the machine by mistake.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

PROXY_VARIABLES = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "ws_proxy",
    "wss_proxy",
    "no_proxy",
)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a ``wschan`` subprocess: no proxy or colour variables of the
    machine (tests say what they want), plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in PROXY_VARIABLES and k not in ("NO_COLOR", "FORCE_COLOR")
    }
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


#: A ``sitecustomize`` for a child process: getaddrinfo answers "no such name" for every name
#: but localhost and IP addresses, as the resolver does for a name that does not exist. No
#: test may query real DNS.
NO_DNS = """\
import ipaddress, socket

_real = socket.getaddrinfo


def _getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    try:
        ipaddress.ip_address(name)
    except (TypeError, ValueError):
        if name not in (None, "localhost"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
    return _real(host, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo
"""


def no_dns_env(directory: Path, **extra: str) -> dict[str, str]:
    """``clean_env`` for a child that resolves no name off the machine (``NO_DNS``).

    The child runs on asyncio's loop (``WSCHAN_LOOP=asyncio``): uvloop resolves names in
    libuv, which never calls ``socket.getaddrinfo`` and so would reach the real resolver.
    """
    (directory / "sitecustomize.py").write_text(NO_DNS)
    return clean_env(PYTHONPATH=str(directory), WSCHAN_LOOP="asyncio", **extra)


def wschan(
    *args: str,
    input: bytes | str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 20.0,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m wschan_cli ARGS`` (the installed package) and return its result.

    stdin is ``input`` (or empty: never the test runner's own stdin).
    """
    data = input.encode() if isinstance(input, str) else input
    return subprocess.run(
        [sys.executable, "-m", "wschan_cli", *args],
        input=data if data is not None else b"",
        capture_output=True,
        env=env if env is not None else clean_env(),
        timeout=timeout,
        check=False,
    )


def err_line(result: subprocess.CompletedProcess[bytes]) -> str:
    """The stderr of a run, decoded, stripped."""
    return result.stderr.decode(errors="replace").strip()


# ---------------------------------------------------------------------- a loop in a thread


class LoopThread:
    """An asyncio event loop running in a daemon thread; ``call`` runs a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.call(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    await asyncio.gather(_pipe(a[0], b[1]), _pipe(b[0], a[1]))


def _loopback(host: str) -> str | None:
    """Where a proxy may connect for ``host``: loopback addresses, and any name ending in
    ``.test`` or equal to ``localhost`` (mapped to 127.0.0.1, without any DNS); else None."""
    if host == "localhost" or host.endswith(".test"):
        return "127.0.0.1"
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


# ---------------------------------------------------------------------- HTTP CONNECT proxy


@dataclass
class ConnectProxy:
    """A minimal HTTP CONNECT proxy on 127.0.0.1. Records each request's first line and
    headers; answers 407 without the right ``credentials`` ("user:password") when set."""

    credentials: str | None = None
    ssl: Any = None  # an ssl.SSLContext: an https:// proxy
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def start(self) -> ConnectProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        self.requests.append((lines[0], headers))
        method, target, _ = [*lines[0].split(" "), "", ""][:3]
        if self.credentials is not None:
            expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
            if headers.get("proxy-authorization") != expected:
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n'
                )
                await writer.drain()
                writer.close()
                return
        host, _, port = target.rpartition(":")
        destination = _loopback(host.strip("[]"))
        if method != "CONNECT" or destination is None:
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        try:
            upstream = await asyncio.open_connection(destination, int(port))
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await _splice((reader, writer), upstream)


# ---------------------------------------------------------------------- SOCKS5 proxy


@dataclass
class Socks5Proxy:
    """A minimal SOCKS5 proxy (RFC 1928, CONNECT only) on 127.0.0.1, with username/password
    authentication (RFC 1929) when ``credentials`` is set. Records ``(address type, host,
    port)`` of each CONNECT: address type 1 is IPv4, 3 a domain name, 4 IPv6."""

    credentials: tuple[str, str] | None = None
    requests: list[tuple[int, str, int]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"socks5://127.0.0.1:{self.port}"

    async def start(self) -> Socks5Proxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        assert version == 5
        wanted = 2 if self.credentials else 0
        if wanted not in methods:
            writer.write(b"\x05\xff")
            writer.close()
            return
        writer.write(bytes([5, wanted]))
        if self.credentials:
            await reader.readexactly(1)
            user = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            password = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            ok = (user, password) == self.credentials
            writer.write(b"\x01\x00" if ok else b"\x01\x01")
            if not ok:
                writer.close()
                return
        _, command, _, kind = await reader.readexactly(4)
        if kind == 1:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif kind == 3:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
        else:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        port = int.from_bytes(await reader.readexactly(2), "big")
        self.requests.append((kind, host, port))
        destination = _loopback(host)
        if command != 1 or destination is None:
            writer.write(b"\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00")  # not allowed
            writer.close()
            return
        try:
            upstream = await asyncio.open_connection(destination, port)
        except OSError:
            writer.write(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")  # refused
            writer.close()
            return
        writer.write(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
        await _splice((reader, writer), upstream)


# ---------------------------------------------------------------------- Unix socket


@dataclass
class UnixForwarder:
    """Listens on a Unix socket and forwards each connection to 127.0.0.1:``port``."""

    path: str
    port: int
    accepted: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> UnixForwarder:
        self._server = await asyncio.start_unix_server(self._handle, self.path)
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        upstream = await asyncio.open_connection("127.0.0.1", self.port)
        await _splice((reader, writer), upstream)


# ---------------------------------------------------------------------- a silent server


@dataclass
class SilentServer:
    """Completes the WebSocket upgrade, then reads and ignores everything: never a Pong, never
    a reply, never a Close. With ``reads=False`` it reads nothing after the upgrade either (a
    peer that stopped reading: the client's writes stall). ``upgraded`` counts the upgrades,
    ``bytes_read`` what was read after them."""

    reads: bool = True
    port: int = 0
    upgraded: int = 0
    bytes_read: int = 0  # after the upgrade, all connections together
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def start(self) -> SilentServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import hashlib

        try:
            request = await reader.readuntil(b"\r\n\r\n")
            key = next(
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
            accept = base64.b64encode(hashlib.sha1(key + guid).digest())
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            self.upgraded += 1
            if not self.reads:
                await asyncio.Event().wait()  # until the server is stopped
            while data := await reader.read(65536):
                self.bytes_read += len(data)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # (cancelled: the test is over and stops the server)
        finally:
            writer.close()


# ---------------------------------------------------------------------- a refusing server


@dataclass
class HttpAnswer:
    """Answers every upgrade request with ``status`` and ``headers`` (and ``reason``, ``body``,
    both as latin-1 bytes); counts the requests. ``silent``: reads the request, never answers."""

    status: int
    headers: tuple[str, ...] = ()
    reason: str = "Whatever"
    body: str = ""
    silent: bool = False
    requests: list[float] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def start(self) -> HttpAnswer:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        self.requests.append(time.monotonic())
        if self.silent:
            await reader.read()  # until the client gives up
            writer.close()
            return
        length = f"Content-Length: {len(self.body)}"
        head = [f"HTTP/1.1 {self.status} {self.reason}", *self.headers, length, "", self.body]
        writer.write("\r\n".join(head).encode("latin-1"))
        await writer.drain()
        writer.close()
