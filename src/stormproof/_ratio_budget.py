"""RatioBudget: retries limited to a share of recent requests, plus a floor (Finagle's
RetryBudget, Linkerd)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._budget import _MIN_WINDOW, _Budget
from ._classify import ErrorClass
from ._core.clock import MONOTONIC, Clock
from ._core.options import Configured, Options
from ._core.validate import check_number, exact, now_function
from ._core.window import SlidingWindow

__all__ = ["RatioBudget", "RatioBudgetOptions"]


@dataclass(frozen=True)
class RatioBudgetOptions(Options):
    """RatioBudget's options, validated when built; ``replace()`` copies."""

    ratio: float = 0.1
    min_per_second: float = 10.0
    window: float = 10.0
    clock: Clock = MONOTONIC
    name: str = "ratio-budget"

    def _check(self) -> None:
        self._set("ratio", check_number("ratio", self.ratio, low=0.0, high=1000.0))
        self._set(
            "min_per_second",
            check_number("min_per_second", self.min_per_second, low=0.0, high=1e9),
        )
        self._set("window", check_number("window", self.window, low=_MIN_WINDOW, high=1e9))


_RB = RatioBudgetOptions()


class RatioBudget(_Budget, Configured[RatioBudgetOptions]):
    """Retries limited to a share of recent requests, plus a floor (Finagle, Linkerd).

    Over the last ``window`` seconds, at most ``min_per_second * window + ratio *
    requests`` retries are made. With the defaults, retries add at most 10% to the
    load once traffic exceeds 100 requests per second.
    """

    options_type = RatioBudgetOptions

    __slots__ = ("_floor", "_now", "_ratio", "_unit", "_window", "_window_seconds")

    _REQUESTS = 0
    _RETRIES = 1

    def __init__(
        self,
        *,
        ratio: float = _RB.ratio,
        min_per_second: float = _RB.min_per_second,
        window: float = _RB.window,
        clock: Clock = _RB.clock,
        name: str = _RB.name,
    ) -> None:
        self._configure(
            RatioBudgetOptions(
                ratio=ratio, min_per_second=min_per_second, window=window, clock=clock, name=name
            )
        )

    def _configure(self, options: RatioBudgetOptions) -> None:
        """Count in units of the options; an empty window."""
        self._options = options
        self._start(options.name)
        self._window_seconds = options.window
        # Exact: the floor and the ratio in whole units of one fraction, so the balance
        # never drifts and "one retry left" is decided exactly.
        floor = exact(options.min_per_second) * exact(options.window)
        ratio = exact(options.ratio)
        unit = math.lcm(floor.denominator, ratio.denominator)
        self._unit = unit
        self._floor = int(floor * unit)
        self._ratio = int(ratio * unit)
        self._now = now_function(options.clock)
        self._window = SlidingWindow(self._window_seconds, 10, 2)

    @property
    def available(self) -> float:
        """Retries that may start now."""
        with self._lock:
            self._window.advance(self._now())
            return max(0, self._balance()) / self._unit

    def _balance(self) -> int:
        """The retries that may start now, in units (``self._unit`` to a retry)."""
        window = self._window
        return (
            self._floor
            + self._ratio * window.total(self._REQUESTS)
            - self._unit * window.total(self._RETRIES)
        )

    def on_request(self) -> None:
        now = self._now()
        with self._lock:
            self._window.advance(now)
            self._window.add(self._REQUESTS)

    def try_retry(self, error_class: ErrorClass) -> object | None:
        now = self._now()
        with self._lock:
            self._window.advance(now)
            if self._balance() < self._unit:
                return None
            self._window.add(self._RETRIES)
        return 1

    def cancel_retry(self, receipt: object) -> None:
        now = self._now()
        with self._lock:
            self._window.advance(now)
            self._window.add(self._RETRIES, -1)

    def on_success(self, receipt: object | None) -> None:
        return None

    def _retry_after(self) -> float | None:
        return self._window.seconds_until_next_slice(self._now())

    def __repr__(self) -> str:
        return (
            f"RatioBudget(ratio={self._ratio / self._unit:g}, min_per_second="
            f"{self._floor / self._unit / self._window_seconds:g}, "
            f"window={self._window_seconds:g}, name={self._name!r})"
        )
