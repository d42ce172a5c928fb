"""Shared test helpers: real sockets on 127.0.0.1, ordering forced with events, never sleeps."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from websockets.uri import WebSocketURI

from wschan_cli.channel import Channel, ChannelOptions, Event, What
from wschan_cli.channel.transport import Transport
from wschan_cli.runner import loop_factory
from wschan_cli.trace import gates
from wschan_cli.trace.gates import Gate

T = TypeVar("T")

# Keepalive off unless a test asks: a ping at a random moment would perturb event orders.
QUIET = ChannelOptions(ping_interval=None, open_timeout=5, close_timeout=2, write_timeout=5)


def run(coro: Coroutine[Any, Any, T], timeout: float = 15) -> T:
    """Run a coroutine with a hard bound, so a hang fails instead of eating CI time.

    On the loop the commands run on (``runner.loop_factory``): uvloop's when it is installed,
    asyncio's with ``WSCHAN_LOOP=asyncio``.
    """

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(bounded())


class Recorder:
    """Collects a channel's events; lets a test wait for one that matches."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._watchers: list[tuple[Callable[[Event], bool], asyncio.Future[Event]]] = []
        self.hooks: list[Callable[[Event], None]] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        for hook in list(self.hooks):
            hook(event)
        for match, future in list(self._watchers):
            if not future.done() and match(event):
                future.set_result(event)

    async def wait_for(self, match: Callable[[Event], bool]) -> Event:
        for event in self.events:
            if match(event):
                return event
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._watchers.append((match, future))
        return await future

    def of(self, what: What, party: str | None = None) -> list[Event]:
        return [
            e for e in self.events if e.what is what and (party is None or str(e.party) == party)
        ]

    def index(self, what: What, party: str) -> int:
        for i, e in enumerate(self.events):
            if e.what is what and str(e.party) == party:
                return i
        raise AssertionError(f"no {what.value} by {party}")


def is_(what: What, party: str | None = None, **detail: Any) -> Callable[[Event], bool]:
    def match(event: Event) -> bool:
        if event.what is not what or (party is not None and str(event.party) != party):
            return False
        return all(event.detail.get(k) == v for k, v in detail.items())

    return match


class GatedTransport(gates.GatedTransport):
    """The product's gated transport, plus a gate on reads: received bytes (or EOF) are held
    back from the reader until the test opens ``read_gate``."""

    def __init__(self, inner: Transport) -> None:
        super().__init__(inner)
        self.read_gate = Gate()
        self.held = asyncio.Event()  # set while received bytes (or EOF) wait at the gate
        self.arrived = asyncio.Event()  # set once any bytes reached the reader

    async def read(self) -> bytes:
        data = await self.inner.read()
        self.arrived.set()
        self.held.set()
        try:
            await self.read_gate.passed()
        finally:
            self.held.clear()
        return data


def gated_factory(
    made: list[GatedTransport],
) -> Callable[[WebSocketURI, ChannelOptions], Awaitable[Transport]]:
    return gates.gated_factory(made, GatedTransport)


async def open_watched(
    url: str, options: ChannelOptions = QUIET, **kwargs: Any
) -> tuple[Channel, Recorder, GatedTransport]:
    """An opened channel whose events are recorded and whose transport is gated."""
    made: list[GatedTransport] = []
    rec = Recorder()
    ch = Channel(url, options=options, transport_factory=gated_factory(made), **kwargs)
    ch.subscribe(rec)
    await ch.open()
    return ch, rec, made[0]


async def park_send(
    ch: Channel, gate: GatedTransport, message: str | bytes
) -> asyncio.Future[None]:
    """Start a send that writes, then holds the token in its drain until ``drain_gate`` opens."""
    gate.drain_gate.close()
    send = asyncio.ensure_future(ch.send(message))
    await gate.draining.wait()
    return send


# --------------------------------------------------------------------------- raw server

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
    """An unmasked server frame, built by hand so a test can send what a library would refuse."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", first, n)
    elif n < 65536:
        header = struct.pack("!BBH", first, 126, n)
    else:
        header = struct.pack("!BBQ", first, 127, n)
    return header + payload


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """A hand-written WebSocket server on 127.0.0.1: it completes the upgrade, then runs
    ``script`` on the raw streams (or answers the HTTP request itself if ``upgrade`` is False)."""

    def __init__(self, script: Script, *, upgrade: bool = True) -> None:
        self.script = script
        self.upgrade = upgrade
        self.url = ""
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            if self.upgrade:
                key = next(
                    line.split(b":", 1)[1].strip()
                    for line in request.split(b"\r\n")
                    if line.lower().startswith(b"sec-websocket-key:")
                )
                accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest())
                writer.write(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
                )
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()


async def discard_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read and ignore everything: never answers a Ping or a Close."""
    while await reader.read(65536):
        pass


async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Stop reading after the upgrade, so the client's writes back up (D8)."""
    writer.transport.pause_reading()  # type: ignore[attr-defined]
    await asyncio.Event().wait()
