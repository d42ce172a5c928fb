"""The clock the channel reads and waits on, injected so a scheduler can drive virtual time."""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""

    def timeout(self, delay: float | None) -> AbstractAsyncContextManager[object]:
        """A block that raises TimeoutError after ``delay`` seconds (None: never)."""

    async def sleep(self, delay: float) -> None: ...


class LoopClock:
    """The running event loop's clock."""

    def now(self) -> float:
        # time.monotonic() is asyncio's loop.time(); uvloop's loop.time() is libuv's cached
        # millisecond clock, too coarse for a ping's round trip on 127.0.0.1 or an event's
        # stamp. Its timers run on the same monotonic clock, so a deadline computed from this
        # one and waited for on the loop still holds.
        return time.monotonic()

    def timeout(self, delay: float | None) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(delay)

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)
