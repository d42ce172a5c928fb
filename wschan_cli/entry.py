"""The ``wschan`` executable's entry point.

``wschan --version`` alone is answered here, before click (~20 ms to import) is loaded, so that
it costs little more than the interpreter's start-up; everything else goes to the click group,
between ``startup.begin`` and ``startup.end`` (the collector and the imports of start-up and
exit: startup.py).
"""

from __future__ import annotations

import sys


def main() -> None:
    _open_closed_standard_streams()
    if sys.argv[1:] == ["--version"]:
        from wschan_cli.version import version_text

        print(version_text())
        return
    from wschan_cli import startup

    startup.begin()
    try:
        from wschan_cli.cli import main as cli_main

        cli_main()
    finally:
        startup.end()


def _open_closed_standard_streams() -> None:
    """Open /dev/null on a standard descriptor the parent left closed (``<&-``, ``>&-``).

    Otherwise the first socket takes its number: uvloop then aborts on closing it (libuv
    asserts fd > 2), the stdin reader would read the socket, and ``sys.stdin`` (or
    ``sys.stdout``) is None. Closed stdin reads as empty; closed stdout discards, as Python's
    own ``print`` does with no stdout.
    """
    import os

    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        errors = "backslashreplace" if fd == 2 else "strict"
        mode = "r" if fd == 0 else "w"
        setattr(sys, name, open(fd, mode, errors=errors, closefd=False))  # noqa: SIM115 (for the process)
