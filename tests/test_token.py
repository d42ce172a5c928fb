"""The token and its FIFO condition on their own (channel-model.md section 1, D4)."""

from __future__ import annotations

import asyncio

import pytest

from wschan_cli.channel import Party, Token, TokenMisuse, What

from .helpers import run


def make() -> tuple[Token, list[tuple[str, What]]]:
    log: list[tuple[str, What]] = []
    token = Token(lambda party, what, **_: log.append((str(party), what)))
    return token, log


def test_take_when_free_does_not_yield_and_sets_holder() -> None:
    async def main() -> None:
        token, log = make()
        await token.take(Party("send", 1))
        assert token.sending and token.holder == Party("send", 1)
        assert log == [("send#1", What.TAKE)]

    run(main())


def test_try_take_takes_a_free_token_and_leaves_a_held_one_alone() -> None:
    """The send path's way in: no coroutine when the token is free, and when it is held,
    nothing changes (the caller then waits in take(), which queues it)."""
    token, log = make()
    assert token.try_take(Party("send", 1))
    assert token.holder == Party("send", 1) and log == [("send#1", What.TAKE)]
    assert not token.try_take(Party("send", 2))
    assert token.holder == Party("send", 1) and len(token.waiters) == 0 and len(log) == 1


def test_a_loser_is_queued_before_it_yields() -> None:
    async def main() -> None:
        token, log = make()
        await token.take(Party("a"))
        task = asyncio.ensure_future(token.take(Party("b")))
        await asyncio.sleep(0)  # let b run up to its first await
        # b is parked on the condition already; a release now cannot miss it.
        assert len(token.waiters) == 1 and log[-1] == ("b", What.WAIT)
        token.release(Party("a"))
        await task
        assert token.holder == Party("b")

    run(main())


def test_each_release_wakes_exactly_one_waiter_in_fifo_order() -> None:
    async def main() -> None:
        token, log = make()
        await token.take(Party("h"))
        tasks = [asyncio.ensure_future(token.take(Party("w", i))) for i in (1, 2, 3)]
        await asyncio.sleep(0)
        assert [str(p) for p in token.waiters.parties()] == ["w#1", "w#2", "w#3"]
        token.release(Party("h"))
        await asyncio.sleep(0)
        assert [p for p, w in log if w is What.WAKE] == ["w#1"]  # one release, one wake-up
        assert token.holder == Party("w", 1)
        for i in (1, 2):
            token.release(Party("w", i))
            await asyncio.sleep(0)
        assert [p for p, w in log if w is What.WAKE] == ["w#1", "w#2", "w#3"]
        token.release(Party("w", 3))
        await asyncio.gather(*tasks)
        assert not token.sending and len(token.waiters) == 0

    run(main())


def test_a_woken_party_recompetes_and_can_lose_to_a_newcomer() -> None:
    async def main() -> None:
        token, log = make()
        await token.take(Party("a"))
        waiter = asyncio.ensure_future(token.take(Party("b")))
        await asyncio.sleep(0)
        token.release(Party("a"))  # signals b, but b has not run yet
        await token.take(Party("c"))  # the newcomer takes the free token first
        await asyncio.sleep(0)  # b wakes, finds the token busy, queues again
        assert token.holder == Party("c")
        assert log[-2:] == [("b", What.WAKE), ("b", What.WAIT)]
        token.release(Party("c"))
        await waiter
        assert token.holder == Party("b")

    run(main())


def test_only_the_holder_may_release() -> None:
    async def main() -> None:
        token, _ = make()
        with pytest.raises(TokenMisuse):
            token.release(Party("nobody"))
        await token.take(Party("a"))
        with pytest.raises(TokenMisuse):
            token.release(Party("b"))
        assert token.holder == Party("a")

    run(main())


def test_a_cancelled_woken_waiter_passes_the_wakeup_on() -> None:
    async def main() -> None:
        token, _ = make()
        await token.take(Party("a"))
        b = asyncio.ensure_future(token.take(Party("b")))
        c = asyncio.ensure_future(token.take(Party("c")))
        await asyncio.sleep(0)
        token.release(Party("a"))  # wakes b ...
        b.cancel()  # ... which is cancelled before it runs: c must not be left waiting
        await asyncio.wait_for(c, 1)
        assert token.holder == Party("c")
        with pytest.raises(asyncio.CancelledError):
            await b

    run(main())


def test_a_cancelled_queued_waiter_leaves_the_queue() -> None:
    async def main() -> None:
        token, _ = make()
        await token.take(Party("a"))
        b = asyncio.ensure_future(token.take(Party("b")))
        await asyncio.sleep(0)
        b.cancel()
        with pytest.raises(asyncio.CancelledError):
            await b
        assert len(token.waiters) == 0

    run(main())


def test_an_emit_that_raises_on_release_still_wakes_the_waiter() -> None:
    async def main() -> None:
        def emit(party: Party, what: What, **_: object) -> None:
            if what is What.RELEASE:
                raise RuntimeError("observer bug")

        token = Token(emit)
        await token.take(Party("a"))
        waiter = asyncio.ensure_future(token.take(Party("b")))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="observer bug"):
            token.release(Party("a"))
        await asyncio.wait_for(waiter, 1)  # woken anyway: no lost wake-up
        assert token.holder == Party("b")

    run(main())
