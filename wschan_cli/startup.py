"""What the ``wschan`` executable does around a command so that a short one (a one-shot
``send``, ``--help``) costs little more than its own work (issue 13, start-up; the measurements
are in bench/RESULTS.md).

* **The garbage collector waits while the modules load** (:func:`begin`). Importing click,
  asyncio, websockets and wschan makes ~25,000 objects that live as long as the process and
  almost no garbage, yet every 700 allocations start a collection: ~50 of them in a one-shot.
  :func:`settled` (the command's event loop is about to run, ``runner.run_main``) freezes what
  start-up made, so that no collection walks those objects again, and restores the usual
  thresholds. A command that never calls it still collects, only less often.
* **No collection pass at exit** (:func:`end`): the interpreter's shutdown otherwise walks every
  object in full collections before freeing them (~16 ms of a one-shot's CPU), to find cycles
  nobody will see. Exit is still Python's own: atexit handlers, threads, the flush of stdout and
  stderr, the exit status; objects are still freed, files closed, when their count drops.
* **importlib.metadata is loaded on first use** (:func:`defer_import`): websockets imports it in
  ``websockets.version`` and uses it only in a development checkout; loading it brings email,
  zipfile, csv, shutil, bz2, lzma and tempfile (~9 ms). Any use of it loads it, as before.

Only the executable calls :func:`begin` and :func:`end` (``entry.main``): a program that imports
wschan_cli, the test suite included, keeps its collector as it was.
"""

from __future__ import annotations

import gc
import sys
import threading
from typing import Any

#: Allocations between two collections while start-up runs (the default is 700): more than
#: a one-shot makes, so that none runs before the event loop starts.
START_UP_THRESHOLD = 100_000

#: The thresholds before ``begin`` changed them (None: ``begin`` was not called).
_usual: tuple[int, int, int] | None = None

#: Modules the dependencies import at start-up but a wschan command rarely uses.
DEFERRED = ("importlib.metadata",)


def begin() -> None:
    """The executable starts: fewer collections while modules load, and the modules of
    ``DEFERRED`` loaded on first use."""
    global _usual
    if _usual is None:
        _usual = gc.get_threshold()
        gc.set_threshold(START_UP_THRESHOLD, *_usual[1:])
    for name in DEFERRED:
        defer_import(name)


def settled() -> None:
    """Start-up is over (the event loop is about to run): what it made is frozen (no collection
    walks it again) and the collector runs as usual. Does nothing unless ``begin`` ran."""
    global _usual
    if _usual is not None:
        gc.freeze()
        gc.set_threshold(*_usual)
        _usual = None


def end() -> None:
    """The executable exits: no full collection over every object on the way out."""
    gc.freeze()


def defer_import(name: str) -> None:
    """Put a stand-in for module ``name`` in ``sys.modules`` that becomes the real module
    (its code run in the stand-in) when one of its attributes is first read. ``import name``
    then costs nothing until the module is used. Does nothing if ``name`` is already loaded
    or cannot be found.

    ``importlib.util.LazyLoader`` does not do here: its module loads on any attribute read,
    and the import statement itself reads ``__spec__``.
    """
    if name in sys.modules:
        return
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    loader = spec.loader
    module = importlib.util.module_from_spec(spec)
    lock = threading.RLock()  # another thread reading an attribute waits for the load
    loaded = False

    def load(attribute: str) -> Any:
        # Called for a name the stand-in lacks: run the module's code in it, once. A name read
        # while that code runs (in this thread) is missing, as in any module being imported.
        nonlocal loaded
        with lock:
            if not loaded:
                loaded = True
                try:
                    loader.exec_module(module)
                finally:
                    if module.__dict__.get("__getattr__") is load:
                        del module.__dict__["__getattr__"]
        try:
            return object.__getattribute__(module, attribute)
        except AttributeError:
            own = module.__dict__.get("__getattr__")  # the module's own (PEP 562), if any
            if own is None or own is load:
                raise
            return own(attribute)

    module.__dict__["__getattr__"] = load
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
