"""The explorer's checks bite: each mutation (a small patch of the real channel/token.py or
channel/channel.py, compiled at run time) is reported by ``--explore`` in its scenario, with the
schedule that shows it, with every reduction on."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from wschan_cli.channel import Channel, What
from wschan_cli.explore.engine import explore
from wschan_cli.explore.mutants import MUTATIONS, TWELVE, PatchDoesNotApply, apply, mutant
from wschan_cli.explore.mutation_names import NAMES as MUTATION_NAMES
from wschan_cli.explore.scenario import Schedule
from wschan_cli.explore.setup import Setup, with_parties

# mutation -> (senders, parties, invariant, words of the violation)
CAUGHT = {
    "release-without-signal": (2, [], "2", "woke nobody"),
    "signal-before-release": (2, [], "2", "woke a waiter while still holding"),
    "waiter-after-yield": (2, [], "7", "hang"),
    "send-without-token": (2, [], "1", "took the token held by"),
    "dispose-before-waiters-drained": (2, [], "7", "after the dispose"),
    "signal-twice": (2, [], "2", "released once and woke a second waiter"),
    "reader-writes-pong": (1, ["auto-reply"], "1", "bytes on the wire while"),
    "send-releases-before-drain": (2, ["fragments"], "3, 7", "failed with"),
    "cancelled-waiter-swallows-wake-up": (2, ["cancel"], "7", "hang"),
    "on-close-under-token": (1, [], "D7", "on_close ran while"),
    "lifo-wake-up": (2, [], "2", "(FIFO)"),
    "unbounded-close-wait": (0, ["slow-close"], "D5", "after its shutdown"),
    "on-close-twice": (1, [], "6", "on_close called a second time"),
    "connector-releases-before-upgrade": (2, ["connector"], "D2", "before the upgrade"),
    "keepalive-without-token": (0, ["keepalive"], "1", "bytes on the wire while"),
    "send-overtakes-owed-pong": (0, ["autobahn"], "D10", "an owed reply was overtaken"),
    "close-echo-lost": (1, ["peer-close"], "D10", "without answering it"),
    "deinit-not-rerun-after-cancel": (1, ["cancel-deinit"], "7", "hang"),
    "half-message-on-cancel": (2, ["cancel", "fragments"], "3, 7", "failed with ProtocolError"),
    "half-connection-on-cancel": (2, ["connector", "cancel"], "D11", "half-made connection"),
}


def setup_of(name: str) -> Setup:
    senders, parties, _, _ = CAUGHT[name]
    # --peer close and --with-ping are options, not parties
    setup = Setup(
        senders=senders,
        channel_cls=mutant(name),
        peer_close="peer-close" in parties,
        with_ping="ping" in parties,
    )
    return with_parties(setup, [p for p in parties if p not in ("peer-close", "ping")])


def test_every_mutation_has_a_scenario_that_catches_it() -> None:
    assert set(CAUGHT) == set(MUTATIONS)
    assert set(TWELVE) <= set(MUTATIONS) and len(TWELVE) == 12


def test_the_command_line_lists_every_mutation_without_loading_them() -> None:
    assert tuple(MUTATIONS) == MUTATION_NAMES  # --broken's choices, in the same order


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(CAUGHT))
def test_mutation_is_caught_with_its_schedule(name: str) -> None:
    setup = setup_of(name)
    report = explore(lambda choose: Schedule(setup, choose))
    assert report.exhausted and not report.ok
    _, _, invariant, words = CAUGHT[name]
    matching = [
        f
        for f in report.found.values()
        if f.violation.invariant == invariant and words in f.violation.message
    ]
    assert matching, [f.violation for f in report.found.values()]
    found = min(matching, key=lambda f: len(f.events))
    assert found.choices and found.events  # the schedule: which party ran at each choice point
    assert found.violation.seq in [e.seq for e in found.events]  # the step its picture marks


@pytest.mark.timeout(120)
def test_the_unpatched_core_passes_the_same_scenarios() -> None:
    """The violations above come from the patches: without them each scenario is clean."""
    for name in CAUGHT:
        setup = replace(setup_of(name), channel_cls=Channel)
        report = explore(lambda choose, s=setup: Schedule(s, choose))
        assert report.exhausted and report.ok, (name, report.found)


def test_a_patch_that_no_longer_applies_fails_loudly() -> None:
    with pytest.raises(PatchDoesNotApply):
        apply("nothing to patch here", MUTATIONS["lifo-wake-up"])


@pytest.mark.timeout(30)
def test_dispose_before_drained_shows_a_party_running_after_dispose() -> None:
    setup = setup_of("dispose-before-waiters-drained")
    report = explore(lambda choose: Schedule(setup, choose), stop_at_first=True)
    found = report.shortest()
    assert found is not None
    whats = [e.what for e in found.events]
    assert What.DISPOSE in whats and whats.index(What.DISPOSE) < len(whats) - 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["waiter-after-yield", "on-close-twice", "lifo-wake-up"])
def test_cli_broken_variant_exits_6(name: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "wschan_cli",
            "trace-shutdown",
            "--explore",
            "--senders",
            "2",
            "--broken",
            name,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 6, result.stderr
    assert "BROKEN variant" in result.stdout and "shortest schedule" in result.stdout
    assert "never retrieved" not in result.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "name", ["release-without-signal", "waiter-after-yield", "lifo-wake-up", "on-close-twice"]
)
def test_pruning_finds_what_the_full_enumeration_finds(name: str) -> None:
    def make(choose):  # type: ignore[no-untyped-def]
        return Schedule(Setup(senders=1, channel_cls=mutant(name)), choose)

    pruned, full = explore(make), explore(make, reduce=False)
    assert full.pruned == 0 and pruned.schedules < full.schedules
    assert set(pruned.found) == set(full.found)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["waiter-after-yield", "dispose-before-waiters-drained"])
def test_symmetry_of_sends_finds_what_the_plain_state_finds(name: str) -> None:
    def make(symmetric: bool):  # type: ignore[no-untyped-def]
        setup = Setup(senders=2, channel_cls=mutant(name), symmetric=symmetric)
        return lambda choose: Schedule(setup, choose)

    folded, plain = explore(make(True)), explore(make(False))
    assert folded.schedules < plain.schedules
    assert set(folded.found) == set(plain.found)
