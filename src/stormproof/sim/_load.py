"""Traffic: callers grouped into app instances, and the keys they ask for: Poisson
arrivals (``OpenLoop``), arrivals read from a trace (``TraceLoop``), or users who wait
for each answer (``ClosedLoop``)."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from math import floor
from math import log as _log
from typing import Any

from ._engine import Simulation

__all__ = ["ClosedLoop", "KeySpace", "OpenLoop", "RequestMix", "Trace", "TraceLoop"]


@dataclass(frozen=True)
class Trace:
    """Requests read from a file (``path``): their arrival ``times`` (seconds into the
    run, in order), and, if the file gives them, their ``ops`` (``"read"`` or
    ``"write"``) and ``keys`` (key numbers: the file's keys, numbered in the order
    they first appear)."""

    path: str
    times: tuple[float, ...]
    ops: tuple[str, ...] | None = None
    keys: tuple[int, ...] | None = None


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


class RequestMix:
    """What each request asks for: an operation (``"read"`` for ``read_share`` of them,
    else ``"write"``) and a key from ``keys`` (0 when no client looks keys up). Each is
    drawn from a stream of its own, and only when it can make a difference: with one
    operation and no keys (``fixed``), nothing is drawn."""

    __slots__ = ("_rand", "_read_share", "_sample", "fixed", "mixed", "op")

    def __init__(self, sim: Simulation, read_share: float, keys: KeySpace | None) -> None:
        self.mixed = 0.0 < read_share < 1.0
        self.op = "read" if read_share >= 1.0 else "write"
        self.fixed = not self.mixed and keys is None
        self._read_share = read_share
        self._rand = sim.stream("operations").random
        self._sample = None if keys is None else keys.sample

    def draw(self) -> tuple[str, int]:
        op = self.op
        if self.mixed:
            op = "read" if self._rand() < self._read_share else "write"
        return op, (0 if self._sample is None else self._sample())

    def draw_op(self) -> str:
        """An operation alone (as ``draw`` draws it)."""
        if self.mixed:
            return "read" if self._rand() < self._read_share else "write"
        return self.op

    def draw_key(self) -> int:
        """A key alone (as ``draw`` draws it)."""
        return 0 if self._sample is None else self._sample()


class OpenLoop:
    """Poisson arrivals at ``rate`` requests per second (times ``factor``, which load
    triggers change), spread evenly over the app instances: ``arrive[i](op, key)``
    starts a request at instance ``i``, and ``requests`` counts it in its second."""

    def __init__(
        self,
        sim: Simulation,
        rate: float,
        arrive: Sequence[Callable[[str, int], None]],
        mix: RequestMix,
        requests: list[float],
        until: float,
    ) -> None:
        self.sim = sim
        self.rate = rate
        self.factor = 1.0
        self.instances = len(arrive)
        self._arrive = list(arrive)
        self._mix = mix
        self._requests = requests
        self._until = until
        self._uniform = sim.stream("arrivals").random
        self._on_next = self._next  # bound once: it is scheduled for every arrival
        self._schedule = sim.schedule
        sim.after(-_log(1.0 - self._uniform()) / rate, self._on_next)

    def _next(self, _: object) -> None:
        sim = self.sim
        if sim.now >= self._until:
            return
        uniform = self._uniform
        arrive = self._arrive[floor(uniform() * self.instances)]  # int(), not a class call
        self._requests[sim.second] += 1
        mix = self._mix
        if mix.fixed:
            arrive(mix.op, 0)
        else:
            arrive(*mix.draw())
        rate = self.rate * self.factor
        if rate > 0.0:  # after expovariate(rate), inlined (the same draw)
            schedule = self._schedule
            schedule(sim.now - _log(1.0 - uniform()) / rate, self._on_next)
        else:  # no traffic for now: look again in a second
            sim.after(1.0, self._on_next)


class TraceLoop:
    """Requests at the instants of a ``trace``, each at an app instance drawn at random
    (``arrive[i](op, key)`` starts it at instance ``i``; ``requests`` counts it in its
    second), with the trace's operation and key, or, where the trace gives none, ones
    drawn from ``mix``. ``factor`` is there for the world's sake: a trace's traffic is
    what it is (load triggers are refused with it)."""

    def __init__(
        self,
        sim: Simulation,
        trace: Trace,
        arrive: Sequence[Callable[[str, int], None]],
        mix: RequestMix,
        requests: list[float],
    ) -> None:
        self.sim = sim
        self.factor = 1.0
        self.instances = len(arrive)
        self._trace = trace
        self._arrive = list(arrive)
        self._mix = mix
        self._requests = requests
        self._index = 0
        self._uniform = sim.stream("arrivals").random
        self._on_next = self._next
        if trace.times:
            sim.at(trace.times[0], self._on_next)

    def _next(self, _: object) -> None:
        sim = self.sim
        trace = self._trace
        index = self._index
        self._index = index + 1
        arrive = self._arrive[int(self._uniform() * self.instances)]
        self._requests[sim.second] += 1
        op = self._mix.draw_op() if trace.ops is None else trace.ops[index]
        key = self._mix.draw_key() if trace.keys is None else trace.keys[index]
        arrive(op, key)
        if index + 1 < len(trace.times):
            sim.schedule(trace.times[index + 1], self._on_next)


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
