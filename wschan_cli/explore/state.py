"""A schedule's state as a value, for pruning (explored before?) and for the sleep sets'
footprints: what makes two moments of a schedule the same, and where the state a step touches
lives. The channel describes itself (``Channel.snapshot``); the tasks are read from their
coroutine frames."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Hashable
from typing import Any

import wschan_cli.channel as channel_module
from wschan_cli.channel import Party

from . import sim as sim_module
from .footprint import ALL
from .loop import task_label


def abstract(value: Any, connections: dict[int, Hashable], depth: int = 0) -> Hashable:
    """A local's value as a hashable value: equal when the code would behave alike."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, Party):
        return str(value)
    if type(value).__name__ == "Connection":  # also a mutant module's
        if value.n not in connections:
            connections[value.n] = value.snapshot()
        return ("connection", value.n)
    if isinstance(value, asyncio.Task):
        return ("task", task_label(value), value.done())
    if isinstance(value, asyncio.Future):
        if not value.done() or value.cancelled():
            return ("future", value.done())
        exc = value.exception()
        return ("future", True, None if exc is None else type(exc).__name__)
    if isinstance(value, BaseException):
        return (type(value).__name__, str(value))
    if depth > 3:
        return type(value).__name__
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [abstract(v, connections, depth + 1) for v in value]
        return (
            type(value).__name__,
            tuple(sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items),
        )
    if isinstance(value, dict):
        return (
            "dict",
            tuple(
                (abstract(k, connections, depth + 1), abstract(v, connections, depth + 1))
                for k, v in value.items()
            ),
        )
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple(
                abstract(getattr(value, f.name), connections, depth + 1)
                for f in dataclasses.fields(value)
            ),
        )
    return type(value).__name__


def task_state(
    task: asyncio.Task[Any], label: str, connections: dict[int, Hashable] | None = None
) -> Hashable:
    """A task as a value: done (and how), or its coroutine stack: each frame's function,
    instruction offset and every local but ``self`` (the fragment index, the replies, ...)."""
    if task.done():
        if task.cancelled():
            return (label, "cancelled")
        exc = task.exception()
        return (label, "done", type(exc).__name__ if exc else None)
    conns = {} if connections is None else connections
    frames = []
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        local = tuple(
            sorted((k, abstract(v, conns)) for k, v in frame.f_locals.items() if k != "self")
        )
        frames.append((frame.f_code.co_name, frame.f_lasti, local))
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return (label, tuple(frames), task.cancelling() if hasattr(task, "cancelling") else 0)


def send_party(task: asyncio.Task[Any]) -> str:
    """A send task by what the channel knows of it: its party, once it has one. Sends that
    have not started are interchangeable (symmetry: they run the same code on equal data)."""
    if task.done():
        return "send"
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        party = frame.f_locals.get("party")
        if isinstance(party, Party):
            return str(party)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return "send"


_CHANNEL_DIR = os.path.dirname(channel_module.__file__) + os.sep
_SIM_FILE = sim_module.__file__


def code_location(code: Any) -> Hashable | None:
    """Where the state that code reads and writes lives (footprint.py): the channel package
    (and a mutation of it, compiled from its text) is the channel and its connections;
    ``sim.py`` the simulated transports and peers, which websockets' server code is reached
    through; cancelling a task changes what it awaits, wherever that is: every location.
    Other code (asyncio's, the scenario's bookkeeping) keeps no state of its own that another
    party reads; what it changes shows in the state's parts."""
    filename = code.co_filename
    if filename.startswith(_CHANNEL_DIR) or filename.startswith("<mutation "):
        return "channel"
    if filename == _SIM_FILE:
        return "transport"
    if code.co_name == "cancel" and filename.endswith(("asyncio/tasks.py", "asyncio/futures.py")):
        return ALL
    return None
