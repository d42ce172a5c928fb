"""The ``wschan`` executable's entry point.

``wschan --version`` alone is answered here, before click (~20 ms to import) is loaded, so that
it costs little more than the interpreter's start-up; everything else goes to the click group,
between ``startup.begin`` and ``startup.end`` (the collector and the imports of start-up and
exit: startup.py).
"""

from __future__ import annotations

import sys


def main() -> None:
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
