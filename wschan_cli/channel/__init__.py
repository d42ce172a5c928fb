"""The channel core: a WebSocket client channel on the sogou/workflow design.

Imports nothing of the command line or of rendering. See ``channel.Channel``.

A name is imported from its module when it is first used (PEP 562), so that the command line
can read ``ChannelOptions`` and its defaults (for ``--help``) without loading websockets.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .channel import Channel, ProtocolState
    from .clock import Clock, LoopClock
    from .close import CloseInfo
    from .dial import open_tcp
    from .errors import (
        ChannelClosed,
        ChannelDisposed,
        ChannelError,
        ConnectError,
        ConnectionRefused,
        DNSError,
        HandshakeError,
        HandshakeInterrupted,
        HandshakeRejected,
        InvalidURL,
        OpenTimeout,
        PingTimeout,
        ProxyError,
        TLSError,
        WriteTimeout,
    )
    from .events import Event, Party, PartyKind, Subscriber, What
    from .messages import Message
    from .options import ChannelOptions
    from .token import Token, TokenMisuse, WaiterQueue
    from .transport import StreamTransport, Transport, TransportFactory

__all__ = [
    "Channel",
    "ChannelClosed",
    "ChannelDisposed",
    "ChannelError",
    "ChannelOptions",
    "Clock",
    "CloseInfo",
    "ConnectError",
    "ConnectionRefused",
    "DNSError",
    "Event",
    "HandshakeError",
    "HandshakeInterrupted",
    "HandshakeRejected",
    "InvalidURL",
    "LoopClock",
    "Message",
    "OpenTimeout",
    "Party",
    "PartyKind",
    "PingTimeout",
    "ProtocolState",
    "ProxyError",
    "StreamTransport",
    "Subscriber",
    "TLSError",
    "Token",
    "TokenMisuse",
    "Transport",
    "TransportFactory",
    "WaiterQueue",
    "What",
    "WriteTimeout",
    "open_tcp",
]

# The module of each name above but the errors (errors.py), for the first use of that name.
_HOMES = {
    "Channel": "channel",
    "ProtocolState": "channel",
    "Clock": "clock",
    "LoopClock": "clock",
    "CloseInfo": "close",
    "open_tcp": "dial",
    "Event": "events",
    "Party": "events",
    "PartyKind": "events",
    "Subscriber": "events",
    "What": "events",
    "Message": "messages",
    "ChannelOptions": "options",
    "Token": "token",
    "TokenMisuse": "token",
    "WaiterQueue": "token",
    "StreamTransport": "transport",
    "Transport": "transport",
    "TransportFactory": "transport",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES.get(name, 'errors')}"), name)
    globals()[name] = value  # looked up once
    return value
