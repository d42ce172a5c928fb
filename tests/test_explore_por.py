"""Partial-order reduction (sleep sets over footprints observed while steps run) is sound: for
every mutation of the core, in the scenario that catches it, and for the workflow model, the
explorer finds the same violations with it as without it; on the real core it visits the same
states (sleep sets skip transitions, never states) in fewer schedules."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wschan_cli.explore.engine import explore
from wschan_cli.explore.footprint import ALL, Tracer, changed, independent
from wschan_cli.explore.parties import PARTIES
from wschan_cli.explore.scenario import Schedule
from wschan_cli.explore.setup import Setup, with_parties
from wschan_cli.explore.state import code_location
from wschan_cli.explore.workflow import WorkflowSchedule

from .test_mutations import CAUGHT, setup_of


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", sorted(CAUGHT))
def test_sleep_sets_find_what_state_pruning_finds_for_every_mutation(name: str) -> None:
    setup = setup_of(name)
    plain = explore(lambda choose: Schedule(setup, choose))
    reduced = explore(lambda choose: Schedule(setup, choose), por=True)
    assert plain.exhausted and reduced.exhausted
    assert set(reduced.found) == set(plain.found)
    assert reduced.found  # the mutation is caught with every reduction on
    _, _, invariant, words = CAUGHT[name]
    assert any(
        f.violation.invariant == invariant and words in f.violation.message
        for f in reduced.found.values()
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "setup",
    [Setup(senders=0), Setup(senders=1), Setup(senders=2), Setup(senders=1, connector=True)],
    ids=["0 sends", "1 send", "2 sends", "connector"],
)
def test_sleep_sets_find_what_state_pruning_finds_in_the_workflow_model(setup: Setup) -> None:
    def make(choose):  # type: ignore[no-untyped-def]
        return WorkflowSchedule(setup, choose)

    plain, reduced = explore(make), explore(make, por=True)
    assert plain.exhausted and reduced.exhausted
    assert not reduced.ok
    assert set(reduced.found) == set(plain.found)
    assert reduced.states == plain.states
    if setup.senders <= 1:  # and every interleaving, where that finishes in seconds
        full = explore(make, reduce=False)
        assert full.exhausted and set(full.found) == set(reduced.found)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("senders", "parties", "peer_close"),
    [(3, [], False), (1, [], True), (2, ["connector"], False), (1, ["cancel"], False)],
)
def test_sleep_sets_visit_every_state_in_fewer_schedules(
    senders: int, parties: list[str], peer_close: bool
) -> None:
    setup = with_parties(Setup(senders=senders, peer_close=peer_close), parties)
    plain = explore(lambda choose: Schedule(setup, choose))
    reduced = explore(lambda choose: Schedule(setup, choose), por=True)
    assert plain.exhausted and reduced.exhausted and plain.ok and reduced.ok
    assert reduced.states == plain.states
    assert reduced.schedules < plain.schedules


@pytest.mark.timeout(60)
def test_sleep_sets_without_state_pruning_find_what_every_interleaving_finds() -> None:
    def make(choose):  # type: ignore[no-untyped-def]
        return WorkflowSchedule(Setup(senders=1), choose)

    full, slept = explore(make, reduce=False), explore(make, reduce=False, por=True)
    assert set(slept.found) == set(full.found) and slept.schedules <= full.schedules


def test_footprints_come_from_the_code_that_ran_and_the_state_it_changed() -> None:
    from wschan_cli.channel import channel as channel_code
    from wschan_cli.explore import sim

    assert code_location(channel_code.Channel.send.__code__) == "channel"
    assert code_location(sim.SimTransport.read.__code__) == "transport"
    assert code_location(Schedule.parts.__code__) is None
    assert changed({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 0}) == {"b", "c"}
    assert independent(frozenset({"channel"}), frozenset({"transport"}))
    assert not independent(frozenset({"channel"}), frozenset({"channel", "transport"}))
    assert not independent(frozenset({ALL}), frozenset({"transport"}))

    tracer = Tracer(lambda code: code.co_name if code.co_name.startswith("touch") else None)

    def touch_a() -> None:
        pass

    def other() -> None:
        touch_a()

    tracer.start()
    other()
    touched = tracer.stop()
    assert touched == {"touch_a"}
    assert sys.gettrace() is None or sys.gettrace() is not tracer._trace


@pytest.mark.timeout(60)
def test_cli_reduce_choices() -> None:
    def schedules(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "wschan_cli", "trace-shutdown", "--explore", *args],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert out.returncode == 0, out.stderr
        assert "never retrieved" not in out.stderr
        return out.stdout.split("schedules: ")[1].split(" ")[0]

    all_, states, none = (schedules("--reduce", r) for r in ("all", "states", "none"))
    assert int(all_) < int(states) < int(none)
    assert schedules("--no-reduce") == none


@pytest.mark.timeout(180)
@pytest.mark.parametrize("party", sorted(PARTIES))
def test_no_never_retrieved_warning_from_any_party_with_sleep_sets(party: str) -> None:
    """Every party, with the peer's Close and every reduction: nothing on stderr (the run before
    the core retrieved every future printed 'Future exception was never retrieved')."""
    out = subprocess.run(
        [
            *(sys.executable, "-m", "wschan_cli", "trace-shutdown", "--explore"),
            *("--senders", "0", "--peer", "close", "--reduce", "all", "--party", party),
        ],
        capture_output=True,
        text=True,
        timeout=170,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stdout[-2000:]
    assert "never retrieved" not in out.stderr and not out.stderr.strip()


@pytest.mark.timeout(120)
def test_sleep_set_counts_do_not_depend_on_what_ran_before() -> None:
    """Footprints are observed without garbage collection: a finalizer of an object another
    exploration left behind would otherwise count as a touch of the transition it ran in."""

    def count() -> int:
        return explore(lambda choose: Schedule(Setup(senders=3), choose), por=True).schedules

    first = count()
    setup = with_parties(Setup(senders=1, peer_close=True), ["cancel"])
    explore(lambda choose: Schedule(setup, choose), por=True)  # leaves garbage behind
    assert count() == first
