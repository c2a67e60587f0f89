"""FleetBreaker on a real redis-server on loopback: probes fleet-wide across real
processes, the round trips Redis counts, and a server that pauses and one that dies."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from typing import Any

import pytest

from stormproof import CircuitOpen
from stormproof.events import Recorder
from stormproof.fleet import FleetBreaker, FleetDegraded, FleetRecovered, RedisBackend
from stormproof.testing import FakeClock
from tests.redis_server import RedisServer

from . import fleet_breaker_worker
from .test_fleet_redis import Guarded, command_calls

redis = pytest.importorskip("redis")

PROCESSES = 8
ROUNDS = 30


def round_trips(client: Any) -> int:
    """Script calls since the last CONFIG RESETSTAT (the commands a script runs inside
    Redis are counted apart, under their own names)."""
    calls = command_calls(client)
    return sum(calls.get(name, 0) for name in ("evalsha", "eval", "script"))


def down() -> None:
    raise ConnectionError("down")


def ok() -> str:
    return "ok"


def trip(url: str, **options: Any) -> None:
    """Open the fleet's breaker "db" (two processes failing), then let its open time
    pass on the server's side (the stored end of it is moved to the past)."""
    backends = [RedisBackend(url, flusher=False) for _ in range(2)]
    breakers = [
        FleetBreaker(backend, "db", fleet_minimum_calls=10, **options) for backend in backends
    ]
    for backend, breaker in zip(backends, breakers, strict=True):
        backend.flush()
        for _ in range(10):
            with pytest.raises(ConnectionError):
                breaker.call(down)
        backend.flush()
    assert breakers[-1].fleet_state == "open"
    for backend in backends:
        backend.close()
    client = redis.Redis.from_url(url)
    client.hset("{sp:db}:state", "open_until", 0)
    client.close()


def probes_fleet_wide(url: str, half_open_calls: int) -> tuple[int, list[dict[str, Any]]]:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["stormproof.fleet", "redis", fleet_breaker_worker.__name__])
    start = context.Barrier(PROCESSES)
    reached = context.Value("i", 0)
    results = context.Queue()
    workers = [
        context.Process(
            target=fleet_breaker_worker.probe,
            args=(url, ROUNDS, half_open_calls, start, reached, results),
        )
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    try:
        seen = [results.get(timeout=60) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    assert all(worker.exitcode == 0 for worker in workers)
    return reached.value, seen


@pytest.mark.parametrize("half_open_calls", [1, 3])
def test_half_open_lets_exactly_k_probes_reach_the_dependency_fleet_wide(
    redis_url: str, half_open_calls: int, capsys: pytest.CaptureFixture[str]
) -> None:
    trip(redis_url, half_open_calls=half_open_calls)
    reached, seen = probes_fleet_wide(redis_url, half_open_calls)
    with capsys.disabled():
        print(
            f"\n{PROCESSES} processes x {ROUNDS} calls each on a half-open fleet "
            f"(half_open_calls={half_open_calls}), the dependency still down: "
            f"{reached} reached it; per process {[s['reached'] for s in seen]}"
        )
    assert all(s["state"].startswith("half_open") for s in seen)
    if half_open_calls == 1:
        assert reached == 1  # the probe fails: the fleet reopens, for 60 s
    else:  # the first failed probe reopens it: the other leases may not be granted
        assert 1 <= reached <= half_open_calls
    assert sum(s["refused"] for s in seen) == PROCESSES * ROUNDS - reached
    assert sum(s["errors"] for s in seen) == 0
    assert all(s["state"].endswith("open") for s in seen)


def test_round_trips_counted_by_redis(redis_url: str, clock: FakeClock) -> None:
    """None while idle, none on a call, at most one a second per breaker."""
    probe = redis.Redis.from_url(redis_url)
    backend = RedisBackend(redis_url, clock=clock, flusher=False)
    breaker = FleetBreaker(backend, "db", clock=clock)
    assert backend.flush(only_due=True) == 1  # learns the fleet's state (and loads the script)
    probe.config_resetstat()

    for _ in range(10):  # ten idle seconds
        backend.flush(only_due=True)
        clock.advance(1.0)
    assert round_trips(probe) == 0

    client, backend._client = backend._client, Guarded()
    for _ in range(1000):  # a call never touches the network
        breaker.call(ok)
    backend._client = client

    for _ in range(10):  # ten seconds of successes, 1000 calls a second
        for _ in range(1000):
            breaker.call(ok)
            backend.flush(only_due=True)  # as eager as a flusher can be
        clock.advance(1.0)
    busy = round_trips(probe)

    probe.config_resetstat()
    for _ in range(10):  # ten seconds of failures, 50 calls a second (it trips)
        for _ in range(50):
            try:
                breaker.call(down)
            except (ConnectionError, CircuitOpen):
                pass
            backend.flush(only_due=True)
        clock.advance(1.0)
    failing = command_calls(probe)
    print(f"\nround trips: 10 s of successes {busy}; 10 s of failures {failing}")
    assert busy == 10  # the counts of each second, once
    assert failing.get("evalsha", 0) == 10
    assert round_trips(probe) == 10
    backend.close()
    probe.close()


@pytest.fixture
def fleet_on_own_server(
    own_redis_server: RedisServer, clock: FakeClock
) -> Iterator[tuple[RedisBackend, FleetBreaker, Recorder]]:
    recorder = Recorder()
    backend = RedisBackend(
        own_redis_server.url, clock=clock, flusher=False, listeners=[recorder], name="fleet"
    )
    breaker = FleetBreaker(backend, "db", clock=clock, fleet_minimum_calls=10)
    yield backend, breaker, recorder
    backend.close()


def calls_through(breaker: FleetBreaker, n: int) -> tuple[int, int]:
    """n calls, every third failing: (answered, errors the caller saw that were not
    the dependency's own)."""
    answered = errors = 0
    for i in range(n):
        try:
            breaker.call(down if i % 3 == 0 else ok)
            answered += 1
        except ConnectionError as error:
            if str(error) != "down":
                errors += 1
        except Exception:
            errors += 1
    return answered, errors


def test_a_paused_then_killed_server_costs_callers_nothing_and_state_resyncs(
    own_redis_server: RedisServer,
    fleet_on_own_server: tuple[RedisBackend, FleetBreaker, Recorder],
    clock: FakeClock,
) -> None:
    backend, breaker, recorder = fleet_on_own_server
    assert backend.flush() == 1

    own_redis_server.pause()
    client, backend._client = backend._client, Guarded()
    assert calls_through(breaker, 30) == (20, 0)  # no call touched the network
    backend._client = client
    assert backend.flush() == 1  # one exchange, which times out (0.2 s), and no error
    assert backend.degraded
    (degraded,) = recorder.of(FleetDegraded)
    assert (degraded.policy, degraded.reason) == ("fleet", "timeout")
    assert calls_through(breaker, 30) == (20, 0)  # the local breaker alone
    assert breaker.state == "closed"

    own_redis_server.kill()
    assert backend.flush(only_due=True) == 0  # waiting for the reconnect backoff
    clock.advance(1.0)
    assert backend.flush(only_due=True) == 1  # tried: refused, still degraded
    assert backend.degraded
    assert calls_through(breaker, 30) == (20, 0)

    own_redis_server.start()  # a new, empty server on the same port
    clock.advance(60.0)
    assert backend.flush(only_due=True) == 1
    assert not backend.degraded
    (recovered,) = recorder.of(FleetRecovered)
    assert recovered.attempts == 2
    # The fleet's state is made again: closed, and counting from here.
    fresh = redis.Redis.from_url(own_redis_server.url)
    assert fresh.hget("{sp:db}:state", "st") == b"0"
    other = FleetBreaker(RedisBackend(own_redis_server.url, flusher=False), "db", clock=clock)
    for _ in range(10):
        with pytest.raises(ConnectionError):
            other.call(down)
    other.backend.flush()
    for _ in range(10):
        with pytest.raises(ConnectionError):
            breaker.call(down)
    backend.flush()
    assert breaker.fleet_state == "open"  # the fleet works again, across processes
    other.backend.close()
    fresh.close()
