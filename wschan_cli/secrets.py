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


@dataclass(frozen=True)
class Secrets:
    """The masking policy of one run."""

    show: bool = False  # --show-secrets
    names: frozenset[str] = frozenset()  # --mask NAME..., lower case

    @classmethod
    def of(cls, *, show: bool = False, names: tuple[str, ...] = ()) -> Secrets:
        return cls(show, frozenset(name.strip().lower() for name in names))

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
        """``text`` with URL passwords and secret query parameter values masked."""
        if self.show:
            return text
        text = re.sub(_URL_PASSWORD, lambda m: f"{m.group('head')}:{MASK}@", text)
        return re.sub(_PARAMETER, self._parameter, text)

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
