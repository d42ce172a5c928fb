"""The clock the channel reads and waits on, injected so a scheduler can drive virtual time."""

from __future__ import annotations

import asyncio
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
        return asyncio.get_running_loop().time()

    def timeout(self, delay: float | None) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(delay)

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)
