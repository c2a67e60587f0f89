"""A dependency's service tier: concurrency capacity, a bounded FIFO queue, service
times from a distribution, latency that grows with load, and the work it keeps doing
for clients that have already given up (the sustaining effect of metastable failures).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from math import log as _log
from typing import Any

from ._engine import Signal, Simulation
from ._errors import ServerError, ServiceThrottled
from ._series import Names, Series

__all__ = ["Distribution", "Job", "Service", "Slowdown"]


@dataclass(frozen=True)
class Distribution:
    """Service (or network) times: ``"constant"``, ``"exponential"``, ``"lognormal"``
    (``sigma``: the standard deviation of the log) or ``"normal"`` (``sigma``: the
    standard deviation; negative draws are folded back, as network delays are)."""

    kind: str
    mean: float
    sigma: float = 0.5

    def sampler(self, rng: Any) -> Any:
        mean = self.mean
        if self.kind == "constant":
            return lambda: mean
        if self.kind == "exponential":
            rate = 1.0 / mean
            uniform = rng.random
            return lambda: -_log(1.0 - uniform()) / rate  # rng.expovariate(rate), inlined
        sigma = self.sigma
        if self.kind == "normal":
            return lambda: abs(rng.normalvariate(mean, sigma))
        mu = math.log(mean) - sigma * sigma / 2.0
        return lambda: rng.lognormvariate(mu, sigma)


@dataclass(frozen=True)
class Slowdown:
    """Latency that grows with load.

    - ``"rate"``: service times are multiplied by ``factor`` while more than ``above``
      requests per second arrived over the last ``window`` seconds (a database fast
      below 300 QPS and an order of magnitude slower above);
    - ``"concurrency"``: multiplied by ``factor`` while more than ``above`` requests are
      in the system (in service or queued);
    - ``"linear"``: multiplied by ``1 + factor * (in the system - above) / above`` above
      ``above`` requests in the system (contention that grows with concurrency).
    """

    kind: str
    above: float
    factor: float
    window: float = 1.0


class Job(ABC):
    """A request at the service. ``reply(answer)`` is called once, when it is served
    (None, or the service's error) or refused after all (a held request meeting a full
    queue, an expired one dropped). Clients subclass it to take the answer.

    The service never calls ``reply`` in the middle of its own work: answers are
    ready work (``Simulation.call_soon``), given right after the event that settled
    them, in the order they were settled (an event that settles one answer only gives
    it as its last step, which is the same), so a client may send its next request
    from ``reply`` at once."""

    __slots__ = ("deadline", "setup")

    def __init__(self, deadline: float, setup: bool) -> None:
        self.deadline = deadline
        self.setup = setup

    @abstractmethod
    def reply(self, answer: Any) -> None: ...


class _SignalJob(Job):
    """A job whose answer fires a signal (for clients that run as processes)."""

    __slots__ = ("done",)

    def __init__(self, done: Signal, deadline: float, setup: bool) -> None:
        self.done = done
        self.deadline = deadline
        self.setup = setup

    def reply(self, answer: Any) -> None:
        self.done.succeed(answer)


class Service:
    """One dependency endpoint (a regional DynamoDB, a database)."""

    def __init__(
        self,
        sim: Simulation,
        name: str,
        *,
        capacity: int,
        service_time: Distribution,
        queue: int,
        slowdown: Slowdown | None,
        drop_expired: bool,
        setup_time: float,
        error_rate: float,
        series: Series,
    ) -> None:
        self.sim = sim
        self.name = name
        self.capacity = capacity
        self._room = float(capacity)  # capacity x capacity_factor: requests in service
        self._capacity_factor = 1.0
        self.queue_limit = queue
        self.slowdown = slowdown
        self.drop_expired = drop_expired
        self.setup_time = setup_time
        self.error_rate = error_rate
        self.base_error_rate = error_rate
        """The share of requests it fails when no trigger says otherwise."""
        self.reachable = True
        self._random = sim.stream(f"service:{name}")
        self._sample = service_time.sampler(self._random)
        self._mean = service_time.mean
        self._busy = 0
        self._queue: deque[Job] = deque()
        self._held: list[Job] = []
        self._recent: deque[float] = deque()  # arrival times within the slowdown window
        self._counts_rate = slowdown is not None and slowdown.kind == "rate"
        self._series = series
        self._offered = series.counter(Names.offered(name))
        self._served = series.counter(Names.served(name))
        self._wasted = series.counter(Names.wasted(name))
        # Failures are values that nothing raises or changes: one instance serves them all.
        self._throttled = ServiceThrottled(f"{name}: request rate too high")
        self._on_finish = self._finish  # bound once: it is scheduled for every request served
        self._schedule = sim.schedule
        self._answer = sim.call_soon  # answers go out right after the event settling them

    @property
    def capacity_factor(self) -> float:
        """The share of ``capacity`` in force (a capacity drop sets it below 1)."""
        return self._capacity_factor

    @capacity_factor.setter
    def capacity_factor(self, factor: float) -> None:
        self._capacity_factor = factor
        self._room = self.capacity * factor

    @property
    def capacity_rps(self) -> float:
        """Requests per second it can serve at its base speed."""
        return self.capacity / self._mean

    @property
    def in_system(self) -> int:
        return self._busy + len(self._queue)

    def submit(self, deadline: float, setup: bool) -> Signal | ServiceThrottled:
        """Send one request. Returns a signal that fires with the answer (None, or the
        service's error), or the throttling error at once when the queue is full.
        During a partition requests are held in the network (TCP keeps retransmitting
        them) and arrive all at once when it heals, long after their clients gave up."""
        done = Signal(self.sim)
        refused = self.send(_SignalJob(done, deadline, setup))
        return done if refused is None else refused

    def send(self, job: Job) -> ServiceThrottled | None:
        """``submit`` for a job that takes its answer itself (``job.reply``): returns
        the throttling error at once (the job is then dropped), or None."""
        refused = self.admit()
        if refused is None:
            self.accept(job)
        return refused

    def admit(self) -> ServiceThrottled | None:
        """A request arrives: count it, and return the throttling error if there is no
        room for it (it is then refused), else None: ``accept`` its job next."""
        if not self.reachable:
            return None  # held in the network: counted when the partition heals
        sim = self.sim
        self._offered[sim.second] += 1
        if self._counts_rate:
            self._recent.append(sim.now)  # pruned when read (`_start`)
        if self._busy >= self._room and len(self._queue) >= self.queue_limit:
            return self._throttled
        return None

    def accept(self, job: Job) -> None:
        """Take an admitted request: serve it, queue it, or hold it (a partition)."""
        if not self.reachable:
            self._held.append(job)
        elif self._busy < self._room:
            self._start(job)
        else:
            self._queue.append(job)

    def heal(self) -> None:
        """The partition is over: the held requests arrive."""
        self.reachable = True
        held, self._held = self._held, []
        answer = self._answer
        for job in held:
            refused = self.admit()
            if refused is None:
                self.accept(job)
            else:
                answer(job.reply, refused)

    def _load_factor(self, slowdown: Slowdown) -> float:
        """How much slower than its base speed a "concurrency" or "linear" slowdown
        makes it serve now (1.0: not slowed)."""
        load = self.in_system
        if slowdown.kind == "concurrency":
            return slowdown.factor if load > slowdown.above else 1.0
        excess = load - slowdown.above
        return 1.0 + slowdown.factor * excess / slowdown.above if excess > 0 else 1.0

    def _start(self, job: Job) -> None:
        self._busy += 1
        duration = self._sample()
        slowdown = self.slowdown
        if slowdown is not None:
            if self._counts_rate:
                # Arrivals within the window before the latest arrival (pruned here rather
                # than on each arrival: the same count, read less often than written).
                recent = self._recent
                if recent:
                    horizon = recent[-1] - slowdown.window
                    while recent[0] <= horizon:
                        recent.popleft()
                if len(recent) / slowdown.window > slowdown.above:
                    duration *= slowdown.factor
            else:
                duration *= self._load_factor(slowdown)
        if job.setup:
            duration += self.setup_time
        self._schedule(self.sim.now + duration, self._on_finish, job)

    def _finish(self, job: Job) -> None:
        self._busy -= 1
        sim = self.sim
        now = sim.now
        second = sim.second
        self._served[second] += 1
        if now > job.deadline:
            self._wasted[second] += 1  # nobody is waiting for this answer
        answer = None
        if self.error_rate and self._random.random() < self.error_rate:
            answer = ServerError(f"{self.name}: internal error")
        dropped = False
        queue = self._queue
        while queue and self._busy < self._room:
            waiting = queue.popleft()
            if self.drop_expired and now >= waiting.deadline:
                expired = ServiceThrottled(f"{self.name}: request expired in queue")
                self._answer(waiting.reply, expired)
                dropped = True
                continue
            self._start(waiting)
        if dropped:
            self._answer(job.reply, answer)  # after the answers already ready
        else:  # the event's last step, with nothing ready: the same, without the queue
            job.reply(answer)

    def grow(self) -> None:
        """Capacity went up: start queued work it now has room for."""
        queue = self._queue
        while queue and self._busy < self._room:
            self._start(queue.popleft())
