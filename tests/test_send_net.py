"""``wschan send`` over TLS, through proxies (HTTP CONNECT, https, SOCKS5, from the
environment) and Unix sockets, and what it says when a name does not resolve.

Everything stays on 127.0.0.1: the proxies are small servers started by the tests, and the DNS
test runs the executable with a getaddrinfo that refuses every non-loopback name, so no query
ever leaves the machine.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import trustme

from .send_helpers import (
    ConnectProxy,
    LoopThread,
    Socks5Proxy,
    UnixForwarder,
    clean_env,
    err_line,
    wschan,
)
from .servers import ThreadedServer


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def server_context(ca: trustme.CA, *, client_certs: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost", "echo.test").configure_cert(context)
    if client_certs:
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture(scope="module")
def tls_echo(ca: trustme.CA) -> Iterator[ThreadedServer]:
    with ThreadedServer(ssl=server_context(ca)) as server:
        yield server


@pytest.fixture(scope="module")
def echo() -> Iterator[ThreadedServer]:
    with ThreadedServer() as server:
        yield server


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as lt:
        yield lt


# ---------------------------------------------------------------------- TLS


def test_tls_verification_failure_is_exit_3_with_a_hint(tls_echo: ThreadedServer) -> None:
    assert tls_echo.url.startswith("wss://")
    result = wschan("send", tls_echo.url, "x")
    assert result.returncode == 3
    message = err_line(result)
    assert "TLS certificate verification failed for 127.0.0.1:" in message
    assert "--cacert" in message and "--insecure" in message
    assert "\n" not in message


def test_cacert_and_insecure_both_connect(tls_echo: ThreadedServer, ca_file: str) -> None:
    trusted = wschan("send", tls_echo.url, "secure", "--cacert", ca_file)
    insecure = wschan("send", tls_echo.url, "anyway", "-k")
    assert trusted.returncode == 0, err_line(trusted)
    assert insecure.returncode == 0, err_line(insecure)
    assert trusted.stdout == b"secure\n" and insecure.stdout == b"anyway\n"


def test_client_certificate(ca: trustme.CA, ca_file: str, tmp_path: Path) -> None:
    client = ca.issue_cert("client@example.test")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    for blob in client.cert_chain_pems:
        with cert.open("ab") as handle:
            handle.write(blob.bytes())
    client.private_key_pem.write_to_path(str(key))
    with ThreadedServer(ssl=server_context(ca, client_certs=True)) as server:
        with_cert = wschan(
            "send", server.url, "me", "--cacert", ca_file, "--cert", str(cert), "--key", str(key)
        )
        without = wschan("send", server.url, "me", "--cacert", ca_file, "--timeout", "5")
    assert with_cert.returncode == 0, err_line(with_cert)
    assert with_cert.stdout == b"me\n"
    assert without.returncode != 0


# ---------------------------------------------------------------------- HTTP CONNECT proxies


def test_http_connect_proxy_with_credentials(echo: ThreadedServer, loop: LoopThread) -> None:
    proxy = loop.call(ConnectProxy(credentials="bob:p@ss word").start())
    url = f"http://bob:{quote('p@ss word')}@127.0.0.1:{proxy.port}"
    result = wschan("send", echo.url, "via proxy", "--proxy", url, "-v")
    assert result.returncode == 0, err_line(result)
    assert result.stdout == b"via proxy\n"
    (line, headers), *_ = proxy.requests
    assert line == f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1"
    assert headers["proxy-authorization"].startswith("Basic ")
    assert b"p@ss" not in result.stderr and b"ss%20word" not in result.stderr


def test_proxy_refusing_credentials_is_exit_3(echo: ThreadedServer, loop: LoopThread) -> None:
    proxy = loop.call(ConnectProxy(credentials="bob:right").start())
    wrong = wschan("send", echo.url, "x", "--proxy", f"http://bob:wrong@127.0.0.1:{proxy.port}")
    none = wschan("send", echo.url, "x", "--proxy", proxy.url)
    assert wrong.returncode == 3 and none.returncode == 3
    assert f"proxy 127.0.0.1:{proxy.port} refused CONNECT 127.0.0.1:{echo.port}: HTTP 407" in (
        err_line(wrong)
    )
    assert "check the credentials" in err_line(wrong)
    assert "put user:password@ before the host in the proxy URL" in err_line(none)
    assert "wrong" not in err_line(wrong)


def test_wss_through_an_http_proxy(
    tls_echo: ThreadedServer, ca_file: str, loop: LoopThread
) -> None:
    proxy = loop.call(ConnectProxy().start())
    result = wschan("send", tls_echo.url, "tunnelled", "--proxy", proxy.url, "--cacert", ca_file)
    assert result.returncode == 0, err_line(result)
    assert result.stdout == b"tunnelled\n"
    assert proxy.requests[0][0] == f"CONNECT 127.0.0.1:{tls_echo.port} HTTP/1.1"


def test_wss_through_an_https_proxy(
    ca: trustme.CA, tls_echo: ThreadedServer, ca_file: str, loop: LoopThread
) -> None:
    proxy = loop.call(ConnectProxy(ssl=server_context(ca)).start())
    assert proxy.url.startswith("https://")
    result = wschan("send", tls_echo.url, "tls in tls", "--proxy", proxy.url, "--cacert", ca_file)
    assert result.returncode == 0, err_line(result)
    assert result.stdout == b"tls in tls\n"


def test_proxy_from_the_environment_and_its_opt_outs(
    echo: ThreadedServer, loop: LoopThread
) -> None:
    proxy = loop.call(ConnectProxy().start())
    for variable in ("http_proxy", "HTTP_PROXY", "ws_proxy", "all_proxy"):
        used = wschan("send", echo.url, "env", env=clean_env(**{variable: proxy.url}))
        assert used.returncode == 0, (variable, err_line(used))
    assert len(proxy.requests) == 4
    env = clean_env(http_proxy=proxy.url)
    assert wschan("send", echo.url, "direct", "--no-proxy", env=env).returncode == 0
    bypass = clean_env(http_proxy=proxy.url, no_proxy="127.0.0.1")
    assert wschan("send", echo.url, "direct", env=bypass).returncode == 0
    # wss:// does not use http_proxy
    assert len(proxy.requests) == 4


def test_unreachable_proxy_is_exit_3(echo: ThreadedServer) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = wschan("send", echo.url, "x", "--proxy", f"http://127.0.0.1:{port}")
    assert result.returncode == 3
    assert f"connection refused by proxy 127.0.0.1:{port}" in err_line(result)


# ---------------------------------------------------------------------- SOCKS5


def test_socks5_with_credentials(echo: ThreadedServer, loop: LoopThread) -> None:
    proxy = loop.call(Socks5Proxy(credentials=("sam", "s3cret")).start())
    url = f"socks5://sam:s3cret@127.0.0.1:{proxy.port}"
    result = wschan("send", echo.url, "socks", "--proxy", url, "-v")
    assert result.returncode == 0, err_line(result)
    assert result.stdout == b"socks\n"
    assert proxy.requests == [(1, "127.0.0.1", echo.port)]
    assert b"s3cret" not in result.stderr


def test_socks5h_lets_the_proxy_resolve_the_name(echo: ThreadedServer, loop: LoopThread) -> None:
    proxy = loop.call(Socks5Proxy().start())
    url = f"ws://echo.test:{echo.port}/"  # only the proxy knows this name
    result = wschan("send", url, "remote dns", "--proxy", f"socks5h://127.0.0.1:{proxy.port}")
    assert result.returncode == 0, err_line(result)
    assert proxy.requests == [(3, "echo.test", echo.port)]
    assert echo.request_headers[-1]["host"] == f"echo.test:{echo.port}"


def test_socks5_wrong_password_is_exit_3(echo: ThreadedServer, loop: LoopThread) -> None:
    proxy = loop.call(Socks5Proxy(credentials=("sam", "right")).start())
    result = wschan("send", echo.url, "x", "--proxy", f"socks5://sam:wrong@127.0.0.1:{proxy.port}")
    assert result.returncode == 3
    assert f"proxy 127.0.0.1:{proxy.port} could not open a tunnel" in err_line(result)
    assert "wrong" not in err_line(result)


# ---------------------------------------------------------------------- Unix socket


def test_unix_socket(echo: ThreadedServer, loop: LoopThread, tmp_path: Path) -> None:
    path = str(tmp_path / "ws.sock")
    forwarder = loop.call(UnixForwarder(path, echo.port).start())
    result = wschan("send", "ws://echo.test/chat", "over unix", "--unix-socket", path)
    assert result.returncode == 0, err_line(result)
    assert result.stdout == b"over unix\n"
    assert forwarder.accepted == 1
    assert echo.request_headers[-1]["host"] == "echo.test"


def test_missing_unix_socket_is_exit_3(tmp_path: Path) -> None:
    path = str(tmp_path / "nothing.sock")
    result = wschan("send", "ws://localhost/", "x", "--unix-socket", path)
    assert result.returncode == 3
    assert f"cannot connect to unix socket {path}" in err_line(result)


# ---------------------------------------------------------------------- DNS, with no query sent

SITECUSTOMIZE = """
import socket

_real = socket.getaddrinfo


def _local_only(host, *args, **kwargs):
    # Loopback and IP literals resolve as usual; any other name fails here, before a query.
    name = host.decode() if isinstance(host, bytes) else host
    if name is None or name in ("localhost", "::1") or name.replace(".", "").isdigit():
        return _real(host, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


socket.getaddrinfo = _local_only
"""


@pytest.fixture
def no_dns(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    # On asyncio's loop: uvloop resolves names in libuv, past the patched socket.getaddrinfo.
    return clean_env(PYTHONPATH=str(tmp_path), WSCHAN_LOOP="asyncio")


def test_a_name_that_does_not_resolve_is_exit_3(no_dns: dict[str, str]) -> None:
    result = wschan("send", "ws://no-such-host.invalid/", "x", env=no_dns)
    assert result.returncode == 3
    assert err_line(result) == (
        "wschan: cannot resolve host 'no-such-host.invalid': Name or service not known"
    )


def test_a_proxy_name_that_does_not_resolve_is_exit_3(
    echo: ThreadedServer, no_dns: dict[str, str]
) -> None:
    result = wschan("send", echo.url, "x", "--proxy", "http://proxy.invalid:3128", env=no_dns)
    assert result.returncode == 3
    assert "cannot resolve host 'proxy.invalid'" in err_line(result)


@pytest.mark.parametrize("given", ["option", "environment"])
def test_a_proxy_host_name_the_resolver_refuses_is_exit_3_in_one_line(
    echo: ThreadedServer, given: str
) -> None:
    # A label over 63 bytes: the resolver's IDNA step raised UnicodeError before any query,
    # and it came out as "internal error: UnicodeError" (exit 1). (.invalid never resolves.)
    proxy = f"http://{'a' * 64}.invalid:3128"
    if given == "option":
        result = wschan("send", echo.url, "x", "--proxy", proxy)
    else:
        result = wschan("send", echo.url, "x", env=clean_env(http_proxy=proxy))
    assert result.returncode == 3, err_line(result)
    assert err_line(result) == (
        f"wschan: cannot resolve host '{'a' * 64}.invalid': not a valid host name"
        " (label empty or too long)"
    )


def test_a_proxy_variable_that_is_no_url_says_it_is_the_proxy(echo: ThreadedServer) -> None:
    # urlsplit's own words came out alone ("wschan: Invalid IPv6 URL"), naming no proxy.
    result = wschan("send", echo.url, "x", env=clean_env(http_proxy="http://u:PW9@[::1"))
    assert result.returncode == 3, err_line(result)
    assert err_line(result) == "wschan: the proxy URL is not valid: Invalid IPv6 URL"
