"""Masking secrets in what wschan shows (-i, -v, traces, error messages, usage errors, --debug
tracebacks).

Masked by default, as ``****``:
  - header values: Authorization and Proxy-Authorization (the scheme is kept: "Basic ****", so
    the output still says which kind of credential went out), Cookie and Set-Cookie, and any
    header whose name ends in ``-Key`` or contains ``Token`` or ``Secret`` (X-Api-Key,
    X-Auth-Token, Client-Secret...);
  - in URLs: the password of the user information, and the values of the query parameters
    token, access_token, key, api_key, password, secret, sig and signature.
``--mask NAME`` (repeatable) adds a header or query parameter name; ``--show-secrets`` shows
everything as it is. Names are compared without regard to case.

The values themselves (those of the secret headers sent, the passwords and secret parameters
of the URL and the proxy, the Basic credentials made from a URL's user information) are also
masked wherever they appear in free text: a server that quotes what it refused ("invalid token
...") in a refusal or a close reason is data shown in an error line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MASK = "****"

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
SECRET_PARAMETERS = frozenset(
    {"token", "access_token", "key", "api_key", "password", "secret", "sig", "signature"}
)

_SCHEMED = frozenset({"authorization", "proxy-authorization"})
# scheme://user:password@  ->  scheme://user:****@   (and a bare user@ is left alone)
# Patterns, compiled on first use (re caches them), not at every start-up.
_URL_PASSWORD = r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*):[^/@\s]*@"
# ?name=value or &name=value (value up to the next &, #, quote or blank)
_PARAMETER = r"(?P<head>[?&;](?P<name>[^=&#\s'\"?]+)=)(?P<value>[^&#\s'\"]*)"


#: Values shorter than this are not searched for in free text: they would mask words.
MIN_VALUE = 4


@dataclass(frozen=True)
class Secrets:
    """The masking policy of one run."""

    show: bool = False  # --show-secrets
    names: frozenset[str] = frozenset()  # --mask NAME..., lower case
    values: tuple[str, ...] = ()  # secret values sent, longest first (masked in free text)

    @classmethod
    def of(
        cls,
        *,
        show: bool = False,
        names: tuple[str, ...] = (),
        headers: tuple[tuple[str, str], ...] = (),
        urls: tuple[str | None, ...] = (),
    ) -> Secrets:
        policy = cls(show, frozenset(name.strip().lower() for name in names))
        values: set[str] = set()
        for name, value in headers:
            if policy.is_secret_header(name):
                values.add(value.strip())
                values.add(value.strip().partition(" ")[2].strip())  # "Bearer X": X too
        for url in urls:
            if url:
                values.update(policy._url_values(url))
        kept = sorted((v for v in values if len(v) >= MIN_VALUE), key=len, reverse=True)
        return cls(policy.show, policy.names, tuple(kept))

    def _url_values(self, url: str) -> set[str]:
        """The secrets a URL carries: its password (as written and decoded), the Basic
        credentials its user information becomes (websockets sends them), and the values of
        its secret query parameters."""
        import base64
        from urllib.parse import parse_qsl, unquote, urlsplit

        try:
            parts = urlsplit(url)
        except ValueError:
            return set()
        values: set[str] = set()
        if parts.password is not None:
            user, password = unquote(parts.username or ""), unquote(parts.password)
            values |= {parts.password, password}
            values.add(base64.b64encode(f"{user}:{password}".encode()).decode())
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name.lower() in SECRET_PARAMETERS or name.lower() in self.names:
                values.add(value)
        return values

    def is_secret_header(self, name: str) -> bool:
        key = name.strip().lower()
        return (
            key in SECRET_HEADERS
            or key in self.names
            or key.endswith("-key")
            or "token" in key
            or "secret" in key
        )

    def header(self, name: str, value: str) -> str:
        """The value to show for header ``name``."""
        if self.show or not self.is_secret_header(name):
            return value
        if name.strip().lower() in _SCHEMED:
            scheme, _, credentials = value.strip().partition(" ")
            if credentials:
                return f"{scheme} {MASK}"
        return MASK

    def text(self, text: str) -> str:
        """``text`` with URL passwords, secret query parameter values and the secret values
        sent masked."""
        if self.show:
            return text
        text = re.sub(_URL_PASSWORD, lambda m: f"{m.group('head')}:{MASK}@", text)
        text = re.sub(_PARAMETER, self._parameter, text)
        for value in self.values:
            text = text.replace(value, MASK)
        return text

    def _parameter(self, match: re.Match[str]) -> str:
        name = match.group("name").lower()
        if (name in SECRET_PARAMETERS or name in self.names) and match.group("value"):
            return match.group("head") + MASK
        return match.group()


#: The default policy (what is shown before the options are known, e.g. in usage errors).
DEFAULT = Secrets()


def mask_header(name: str, value: str) -> str:
    return DEFAULT.header(name, value)


def mask_url(text: str) -> str:
    return DEFAULT.text(text)
