"""Running a command's event loop under the command line's error rule (cli.md): Ctrl-C is exit
130, anything unexpected is one line on stderr, with the traceback only under ``--debug``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from wschan_cli.exitcodes import EXIT_ERROR, EXIT_INTERRUPTED


def run_main(main: Coroutine[Any, Any, int], *, debug: bool, error: Callable[[str], None]) -> int:
    """Run ``main`` and return its exit status; ``error`` prints one line after "wschan: "."""
    import asyncio

    try:
        return asyncio.run(main)
    except KeyboardInterrupt:  # before the loop's own handler was in place
        error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debug:
            import traceback

            traceback.print_exc()
        error(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)")
        return EXIT_ERROR
