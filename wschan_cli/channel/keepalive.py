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
            await _kill(ch, conn)
    except (ChannelError, asyncio.CancelledError):
        pass  # the connection is closing anyway


async def _kill(ch: Channel, conn: Connection) -> None:
    """No Pong in time: the peer is gone, cut the link (1011, no Close: nothing would answer
    it). Unless the peer's Close came while we waited for the token: then it is alive and
    closing, and its Close is answered like in any shutdown (RFC 6455 5.5.1)."""
    party = ch._new_party("keepalive")
    ch._enter()
    try:
        await ch._token.take(party)
        try:
            if not conn.released and conn.proto.close_rcvd is None:
                conn.local_close = conn.local_close or CloseInfo(
                    1011, "keepalive ping timeout", "local", clean=False
                )
                await ch._shutdown(party, conn, graceful=None, abort=True)
            elif not conn.released:
                await ch._shutdown(party, conn, graceful=None)  # answers the peer's Close
        finally:
            ch._token.release(party)
    finally:
        ch._leave()
