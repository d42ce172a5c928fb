"""The clock the channel reads and waits on, injected so a scheduler can drive virtual time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""

    def timeout(self, delay: float | None) -> AbstractAsyncContextManager[object]:
        """A block that raises TimeoutError after ``delay`` seconds (None: never)."""

    async def sleep(self, delay: float) -> None: ...


class LoopClock:
    """The running event loop's clock, read to the microsecond.

    asyncio's ``loop.time()`` is ``time.monotonic()``; a scheduler's loop (the explorer's) has
    a virtual one, which this must follow. uvloop's is libuv's cached millisecond clock: too
    coarse for a ping's round trip on 127.0.0.1 (0.0) or for event stamps, so on uvloop this
    reads ``time.monotonic()``, the clock uvloop's timers run on too (a deadline computed from
    it and waited for on the loop still holds).
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._read: Callable[[], float] = time.monotonic

    def now(self) -> float:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            uvloop = type(loop).__module__.partition(".")[0] == "uvloop"
            self._read = time.monotonic if uvloop else loop.time
        return self._read()

    def timeout(self, delay: float | None) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(delay)

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)
