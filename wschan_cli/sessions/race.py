"""Waiting for whichever of several things happens first (an event, a queue, the end)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def first_done(*awaitables: Awaitable[Any]) -> list[asyncio.Future[Any]]:
    """Wait until one of ``awaitables`` is done and cancel the others (also when cancelled
    ourselves: nothing is left pending). Returns their futures, in the order given."""
    futures = [asyncio.ensure_future(item) for item in awaitables]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            future.cancel()  # no effect on the done ones
    return futures
