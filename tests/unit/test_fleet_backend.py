"""One contract for every fleet backend: MemoryBackend and RedisBackend (against a real
redis-server on loopback) make the same exchanges, with the same replies."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from stormproof import Retry
from stormproof._fleet_budget import BUDGET_SCRIPT
from stormproof.events import Recorder
from stormproof.fleet import (
    FleetBackend,
    FleetBudget,
    FleetDegraded,
    FleetRecovered,
    MemoryBackend,
    RedisBackend,
)
from stormproof.testing import FakeClock

Make = Callable[..., FleetBackend]


@pytest.fixture(params=["memory", "redis"])
def make(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Make]:
    """Builds backends of one kind, on the test's FakeClock, driven by ``flush()``;
    every backend built shares the same store (a fleet of processes)."""
    built: list[FleetBackend] = []
    shared: dict[str, MemoryBackend] = {}

    def build(**options: object) -> FleetBackend:
        options.setdefault("clock", clock)
        options.setdefault("flusher", False)
        backend: FleetBackend
        if request.param == "memory":
            # One MemoryBackend is one store: "processes" are policies built on it.
            if "memory" not in shared:
                shared["memory"] = MemoryBackend(**options)  # type: ignore[arg-type]
            backend = shared["memory"]
        else:
            url = request.getfixturevalue("redis_url")
            backend = RedisBackend(url, **options)  # type: ignore[arg-type]
        built.append(backend)
        return backend

    yield build
    for backend in built:
        backend.close()


def bucket(backend: FleetBackend, name: str) -> dict[str, int] | None:
    """The fleet's bucket as stored, or None."""
    if isinstance(backend, MemoryBackend):
        return backend._read(name, "bucket")
    assert isinstance(backend, RedisBackend)
    stored = backend.client.hgetall(backend._key(name, "bucket"))
    return {key.decode(): int(value) for key, value in stored.items()} or None


def failing() -> None:
    raise ConnectionError("down")


def fail_requests(retry: Retry, n: int) -> None:
    for _ in range(n):
        with pytest.raises(ConnectionError):
            retry.call(failing)


def test_the_first_exchange_makes_the_bucket_from_the_configuration_and_takes_a_lease(
    make: Make,
) -> None:
    backend = make()
    budget = FleetBudget(backend, name="orders", capacity=100, retry_cost=5, lease=4)
    assert bucket(backend, "orders") is None
    assert budget.leased == 0
    assert backend.flush() == 1
    assert budget.leased == 20
    assert budget.fleet_available == 80
    stored = bucket(backend, "orders")
    assert stored is not None
    assert (stored["tokens"], stored["unit"]) == (80, 1)


def test_nothing_to_send_means_no_round_trip(make: Make) -> None:
    backend = make()
    budget = FleetBudget(backend, name="orders", capacity=100, lease=2)
    assert backend.flush() == 1
    retry = Retry(on=ConnectionError, budget=budget, clock=FakeClock())
    for _ in range(100):
        assert retry.call(lambda: "ok") == "ok"
    assert backend.flush() == 0  # fleet and lease full: the rewards change nothing


def test_processes_share_one_bucket_and_stop_when_it_is_spent(make: Make) -> None:
    a, b = make(), make()
    first = FleetBudget(a, name="orders", capacity=50, retry_cost=5, lease=2)
    second = FleetBudget(b, name="orders", capacity=50, retry_cost=5, lease=2)
    retries = 0
    for budget, backend in [(first, a), (second, b)] * 5:
        backend.flush()
        while budget.try_retry("transient") is not None:
            retries += 1
    assert retries == 10  # 50 tokens at 5 each, whoever spends them
    assert first.try_retry("transient") is None
    assert second.try_retry("transient") is None
    stored = bucket(a, "orders")
    assert stored is not None
    assert stored["tokens"] == 0


def test_rewards_go_back_to_the_fleet_capped_at_capacity(make: Make, clock: FakeClock) -> None:
    backend = make()
    budget = FleetBudget(backend, name="orders", capacity=20, retry_cost=5, lease=2)
    backend.flush()
    assert (budget.leased, budget.fleet_available) == (10, 10)
    assert budget.try_retry("transient") == 5
    for _ in range(3):
        budget.on_success(None)  # 3 tokens earned for the fleet
    backend.flush()
    assert (budget.leased, budget.fleet_available) == (10, 8)  # 10 + 3 - 5 refilled
    for _ in range(50):
        budget.on_success(None)
    backend.flush()
    assert budget.fleet_available == 10  # never above capacity minus what is held
    assert budget.available == 20
    assert backend.flush() == 0  # full again: quiet


def test_a_different_unit_is_converted(make: Make) -> None:
    backend = make()
    tenths = FleetBudget(backend, name="orders", capacity=10, retry_cost=1, success_reward=0.1)
    backend.flush()
    assert tenths.fleet_available == 0  # a lease of 10 retries at cost 1 took it all
    tenths.close()
    whole = FleetBudget(backend, name="orders", capacity=10, retry_cost=1, timeout_cost=1, lease=1)
    backend.flush()
    assert (whole.leased, whole.fleet_available) == (1, 9)


def test_what_processes_hold_counts_until_they_fall_silent(make: Make) -> None:
    backend = make()

    def exchange(key: str, held: int, want: int, lease_ttl_ms: int = 60_000) -> list[int]:
        return backend._run(BUDGET_SCRIPT, "orders", [100, 1, 0, want, held, lease_ttl_ms, 1, key])

    assert exchange("a", 0, 30) == [30, 70, 30]
    assert exchange("b", 0, 30) == [30, 40, 60]
    assert exchange("a", 10, 0) == [0, 40, 40]  # a spent 20
    # a reward never fills the bucket past capacity minus what is held
    assert backend._run(BUDGET_SCRIPT, "orders", [100, 1, 500, 0, 30, 60_000, 1, "b"]) == [
        0,
        60,
        40,
    ]
    # a process silent for lease_ttl is taken for gone: its holding no longer counts
    assert exchange("c", 0, 0, lease_ttl_ms=0) == [0, 60, 0]
    assert exchange("b", 30, 0) == [0, 60, 30]


def test_flush_interval_bounds_round_trips_per_policy(make: Make, clock: FakeClock) -> None:
    backend = make()
    budget = FleetBudget(backend, name="orders", capacity=500, lease=1, flush_interval=1.0)
    trips = backend.flush(only_due=True)
    assert trips == 1  # the first lease: due at once
    retry = Retry(on=ConnectionError, attempts=2, budget=budget, clock=FakeClock())
    for _ in range(10):  # ten seconds of failures, 20 calls a second
        for _ in range(20):
            with pytest.raises(ConnectionError):
                retry.call(failing)
            trips += backend.flush(only_due=True)
        clock.advance(1.0)
    assert trips == 10  # one a second (the first lease's included), not one per call


def test_closing_gives_the_lease_back(make: Make) -> None:
    backend = make()
    budget = FleetBudget(backend, name="orders", capacity=100, retry_cost=5, lease=4)
    backend.flush()
    assert budget.try_retry("transient") == 5
    budget.close()
    stored = bucket(backend, "orders")
    assert stored is not None
    assert stored["tokens"] == 95  # 80 + the 15 not spent


def test_keys_expire_after_the_fleet_goes_quiet(make: Make, clock: FakeClock) -> None:
    backend = make(key_ttl=60.0)
    budget = FleetBudget(backend, name="orders", capacity=100, lease=1)
    assert backend.flush() == 1
    assert budget.leased == 10
    if isinstance(backend, RedisBackend):
        ttl = backend.client.pttl(backend._key("orders", "bucket"))
        assert 0 < ttl <= 60_000
    else:
        clock.advance(61.0)
        assert bucket(backend, "orders") is None


def test_an_unreachable_backend_degrades_and_recovers(
    make: Make, clock: FakeClock, recorder: Recorder
) -> None:
    backend = make(name="fleet")
    budget = FleetBudget(backend, name="orders", capacity=100, retry_cost=5, lease=2)
    backend.flush()
    assert budget.try_retry("transient") == 5
    with unreachable(backend):
        assert backend.flush() == 1  # tried, failed
        assert backend.degraded
        assert budget.try_retry("transient") == 5  # the lease is a local bucket now
        assert budget.try_retry("transient") is None
        for _ in range(5):
            budget.on_success(None)  # rewards refill it locally
        assert budget.leased == 5
        assert backend.flush(only_due=True) == 0  # waiting for the backoff
    clock.advance(60.0)
    assert backend.flush(only_due=True) == 1
    assert not backend.degraded
    assert budget.leased == 10
    (degraded,) = recorder.of(FleetDegraded)
    (recovered,) = recorder.of(FleetRecovered)
    assert (degraded.policy, degraded.reason) == ("fleet", "connection")
    assert (recovered.policy, recovered.attempts) == ("fleet", 1)
    assert recovered.down_for == 60.0


class unreachable:
    """The backend's store cannot be reached for the block: MemoryBackend's switch, or
    a Redis client pointed at a closed port."""

    def __init__(self, backend: FleetBackend) -> None:
        self.backend = backend

    def __enter__(self) -> None:
        if isinstance(self.backend, MemoryBackend):
            self.backend.unreachable = True
        else:
            assert isinstance(self.backend, RedisBackend)
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry as RedisRetry

            self.saved = self.backend._client
            self.backend._client = redis.Redis(
                port=closed_port(),
                socket_timeout=0.2,
                socket_connect_timeout=0.2,
                retry=RedisRetry(NoBackoff(), 0),
            )

    def __exit__(self, *exc_info: object) -> None:
        if isinstance(self.backend, MemoryBackend):
            self.backend.unreachable = False
        else:
            assert isinstance(self.backend, RedisBackend)
            self.backend._client.close()
            self.backend._client = self.saved


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_fleet_running_short_grants_whole_retries_only(make: Make) -> None:
    backend = make()

    def exchange(key: str, held: int, want: int, reward: int = 0) -> list[int]:
        return backend._run(BUDGET_SCRIPT, "short", [12, 1, reward, want, held, 60_000, 5, key])

    assert exchange("a", 0, 10) == [10, 2, 10]  # enough: the whole top-up
    assert exchange("b", 0, 10) == [0, 2, 10]  # 2 left: less than one retry (5), kept
    assert exchange("a", 0, 0, reward=10) == [0, 12, 0]  # a gives its lease back
    assert exchange("b", 0, 10) == [10, 2, 10]
