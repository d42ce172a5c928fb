"""The keepalive party of a connection (RFC 6455 5.5.2): a Ping every ``ping_interval``, and
the connection killed when its Pong is late.

Part of ``Channel``, split off by party: it pings through the channel's out tasks and kills
through its shutdown, holding the token like every other party.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .close import CloseInfo
from .connection import Connection
from .errors import ChannelError, PingTimeout

if TYPE_CHECKING:
    from .channel import Channel


async def keep_alive(ch: Channel, conn: Connection) -> None:
    """Ping every ``ping_interval`` while ``conn`` is usable, through the token like any out
    task; a Pong later than ``ping_timeout`` kills the connection with 1011."""
    interval = ch.options.ping_interval
    assert interval is not None
    try:
        while conn.usable:
            await ch._clock.sleep(interval)
            await ch._ping(None, keepalive=conn)
    except PingTimeout:
        if conn.usable:
            conn.local_close = CloseInfo(1011, "keepalive ping timeout", "local", clean=False)
            await _kill(ch, conn)
    except (ChannelError, asyncio.CancelledError):
        pass  # the connection is closing anyway


async def _kill(ch: Channel, conn: Connection) -> None:
    party = ch._new_party("keepalive")
    ch._enter()
    try:
        await ch._token.take(party)
        try:
            if not conn.released:
                await ch._shutdown(party, conn, graceful=None, abort=True)
        finally:
            ch._token.release(party)
    finally:
        ch._leave()
