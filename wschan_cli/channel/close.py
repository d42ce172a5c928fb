"""How an ended connection is summed up (``CloseInfo``); which Close frames may be sent is
``sendable.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ChannelClosed

if TYPE_CHECKING:
    from websockets.client import ClientProtocol

OK_CLOSE_CODES = (1000, 1001)

# The reasons of the 1006 we record when we cut the link because our own writes did not drain:
# a frame within the write timeout (D8), or the owed replies (a Pong, the Close echo) within
# the close timeout of a shutdown (D5). Then nothing more can reach the peer, its Close
# included (the explorer's peer excuses an unanswered Close for these).
WRITE_TIMED_OUT = "write timed out"
REPLIES_TIMED_OUT = "owed replies did not drain within the close timeout"
UNDRAINED = (WRITE_TIMED_OUT, REPLIES_TIMED_OUT)


@dataclass(frozen=True)
class CloseInfo:
    """How a connection ended: code and reason, who closed first, and whether it was clean."""

    code: int
    reason: str
    by: str  # "peer", "local" or "network"
    clean: bool

    def error(self) -> ChannelClosed:
        return ChannelClosed(self.code, self.reason, self.by)


def handshake_done(proto: ClientProtocol) -> bool:
    """Both Close frames went: the closing handshake is complete (RFC 6455 7.1.4: what ends
    TCP after that no longer changes how the connection closed)."""
    return proto.close_rcvd is not None and proto.close_sent is not None


def close_info(proto: ClientProtocol, *, local_close: CloseInfo | None, failed: bool) -> CloseInfo:
    """How the connection of ``proto`` ended (or, before its release, is ending).

    ``local_close`` is what we recorded when we cut the link ourselves (timeouts, aborts): it
    stands over whatever the protocol saw. ``failed``: we failed the connection (1007, 1011).
    """
    if local_close is not None:
        return local_close
    rcvd = proto.close_rcvd
    if rcvd is not None:
        # close_rcvd_then_sent is False only when our Close went first.
        by = "local" if proto.close_rcvd_then_sent is False else "peer"
        clean = rcvd.code in OK_CLOSE_CODES
        return CloseInfo(int(rcvd.code), rcvd.reason, by, clean)
    sent = proto.close_sent
    failed_by_parser = proto.parser_exc is not None and not isinstance(
        proto.parser_exc,
        EOFError,  # EOF is the peer's doing, not a protocol error of ours
    )
    if sent is not None and (failed or failed_by_parser):
        # We failed the connection (1002, 1007, 1009, 1011): the code is ours.
        return CloseInfo(int(sent.code), sent.reason, "local", clean=False)
    return CloseInfo(1006, "connection dropped without a Close frame", "peer", clean=False)
