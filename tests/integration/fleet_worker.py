"""A process of a fleet, for tests/integration/test_fleet_redis.py: it makes requests
to a dependency that always fails, through a Retry whose budget is a FleetBudget on
Redis (or a TokenBucketBudget of its own), and reports how many attempts it made."""

from __future__ import annotations

from multiprocessing.synchronize import Barrier
from typing import Any

from stormproof import Retry, TokenBucketBudget
from stormproof.fleet import FleetBudget, RedisBackend
from stormproof.testing import FakeClock


def run(url: str | None, requests: int, start: Barrier, results: Any) -> None:
    """``url`` None: a TokenBucketBudget per process (today's behaviour)."""
    backend = None
    budget: FleetBudget | TokenBucketBudget
    if url is None:
        budget = TokenBucketBudget(capacity=500, retry_cost=5)
    else:
        backend = RedisBackend(url, flusher=True)
        budget = FleetBudget(backend, name="orders", capacity=500, retry_cost=5, lease=10)
    retry = Retry(on=ConnectionError, attempts=3, budget=budget, clock=FakeClock())
    attempts = 0

    def down() -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("no route to host")

    if backend is not None:
        backend.flush()  # the first lease, as the flusher takes it when the budget is built
    start.wait(timeout=30)
    for _ in range(requests):
        try:
            retry.call(down)
        except ConnectionError:
            pass
        if backend is not None:
            backend.flush()  # every process asks for more as often as it can
    if backend is not None:
        backend.close()
    results.put(attempts - requests)
