"""The contract between the core and the explorer: ``Channel.snapshot()`` and the connection
record's ``snapshot()`` cover every field, or list it as excluded with a reason. The explorer
prunes on these values, so a field that is in neither would make pruning silently unsound."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from wschan_cli.channel import Channel
from wschan_cli.channel.connection import Connection

URL = "ws://sim.invalid/"


def undecided(fields: set[str], snapshot: Any, excluded: dict[str, str]) -> set[str]:
    """Fields neither in the snapshot nor excluded, and names in both (a decision twice)."""
    names = {name for name, _ in snapshot}
    assert all(reason.strip() for reason in excluded.values()), "an exclusion without a reason"
    return (fields - names - set(excluded)) | (names & set(excluded)) | (names - fields)


def channel_fields(ch: Channel) -> set[str]:
    return set(vars(ch))


def connection() -> Connection:
    async def make() -> Connection:
        loop = asyncio.get_running_loop()
        proto = ClientProtocol(parse_uri(URL))
        return Connection(n=1, transport=None, proto=proto, upgraded=loop.create_future())  # type: ignore[arg-type]

    return asyncio.run(make())


@pytest.mark.timeout(10)
def test_every_channel_field_is_in_the_snapshot_or_excluded_with_a_reason() -> None:
    ch = Channel(URL)
    assert undecided(channel_fields(ch), ch.snapshot(), Channel.SNAPSHOT_EXCLUDED) == set()
    hash(ch.snapshot())  # a frozen value


@pytest.mark.timeout(10)
def test_every_connection_field_is_in_the_snapshot_or_excluded_with_a_reason() -> None:
    conn = connection()
    fields = {f.name for f in dataclasses.fields(Connection)}
    assert undecided(fields, conn.snapshot(), Connection.SNAPSHOT_EXCLUDED) == set()
    hash(conn.snapshot())


@pytest.mark.timeout(10)
def test_the_check_fails_when_a_field_is_added_without_a_decision() -> None:
    class Grown(Channel):
        def __init__(self, url: str) -> None:
            super().__init__(url)
            self._new_flag = False  # added, and neither snapshotted nor excluded

    ch = Grown(URL)
    assert undecided(channel_fields(ch), ch.snapshot(), Channel.SNAPSHOT_EXCLUDED) == {"_new_flag"}

    @dataclasses.dataclass(eq=False)
    class GrownConnection(Connection):
        owed: int = 0

    fields = {f.name for f in dataclasses.fields(GrownConnection)}
    assert undecided(fields, connection().snapshot(), Connection.SNAPSHOT_EXCLUDED) == {"owed"}


@pytest.mark.timeout(10)
def test_the_snapshot_changes_with_what_it_reads() -> None:
    ch = Channel(URL)
    before = ch.snapshot()
    ch._parties["send"] = 1  # what a send's start does
    assert ch.snapshot() != before
    conn = connection()
    before = conn.snapshot()
    conn.proto.receive_data(b"\x81")  # half a frame header: the parser moved
    assert conn.snapshot() != before
