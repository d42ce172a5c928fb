"""Connection options shared by every client command (``send``, ``connect``, ``trace-shutdown``).

One definition: ``@connection_options`` adds the options to a click command and hands the
command a single ``connection: ConnectionSettings`` argument (settings.py: the core's
``ChannelOptions`` plus the command line's own).

Cheap to import: click and the numbers of ``channel.defaults`` only. The settings (two
dataclasses, ~3 ms to build) are imported when a command runs, never for ``--help``; so is the
channel package, which imports websockets.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import click

from wschan_cli.channel import defaults

F = TypeVar("F", bound=Callable[..., Any])

# ---------------------------------------------------------------------- value parsing


def output_format(*, json_out: bool, pretty: bool, timestamps: bool, raw: bool = False) -> str:
    """The stdout format of ``send`` and ``connect`` ("json", "raw" or "plain") from their
    flags; click.UsageError when two of them ask for different things. JSON Lines records carry
    their time ("t") whether --timestamps is given or not."""
    if json_out and (raw or pretty):
        raise click.UsageError(f"--json cannot be combined with {'--raw' if raw else '--pretty'}")
    if raw and (pretty or timestamps):
        raise click.UsageError("--raw writes payloads only: drop --pretty/--timestamps")
    return "json" if json_out else "raw" if raw else "plain"


class Seconds(click.FloatRange):
    """A number of seconds of at least ``min``: click's FloatRange, which lets "nan" (it
    compares false with every bound) and "inf" through, with both refused."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


def check_url(url: str) -> None:
    """The URL argument of a client command: a ws:// or wss:// URL wschan can connect to, or
    click.BadParameter (exit 2, before anything is sent). The one URL check of every command.

    Beyond websockets' parser, which takes port 0 for "no port" (80) and keeps a space in the
    host: port 0 and a host with spaces or characters no host name has are usage errors.
    """
    from urllib.parse import urlsplit

    from websockets.exceptions import InvalidURI
    from websockets.uri import parse_uri

    def bad(problem: str) -> click.BadParameter:
        return click.BadParameter(f"{url!r}: {problem}", param_hint="'URL'")

    try:
        parse_uri(url)
        parts = urlsplit(url)
        port = parts.port
    except InvalidURI as exc:
        raise bad(exc.msg) from None
    except ValueError as exc:
        raise bad(str(exc)) from None
    if port == 0:
        raise bad("port 0 cannot be connected to (leave the port out for the default)")
    host = parts.hostname or ""
    if any(c.isspace() or not c.isprintable() or c in _NOT_IN_HOSTS for c in host):
        raise bad(f"{host!r} is not a valid host name")
    # The path and query as written (urlsplit drops tabs and line breaks: the raw text counts).
    rest = url.partition("://")[2]
    resource = rest[
        min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest)) :
    ]
    bad_char = next((c for c in resource if c.isspace() or not c.isprintable()), None)
    if bad_char is not None:  # it would go raw into the request line (RFC 3986 2.1)
        raise bad(f"the path and query cannot carry {bad_char!r} (percent-encode it)")
    if ":" not in host:  # not an IPv6 literal: a name the resolver takes (RFC 1035 2.3.4)
        try:
            host.encode("idna")  # what the resolver does first: empty labels, over 63 bytes
        except UnicodeError as exc:
            problem = str(exc.__cause__ or exc).removeprefix("label ")
            raise bad(f"{host!r} is not a valid host name ({problem})") from None


# RFC 3986 3.2.2: a host is an IP literal or letters, digits and -._~%!$&'()*+,;= only.
_NOT_IN_HOSTS = frozenset('"<>\\^`{|}/?#@')


def _size_text(size: int | None) -> str:
    """A size as ``--max-size`` takes it, for its help: 1048576 -> "1MiB"."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("kiB", 1024)):
        if size and size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size or 0)


# ---------------------------------------------------------------------- the click options

_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "-H",
        "--header",
        multiple=True,
        metavar="'NAME: VALUE'",
        help="Add a header to the upgrade request (repeatable).",
    ),
    click.option("--origin", metavar="URL", help="Send this Origin header."),
    click.option(
        "--subprotocol",
        multiple=True,
        metavar="NAME",
        help="Offer this subprotocol (repeatable, in order of preference).",
    ),
    click.option(
        "--auth", metavar="USER:PASSWORD", help="HTTP Basic authentication (Authorization)."
    ),
    click.option("--bearer", metavar="TOKEN", help="Send 'Authorization: Bearer TOKEN'."),
    click.option(
        "--cacert",
        type=click.Path(exists=True, dir_okay=False),
        metavar="FILE",
        help="Trust the CA certificates in FILE (PEM) instead of the system's.",
    ),
    click.option(
        "--cert",
        type=click.Path(exists=True, dir_okay=False),
        metavar="FILE",
        help="Client certificate (PEM), with its key unless --key is given.",
    ),
    click.option(
        "--key",
        type=click.Path(exists=True, dir_okay=False),
        metavar="FILE",
        help="Private key of the client certificate (PEM).",
    ),
    click.option(
        "-k",
        "--insecure",
        is_flag=True,
        help="Do not verify the server's TLS certificate or host name.",
    ),
    click.option(
        "--proxy",
        metavar="URL",
        help="Connect through this proxy: http://, https:// (HTTP CONNECT), socks5:// (names "
        "resolved here) or socks5h:// (resolved by the proxy), with optional user:password@. "
        "Default: the environment (ws_proxy/http_proxy for ws://, wss_proxy/https_proxy "
        "for wss://, then all_proxy; no_proxy lists hosts to reach directly).",
    ),
    click.option("--no-proxy", is_flag=True, help="Ignore the proxy environment variables."),
    click.option(
        "--unix-socket",
        metavar="PATH",
        help="Connect to this Unix socket instead of the URL's host and port (the URL still "
        "gives Host, the path and, for wss://, the TLS server name).",
    ),
    click.option(
        "--open-timeout",
        type=Seconds(min=0),
        default=defaults.OPEN_TIMEOUT,
        show_default=True,
        metavar="SECONDS",
        help="Limit on connecting, TLS, proxy and upgrade together (0: none).",
    ),
    click.option(
        "--close-timeout",
        type=Seconds(min=0),
        default=defaults.CLOSE_TIMEOUT,
        show_default=True,
        metavar="SECONDS",
        help="How long writing our Close frame and hearing the server's answer may take "
        "together, even while the server does not read (0: forever).",
    ),
    click.option(
        "--write-timeout",
        type=Seconds(min=0),
        default=defaults.WRITE_TIMEOUT,
        show_default=True,
        metavar="SECONDS",
        help="Abort the connection (1006) when a frame cannot be written within SECONDS "
        "(the server stopped reading) (0: wait forever). The final Close frame is also "
        "bounded by --close-timeout.",
    ),
    click.option(
        "--ping-interval",
        type=Seconds(min=0),
        default=defaults.PING_INTERVAL,
        show_default=True,
        metavar="SECONDS",
        help="Send a keepalive Ping this often (0: never).",
    ),
    click.option(
        "--ping-timeout",
        type=Seconds(min=0),
        default=defaults.PING_TIMEOUT,
        show_default=True,
        metavar="SECONDS",
        help="Close with 1011 when a keepalive Pong is this late (0: wait forever).",
    ),
    click.option(
        "--max-size",
        default=_size_text(defaults.MAX_SIZE),
        show_default=True,
        metavar="BYTES",
        help="Largest message accepted; bigger closes with 1009. Suffixes k, M, G; 0: no limit.",
    ),
    click.option(
        "--no-compression", is_flag=True, help="Do not offer permessage-deflate compression."
    ),
    click.option(
        "-i",
        "--include",
        is_flag=True,
        help="Print the handshake response status and headers on stderr (a refusal too).",
    ),
    click.option(
        "-v",
        "--verbose",
        is_flag=True,
        help="Print every frame in and out and every sending / established transition on "
        "stderr (secrets masked: see --show-secrets).",
    ),
    click.option(
        "--color",
        type=click.Choice(["auto", "always", "never"]),
        default="auto",
        show_default=True,
        help="Colour output: auto colours terminals only and honours NO_COLOR, FORCE_COLOR "
        "and TERM=dumb.",
    ),
    click.option(
        "--show-secrets",
        is_flag=True,
        help="Show secrets as they are. By default, wherever wschan prints them, these are "
        "shown as ****: Authorization, Proxy-Authorization, Cookie, Set-Cookie and headers "
        "named *-Key, *Token*, *Secret*; URL passwords; the query parameters token, "
        "access_token, key, api_key, password, secret, sig and signature.",
    ),
    click.option(
        "--mask",
        multiple=True,
        metavar="NAME",
        help="Also mask the header or query parameter NAME (repeatable).",
    ),
    click.option(
        "--debug", is_flag=True, help="Show a traceback when something fails (secrets masked)."
    ),
]

#: Names of the parameters ``connection_options`` adds (and collects into ``connection``).
PARAM_NAMES = (
    "header",
    "origin",
    "subprotocol",
    "auth",
    "bearer",
    "cacert",
    "cert",
    "key",
    "insecure",
    "proxy",
    "no_proxy",
    "unix_socket",
    "open_timeout",
    "close_timeout",
    "write_timeout",
    "ping_interval",
    "ping_timeout",
    "max_size",
    "no_compression",
    "include",
    "verbose",
    "color",
    "debug",
    "show_secrets",
    "mask",
)


def connection_options(command: F) -> F:
    """Add the shared connection options to a click command function.

    The function receives ``connection: ConnectionSettings`` instead of the separate values;
    bad values and combinations end the command with a usage error (exit 2) before it runs.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in PARAM_NAMES}
        from wschan_cli.settings import ConnectionSettings

        kwargs["connection"] = ConnectionSettings.from_values(**values)
        return command(*args, **kwargs)

    decorated: Any = wrapper
    for option in reversed(_OPTIONS):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


#: Names that lived here before settings.py held them (PEP 562: loaded when first asked for,
#: so that importing this module for --help builds no dataclass).
_MOVED = ("ConnectionSettings", "parse_header", "parse_size", "check_proxy_url", "PROXY_SCHEMES")


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from wschan_cli import settings

    return getattr(settings, name)
