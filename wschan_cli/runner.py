"""Running a command's event loop under the command line's rules (cli.md), written once for
every command (send, connect, serve, trace-shutdown):

* errors: anything unexpected is one line on stderr, with the traceback only under ``--debug``
  (its secrets masked, as everywhere else); the exit status of an exception is
  :func:`wschan_cli.exitcodes.status_for`'s;
* Ctrl-C, in two stages (:class:`CtrlC`): the first asks the run to end cleanly (its ``stop``:
  cancel what waits, close with a Close frame); a second one quits at once with 130, after
  ``last_words`` (e.g. flushing the replies already received) and one line on stderr.

``run_loop`` runs on uvloop's loop when the optional extra is installed (``pip install
'wschan[fast]'``), on asyncio's otherwise, or when the environment says ``WSCHAN_LOOP=asyncio``
(to compare the two, or to rule uvloop out); ``serve``, ``send`` and ``connect`` use it
(``fast_loop``). ``trace-shutdown`` keeps its own loops (the explorer's deterministic one, and
asyncio's for the real runs).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from wschan_cli import startup
from wschan_cli.exitcodes import ExitStatus, status_for

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")


#: The environment variable that picks the event loop: "asyncio" is asyncio's own; anything
#: else (or unset) is uvloop's when it is installed.
LOOP_VARIABLE = "WSCHAN_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop if it is installed and not ruled out by WSCHAN_LOOP=asyncio, else None
    (asyncio's default loop)."""
    if os.environ.get(LOOP_VARIABLE) == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    new_event_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return new_event_loop


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the fastest loop installed."""
    import asyncio

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


class CtrlC:
    """The Ctrl-C rule (see the module docstring). Without a ``stop``, the first Ctrl-C cancels
    the command's main coroutine, and ``run_main`` says "interrupted" (130) once it ended.

    The prompt of ``connect`` reads Ctrl-C as a key (``press``) and installs the rule itself
    around the commands that wait (``run_main(..., prompt=True)``)."""

    def __init__(
        self,
        stop: Callable[[], None] | None = None,
        *,
        error: Callable[[str], None],
        last_words: Callable[[], None] = lambda: None,
    ) -> None:
        self.stop = stop
        self.error = error
        self.last_words = last_words
        self.pressed = False  # a first Ctrl-C came: the next one quits
        self._loop: asyncio.AbstractEventLoop | None = None

    def press(self) -> None:
        """A Ctrl-C (the SIGINT handler, or the prompt's key binding)."""
        if self.pressed:
            try:
                self.last_words()
            finally:
                self.error("interrupted")
                # At once: what is still in flight is left to the kernel (the Close included).
                os._exit(ExitStatus.INTERRUPTED)
        self.pressed = True
        if self.stop is not None:
            self.stop()

    def install(self) -> None:
        """Handle SIGINT on the running loop (where the platform lets us: elsewhere Ctrl-C
        ends asyncio.run, which ``run_main`` turns into 130)."""
        import asyncio

        loop = asyncio.get_running_loop()
        if self.stop is None:
            main = _current_task()

            def cancel_main() -> None:
                main.cancel()

            self.stop = cancel_main
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, self.press)
            self._loop = loop

    def remove(self) -> None:
        if self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGINT)
            self._loop = None

    @contextlib.contextmanager
    def around(self) -> Iterator[None]:
        """The same rule around code that runs no event loop (``trace-shutdown --explore``):
        the handler only presses, so ``stop`` must be something the code checks between its
        steps. A KeyboardInterrupt raised in arbitrary code could land in a finalizer, where
        Python prints and drops it."""
        previous = signal.signal(signal.SIGINT, lambda signum, frame: self.press())
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def run_main(
    main: Coroutine[Any, Any, int],
    *,
    debug: bool | None,
    error: Callable[[str], None],
    mask: Callable[[str], str],
    ctrl_c: CtrlC | None = None,
    prompt: bool = False,
    fast_loop: bool = False,
) -> int:
    """Run ``main`` and return its exit status; ``error`` prints one line after "wschan: ",
    ``mask`` hides the secrets of a --debug traceback (``debug`` None: the command has no
    --debug). ``ctrl_c``: the command's own first stage (default: cancel ``main``); with
    ``prompt``, the session handles Ctrl-C itself. ``fast_loop``: uvloop when installed."""
    import asyncio
    import logging

    async def guarded() -> int:
        if not debug:
            # asyncio reports stray errors of tasks and callbacks with a traceback, and
            # websockets logs one when its parser fails unexpectedly (Python's last-resort
            # handler prints it); wschan's rule is one line on stderr, tracebacks only with
            # --debug (which keeps both).
            asyncio.get_running_loop().set_exception_handler(lambda _loop, _context: None)
            logging.getLogger("websockets").addHandler(logging.NullHandler())
        if prompt:
            return await main
        rule = ctrl_c or CtrlC(error=error)
        default_stop = rule.stop is None
        rule.install()
        try:
            return await main
        except asyncio.CancelledError:
            if not (default_stop and rule.pressed):
                raise
            _current_task().uncancel()
            return interrupted(KeyboardInterrupt())
        finally:
            rule.remove()

    def interrupted(exc: BaseException) -> int:
        error("interrupted")
        return status_for(exc)

    startup.settled()  # the command's imports are done: the collector runs as usual
    try:
        if fast_loop:
            return run_loop(guarded())
        return asyncio.run(guarded())
    except KeyboardInterrupt as exc:  # before the loop's own handler was in place
        return interrupted(exc)
    except Exception as exc:
        if debug:
            print_traceback(mask)
        hint = " (run with --debug for details)" if debug is not None else ""
        error(f"internal error: {type(exc).__name__}: {exc}{hint}")
        return status_for(exc)


def _current_task() -> asyncio.Task[Any]:
    import asyncio

    task = asyncio.current_task()
    assert task is not None
    return task


def print_traceback(mask: Callable[[str], str]) -> None:
    """--debug: the traceback of the exception being handled, on stderr, secrets masked."""
    import traceback

    sys.stderr.write(mask(traceback.format_exc()))
    sys.stderr.flush()
