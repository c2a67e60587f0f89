"""A dependency's service tier: concurrency capacity, an optional request-rate limit (a
token bucket), a bounded queue served first in first out, last in first out or under
CoDel, service times from a distribution (per operation if asked), latency that grows
with load, and the work it keeps doing for clients that have already given up (the
sustaining effect of metastable failures).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from math import log as _log
from typing import Any

from ._engine import Signal, Simulation
from ._errors import ServerError, ServiceThrottled, timed_out
from ._series import Names, Series

__all__ = ["DISCIPLINES", "Distribution", "Job", "Service", "Slowdown", "lognormal_sigma"]

DISCIPLINES = ("fifo", "lifo", "codel")
"""The queue disciplines a service can have (``Service(discipline=...)``)."""

_Z99 = 2.3263478740408408
"""The standard normal distribution's 99th percentile."""


@dataclass(frozen=True)
class Distribution:
    """Service (or network) times, in seconds, with mean ``mean``: ``"constant"``,
    ``"exponential"``, ``"lognormal"`` (``sigma``: the standard deviation of the
    logarithm, unit-less; ``lognormal_sigma`` finds it from a 99th percentile) or
    ``"normal"`` (``stddev``: the standard deviation, in seconds; negative draws are
    folded back, as network delays are)."""

    kind: str
    mean: float
    sigma: float = 0.5
    stddev: float = 0.0

    def sampler(self, rng: Any) -> Any:
        mean = self.mean
        if self.kind == "constant":
            return lambda: mean
        if self.kind == "exponential":
            rate = 1.0 / mean
            uniform = rng.random
            return lambda: -_log(1.0 - uniform()) / rate  # rng.expovariate(rate), inlined
        if self.kind == "normal":
            stddev = self.stddev
            return lambda: abs(rng.normalvariate(mean, stddev))
        sigma = self.sigma
        mu = math.log(mean) - sigma * sigma / 2.0
        return lambda: rng.lognormvariate(mu, sigma)


def lognormal_sigma(mean: float, p99: float) -> float | None:
    """The ``sigma`` (standard deviation of the logarithm) of the lognormal distribution
    with mean ``mean`` and 99th percentile ``p99`` (seconds both), or None if there is
    none: ``p99`` must be above the mean and at most about 15 times it. Of the two
    solutions of ``ln(p99 / mean) = z * sigma - sigma**2 / 2`` (z, the standard normal's
    99th percentile), the smaller: the other puts most of the mean in a far tail."""
    if not 0.0 < mean < p99:
        return None
    ratio = math.log(p99 / mean)
    discriminant = _Z99 * _Z99 - 2.0 * ratio
    if discriminant < 0.0:
        return None
    return _Z99 - math.sqrt(discriminant)


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

    ``deadline``: the instant after which nobody uses its answer (work done past it is
    wasted, and ``drop_expired`` drops it); ``setup``: it opens a connection; ``op``:
    ``"read"`` or ``"write"`` (a service with per-operation service times reads it);
    ``queued``: when it joined the queue (kept only under CoDel).

    The service never calls ``reply`` in the middle of its own work: answers are
    ready work (``Simulation.call_soon``), given right after the event that settled
    them, in the order they were settled (an event that settles one answer only gives
    it as its last step, which is the same), so a client may send its next request
    from ``reply`` at once."""

    __slots__ = ("deadline", "op", "queued", "setup")

    queued: float

    def __init__(self, deadline: float, setup: bool, op: str = "read") -> None:
        self.deadline = deadline
        self.setup = setup
        self.op = op

    @abstractmethod
    def reply(self, answer: Any) -> None: ...


class _SignalJob(Job):
    """A job whose answer fires a signal (for clients that run as processes)."""

    __slots__ = ("done",)

    def __init__(self, done: Signal, deadline: float, setup: bool, op: str) -> None:
        self.done = done
        self.deadline = deadline
        self.setup = setup
        self.op = op

    def reply(self, answer: Any) -> None:
        self.done.succeed(answer)


class _Call(Job):
    """A service's call to its own dependency for one of its requests (``origin``):
    ``left`` calls it may still make for it (this one included); its own work on it
    ended at ``started``. The first of its answer and its timeout tells ``caller``;
    an answer crosses the network in ``back`` seconds."""

    __slots__ = ("back", "caller", "left", "live", "origin", "started")

    def __init__(
        self, caller: Service, origin: Job, left: int, started: float, deadline: float, back: float
    ) -> None:
        self.caller = caller
        self.origin = origin
        self.left = left
        self.started = started
        self.deadline = deadline
        self.setup = False
        self.op = origin.op
        self.back = back
        self.live = True

    def reply(self, answer: Any) -> None:
        if not self.live:
            return
        if self.back:
            sim = self.caller.sim
            sim.schedule(sim.now + self.back, self._arrived, answer)
        else:
            self._arrived(answer)

    def _arrived(self, answer: Any) -> None:
        if self.live:
            self.live = False
            self.caller._called(self, answer)

    def expire(self) -> None:
        if self.live:
            self.live = False
            self.caller._called(self, self.caller._call_timed_out)


def _expire_call(call: _Call) -> None:
    call.expire()


def _deliver_call(call: _Call) -> None:
    """A call crossed the network to the dependency: it arrives there."""
    dependency = call.caller.calls
    assert dependency is not None
    refused = dependency.send(call)
    if refused is not None:
        call.reply(refused)


class Service:
    """One dependency endpoint (a regional DynamoDB, a database).

    Besides its ``capacity`` (requests in service at once) and its ``queue`` (places):

    - ``write_service_time``: writes' service times (None: as reads', ``service_time``);
    - ``rate_limit``: requests per second it admits, as a token bucket of ``burst``
      tokens (requests) refilled at that rate, full at the start; a request finding no
      token is refused at once with the throttling error (as DynamoDB's provisioned
      capacity refuses with ProvisionedThroughputExceededException);
    - ``discipline``: which queued request is served next: ``"fifo"`` (the oldest),
      ``"lifo"`` (the newest) or ``"codel"`` (the oldest, under the controlled-delay
      shedding of Facebook's CoDel for request queues, folly's ``Codel``: over each
      ``codel_interval`` seconds it keeps the smallest queueing delay of the requests it
      took; if that minimum exceeded ``codel_target``, the service is overloaded for the
      next interval, and while overloaded it refuses, when their turn comes, requests
      that waited more than twice the target; requests served without waiting count as
      waiting 0 s);
    - ``drop_expired``: a queued request whose deadline passed is refused when its turn
      comes instead of served;
    - ``calls``: a service of its own it calls for every request, once its own work on
      the request is done, holding the request's place meanwhile (a thread blocked on
      a downstream call): each call waits at most ``call_timeout`` seconds, over a
      network with round trips from ``call_rtt`` (None: none), and a failed or timed
      out call is made again at once, ``call_attempts`` calls in all; when none
      succeeded, the request fails (HTTP 500).

    It measures its ``busy_time`` (server-seconds of the work it started), the part of
    it done after the client had given up (``wasted_time``), and the longest its queue
    has been (``max_queued``); ``queued`` is its queue's length."""

    # Settings whose defaults are class attributes: an instance holds one only when it
    # differs, which keeps its attributes few enough (at most 30) for CPython's fastest
    # lookups, those of an object whose attributes are not in a dictionary of its own.
    by_op = False
    """Whether its service times depend on the operation (read or write)."""
    discipline = "fifo"
    calls: Service | None = None
    slowdown: Slowdown | None = None
    drop_expired = False
    setup_time = 0.0
    error_rate = 0.0
    base_error_rate = 0.0
    """The share of requests it fails when no trigger says otherwise."""
    _capacity_factor = 1.0
    _by_rate: Slowdown | None = None
    """Its ``slowdown`` when it is of kind ``"rate"``: its arrivals are then counted."""
    _lifo = False
    _codel = False

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
        write_service_time: Distribution | None = None,
        rate_limit: float | None = None,
        burst: float = 0.0,
        discipline: str = "fifo",
        codel_target: float = 0.005,
        codel_interval: float = 0.1,
        calls: Service | None = None,
        call_timeout: float = 1.0,
        call_attempts: int = 1,
        call_rtt: Callable[[], float] | None = None,
    ) -> None:
        if discipline not in DISCIPLINES:
            raise ValueError(f"discipline must be one of {DISCIPLINES}, got {discipline!r}")
        self.sim = sim
        self.name = name
        self.capacity = capacity
        # Requests in service at once: capacity x capacity_factor, rounded up (a count of
        # requests is below one exactly when below the other), an int as the count it is
        # compared with: CPython compares two ints faster than an int and a float.
        self._room = capacity
        self.queue_limit = queue
        if slowdown is not None:
            self.slowdown = slowdown
            if slowdown.kind == "rate":
                self._by_rate = slowdown
                self._recent: deque[float] = deque()  # arrivals within the slowdown window
        if setup_time:
            self.setup_time = setup_time
        if error_rate:
            self.error_rate = self.base_error_rate = error_rate
        self.reachable = True
        self._random = sim.stream(f"service:{name}")
        self._sample = service_time.sampler(self._random)
        self._mean = service_time.mean
        self._busy = 0
        self._queue: deque[Job] = deque()
        self._held: list[Job] = []
        self._series = series
        self._offered = series.counter(Names.offered(name))
        self._served = series.counter(Names.served(name))
        self._wasted = series.counter(Names.wasted(name))
        self.busy_time = 0.0
        """Server-seconds of the work it started (each request's service time)."""
        self.wasted_time = 0.0
        """Server-seconds of it done after the client had given up: the part of each
        service time past the instant its answer could still be used."""
        self.max_queued = 0
        """The longest the queue has been."""
        # Failures are values that nothing raises or changes: one instance serves them all.
        self._throttled = ServiceThrottled(f"{name}: request rate too high")
        self._on_finish = self._finish  # bound once: it is scheduled for every request served
        self._schedule = sim.schedule
        # Features that are off cost nothing: their code paths are chosen here, once.
        if write_service_time is not None:
            self._time_writes(write_service_time)
        if rate_limit is not None:
            self._limit_rate(rate_limit, burst)
        if drop_expired:
            self.drop_expired = True
            self._on_finish = self._finish_any  # its queue refuses what expired in it
        self._choose_discipline(discipline, codel_target, codel_interval)
        if calls is not None:
            self._call_with(calls, call_timeout, call_attempts, call_rtt)

    def _call_with(
        self, calls: Service, timeout: float, attempts: int, rtt: Callable[[], float] | None
    ) -> None:
        """Call ``calls`` for every request once its own work is done (see the class)."""
        self.calls = calls
        self._call_timeout = timeout
        self._call_attempts = attempts
        self._call_rtt = rtt
        self._call_timed_out = timed_out(calls.name, timeout)
        self._dependency_failed = ServerError(f"{self.name}: {calls.name} failed")
        self._on_finish = self._call_out

    def _time_writes(self, write_service_time: Distribution) -> None:
        """Writes take their times from ``write_service_time``, reads from its own."""
        self.by_op = True
        write = write_service_time.sampler(self.sim.stream(f"service:{self.name}:write"))
        self._samples = {"read": self._sample, "write": write}
        self._start = self._start_by_op  # type: ignore[method-assign]

    def _limit_rate(self, rate: float, burst: float) -> None:
        """Admit at most ``rate`` requests per second, in bursts of ``burst``."""
        self._rate = rate
        self._burst = self._tokens = burst
        self._refilled = 0.0
        self._rate_throttled = ServiceThrottled(f"{self.name}: provisioned rate exceeded")
        self.admit = self._admit_limited  # type: ignore[method-assign]

    def _choose_discipline(self, discipline: str, target: float, interval: float) -> None:
        """The code paths of a queue discipline other than FIFO (CoDel's ``target``
        and ``interval`` in seconds)."""
        if discipline == "fifo":
            return
        self.discipline = discipline
        self._lifo = discipline == "lifo"
        self._codel = discipline == "codel"
        self._on_finish = self._finish_any
        self.grow = self._grow_any  # type: ignore[method-assign]
        if self._codel:
            self._target = target
            self._interval = interval
            self._interval_end = interval
            self._min_delay = 0.0
            self._reset = False
            self._overloaded = False
            self._shed = ServiceThrottled(f"{self.name}: request shed after queueing too long")
            self.accept = self._accept_codel  # type: ignore[method-assign]

    @property
    def capacity_factor(self) -> float:
        """The share of ``capacity`` in force (a capacity drop sets it below 1)."""
        return self._capacity_factor

    @capacity_factor.setter
    def capacity_factor(self, factor: float) -> None:
        self._capacity_factor = factor
        self._room = math.ceil(self.capacity * factor)

    @property
    def capacity_rps(self) -> float:
        """Requests per second it can serve at its base speed (reads' service time)."""
        return self.capacity / self._mean

    @property
    def in_system(self) -> int:
        return self._busy + len(self._queue)

    @property
    def queued(self) -> int:
        """Requests waiting in its queue now."""
        return len(self._queue)

    def submit(self, deadline: float, setup: bool, op: str = "read") -> Signal | ServiceThrottled:
        """Send one request. Returns a signal that fires with the answer (None, or the
        service's error), or the throttling error at once when the queue is full.
        During a partition requests are held in the network (TCP keeps retransmitting
        them) and arrive all at once when it heals, long after their clients gave up."""
        done = Signal(self.sim)
        refused = self.send(_SignalJob(done, deadline, setup, op))
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
        if self._by_rate is not None:
            self._recent.append(sim.now)  # pruned when read (`_start`)
        if self._busy >= self._room and len(self._queue) >= self.queue_limit:
            return self._throttled
        return None

    def _admit_limited(self) -> ServiceThrottled | None:
        """``admit`` behind the token bucket of ``rate_limit``: a request that finds no
        token (or no room) is refused; one admitted takes a token."""
        if not self.reachable:
            return None
        sim = self.sim
        now = sim.now
        self._offered[sim.second] += 1
        if self._by_rate is not None:
            self._recent.append(now)
        tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        self._tokens = tokens
        if tokens < 1.0:
            return self._rate_throttled
        if self._busy >= self._room and len(self._queue) >= self.queue_limit:
            return self._throttled
        self._tokens = tokens - 1.0
        return None

    def accept(self, job: Job) -> None:
        """Take an admitted request: serve it, queue it, or hold it (a partition)."""
        if not self.reachable:
            self._held.append(job)
        elif self._busy < self._room:
            self._start(job)
        else:
            queue = self._queue
            queue.append(job)
            if len(queue) > self.max_queued:  # noqa: PLR1730 (no call: a hot path)
                self.max_queued = len(queue)

    def _accept_codel(self, job: Job) -> None:
        """``accept`` under CoDel: a request served at once waited 0 s; one queued keeps
        the instant it joined."""
        if not self.reachable:
            self._held.append(job)
        elif self._busy < self._room:
            self._sheds(0.0, self.sim.now)  # never shed: below twice the target
            self._start(job)
        else:
            queue = self._queue
            job.queued = self.sim.now
            queue.append(job)
            self.max_queued = max(self.max_queued, len(queue))

    def _sheds(self, delay: float, now: float) -> bool:
        """CoDel as folly's ``Codel::overloaded`` has it: a request leaves the queue
        after ``delay`` seconds in it; whether to shed it."""
        if now > self._interval_end:  # a new interval: judge the one that ended
            self._interval_end = now + self._interval
            self._overloaded = self._min_delay > self._target
            self._reset = True
        if self._reset:  # the first request of an interval is never shed
            self._reset = False
            self._min_delay = delay
            return False
        self._min_delay = min(self._min_delay, delay)
        return self._overloaded and delay > 2.0 * self._target

    def heal(self) -> None:
        """The partition is over: the held requests arrive."""
        self.reachable = True
        held, self._held = self._held, []
        answer = self.sim.call_soon
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
        sample = self._sample  # an attribute called from a local: CPython's faster call
        duration = sample()
        slowdown = self._by_rate
        if slowdown is not None:
            # Arrivals within the window before the latest arrival (pruned here rather
            # than on each arrival: the same count, read less often than written).
            recent = self._recent
            if recent:
                horizon = recent[-1] - slowdown.window
                while recent[0] <= horizon:
                    recent.popleft()
            if len(recent) / slowdown.window > slowdown.above:
                duration *= slowdown.factor
        elif self.slowdown is not None:
            duration *= self._load_factor(self.slowdown)
        if job.setup:
            duration += self.setup_time
        now = self.sim.now
        self.busy_time += duration
        end = now + duration
        deadline = job.deadline
        if end > deadline:  # the client gives up before the answer is ready
            self.wasted_time += duration if now >= deadline else end - deadline
        schedule = self._schedule
        schedule(end, self._on_finish, job)

    def _start_by_op(self, job: Job) -> None:
        """``_start`` with service times by the job's operation: its sampler, then the
        same start."""
        self._sample = self._samples[job.op]
        Service._start(self, job)

    def _finish(self, job: Job) -> None:
        """A request was served, under FIFO with nothing refused from the queue (a
        service that may refuse queued requests finishes with ``_finish_any``)."""
        self._busy -= 1
        sim = self.sim
        second = sim.second
        self._served[second] += 1
        if sim.now > job.deadline:
            self._wasted[second] += 1  # nobody is waiting for this answer
        answer = None
        if self.error_rate and self._random.random() < self.error_rate:
            answer = ServerError(f"{self.name}: internal error")
        queue = self._queue
        while queue and self._busy < self._room:
            self._start(queue.popleft())
        job.reply(answer)  # the event's last step: the same as an answer made ready

    def _take(self, now: float) -> bool:
        """Start queued work while there is room, in the order of the discipline
        (``"lifo"`` or ``"codel"``), refusing what it drops. Returns whether it refused
        some."""
        dropped = False
        queue = self._queue
        take = queue.pop if self._lifo else queue.popleft
        while queue and self._busy < self._room:
            waiting = take()
            if self.drop_expired and now >= waiting.deadline:
                expired = ServiceThrottled(f"{self.name}: request expired in queue")
                self.sim.call_soon(waiting.reply, expired)
                dropped = True
                continue
            if self._codel and self._sheds(now - waiting.queued, now):
                self.sim.call_soon(waiting.reply, self._shed)
                dropped = True
                continue
            self._start(waiting)
        return dropped

    def _finish_any(self, job: Job) -> None:
        """``_finish`` for a queue that may refuse requests when their turn comes (a
        discipline other than FIFO, or ``drop_expired``)."""
        self._busy -= 1
        sim = self.sim
        now = sim.now
        second = sim.second
        self._served[second] += 1
        if now > job.deadline:
            self._wasted[second] += 1
        answer = None
        if self.error_rate and self._random.random() < self.error_rate:
            answer = ServerError(f"{self.name}: internal error")
        if self._take(now):
            self.sim.call_soon(job.reply, answer)  # after the answers already ready
        else:
            job.reply(answer)

    # -- calling a dependency ---------------------------------------------------------

    def _call_out(self, job: Job) -> None:
        """Its own work on ``job`` is done: call its dependency (the first call)."""
        self._call(job, self._call_attempts, self.sim.now)

    def _call(self, origin: Job, left: int, started: float) -> None:
        sim = self.sim
        now = sim.now
        timeout = self._call_timeout
        trip = 0.0 if self._call_rtt is None else self._call_rtt()
        back = trip / 2.0
        call = _Call(self, origin, left, started, now + timeout - back, back)
        sim.schedule(now + timeout, _expire_call, call)
        if trip:
            sim.schedule(now + (trip - back), _deliver_call, call)
        else:
            _deliver_call(call)

    def _called(self, call: _Call, answer: Any) -> None:
        """A call ended with ``answer`` (None: it succeeded; or an error, a timeout's
        included): the request is answered, or called for again."""
        if answer is None:
            self._complete(call.origin, None, call.started)
        elif call.left > 1:
            self._call(call.origin, call.left - 1, call.started)
        else:
            self._complete(call.origin, self._dependency_failed, call.started)

    def _complete(self, job: Job, failure: Any, started: float) -> None:
        """``_finish`` for a request whose calls ended (``failure``: None, or the
        error its client gets); the time spent calling counts as busy."""
        self._busy -= 1
        sim = self.sim
        now = sim.now
        second = sim.second
        self.busy_time += now - started
        self._served[second] += 1
        deadline = job.deadline
        if now > deadline:
            self._wasted[second] += 1
            self.wasted_time += now - (deadline if deadline > started else started)
        answer = failure
        if answer is None and self.error_rate and self._random.random() < self.error_rate:
            answer = ServerError(f"{self.name}: internal error")
        if self._take(now):
            self.sim.call_soon(job.reply, answer)
        else:
            job.reply(answer)

    def grow(self) -> None:
        """Capacity went up: start queued work it now has room for."""
        queue = self._queue
        while queue and self._busy < self._room:
            self._start(queue.popleft())

    def _grow_any(self) -> None:
        """``grow`` under a discipline other than FIFO."""
        self._take(self.sim.now)
