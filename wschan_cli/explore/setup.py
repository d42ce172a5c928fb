"""What an exploration sets up: the parties it explores (``Setup``), the bytes that must not
vary between replays, and the parties chosen on the command line."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from wschan_cli.channel import Channel

from .parties import PARTIES

URL = "ws://sim.invalid/"
TIMEOUT = 1.0  # every timeout of the explored channel (virtual seconds)


@dataclass(frozen=True)
class Setup:
    senders: int = 2
    with_ping: bool = False
    abrupt: bool = False
    channel_cls: type[Channel] = Channel  # a broken variant substitutes its class (mutants.py)
    peer_close: bool = False  # the peer sends a Close frame (then ends TCP) instead of only EOF
    symmetric: bool = True  # sends not yet started are interchangeable in the explored state
    connector: bool = False  # no connection at the start: the first send connects
    keepalive: bool = False  # keepalive pings, interval and timeout as competing timers
    peer_ping: bool = False  # the peer pings (the auto reply owes a Pong)
    peer_data: bool = False  # the peer sends two fragments with a Ping between, one step each
    autobahn: bool = False  # fragment, Ping, last fragment in one read; process() echoes
    stall: bool = False  # the peer stops reading at some step (drains block, D8)
    cancel: bool = False  # a party cancels the first send at some step (D11)
    cancel_deinit: bool = False  # a party cancels deinit at some step; a second deinit follows
    fragments: int = 1  # each send goes out in this many fragments
    slow_close: bool = False  # after our Close the peer keeps pinging and never ends TCP
    deinit_last: bool = False  # deinit starts once the sends resolved (reconnects run first)
    on_close_deinit: bool = False  # the application calls deinit() from on_close (D7; H6)

    @property
    def timers_compete(self) -> bool:
        return self.keepalive or self.stall or self.slow_close


class _FixedRandom:
    """Masks, handshake keys and keepalive payloads of zeros: a schedule replays byte for byte
    (the same prefix, the same state), and their randomness decides nothing."""

    @staticmethod
    def token_bytes(n: int) -> bytes:
        return bytes(n)

    urandom = token_bytes


@contextlib.contextmanager
def deterministic_bytes(channel_cls: type[Channel]) -> Iterator[None]:
    import sys

    import websockets.frames
    import websockets.utils

    import wschan_cli.channel.protocol

    patched = [(websockets.frames, "secrets"), (websockets.utils, "secrets")]
    patched.append((wschan_cli.channel.protocol, "os"))  # the masking keys' os.urandom
    for cls in channel_cls.__mro__:
        module = sys.modules.get(cls.__module__)
        if module is not None and hasattr(module, "os"):
            patched.append((module, "os"))  # the channel module's os.urandom (ping payloads)
    saved = [getattr(m, name) for m, name in patched]
    for m, name in patched:
        setattr(m, name, _FixedRandom)
    try:
        yield
    finally:
        for (m, name), real in zip(patched, saved, strict=True):
            setattr(m, name, real)


def with_parties(setup: Setup, names: list[str]) -> Setup:
    changes: dict[str, Any] = {}
    for name in names:
        changes.update(PARTIES[name][0])
    return dataclasses.replace(setup, **changes)
