"""Off a terminal: a line bridge, as websocat's default mode.

Each stdin line is one text message (a trailing CR removed), each message received is one line
on stdout (binary as hex; with ``--json`` a JSON Lines record as ``send --json`` writes, and a
record for each close), in arrival order. No prompt, no colour, no toolbar. At end of input
every line has been sent; the session then closes gracefully (1000) once ``--wait`` seconds pass
without any message in or out, so replies still on their way are printed. Stdin is read while
the connection opens: nothing is lost. A line that is not UTF-8 ends the session as in
``wschan send`` (exit 2, nothing after it sent); a line longer than ``reader.STREAM_AFTER`` is
streamed (``outgoing``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time

from wschan_cli.channel import CloseInfo, Message
from wschan_cli.exitcodes import ExitStatus
from wschan_cli.render.color import is_tty
from wschan_cli.render.diagnostics import Diagnostics, diagnostics_for
from wschan_cli.render.replies import ReplyWriter
from wschan_cli.render.sink import ReplySink
from wschan_cli.runner import CtrlC, run_main

from .link import Link, LinkConfig
from .outgoing import Outbox
from .payload import InputError
from .reader import stdin_reader


def run_bridge(
    cfg: LinkConfig, *, wait: float, fmt: str = "plain", timestamps: bool, pretty: bool
) -> int:
    conn = cfg.connection
    diag = diagnostics_for(conn, sys.stderr)
    writer = ReplyWriter(
        sys.stdout.buffer,
        fmt=fmt,
        timestamps=timestamps,
        pretty=pretty,
        escape=is_tty(sys.stdout),
        color=False,
    )
    sink = ReplySink(writer)
    # The first Ctrl-C cancels the bridge, which then closes with 1001 (a second quits at once).
    ctrl_c = CtrlC(error=diag.error, last_words=sink.flush)
    return run_main(
        _bridge(cfg, diag, sink, wait, ctrl_c),
        debug=conn.debug,
        error=diag.error,
        mask=diag.secrets.text,
        ctrl_c=ctrl_c,
        fast_loop=True,  # uvloop when installed (runner.loop_factory)
    )


async def _bridge(
    cfg: LinkConfig, diag: Diagnostics, sink: ReplySink, wait: float, ctrl_c: CtrlC
) -> int:
    loop = asyncio.get_running_loop()
    diag.t0 = loop.time()
    last_activity = loop.time()
    input_error: str | None = None

    def on_message(message: Message) -> None:
        nonlocal last_activity
        last_activity = loop.time()
        sink.message(message.type, message.data, time.time())

    def on_close(info: CloseInfo) -> None:
        # --json: one close record per connection (--reconnect may make several).
        sink.close(info, time.time())

    link = Link.reporting_to(diag, cfg, process=on_message, on_close=on_close)
    supervisor = asyncio.ensure_future(link.run())

    async def pump() -> None:
        nonlocal last_activity, input_error
        stdin = stdin_reader()
        stdin.start()
        outbox = Outbox([("stdin", None)], False, "utf-8", stdin, ended=asyncio.Event())
        try:
            async for message in outbox:
                if not await link.send(message):
                    return
                last_activity = loop.time()
        except InputError as exc:
            input_error = str(exc)

    pumping = asyncio.ensure_future(pump())
    try:
        await asyncio.wait({pumping, supervisor}, return_when=asyncio.FIRST_COMPLETED)
        if not supervisor.done():
            # End of input: every line is sent. Close once the connection has been silent for
            # --wait seconds (replies to the last lines are still on their way); not before
            # the first connect attempt has told how it went, so the status says it (3, 4).
            await link.wait_attempted()
            while not supervisor.done() and not sink.gone and input_error is None:
                remaining = last_activity + wait - loop.time()
                if remaining <= 0:
                    break
                await asyncio.wait({supervisor}, timeout=remaining)
            if not supervisor.done():
                code, reason = (1001, "stdout closed") if sink.gone else (1000, "")
                await link.close(code, reason)
    except asyncio.CancelledError:
        if not ctrl_c.pressed:
            raise
        task = asyncio.current_task()
        assert task is not None
        task.uncancel()
        await link.close(1001, "interrupted")  # a second Ctrl-C quits at once (runner.CtrlC)
    pumping.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pumping
    status = await supervisor
    sink.flush()
    if ctrl_c.pressed:
        diag.error("interrupted")
        return ExitStatus.INTERRUPTED
    if status != 0 and link.final_message:
        diag.error(link.final_message)
    if sink.gone:
        diag.error(sink.farewell())
        return ExitStatus.ERROR
    if input_error is not None:
        diag.error(f"{input_error}; nothing after it was sent")
        return ExitStatus.USAGE
    return status
