"""The exit statuses of every wschan command (README and the man pages list them)."""

from __future__ import annotations

EXIT_OK = 0  # done: normal close (1000/1001) or every expected reply received
EXIT_ERROR = 1  # other error
EXIT_USAGE = 2  # usage error (click's own status), including a malformed URL
EXIT_CONNECT = 3  # could not connect: DNS, refused, TLS, proxy
EXIT_REJECTED = 4  # handshake rejected (HTTP status other than 101)
EXIT_ABNORMAL = 5  # closed abnormally (close code other than 1000/1001, or no close frame)
EXIT_VIOLATION = 6  # trace-shutdown found an invariant violation
EXIT_TIMEOUT = 124  # a timeout given on the command line expired
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as a shell reports it)


def status_for(exc: BaseException) -> int:
    """The exit status for a channel error raised while opening a connection."""
    from wschan_cli.channel import ConnectError, HandshakeError, InvalidURL

    if isinstance(exc, InvalidURL):
        return EXIT_USAGE
    if isinstance(exc, ConnectError):
        return EXIT_CONNECT
    if isinstance(exc, HandshakeError):
        return EXIT_REJECTED
    return EXIT_ERROR
