"""Every token party explored: each ``--party`` scenario runs exhaustively on the real channel.

The checks added with them find real bugs in today's core (issues 8 and 9); those scenarios are
marked xfail(strict=True) with the bug, and each is shown to be caught with its schedule. The
``core`` branch fixes them; when it is merged the marks go."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from wschan_cli.explore.engine import explore
from wschan_cli.explore.parties import PARTIES
from wschan_cli.explore.scenario import Schedule, Setup, with_parties

OVERTAKEN_PONG = (
    "known core bug (issue 8 item 1, D10): the auto reply queues for the token behind a send "
    "started after the Ping was read, so the Pong goes out after it"
)
ECHO_LOST = (
    "known core bug (issue 9 item 4): deinit takes the token before the auto reply and the "
    "peer's Close is never echoed"
)
HALF_MESSAGE = (
    "known core bug (issue 9 item 2): a fragmented send cancelled between fragments leaves "
    "half a message on the live connection"
)
HALF_CONNECTION = (
    "known core bug (issue 9 item 3): a connector cancelled in the handshake leaves its "
    "half-made connection established"
)
DEINIT_HANGS = "known core bug (issue 9 item 1): a cancelled deinit makes every later deinit hang"

# scenario -> (senders, parties, known bug or None, the violation that shows it)
SCENARIOS: dict[str, tuple[int, list[str], str | None, str]] = {
    "connector": (2, ["connector"], None, ""),
    "keepalive": (0, ["keepalive"], None, ""),
    "auto-reply": (1, ["auto-reply"], OVERTAKEN_PONG, "D10: an owed reply was overtaken"),
    "autobahn": (0, ["autobahn"], OVERTAKEN_PONG, "D10: an owed reply was overtaken"),
    "peer-data": (0, ["peer-data"], OVERTAKEN_PONG, "D10: an owed reply was overtaken"),
    "reconnect": (1, ["reconnect"], ECHO_LOST, "D10: the channel read the peer's Close"),
    "write-timeout": (1, ["write-timeout"], None, ""),
    "cancel": (2, ["cancel"], None, ""),
    "cancel-fragments": (2, ["cancel", "fragments"], HALF_MESSAGE, "1: the peer received"),
    "cancel-connect": (2, ["connector", "cancel"], HALF_CONNECTION, "D11: half-made connection"),
    "cancel-deinit": (1, ["cancel-deinit"], DEINIT_HANGS, "7: hang"),
    "fragments": (2, ["fragments"], None, ""),
    "slow-close": (0, ["slow-close"], None, ""),
}


def explored(name: str):  # type: ignore[no-untyped-def]
    senders, parties, _, _ = SCENARIOS[name]
    setup = with_parties(Setup(senders=senders), parties)
    return explore(lambda choose: Schedule(setup, choose))


def test_every_party_has_a_scenario() -> None:
    used = {party for _, parties, _, _ in SCENARIOS.values() for party in parties}
    assert used == set(PARTIES)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=bug)) if bug else n
        for n, (_, _, bug, _) in SCENARIOS.items()
    ],
)
def test_party_scenario_has_no_violation(name: str) -> None:
    report = explored(name)
    assert report.exhausted and report.ok, [f.violation for f in report.found.values()]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", [n for n, (_, _, bug, _) in SCENARIOS.items() if bug])
def test_known_core_bug_is_caught_with_its_schedule(name: str) -> None:
    """Until the core branch lands, the checks show each bug; the schedule is printed."""
    report = explored(name)
    shown = SCENARIOS[name][3]
    invariant, words = shown.split(": ", 1)
    kinds = [
        f
        for f in report.found.values()
        if f.violation.invariant == invariant and words in f.violation.message
    ]
    if report.ok:
        pytest.fail(f"{name}: no violation any more: the core bug is fixed; drop the xfail")
    assert kinds, list(report.found)
    assert kinds[0].choices and kinds[0].events


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
