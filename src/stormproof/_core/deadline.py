"""Deadlines that propagate through the call stack (contextvars).

``with deadline(2.0):`` gives everything called inside, sync or async, two seconds.
Nested deadlines only shrink. Policies honour it: Retry starts no attempt and no
sleep that cannot finish in time, Bulkhead waits no longer than what is left, and
``remaining()`` tells user code and integrations how much time is left.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

from .clock import Clock
from .errors import DeadlineExceeded
from .validate import check_clock, check_number, now_function

__all__ = ["Deadline", "current", "deadline", "remaining"]


class Deadline:
    """An instant on a clock by which the work in progress must be done."""

    __slots__ = ("clock", "expires_at", "now")

    def __init__(self, expires_at: float, clock: Clock) -> None:
        self.expires_at = expires_at
        self.clock = clock
        self.now = now_function(clock)

    def remaining(self) -> float:
        """Seconds left; 0.0 once expired."""
        left = self.expires_at - self.now()
        return left if left > 0.0 else 0.0

    def expires_on(self, clock: Clock, now: float) -> float:
        """This deadline as an instant on ``clock``, whose time is ``now``."""
        if clock is self.clock:
            return self.expires_at
        return now + self.remaining()

    def check(self, policy: str) -> None:
        """Raise ``DeadlineExceeded`` if no time is left."""
        if self.expires_at <= self.now():
            raise DeadlineExceeded(f"{policy}: the deadline has passed")


_CURRENT: ContextVar[Deadline | None] = ContextVar("stormproof.deadline", default=None)


def current() -> Deadline | None:
    """The innermost deadline in effect here, or None."""
    return _CURRENT.get()


def remaining() -> float | None:
    """Seconds left before the current deadline (0.0 once passed), or None if there is none."""
    active = _CURRENT.get()
    return None if active is None else active.remaining()


class deadline:
    """Give the code inside at most ``seconds`` (a context manager, sync or async code).

    A deadline inside another only shrinks it: the effective deadline is the earlier
    of the two. ``clock`` defaults to the monotonic clock.
    """

    __slots__ = ("_clock", "_seconds", "_token", "deadline")

    def __init__(self, seconds: float, *, clock: Clock | None = None) -> None:
        self._seconds = check_number("seconds", seconds, low=0.0)
        self._clock = check_clock(clock)
        self._token: Token[Deadline | None] | None = None
        self.deadline: Deadline | None = None

    def __enter__(self) -> Deadline:
        now = now_function(self._clock)()
        expires_at = now + self._seconds
        outer = _CURRENT.get()
        if outer is not None:
            expires_at = min(expires_at, outer.expires_on(self._clock, now))
        self.deadline = Deadline(expires_at, self._clock)
        self._token = _CURRENT.set(self.deadline)
        return self.deadline

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None

    def __repr__(self) -> str:
        return f"deadline({self._seconds!r})"
