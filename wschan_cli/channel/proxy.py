"""Proxies: which one a URI goes through, and the two proxy protocols spoken to open a tunnel.

HTTP CONNECT (over http:// or https://) is spoken on a pipe ``dial`` opened to the proxy; SOCKS5
(socks5:// resolves the name here, socks5h:// at the proxy) by python-socks, which hands back
the connected socket. Either way ``dial`` then has a byte pipe to the server, and the WebSocket
handshake that follows does not know the difference.
"""

from __future__ import annotations

import base64
import os
import socket
import sys
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from websockets.uri import WebSocketURI

from .errors import DNSError, ProxyError
from .options import ChannelOptions
from .transport import StreamTransport

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
_PROXY_DEFAULT_PORTS = {"http": 1080, "https": 443, "socks5": 1080, "socks5h": 1080}  # as curl


@dataclass(frozen=True)
class ProxyURL:
    """A parsed proxy URL. ``str()`` never shows the password."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> ProxyURL:
        """Parse ``scheme://[user[:password]@]host[:port]``; a missing scheme means http.

        Raises ValueError with a message fit for a command line (the password is never in it).
        """
        if "://" not in url:
            url = "http://" + url
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # its words name no proxy, and the URL may hold a password
            raise ValueError(f"the proxy URL is not valid: {exc}") from None
        scheme = parts.scheme.lower()
        shown = f"{scheme}://{parts.hostname or ''}"
        if scheme not in PROXY_SCHEMES:
            raise ValueError(
                f"unsupported proxy scheme {scheme!r} in {shown}: use one of "
                + ", ".join(f"{s}://" for s in PROXY_SCHEMES)
            )
        if not parts.hostname:
            raise ValueError(f"proxy URL {shown} has no host")
        try:
            port = parts.port or _PROXY_DEFAULT_PORTS[scheme]
        except ValueError:
            raise ValueError(f"proxy URL {shown} has an invalid port") from None
        return cls(
            scheme=scheme,
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.username}:****@" if self.username is not None else ""
        return f"{self.scheme}://{user}{host}:{self.port}"


def proxy_from_environment(uri: WebSocketURI) -> str | None:
    """The proxy the environment names for this URI, or None (also when no_proxy matches).

    ws:// looks at ws_proxy, then http_proxy; wss:// at wss_proxy, then https_proxy; both then
    fall back to all_proxy (upper-case names too, as urllib reads them).
    """
    if not environment_may_name_a_proxy():
        return None
    import urllib.request  # here: it loads email and http.client (~5 ms of every start-up)

    proxies = urllib.request.getproxies()
    keys = ("wss", "https", "all") if uri.secure else ("ws", "http", "all")
    chosen = next((proxies[key] for key in keys if proxies.get(key)), None)
    if chosen is None:
        return None
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    if urllib.request.proxy_bypass(f"{host}:{uri.port}"):
        return None
    return chosen


def environment_may_name_a_proxy() -> bool:
    """False when ``urllib.request.getproxies()`` is sure to be empty: where it reads only the
    environment (not macOS's or Windows' system settings), that is when no variable whose
    name ends in ``_proxy``, in any case, has a value (the test urllib applies to each one)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return any(value and name.lower().endswith("_proxy") for name, value in os.environ.items())


def proxy_for(uri: WebSocketURI, options: ChannelOptions) -> ProxyURL | None:
    """The proxy ``open_tcp`` will use for this URI, if any."""
    if options.unix_socket is not None:
        return None
    url = options.proxy
    if url is None and options.trust_env:
        url = proxy_from_environment(uri)
    if not url:
        return None
    try:
        return ProxyURL.parse(url)
    except ValueError as exc:
        raise ProxyError(str(exc), host=uri.host, port=uri.port) from None


def target(uri: WebSocketURI) -> str:
    """``host:port`` of the server, as a tunnel request names it."""
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    return f"{host}:{uri.port}"


_MAX_PROXY_RESPONSE = 64 * 1024


async def http_connect(pipe: StreamTransport, uri: WebSocketURI, proxy: ProxyURL) -> None:
    """Ask the http:// or https:// proxy at the other end of ``pipe`` for a tunnel to the URI's
    host (HTTP CONNECT, credentials from the proxy URL sent as Basic). On return ``pipe`` carries
    the tunnel: bytes read past the proxy's answer are put back in front of the stream."""
    at = f"proxy {proxy.host}:{proxy.port}"
    to = target(uri)
    lines = [f"CONNECT {to} HTTP/1.1", f"Host: {to}"]
    if proxy.username is not None:
        credentials = f"{proxy.username}:{proxy.password or ''}".encode()
        lines.append(f"Proxy-Authorization: Basic {base64.b64encode(credentials).decode()}")
    pipe.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        try:
            data = await pipe.read()
        except OSError as exc:
            raise ProxyError(
                f"{at} dropped the connection during CONNECT: {exc}",
                host=uri.host,
                port=uri.port,
            ) from exc
        if not data:
            raise ProxyError(
                f"{at} closed the connection without answering CONNECT {to}",
                host=uri.host,
                port=uri.port,
            )
        head += data
        if len(head) > _MAX_PROXY_RESPONSE:
            raise ProxyError(
                f"{at} sent an oversized answer to CONNECT", host=uri.host, port=uri.port
            )
    head, rest = head.split(b"\r\n\r\n", 1)
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProxyError(
            f"{at} sent an invalid answer to CONNECT: {status_line[:80]!r}",
            host=uri.host,
            port=uri.port,
        )
    status = int(parts[1])
    if not 200 <= status < 300:
        phrase = parts[2] if len(parts) > 2 else ""
        hint = ""
        if status == 407:
            hint = (
                " (check the credentials in the proxy URL)"
                if proxy.username is not None
                else " (put user:password@ before the host in the proxy URL)"
            )
        raise ProxyError(
            f"{at} refused CONNECT {to}: HTTP {status} {phrase}".rstrip() + hint,
            host=uri.host,
            port=uri.port,
        )
    pipe._unread(rest)


async def socks_connect(
    uri: WebSocketURI, options: ChannelOptions, proxy: ProxyURL
) -> socket.socket:
    """A socket connected through the SOCKS5 proxy to the URI's host, with python-socks:
    socks5:// resolves the name here, socks5h:// at the proxy."""
    at = f"proxy {proxy.host}:{proxy.port}"
    try:
        from python_socks import ProxyError as SocksReplyError
        from python_socks import ProxyTimeoutError, ProxyType
        from python_socks.async_.asyncio import Proxy
    except ImportError:
        raise ProxyError(
            f"{proxy.scheme}:// proxies need the python-socks package (pip install python-socks)",
            host=uri.host,
            port=uri.port,
        ) from None
    socks = Proxy(
        ProxyType.SOCKS5,
        proxy.host,
        proxy.port,
        username=proxy.username,
        password=proxy.password,
        rdns=proxy.scheme == "socks5h",
    )
    try:
        sock: socket.socket = await socks.connect(
            uri.host, uri.port, timeout=options.open_timeout or 3600.0
        )
    except ProxyTimeoutError:
        raise ProxyError(
            f"{at} did not open a tunnel to {target(uri)} in time", host=uri.host, port=uri.port
        ) from None
    except SocksReplyError as exc:
        raise ProxyError(
            f"{at} could not open a tunnel to {target(uri)}: {exc}", host=uri.host, port=uri.port
        ) from exc
    except socket.gaierror as exc:
        raise DNSError(
            f"cannot resolve host {uri.host!r}: {exc.strerror} (socks5h:// lets the proxy"
            " resolve it)",
            host=uri.host,
            port=uri.port,
        ) from exc
    except OSError as exc:  # python-socks' ProxyConnectionError is an OSError
        raise ProxyError(
            f"cannot reach {at}: {exc.strerror or exc}", host=uri.host, port=uri.port
        ) from exc
    return sock
