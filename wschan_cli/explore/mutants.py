"""Deliberately broken variants of the core, to prove the explorer's checks bite.

Each variant is a *mutation*: a small text patch of real modules of ``channel/`` (``token.py``,
``channel.py``, or a module the channel imports its parties from, such as ``reader.py``),
compiled at run time into modules of their own. A token mutation plugs in through the channel's
seam (``Channel.token_class``); any other is the ``Channel`` of ``channel.py`` (patched or not)
compiled against the patched modules. Nothing overwrites private state of a live object, and a
patch that no longer applies (the core changed under it) fails loudly instead of testing the
unpatched code. None of this is used by the client.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import types
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wschan_cli.channel import Channel


@dataclass(frozen=True)
class Mutation:
    name: str
    module: str  # which file of wschan_cli/channel/ is patched: "token", "channel", "reader"...
    patches: tuple[tuple[str, str], ...]  # (old, new): each old text occurs exactly once
    breaks: str  # the rule it breaks, in channel-model.md's words
    # A rule written across files: (module, patches) of each further file.
    more: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def by_module(self) -> dict[str, tuple[tuple[str, str], ...]]:
        return {self.module: self.patches, **dict(self.more)}


class PatchDoesNotApply(Exception):
    """A mutation's old text is not (or not once) in the module: the core changed under it."""


def _t(*pairs: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return pairs


MUTATIONS: dict[str, Mutation] = {
    m.name: m
    for m in [
        Mutation(
            "release-without-signal",
            "token",
            _t(
                (
                    "            if self.waiters:  # even if an observer",
                    "            if False:  # even if an observer",
                ),
            ),
            "2: every release wakes one queued waiter",
        ),
        Mutation(
            "signal-before-release",
            "token",
            _t(
                (
                    "        self.holder = None\n        try:\n",
                    "        if self.waiters:\n            self._signal(party)\n"
                    "        self.holder = None\n        try:\n",
                ),
                (
                    "            if self.waiters:  # even if an observer",
                    "            if False:  # even if an observer",
                ),
            ),
            "2: a release is not a hand-off (signal after the release)",
        ),
        Mutation(
            "waiter-after-yield",
            "token",
            _t(
                (
                    "        while self.holder is not None:\n"
                    "            future = self.waiters.push(party)",
                    "        while self.holder is not None:\n"
                    "            await asyncio.sleep(0)\n"
                    "            future = self.waiters.push(party)",
                ),
            ),
            "2: a waiter is queued before the holder can release",
        ),
        Mutation(
            "send-without-token",
            "token",
            _t(
                (
                    "        while self.holder is not None:\n",
                    "        while self.holder is not None and party.kind != 'send':\n",
                ),
                (
                    "        if self.holder is not party and self.holder != party:\n"
                    "            raise TokenMisuse",
                    "        if False:\n            raise TokenMisuse",
                ),
            ),
            "1: at most one party holds sending",
        ),
        Mutation(
            "signal-twice",
            "token",
            _t(
                (
                    "no lost wake-up\n                self._signal(party)\n",
                    "no lost wake-up\n                self._signal(party)\n"
                    "                self._signal(party)\n",
                ),
            ),
            "2: a release wakes exactly one waiter",
        ),
        Mutation(
            "lifo-wake-up",
            "token",
            _t(("party, future = self._queue.popleft()", "party, future = self._queue.pop()")),
            "1 (section 1): waiters are woken in FIFO order",
        ),
        Mutation(
            "cancelled-waiter-swallows-wake-up",
            "token",
            _t(
                (
                    "                    self._signal(party)  # we were woken",
                    "                    pass  # we were woken",
                ),
            ),
            "2, D11: a cancelled woken waiter passes the wake-up on",
        ),
        Mutation(
            "dispose-before-waiters-drained",
            "channel",
            _t(("        while self._inside:\n", "        while False:\n")),
            "7, D6: dispose last, after every party left",
        ),
        Mutation(
            "on-close-twice",
            "channel",
            _t(
                (
                    "        self._close_callbacks.append((party, info))\n",
                    "        self._close_callbacks.append((party, info))\n"
                    "        self._close_callbacks.append((party, info))\n",
                ),
            ),
            "6: on_close once per connection",
        ),
        Mutation(
            "on-close-under-token",
            "channel",
            _t(
                (
                    "        self._close_callbacks.append((party, info))\n",
                    "        self._emit(party, What.ON_CLOSE, code=info.code, reason=info.reason,"
                    " by=info.by)\n"
                    "        if self._on_close is not None:\n"
                    "            self._on_close(info)  # under the token, as the C++ (H6)\n",
                ),
            ),
            "D7: callbacks run outside the token",
        ),
        Mutation(
            "reader-writes-pong",
            "reader",
            _t(
                (
                    "if owed:\n                _queue_replies(ch, conn, owed)\n",
                    "for chunk in owed:\n                conn.transport.write(chunk)\n",
                ),
            ),
            "1, 8: a Pong goes through the token like every write",
        ),
        Mutation(
            "send-releases-before-drain",
            "channel",
            _t(
                (
                    "        try:\n            if conn.transport.writing_paused:",
                    "        if party.kind == 'send' and self._token.holder is party:\n"
                    "            self._token.release(party)\n"
                    "        try:\n            if conn.transport.writing_paused:",
                ),
                (
                    "            finally:\n                self._token.release(party)\n"
                    "            self._emit(party, What.DONE)",
                    "            finally:\n                if self._token.holder is party:\n"
                    "                    self._token.release(party)\n"
                    "            self._emit(party, What.DONE)",
                ),
            ),
            "1: a send holds the token until its message has drained",
        ),
        Mutation(
            "unbounded-close-wait",
            "channel",
            _t(
                (
                    "self._clock.timeout(self.options.close_timeout):\n"
                    "                        await self._write(party, conn)\n",
                    "self._clock.timeout(None):\n"
                    "                        await self._write(party, conn)\n",
                ),
            ),
            "D5: the graceful close waits at most the close timeout, overall",
            more=(
                (
                    "reader",
                    _t(
                        (
                            "wait = limit if deadline is None else max(deadline - now, 0.0)",
                            "wait = limit  # per read, not overall",
                        ),
                    ),
                ),
            ),
        ),
        Mutation(
            "connector-releases-before-upgrade",
            "channel",
            _t(
                (
                    "                response = await conn.upgraded\n",
                    "                self._token.release(party)\n"
                    "                response = await conn.upgraded\n"
                    "                await self._token.take(party)\n",
                ),
            ),
            "D2: the connector holds the token through connect and upgrade",
        ),
        Mutation(
            "keepalive-without-token",
            "keepalive",
            _t(
                (
                    "            await ch._ping(None, keepalive=conn)\n",
                    "            conn.proto.send_ping(b'keepalive')\n"
                    "            for chunk in conn.proto.data_to_send():\n"
                    "                conn.transport.write(chunk)\n",
                ),
            ),
            "1: the keepalive ping goes through the token like every write",
        ),
        # Issue 8 item 1 and issue 9 items 1-4, each reintroduced into the fixed core.
        Mutation(
            "send-overtakes-owed-pong",
            "channel",
            _t(
                (
                    "        if conn.replies:  # D10: owed control replies go first",
                    "        if False:  # D10: owed control replies go first",
                ),
            ),
            "D10: an owed Pong goes out before any later-started send",
        ),
        Mutation(
            "close-echo-lost",
            "channel",
            _t(("                if not conn.replies or abort:\n", "                if True:\n")),
            "D10, RFC 6455 5.5.1: a received Close is echoed even when deinit holds the token",
        ),
        Mutation(
            "deinit-not-rerun-after-cancel",
            "channel",
            _t(
                (
                    "                self._deinit_done = None  # D14: the next deinit() runs the "
                    "teardown again\n            done.set_result(None)\n",
                    "                pass  # as before D14: only a teardown that ends resolves\n"
                    "            if self._disposed:\n                done.set_result(None)\n",
                ),
            ),
            "D11: a cancelled deinit does not stop a later one from disposing",
        ),
        Mutation(
            "half-message-on-cancel",
            "sending",
            _t(
                (
                    "            await ch._write(party, conn)\n"
                    "    except BaseException:\n"
                    "        _fail_mid_message(ch, party, conn)\n"
                    "        raise\n\n\n"
                    "async def write_stream",
                    "            await ch._write(party, conn)\n"
                    "    except BaseException:\n"
                    "        raise\n\n\n"
                    "async def write_stream",
                ),
            ),
            "D11: a cancelled fragmented send never leaves half a message on a live connection",
        ),
        Mutation(
            "half-connection-on-cancel",
            "channel",
            _t(
                (
                    "            if conn is not None:\n                conn.abandoned = True\n",
                    "            if False:\n                conn.abandoned = True\n",
                ),
            ),
            "D11: a cancelled connector releases its half-made connection",
        ),
    ]
}

# The twelve mutations of issue 12 (the test suite caught all twelve; the explorer, before its
# new peer and checks, five): the first five below, then the seven it missed.
TWELVE = (
    "release-without-signal",
    "signal-before-release",
    "waiter-after-yield",
    "send-without-token",
    "dispose-before-waiters-drained",
    "signal-twice",
    "reader-writes-pong",
    "send-releases-before-drain",
    "cancelled-waiter-swallows-wake-up",
    "on-close-under-token",
    "lifo-wake-up",
    "unbounded-close-wait",
)


def apply(source: str, mutation: Mutation, module: str | None = None) -> str:
    """``source`` (of ``module``, by default the mutation's first) with its patches applied."""
    module = module or mutation.module
    for old, new in mutation.by_module()[module]:
        if source.count(old) != 1:
            raise PatchDoesNotApply(
                f"{mutation.name}: {old.strip()[:60]!r} occurs {source.count(old)} times "
                f"in channel/{module}.py"
            )
        source = source.replace(old, new)
    return source


def _source(module: str) -> str:
    return inspect.getsource(importlib.import_module(f"wschan_cli.channel.{module}"))


def _compile(name: str, module: str, source: str) -> types.ModuleType:
    """``source`` as the module ``channel/<module>.py`` of mutation ``name``."""
    real = importlib.import_module(f"wschan_cli.channel.{module}")
    module_name = f"wschan_cli.channel._mutant_{name.replace('-', '_')}_{module}"
    compiled = types.ModuleType(module_name)
    compiled.__package__ = "wschan_cli.channel"
    compiled.__file__ = real.__file__
    sys.modules[module_name] = compiled  # dataclasses look their module up while compiling
    exec(compile(source, f"<mutation {name} of {real.__file__}>", "exec"), compiled.__dict__)
    return compiled


@functools.cache
def mutant(name: str) -> type[Channel]:
    """The channel class of mutation ``name``, compiled from the patched real modules."""
    from wschan_cli.channel import Channel

    mutation = MUTATIONS[name]
    modules = mutation.by_module()
    patched = {
        module: _compile(name, module, apply(_source(module), mutation, module))
        for module in modules
        if module != "channel"
    }
    if set(modules) == {"token"}:
        return type(f"Channel[{name}]", (Channel,), {"token_class": patched["token"].Token})
    # channel.py, patched or not, compiled while the patched modules stand in for the real
    # ones, so that its imports of them (``from .reader import ...``) find the patched code.
    source = _source("channel")
    if "channel" in modules:
        source = apply(source, mutation, "channel")
    real = {module: sys.modules[f"wschan_cli.channel.{module}"] for module in patched}
    try:
        sys.modules.update({f"wschan_cli.channel.{m}": mod for m, mod in patched.items()})
        channel_module = _compile(name, "channel", source)
    finally:
        sys.modules.update({f"wschan_cli.channel.{m}": mod for m, mod in real.items()})
    channel_cls: type[Channel] = channel_module.Channel
    return channel_cls
