"""A process of a fleet, for tests/integration/test_fleet_breaker_redis.py: it calls a
dependency that is still down through a FleetBreaker on Redis whose fleet is half-open,
exchanging after every call, and reports what it saw."""

from __future__ import annotations

from multiprocessing.synchronize import Barrier
from typing import Any

from stormproof import CircuitOpen
from stormproof.fleet import FleetBreaker, RedisBackend


def probe(
    url: str, rounds: int, half_open_calls: int, start: Barrier, reached: Any, results: Any
) -> None:
    """``reached`` counts, fleet-wide, the calls that reach the dependency."""
    backend = RedisBackend(url, flusher=False)
    breaker = FleetBreaker(backend, "db", open_for=60.0, half_open_calls=half_open_calls)
    seen = {"reached": 0, "refused": 0, "errors": 0, "leases": 0, "state": ""}

    def dependency() -> None:
        with reached.get_lock():
            reached.value += 1
        seen["reached"] += 1
        raise ConnectionError("still down")

    try:
        backend.flush()  # learns the fleet's state: half-open
        seen["state"] = str(breaker.state)
        start.wait(timeout=30)
        for _ in range(rounds):
            seen["leases"] += breaker.probe_leases
            try:
                breaker.call(dependency)
            except CircuitOpen:
                seen["refused"] += 1
            except ConnectionError:
                pass
            except Exception:  # anything else would reach a caller
                seen["errors"] += 1
            backend.flush()  # every process asks as often as it can
        seen["state"] += f" -> {breaker.fleet_state}"
    finally:
        backend.close()
        results.put(seen)
