"""Connection options of a channel: plain data, validated when the channel is made (the numbers
of the defaults are in defaults.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import defaults

if TYPE_CHECKING:
    import ssl  # imported when a context is made: a plain connection does without it


@dataclass(frozen=True)
class ChannelOptions:
    """How to connect and how long to wait.

    Times are in seconds; ``None`` means no limit (or, for ``ping_interval``, no keepalive).
    """

    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()
    origin: str | None = None
    open_timeout: float | None = defaults.OPEN_TIMEOUT  # connect + TLS + upgrade, one deadline
    close_timeout: float | None = defaults.CLOSE_TIMEOUT  # wait for the peer's Close / TCP close
    write_timeout: float | None = defaults.WRITE_TIMEOUT  # a frame that cannot drain: dead (D8)
    max_size: int | None = defaults.MAX_SIZE  # largest incoming message; bigger closes with 1009
    compression: bool = True  # offer permessage-deflate
    ping_interval: float | None = defaults.PING_INTERVAL  # keepalive ping every this long
    ping_timeout: float | None = defaults.PING_TIMEOUT  # no Pong this long: close with 1011
    cafile: str | None = None  # trust this CA bundle instead of the system's
    certfile: str | None = None  # client certificate (PEM)
    keyfile: str | None = None  # its private key, if not inside certfile
    insecure: bool = False  # do not verify the server's certificate or host name
    user_agent: str | None = None
    # After a clean close (1000/1001), reconnect on the next out task (the C++ design, and what
    # the CLI asks for), or, by default, fail it with the ChannelClosed of that close.
    reconnect: bool = False
    # With no ``process`` callback: keep up to this many received messages for
    # ``Channel.messages()``; while that many wait, the reader stops reading from the
    # connection (backpressure). 0: no queue, messages without ``process`` are dropped.
    receive_queue: int = 0
    # Where the TCP connection goes (transport.open_tcp). ``proxy`` is a URL: http:// or https://
    # (HTTP CONNECT, credentials from the URL sent as Basic), socks5:// (names resolved here) or
    # socks5h:// (names resolved by the proxy), with optional user:password. ``trust_env`` uses
    # the environment's proxy variables (ws_proxy/http_proxy, wss_proxy/https_proxy, all_proxy,
    # no_proxy) when ``proxy`` is None. ``unix_socket`` connects to that path instead of TCP;
    # the URL still names the Host and, for wss://, the TLS server name.
    proxy: str | None = None
    trust_env: bool = False
    unix_socket: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS context that verifies the server unless ``insecure`` was asked for."""
        import ssl

        context = ssl.create_default_context(cafile=self.cafile)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile)
        return context
