"""A ``wschan send`` run: connect, send every message in order (or carry out a script), wait
as the plan says, close, and decide the exit status from how it went.

Imported when the command runs (asyncio and the channel core come with it); the command itself
(:mod:`wschan_cli.commands.send`) only builds the :class:`~.send_plan.Plan`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from wschan_cli.channel import (
    Channel,
    ChannelClosed,
    ChannelError,
    CloseInfo,
    Event,
    HandshakeError,
    HandshakeRejected,
    Message,
    OpenTimeout,
    What,
    WriteTimeout,
)
from wschan_cli.exitcodes import ExitStatus, status_for
from wschan_cli.render.closecodes import close_code_name, describe_close
from wschan_cli.render.diagnostics import Diagnostics, diagnostics_for
from wschan_cli.render.replies import ReplyWriter
from wschan_cli.render.sink import ReplySink
from wschan_cli.runner import CtrlC, print_traceback, run_main

from .payload import InputError
from .reader import InputReader
from .send_plan import Goal, Plan, RecentReplies, match_text

#: Default rule: seconds without any reply after which wschan stops waiting for the replies
#: still missing (the count rule usually ends the wait long before).
DEFAULT_IDLE = 2.0

#: Seconds an abrupt close may take after --timeout expired (a write may hold the token, D8);
#: then wschan exits anyway and leaves the socket to the kernel.
ABORT_GRACE = 0.1


def run_send(plan: Plan) -> int:
    """Run the plan; returns the exit status."""
    from wschan_cli.render.color import color_enabled, is_tty
    from wschan_cli.render.output import buffered_stdout

    conn = plan.connection
    diag = diagnostics_for(conn, sys.stderr, json_lines=plan.fmt == "json")
    stdout_tty = is_tty(sys.stdout)
    writer = ReplyWriter(
        buffered_stdout(),
        fmt=plan.fmt,
        timestamps=plan.timestamps,
        pretty=plan.pretty,
        escape=stdout_tty,
        color=plan.pretty and color_enabled(conn.color, sys.stdout),
    )
    session = SendSession(plan, diag, writer)
    try:
        return run_main(
            session.run(),
            debug=conn.debug,
            error=diag.error,
            mask=diag.secrets.text,
            ctrl_c=CtrlC(session.stop, error=diag.error, last_words=session.sink.flush),
            fast_loop=True,  # uvloop when installed (runner.loop_factory)
        )
    finally:
        # Whatever ended the run, the replies still buffered go out: the executable's exit
        # collects no garbage (startup.end), so a writer left in a cycle would not flush itself.
        session.sink.finish()


@dataclass
class RunState:
    """What happened so far; the event loop is the only writer."""

    sent: int = 0
    replies: int = 0
    all_sent: bool = False
    goal_done: bool = False
    close: CloseInfo | None = None
    closed_by_deinit: bool = False  # the connection was released by our deinit
    deinit_sent_close: bool = False  # and deinit's own Close frame went out first
    last_activity: float = 0.0
    interrupted: bool = False
    timed_out: bool = False
    silent_too_long: bool = False
    input_error: str | None = None
    send_error: Exception | None = None
    goal: Goal | None = None  # what the current wait waits for
    wait_base: int = 0  # the reply that met the script's last wait
    window: RecentReplies | None = None  # --input jsonl: for its next "until"
    close_code: int = 1000  # what the Close frame we send carries (--close-code or "close")
    close_reason: str = ""
    script_closed: bool = False  # a script's "close" line ended the run


class SendSession:
    """One run of a plan; ``run()`` returns the exit status (``outcome``)."""

    def __init__(self, plan: Plan, diag: Diagnostics, writer: ReplyWriter) -> None:
        self.plan = plan
        self.diag = diag
        self.writer = writer
        self.state = RunState(close_code=plan.close_code, close_reason=plan.close_reason)
        self.changed = asyncio.Event()
        self.closed = asyncio.Event()
        self.stdin: InputReader | None = None
        self.sink = ReplySink(writer, on_broken=self.changed.set)  # the waits see sink.gone
        self.loop: asyncio.AbstractEventLoop
        self.task: asyncio.Task[Any]

    # ------------------------------------------------------------------ the run

    async def run(self) -> int:
        plan, diag, state = self.plan, self.diag, self.state
        loop = self.loop = asyncio.get_running_loop()
        conn = plan.connection
        diag.t0 = loop.time()
        if plan.script:
            state.window = RecentReplies()
        else:
            state.goal = plan.final_goal()  # replies received while sending count
        # loop.time() is time.monotonic(): the bound covers the start-up as well.
        deadline = plan.started + plan.timeout if plan.timeout is not None else None

        # Stdin is read from now on, while the connection opens.
        if plan.reads_stdin:
            from .reader import stdin_reader

            whole = any(kind == "stdin-whole" for kind, _ in plan.sources)
            self.stdin = stdin_reader(plan.delimiter, whole=whole)
            self.stdin.start()
            if sys.stdin.isatty() and sys.stderr.isatty():
                what = "a JSON Lines script" if plan.script else "messages"
                diag.note(f"reading {what} from the terminal, one per line; end with Ctrl-D")

        # The core's own open timeout, capped by --timeout, so a stalled handshake ends cleanly.
        open_timeout = conn.open_timeout
        if plan.timeout is not None and (open_timeout is None or plan.timeout < open_timeout):
            open_timeout = plan.timeout
        ch = Channel(
            plan.url,
            options=conn.channel_options(open_timeout=open_timeout),
            process=self.on_message,
            on_close=self.on_close,
        )
        if diag.watches:
            ch.subscribe(diag)
            from urllib.parse import urlsplit

            parts = urlsplit(plan.url)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            shown = [("Host", parts.netloc.rpartition("@")[2]), *conn.request_headers()]
            if parts.username is not None:
                shown.append(("Authorization", "Basic (user information of the URL)"))
            diag.request(target, shown)

        task = asyncio.current_task()
        assert task is not None
        self.task = task  # a Ctrl-C cancels it (stop; run_main installed the rule)

        exit_code: int | None = None
        message: str | None = None
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    await self.work(ch)
            except (TimeoutError, InputError, ChannelError):
                if conn.debug:  # the one line still follows; --debug shows where it came from
                    print_traceback(diag.secrets.text)
                raise  # (anything else: run_main prints its traceback, once)
        except asyncio.CancelledError:
            if not state.interrupted:
                raise
            task.uncancel()
        except TimeoutError:
            state.timed_out = True
        except InputError as exc:
            state.input_error = str(exc)
        except OpenTimeout as exc:
            if plan.timeout is not None and open_timeout == plan.timeout:
                state.timed_out = True
            else:
                exit_code, message = status_for(exc), f"{exc} (raise --open-timeout)"
        except (ChannelClosed, WriteTimeout) as exc:
            state.send_error = exc  # the close info says the rest
        except ChannelError as exc:  # ConnectError 3, HandshakeError 4, others 1 (exitcodes)
            if isinstance(exc, HandshakeRejected):
                diag.response(exc.status, exc.headers)
            handshake = "handshake failed: " if isinstance(exc, HandshakeError) else ""
            exit_code, message = status_for(exc), f"{handshake}{exc}"

        # Close: gracefully unless --abrupt or the run timed out.
        ch.subscribe(self.watch_deinit)
        # A script's "close" line asks for a Close frame, --abrupt or not.
        abrupt = (plan.abrupt and not state.script_closed) or state.timed_out
        close_code, close_reason = state.close_code, state.close_reason
        if self.sink.gone:
            close_code, close_reason = 1001, "stdout closed"
        closing = asyncio.ensure_future(ch.deinit(close_code, close_reason, abrupt=abrupt))
        limit = None
        if state.timed_out:
            limit = ABORT_GRACE  # an abrupt close is immediate, unless a write holds the token
        elif deadline is not None:
            limit = max(deadline - loop.time(), 0.0)
        try:
            done, _ = await asyncio.wait({closing}, timeout=limit)
        except asyncio.CancelledError:
            done = set()  # a Ctrl-C during the close
            task.uncancel()
        code: int
        if closing not in done:
            if state.interrupted:
                code, message = ExitStatus.INTERRUPTED, "interrupted while closing"
            elif state.timed_out:
                code, message = self.outcome()
            else:
                code, message = (
                    ExitStatus.TIMEOUT,
                    f"timed out after {plan.timeout:g}s (--timeout) while closing",
                )
            assert message is not None
            diag.error(message)
            self.sink.finish()
            os._exit(code)  # the close is stuck in the network: leave it to the kernel

        if state.close is not None and exit_code is None:
            self.sink.close(state.close, time.time())
        self.sink.finish()

        if exit_code is not None:
            assert message is not None
            diag.error(message)
            return exit_code
        code, message = self.outcome()
        if code != ExitStatus.OK and message:
            diag.error(message)
        elif code == ExitStatus.OK and (note := self.server_close_note()):
            diag.note(note)
        return code

    def stop(self) -> None:
        """The first Ctrl-C: end the run cleanly (a second one quits at once, runner.CtrlC)."""
        self.state.interrupted = True
        self.task.cancel()

    # ------------------------------------------------------------------ the channel's callbacks

    def on_message(self, message: Message) -> None:
        state = self.state
        if state.goal_done or not self.sink.message(message.type, message.data, time.time()):
            return
        state.replies += 1
        state.last_activity = self.loop.time()
        goal = state.goal
        text = None
        if state.window is not None or (goal is not None and goal.until is not None):
            text = match_text(message.data)
        if state.window is not None:
            assert text is not None
            state.window.add(state.replies, text)
        if goal is not None and goal.check(state.replies, text) and not goal.line:
            state.goal_done = True  # --expect/--until met: the run ends, nothing more shown
        self.changed.set()

    def on_close(self, info: CloseInfo) -> None:
        if self.state.close is None:
            self.state.close = info
        self.closed.set()
        self.changed.set()

    def watch_deinit(self, event: Event) -> None:
        # Who ended the connection, read from the events (on_close itself may be delivered
        # later than the release, when the party that released the token leaves its step).
        if event.party.kind != "deinit":
            return
        if event.what is What.FRAME_OUT and event.detail.get("opcode") == "close":
            self.state.deinit_sent_close = True
        elif event.what is What.CLOSED:
            self.state.closed_by_deinit = True

    # ------------------------------------------------------------------ sending and waiting

    async def work(self, ch: Channel) -> None:
        """Open, send every message in order, then wait as the plan says."""
        from .outgoing import Outbox, Streamed

        plan, state, loop = self.plan, self.state, self.loop
        await ch.open()
        state.last_activity = loop.time()
        if plan.script:
            await self.run_script(ch)
            return
        outbox = Outbox(plan.sources, plan.binary, plan.encoding, self.stdin, ended=self.closed)
        async for message in outbox:
            if self.sink.gone:
                return
            if isinstance(message, Streamed):
                await ch.send_stream(message.chunks, text=message.text)
            else:
                await ch.send(message)
            state.sent += 1
            state.last_activity = loop.time()
        state.all_sent = True
        await self.wait_for_replies()

    async def run_script(self, ch: Channel) -> None:
        """Carry out a --input jsonl script, step by step, each one after the one before it."""
        import contextlib

        from .script import Close, Ping, Send, Sleep, Wait, script_steps

        plan, state, loop, closed = self.plan, self.state, self.loop, self.closed
        assert self.stdin is not None
        async for step in script_steps(self.stdin, closed):
            if self.sink.gone:
                return
            if isinstance(step, Send):
                await ch.send(step.data)
                state.sent += 1
            elif isinstance(step, Ping):
                await ch.ping(step.payload)  # on once its Pong is back (bounded: --ping-timeout)
            elif isinstance(step, Sleep):
                with contextlib.suppress(TimeoutError):  # bounded by --timeout as a whole
                    async with asyncio.timeout(step.seconds):
                        await closed.wait()
            elif isinstance(step, Wait):
                goal = Goal(expect=step.expect, until=step.until, line=step.line)
                if not await self.wait_for(goal):
                    return
            else:
                assert isinstance(step, Close)
                state.close_code, state.close_reason = step.code, step.reason
                state.script_closed = state.all_sent = True
                return  # the rest of the input is not read
            state.last_activity = loop.time()
        if closed.is_set():
            return  # the connection ended before the end of the script
        state.all_sent = True
        final = plan.final_goal()
        if final is None:
            await self.wait_for_replies()
        elif await self.wait_for(final):
            state.goal_done = True

    async def wait_for(self, goal: Goal) -> bool:
        """A script's wait, over the replies after the one that met its previous wait (those
        that arrived before this line was reached included). True once met."""
        state = self.state
        assert state.window is not None
        goal.base = state.wait_base
        for number, text in state.window:
            if goal.check(number, text):
                break
        goal.check(state.replies, None)  # expect: older replies than the window hold count too
        state.goal = goal
        await self.wait_for_replies()
        if not goal.done:
            return False
        state.goal = None
        state.wait_base = goal.met_by
        return True

    async def wait_for_replies(self) -> None:
        """Until ``state.goal`` is met; without one, by the default rule or --wait (the
        command's WAIT_RULE)."""
        plan, state, loop, changed = self.plan, self.state, self.loop, self.changed
        goal = state.goal
        if plan.wait is not None:
            silence: float | None = plan.wait
        else:
            silence = None if goal is not None else DEFAULT_IDLE
        while True:
            changed.clear()
            if state.close is not None or self.sink.gone or (goal is not None and goal.done):
                return
            if goal is None and plan.wait is None and state.replies >= state.sent:
                return
            if silence is None:
                await changed.wait()
                continue
            remaining = state.last_activity + silence - loop.time()
            if remaining <= 0:
                if goal is not None:
                    state.silent_too_long = True
                return
            try:
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                continue

    # ------------------------------------------------------------------ the outcome

    def outcome(self) -> tuple[int, str | None]:
        """The exit status and its one-line message, once the connection is closed."""
        plan, state = self.plan, self.state
        got = f"{state.replies} {'reply' if state.replies == 1 else 'replies'}"
        if state.input_error is not None:
            info = state.close
            if info is not None and info.code == 1011 and info.by == "local":
                # The bad byte was in a streamed message whose first frames were out (D12).
                cut = "the message was cut off: the connection was failed with 1011"
                return ExitStatus.USAGE, f"{state.input_error}; {cut}"
            return ExitStatus.USAGE, f"{state.input_error}; nothing after it was sent"
        if state.interrupted:
            return ExitStatus.INTERRUPTED, f"interrupted after {state.sent} sent, {got} received"
        if state.timed_out:
            return ExitStatus.TIMEOUT, (
                f"timed out after {plan.timeout:g}s (--timeout): {state.sent} sent, {got} received"
            )
        goal = state.goal
        if state.silent_too_long:
            assert goal is not None
            return (
                ExitStatus.TIMEOUT,
                f"no reply for {plan.wait:g}s (--wait): {goal.progress(state.replies)}",
            )
        if self.sink.gone:
            return ExitStatus.ERROR, self.sink.farewell()
        if state.goal_done:
            return ExitStatus.OK, None
        info = state.close
        if info is None:
            return ExitStatus.ERROR, "the connection ended without a close status"
        # Our own Close went first and the server answered it (whatever code it echoed).
        answered = state.closed_by_deinit and state.deinit_sent_close and info.code != 1006
        abrupt_ok = plan.abrupt and state.closed_by_deinit
        if not (info.clean or answered or abrupt_ok):
            conn = plan.connection
            return ExitStatus.ABNORMAL, describe_close(
                info, close_timeout=conn.close_timeout, write_timeout=conn.write_timeout
            )
        label = f"{info.code} {close_code_name(info.code)}"
        if goal is not None and not goal.done and (state.all_sent or goal.line):
            progress = goal.progress(state.replies)
            return ExitStatus.ERROR, f"the server closed the connection ({label}) {progress}"
        if not state.all_sent:
            return ExitStatus.ERROR, (
                f"the server closed the connection ({label}) before all messages were sent: "
                f"{state.sent} sent"
            )
        return ExitStatus.OK, None

    def server_close_note(self) -> str | None:
        """A run that met its goal (exit 0) still says so when the server closed with a code
        of its own, e.g. a 4001 that crossed our Close (both sides closed at once, RFC 6455
        7.1.3)."""
        info = self.state.close
        if info is None or info.code in (1000, 1001, 1006, self.state.close_code):
            return None
        return describe_close(dataclasses.replace(info, by="peer"))
