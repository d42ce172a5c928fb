"""Opening the byte pipe: TCP (and TLS for wss://) to the server, through a Unix socket or a
proxy when the options say so, with the OS's and the TLS layer's failures as typed errors."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterator

from websockets.uri import WebSocketURI

from .errors import ConnectError, ConnectionRefused, DNSError, TLSError
from .options import ChannelOptions
from .proxy import ProxyURL, http_connect, proxy_for, socks_connect, target
from .transport import StreamTransport, Transport


@contextlib.contextmanager
def _typed_errors(uri: WebSocketURI, where: str, host: str | None = None) -> Iterator[None]:
    """Turn the OS's and the TLS layer's exceptions into the channel's typed errors.

    ``where`` names what was being reached; ``host`` the name resolved (default: the URI's).
    """
    try:
        yield
    except socket.gaierror as exc:
        raise DNSError(
            f"cannot resolve host {host or uri.host!r}: {exc.strerror}",
            host=uri.host,
            port=uri.port,
        ) from exc
    except UnicodeError as exc:
        # The resolver's IDNA step refused the name (an empty label, one over 63 bytes) before
        # any query: a name that cannot resolve, as far as the user is concerned.
        raise DNSError(
            f"cannot resolve host {host or uri.host!r}: not a valid host name"
            f" ({exc.__cause__ or exc})",
            host=uri.host,
            port=uri.port,
        ) from exc
    except ConnectionRefusedError as exc:
        raise ConnectionRefused(
            f"connection refused by {where}: is a server listening there?",
            host=uri.host,
            port=uri.port,
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise TLSError(
            f"TLS certificate verification failed for {where}: {exc.verify_message}"
            " (trust its CA with --cacert, or skip checks with --insecure)",
            host=uri.host,
            port=uri.port,
        ) from exc
    except ssl.SSLError as exc:
        raise TLSError(
            f"TLS handshake with {where} failed: {exc.reason or exc}", host=uri.host, port=uri.port
        ) from exc
    except OSError as exc:
        raise ConnectError(
            f"cannot connect to {where}: {exc.strerror or exc}", host=uri.host, port=uri.port
        ) from exc


async def open_tcp(uri: WebSocketURI, options: ChannelOptions) -> Transport:
    """Open TCP (and TLS for wss://) to the URI's host and port, with typed errors.

    Through ``options.unix_socket`` or a proxy (``proxy_for``) when the options say so.
    """
    loop = asyncio.get_running_loop()
    context = options.ssl_context() if uri.secure else None
    server_hostname = uri.host if context else None
    if options.unix_socket is not None:
        where = f"unix socket {options.unix_socket}"
        with _typed_errors(uri, where):
            _, protocol = await loop.create_unix_connection(
                StreamTransport, options.unix_socket, ssl=context, server_hostname=server_hostname
            )
        return protocol
    proxy = proxy_for(uri, options)
    if proxy is not None:
        if proxy.scheme in ("http", "https"):
            return await _open_http_tunnel(uri, options, proxy, context)
        return await _open_socks(uri, options, proxy, context)
    where = f"{uri.host}:{uri.port}"
    with _typed_errors(uri, where):
        _, protocol = await loop.create_connection(
            StreamTransport, uri.host, uri.port, ssl=context, server_hostname=server_hostname
        )
    return protocol


async def _open_http_tunnel(
    uri: WebSocketURI,
    options: ChannelOptions,
    proxy: ProxyURL,
    context: ssl.SSLContext | None,
) -> Transport:
    """HTTP CONNECT through an http:// or https:// proxy, then TLS to the server for wss://."""
    loop = asyncio.get_running_loop()
    at = f"proxy {proxy.host}:{proxy.port}"
    proxy_context = options.ssl_context() if proxy.scheme == "https" else None
    with _typed_errors(uri, at, proxy.host):
        _, protocol = await loop.create_connection(
            StreamTransport,
            proxy.host,
            proxy.port,
            ssl=proxy_context,
            server_hostname=proxy.host if proxy_context else None,
        )
    try:
        await http_connect(protocol, uri, proxy)
        if context is not None:
            with _typed_errors(uri, f"{target(uri)} (through {at})"):
                tls = await loop.start_tls(
                    protocol._loop_transport, protocol, context, server_hostname=uri.host
                )
            assert tls is not None
            protocol._replace_transport(tls)
    except BaseException:
        protocol.abort()
        raise
    return protocol


async def _open_socks(
    uri: WebSocketURI,
    options: ChannelOptions,
    proxy: ProxyURL,
    context: ssl.SSLContext | None,
) -> Transport:
    """A SOCKS5 tunnel (proxy.socks_connect), then TLS to the server for wss://."""
    at = f"proxy {proxy.host}:{proxy.port}"
    loop = asyncio.get_running_loop()
    sock = await socks_connect(uri, options, proxy)
    try:
        with _typed_errors(uri, f"{target(uri)} (through {at})"):
            _, protocol = await loop.create_connection(
                StreamTransport,
                sock=sock,
                ssl=context,
                server_hostname=uri.host if context else None,
            )
    except BaseException:
        sock.close()
        raise
    return protocol
