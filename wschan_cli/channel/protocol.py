"""The sans-I/O protocol of one connection: websockets' ``ClientProtocol``, adapted (a Close
between fragments, fewer copies), made from the channel's options, and read as a value for the
explorer. The channel decides who hands its bytes to the transport; this module is the protocol.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from typing import Any

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Origin, Subprotocol
from websockets.uri import WebSocketURI
from websockets.version import version as websockets_version

from . import outbound
from .errors import HandshakeRejected
from .inbound import ChunkReader
from .options import ChannelOptions

# Opcodes by the low nibble of a serialized frame's first byte, to name what is written.
OPCODE_NAMES = {0: "cont", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
_CLOSE = Opcode.CLOSE  # read on every frame: an Enum class attribute costs a call in 3.11


class ChannelProtocol(ClientProtocol):
    """websockets' client protocol, accepting a Close between the fragments of a message.

    RFC 6455 5.4 lets control frames, Close included, come between fragments; 5.5.1 then asks
    for a Close in response, and 1.4 to discard what follows. websockets instead fails such a
    connection with 1002 ("incomplete fragmented message", Autobahn 7.1.5). Forgetting the
    message in progress just before websockets reads the Close gives the RFC's behaviour: the
    unfinished message is dropped and the Close is echoed.

    It also reads through ``ChunkReader``, so that a payload is copied once on its way in, and
    serializes frames with ``outbound`` (fewer copies, pooled masking keys) unless an extension
    or websockets' debug logging needs its own path.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Before any byte is fed; the parser, started by websockets' __init__, is started
        # again so that it reads through the new reader.
        self.reader = ChunkReader()  # type: ignore[assignment]  # same interface, not a subclass
        self._keys = outbound.MaskKeys(os.urandom)  # looked up now: a scheduler may fix it
        self.parser = self.parse()
        next(self.parser)

    def send_frame(self, frame: Frame) -> None:
        if self.extensions or self.debug:  # compression, or websockets' frame logging
            super().send_frame(frame)
            return
        frame.check()
        self.writes.append(outbound.serialize(frame, self._keys.next()))

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is _CLOSE:
            self.current_size = None  # websockets' count of the message in progress
        super().recv_frame(frame)


def frames_to_write(proto: ClientProtocol) -> list[bytes]:
    """What the protocol queued for the wire, without its end-of-stream marker (b"": the
    transport's close does that). The marker is rare: the list is copied only when it is in."""
    chunks = proto.data_to_send()
    return [chunk for chunk in chunks if chunk] if b"" in chunks else chunks


def new_protocol(uri: WebSocketURI, opts: ChannelOptions) -> ChannelProtocol:
    """A client protocol for one connection, as the options ask."""
    return ChannelProtocol(
        uri,
        origin=Origin(opts.origin) if opts.origin else None,
        extensions=enable_client_permessage_deflate(None) if opts.compression else None,
        subprotocols=[Subprotocol(p) for p in opts.subprotocols] or None,
        max_size=opts.max_size,
    )


def request_headers(opts: ChannelOptions) -> list[tuple[str, str]]:
    """The upgrade request's extra headers: the options', and a User-Agent unless they name one."""
    headers = list(opts.headers)
    if not any(name.lower() == "user-agent" for name, _ in headers):
        agent = opts.user_agent or f"wschan websockets/{websockets_version}"
        headers.append(("User-Agent", agent))
    return headers


def rejection(url: str, proto: ClientProtocol, response: Response) -> HandshakeRejected:
    """The error for an upgrade the server answered without a 101 (or with an invalid one)."""
    exc = proto.handshake_exc
    body = bytes(response.body or b"")
    if isinstance(exc, InvalidStatus):
        status = response.status_code
        text = body.decode(errors="replace").strip()
        detail = f": {text[:200]}" if text else ""
        return HandshakeRejected(
            f"{url} rejected the upgrade with HTTP {status} {response.reason_phrase}{detail}",
            status=status,
            body=body,
            headers=tuple(response.headers.raw_items()),
        )
    return HandshakeRejected(
        f"{url} sent an invalid upgrade response: {exc}",
        status=response.status_code,
        body=body,
    )


def protocol_snapshot(proto: Any) -> tuple[Hashable, ...]:
    """websockets' sans-I/O protocol (either side) as a value: its state, the close frames, what
    it has buffered and queued, and where its frame parser stands (a generator: the position of
    each frame of its ``yield from`` chain)."""
    parser: Any = proto.parser
    position = []
    while parser is not None and getattr(parser, "gi_frame", None) is not None:
        position.append((parser.gi_frame.f_code.co_name, parser.gi_frame.f_lasti))
        parser = parser.gi_yieldfrom
    return (
        proto.state.name,
        proto.expect_continuation_frame,
        proto.current_size,
        None if proto.close_rcvd is None else (proto.close_rcvd.code, proto.close_rcvd.reason),
        None if proto.close_sent is None else (proto.close_sent.code, proto.close_sent.reason),
        proto.close_rcvd_then_sent,
        proto.eof_sent,
        type(proto.parser_exc).__name__ if proto.parser_exc is not None else None,
        type(proto.handshake_exc).__name__ if proto.handshake_exc is not None else None,
        bytes(proto.reader.buffer),
        proto.reader.eof,
        len(proto.events),
        tuple(proto.writes),
        tuple(position),
    )
