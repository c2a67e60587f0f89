"""Per-second counters and gauges over a run: the raw material of every metric, and the
names (``Exported``) under which ``results.json`` and ``series.csv`` give them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from stormproof import _metric_names as metric

__all__ = ["Exported", "Names", "Series", "chart_step", "exported"]

LONG_RUN = 600.0
"""Seconds: longer runs are charted in 10-second buckets, shorter ones per second."""


def chart_step(duration: float) -> int:
    """The seconds a report's chart puts in one point: 1, or 10 for runs longer than
    ``LONG_RUN`` (a line of 3600 points is noise at a chart's width)."""
    return 10 if duration > LONG_RUN else 1


class Names:
    """The names of the series a run records (``RunResult.series``), each counted per
    second: requests by the second they arrived (``REQUESTS``, and how they ended:
    ``SUCCESSES``, ``GOODPUT``, ``STALE``, ``ERRORS``), ``ATTEMPTS`` (toward every
    region; ``attempts_at(region)`` toward one), the share of instances whose breaker
    is open (``BREAKER_OPEN``), and at each dependency the requests ``offered`` (the
    resolver's queries: ``offered("dns")``), ``served`` and ``wasted`` (served after
    their client gave up), and its ``capacity`` in force (requests per second, sampled
    in the middle of each second: a capacity drop lowers it). ``latency(q)``: the ``q``
    quantile of the latency of the requests answered (fresh or stale) that arrived in
    each second (NaN for a second without one); ``latency(q, step)`` the same over
    buckets of ``step`` seconds (a value per bucket). At each region, its queue's length
    (``queued``, sampled in the middle of each second of traffic) and the seconds it was
    ``down`` (a ``random_outages`` trigger)."""

    REQUESTS = "requests"
    SUCCESSES = "successes"
    GOODPUT = "goodput"
    STALE = "stale"
    FALLBACK = "fallback"
    ERRORS = "errors"
    ATTEMPTS = "attempts"
    BREAKER_OPEN = "breaker_open"
    DNS = "dns"
    """The resolver, as a dependency."""

    @staticmethod
    def offered(dependency: str) -> str:
        return f"offered:{dependency}"

    @staticmethod
    def served(dependency: str) -> str:
        return f"served:{dependency}"

    @staticmethod
    def wasted(dependency: str) -> str:
        return f"wasted:{dependency}"

    @staticmethod
    def queued(dependency: str) -> str:
        return f"queued:{dependency}"

    @staticmethod
    def down(dependency: str) -> str:
        return f"down:{dependency}"

    @staticmethod
    def attempts_at(region: str) -> str:
        return f"attempts:{region}"

    @staticmethod
    def capacity(dependency: str) -> str:
        return f"capacity:{dependency}"

    @staticmethod
    def latency(quantile: float, step: int = 1) -> str:
        name = f"latency_p{100 * quantile:g}"
        return name if step == 1 else f"{name}/{step}s"

    LATENCY_QUANTILES = (0.5, 0.99)
    """The quantiles of answered requests' latency a run records."""


@dataclass(frozen=True)
class Exported:
    """How a run's series is named in ``results.json`` and ``series.csv``: an
    instrumentation name (``stormproof._metric_names``, or ``stormproof.sim.*`` for
    what only the Lab sees), its attributes, and its unit (``1/s``: a count per second;
    ``s``: seconds; ``1``: a share)."""

    name: str
    attributes: dict[str, str]
    unit: str


GOODPUT_NAME = "stormproof.sim.goodput"
"""Requests answered within the caller's deadline (the Lab's, per second)."""
OFFERED_NAME = "stormproof.sim.dependency.offered"
"""Requests arriving at a dependency (attribute ``dependency``: a region, or ``dns``)."""
SERVED_NAME = "stormproof.sim.dependency.served"
"""Requests a dependency served."""
WASTED_NAME = "stormproof.sim.dependency.wasted"
"""Requests a dependency served after their client had given up."""
CAPACITY_NAME = "stormproof.sim.dependency.capacity"
"""The requests per second a dependency can serve, as triggers leave it."""


def exported(key: str) -> Exported:
    """The exported name of the series a run keeps under ``key`` (``Names``)."""
    per_second = "1/s"
    fixed = {
        Names.REQUESTS: Exported(metric.CALLS, {}, per_second),
        Names.SUCCESSES: Exported(metric.CALLS, {metric.OUTCOME: "success"}, per_second),
        Names.ERRORS: Exported(metric.CALLS, {metric.OUTCOME: "failure"}, per_second),
        Names.GOODPUT: Exported(GOODPUT_NAME, {}, per_second),
        Names.STALE: Exported(metric.CACHE_LOOKUPS, {metric.RESULT: "stale"}, per_second),
        Names.ATTEMPTS: Exported(metric.ATTEMPTS, {}, per_second),
        Names.BREAKER_OPEN: Exported(metric.BREAKER_STATE, {metric.STATE: "open"}, "1"),
    }
    found = fixed.get(key)
    if found is not None:
        return found
    for quantile in Names.LATENCY_QUANTILES:
        if key == Names.latency(quantile):
            attributes = {metric.OUTCOME: "success", "quantile": f"{quantile:g}"}
            return Exported(metric.CALL_DURATION, attributes, "s")
    kind, _, target = key.partition(":")
    if kind == "attempts":
        return Exported(metric.ATTEMPTS, {"region": target}, per_second)
    named = {
        "offered": OFFERED_NAME,
        "served": SERVED_NAME,
        "wasted": WASTED_NAME,
        "capacity": CAPACITY_NAME,
    }
    if kind in named:
        return Exported(named[kind], {"dependency": target}, per_second)
    # A series this module does not name: kept under the Lab's prefix.
    return Exported(f"stormproof.sim.{kind}", {"dependency": target} if target else {}, "")


class Series:
    """Named per-second values, each a list with one number per second (counts stay
    integers while the run counts them: lists of ints are the fastest to count in).
    ``add(counter, now)`` counts an event in second ``int(now)``; events past the end
    are counted in the last second."""

    __slots__ = ("_last", "data", "seconds")

    def __init__(self, duration: float) -> None:
        self.seconds = math.ceil(duration) + 1
        self._last = self.seconds - 1
        self.data: dict[str, list[float]] = {}

    def counter(self, name: str) -> list[float]:
        found = self.data.get(name)
        if found is None:
            found = self.data[name] = [0] * self.seconds
        return found

    def add(self, counter: list[float], now: float, amount: float = 1) -> None:
        second = int(now)
        counter[second if second < self._last else self._last] += amount

    def total(self, name: str, start: float = 0.0, end: float | None = None) -> float:
        values = self.data.get(name)
        if values is None:
            return 0.0
        last = self.seconds if end is None else min(self.seconds, math.ceil(end))
        return float(sum(values[int(start) : last]))
