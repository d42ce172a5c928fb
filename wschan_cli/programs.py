"""A program on the other end of a WebSocket: the rules ``serve --exec`` and ``connect --exec``
share. Messages become lines on its stdin, lines of its stdout become messages (relayed in
order until EOF), and it is stopped with SIGTERM, then SIGKILL after a grace period.

Imports nothing of websockets or the channel, so both sides can use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable

#: Longest stdout line sent as one message (StreamReader's limit); longer is an error.
MAX_LINE = 1024 * 1024


def message_line(message: str | bytes) -> bytes:
    """A message as a line for the program's stdin: text as UTF-8, binary as is, then LF."""
    data = message.encode() if isinstance(message, str) else message
    return data + b"\n"


def line_message(line: bytes) -> str | bytes:
    """A line of the program's stdout as a message, without its LF: text when it is UTF-8
    (a text frame must be, RFC 6455 5.6), binary otherwise."""
    data = line.removesuffix(b"\n")
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


async def relay_lines(
    stdout: asyncio.StreamReader, send: Callable[[str | bytes], Awaitable[object]]
) -> bool:
    """Each line of the program's stdout, as a message, to ``send``, in order, until EOF.

    False when a line was longer than :data:`MAX_LINE` (StreamReader's limit): the caller then
    closes with 1009, message too big (RFC 6455 7.4.1). What ``send`` raises goes to the caller.
    """
    try:
        while line := await stdout.readline():
            await send(line_message(line))
    except ValueError:
        return False
    return True


def status_text(returncode: int) -> str:
    """``exit status N`` or ``killed by SIGNAME``, as asyncio reports a child's end."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def shell_status(returncode: int) -> int:
    """The exit status a shell would report for the child: N, or 128 + the signal number."""
    return 128 - returncode if returncode < 0 else returncode


async def start(
    argv: tuple[str, ...], env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    """Start ``argv`` (no shell) with piped stdin and stdout; stderr is ours. In its own process
    group, so that stopping it reaches a pipeline the user wrote (``sh -c 'a | b'``)."""
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
        limit=MAX_LINE,
        start_new_session=True,
    )


async def stop(process: asyncio.subprocess.Process, grace: float) -> bool:
    """SIGTERM to the program's process group, SIGKILL after ``grace`` seconds; wait for it.
    True if SIGKILL was needed."""
    if process.returncode is not None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(grace):
            await process.wait()
        return False
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        return True
