"""One connection of the embedded server: it records the pongs and the close code the client sent,
writes through a :class:`~wschan_cli.server.cork.CorkedTransport`, and, with ``ignore_close``,
swallows the server's answer to the client's Close.

Each hook here runs for what it is about and nothing else, because the echo path goes through
this class for every message: the Pong hook runs for Pong frames only, and the Close-swallowing
write hook only on the connections of a server with ``ignore_close`` (issue 13, item 4: a plain
echo pays nothing for the faults it does not use)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from websockets.asyncio.server import ServerConnection

from .cork import CorkedTransport

if TYPE_CHECKING:
    from .embedded import EmbeddedServer

__all__ = ["BehaviourConnection", "SwallowingCloseConnection"]


class BehaviourConnection(ServerConnection):
    """A server connection that records pongs and close codes.

    ``serve()`` builds connections through its ``create_connection`` hook, which
    passes a fixed set of arguments; :class:`EmbeddedServer` makes a subclass with
    ``owner`` set so that each connection can reach its recorder.
    """

    owner: EmbeddedServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accepted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The echoes of one turn of the loop leave in one system call (cork.py).
        self.corked = CorkedTransport(cast(asyncio.Transport, transport))
        super().connection_made(self.corked)
        self.owner.live.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.corked.discard()
        super().connection_lost(exc)
        self.owner.live.discard(self)
        if self.accepted:
            close = self.protocol.close_rcvd
            self.owner.record_end(None if close is None else close.code)

    def acknowledge_pings(self, data: bytes) -> None:
        super().acknowledge_pings(data)
        # websockets calls this for every Pong frame received, so unsolicited pongs and pongs
        # with unexpected payloads are recorded too (which ping()'s waiter would not show),
        # and data frames do not come through here.
        self.owner.record_pong(data)


class SwallowingCloseConnection(BehaviourConnection):
    """A connection of a server with ``ignore_close``: it never answers the client's Close."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # With ignore_close the server must never give up on its own: the
        # whole point is that the *client* times out. A close timeout here
        # would abort TCP and hand the client a clean-looking end. Shutdown
        # of the EmbeddedServer aborts such connections explicitly instead.
        kwargs["close_timeout"] = None
        super().__init__(*args, **kwargs)

    def send_data(self) -> None:
        # How ignore_close works: websockets answers a Close frame inside its
        # Sans-I/O protocol (recv_frame queues the echoed Close frame and, on the
        # server side, an end-of-stream marker), and the connection then writes
        # whatever the protocol queued. Intercepting at this single write point
        # is robust: the protocol state machine stays consistent (it believes
        # it answered, so recv() and the handler behave normally), while nothing
        # reaches the wire. close_rcvd_then_sent tells a client-initiated close
        # (swallowed) from one the server started itself, e.g. close_after or
        # shutdown, which must still go out. The cost: control frames answered in
        # the same read as the Close (a Pong) are dropped as well, which is fine
        # since the client is closing anyway. Once the client gives up and closes
        # its side, asyncio closes ours (eof_received keeps no half-open socket);
        # that is the end the test is after, and it lets close_codes be recorded.
        if self.protocol.close_rcvd is not None and self.protocol.close_rcvd_then_sent:
            self.protocol.data_to_send()  # discard the Close reply and the EOF
            return
        super().send_data()
