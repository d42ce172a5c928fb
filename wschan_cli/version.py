"""What ``wschan --version`` prints, cheap enough to answer before click is imported."""

from __future__ import annotations

import os
import sys

from wschan_cli import __version__


def installed_version(distribution: str) -> str:
    """The version of an installed distribution, read from the name of its
    ``NAME-VERSION.dist-info`` directory on ``sys.path`` (PEP 427, PEP 376).

    ``importlib.metadata`` reads the same directory but costs ~25 ms to import (email, zipfile,
    csv): most of ``wschan --version``'s time.
    """
    prefix = f"{distribution}-"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith(prefix) and name.endswith(".dist-info"):
                return name[len(prefix) : -len(".dist-info")]
    from importlib.metadata import PackageNotFoundError, version

    try:  # another layout (an egg, a source tree): the general reader
        return version(distribution)
    except PackageNotFoundError:  # pragma: no cover - websockets is a hard dependency
        return "not installed"


def version_text() -> str:
    import platform  # here: only --version needs it

    return (
        f"wschan {__version__}\n"
        f"websockets {installed_version('websockets')}\n"
        f"Python {platform.python_version()} ({sys.implementation.name})"
    )
