"""Every token party explored: each ``--party`` scenario runs exhaustively on the real channel
and finds no violation. (Before the core's fixes of issues 8 and 9, five of them showed those
bugs; tests/test_mutations.py reintroduces each into the fixed core and sees it caught.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from wschan_cli.channel import PartyKind
from wschan_cli.explore.engine import explore
from wschan_cli.explore.parties import PARTIES
from wschan_cli.explore.scenario import Schedule
from wschan_cli.explore.setup import Setup, with_parties

# scenario -> (senders, parties)
SCENARIOS: dict[str, tuple[int, list[str]]] = {
    "connector": (2, ["connector"]),
    "keepalive": (0, ["keepalive"]),
    "auto-reply": (1, ["auto-reply"]),
    "autobahn": (0, ["autobahn"]),
    "peer-data": (0, ["peer-data"]),
    "reconnect": (1, ["reconnect"]),
    "write-timeout": (1, ["write-timeout"]),
    "cancel": (2, ["cancel"]),
    "cancel-fragments": (2, ["cancel", "fragments"]),
    "cancel-connect": (2, ["connector", "cancel"]),
    "cancel-deinit": (1, ["cancel-deinit"]),
    "fragments": (2, ["fragments"]),
    "slow-close": (0, ["slow-close"]),
    "on-close-deinit": (1, ["on-close-deinit"]),
}


def explored(name: str):  # type: ignore[no-untyped-def]
    senders, parties = SCENARIOS[name]
    setup = with_parties(Setup(senders=senders), parties)
    return explore(lambda choose: Schedule(setup, choose))


def test_every_party_has_a_scenario() -> None:
    used = {party for _, parties in SCENARIOS.values() for party in parties}
    assert used == set(PARTIES)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_party_scenario_has_no_violation(name: str) -> None:
    report = explored(name)
    assert report.exhausted and report.ok, [f.violation for f in report.found.values()]


@pytest.mark.timeout(60)
def test_cli_party_option_and_json() -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "wschan_cli", "trace-shutdown", "--explore"),
            *("--senders", "1", "--party", "connector", "--party", "cancel", "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    head = json.loads(result.stdout.splitlines()[0])["explore"]
    assert head["parties"] == ["connector", "cancel"] and head["mode"] == "exhaustive"
    assert "never retrieved" not in result.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "wschan_cli", "trace-shutdown", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    for name in PARTIES:
        assert name in help_text


@pytest.mark.timeout(120)
@pytest.mark.parametrize("senders", [0, 1])
def test_a_close_read_while_deinit_writes_an_owed_pong_is_still_answered(senders: int) -> None:
    """The peer pings, then closes: deinit, holding the token, writes the owed Pong (D10); while
    that drains the reader reads the peer's Close and owes its echo. The echo must still go out
    before TCP closes (RFC 6455 5.5.1); it was dropped (found by exploring --peer close with
    --party auto-reply)."""
    setup = with_parties(Setup(senders=senders, peer_close=True), ["auto-reply"])
    report = explore(lambda choose: Schedule(setup, choose))
    assert report.exhausted and report.ok, [f.violation for f in report.found.values()]


@pytest.mark.timeout(120)
def test_a_close_owed_behind_a_slow_write_is_answered_or_the_link_is_cut_for_that_write() -> None:
    """--peer close --party auto-reply --party write-timeout: deinit writes the owed Pong, the
    peer's Close arrives, and time runs out during the write. The reader's close timeout ran
    from the Close's arrival, while the echo was still owed, and ended the connection as the
    peer's fault with the Close unanswered; now it runs from the echo's write, and when our own
    write does not drain the link is cut for that (close.UNDRAINED), nothing more can go out."""
    setup = with_parties(Setup(senders=0, peer_close=True), ["auto-reply", "write-timeout"])
    report = explore(lambda choose: Schedule(setup, choose))
    assert report.exhausted and report.ok, [f.violation for f in report.found.values()]


def test_every_party_the_channel_makes_is_a_party_kind() -> None:
    # The views, the checks and the scenarios compare party kinds with PartyKind members: a kind
    # the channel made that is not one would fall through every comparison silently.
    seen = set()
    for senders, parties in [(2, ["connector", "keepalive", "auto-reply"]), (1, ["reconnect"])]:
        setup = with_parties(Setup(senders=senders, with_ping=True), parties)
        result = Schedule(setup, lambda schedule, labels: 0).run()
        seen |= {e.party.kind for e in result.events}
    assert seen <= set(PartyKind)
    assert {PartyKind.SEND, PartyKind.DEINIT, PartyKind.TERMINATE, PartyKind.READER} <= seen


@pytest.mark.timeout(120)
def test_a_cancelled_deinit_waiter_does_not_count_for_fifo_when_deinit_waits_again() -> None:
    """--peer close --party cancel-deinit: deinit waits behind the auto reply, is cancelled, and
    the second deinit (the same party, "deinit") waits behind terminate. The cancelled waiter
    left the queue; the monitor took the second deinit's wait for the first's and reported a
    FIFO violation when terminate was woken first."""
    setup = with_parties(Setup(senders=1, peer_close=True), ["cancel-deinit"])
    report = explore(lambda choose: Schedule(setup, choose))
    assert report.exhausted and report.ok, [f.violation for f in report.found.values()]


def test_a_keepalive_timeout_that_finds_the_peers_close_answers_it() -> None:
    """--peer close --party keepalive --party auto-reply: the keepalive's ping timed out and it
    waited for the token to cut the connection; meanwhile the peer's Close arrived. The peer is
    alive and closing: its Close is answered (RFC 6455 5.5.1), not dropped by an abort. The
    schedule the explorer found (49 s to find exhaustively) is replayed here step by step."""
    found = [
        "keepalive#1", "peer", "timer", "keepalive#1", "keepalive#1", "reader#1", "peer",
        "auto_reply#1", "timer", "keepalive#1", "auto_reply#1", "reader#1", "keepalive#1",
        "deinit",
    ]  # fmt: skip
    setup = with_parties(Setup(senders=0, peer_close=True), ["keepalive", "auto-reply"])
    steps = iter(found)

    def follow(schedule: Schedule, labels: list[str]) -> int:
        wanted = next(steps, None)
        return labels.index(wanted) if wanted in labels else 0

    result = Schedule(setup, follow).run()
    assert result.complete and not result.violations, result.violations
    assert result.choices[: len(found)] == found  # the schedule was the one found
