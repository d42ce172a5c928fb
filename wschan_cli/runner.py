"""Running a command's event loop under the command line's error rule (cli.md): Ctrl-C is exit
130, anything unexpected is one line on stderr, with the traceback only under ``--debug`` (and
its secrets masked, as everywhere else).

``serve`` (``run_loop``), ``send`` and ``connect`` (``run_main``) run on uvloop's loop when the
optional extra is installed (``pip install 'wschan[fast]'``), on asyncio's otherwise, or when the
environment says ``WSCHAN_LOOP=asyncio`` (to compare the two, or to rule uvloop out).
``trace-shutdown`` keeps its own loops (the explorer's deterministic one, and asyncio's for the
real runs).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from wschan_cli.exitcodes import ExitStatus

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


def run_main(
    main: Coroutine[Any, Any, int],
    *,
    debug: bool,
    error: Callable[[str], None],
    mask: Callable[[str], str],
) -> int:
    """Run ``main`` and return its exit status; ``error`` prints one line after "wschan: ",
    ``mask`` hides the secrets of a --debug traceback."""
    import asyncio

    async def quiet() -> int:
        if not debug:
            # asyncio reports stray errors of tasks and callbacks with a traceback; wschan's rule
            # is one line on stderr, tracebacks only with --debug (which keeps asyncio's handler).
            asyncio.get_running_loop().set_exception_handler(lambda _loop, _context: None)
        return await main

    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(quiet())
    except KeyboardInterrupt:  # before the loop's own handler was in place
        error("interrupted")
        return ExitStatus.INTERRUPTED
    except Exception as exc:
        if debug:
            print_traceback(mask)
        error(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)")
        return ExitStatus.ERROR


def print_traceback(mask: Callable[[str], str]) -> None:
    """--debug: the traceback of the exception being handled, on stderr, secrets masked."""
    import traceback

    sys.stderr.write(mask(traceback.format_exc()))
    sys.stderr.flush()
