"""Deliberately broken variants of the core, to prove the explorer's checks bite.

Each is a subclass of ``Channel`` (and, where the bug is in the token, of ``Token``) that breaks
one rule of channel-model.md; the explorer must report each as a violation with its schedule.
None of this is used by the client.
"""

from __future__ import annotations

import asyncio

from wschan_cli.channel import Channel, Party, Token, What
from wschan_cli.channel.channel import _Connection


class _ReleaseWithoutSignal(Token):
    def release(self, party: Party) -> None:
        self.holder = None
        self._emit(party, What.RELEASE)  # BUG: the waiters are never woken


class _SignalBeforeRelease(Token):
    def release(self, party: Party) -> None:
        if self.waiters:
            self._signal(party)  # BUG: wakes a waiter while still holding
        self.holder = None
        self._emit(party, What.RELEASE)


class _WaiterAfterYield(Token):
    async def take(self, party: Party) -> None:
        while self.holder is not None:
            await asyncio.sleep(0)  # BUG: yields before queueing: a release can miss it
            future = self.waiters.push(party)
            self._emit(party, What.WAIT)
            await future
            self._emit(party, What.WAKE)
        self.holder = party
        self._emit(party, What.TAKE)


class _SendSkipsTheToken(Token):
    async def take(self, party: Party) -> None:
        if party.kind == "send":
            self.holder = party  # BUG: a send writes whether or not someone holds the token
            self._emit(party, What.TAKE)
            return
        await super().take(party)

    def release(self, party: Party) -> None:
        self.holder = None  # whoever releases frees it, stolen or not
        self._emit(party, What.RELEASE)
        if self.waiters:
            self._signal(party)


def _with_token(cls: type[Token]) -> type[Channel]:
    class Broken(Channel):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            self._token = cls(self._emit)

    Broken.__name__ = Broken.__qualname__ = f"Channel{cls.__name__}"
    return Broken


class DisposeBeforeWaitersDrained(Channel):
    async def _quiesce(self) -> None:
        return  # BUG: disposes at once, while other parties may still be queued or inside


class OnCloseTwice(Channel):
    def _release(self, party: Party, conn: _Connection) -> None:
        super()._release(party, conn)
        self._close_callbacks.append(self._close_callbacks[-1])  # BUG: on_close queued twice


VARIANTS: dict[str, type[Channel]] = {
    "release-without-signal": _with_token(_ReleaseWithoutSignal),
    "signal-before-release": _with_token(_SignalBeforeRelease),
    "waiter-after-yield": _with_token(_WaiterAfterYield),
    "dispose-before-waiters-drained": DisposeBeforeWaitersDrained,
    "send-without-token": _with_token(_SendSkipsTheToken),
    "on-close-twice": OnCloseTwice,
}
