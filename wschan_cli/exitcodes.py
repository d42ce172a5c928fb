"""The exit statuses of every wschan command (README and the man pages list them)."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """A command's exit status; an IntEnum so that it is the number a shell sees."""

    OK = 0  # done: normal close (1000/1001) or every expected reply received
    ERROR = 1  # other error
    USAGE = 2  # usage error (click's own status), including a malformed URL
    CONNECT = 3  # could not connect: DNS, refused, TLS, proxy
    REJECTED = 4  # handshake rejected (HTTP status other than 101)
    ABNORMAL = 5  # closed abnormally (close code other than 1000/1001, or no close frame)
    VIOLATION = 6  # trace-shutdown found an invariant violation
    TIMEOUT = 124  # a timeout given on the command line expired
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as a shell reports it)


def status_for(exc: BaseException) -> ExitStatus:
    """The exit status an exception ends a command with: the one mapping from exception to
    status, used by every command (``runner.run_main``, ``cli.main`` for click's own errors,
    the sessions for a failed connect). Anything not named here is an error (1)."""
    if isinstance(exc, KeyboardInterrupt):
        return ExitStatus.INTERRUPTED
    import click  # loaded already: the command line has been parsed

    if isinstance(exc, click.exceptions.Abort):  # click's name for a Ctrl-C at a prompt
        return ExitStatus.INTERRUPTED
    if isinstance(exc, click.exceptions.ClickException):
        # click's usage errors are 2, its other errors (an unreadable file...) 1.
        return ExitStatus.USAGE if exc.exit_code == ExitStatus.USAGE else ExitStatus.ERROR
    from wschan_cli.channel import ConnectError, HandshakeError, InvalidURL

    if isinstance(exc, InvalidURL):
        return ExitStatus.USAGE
    if isinstance(exc, ConnectError):
        return ExitStatus.CONNECT
    if isinstance(exc, HandshakeError):
        return ExitStatus.REJECTED
    return ExitStatus.ERROR
