"""Every future the core resolves with an error is retrieved: a connection that closes with
pings pending leaves no "Future exception was never retrieved" (issue 10 item 10)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from wschan_cli.channel import What

from .helpers import is_, open_watched, run
from .test_channel_cancel import Peer


def test_a_ping_cancelled_in_its_write_leaves_no_unretrieved_future_at_the_close() -> None:
    """A ping cancelled while its frame drains (as a timeout around it does) never awaits its
    Pong; the close that follows must not leave that future's error unretrieved."""
    reported: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: reported.append(ctx))
        async with Peer() as peer:  # it never answers a Ping
            ch, rec, gate = await open_watched(peer.url)
            gate.drain_gate.close()
            ping = asyncio.ensure_future(ch.ping(b"p"))
            await gate.draining.wait()
            ping.cancel()
            await asyncio.gather(ping, return_exceptions=True)
            gate.drain_gate.open()
            gate.end_reading()  # the connection closes with that Ping still unanswered
            await rec.wait_for(is_(What.CLOSED))
            await ch.deinit()
            del ping
            gc.collect()

    run(main())
    gc.collect()
    assert [ctx["message"] for ctx in reported] == []
