"""Client-side adaptive throttling (Google SRE book, "Handling Overload").

Each client remembers, over the last ``window`` seconds, how many requests it made
and how many the dependency accepted. When the dependency rejects most of them, the
client rejects a share of new requests itself, without sending them:

    p = max(0, (requests - k * accepts) / (requests + 1)), capped at max_reject

so the load that reaches a struggling dependency falls towards what it can accept,
while a share of requests keeps probing so recovery is noticed quickly.
"""

from __future__ import annotations

import random as _random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from ._budget import _MIN_WINDOW, _Budget
from ._classify import ErrorClass
from ._core import events
from ._core.clock import MONOTONIC, Clock, RandomSource
from ._core.errors import Throttled
from ._core.events import Event, Listener
from ._core.options import Configured, Options
from ._core.validate import (
    check_int,
    check_number,
    now_function,
)
from ._core.window import SlidingWindow

__all__ = ["AdaptiveThrottle", "ThrottleRejected"]


@dataclass(frozen=True, slots=True)
class ThrottleRejected(Event):
    """A request (or a retry) was rejected locally by adaptive throttling."""

    kind: ClassVar[str] = "throttle.rejected"
    probability: float
    retry: bool


@dataclass(frozen=True)
class AdaptiveThrottleOptions(Options):
    """AdaptiveThrottle's options, validated when built; ``replace()`` copies."""

    k: float = 2.0
    window: float = 120.0
    max_reject: float = 0.9
    minimum_requests: int = 10
    clock: Clock = MONOTONIC
    random: RandomSource = _random.random
    name: str = "adaptive-throttle"
    listeners: Iterable[Listener] = ()

    def _check(self) -> None:
        self._set("k", check_number("k", self.k, low=1.0))
        self._set("window", check_number("window", self.window, low=_MIN_WINDOW))
        self._set("max_reject", check_number("max_reject", self.max_reject, low=0.0, high=1.0))
        check_int("minimum_requests", self.minimum_requests, low=0)


_D = AdaptiveThrottleOptions()
"""AdaptiveThrottle's defaults, where its constructor reads them."""


class AdaptiveThrottle(_Budget, Configured[AdaptiveThrottleOptions]):
    """Client-side adaptive throttling, usable as ``Retry(budget=...)``.

    A rejected first attempt raises ``Throttled``; a rejected retry is simply not
    made (the caller's own error propagates). Every attempt counts as a request;
    successes and non-retryable errors count as accepted.
    """

    options_type = AdaptiveThrottleOptions

    __slots__ = (
        "_k",
        "_listeners",
        "_max_reject",
        "_minimum",
        "_now",
        "_random",
        "_window",
        "_window_seconds",
    )

    _REQUESTS = 0
    _ACCEPTS = 1

    def __init__(
        self,
        *,
        k: float = _D.k,
        window: float = _D.window,
        max_reject: float = _D.max_reject,
        minimum_requests: int = _D.minimum_requests,
        clock: Clock = _D.clock,
        random: RandomSource = _D.random,
        name: str = _D.name,
        listeners: Iterable[Listener] = _D.listeners,
    ) -> None:
        self._configure(
            AdaptiveThrottleOptions(
                k=k,
                window=window,
                max_reject=max_reject,
                minimum_requests=minimum_requests,
                clock=clock,
                random=random,
                name=name,
                listeners=listeners,
            )
        )

    def _configure(self, options: AdaptiveThrottleOptions) -> None:
        """An empty window."""
        self._options = options
        self._start(options.name)
        self._k = options.k
        self._window_seconds = options.window
        self._max_reject = options.max_reject
        self._minimum = options.minimum_requests
        self._now = now_function(options.clock)
        self._random = options.random
        self._listeners = events.check_listeners(options.listeners)
        self._window = SlidingWindow(self._window_seconds, 20, 2)

    @property
    def rejection_probability(self) -> float:
        """The probability that a request made now is rejected locally."""
        with self._lock:
            self._window.advance(self._now())
            return self._probability()

    def _probability(self) -> float:
        requests = self._window.total(self._REQUESTS)
        if requests < self._minimum:
            return 0.0
        p = (requests - self._k * self._window.total(self._ACCEPTS)) / (requests + 1)
        if p <= 0.0:
            return 0.0
        return p if p < self._max_reject else self._max_reject

    def _admit(self, retry: bool) -> bool:
        now = self._now()
        with self._lock:
            self._window.advance(now)
            p = self._probability()
            self._window.add(self._REQUESTS)
        if p == 0.0 or self._random() >= p:
            return True
        if events.active(self._listeners):
            events.emit(ThrottleRejected(self._name, now, p, retry), self._listeners)
        return False

    def on_request(self) -> None:
        if not self._admit(retry=False):
            raise Throttled(self._name, None)

    def try_retry(self, error_class: ErrorClass) -> object | None:
        return 0 if self._admit(retry=True) else None

    def cancel_retry(self, receipt: object) -> None:
        now = self._now()
        with self._lock:
            self._window.advance(now)
            self._window.add(self._REQUESTS, -1)

    def _accept(self) -> None:
        now = self._now()
        with self._lock:
            self._window.advance(now)
            self._window.add(self._ACCEPTS)

    def on_success(self, receipt: object | None) -> None:
        self._accept()

    def on_failure(self, error_class: ErrorClass | None) -> None:
        if error_class is None:  # the dependency answered; it accepted the request
            self._accept()

    def __repr__(self) -> str:
        return (
            f"AdaptiveThrottle(k={self._k:g}, window={self._window_seconds:g}, "
            f"max_reject={self._max_reject:g}, minimum_requests={self._minimum}, "
            f"name={self._name!r})"
        )
