"""A retry budget shared by every app instance of a run: ``scope = "fleet"``.

A strategy's token-bucket ``budget`` table is, by default, one ``TokenBucketBudget``
per app instance (``scope = "instance"``). With ``scope = "fleet"`` every instance of
the run gets a real ``stormproof.fleet.FleetBudget`` with the table's options, all on
one ``MemoryBackend`` read on the simulation's clock: one bucket for the fleet, each
instance leasing ``lease`` retries' worth of it, exchanged by the backend's flusher.

The flusher is the only part not run as is: ``FleetBackend``'s flusher is a thread
that runs a round of due exchanges, then waits until the next exchange is due or a
budget nudges it. Here the same round (``flush(only_due=True)``) runs as an event on
the virtual clock, at once after a nudge (right after the current event) and when
the next exchange is due (``_next_wait``): the exchanges, their order and their
timing are the library's, and a run stays a pure function of its scenario and seed
(the budgets' process ids are random, but nothing depends on their values; the
budgets are walked in the order they were made, not the ``WeakSet``'s). Once
nothing else is pending in the simulation (the traffic is over and every request has
ended), no budget can be called again, and no further round is set.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from stormproof.fleet import FleetBudget, FleetBudgetOptions, MemoryBackend
from stormproof.options import TokenBucketOptions

from ._engine import Simulation
from ._fields import Section

__all__ = ["SCOPES", "FleetScoped", "fleet_budget", "read_scope"]

SCOPES = ("instance", "fleet")
"""What a token-bucket budget table's ``scope`` takes: a bucket per app instance (the
default), or one for the whole fleet."""

_DEFAULTS: dict[str, Any] = {
    field.name: field.default for field in dataclasses.fields(FleetBudgetOptions)
}
LEASE: int = _DEFAULTS["lease"]
FLUSH_INTERVAL: float = _DEFAULTS["flush_interval"]


@dataclass(frozen=True)
class FleetScoped:
    """A token bucket shared by the fleet: ``FleetBudget``'s options (``options``: the
    bucket's, as for ``TokenBucketBudget``; ``lease`` and ``flush_interval``:
    ``FleetBudget``'s own)."""

    options: TokenBucketOptions
    lease: int = LEASE
    flush_interval: float = FLUSH_INTERVAL


def read_scope(section: Section) -> tuple[str, int, float]:
    """A budget table's ``scope``, ``lease`` and ``flush_interval`` (the last two only
    with ``scope = "fleet"``), checked as ``FleetBudget`` checks them."""
    scope = section.string("scope", "instance", choices=SCOPES)
    lease, interval = LEASE, FLUSH_INTERVAL
    for name in ("lease", "flush_interval"):
        if not section.has(name):
            section.raw(name)  # known: offered by "did you mean"
            continue
        value = section.raw(name)
        if scope != "fleet":
            raise section.fail(name, 'given only with scope = "fleet"', value)
        if name == "lease":
            lease = section.integer("lease", low=1)
            if lease > 1_000_000:
                raise section.fail("lease", "an integer from 1 to 1000000", value)
        else:
            interval = section.number("flush_interval", low=0.01, high=3600.0)
    return scope, lease, interval


_MOMENT = 1e-6
"""The shortest wait between two rounds, in seconds."""


class _InOrder(weakref.WeakSet[Any]):
    """The backend's registry of policies, walked in the order they registered (a
    ``WeakSet`` is walked in the order of its members' addresses, which differ from
    run to run): a round's exchanges are then the same in every run. It holds its
    members for the run's length."""

    def __init__(self) -> None:
        super().__init__()
        self._members: dict[int, Any] = {}

    def add(self, item: Any) -> None:
        self._members[id(item)] = item

    def discard(self, item: Any) -> None:
        self._members.pop(id(item), None)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._members.values()))

    def __len__(self) -> int:
        return len(self._members)


class LabFleetBackend(MemoryBackend):
    """A ``MemoryBackend`` on the simulation's clock whose flusher is an event of the
    simulation instead of a thread (see the module's notes), walking its budgets in
    the order they were made."""

    def __init__(self, sim: Simulation) -> None:
        super().__init__(name="lab-fleet", clock=sim.clock, flusher=False)
        self._policies = _InOrder()
        self._sim = sim
        self._soon = False  # a round is asked for right after the current event
        self._timer_due = math.inf  # when the earliest timed round is set for

    def _nudge(self) -> None:
        if not self._soon and not self._closed:
            self._soon = True
            self._sim.call_soon(self._flush_round)

    def _flush_round(self, _: object = None) -> None:
        """What the flusher thread does each time it wakes: a round of due
        exchanges, then a wait until the next one is due (or a nudge)."""
        self._soon = False
        sim = self._sim
        self.flush(only_due=True)
        if not sim.pending:
            return  # nothing else will ever happen: no budget can be called again
        wait = self._next_wait(sim.now)
        if wait is not None:
            # A budget due "now" by its last exchange plus its interval may not be due
            # by ``now - last < interval`` (rounding): the thread would wait on until
            # the clock moves; here the round is set a microsecond later.
            due = sim.now + max(wait, _MOMENT)
            if due < self._timer_due:
                self._timer_due = due
                sim.schedule(due, self._timed_round, due)

    def _timed_round(self, due: float) -> None:
        if due != self._timer_due:
            return  # an earlier timer replaced it
        self._timer_due = math.inf
        self._flush_round()


_current: list[Any] = []
"""The backend of the run being built: ``[sim, backend, [(spec, name), ...]]``. A run
builds all its instances' clients before the next run starts, so one is enough."""


def fleet_budget(spec: FleetScoped, sim: Simulation) -> FleetBudget:
    """An app instance's ``FleetBudget``: the bucket of ``spec`` in this run's fleet
    (one backend per simulation; one bucket per budget table)."""
    if not _current or _current[0] is not sim:
        _current[:] = [sim, LabFleetBackend(sim), []]
    _, backend, named = _current
    names = [name for known, name in named if known is spec]
    if names:
        name = names[0]
    else:
        name = f"budget-{len(named)}"
        named.append((spec, name))
    options = spec.options
    return FleetBudget(
        backend,
        name=name,
        capacity=options.capacity,
        retry_cost=options.retry_cost,
        timeout_cost=options.timeout_cost,
        throttling_cost=options.throttling_cost,
        success_reward=options.success_reward,
        refund=options.refund,
        lease=spec.lease,
        flush_interval=spec.flush_interval,
    )
