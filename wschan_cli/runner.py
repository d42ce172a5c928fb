"""Running a command's event loop under the command line's error rule (cli.md): Ctrl-C is exit
130, anything unexpected is one line on stderr, with the traceback only under ``--debug`` (and
its secrets masked, as everywhere else)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine
from typing import Any

from wschan_cli.exitcodes import EXIT_ERROR, EXIT_INTERRUPTED


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

    try:
        return asyncio.run(main)
    except KeyboardInterrupt:  # before the loop's own handler was in place
        error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debug:
            print_traceback(mask)
        error(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)")
        return EXIT_ERROR


def print_traceback(mask: Callable[[str], str]) -> None:
    """--debug: the traceback of the exception being handled, on stderr, secrets masked."""
    import traceback

    sys.stderr.write(mask(traceback.format_exc()))
    sys.stderr.flush()
