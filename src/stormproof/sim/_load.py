"""Traffic: callers grouped into app instances, and the keys they ask for."""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Callable, Generator
from math import log as _log
from typing import Any

from ._engine import Simulation

_push = heapq.heappush

__all__ = ["ClosedLoop", "KeySpace", "OpenLoop"]


class KeySpace:
    """``size`` keys whose popularity follows Zipf's law with exponent ``skew``
    (0: uniform). ``sample()`` returns a key index, 0 being the most popular."""

    def __init__(self, sim: Simulation, size: int, skew: float) -> None:
        self._size = size
        self._uniform = skew == 0.0
        weights = [1.0 / (rank**skew) for rank in range(1, size + 1)]
        total = sum(weights)
        self._cdf = list(itertools.accumulate(w / total for w in weights))
        self._cdf[-1] = 1.0
        self._random = sim.stream("keys").random
        self._bisect = bisect.bisect_left

    def sample(self) -> int:
        if self._uniform:
            return int(self._random() * self._size)
        return self._bisect(self._cdf, self._random())


class OpenLoop:
    """Poisson arrivals at ``rate`` requests per second (times ``factor``, which load
    triggers change), spread over ``instances``: ``arrive(instance)`` per request."""

    def __init__(
        self,
        sim: Simulation,
        rate: float,
        instances: int,
        arrive: Callable[[int], None],
        until: float,
    ) -> None:
        self.sim = sim
        self.rate = rate
        self.factor = 1.0
        self.instances = instances
        self._arrive = arrive
        self._until = until
        self._uniform = sim.stream("arrivals").random
        sim.after(-_log(1.0 - self._uniform()) / rate, self._next)

    def _next(self, _: object) -> None:
        sim = self.sim
        if sim.now >= self._until:
            return
        uniform = self._uniform
        self._arrive(int(uniform() * self.instances))
        rate = self.rate * self.factor
        if rate > 0:
            # sim.after(expovariate(rate), ...), inlined (the same draw and event): it
            # runs per arrival
            _push(
                sim._queue,
                (sim.now - _log(1.0 - uniform()) / rate, sim._ticket(), self._next, None),
            )
        else:  # no traffic for now: look again in a second
            sim.after(1.0, self._next)


class ClosedLoop:
    """``users`` users, each thinking (exponential, mean ``think_time / factor``), then
    sending one request and waiting for its outcome, retries included, before thinking
    again: the load can never exceed ``users`` requests in flight. User ``u`` belongs to
    app instance ``u % instances``; ``request(instance)`` is the request's process."""

    def __init__(
        self,
        sim: Simulation,
        users: int,
        think_time: float,
        instances: int,
        request: Callable[[int], Generator[Any, Any, Any]],
        until: float,
    ) -> None:
        self.sim = sim
        self.factor = 1.0
        self._rate = 1.0 / think_time
        self._request = request
        self._until = until
        self._expo = sim.stream("arrivals").expovariate
        for user in range(users):
            sim.start(self._user(user % instances))

    def _user(self, instance: int) -> Generator[Any, Any, None]:
        sim = self.sim
        while True:
            factor = self.factor
            yield self._expo(self._rate * factor) if factor > 0 else 1.0
            if sim.now >= self._until:
                return
            if self.factor > 0:
                yield from self._request(instance)
