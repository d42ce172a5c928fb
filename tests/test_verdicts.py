"""The verdicts of trace-shutdown bite: each fails on an event history that breaks its rule."""

from __future__ import annotations

from wschan_cli.channel import CloseInfo, Event, Party, What
from wschan_cli.invariants.record import Run
from wschan_cli.invariants.verdicts import check

D, T, S1, S2, R = (
    Party("deinit"),
    Party("terminate", 1),
    Party("send", 1),
    Party("send", 2),
    Party("reader", 1),
)


def history(*steps: tuple) -> list[Event]:
    """Build events from (party, what, sending, established, waiters, detail?) tuples."""
    events = []
    for seq, step in enumerate(steps, 1):
        party, what, sending, established, waiters, *rest = step
        events.append(
            Event(
                seq,
                seq / 1000,
                party,
                what,
                sending,
                established,
                "success",
                party if sending else None,
                waiters,
                rest[0] if rest else {},
            )
        )
    return events


GOOD = (
    (S1, What.TAKE, True, 1, 0),
    (D, What.WAIT, True, 1, 1),
    (S1, What.RELEASE, False, 1, 1),
    (S1, What.SIGNAL, False, 1, 0, {"woken": "deinit"}),
    (S1, What.DONE, False, 1, 0),
    (D, What.WAKE, False, 1, 0),
    (D, What.TAKE, True, 1, 0),
    (D, What.SHUTDOWN, True, 1, 0),
    (R, What.READER_END, True, 1, 0),
    (T, What.WAIT, True, 1, 1),
    (D, What.ESTABLISHED, True, 0, 1, {"before": 1}),
    (D, What.RELEASE, False, 0, 1),
    (D, What.SIGNAL, False, 0, 0, {"woken": "terminate#1"}),
    (D, What.ON_CLOSE, False, 0, 0),
    (T, What.WAKE, False, 0, 0),
    (T, What.TAKE, True, 0, 0),
    (T, What.LEAVE, True, 0, 0),
    (T, What.RELEASE, False, 0, 0),
    (D, What.DISPOSE, False, 0, 0),
)


def make_run(steps: tuple, *, closes: int = 1, hung: bool = False) -> Run:
    run = Run("deinit-first", senders=1, abrupt=False, events=history(*steps), hung=hung)
    run.outcomes = {"send#1": "sent"}
    run.closes = [CloseInfo(1000, "", "local", True)] * closes
    return run


def failing(run: Run) -> set[str]:
    return {v.invariant for v in check(run) if not v.ok}


def test_a_correct_history_passes_every_verdict() -> None:
    assert failing(make_run(GOOD)) == set()


def test_two_holders_at_once_fail_invariant_1() -> None:
    steps = list(GOOD)
    steps.insert(1, (S2, What.TAKE, True, 1, 0))  # send#2 takes while send#1 holds
    assert "1" in failing(make_run(tuple(steps)))


def test_a_release_that_wakes_nobody_fails_invariant_2() -> None:
    steps = [s for s in GOOD if not (s[0] == S1 and s[1] is What.SIGNAL)]
    assert "2" in failing(make_run(tuple(steps)))


def test_a_send_that_never_ends_fails_invariant_3() -> None:
    steps = [s for s in GOOD if s[1] is not What.DONE]
    assert "3, 7" in failing(make_run(tuple(steps)))


def test_completion_before_release_fails_invariant_5() -> None:
    steps = list(GOOD)
    done = steps.pop(4)
    steps.insert(1, done)  # DONE before send#1 released
    assert "5" in failing(make_run(tuple(steps)))


def test_established_falling_twice_or_on_close_twice_fails_invariant_6() -> None:
    twice = list(GOOD)
    twice.insert(16, (T, What.ESTABLISHED, True, 0, 0, {"before": 1}))
    assert "6" in failing(make_run(tuple(twice)))
    assert "6" in failing(make_run(GOOD, closes=2))


def test_use_after_dispose_or_a_hang_fails_invariant_7() -> None:
    late = (*GOOD, (T, What.TAKE, True, 0, 0))
    assert "7" in failing(make_run(late))
    assert "7" in failing(make_run(GOOD, hung=True))


def test_established_falls_once_per_connection_when_a_send_reconnects() -> None:
    from wschan_cli.invariants.verdicts import _established_falls_once

    C = Party("send", 3)
    steps = (
        (R, What.READER_END, False, 1, 0),
        (T, What.TAKE, True, 1, 0),
        (T, What.SHUTDOWN, True, 1, 0),
        (T, What.ESTABLISHED, True, 0, 0),
        (T, What.RELEASE, False, 0, 0),
        (T, What.ON_CLOSE, False, 0, 0),
        (C, What.TAKE, True, 0, 0),
        (C, What.ESTABLISHED, True, 1, 0),
        (C, What.RELEASE, False, 1, 0),
        (D, What.TAKE, True, 1, 0),
        (D, What.SHUTDOWN, True, 1, 0),
        (Party("reader", 2), What.READER_END, True, 1, 0),
        (D, What.ESTABLISHED, True, 0, 0),
        (D, What.RELEASE, False, 0, 0),
        (D, What.ON_CLOSE, False, 0, 0),
    )
    events = history(*steps)
    run = Run("x", 0, False, events=events, closes=[CloseInfo(1001, "", "peer", True)] * 2)
    assert _established_falls_once(run).ok
    run.closes = run.closes[:1]
    assert not _established_falls_once(run).ok
    # A second fall with no new connection is still a violation.
    twice = history(*steps[:6], *steps[9:])
    assert not _established_falls_once(Run("x", 0, False, events=twice, closes=run.closes * 2)).ok


def test_skipped_invariants_are_left_out_and_the_others_are_the_same() -> None:
    from wschan_cli.invariants.monitor import PER_STEP

    steps = list(GOOD)
    steps.insert(1, (S2, What.TAKE, True, 1, 0))  # breaks 1 (checked per step by the monitor)
    run = make_run((*steps, (T, What.TAKE, True, 0, 0)), closes=2)  # and 6, 7 (at the end)
    every = check(run)
    assert [v.invariant for v in every] == ["1", "2", "3, 7", "5", "6", "7", "D7", "D10"]
    assert check(run, skip=PER_STEP) == [v for v in every if v.invariant not in PER_STEP]
    assert {v.invariant for v in check(run, skip=PER_STEP) if not v.ok} == {"6", "7"}
