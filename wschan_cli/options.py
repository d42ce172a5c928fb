"""Connection options shared by every client command (``send``, ``connect``, ``trace-shutdown``).

One definition: ``@connection_options`` adds the options to a click command and hands the
command a single ``connection: ConnectionSettings`` argument. ``ConnectionSettings`` is the
core's ``ChannelOptions`` (whose defaults are the command line's, written once, there) plus what
the core does not need (``include``, ``verbose``, ``color``, ``debug``); ``channel_options()``
hands the core its part.

Cheap to import: click and ``channel.options`` only (a dataclass; the channel package imports
websockets when a name that needs it is first used, that is when the command runs, never for
``--help``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from wschan_cli.channel.options import ChannelOptions

if TYPE_CHECKING:
    from wschan_cli.secrets import Secrets

F = TypeVar("F", bound=Callable[..., Any])

# RFC 7230 token characters: what a header name may contain.
# Patterns, compiled on first use (re caches them): compiling them at import cost ~2 ms of
# every start-up, ``--help`` included (the case-insensitive one most).
_TOKEN = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"
_SIZE = r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$"
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


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


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` -> ``("Name", "value")``; ValueError says what is wrong."""
    if ":" not in text:
        raise ValueError(f"{text!r} has no colon: write it as 'Name: value'")
    name, value = text.split(":", 1)
    name, value = name.strip(), value.strip()
    if not name:
        raise ValueError(f"{text!r} has an empty header name")
    if not re.match(_TOKEN, name):
        raise ValueError(f"{name!r} is not a valid header name")
    if any(c in value for c in "\r\n\x00"):
        raise ValueError(f"the value of {name} contains a line break or NUL")
    if (problem := header_value_problem(value)) is not None:
        raise ValueError(f"the value of {name} {problem}")
    return name, value


def header_value_problem(value: str) -> str | None:
    """What keeps ``value`` out of a request header, or None: HTTP field values are tab,
    visible ASCII and bytes 0x80-0xFF (RFC 9110 5.5; websockets' rule, which would otherwise
    refuse it at connect time)."""
    bad = next((c for c in value if not _FIELD_VALUE_CHAR(c)), None)
    if bad is None:
        return None
    return f"contains {bad!r}, which a header cannot carry"


_FIELD_VALUE_CHAR = re.compile(r"[\x09\x20-\x7e\x80-\xff]").fullmatch


class Seconds(click.FloatRange):
    """A number of seconds of at least ``min``: click's FloatRange, which lets "nan" (it
    compares false with every bound) and "inf" through, with both refused."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


def parse_size(text: str) -> int | None:
    """``"1048576"``, ``"64k"``, ``"16MiB"``, ``"1g"`` -> bytes; ``"0"`` -> None (no limit)."""
    match = re.match(_SIZE, text, re.IGNORECASE)
    if not match:
        raise ValueError(f"{text!r} is not a size (bytes, or a number with k, M or G)")
    unit = (match.group(2) or "").lower()[:1]
    size = int(match.group(1)) * _UNITS[unit]
    if size > sys.maxsize:  # more than any buffer can hold (zlib refuses such a limit)
        raise ValueError(f"{text!r} is too large (at most {sys.maxsize} bytes)")
    return size or None


def check_proxy_url(url: str) -> str:
    """Validate a proxy URL's shape (scheme, host, port) without importing the core."""
    from urllib.parse import urlsplit

    full = url if "://" in url else "http://" + url
    parts = urlsplit(full)
    scheme = parts.scheme.lower()
    if scheme not in PROXY_SCHEMES:
        raise ValueError(
            f"unsupported proxy scheme {scheme!r}: use "
            + ", ".join(f"{s}://" for s in PROXY_SCHEMES)
        )
    if not parts.hostname:
        raise ValueError("the proxy URL has no host")
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise ValueError("the proxy URL has an invalid port") from None
    return full


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


def _seconds_or_none(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def _size_text(size: int | None) -> str:
    """A size as ``--max-size`` takes it, for its help: 1048576 -> "1MiB"."""
    for unit in ("GiB", "MiB", "kiB"):
        scale = _UNITS[unit[0].lower()]
        if size and size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size or 0)


# ---------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ConnectionSettings(ChannelOptions):
    """The parsed connection options of a client command: the core's options, with the
    command line's policy where it differs from the library's, and the command line's own."""

    reconnect: bool = True  # reconnect after a clean close (the C++ design)
    trust_env: bool = True  # the proxy environment variables, unless --no-proxy
    include: bool = False
    verbose: bool = False
    color: str = "auto"
    debug: bool = False
    show_secrets: bool = False
    mask: tuple[str, ...] = ()
    target: str | None = None  # the URL connected to: its secrets are masked in free text too

    @classmethod
    def from_values(
        cls,
        *,
        header: tuple[str, ...] = (),
        origin: str | None = None,
        subprotocol: tuple[str, ...] = (),
        auth: str | None = None,
        bearer: str | None = None,
        cacert: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        insecure: bool = False,
        proxy: str | None = None,
        no_proxy: bool = False,
        unix_socket: str | None = None,
        open_timeout: float | None = ChannelOptions.open_timeout,
        close_timeout: float | None = ChannelOptions.close_timeout,
        write_timeout: float | None = ChannelOptions.write_timeout,
        ping_interval: float | None = ChannelOptions.ping_interval,
        ping_timeout: float | None = ChannelOptions.ping_timeout,
        max_size: str | int | None = ChannelOptions.max_size,
        no_compression: bool = False,
        include: bool = False,
        verbose: bool = False,
        color: str = "auto",
        debug: bool = False,
        show_secrets: bool = False,
        mask: tuple[str, ...] = (),
    ) -> ConnectionSettings:
        """Build settings from the values click parsed; raises click.UsageError /
        click.BadParameter (exit 2) for a bad value or combination."""
        headers: list[tuple[str, str]] = []
        for text in header:
            try:
                headers.append(parse_header(text))
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="'-H' / '--header'") from None
        if origin is not None and any(c in origin for c in "\r\n\x00"):
            raise click.BadParameter("contains a line break or NUL", param_hint="'--origin'")
        if origin is not None and (problem := header_value_problem(origin)) is not None:
            raise click.BadParameter(problem, param_hint="'--origin'")
        for name in subprotocol:
            if not re.match(_TOKEN, name):  # RFC 6455 4.1: a token, as header names are
                raise click.BadParameter(
                    f"{name!r} is not a subprotocol name (a token: no spaces or separators)",
                    param_hint="'--subprotocol'",
                )
        has_authorization = any(name.lower() == "authorization" for name, _ in headers)
        if auth is not None and bearer is not None:
            raise click.UsageError("--auth and --bearer both set Authorization: give one")
        if (auth is not None or bearer is not None) and has_authorization:
            raise click.UsageError(
                "an Authorization header is given with -H and with --auth/--bearer: give one"
            )
        if auth is not None:
            if ":" not in auth:
                raise click.BadParameter("write it as USER:PASSWORD", param_hint="'--auth'")
            import base64  # here: ``wschan send --help`` need not load it

            token = base64.b64encode(auth.encode()).decode()
            headers.append(("Authorization", f"Basic {token}"))
        if bearer is not None:
            if not bearer or any(c in bearer for c in "\r\n\x00 ") or header_value_problem(bearer):
                raise click.BadParameter(
                    "the token must be non-empty, without spaces, line breaks or controls",
                    param_hint="'--bearer'",
                )
            headers.append(("Authorization", f"Bearer {bearer}"))
        if key is not None and cert is None:
            raise click.UsageError("--key needs --cert (the client certificate it belongs to)")
        if proxy is not None and no_proxy:
            raise click.UsageError("--proxy and --no-proxy contradict each other")
        if proxy is not None:
            try:
                proxy = check_proxy_url(proxy)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="'--proxy'") from None
        if unix_socket is not None and proxy is not None:
            raise click.UsageError("--unix-socket and --proxy cannot be combined")
        if isinstance(max_size, str):
            try:
                max_size = parse_size(max_size)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="'--max-size'") from None
        return cls(
            headers=tuple(headers),
            origin=origin,
            subprotocols=tuple(subprotocol),
            cafile=cacert,
            certfile=cert,
            keyfile=key,
            insecure=insecure,
            proxy=proxy,
            trust_env=not no_proxy,
            unix_socket=unix_socket,
            open_timeout=_seconds_or_none(open_timeout),
            close_timeout=_seconds_or_none(close_timeout),
            write_timeout=_seconds_or_none(write_timeout),
            ping_interval=_seconds_or_none(ping_interval),
            ping_timeout=_seconds_or_none(ping_timeout),
            max_size=max_size or None,
            compression=not no_compression,
            include=include,
            verbose=verbose,
            color=color,
            debug=debug,
            show_secrets=show_secrets,
            mask=tuple(mask),
        )

    def channel_options(self, **changes: Any) -> ChannelOptions:
        """The core's options in these settings (``changes`` override fields)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(ChannelOptions)}
        values.update(changes)
        return ChannelOptions(**values)

    @property
    def secrets(self) -> Secrets:
        """What to mask in what is shown (secrets.py)."""
        from wschan_cli.secrets import Secrets

        return Secrets.of(
            show=self.show_secrets,
            names=self.mask,
            headers=self.headers,
            urls=(self.target, self.proxy),
        )

    def request_headers(self) -> list[tuple[str, str]]:
        """The headers wschan adds to the upgrade request (unmasked: mask before showing)."""
        shown = list(self.headers)
        if self.origin:
            shown.append(("Origin", self.origin))
        if self.subprotocols:
            shown.append(("Sec-WebSocket-Protocol", ", ".join(self.subprotocols)))
        return shown


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
        default=ChannelOptions.open_timeout,
        show_default=True,
        metavar="SECONDS",
        help="Limit on connecting, TLS, proxy and upgrade together (0: none).",
    ),
    click.option(
        "--close-timeout",
        type=Seconds(min=0),
        default=ChannelOptions.close_timeout,
        show_default=True,
        metavar="SECONDS",
        help="How long writing our Close frame and hearing the server's answer may take "
        "together, even while the server does not read (0: forever).",
    ),
    click.option(
        "--write-timeout",
        type=Seconds(min=0),
        default=ChannelOptions.write_timeout,
        show_default=True,
        metavar="SECONDS",
        help="Abort the connection (1006) when a frame cannot be written within SECONDS "
        "(the server stopped reading) (0: wait forever). The final Close frame is also "
        "bounded by --close-timeout.",
    ),
    click.option(
        "--ping-interval",
        type=Seconds(min=0),
        default=ChannelOptions.ping_interval,
        show_default=True,
        metavar="SECONDS",
        help="Send a keepalive Ping this often (0: never).",
    ),
    click.option(
        "--ping-timeout",
        type=Seconds(min=0),
        default=ChannelOptions.ping_timeout,
        show_default=True,
        metavar="SECONDS",
        help="Close with 1011 when a keepalive Pong is this late (0: wait forever).",
    ),
    click.option(
        "--max-size",
        default=_size_text(ChannelOptions.max_size),
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
        kwargs["connection"] = ConnectionSettings.from_values(**values)
        return command(*args, **kwargs)

    decorated: Any = wrapper
    for option in reversed(_OPTIONS):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]
