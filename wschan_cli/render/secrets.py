"""Masking secrets in what wschan shows (-i, -v, traces, error messages).

Authorization, Proxy-Authorization, Cookie and Set-Cookie values, and the password in a URL's
user information, are replaced by ``****``. The authentication scheme is kept ("Basic ****") so
that the output still says which kind of credential went out.
"""

from __future__ import annotations

import re

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
MASK = "****"

_SCHEMED = frozenset({"authorization", "proxy-authorization"})
# scheme://user:password@  ->  scheme://user:****@   (and a bare user@ is left alone)
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*):[^/@\s]*@")


def is_secret(name: str) -> bool:
    return name.strip().lower() in SECRET_HEADERS


def mask_header(name: str, value: str) -> str:
    """The value to show for header ``name``."""
    key = name.strip().lower()
    if key not in SECRET_HEADERS:
        return value
    if key in _SCHEMED:
        scheme, _, credentials = value.strip().partition(" ")
        if credentials:
            return f"{scheme} {MASK}"
    return MASK


def mask_url(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it masked."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
