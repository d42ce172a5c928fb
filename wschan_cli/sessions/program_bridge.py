"""``wschan connect URL --exec CMD``: a program on the client's end of the socket (websocat's
``exec:``), with the rules of :mod:`wschan_cli.programs`.

Each message received is a line on CMD's stdin; each line of CMD's stdout is a message sent, in
order; CMD's stderr is wschan's. The session ends one of two ways:

* CMD exits: the rest of its output is sent, then the connection closes with ``close_code``
  (1000 by default; the reason says how CMD ended);
* the connection ends (the server closed, or it failed): CMD's stdin reaches EOF, wschan waits up
  to ``wait`` seconds for CMD to exit, then stops it (SIGTERM, SIGKILL after ``KILL_GRACE``).

The exit status is CMD's when it is not 0, else the connection's (0 for a clean close, 5 for an
abnormal one; 3 or 4 when it never connected). When it is not 0, one line on stderr says how
both ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from wschan_cli import programs
from wschan_cli.channel import Message
from wschan_cli.exitcodes import ExitStatus
from wschan_cli.render.diagnostics import Diagnostics, diagnostics_for
from wschan_cli.runner import run_main

from .link import Link, LinkConfig

#: Seconds between SIGTERM and SIGKILL when CMD is stopped.
KILL_GRACE = 2.0
#: Bytes of received messages waiting for CMD to read them before the connection is failed
#: (1011): the channel delivers messages without back-pressure, so the wait must be bounded.
STDIN_BACKLOG = 16 * 1024 * 1024


def run_program_bridge(
    cfg: LinkConfig, argv: tuple[str, ...], *, close_code: int, wait: float
) -> int:
    conn = cfg.connection
    diag = diagnostics_for(conn, sys.stderr)
    return run_main(
        _program_bridge(cfg, argv, diag, close_code, wait),
        debug=conn.debug,
        error=diag.error,
        mask=diag.secrets.text,
        fast_loop=True,  # uvloop when installed (runner.loop_factory)
    )


async def _program_bridge(
    cfg: LinkConfig, argv: tuple[str, ...], diag: Diagnostics, close_code: int, wait: float
) -> int:
    diag.t0 = asyncio.get_running_loop().time()
    name = argv[0]
    try:
        process = await programs.start(argv)
    except OSError as exc:
        diag.error(f"cannot start {name}: {exc.strerror or exc}")
        return ExitStatus.ERROR
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout
    dropped = 0  # messages received after CMD closed its stdin
    unsent = 0  # lines of CMD's output after the connection ended
    too_long = ""  # why wschan closed the connection with 1009, if it did

    def on_message(message: Message) -> None:
        nonlocal dropped
        if stdin.is_closing():
            dropped += 1
            return
        stdin.write(programs.message_line(message.data))
        if stdin.transport.get_write_buffer_size() > STDIN_BACKLOG:
            # Raised into the channel, which fails the connection with 1011 and this reason.
            raise RuntimeError(f"{name} is not reading its stdin")

    link = Link.reporting_to(diag, cfg, process=on_message)

    async def send_line(message: str | bytes) -> None:
        nonlocal unsent
        if not await link.send(message):
            unsent += 1  # keep reading, so that CMD is never stuck writing

    async def relay() -> None:
        nonlocal too_long
        if not await programs.relay_lines(stdout, send_line):
            too_long = f"{name} wrote a line over {programs.MAX_LINE} bytes"
            await link.close(1009, too_long[:123])

    supervisor = asyncio.ensure_future(link.run())
    relaying = asyncio.ensure_future(relay())
    exited = asyncio.ensure_future(process.wait())
    program_ended_first = False
    try:
        # CMD closing its stdout is not the end: the end is CMD exiting or the connection ending.
        await asyncio.wait({supervisor, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not supervisor.done():
            program_ended_first = True
            await asyncio.wait({supervisor, relaying}, return_when=asyncio.FIRST_COMPLETED)
            assert process.returncode is not None
            reason = f"{name}: {programs.status_text(process.returncode)}"
            await link.close(close_code, reason[:123])  # the supervisor returns its status
        else:
            stdin.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await process.wait()
            if process.returncode is None:
                diag.note(f"{name} still running {wait:g}s after its input ended: stopping it")
                await programs.stop(process, KILL_GRACE)
        status_of_link = await supervisor
    finally:
        relaying.cancel()
        exited.cancel()
        await asyncio.gather(relaying, exited, return_exceptions=True)
        await programs.stop(process, KILL_GRACE)  # after Ctrl-C or an error: never leave it
        if not supervisor.done():
            await link.close(1001, "wschan is exiting")
    assert process.returncode is not None
    program_status = programs.shell_status(process.returncode)
    # Never connected: CMD's end says nothing, the connect failure says it all.
    status = status_of_link if link.connections == 0 else program_status or status_of_link
    if too_long and status == 0:
        status = ExitStatus.ERROR
    if dropped:
        diag.note(f"{dropped} message(s) not given to {name}: it had closed its stdin")
    if unsent:
        diag.note(f"{unsent} line(s) of {name}'s output not sent: the connection had ended")
    if status != 0:
        if too_long:
            how = f"{too_long}: closed the connection with 1009"
        elif link.final_message:
            how = link.final_message
        elif program_ended_first:
            how = f"wschan closed the connection with {close_code}"
        else:
            how = "the connection ended"
        diag.error(f"{how}; {name}: {programs.status_text(process.returncode)}")
    return status
