"""Names of WebSocket close codes (RFC 6455 section 7.4 and the IANA registry), and the one
line that says how a connection ended (``describe_close``), for send and connect alike."""

from __future__ import annotations

from typing import Any

from wschan_cli.channel.close import WRITE_TIMED_OUT
from wschan_cli.channel.sendable import SENDABLE_CLOSE_CODES, unsendable_part

CLOSE_CODE_NAMES = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status code",
    1006: "abnormal closure",
    1007: "invalid data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure",
}


def close_frame_problem(code: int, reason: str) -> tuple[str, str] | None:
    """What keeps (``code``, ``reason``) out of a Close frame we send, as (which, why), or None.
    ``which`` is "code" or "reason"; the rule is the core's (``unsendable_part``)."""
    part = unsendable_part(code, reason)
    if part == "code":
        return "code", f"{code} cannot be sent in a Close frame: use {SENDABLE_CLOSE_CODES}"
    if part == "reason":  # RFC 6455 5.5: 125-byte payload
        return "reason", "the reason must be at most 123 bytes of UTF-8"
    return None


def close_code_name(code: int) -> str:
    """``4001`` -> "private use", ``1000`` -> "normal closure"."""
    if code in CLOSE_CODE_NAMES:
        return CLOSE_CODE_NAMES[code]
    if 3000 <= code <= 3999:
        return "registered"
    if 4000 <= code <= 4999:
        return "private use"
    return "unknown"


def describe_close(
    info: Any, *, close_timeout: float | None = None, write_timeout: float | None = None
) -> str:
    """How a connection ended, in one line (after "wschan: "): who closed, code, name, reason.

    ``info`` is the channel's ``CloseInfo``; the timeouts are named when one of them ended it.
    """
    from .escape import escape_control

    reason = escape_control(info.reason, one_line=True)
    if info.code == 1006:
        if info.reason == WRITE_TIMED_OUT:
            return (
                f"a frame could not be written within {_seconds(write_timeout)} "
                "(--write-timeout): the server stopped reading; connection aborted (1006)"
            )
        if info.reason in _CLOSE_UNANSWERED:
            return (
                f"the server did not answer the Close frame within {_seconds(close_timeout)} "
                "(--close-timeout); connection aborted (1006)"
            )
        if info.by == "peer":
            return "the server dropped the connection without a Close frame (1006)"
        return f"connection aborted: {reason} (1006)"
    label = f"{info.code} ({close_code_name(info.code)})" + (f' "{reason}"' if reason else "")
    if info.by == "peer":
        return f"the server closed the connection: {label}"
    hint = " (raise --max-size)" if info.code == 1009 else ""
    return f"closed the connection: {label}{hint}"


# The core's reasons for a Close of ours left unanswered (channel.py, _shutdown and the reader).
_CLOSE_UNANSWERED = frozenset(
    {"no Close answer within the close timeout", "peer did not close TCP after the Close"}
)


def _seconds(value: float | None) -> str:
    return f"{value:g}s" if value is not None else "the limit"
