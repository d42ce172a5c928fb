"""What the embedded server does besides echoing: the faults a client has to cope with, chosen
per server and checked once, here, so that a bad setting fails at construction and not as a log
line inside a connection handler."""

from __future__ import annotations

import http
from dataclasses import dataclass

from wschan_cli.channel.sendable import SENDABLE_CLOSE_CODES, unsendable_part

__all__ = ["Behaviour"]


@dataclass(frozen=True)
class Behaviour:
    """What the server does besides echoing. The default is a plain echo server.

    Counts (``close_after``, ``drop_after``) are numbers of messages echoed on one
    connection; 0 means "right after the handshake" (after the on-connect actions).

    The on-connect actions run right after the handshake, in this order:
    ``ping_on_connect``, ``greeting``, ``send_size``, ``invalid_utf8`` (the last one
    makes a conforming client close, so it goes last).
    """

    close_after: int | None = None
    """After echoing this many messages, close cleanly with ``close_code``/``close_reason``."""
    close_code: int = 1000
    """Close code used by ``close_after``."""
    close_reason: str = ""
    """Close reason used by ``close_after`` (at most 123 bytes of UTF-8)."""
    drop_after: int | None = None
    """After echoing this many messages, abort TCP without sending a Close frame."""
    drop_mid_frame: bool = False
    """With ``drop_after``: first send half a frame (header for 1000 bytes, 10 bytes of it)."""
    ignore_close: bool = False
    """Never answer the client's Close frame and never close TCP; the client must time out."""
    reject_status: int | None = None
    """Refuse the upgrade with this HTTP status."""
    reject_body: str = ""
    """Body of the refusal sent with ``reject_status``."""
    stall_before_upgrade: float | None = None
    """Wait this many seconds before answering the handshake request."""
    ping_on_connect: bytes | None = None
    """Send a Ping with this payload (at most 125 bytes) right after the handshake."""
    invalid_utf8: bool = False
    """Send a text frame whose payload is not UTF-8 right after the handshake."""
    send_size: int | None = None
    """Send one binary message of this many (random, incompressible) bytes after the handshake."""
    greeting: str | None = None
    """Send this text message right after the handshake."""

    def __post_init__(self) -> None:
        # Validate here rather than fail inside a connection handler, where the
        # error would only show up as a log line and a confusing client failure.
        for name in ("close_after", "drop_after", "send_size"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, not {value}")
        if self.close_after is not None and self.drop_after is not None:
            raise ValueError("close_after and drop_after are mutually exclusive")
        if self.drop_mid_frame and self.drop_after is None:
            raise ValueError("drop_mid_frame needs drop_after")
        part = unsendable_part(self.close_code, self.close_reason)
        if part == "code":
            raise ValueError(
                f"close_code {self.close_code} cannot be sent in a Close frame "
                f"(use {SENDABLE_CLOSE_CODES})"
            )
        if part == "reason":
            raise ValueError("close_reason must be at most 123 bytes of UTF-8")
        if self.reject_status is not None:
            try:
                status = http.HTTPStatus(self.reject_status)
            except ValueError:
                raise ValueError(
                    f"reject_status {self.reject_status} is not a known HTTP status"
                ) from None
            if not 200 <= status <= 599:
                raise ValueError("reject_status must be between 200 and 599")
        if self.stall_before_upgrade is not None and self.stall_before_upgrade < 0:
            raise ValueError("stall_before_upgrade must be >= 0")
        if self.ping_on_connect is not None and len(self.ping_on_connect) > 125:
            raise ValueError("ping_on_connect payload must be at most 125 bytes")

    def describe(self) -> list[str]:
        """One short human-readable line per non-default setting (for ``wschan serve``)."""
        lines: list[str] = []
        if self.reject_status is not None:
            lines.append(f"reject the upgrade with HTTP {self.reject_status}")
        if self.stall_before_upgrade is not None:
            lines.append(f"stall {self.stall_before_upgrade:g}s before answering the handshake")
        if self.ping_on_connect is not None:
            lines.append(f"ping on connect with payload {self.ping_on_connect!r}")
        if self.greeting is not None:
            lines.append(f"greet with {self.greeting!r}")
        if self.send_size is not None:
            lines.append(f"send a {self.send_size}-byte binary message on connect")
        if self.invalid_utf8:
            lines.append("send a text frame with invalid UTF-8 on connect")
        if self.close_after is not None:
            reason = f" {self.close_reason!r}" if self.close_reason else ""
            lines.append(
                f"close with {self.close_code}{reason} after {self.close_after} message(s)"
            )
        if self.drop_after is not None:
            how = "mid-frame" if self.drop_mid_frame else "without a Close frame"
            lines.append(f"drop TCP {how} after {self.drop_after} message(s)")
        if self.ignore_close:
            lines.append("ignore the client's Close frame")
        return lines
