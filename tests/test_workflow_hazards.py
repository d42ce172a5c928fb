"""The workflow model shows the C++ hazards H3, H6 and H7 of channel-model.md, each with the
schedule that leads to it; wschan's channel, in the same shapes, shows none of them."""

from __future__ import annotations

import pytest

from wschan_cli.explore.engine import Found, explore
from wschan_cli.explore.scenario import Schedule
from wschan_cli.explore.setup import Setup, with_parties
from wschan_cli.explore.workflow import H3, H6, H7, WorkflowSchedule


def _found(setup: Setup, text: str) -> Found:
    report = explore(lambda choose: WorkflowSchedule(setup, choose))
    assert report.exhausted
    shown = [f for f in report.found.values() if f.violation.message.startswith(text)]
    assert shown, [f.violation.message for f in report.found.values()]
    found = shown[0]
    assert found.choices  # the schedule
    marked = next(e for e in found.events if e.seq == found.violation.seq)
    assert marked.what.value == "fail"  # the picture marks the hazard's step
    return found


def _steps(found: Found) -> list[str]:
    return [f"{e.party} {e.what.value}" for e in found.events]


@pytest.mark.timeout(60)
def test_h3_a_woken_sender_writes_on_the_released_connection() -> None:
    found = _found(Setup(senders=1), H3)
    steps = _steps(found)
    # the send queued, the closer released the connection (established 1 -> 0), the send woke
    wait, wake = steps.index("send#1 wait"), steps.index("send#1 wake")
    fell = next(i for i, e in enumerate(found.events) if e.what.value == "established")
    failed = next(i for i, e in enumerate(found.events) if e.seq == found.violation.seq)
    assert wait < fell < wake < failed and steps[failed] == "send#1 fail"
    assert found.events[failed].established == 0


@pytest.mark.timeout(60)
def test_h7_a_timed_out_send_leaves_a_partial_frame_before_the_next() -> None:
    found = _found(with_parties(Setup(senders=2), ["write-timeout"]), H7)
    fails = [e for e in found.events if e.what.value == "fail"]
    assert fails[0].detail["error_type"] == "timeout" and fails[-1].detail["error_type"] == "H7"
    assert fails[0].party != fails[-1].party and fails[-1].established == 1


@pytest.mark.timeout(60)
def test_h6_deinit_from_the_close_callback_deletes_under_the_callback() -> None:
    found = _found(with_parties(Setup(senders=0), ["on-close-deinit"]), H6)
    steps = [e.what.value for e in found.events]
    assert steps.index("on_close") < steps.index("dispose") < steps.index("fail")


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("senders", "parties"), [(1, ["on-close-deinit"]), (2, ["on-close-deinit", "connector"])]
)
def test_wschan_allows_deinit_from_on_close(senders: int, parties: list[str]) -> None:
    ran: list[str] = []

    def look(result):  # type: ignore[no-untyped-def]
        ran.extend(str(e.party) for e in result.events if e.what.value == "dispose")

    setup = with_parties(Setup(senders=senders), parties)
    report = explore(lambda choose: Schedule(setup, choose), on_result=look)
    assert report.exhausted and report.ok, report.found
    assert ran  # every complete schedule disposes (once: the checks at the end)
