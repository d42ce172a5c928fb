"""The parsed connection options of a client command (``send``, ``connect``, ``trace-shutdown``):
``ConnectionSettings`` is the core's ``ChannelOptions`` (whose defaults are the command line's,
written once, in ``channel/defaults.py``) plus what the core does not need (``include``,
``verbose``, ``color``, ``debug``...); ``channel_options()`` hands the core its part.

Built from the values click parsed (``ConnectionSettings.from_values``) when a command runs;
the click options themselves are in options.py, which imports this module only then, so that
``--help`` builds no dataclass (issue 13, start-up).
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from wschan_cli.channel.options import ChannelOptions

if TYPE_CHECKING:
    from wschan_cli.secrets import Secrets

# RFC 7230 token characters: what a header name may contain.
# Patterns, compiled on first use (re caches them): compiling them at import cost ~2 ms of
# every start-up (the case-insensitive one most).
_TOKEN = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"
_SIZE = r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$"
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


# ---------------------------------------------------------------------- value parsing


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


def _seconds_or_none(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


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
