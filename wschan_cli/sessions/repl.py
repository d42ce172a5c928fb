"""On a terminal: the prompt_toolkit session.

Incoming messages, notes and -v transitions are written to stdout/stderr while
``patch_stdout`` is in force, so prompt_toolkit prints them above the prompt and redraws the
line being typed as it was. The toolbar reads ``ChannelView`` (events only) and the link's
reconnect status. Messages typed are sent in order by one sender task, so the prompt stays
usable while a send waits for a reconnect.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import os
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from wschan_cli.channel import ChannelError, CloseInfo, Message, What
from wschan_cli.exitcodes import ExitStatus
from wschan_cli.render.color import Style, color_enabled
from wschan_cli.render.diagnostics import diagnostics_for
from wschan_cli.render.escape import escape_control
from wschan_cli.render.replies import ReplyWriter, iso_time
from wschan_cli.runner import CtrlC, run_main

from . import slash
from .link import Link, LinkConfig
from .view import ChannelView

#: The transitions -v (and /deinit) print above the prompt.
TRANSITIONS = frozenset(
    {
        What.TAKE,
        What.WAIT,
        What.RELEASE,
        What.ESTABLISHED,
        What.STATE,
        What.CONNECT,
        What.SHUTDOWN,
        What.READER_END,
        What.CLOSED,
        What.DISPOSE,
    }
)


def history_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "wschan" / "history"


def run_repl(cfg: LinkConfig, *, fmt: str = "plain", timestamps: bool, pretty: bool) -> int:
    repl = Repl(cfg, fmt=fmt, timestamps=timestamps, pretty=pretty)
    return run_main(
        repl.main(),
        debug=cfg.connection.debug,
        error=repl.error,
        mask=repl.secrets.text,
        prompt=True,  # Ctrl-C is a key at the prompt; the rule is installed around commands
        fast_loop=True,  # uvloop when installed (runner.loop_factory)
    )


class _Capture(io.BytesIO):
    """Where ReplyWriter formats one message, so the session can add its marks."""

    def take(self) -> str:
        text = self.getvalue().decode("utf-8", "replace")
        self.seek(0)
        self.truncate()
        return text.rstrip("\n")


class Repl:
    def __init__(self, cfg: LinkConfig, *, fmt: str, timestamps: bool, pretty: bool) -> None:
        self.cfg = cfg
        self.secrets = cfg.connection.secrets
        self.timestamps = timestamps
        self.color = color_enabled(cfg.connection.color, sys.stdout)
        self.style = Style(self.color)
        self.capture = _Capture()
        self.writer = ReplyWriter(
            self.capture, fmt=fmt, pretty=pretty, escape=True, color=pretty and self.color
        )
        self.view = ChannelView(on_change=self._invalidate)
        self.show_transitions = cfg.connection.verbose
        self.before: Any = None  # the last event seen, for the step lines of the next one
        self.lanes: Any = None  # draws the transitions' lines, once there is one (_step)
        # Ctrl-C (runner.CtrlC): at the prompt a key (the second one ends the prompt, which
        # restores the terminal); while a command waits, a SIGINT that cancels the command.
        self.ctrl_c = CtrlC(lambda: None, error=self.error)
        self.deinited = False
        self.outbox: asyncio.Queue[str | bytes] = asyncio.Queue()
        self.app: Any = None

    # ------------------------------------------------------------------ output

    def _invalidate(self) -> None:
        app = self.app
        if app is not None and app.is_running:
            app.invalidate()

    def say(self, text: str) -> None:
        """A line above the prompt (stdout is patched while the prompt runs)."""
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def note(self, text: str) -> None:
        """A diagnostic line (stderr; above the prompt too, as stdout and stderr are patched)."""
        sys.stderr.write(self.style.dim(f"wschan: {self._shown(text)}") + "\n")
        sys.stderr.flush()

    def error(self, text: str) -> None:
        sys.stderr.write(f"{self.style.red('wschan:')} {self._shown(text)}\n")
        sys.stderr.flush()

    def _shown(self, text: str) -> str:
        return escape_control(self.secrets.text(text), one_line=True)

    def _marked(self, mark: str, body: str) -> str:
        stamp = f"{iso_time(time.time())} " if self.timestamps else ""
        pad = " " * (len(stamp) + 2)
        return stamp + mark + " " + body.replace("\n", "\n" + pad)

    def on_message(self, message: Message) -> None:
        self.writer.message(message.type, message.data, time.time())
        if self.writer.fmt == "json":
            self.say(self.capture.take())  # the record as it is, as send --json writes it
        else:
            self.say(self._marked(self.style.green("<"), self.capture.take()))

    def on_close(self, info: CloseInfo) -> None:
        """--json: a record for each close (the other formats print data only)."""
        self.writer.close(
            code=info.code, reason=info.reason, by=info.by, clean=info.clean, when=time.time()
        )
        if text := self.capture.take():
            self.say(text)

    def shown_sent(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            body = f"{data.hex()} (binary, {len(data)} bytes)"
        else:
            body = escape_control(data)
        self.say(self._marked(self.style.cyan(">"), body))

    def toolbar(self) -> str:
        extra = self.link.status_line
        if self.deinited:
            extra = "deinitialized: /quit to leave"
        if self.ctrl_c.pressed:
            extra = "Ctrl-C again to quit"
        return " " + self.view.toolbar(extra)

    # ------------------------------------------------------------------ the session

    async def main(self) -> int:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings
        from prompt_toolkit.patch_stdout import patch_stdout

        loop = asyncio.get_running_loop()

        history: Any
        try:
            path = history_path()
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # What is typed may include tokens: the history is readable by its owner only.
            path.touch(mode=0o600, exist_ok=True)
            history = FileHistory(str(path))
        except OSError:
            history = InMemoryHistory()

        keys = KeyBindings()

        @keys.add("c-c")
        def _(event: Any) -> None:
            buffer = event.app.current_buffer
            if self.ctrl_c.pressed:
                event.app.exit(exception=KeyboardInterrupt())
                return
            buffer.reset()
            self.ctrl_c.pressed = True
            event.app.invalidate()

        session: Any = PromptSession(
            history=history,
            key_bindings=keys,
            bottom_toolbar=self.toolbar,
            erase_when_done=True,
        )
        self.app = session.app

        def disarm(_buffer: Any) -> None:
            self.ctrl_c.pressed = False

        session.default_buffer.on_text_insert += disarm  # typing disarms; a reset does not

        with patch_stdout(raw=True):
            conn = self.cfg.connection
            self.diag = diagnostics_for(conn, sys.stderr, verbose=True, t0=loop.time())
            observers: list[Any] = [self.view, self._transition]
            self.link = Link(
                self.cfg,
                process=self.on_message,
                notify=self.note,
                observers=observers,
                on_change=self._invalidate,
                on_rejected=self._rejected,
                on_close=self.on_close,
            )
            self.supervisor = asyncio.ensure_future(self.link.run())
            sender = asyncio.ensure_future(self._sender())
            try:
                status = await self._loop(session)
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
            await asyncio.sleep(0)  # let the patched stdout flush what is pending
        return status

    def _rejected(self, status: int, headers: Any) -> None:
        if self.cfg.connection.include or self.cfg.connection.verbose:
            self.diag.response(status, headers)

    def _transition(self, event: Any) -> None:
        if event.what is What.UPGRADED and self.cfg.connection.include:
            self.diag(event)
        elif self.show_transitions and event.what in TRANSITIONS:
            self._step(event)
        self.before = event

    def _step(self, event: Any) -> None:
        """A transition as a line of trace-shutdown's swimlanes (no party lanes: one event
        at a time). Rich draws it to text here, as prompt_toolkit prints text above the prompt;
        the words are Text, never markup, and server text in them is escaped (describe)."""
        from rich.console import Console

        from wschan_cli.render.swimlanes import FLAGS_KEY, GAP, row

        if self.lanes is None:
            color = self.diag.style.enabled
            self.lanes = Console(
                force_terminal=color,
                color_system="standard" if color else None,
                no_color=not color,  # the choice was made: --color and its environment
                width=1000,
            )
            self.diag.write(self.diag.style.dim(f"  # {'ms':>9}{GAP}{GAP.join(FLAGS_KEY)}"))
        with self.lanes.capture() as line:
            self.lanes.print(
                row(event, self.before, self.diag.t0, self.secrets.text), soft_wrap=True
            )
        self.diag.write(line.get().rstrip("\n"))

    async def _sender(self) -> None:
        while True:
            data = await self.outbox.get()
            try:
                if await self.link.send(data):
                    self.shown_sent(data)
                else:
                    self.error("not sent: the connection is over")
            except ChannelError as exc:
                self.error(f"not sent: {exc}")
            finally:
                self.outbox.task_done()

    async def _loop(self, session: Any) -> int:
        while True:
            if self.supervisor.done() and not self.deinited:
                return self._finish()
            prompt = asyncio.ensure_future(session.prompt_async("> "))
            waiting = {prompt} if self.deinited else {prompt, self.supervisor}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not prompt.done():
                prompt.cancel()
                with contextlib.suppress(asyncio.CancelledError, EOFError, KeyboardInterrupt):
                    await prompt
                continue
            try:
                line = prompt.result()
            except EOFError:
                status = await self._interruptible(self._quit())
                if status is None:
                    continue  # Ctrl-C while closing: back to the prompt
                return status
            except KeyboardInterrupt:
                await self.link.close(1001, "interrupted", abrupt=False)
                self.error("interrupted")
                return ExitStatus.INTERRUPTED
            result = await self._interruptible(self._line(line))
            if result is not None:
                return result

    async def _interruptible(self, work: Coroutine[Any, Any, int | None]) -> int | None:
        """Run a command; Ctrl-C (a SIGINT: the prompt is not reading keys now) cancels it and
        arms the quit, as at the prompt; a second Ctrl-C before it ends exits at once (130)."""
        task = asyncio.ensure_future(work)
        self.ctrl_c.stop = task.cancel
        self.ctrl_c.install()
        try:
            return await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
            self.error("interrupted (Ctrl-C again to quit)")
            return None
        finally:
            self.ctrl_c.remove()

    def _finish(self) -> int:
        """The link ended by itself (server close, or reconnect gave up): say how."""
        status = self.supervisor.result()
        message = self.link.final_message
        if message:
            (self.note if status == ExitStatus.OK else self.error)(message)
        return status

    async def _quit(self, code: int = 1000, reason: str = "") -> int:
        if self.deinited:
            return self._deinit_status
        with contextlib.suppress(asyncio.TimeoutError):
            # What was typed before Ctrl-D goes out first (unless the link is stuck).
            await asyncio.wait_for(self.outbox.join(), timeout=self.cfg.connection.open_timeout)
        was_up = self.view.established == 1
        status = await self.link.close(code, reason)
        if self.link.final_message and status != ExitStatus.OK:
            self.error(self.link.final_message)
        elif was_up:
            self.note(f"closed the connection: {code}")
        return status

    # ------------------------------------------------------------------ one line

    async def _line(self, line: str) -> int | None:
        self.ctrl_c.pressed = False
        if not line:
            return None  # Enter on an empty line sends nothing
        parsed = slash.parse(line)
        name, args = parsed.command, parsed.text
        if not name:
            self._queue(parsed.text)
            return None
        if name not in slash.NAMES:
            self.error(f"unknown command /{name}: /help lists them (// sends a leading slash)")
            return None
        handler = getattr(self, f"_cmd_{name}")
        result: int | None = await handler(args)
        return result

    def _queue(self, data: str | bytes) -> None:
        if self.deinited:
            self.error("the channel is deinitialized: nothing can be sent (/quit to leave)")
            return
        self.outbox.put_nowait(data)

    async def _cmd_help(self, _args: str) -> None:
        width = max(len(usage) for usage, _ in slash.HELP)
        for usage, text in slash.HELP:
            self.say(f"  {usage.ljust(width)}  {text}")

    async def _cmd_quit(self, _args: str) -> int:
        return await self._quit()

    _cmd_exit = _cmd_quit

    async def _cmd_close(self, args: str) -> int | None:
        try:
            code, reason = slash.parse_close(args)
        except ValueError as exc:
            self.error(str(exc))
            return None
        return await self._quit(code, reason)

    async def _cmd_binary(self, args: str) -> None:
        try:
            self._queue(bytes.fromhex(args))
        except ValueError as exc:
            self.error(f"not valid hex: {exc}")

    async def _cmd_base64(self, args: str) -> None:
        try:
            self._queue(base64.b64decode("".join(args.split()), validate=True))
        except (binascii.Error, ValueError) as exc:
            self.error(f"not valid base64: {exc}")

    async def _cmd_file(self, args: str) -> None:
        if not args:
            self.error("/file needs a PATH")
            return
        try:
            raw = Path(os.path.expanduser(args)).read_bytes()
        except OSError as exc:
            self.error(f"cannot read {args!r}: {exc.strerror or exc}")
            return
        try:
            self._queue(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self._queue(raw)

    async def _cmd_pretty(self, _args: str) -> None:
        self.writer.pretty = not self.writer.pretty
        self.writer.color = self.writer.pretty and self.color
        self.note(f"pretty-printing {'on' if self.writer.pretty else 'off'}")

    async def _cmd_ping(self, args: str) -> None:
        ch = self.link.ch if not self.link.ended else None
        if ch is None or self.view.established == 0 or self.deinited:
            self.error("not connected: no ping sent")
            return
        payload = args.encode() if args else None
        if payload is not None and len(payload) > 125:
            self.error("a Ping payload is at most 125 bytes")
            return
        try:
            rtt = await ch.ping(payload)
        except (ChannelError, ValueError) as exc:
            self.error(f"ping failed: {exc}")
            return
        self.say(f"pong in {rtt * 1000:.3f} ms")

    async def _cmd_deinit(self, args: str) -> None:
        if self.deinited:
            self.error("already deinitialized (/quit to leave)")
            return
        abrupt = args == "--abrupt"
        if args and not abrupt:
            self.error("usage: /deinit [--abrupt]")
            return
        self.show_transitions = True  # /deinit shows each transition, -v or not
        self.deinited = True
        self.note(f"deinit({'abrupt' if abrupt else '1000'}): every transition follows")
        self._deinit_status = await self.link.close(1000, abrupt=abrupt)
        with contextlib.suppress(Exception):
            await self.supervisor
        self.show_transitions = self.cfg.connection.verbose
        self.note(
            f"deinit done: established {self.view.established}, channel disposed; /quit to leave"
        )

    async def _cmd_terminate(self, _args: str) -> None:
        ch = self.link.ch
        if ch is None or self.deinited or not ch.end_reading():
            self.error("no live connection to terminate")
            return
        self.note(
            "local simulation: the read side ended; handle_terminate() runs as when the peer "
            "ends TCP"
        )

    async def _cmd_state(self, _args: str) -> None:
        for line in self.view.lines():
            self.say("  " + line)
        for key, value in self.link.describe().items():
            self.say(f"  {key.ljust(13)} {escape_control(str(value), one_line=True)}")
