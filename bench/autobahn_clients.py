#!/usr/bin/env python
"""The two echo clients of the Autobahn|Testsuite run (driven by ``bench/autobahn.py``).

Each client connects to the fuzzing server's ``/runCase?case=N&agent=NAME`` for every case in
turn and echoes each message it receives, in order, as the same type (text or binary), until
the server closes. Both get the same settings: permessage-deflate only with ``--compression``,
no keepalive pings, incoming messages up to 16 MiB.

* ``wschan``: ``wschan_cli.channel.Channel``. ``process`` is synchronous and ``send()`` a
  coroutine, so ``process`` puts each message on a queue and one sender task echoes them (one
  sender keeps the order). A send is never started once the channel closed: after a *clean*
  close the next ``send()`` would reconnect, i.e. run the case again.
* ``websockets``: websockets' own asyncio client, ``async for message in ws: await ws.send()``.
  Its asyncio connection also refuses a message of more than ``WEBSOCKETS_MAX_FRAGMENTS``
  frames (4096 by default; read from the environment when websockets is imported) with 1009
  "too many fragments", which fails 9.3.1-9.3.3 and 9.4.1-9.4.3 (4 MiB in fragments of 64 B to
  1 KiB). wschan has no such limit, only the 16 MiB message size, so this client's limit is set
  from ``--max-fragments`` (``bench/autobahn.py`` passes 2**24 unless told otherwise).

Run under the Python (and ``PYTHONPATH``) whose wschan is tested. Prints one JSON line first
(what is tested: versions and paths), then one per case: ``{"case": N, "seconds": wall time
from connect to close, "error": text or null}``.

    python bench/autobahn_clients.py wschan --url ws://127.0.0.1:9001 --agent wschan --count 517
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

MAX_SIZE = 2**24  # 16 MiB: the largest message of the suite (9.1.6, 9.2.6)


def case_url(url: str, case: int, agent: str) -> str:
    return f"{url}/runCase?case={case}&agent={agent}"


async def wschan_case(url: str, compression: bool, timeout: float) -> None:
    from wschan_cli.channel import Channel, ChannelError, ChannelOptions, CloseInfo, Message

    inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
    closed = asyncio.Event()

    def process(message: Message) -> None:
        inbox.put_nowait(message.data)

    def on_close(info: CloseInfo) -> None:
        closed.set()
        inbox.put_nowait(None)  # wakes the sender

    options = ChannelOptions(
        compression=compression,
        ping_interval=None,
        max_size=MAX_SIZE,
        open_timeout=timeout,
        close_timeout=timeout,
        write_timeout=timeout,
    )
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
    import websockets
    from websockets.asyncio.messages import MAX_FRAGMENTS

    info = {
        "python": platform.python_version(),
        "websockets": websockets.__version__,
        "websockets_max_fragments": str(MAX_FRAGMENTS),
    }
    try:
        import wschan_cli

        info["wschan_cli"] = str(wschan_cli.__file__)
    except ImportError:
        info["wschan_cli"] = "not importable"
    return info


async def run(args: argparse.Namespace) -> None:
    client = CLIENTS[args.client]
    print(json.dumps({"tested": tested()}), flush=True)
    for case in args.case or range(1, args.count + 1):
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
    parser.add_argument("--count", type=int, default=0, help="run cases 1..COUNT")
    parser.add_argument("--case", type=int, action="append", help="run this case number only")
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
