"""One connection of the embedded server: it records the pongs and the close code the client sent,
and, with ``ignore_close``, swallows the server's answer to the client's Close."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode

if TYPE_CHECKING:
    from .embedded import EmbeddedServer

__all__ = ["BehaviourConnection"]


class BehaviourConnection(ServerConnection):
    """A server connection that records pongs and close codes and can swallow Close.

    ``serve()`` builds connections through its ``create_connection`` hook, which
    passes a fixed set of arguments; :class:`EmbeddedServer` makes a subclass with
    ``owner`` set so that each connection can reach its recorder.
    """

    owner: EmbeddedServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if self.owner.behaviour.ignore_close:
            # With ignore_close the server must never give up on its own: the
            # whole point is that the *client* times out. A close timeout here
            # would abort TCP and hand the client a clean-looking end. Shutdown
            # of the EmbeddedServer aborts such connections explicitly instead.
            kwargs["close_timeout"] = None
        super().__init__(*args, **kwargs)
        self.accepted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.owner.live.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.owner.live.discard(self)
        if self.accepted:
            close = self.protocol.close_rcvd
            self.owner.record_end(None if close is None else close.code)

    def process_event(self, event: Any) -> None:
        super().process_event(event)
        # Pongs are recorded here rather than through ping()'s waiter so that
        # unsolicited pongs and pongs with unexpected payloads are seen too.
        if isinstance(event, Frame) and event.opcode is Opcode.PONG:
            self.owner.record_pong(bytes(event.data))

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
        if (
            self.owner.behaviour.ignore_close
            and self.protocol.close_rcvd is not None
            and self.protocol.close_rcvd_then_sent
        ):
            self.protocol.data_to_send()  # discard the Close reply and the EOF
            return
        super().send_data()
