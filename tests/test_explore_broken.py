"""Proof that the explorer's checks bite: each deliberately broken variant of the core is
reported as a violation of the rule it breaks, with the schedule that shows it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wschan_cli.channel import What
from wschan_cli.explore.broken import VARIANTS
from wschan_cli.explore.engine import explore
from wschan_cli.explore.scenario import Schedule, Setup

EXPECTED = {
    "release-without-signal": ("2", "woke nobody"),
    "signal-before-release": ("2", "woke a waiter while still holding"),
    "waiter-after-yield": ("7", "hang"),
    "dispose-before-waiters-drained": ("7", "after the dispose"),
    "send-without-token": ("1", "took the token held by"),
    "on-close-twice": ("6", "on_close called a second time"),
}


def test_every_variant_has_an_expectation() -> None:
    assert set(VARIANTS) == set(EXPECTED)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_variant_is_caught_with_its_schedule(name: str) -> None:
    setup = Setup(senders=2, channel_cls=VARIANTS[name])
    report = explore(lambda choose: Schedule(setup, choose))
    assert report.exhausted and not report.ok
    invariant, words = EXPECTED[name]
    matching = [
        f
        for f in report.found.values()
        if f.violation.invariant == invariant and words in f.violation.message
    ]
    assert matching, [f.violation for f in report.found.values()]
    found = min(matching, key=lambda f: len(f.events))
    assert found.choices  # the schedule: which party ran at each choice point
    assert len(found.choices) >= 2 and found.events


@pytest.mark.timeout(30)
def test_dispose_before_drained_shows_a_party_running_after_dispose() -> None:
    setup = Setup(senders=2, channel_cls=VARIANTS["dispose-before-waiters-drained"])
    report = explore(lambda choose: Schedule(setup, choose), stop_at_first=True)
    found = report.shortest()
    assert found is not None
    whats = [e.what for e in found.events]
    assert What.DISPOSE in whats and whats.index(What.DISPOSE) < len(whats) - 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["waiter-after-yield", "on-close-twice"])
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


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pruning_finds_what_the_full_enumeration_finds(name: str) -> None:
    def make(choose):  # type: ignore[no-untyped-def]
        return Schedule(Setup(senders=1, channel_cls=VARIANTS[name]), choose)

    pruned, full = explore(make), explore(make, reduce=False)
    assert full.pruned == 0 and pruned.schedules < full.schedules
    assert set(pruned.found) == set(full.found)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["waiter-after-yield", "dispose-before-waiters-drained"])
def test_symmetry_of_sends_finds_what_the_plain_state_finds(name: str) -> None:
    def make(symmetric: bool):  # type: ignore[no-untyped-def]
        setup = Setup(senders=2, channel_cls=VARIANTS[name], symmetric=symmetric)
        return lambda choose: Schedule(setup, choose)

    folded, plain = explore(make(True)), explore(make(False))
    assert folded.schedules < plain.schedules
    assert set(folded.found) == set(plain.found)
