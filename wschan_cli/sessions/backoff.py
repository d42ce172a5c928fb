"""The reconnect delays: exponential backoff with jitter, from tenacity's wait strategy.

Delay n (n = 1, 2, ...) is ``first * 2**(n-1) + uniform(0, first)``, capped at ``max_delay``:
the jitter is at most one first delay, so delays never shrink from one attempt to the next
until the cap, while two clients dropped at once do not retry in lockstep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Backoff:
    """Successive reconnect delays; ``reset()`` starts over (after a connection that lasted)."""

    first: float = 1.0
    max_delay: float = 30.0
    tries: int = 0  # attempts allowed in a row; 0: no limit
    attempt: int = 0
    _wait: Any = field(default=None, init=False, repr=False)

    @property
    def exhausted(self) -> bool:
        return self.tries > 0 and self.attempt >= self.tries

    def next_delay(self) -> float:
        """The delay before the next attempt (and count it)."""
        self.attempt += 1
        import tenacity  # here: a session that never reconnects does not need it

        if self._wait is None:
            self._wait = tenacity.wait_exponential_jitter(
                multiplier=self.first, max=self.max_delay, jitter=self.first
            )
        state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = self.attempt
        return float(self._wait(state))

    def reset(self) -> None:
        self.attempt = 0
