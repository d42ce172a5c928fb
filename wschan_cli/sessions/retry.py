"""Which failures ``--reconnect`` retries, written once (help text and man page say the same).

Permanent, given up at once (trying again cannot help without a change on one side):
  - the host name does not exist (DNS "no such name"; a temporary resolver failure is retried),
  - the server's TLS certificate is not trusted (verification failed),
  - an HTTP 4xx answer to the upgrade, except 408 and 429,
  - a malformed URL.
Transient, retried with the backoff: everything else — refused, reset, timeouts, other TLS or
proxy failures, HTTP 5xx, an upgrade cut short, abnormal closes. 408 (Request Timeout) and 429
(Too Many Requests) are retried after the delay their ``Retry-After`` header asks for, when given.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

from wschan_cli.channel import ChannelError, DNSError, HandshakeRejected, InvalidURL, TLSError

#: HTTP statuses of the 4xx class that say "later", not "never" (RFC 9110 15.5.9, RFC 6585 4).
RETRIED_4XX = frozenset({408, 429})


@dataclass(frozen=True)
class Verdict:
    permanent: bool
    retry_after: float | None = None  # seconds the server asked us to wait (Retry-After)


def classify(error: ChannelError) -> Verdict:
    """Whether a failed connect is worth another attempt, and when the server wants it."""
    if isinstance(error, InvalidURL):
        return Verdict(permanent=True)
    if isinstance(error, DNSError):
        cause = error.__cause__
        no_name = isinstance(cause, socket.gaierror) and cause.errno in _NO_SUCH_NAME
        return Verdict(permanent=no_name)
    if isinstance(error, TLSError):
        return Verdict(permanent=isinstance(error.__cause__, ssl.SSLCertVerificationError))
    if isinstance(error, HandshakeRejected):
        if error.status in RETRIED_4XX:
            return Verdict(permanent=False, retry_after=retry_after(error.headers))
        return Verdict(permanent=400 <= error.status < 500)
    return Verdict(permanent=False)


def retry_after(headers: tuple[tuple[str, str], ...]) -> float | None:
    """Seconds from a ``Retry-After`` header (RFC 9110 10.2.3): delay-seconds or an HTTP date."""
    for name, value in headers:
        if name.lower() != "retry-after":
            continue
        value = value.strip()
        if value.isdigit():
            return float(value)
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        import time

        return max(when.timestamp() - time.time(), 0.0)
    return None


# getaddrinfo's "the name does not exist" (EAI_NODATA: it exists without an address), as
# opposed to EAI_AGAIN, a resolver that could not answer now.
_NO_SUCH_NAME = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)
