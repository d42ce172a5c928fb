#!/usr/bin/env python
"""The two echo clients of the Autobahn|Testsuite run (driven by ``bench/autobahn.py``).

Each client connects to the fuzzing server's ``/runCase?case=N&agent=NAME`` for every case in
turn and echoes each message it receives, in order, as the same type (text or binary), until
the server closes. Both get the same settings: permessage-deflate only with ``--compression``,
no keepalive pings, incoming messages up to 16 MiB.

* ``wschan``: ``wschan_cli.channel.Channel``: ``async for message in channel.messages():
  await channel.send(message.data)`` where the channel has ``messages()``; on an older
  checkout without it, ``process`` puts each message on a queue that one sender task echoes.
* ``websockets``: websockets' own asyncio client, ``async for message in ws: await ws.send()``.
  Its asyncio connection also refuses a message of more than ``WEBSOCKETS_MAX_FRAGMENTS``
  frames (4096 by default; read from the environment when websockets is imported) with 1009
  "too many fragments", which fails 9.3.1-9.3.3 and 9.4.1-9.4.3 (4 MiB in fragments of 64 B to
  1 KiB). wschan has no such limit, only the 16 MiB message size, so this client's limit is set
  from ``--max-fragments`` (``bench/autobahn.py`` passes 2**24 unless told otherwise).

Run under the Python (and ``PYTHONPATH``) whose wschan is tested. Prints one JSON line first
(what is tested: versions and paths). Then reads case numbers from stdin, one a line, runs each
as it comes and answers with one JSON line ``{"case": N, "seconds": wall time from connect to
close, "error": text or null}``, until end of input: the driver runs the two clients case by
case, in turn, so that the load of a shared machine falls on both alike.

    seq 1 10 | python bench/autobahn_clients.py wschan --url ws://127.0.0.1:9001 --agent wschan
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

MAX_SIZE = 2**24  # 16 MiB: the largest message of the suite (9.1.6, 9.2.6)


def case_url(url: str, case: int, agent: str) -> str:
    return f"{url}/runCase?case={case}&agent={agent}"


def wschan_api() -> str:
    """Which library API of ``Channel`` the echo client uses on the wschan being tested."""
    from wschan_cli.channel import Channel

    return "messages()" if hasattr(Channel, "messages") else "process + queue"


async def wschan_case(url: str, compression: bool, timeout: float) -> None:
    from wschan_cli.channel import ChannelOptions

    settings: dict[str, Any] = {
        "compression": compression,
        "ping_interval": None,
        "max_size": MAX_SIZE,
        "open_timeout": timeout,
        "close_timeout": timeout,
        "write_timeout": timeout,
    }
    if wschan_api() == "messages()":
        # receive_queue: at most that many messages wait for their echo before the reader
        # stops reading (16, as websockets' default max_queue of 16 frames).
        await wschan_messages(url, ChannelOptions(**settings, receive_queue=16))
    else:
        await wschan_process(url, ChannelOptions(**settings))


async def wschan_messages(url: str, options: Any) -> None:
    """The echo client on ``Channel.messages()`` (an async iterator, in order)."""
    from wschan_cli.channel import Channel, ChannelClosed

    channel = Channel(url, options=options)
    try:
        await channel.open()
        async for message in channel.messages():
            try:
                await channel.send(message.data)
            except ChannelClosed:
                break  # the connection closed under the send; the close is what counts
    finally:
        await channel.deinit()


async def wschan_process(url: str, options: Any) -> None:
    """The echo client on the older API: ``process`` is synchronous and ``send()`` a
    coroutine, so ``process`` queues each message and one sender task echoes them in order.
    A send is never started once the channel closed: after a *clean* close the next ``send()``
    would reconnect there, i.e. run the case again."""
    from wschan_cli.channel import Channel, ChannelError, CloseInfo, Message

    inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
    closed = asyncio.Event()

    def process(message: Message) -> None:
        inbox.put_nowait(message.data)

    def on_close(info: CloseInfo) -> None:
        closed.set()
        inbox.put_nowait(None)  # wakes the sender

    channel = Channel(url, options=options, process=process, on_close=on_close)

    async def echo() -> None:
        while (data := await inbox.get()) is not None and not closed.is_set():
            try:
                await channel.send(data)
            except ChannelError:
                return  # the connection closed under the send; the close is what counts

    try:
        await channel.open()
        sender = asyncio.ensure_future(echo())
        try:
            await closed.wait()
            await sender
        finally:
            sender.cancel()
    finally:
        await channel.deinit()


async def websockets_case(url: str, compression: bool, timeout: float) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async with connect(
        url,
        compression="deflate" if compression else None,
        ping_interval=None,
        max_size=MAX_SIZE,
        open_timeout=timeout,
        close_timeout=timeout,
    ) as ws:
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass  # the close is what the suite judges


CLIENTS: dict[str, Callable[[str, bool, float], Awaitable[None]]] = {
    "wschan": wschan_case,
    "websockets": websockets_case,
}


def tested() -> dict[str, str]:
    """What this process tests: the interpreter, websockets and the wschan checkout."""
    from websockets.asyncio.messages import MAX_FRAGMENTS
    from websockets.version import version

    info = {
        "python": platform.python_version(),
        "websockets": version,
        "websockets_max_fragments": str(MAX_FRAGMENTS),
    }
    try:
        import wschan_cli

        info["wschan_cli"] = str(wschan_cli.__file__)
        info["wschan_api"] = wschan_api()
    except ImportError:
        info["wschan_cli"] = "not importable"
    return info


async def run(args: argparse.Namespace) -> None:
    client = CLIENTS[args.client]
    print(json.dumps({"tested": tested()}), flush=True)
    for line in sys.stdin:  # blocking between cases is fine: nothing else runs then
        case = int(line)
        error: str | None = None
        started = time.perf_counter()
        try:
            # A bound on the whole case: a client that never sees the close must not hang the run.
            async with asyncio.timeout(args.case_timeout):
                await client(case_url(args.url, case, args.agent), args.compression, 10.0)
        except TimeoutError:
            error = f"client gave up after {args.case_timeout}s"
        except Exception as exc:  # the case's verdict is the server's; just say what happened
            error = f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - started
        print(json.dumps({"case": case, "seconds": seconds, "error": error}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("--url", required=True, help="the fuzzing server, ws://HOST:PORT")
    parser.add_argument("--agent", required=True, help="the name the reports use")
    parser.add_argument("--compression", action="store_true", help="offer permessage-deflate")
    parser.add_argument(
        "--case-timeout", type=float, default=120.0, help="give up a case after this (s)"
    )
    parser.add_argument(
        "--max-fragments",
        type=int,
        help="frames per message the websockets client accepts (its default: 4096)",
    )
    args = parser.parse_args()
    if args.max_fragments is not None:
        os.environ["WEBSOCKETS_MAX_FRAGMENTS"] = str(args.max_fragments)  # before the import
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
