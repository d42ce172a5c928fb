"""The shared connection options (wschan_cli/options.py) and the proxy choice of the core."""

from __future__ import annotations

import os
import sys

import click
import pytest
from click.testing import CliRunner
from websockets.uri import parse_uri

from wschan_cli.channel.errors import ProxyError
from wschan_cli.channel.options import ChannelOptions
from wschan_cli.channel.proxy import (
    ProxyURL,
    environment_may_name_a_proxy,
    proxy_for,
    proxy_from_environment,
)
from wschan_cli.options import (
    PARAM_NAMES,
    ConnectionSettings,
    connection_options,
    parse_header,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("X-A: 1", ("X-A", "1")),
        ("X-A:1", ("X-A", "1")),
        ("X-A:  spaced out  ", ("X-A", "spaced out")),
        ("X-Empty:", ("X-Empty", "")),
        ("X-Colon: a:b", ("X-Colon", "a:b")),
    ],
)
def test_parse_header(text: str, parsed: tuple[str, str]) -> None:
    assert parse_header(text) == parsed


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("NoColon", "has no colon"),
        (": v", "empty header name"),
        ("Bad Name: v", "not a valid header name"),
        ("X: a\r\nInjected: 1", "line break"),
    ],
)
def test_parse_header_errors(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_header(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("0", None), ("10", 10), ("64k", 65536), ("1MiB", 1048576), ("2M", 2 << 20), ("1g", 1 << 30)],
)
def test_parse_size(text: str, size: int | None) -> None:
    assert parse_size(text) == size


def test_settings_become_channel_options() -> None:
    settings = ConnectionSettings.from_values(
        header=("X-A: 1",),
        origin="https://o.test",
        subprotocol=("a", "b"),
        bearer="tok",
        insecure=True,
        proxy="socks5h://u:p@127.0.0.1:1080",
        open_timeout=3,
        close_timeout=0,
        ping_interval=0,
        ping_timeout=5,
        max_size="0",
        no_compression=True,
    )
    options = settings.channel_options()
    assert isinstance(options, ChannelOptions)
    assert options.headers == (("X-A", "1"), ("Authorization", "Bearer tok"))
    assert options.origin == "https://o.test" and options.subprotocols == ("a", "b")
    assert options.insecure and not options.compression
    assert options.proxy == "socks5h://u:p@127.0.0.1:1080" and options.trust_env
    assert options.open_timeout == 3 and options.close_timeout is None
    assert options.ping_interval is None and options.ping_timeout == 5
    assert options.max_size is None
    assert settings.channel_options(open_timeout=1).open_timeout == 1


def test_auth_is_basic_and_no_proxy_turns_off_the_environment() -> None:
    settings = ConnectionSettings.from_values(auth="alice:s e:cret", no_proxy=True)
    assert settings.headers == (("Authorization", "Basic YWxpY2U6cyBlOmNyZXQ="),)
    assert settings.channel_options().trust_env is False


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"auth": "a:b", "bearer": "t"}, "--auth and --bearer"),
        ({"header": ("Authorization: x",), "bearer": "t"}, "given with -H and with"),
        ({"auth": "nocolon"}, "USER:PASSWORD"),
        ({"bearer": "two words"}, "without spaces"),
        ({"key": "k.pem"}, "--key needs --cert"),
        ({"proxy": "http://h:1", "no_proxy": True}, "contradict"),
        ({"proxy": "ftp://h:1"}, "unsupported proxy scheme"),
        ({"proxy": "http://:8080"}, "no host"),
        ({"proxy": "http://h:99999"}, "invalid port"),
        ({"proxy": "http://h:1", "unix_socket": "/s"}, "cannot be combined"),
        ({"max_size": "big"}, "is not a size"),
    ],
)
def test_bad_combinations_are_usage_errors(values: dict[str, object], says: str) -> None:
    with pytest.raises(click.UsageError, match=says):
        ConnectionSettings.from_values(**values)  # type: ignore[arg-type]


def test_the_decorator_adds_every_option_and_hands_over_one_settings_object() -> None:
    seen: list[ConnectionSettings] = []

    @click.command()
    @click.argument("url")
    @connection_options
    def command(url: str, connection: ConnectionSettings) -> None:
        seen.append(connection)

    names = {p.name for p in command.params}
    assert set(PARAM_NAMES) <= names
    result = CliRunner().invoke(
        command, ["ws://h/", "-H", "A: 1", "-k", "-i", "-v", "--ping-interval", "0"]
    )
    assert result.exit_code == 0, result.output
    (settings,) = seen
    assert settings.headers == (("A", "1"),) and settings.insecure
    assert settings.include and settings.verbose and settings.ping_interval is None
    bad = CliRunner().invoke(command, ["ws://h/", "-H", "nocolon"])
    assert bad.exit_code == 2 and "has no colon" in bad.output


# ---------------------------------------------------------------------- proxy choice (core)


def test_proxy_url_parsing_and_masking() -> None:
    proxy = ProxyURL.parse("socks5h://us%40er:p%3Ass@[::1]:9050")
    assert (proxy.scheme, proxy.host, proxy.port) == ("socks5h", "::1", 9050)
    assert (proxy.username, proxy.password) == ("us@er", "p:ss")
    assert str(proxy) == "socks5h://us@er:****@[::1]:9050"
    assert ProxyURL.parse("proxy.test").port == 1080  # no scheme: http, curl's default port
    assert ProxyURL.parse("https://proxy.test").port == 443
    with pytest.raises(ValueError, match="unsupported proxy scheme"):
        ProxyURL.parse("socks4://h:1")


def test_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    ws, wss = parse_uri("ws://h.test:81/"), parse_uri("wss://h.test/")
    assert proxy_from_environment(ws) is None
    monkeypatch.setenv("http_proxy", "http://p1:1")
    monkeypatch.setenv("https_proxy", "http://p2:2")
    assert proxy_from_environment(ws) == "http://p1:1"
    assert proxy_from_environment(wss) == "http://p2:2"
    monkeypatch.setenv("ws_proxy", "socks5://p3:3")
    assert proxy_from_environment(ws) == "socks5://p3:3"
    monkeypatch.setenv("no_proxy", "h.test")
    assert proxy_from_environment(ws) is None and proxy_from_environment(wss) is None


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"http_proxy": "http://p:1"},
        {"HTTP_PROXY": "http://p:1"},
        {"Ws_Proxy": "socks5://p:1"},
        {"http_proxy": ""},
        {"no_proxy": "h.test"},
        {"ALL_PROXY": "", "https_proxy": "http://p:2"},
        {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://p:1"},  # urllib's CGI rule
        {"proxy": "http://p:1", "http-proxy": "x", "PROXYHOST": "x"},  # not *_proxy names
    ],
)
def test_no_proxy_variable_means_urllib_finds_no_proxy(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    # The shortcut that spares the import of urllib.request must never hide a proxy urllib sees:
    # when it says "no variable", getproxies() is empty.
    import urllib.request

    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name == "REQUEST_METHOD":
            monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    if not environment_may_name_a_proxy():
        assert urllib.request.getproxies() == {}
    if urllib.request.getproxies():
        assert environment_may_name_a_proxy()
    named = any(value and name.lower().endswith("_proxy") for name, value in variables.items())
    assert environment_may_name_a_proxy() == (named or sys.platform in ("darwin", "win32"))


def test_proxy_for_honours_explicit_env_and_unix_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://env.test:8080")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("ws_proxy", raising=False)
    uri = parse_uri("ws://h.test/")
    assert proxy_for(uri, ChannelOptions()) is None  # the library default ignores the env
    assert str(proxy_for(uri, ChannelOptions(trust_env=True))) == "http://env.test:8080"
    explicit = ChannelOptions(proxy="socks5://p:1", trust_env=True)
    assert str(proxy_for(uri, explicit)) == "socks5://p:1"
    assert proxy_for(uri, ChannelOptions(trust_env=True, unix_socket="/s")) is None
    with pytest.raises(ProxyError, match="unsupported proxy scheme"):
        proxy_for(uri, ChannelOptions(proxy="gopher://x:1"))
