"""A sliding time window of integer counters, cut into fixed slices.

Used by budgets and throttles that look at "the last N seconds". Not thread-safe:
the owner holds its lock around ``advance``/``add``. Running totals are exact
(integers), so no drift accumulates over a long-lived process.
"""

from __future__ import annotations

__all__ = ["SlidingWindow"]


class SlidingWindow:
    __slots__ = ("_counters", "_current", "_slices", "_table", "_totals", "_width")

    def __init__(self, window: float, slices: int, counters: int) -> None:
        self._width = window / slices
        self._slices = slices
        self._counters = counters
        self._table = [[0] * counters for _ in range(slices)]
        self._totals = [0] * counters
        self._current: int | None = None

    def advance(self, now: float) -> None:
        """Move the window so that it ends at ``now``; counts older than it drop out."""
        index = int(now // self._width)
        current = self._current
        if current is not None and index <= current:  # same slice, or a clock step back
            return
        if current is None or index - current >= self._slices:
            for row in self._table:
                for i in range(self._counters):
                    row[i] = 0
            self._totals = [0] * self._counters
        else:
            totals = self._totals
            for step in range(current + 1, index + 1):
                row = self._table[step % self._slices]
                for i in range(self._counters):
                    totals[i] -= row[i]
                    row[i] = 0
        self._current = index

    def add(self, counter: int, amount: int = 1) -> None:
        """Add to the current slice (call ``advance`` first)."""
        assert self._current is not None
        self._table[self._current % self._slices][counter] += amount
        self._totals[counter] += amount

    def total(self, counter: int) -> int:
        return self._totals[counter]

    def seconds_until_next_slice(self, now: float) -> float:
        return self._width - (now % self._width)
