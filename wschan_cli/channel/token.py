"""The ``sending`` token and the FIFO condition its losers wait on (channel-model.md section 1).

``take`` tests and sets the token with no ``await`` in between, which in asyncio gives the same
exclusion as the C++ ``channel->mutex``. A loser registers its waiter *before* it yields, so a
release can never miss it. ``release`` signals one waiter; that is a wake-up, not a hand-off: the
woken party re-competes and may lose to a newcomer, in which case it queues again at the back.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from .events import Party, What

Emit = Callable[..., None]
_TAKE, _RELEASE = What.TAKE, What.RELEASE  # read once: an Enum attribute is slow in 3.11


class TokenMisuse(RuntimeError):
    """A party released a token it does not hold (hazard H5 of the C++)."""


class WaiterQueue:
    """A FIFO of parked parties, each with the future that wakes it."""

    def __init__(self) -> None:
        self._queue: deque[tuple[Party, asyncio.Future[None]]] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, party: Party) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((party, future))
        return future

    def discard(self, future: asyncio.Future[None]) -> None:
        self._queue = deque(item for item in self._queue if item[1] is not future)

    def signal_one(self) -> Party | None:
        """Wake the oldest waiter; return who it was, or None when nobody waits."""
        while self._queue:
            party, future = self._queue.popleft()
            if not future.done():
                future.set_result(None)
                return party
        return None

    def parties(self) -> list[Party]:
        return [party for party, _ in self._queue]


class Token:
    """The ``sending`` flag, who holds it, and the waiters on it."""

    def __init__(self, emit: Emit) -> None:
        self.holder: Party | None = None
        self.waiters = WaiterQueue()
        self._emit = emit

    @property
    def sending(self) -> bool:
        return self.holder is not None

    def try_take(self, party: Party) -> bool:
        """Take the token if it is free, without yielding; False if it is held."""
        if self.holder is not None:
            return False
        self.holder = party
        self._emit(party, _TAKE)
        return True

    async def take(self, party: Party) -> None:
        while self.holder is not None:
            future = self.waiters.push(party)  # queued before yielding: no lost wake-up
            self._emit(party, What.WAIT)
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._signal(party)  # we were woken: pass the wake-up on, never swallow it
                else:
                    self.waiters.discard(future)
                raise
            self._emit(party, What.WAKE)
        self.holder = party
        self._emit(party, _TAKE)

    def release(self, party: Party) -> None:
        # Identity first: it is the common case, and cheaper than comparing.
        if self.holder is not party and self.holder != party:
            raise TokenMisuse(f"{party} released the token held by {self.holder}")
        self.holder = None
        try:
            self._emit(party, _RELEASE)
        finally:
            if self.waiters:  # even if an observer of the release raised: no lost wake-up
                self._signal(party)

    def _signal(self, party: Party) -> None:
        woken = self.waiters.signal_one()
        if woken is not None:
            detail: dict[str, Any] = {"woken": str(woken)}
            self._emit(party, What.SIGNAL, **detail)
