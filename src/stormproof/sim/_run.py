"""One run: a scenario, one strategy, one seed. Builds the world, applies the triggers,
drives the traffic, and returns the per-second series and the summary metrics."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Generator
from typing import Any

from ._dns import HostCache, Resolver
from ._engine import Simulation
from ._load import ClosedLoop, KeySpace, OpenLoop, RequestMix, TraceLoop
from ._metrics import (
    AMPLIFICATION,
    AMPLIFICATION_DURING_TRIGGER,
    ATTEMPTS,
    DNS_QUERIES,
    FALLBACK_RATE,
    GOODPUT,
    GOODPUT_RATE,
    MAX_QUEUE_LENGTH,
    MAX_QUEUE_LENGTHS,
    MEAN_LATENCY,
    MEAN_QUEUE_LENGTH,
    MEAN_QUEUE_LENGTHS,
    P50_LATENCY,
    P99_LATENCY,
    PEAK_LOAD_RATIO,
    PEAK_LOAD_RATIOS,
    RECOVERY,
    REQUESTS,
    STALE_RATE,
    SUCCESS_RATE,
    UTILISATION,
    UTILISATIONS,
    WASTED_SECONDS,
    WASTED_WORK,
    Metric,
)
from ._occ import run_occ
from ._result import RunResult
from ._scenario import RegionSpec, Scenario
from ._series import Names, Series, chart_step
from ._service import Service
from ._strategies import FALLBACK, STALE, Client, build_client
from ._strategy_spec import StrategySpec
from ._world import Instance, Region, World

__all__ = ["RunResult", "run"]

DRAIN = 600.0
"""Seconds simulated after the end of traffic, so requests still in flight finish."""


class _Recorder:
    """Counts each request by the second it arrived, and its latency."""

    def __init__(self, sim: Simulation, series: Series, deadline: float) -> None:
        self.sim = sim
        self.series = series
        self.deadline = deadline
        self.requests = series.counter(Names.REQUESTS)
        self.successes = series.counter(Names.SUCCESSES)
        self.goodput = series.counter(Names.GOODPUT)
        self.stale = series.counter(Names.STALE)
        self.fallback = series.counter(Names.FALLBACK)
        self.errors = series.counter(Names.ERRORS)
        self.latencies: list[float] = []  # every request's, in the order they ended
        # The latencies of the requests answered, by the second they arrived.
        self.answered: list[list[float]] = [[] for _ in range(series.seconds)]

    def request(self, client: Client, op: str, key: int) -> Generator[Any, Any, None]:
        """A request as a process that ends when its outcome is recorded (closed-loop
        users wait for it)."""
        arrived = self.sim.now
        self.requests[int(arrived)] += 1
        outcome = yield from client.handle(op, key, arrived + self.deadline)
        self.finish(arrived, outcome)

    def finish(self, arrived: float, outcome: Any) -> None:
        """A request's outcome: success, staleness, goodput and latency, all counted in
        the second the request arrived. A fallback's degraded answer is a success the
        caller sees (and is counted apart), but not goodput: not the data asked for."""
        second = math.floor(arrived)  # int(arrived) (never negative), not a class call
        latency = self.sim.now - arrived
        self.latencies.append(latency)
        if outcome is None or outcome is STALE:
            self.successes[second] += 1
            self.answered[second].append(latency)
            if outcome is STALE:
                self.stale[second] += 1
            if latency <= self.deadline:
                self.goodput[second] += 1
        elif outcome is FALLBACK:
            self.successes[second] += 1
            self.fallback[second] += 1
        else:
            self.errors[second] += 1


def run(
    scenario: Scenario,
    strategy: StrategySpec,
    *,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> RunResult:
    """Simulate ``scenario`` with every app instance running ``strategy`` (or, for a
    scenario with an ``[occ]`` table, every contending client)."""
    if scenario.occ is not None:
        return run_occ(scenario, strategy, seed)
    started_cpu = time.process_time()
    # A run allocates millions of short-lived objects and (failures being values) makes
    # few reference cycles: collect rarely while it runs.
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        return _run(scenario, strategy, seed, progress, started_cpu)
    finally:
        gc.set_threshold(*thresholds)


def _run(
    scenario: Scenario,
    strategy: StrategySpec,
    seed: int | None,
    progress: Callable[[float], None] | None,
    started_cpu: float,
) -> RunResult:
    sim = Simulation(scenario.seed if seed is None else seed)
    series = Series(scenario.duration + DRAIN)
    spec = scenario.clients
    resolver = Resolver(
        sim, capacity=scenario.dns.capacity, latency=scenario.dns.latency, series=series
    )
    services, regions = _services(sim, scenario, series)
    instances = [
        Instance(
            n,
            HostCache(sim, resolver, scenario.dns.ttl, scenario.dns.negative_ttl),
            spec.connections,
            connection_lifetime=spec.connection_lifetime,
        )
        for n in range(spec.instances)
    ]
    world = World(sim, series, resolver, regions, instances, spec.attempt_timeout)
    _add_called(world, services)
    recorder = _Recorder(sim, series, spec.deadline)
    clients = [
        build_client(world, instance, strategy, spec.deadline, recorder) for instance in instances
    ]
    keyed = any(client.uses_keys for client in clients)
    keys = KeySpace(sim, spec.keys, spec.key_skew) if keyed else None
    mix = RequestMix(sim, spec.read_share, keys)
    request = recorder.request

    def one(instance: int) -> Generator[Any, Any, None]:
        return request(clients[instance], *mix.draw())

    load: OpenLoop | ClosedLoop | TraceLoop
    if spec.loop == "closed":
        load = ClosedLoop(
            sim, spec.users, spec.think_time, spec.instances, one, until=scenario.duration
        )
    elif spec.trace is not None:
        arrive = [client.handle_now for client in clients]
        load = TraceLoop(sim, spec.trace, arrive, mix, recorder.requests)
    else:
        arrive = [client.handle_now for client in clients]
        load = OpenLoop(sim, spec.rate, arrive, mix, recorder.requests, until=scenario.duration)
    world.load = load
    for trigger in scenario.triggers:
        trigger.schedule(world)

    _gauges(scenario, sim, series, clients, regions, services)
    step = max(1.0, scenario.duration / 100.0)
    elapsed = 0.0
    while elapsed < scenario.duration:
        elapsed = min(scenario.duration, elapsed + step)
        sim.run(elapsed)
        if progress is not None:
            progress(elapsed / scenario.duration)
    # The servers' work and queues over the traffic's time (the drain after it left out).
    during = {name: (service.busy_time, service.max_queued) for name, service in services.items()}
    # Let requests still in flight finish (their answers count for their arrival second).
    sim.run(scenario.duration + DRAIN)
    world.close()
    measured = {name: (*during[name], service.wasted_time) for name, service in services.items()}
    summary = summarize(scenario, series, recorder.latencies, measured)
    _latency_series(series, recorder, chart_step(scenario.duration))
    return RunResult(
        scenario=scenario.name,
        strategy=strategy.name,
        seed=sim.seed,
        summary=summary,
        series={name: [float(v) for v in values] for name, values in series.data.items()},
        cpu_seconds=time.process_time() - started_cpu,
    )


def _services(
    sim: Simulation, scenario: Scenario, series: Series
) -> tuple[dict[str, Service], list[Region]]:
    """Every service, by name (the regions' and those they call), and the regions."""
    services: dict[str, Service] = {}
    for described in scenario.services:
        _service(sim, described, series, services)
    regions = [
        Region(
            r.name,
            r.hostname,
            services[r.name],
            rtt=None if r.rtt is None else r.rtt.sampler(sim.stream(f"rtt:{r.name}")),
        )
        for r in scenario.regions
    ]
    return services, regions


def _add_called(world: World, services: dict[str, Service]) -> None:
    """Services only other services call: the world knows them by name (triggers act
    on them), without a host name or routes."""
    for name, service in services.items():
        if name not in world.by_name:
            world.by_name[name] = Region(name, "", service)


def _service(sim: Simulation, r: RegionSpec, series: Series, made: dict[str, Service]) -> Service:
    """The service of ``r``, made once (the one it calls first) and kept in ``made``."""
    if r.name in made:
        return made[r.name]
    calls = None if r.calls is None else r.calls.service
    callee = None if calls is None else _service(sim, calls, series, made)
    made[r.name] = service = Service(
        sim,
        r.name,
        capacity=r.capacity,
        service_time=r.service_time,
        queue=r.queue,
        slowdown=r.slowdown,
        drop_expired=r.drop_expired,
        setup_time=r.setup_time,
        error_rate=r.error_rate,
        series=series,
        write_service_time=r.write_service_time,
        rate_limit=r.rate_limit,
        burst=r.burst,
        discipline=r.queue_discipline,
        codel_target=r.codel_target,
        codel_interval=r.codel_interval,
        calls=callee,
        call_timeout=1.0 if r.calls is None else r.calls.timeout,
        call_attempts=1 if r.calls is None else r.calls.attempts,
        call_rtt=None
        if calls is None or calls.rtt is None
        else calls.rtt.sampler(sim.stream(f"rtt:{calls.name}")),
    )
    return service


def _gauges(
    scenario: Scenario,
    sim: Simulation,
    series: Series,
    clients: list[Client],
    regions: list[Region],
    services: dict[str, Service],
) -> None:
    """Sample, in the middle of each second of traffic, the share of breakers open, each
    region's capacity in force, and each service's queue length."""
    breaker_open = series.counter(Names.BREAKER_OPEN)
    capacities = [
        (series.counter(Names.capacity(spec.name)), spec.capacity_rps, region.service)
        for spec, region in zip(scenario.regions, regions, strict=True)
    ]
    queues = [(service, series.counter(Names.queued(name))) for name, service in services.items()]
    end = math.ceil(scenario.duration)

    def gauge(_: object) -> None:
        open_count = sum(1 for client in clients if client.breaker_open())
        series.add(breaker_open, sim.now, open_count / len(clients))
        for counter, rps, service in capacities:
            series.add(counter, sim.now, rps * service.capacity_factor)
        second = sim.second
        for service, queued in queues:
            queued[second] = service.queued
        if sim.now + 1.0 < end:
            sim.after(1.0, gauge)

    sim.at(0.5, gauge)


def _quantile(ordered: list[float], q: float) -> float | None:
    """The ``q`` quantile of values in ascending order (None if there are none)."""
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def _latency_series(series: Series, recorder: _Recorder, step: int) -> None:
    """Record the quantiles of answered requests' latency (``Names.latency``) per second
    and, if ``step`` is more than 1, per ``step`` seconds."""
    seconds = series.seconds
    groups = recorder.answered
    sizes = [1] if step == 1 else [1, step]
    for size in sizes:
        buckets = groups
        if size > 1:
            buckets = [
                [v for group in groups[start : start + size] for v in group]
                for start in range(0, seconds, size)
            ]
        for bucket in buckets:
            bucket.sort()
        for q in Names.LATENCY_QUANTILES:
            values = [_quantile(bucket, q) for bucket in buckets]
            name = Names.latency(q) if size == 1 else Names.latency(q, size)
            series.data[name] = [math.nan if v is None else v for v in values]


def summarize(
    scenario: Scenario,
    series: Series,
    latencies: list[float],
    measured: dict[str, tuple[float, int, float]] | None = None,
) -> dict[str, Any]:
    """The run's metrics (``METRICS``), by name, as the design notes and the docs'
    glossary define them. ``measured``: each region's busy time (server-seconds of
    the work it started) and its longest queue, during the traffic, and the seconds of
    work it did after their clients gave up, drain included (None: not measured; those
    metrics are then left out)."""
    data = series.data
    seconds = math.ceil(scenario.duration)
    requests = sum(data[Names.REQUESTS])
    attempts = sum(data[Names.ATTEMPTS])
    successes = sum(data[Names.SUCCESSES])
    goodput = sum(data[Names.GOODPUT])
    stale = sum(data[Names.STALE])
    fallback = sum(data[Names.FALLBACK])
    window = scenario.trigger_window
    during = None
    recovery: float | None = None
    if window is not None:
        start, end = int(window[0]), math.ceil(window[1])
        trigger_requests = sum(data[Names.REQUESTS][start:end])
        trigger_attempts = sum(data[Names.ATTEMPTS][start:end])
        during = trigger_attempts / trigger_requests if trigger_requests else None
        recovery = _recovery(
            data[Names.REQUESTS], data[Names.GOODPUT], start, end, int(scenario.duration)
        )
    ordered = sorted(latencies)
    peaks: dict[str, float] = {}
    for region in scenario.services:
        peaks[region.name] = max(data[Names.offered(region.name)][:seconds]) / region.capacity_rps
    dns = data[Names.offered(Names.DNS)]
    peaks[Names.DNS] = max(dns[:seconds]) / scenario.dns.capacity
    values: dict[Metric, Any] = {
        REQUESTS: int(requests),
        ATTEMPTS: int(attempts),
        AMPLIFICATION: attempts / requests if requests else None,
        AMPLIFICATION_DURING_TRIGGER: during,
        SUCCESS_RATE: successes / requests if requests else None,
        STALE_RATE: stale / requests if requests else None,
        FALLBACK_RATE: fallback / requests if requests else None,
        GOODPUT: int(goodput),
        GOODPUT_RATE: goodput / requests if requests else None,
        P50_LATENCY: _quantile(ordered, 0.50),
        P99_LATENCY: _quantile(ordered, 0.99),
        RECOVERY: recovery,
        PEAK_LOAD_RATIO: max(peaks[r.name] for r in scenario.services),
        PEAK_LOAD_RATIOS: peaks,
        DNS_QUERIES: int(sum(dns)),
        WASTED_WORK: int(sum(sum(data[Names.wasted(r.name)]) for r in scenario.services)),
        MEAN_LATENCY: sum(latencies) / len(latencies) if latencies else None,
    }
    # The queues' lengths, sampled in the middle of each second of traffic.
    samples = max(1, math.ceil(scenario.duration - 0.5))
    means = {r.name: sum(data[Names.queued(r.name)][:seconds]) / samples for r in scenario.services}
    values[MEAN_QUEUE_LENGTH] = max(means.values())
    values[MEAN_QUEUE_LENGTHS] = means
    if measured is not None:
        # Utilisation: server-seconds of the work started during the traffic over the
        # server-seconds it had (capacity x duration).
        busy = {
            r.name: measured[r.name][0] / (r.capacity * scenario.duration)
            for r in scenario.services
        }
        longest = {r.name: float(measured[r.name][1]) for r in scenario.services}
        values[UTILISATION] = max(busy.values())
        values[UTILISATIONS] = busy
        values[MAX_QUEUE_LENGTH] = max(longest.values())
        values[MAX_QUEUE_LENGTHS] = longest
        values[WASTED_SECONDS] = sum(measured[r.name][2] for r in scenario.services)
    return {metric.name: value for metric, value in values.items()}


def _recovery(
    requests: list[float], goodput: list[float], start: int, end: int, duration: int
) -> float | None:
    """Seconds from the end of the trigger until goodput (the share of each second's
    requests answered in time) is back to 95% of its pre-trigger level for 10 s."""
    warm = max(0, start - 300)
    before_requests = sum(requests[warm:start])
    if not before_requests:
        return None
    level = sum(goodput[warm:start]) / before_requests
    target = 0.95 * level
    streak = 0
    for second in range(end, duration):
        asked = requests[second]
        share = goodput[second] / asked if asked else 1.0
        streak = streak + 1 if share >= target else 0
        if streak >= 10:
            return float(second - 9 - end)
    return None
