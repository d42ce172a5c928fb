"""A transport wrapper that lets a scenario decide *when* things happen, over a real socket.

Bytes still travel through the real transport; the wrapper only holds back the news that a
write drained (so a writer keeps the token until released) and can end the read side locally
(so ``handle_terminate`` runs when the scenario says). With a ``pace``, each drain and each read
is also held that long, so a person can watch the race step by step (``--pace``): deliberately,
and said in the title, never as a side effect of drawing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.uri import WebSocketURI

from wschan_cli.channel import ChannelOptions, Transport, open_tcp


class Gate:
    """An open/closed barrier."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    async def passed(self) -> None:
        await self._open.wait()


class GatedTransport:
    """Wraps a real transport. ``drain_gate`` holds back the news that a write drained (the
    bytes did leave), so the writer keeps the token until the gate opens."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.pace = 0.0  # seconds each drain and each read is held (--pace)
        self.drain_gate = Gate()
        self.draining = asyncio.Event()  # set while a drained write waits at the gate

    def end_reading(self) -> None:
        """End the read side locally, as if the peer had ended TCP."""
        feed_eof = getattr(self.inner, "feed_eof", None)
        if feed_eof is None:
            raise TypeError("this transport cannot end its read side locally")
        feed_eof()

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    @property
    def writing_paused(self) -> bool:
        return True  # the gate may hold any drain: keep the write timeout armed

    async def drain(self) -> None:
        await self.inner.drain()
        await self.hold()
        self.draining.set()
        try:
            await self.drain_gate.passed()
        finally:
            self.draining.clear()

    async def read(self) -> bytes:
        data = await self.inner.read()
        await self.hold()
        return data

    async def hold(self) -> None:
        """Wait ``pace`` seconds, if pacing was asked for."""
        if self.pace:
            await asyncio.sleep(self.pace)

    def close(self) -> None:
        self.inner.close()

    def abort(self) -> None:
        self.inner.abort()


def gated_factory(
    made: list[Any], cls: type[GatedTransport] = GatedTransport, pace: float = 0.0
) -> Callable[[WebSocketURI, ChannelOptions], Awaitable[Transport]]:
    """A transport factory that wraps each real transport in ``cls`` and records it in ``made``."""

    async def factory(uri: WebSocketURI, options: ChannelOptions) -> Transport:
        transport = cls(await open_tcp(uri, options))
        transport.pace = pace
        made.append(transport)
        return transport

    return factory
