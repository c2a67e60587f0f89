"""Fleet-wide state: policies whose state is shared by every process of a fleet.

``FleetBudget`` is a retry budget and ``FleetBreaker`` a circuit breaker kept by a
backend: ``MemoryBackend`` (one process: tests, single-process use) or
``RedisBackend`` (Redis or Valkey; redis-py, the ``redis`` extra, is imported only
when one is built). Calls never touch the network:
a background flusher exchanges each policy's news at most once per second, and when
the backend is slow or down, policies carry on with local state
(``FleetDegraded``, then ``FleetRecovered``).
"""

from ._fleet import FleetBackend, FleetDegraded, FleetRecovered, MemoryBackend
from ._fleet_breaker import FleetBreaker, FleetBreakerOptions, FleetBreakerStateChanged
from ._fleet_budget import FleetBudget, FleetBudgetOptions
from ._fleet_redis import MAX_CLIENT_TIMEOUT, RedisBackend

__all__ = [
    "MAX_CLIENT_TIMEOUT",
    "FleetBackend",
    "FleetBreaker",
    "FleetBreakerOptions",
    "FleetBreakerStateChanged",
    "FleetBudget",
    "FleetBudgetOptions",
    "FleetDegraded",
    "FleetRecovered",
    "MemoryBackend",
    "RedisBackend",
]
