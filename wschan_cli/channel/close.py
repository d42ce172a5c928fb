"""How a connection closes: which Close frames may be sent, and how an ended connection is
summed up (``CloseInfo``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import ChannelClosed

if TYPE_CHECKING:
    from websockets.client import ClientProtocol

OK_CLOSE_CODES = (1000, 1001)

#: The close codes a client may put in a Close frame, in words (RFC 6455 7.4).
SENDABLE_CLOSE_CODES = "1000-1003, 1007-1014 or 3000-4999"


def unsendable_part(code: int, reason: str) -> Literal["code", "reason"] | None:
    """Which part of (``code``, ``reason``) keeps it out of a Close frame we send, or None.

    The code: websockets' own check (RFC 6455 7.4: 1004-1006, 1015 and codes outside
    1000-4999 are never sent). The reason: at most 123 bytes of UTF-8, a control frame's
    125-byte payload less the code (5.5); a reason that is not UTF-8 at all cannot go either.
    """
    # Imported here: the command line checks its close options with this rule, and its --help
    # must not load websockets.
    from websockets.exceptions import ProtocolError
    from websockets.frames import Close

    try:
        Close(code, "").check()
    except ProtocolError:
        return "code"
    try:
        size = len(reason.encode())
    except UnicodeEncodeError:
        return "reason"
    return "reason" if size > 123 else None


def check_sendable(code: int, reason: str) -> None:
    """Raise ValueError unless a Close frame with this code and reason may be sent
    (``unsendable_part``); a reason that is not UTF-8 raises UnicodeEncodeError, a ValueError."""
    part = unsendable_part(code, reason)
    if part == "code":
        raise ValueError(f"close code {code} may not be sent in a Close frame")
    if part == "reason":
        raise ValueError(f"close reason too long: {len(reason.encode())} bytes (at most 123)")


@dataclass(frozen=True)
class CloseInfo:
    """How a connection ended: code and reason, who closed first, and whether it was clean."""

    code: int
    reason: str
    by: str  # "peer", "local" or "network"
    clean: bool

    def error(self) -> ChannelClosed:
        return ChannelClosed(self.code, self.reason, self.by)


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
