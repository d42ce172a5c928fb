"""Names of WebSocket close codes (RFC 6455 section 7.4 and the IANA registry), for messages."""

from __future__ import annotations

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


def close_code_name(code: int) -> str:
    """``4001`` -> "private use", ``1000`` -> "normal closure"."""
    if code in CLOSE_CODE_NAMES:
        return CLOSE_CODE_NAMES[code]
    if 3000 <= code <= 3999:
        return "registered"
    if 4000 <= code <= 4999:
        return "private use"
    return "unknown"
