"""Connecting: typed errors that say what failed and where, TLS, and connection options."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import ssl
from pathlib import Path

import pytest
import trustme

from wschan_cli.channel import (
    Channel,
    ConnectionRefused,
    DNSError,
    HandshakeInterrupted,
    HandshakeRejected,
    InvalidURL,
    TLSError,
)
from wschan_cli.server import Behaviour, EmbeddedServer

from .helpers import QUIET, run


def opts(**changes: object):  # type: ignore[no-untyped-def]
    return dataclasses.replace(QUIET, **changes)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1/", "scheme isn't ws or wss"),
        ("ws://", "hostname isn't provided"),
        ("not a url", "scheme isn't ws or wss"),
        ("ws://127.0.0.1:99999/", "Port out of range"),
    ],
)
def test_a_bad_url_is_refused_when_the_channel_is_made(url: str, says: str) -> None:
    with pytest.raises(InvalidURL) as caught:
        Channel(url)
    assert repr(url) in str(caught.value) and says in str(caught.value)


def test_a_refused_port_names_host_and_port() -> None:
    async def main() -> None:
        port = free_port()
        ch = Channel(f"ws://127.0.0.1:{port}/", options=QUIET)
        with pytest.raises(ConnectionRefused) as caught:
            await ch.open()
        assert f"connection refused by 127.0.0.1:{port}" in str(caught.value)
        assert (caught.value.host, caught.value.port) == ("127.0.0.1", port)
        assert ch.established == 0 and ch.state == "error"
        await ch.deinit()

    run(main())


def test_a_name_that_does_not_resolve_is_a_dns_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests send nothing off loopback, not even a DNS query: the resolver answers "no such
    # name" for this one host, exactly as getaddrinfo does for a name that does not exist.
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "no-such-host.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    async def main() -> None:
        ch = Channel("ws://no-such-host.invalid:8080/", options=QUIET)
        with pytest.raises(DNSError) as caught:
            await ch.send("x")
        message = str(caught.value)
        assert "cannot resolve host 'no-such-host.invalid'" in message
        assert "Name or service not known" in message
        await ch.deinit()

    run(main())


def test_a_rejected_upgrade_says_status_body_and_url() -> None:
    async def main() -> None:
        behaviour = Behaviour(reject_status=401, reject_body="token expired")
        async with EmbeddedServer(behaviour) as srv:
            ch = Channel(srv.url, options=QUIET)
            with pytest.raises(HandshakeRejected) as caught:
                await ch.open()
            assert str(caught.value) == (
                f"{srv.url} rejected the upgrade with HTTP 401 Unauthorized: token expired"
            )
            assert caught.value.status == 401 and caught.value.body == b"token expired"
            await ch.deinit()

    run(main())


# TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def test_wss_with_the_ca_trusted_works(server_tls: ssl.SSLContext, ca_file: str) -> None:
    async def main() -> None:
        async with EmbeddedServer(ssl=server_tls) as srv:
            assert srv.url.startswith("wss://")
            got: list[object] = []
            ch = Channel(srv.url, options=opts(cafile=ca_file), process=got.append)
            await ch.send("secret")
            await srv.wait_received(1)
            await ch.deinit()
            assert srv.received == ["secret"] and len(got) == 1

    run(main())


def test_wss_verification_is_on_by_default(server_tls: ssl.SSLContext) -> None:
    async def main() -> None:
        async with EmbeddedServer(ssl=server_tls) as srv:
            ch = Channel(srv.url, options=QUIET)
            with pytest.raises(TLSError) as caught:
                await ch.open()
            message = str(caught.value)
            assert f"TLS certificate verification failed for 127.0.0.1:{srv.port}" in message
            assert "--cacert" in message and "--insecure" in message
            assert srv.connections == 0
            await ch.deinit()

    run(main())


def test_wss_insecure_skips_verification(server_tls: ssl.SSLContext) -> None:
    async def main() -> None:
        async with EmbeddedServer(ssl=server_tls) as srv:
            ch = Channel(srv.url, options=opts(insecure=True))
            await ch.send("x")
            await srv.wait_received(1)
            await ch.deinit()

    run(main())


def test_wss_with_a_client_certificate(ca: trustme.CA, ca_file: str, tmp_path: Path) -> None:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    ca.configure_trust(server)
    server.verify_mode = ssl.CERT_REQUIRED
    client_pem = tmp_path / "client.pem"
    ca.issue_cert("client@example.test").private_key_and_cert_chain_pem.write_to_path(
        str(client_pem)
    )

    async def main() -> None:
        async with EmbeddedServer(ssl=server) as srv:
            ch = Channel(srv.url, options=opts(cafile=ca_file, certfile=str(client_pem)))
            await ch.send("with cert")
            await srv.wait_received(1)
            await ch.deinit()
            # Without one, the server refuses us (TLS 1.3 reports it once data flows).
            ch = Channel(srv.url, options=opts(cafile=ca_file))
            with pytest.raises((TLSError, HandshakeInterrupted)):
                await ch.open()
            await ch.deinit()

    run(main())


# options ---------------------------------------------------------------------------------------


def test_headers_origin_subprotocols_and_user_agent_reach_the_server() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            options = opts(
                headers=(("X-Trace", "abc"), ("Authorization", "Bearer t0k3n")),
                origin="https://example.test",
                subprotocols=("chat.v2", "chat.v1"),
            )
            ch = Channel(srv.url, options=options)
            await ch.open()
            await ch.deinit()
            headers = srv.request_headers[0]
            assert headers["x-trace"] == "abc"
            assert headers["authorization"] == "Bearer t0k3n"
            assert headers["origin"] == "https://example.test"
            assert headers["sec-websocket-protocol"] == "chat.v2, chat.v1"
            assert headers["user-agent"].startswith("wschan")
            assert srv.subprotocols == ["chat.v2"]

    run(main())


@pytest.mark.parametrize("compression", [True, False])
def test_compression_is_offered_only_when_on(compression: bool) -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            ch = Channel(srv.url, options=opts(compression=compression))
            await ch.send("a" * 10000)
            await srv.wait_received(1)
            await ch.deinit()
            offered = "sec-websocket-extensions" in srv.request_headers[0]
            assert offered is compression and srv.received == ["a" * 10000]

    run(main())


def test_a_url_path_and_query_are_requested() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            ch = Channel(srv.url + "feed?room=42", options=QUIET)
            await ch.open()
            await ch.deinit()
            assert srv.request_paths == ["/feed?room=42"]

    run(main())


def test_the_channel_works_as_an_async_context_manager() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            async with Channel(srv.url, options=QUIET) as ch:
                assert ch.established == 1
                await ch.send("inside")
            assert ch.disposed
            await srv.wait_received(1)

    run(main())


def test_many_channels_at_once() -> None:
    async def main() -> None:
        async with EmbeddedServer() as srv:
            channels = [Channel(srv.url, options=QUIET) for _ in range(20)]
            await asyncio.gather(*(ch.send(f"{i}") for i, ch in enumerate(channels)))
            await srv.wait_received(20)
            await asyncio.gather(*(ch.deinit() for ch in channels))
            assert srv.connections == 20 and sorted(srv.close_codes) == [1000] * 20

    run(main())
