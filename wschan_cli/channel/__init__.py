"""The channel core: a WebSocket client channel on the sogou/workflow design.

Imports nothing of the command line or of rendering. See ``channel.Channel``.
"""

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
from .events import Event, Party, Subscriber, What
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
