"""Which Close frames we may send (RFC 6455 5.5, 7.4): the one rule the core's deinit, the
command line's close options and the test server apply. A module of its own, without the
channel's other imports, because ``--help`` shows the codes in words."""

from __future__ import annotations

from typing import Literal

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
