"""FleetBreaker: its options, and one contract run against every backend (MemoryBackend,
and RedisBackend on a real redis-server on loopback), each "process" a FleetBreaker of
its own, driven by ``flush()`` on a FakeClock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from stormproof import CircuitBreaker, CircuitOpen, ConfigError
from stormproof.events import BreakerRejected, Recorder
from stormproof.fleet import (
    FleetBackend,
    FleetBreaker,
    FleetBreakerOptions,
    FleetBreakerStateChanged,
    FleetDegraded,
    FleetRecovered,
    MemoryBackend,
    RedisBackend,
)
from stormproof.testing import FakeClock

from .test_fleet_backend import closed_port


@dataclass
class Fleet:
    """Processes of one fleet: each a backend (one shared MemoryBackend, or a
    RedisBackend per process) and a FleetBreaker named "db"."""

    kind: str
    clock: FakeClock
    build: Callable[..., FleetBackend]
    backends: list[FleetBackend]

    def process(self, **options: object) -> FleetBreaker:
        options.setdefault("min_processes", 2)
        options.setdefault("fleet_minimum_calls", 10)
        options.setdefault("open_for", 30.0)
        return FleetBreaker(self.build(), "db", clock=self.clock, **options)  # type: ignore[arg-type]

    def flush(self) -> int:
        """One round of every process's exchange (what the flushers do each second)."""
        return sum(backend.flush() for backend in dict.fromkeys(self.backends))

    def open_time_up(self, seconds: float = 30.0) -> None:
        """The fleet's open time passes: on the FakeClock, and on the server's clock
        (Redis's TIME cannot be moved, so the stored end of the open time is)."""
        self.clock.advance(seconds)
        for backend in dict.fromkeys(self.backends):
            if isinstance(backend, RedisBackend):
                backend.client.hset(backend._key("db", "state"), "open_until", 0)

    def probe_leases_lapse(self) -> None:
        self.clock.advance(10.0)
        for backend in dict.fromkeys(self.backends):
            if isinstance(backend, RedisBackend):
                key = backend._key("db", "probe_until")
                for member in backend.client.zrange(key, 0, -1):
                    backend.client.zadd(key, {member: 0})


@pytest.fixture(params=["memory", "redis"])
def fleet(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Fleet]:
    backends: list[FleetBackend] = []

    def build(**options: object) -> FleetBackend:
        options.setdefault("clock", clock)
        options.setdefault("flusher", False)
        backend: FleetBackend
        if request.param == "memory":
            if not backends:
                backends.append(MemoryBackend(**options))  # type: ignore[arg-type]
            return backends[0]
        url = request.getfixturevalue("redis_url")
        backend = RedisBackend(url, **options)  # type: ignore[arg-type]
        backends.append(backend)
        return backend

    yield Fleet(request.param, clock, build, backends)
    for backend in dict.fromkeys(backends):
        backend.close()


def down() -> None:
    raise ConnectionError("down")


def ok() -> str:
    return "ok"


def calls(breaker: FleetBreaker, fn: Callable[[], object], n: int) -> tuple[int, int, int]:
    """n calls: (answered, failed, rejected)."""
    answered = failed = rejected = 0
    for _ in range(n):
        try:
            breaker.call(fn)
            answered += 1
        except CircuitOpen:
            rejected += 1
        except ConnectionError:
            failed += 1
    return answered, failed, rejected


# -- options -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "parameter"),
    [
        ({"backend": "redis://x"}, "backend"),
        ({"name": ""}, "name"),
        ({"name": "a}b"}, "name"),
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"min_processes": 0}, "min_processes"),
        ({"min_processes": 1.5}, "min_processes"),
        ({"fleet_minimum_calls": 0}, "fleet_minimum_calls"),
        ({"flush_interval": 0}, "flush_interval"),
        ({"fleet_window": 1.0}, "fleet_window"),  # below 2 x flush_interval
        ({"probe_lease": float("inf")}, "probe_lease"),
        ({"half_open_calls": 0}, "half_open_calls"),
    ],
)
def test_options_are_validated(changes: dict[str, object], parameter: str) -> None:
    backend = MemoryBackend(flusher=False)
    options: dict[str, object] = {"backend": backend, "name": "db", **changes}
    with pytest.raises(ConfigError) as raised:
        FleetBreakerOptions(**options)  # type: ignore[arg-type]
    assert raised.value.parameter == parameter
    assert repr(changes[parameter]) in str(raised.value)


def test_it_is_a_circuit_breaker_with_options_of_its_own(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock, flusher=False)
    breaker = FleetBreaker(backend, "db", min_processes=3, clock=clock)
    assert isinstance(breaker, CircuitBreaker)
    assert breaker.options.min_processes == 3
    copy = breaker.replace(min_processes=4)
    assert copy.options.min_processes == 4
    assert copy.backend is backend
    assert FleetBreaker.from_options(copy.options).options == copy.options
    with pytest.raises(ConfigError):
        FleetBreaker.from_options(CircuitBreaker("db").options)  # type: ignore[arg-type]
    assert "min_processes=3" in repr(breaker)
    assert breaker.state == "closed"


# -- the contract ------------------------------------------------------------------------


def test_failures_of_one_process_never_open_the_fleet(fleet: Fleet) -> None:
    # The sick host's own breaker never trips here (a window it never fills), so only
    # the fleet's rule stands between its failures and everyone's breaker.
    sick = fleet.process(min_processes=2, window=1000, minimum_calls=1000)
    healthy = fleet.process(min_processes=2)
    fleet.flush()
    for _ in range(10):  # ten seconds of a sick host failing every call
        assert calls(sick, down, 30) == (0, 30, 0)
        calls(healthy, ok, 1)
        fleet.flush()
        fleet.clock.advance(1.0)
    calls_seen, failures_seen, processes = sick.fleet_calls
    assert failures_seen * 2 >= calls_seen >= 10  # rate and volume are past the rule ...
    assert processes == 1  # ... but the failures come from one process
    assert sick.fleet_state == healthy.fleet_state == "closed"
    assert calls(healthy, ok, 5) == (5, 0, 0)
    calls(healthy, down, 1)  # a second process fails: the fleet opens
    fleet.flush()
    fleet.flush()
    assert sick.state == healthy.state == "open"


def test_failures_from_min_processes_open_it_for_everyone(fleet: Fleet) -> None:
    first, second, third = (fleet.process(min_processes=2, minimum_calls=20) for _ in range(3))
    fleet.flush()
    calls(first, down, 5)  # 5 failures each: the local breakers (20 calls) stay closed
    fleet.flush()
    assert first.fleet_state == "closed"
    calls(second, down, 5)
    calls(third, ok, 2)
    fleet.flush()
    fleet.flush()  # within one more flush, every process knows
    for process in (first, second, third):
        assert process.fleet_state == process.state == "open"
        assert process.local_state == "closed"
    assert first.fleet_calls == (0, 0, 0)  # the window is cleared on a change
    assert calls(third, ok, 3) == (0, 0, 3)


def test_the_fleet_trips_only_past_its_minimum_volume(fleet: Fleet) -> None:
    first, second = (fleet.process(fleet_minimum_calls=40) for _ in range(2))
    fleet.flush()
    calls(first, down, 10)
    calls(second, down, 10)
    fleet.flush()
    assert first.fleet_state == second.fleet_state == "closed"
    assert max(first.fleet_calls[0], second.fleet_calls[0]) == 20
    calls(first, ok, 10)
    calls(second, ok, 9)
    fleet.flush()
    assert "closed" in (first.fleet_state, second.fleet_state)  # 39 calls
    calls(second, ok, 1)  # the 40th: 20 failures in 40 calls, at 0.5
    fleet.flush()
    assert second.fleet_state == "open"


def test_a_process_with_calls_learns_within_one_flush_and_an_idle_one_at_its_first_call(
    fleet: Fleet,
) -> None:
    a, b, busy, idle = (fleet.process() for _ in range(4))
    fleet.flush()  # everyone's first exchange: a clean, closed fleet
    fleet.clock.advance(1.0)
    calls(a, down, 10)
    calls(b, down, 10)
    calls(busy, ok, 10)
    fleet.flush()
    fleet.clock.advance(1.0)
    calls(busy, ok, 1)
    fleet.flush()
    assert a.state == b.state == busy.state == "open"
    assert idle.state == "closed"  # it had nothing to send: it did not ask
    assert calls(idle, ok, 1) == (1, 0, 0)  # its first call runs on local state ...
    assert idle._fleet_news  # ... and makes news: its exchange goes out at once
    fleet.flush()
    assert idle.state == "open"
    assert calls(idle, ok, 1) == (0, 0, 1)


def test_half_open_admits_exactly_k_probes_fleet_wide(fleet: Fleet, recorder: Recorder) -> None:
    processes = [fleet.process(half_open_calls=2) for _ in range(5)]
    fleet.flush()
    for process in processes[:2]:
        calls(process, down, 10)
    for _ in range(2):
        for process in processes[2:]:
            calls(process, ok, 1)  # they have calls: each exchanges once a flush interval
        fleet.flush()
    assert all(process.state == "open" for process in processes)
    fleet.open_time_up()
    assert all(process.state == "half_open" for process in processes)
    # A process without a lease refuses, and asks for one at its next exchange.
    for process in processes:
        assert calls(process, ok, 1) == (0, 0, 1)
    fleet.flush()
    assert sum(process.probe_leases for process in processes) == 2
    fleet.flush()  # nobody gets more while both are out
    assert sum(process.probe_leases for process in processes) == 2
    reached = [calls(process, ok, 3)[0] for process in processes]
    assert sum(reached) == 2  # one call each on a lease; the rest refused
    fleet.flush()
    fleet.flush()
    assert all(process.state == "closed" for process in processes)
    changes = recorder.of(FleetBreakerStateChanged)
    assert [(event.previous, event.state) for event in changes[:1]] == [("closed", "open")]
    assert any(event.state == "closed" for event in changes)
    assert recorder.of(BreakerRejected)


def test_a_failed_probe_reopens_the_fleet(fleet: Fleet) -> None:
    processes = [fleet.process(open_for=30.0, open_for_max=120.0) for _ in range(3)]
    fleet.flush()
    for process in processes:
        calls(process, down, 5)
    fleet.flush()
    fleet.flush()
    fleet.open_time_up()
    for process in processes:
        calls(process, down, 1)  # refused: no lease yet
    fleet.flush()
    (holder,) = [process for process in processes if process.probe_leases]
    assert calls(holder, down, 1) == (0, 1, 0)  # the probe reaches it, and fails
    fleet.flush()
    fleet.flush()
    assert all(process.state == "open" for process in processes)
    assert holder.fleet_state == "open"
    with pytest.raises(CircuitOpen) as refused:
        holder.call(ok)
    assert refused.value.retry_after == pytest.approx(60.0, abs=1.0)  # twice as long


def test_a_lease_lost_with_its_process_lapses(fleet: Fleet) -> None:
    first, second = fleet.process(), fleet.process()
    fleet.flush()
    calls(first, down, 10)
    calls(second, down, 10)
    fleet.flush()
    fleet.flush()
    fleet.open_time_up()
    calls(first, ok, 1)
    fleet.flush()
    assert first.probe_leases == 1
    first._fleet_news = False  # it hangs: never uses its lease, never exchanges
    first._want_probe = False
    first._fleet_closed = True
    calls(second, ok, 1)
    fleet.flush()
    assert second.probe_leases == 0
    fleet.probe_leases_lapse()
    fleet.flush()
    assert second.probe_leases == 1
    assert calls(second, ok, 1) == (1, 0, 0)
    fleet.flush()
    assert second.state == "closed"


def test_the_local_breaker_still_decides_on_its_own(fleet: Fleet) -> None:
    alone = fleet.process(min_processes=5, minimum_calls=5, window=10)
    fleet.flush()
    calls(alone, down, 5)
    assert alone.state == alone.local_state == "open"  # open locally: refused ...
    assert alone.fleet_state == "closed"  # ... whatever the fleet says
    assert calls(alone, ok, 1) == (0, 0, 1)
    alone.force_open()
    assert alone.state == "forced_open"
    alone.disable()
    assert calls(alone, down, 3) == (0, 3, 0)
    alone.reset()
    assert alone.state == "closed"


def test_round_trips_none_when_idle_one_a_flush_interval_when_busy(fleet: Fleet) -> None:
    first, second = fleet.process(), fleet.process()
    assert fleet.flush() == 2  # each learns the fleet's state once
    for _ in range(10):  # ten idle seconds
        fleet.clock.advance(1.0)
        assert sum(b.flush(only_due=True) for b in dict.fromkeys(fleet.backends)) == 0
    trips = 0
    for _ in range(10):  # ten seconds of calls, half failing, 20 a second
        for _ in range(10):
            calls(first, ok, 1)
            calls(second, down, 1)
            trips += sum(b.flush(only_due=True) for b in dict.fromkeys(fleet.backends))
        fleet.clock.advance(1.0)
    assert trips == 2 * 10  # one exchange a second per process, not one per call


def test_an_unreachable_backend_leaves_the_local_breaker_alone(
    fleet: Fleet, recorder: Recorder
) -> None:
    first, second = (fleet.process(minimum_calls=50) for _ in range(2))
    fleet.flush()
    calls(first, down, 10)
    calls(second, down, 10)
    fleet.flush()
    fleet.flush()
    assert first.state == second.state == "open"
    with unreachable(fleet):
        fleet.flush()
        assert all(backend.degraded for backend in fleet.backends)
        assert first.state == second.state == "closed"  # the local breakers alone
        assert calls(first, ok, 30) == (30, 0, 0)  # no error reaches the caller
        assert calls(second, down, 40) == (0, 40, 0)
        assert second.state == "open"  # its own breaker tripped: 50 of 50 failed
    assert recorder.of(FleetDegraded)
    fleet.clock.advance(1.0)  # past the first reconnect's backoff, within the open time
    for backend in dict.fromkeys(fleet.backends):
        backend.flush(only_due=True)
    assert not any(backend.degraded for backend in fleet.backends)
    assert recorder.of(FleetRecovered)
    assert first.fleet_state == "open"  # resynced: the fleet is still open (30 s more)
    fleet.open_time_up()
    calls(first, ok, 1)
    fleet.flush()
    assert calls(first, ok, 1) == (1, 0, 0)  # the probe
    fleet.flush()
    assert first.fleet_state == "closed"


class unreachable:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.saved: dict[int, object] = {}

    def __enter__(self) -> None:
        import_redis = None
        for backend in dict.fromkeys(self.fleet.backends):
            if isinstance(backend, MemoryBackend):
                backend.unreachable = True
            else:
                assert isinstance(backend, RedisBackend)
                if import_redis is None:
                    import redis
                    from redis.backoff import NoBackoff
                    from redis.retry import Retry as RedisRetry

                    import_redis = redis
                self.saved[id(backend)] = backend._client
                backend._client = import_redis.Redis(
                    port=closed_port(),
                    socket_timeout=0.2,
                    socket_connect_timeout=0.2,
                    retry=RedisRetry(NoBackoff(), 0),
                )

    def __exit__(self, *exc_info: object) -> None:
        for backend in dict.fromkeys(self.fleet.backends):
            if isinstance(backend, MemoryBackend):
                backend.unreachable = False
            else:
                assert isinstance(backend, RedisBackend)
                backend._client.close()
                backend._client = self.saved[id(backend)]


def test_async_calls_count_and_are_refused_alike(fleet: Fleet) -> None:
    first, second = fleet.process(), fleet.process()
    fleet.flush()

    async def adown() -> None:
        raise ConnectionError("down")

    async def aok() -> str:
        return "ok"

    async def main() -> tuple[int, int]:
        failed = refused = 0
        for breaker in (first, second):
            for _ in range(10):
                try:
                    await breaker.acall(adown)
                except ConnectionError:
                    failed += 1
        fleet.flush()
        fleet.flush()
        for breaker in (first, second):
            try:
                await breaker.acall(aok)
            except CircuitOpen:
                refused += 1
        return failed, refused

    assert asyncio.run(main()) == (20, 2)


def test_closing_sends_what_is_counted() -> None:
    backend = MemoryBackend(flusher=False, clock=FakeClock())
    breaker = FleetBreaker(backend, "db", clock=backend.clock)
    backend.flush()
    calls(breaker, down, 3)
    breaker.close()
    other = FleetBreaker(backend, "db", clock=backend.clock)
    backend.flush()
    assert other.fleet_calls == (3, 3, 1)


def test_the_success_path_counts_without_a_lock_or_the_network(clock: FakeClock) -> None:
    backend = MemoryBackend(flusher=False, clock=clock)
    breaker = FleetBreaker(backend, "db", clock=clock)
    backend.flush()
    decorated = breaker(ok)
    for _ in range(100):
        assert decorated() == "ok"
    breaker.on_success(breaker.acquire())
    assert backend.flush() == 1
    assert breaker.fleet_calls == (101, 0, 0)
    assert backend.flush() == 0  # nothing new, a clean fleet: no exchange


def test_the_script_replies_alike_on_every_backend(fleet: Fleet) -> None:
    """The exchange itself: Lua on Redis and its Python twin give the same replies."""
    from stormproof._fleet_breaker import BREAKER_SCRIPT

    backend = fleet.build()
    rule = [1, 2, 10, 2, 10_000, 30_000, 0, 1, 10_000]  # 0.5, 10 calls, 2 processes, ...

    def exchange(key: str, successes: int, failures: int, known: int = 1) -> list[int]:
        args = [successes, failures, known, 0, 0, 0, 0, known, key, *rule]
        return backend._run(BREAKER_SCRIPT, "raw", args)

    assert exchange("a", 0, 0, known=0) == [0, 1, 0, 0, 0, 0, 0, 0]
    assert exchange("a", 4, 6) == [0, 1, 0, 0, 0, 10, 6, 1]  # one process: no trip
    assert exchange("b", 5, 0) == [0, 1, 0, 0, 0, 15, 6, 1]  # 6 of 15: below the rate
    assert exchange("a", 0, 5, known=7) == [0, 1, 0, 0, 0, 15, 6, 1]  # another epoch: dropped
    st, epoch, left, span, granted, calls_seen, failed, processes = exchange("b", 0, 5)
    assert (st, epoch, span, granted, calls_seen, failed, processes) == (1, 2, 30_000, 0, 20, 11, 2)
    assert 29_000 <= left <= 30_000
