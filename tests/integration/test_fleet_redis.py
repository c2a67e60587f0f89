"""FleetBudget on a real redis-server on loopback: a fleet of processes, the round
trips Redis counts, a server that pauses and one that dies, AUTH, and the checks of a
client passed in."""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from stormproof import ConfigError, Retry
from stormproof.events import Recorder
from stormproof.fleet import FleetBudget, FleetDegraded, FleetRecovered, RedisBackend
from stormproof.testing import FakeClock
from tests.redis_server import RedisServer, redis_server_binary

from . import fleet_worker

redis = pytest.importorskip("redis")

PROCESSES = 8
REQUESTS = 100  # each: 1 attempt and up to 2 retries, all failing


def fleet_retries(url: str | None) -> list[int]:
    """Retries made by each of PROCESSES processes during a 100% failure burst."""
    # A fork server imports stormproof and redis once; each process is a fork of it.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["stormproof.fleet", "redis", fleet_worker.__name__])
    start = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [
        context.Process(target=fleet_worker.run, args=(url, REQUESTS, start, results))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    try:
        retries = [results.get(timeout=60) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    assert all(worker.exitcode == 0 for worker in workers)
    return retries


def test_a_fleet_makes_the_retries_of_one_bucket_not_one_per_process(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    allowance = 500 // 5  # capacity / retry_cost
    bound = allowance + PROCESSES * 10  # plus N x lease, at worst
    fleet = fleet_retries(redis_url)
    alone = fleet_retries(None)
    with capsys.disabled():
        print(
            f"\n{PROCESSES} processes, {REQUESTS} failing requests each: "
            f"FleetBudget {sum(fleet)} retries (allowance {allowance}, bound {bound}; "
            f"per process {fleet}); a TokenBucketBudget per process {sum(alone)} retries"
        )
    assert sum(fleet) <= bound
    assert sum(fleet) >= allowance - PROCESSES * 10  # what was leased and not yet spent
    assert sum(alone) == PROCESSES * allowance
    client = redis.Redis.from_url(redis_url)
    stored = client.hgetall("{sp:orders}:bucket")
    client.close()
    assert int(stored[b"leased"]) == 0  # every process gave back what it held


def command_calls(client: Any) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT, from INFO commandstats."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def fleet_round_trips(client: Any) -> int:
    calls = command_calls(client)
    return sum(calls.get(name, 0) for name in ("evalsha", "eval", "get", "hgetall", "script"))


def test_round_trips_counted_by_redis(redis_url: str, clock: FakeClock) -> None:
    """At most one exchange per second per policy; none on the success path."""
    probe = redis.Redis.from_url(redis_url)
    backend = RedisBackend(redis_url, clock=clock, flusher=False)
    budget = FleetBudget(backend, name="orders", lease=2)
    retry = Retry(on=ConnectionError, attempts=3, budget=budget, clock=FakeClock())
    assert backend.flush(only_due=True) == 1  # the first lease (and the script loaded)
    probe.config_resetstat()

    for _ in range(10):  # ten seconds of successes, 1000 calls a second
        for _ in range(1000):
            retry.call(lambda: "ok")
        backend.flush(only_due=True)
        clock.advance(1.0)
    assert fleet_round_trips(probe) == 0

    def down() -> None:
        raise ConnectionError("down")

    for _ in range(10):  # ten seconds of failures, 50 calls a second
        for _ in range(50):
            with pytest.raises(ConnectionError):
                retry.call(down)
            backend.flush(only_due=True)  # as eager as a flusher can be
        clock.advance(1.0)
    calls = command_calls(probe)
    print(f"\nround trips in 10 s of failures (50 calls/s): {calls}")
    assert calls.get("evalsha", 0) == 10
    assert fleet_round_trips(probe) == 10
    backend.close()
    probe.close()


@pytest.fixture
def fleet_on_own_server(
    own_redis_server: RedisServer, clock: FakeClock
) -> Iterator[tuple[RedisBackend, FleetBudget, Recorder]]:
    recorder = Recorder()
    backend = RedisBackend(
        own_redis_server.url, clock=clock, flusher=False, listeners=[recorder], name="fleet"
    )
    budget = FleetBudget(backend, name="orders", capacity=100, retry_cost=5, lease=4)
    yield backend, budget, recorder
    backend.close()


class Guarded:
    """A client stand-in that fails the test if anything calls it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the call path used the client: {name}")


def calls_through(retry: Retry, n: int) -> tuple[int, int]:
    """n requests, every third failing once: (successes, errors the caller saw)."""
    outcomes = [0, 0]
    for i in range(n):
        failures = iter([ConnectionError("flaky")] if i % 3 == 0 else [])

        def flaky(failures: Iterator[Exception] = failures) -> str:
            for error in failures:
                raise error
            return "ok"

        try:
            retry.call(flaky)
            outcomes[0] += 1
        except ConnectionError:
            outcomes[1] += 1
    return outcomes[0], outcomes[1]


def test_a_paused_then_killed_server_costs_callers_nothing_and_state_resyncs(
    own_redis_server: RedisServer,
    fleet_on_own_server: tuple[RedisBackend, FleetBudget, Recorder],
    clock: FakeClock,
) -> None:
    backend, budget, recorder = fleet_on_own_server
    retry = Retry(on=ConnectionError, attempts=2, budget=budget, clock=FakeClock())
    assert backend.flush() == 1
    assert budget.leased == 20

    own_redis_server.pause()
    client, backend._client = backend._client, Guarded()
    assert calls_through(retry, 30) == (30, 0)  # no call touched the network
    backend._client = client
    assert backend.flush() == 1  # one exchange, which times out (0.2 s), and no error
    assert backend.degraded
    (degraded,) = recorder.of(FleetDegraded)
    assert (degraded.policy, degraded.reason) == ("fleet", "timeout")
    assert calls_through(retry, 30) == (30, 0)  # still no error, on local state

    own_redis_server.kill()
    assert backend.flush(only_due=True) == 0  # waiting for the reconnect backoff
    clock.advance(1.0)
    assert backend.flush(only_due=True) == 1  # tried: refused, still degraded
    assert backend.degraded
    assert calls_through(retry, 30) == (30, 0)

    own_redis_server.start()  # a new, empty server on the same port
    clock.advance(60.0)
    assert backend.flush(only_due=True) == 1
    assert not backend.degraded
    (recovered,) = recorder.of(FleetRecovered)
    assert recovered.attempts == 2
    # The bucket is made again from the configuration, what the process holds counted.
    fresh = redis.Redis.from_url(own_redis_server.url)
    stored = fresh.hgetall("{sp:orders}:bucket")
    fresh.close()
    assert int(stored[b"tokens"]) + int(stored[b"leased"]) == 100
    assert int(stored[b"leased"]) == budget.leased == 20


def test_the_flusher_thread_serves_asyncio_callers(redis_url: str) -> None:
    flushed = threading.Event()
    backend = RedisBackend(redis_url)  # a real flusher thread, the real clock
    original = backend._run

    def run(*args: Any) -> list[int]:
        reply = original(*args)
        flushed.set()
        return reply

    backend._run = run  # type: ignore[method-assign]
    budget = FleetBudget(backend, name="orders", capacity=100, retry_cost=5, lease=2)
    retry = Retry(on=ConnectionError, attempts=3, budget=budget)

    async def main() -> str:
        assert flushed.wait(timeout=10)  # the first lease, taken by the thread
        return await retry.acall(asyncio_ok)

    assert asyncio.run(main()) == "ok"
    assert budget.leased == 10
    backend.close()
    assert backend._thread is not None
    assert not backend._thread.is_alive()


async def asyncio_ok() -> str:
    return "ok"


def test_auth_with_the_password_in_the_url() -> None:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server")
    server = RedisServer(binary, password="s3cr3t")
    try:
        wrong = RedisBackend(server.url.replace("s3cr3t", "wrong"), flusher=False)
        refused = FleetBudget(wrong, name="orders")
        assert wrong.flush() == 1
        assert wrong.degraded  # refused: degraded, never an error to the caller
        assert refused.leased == 50  # never reached the fleet: a full local bucket
        assert "wrong" not in repr(wrong)
        wrong.close()
        backend = RedisBackend(server.url, flusher=False)
        budget = FleetBudget(backend, name="orders", lease=1)
        assert backend.flush() == 1
        assert not backend.degraded
        assert budget.leased == 10  # one retry at the largest cost (timeout_cost)
        backend.close()
    finally:
        server.close()


def test_a_rediss_url_makes_a_tls_client_with_the_short_timeouts() -> None:
    backend = RedisBackend("rediss://:pw@cache.example:6380/0", flusher=False)
    kwargs = backend.client.get_connection_kwargs()
    assert backend.client.connection_pool.connection_class.__name__ == "SSLConnection"
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.2, 0.2)
    assert kwargs["password"] == "pw"
    assert backend.client.get_retry().get_retries() == 0
    backend.close()


def test_a_client_passed_in_must_have_short_timeouts_and_no_retries() -> None:
    from redis.backoff import NoBackoff
    from redis.retry import Retry as RedisRetry

    off = RedisRetry(NoBackoff(), 0)
    with pytest.raises(ConfigError, match=r"socket_timeout must be .* got 5"):
        RedisBackend(redis.Redis(retry=off))  # redis-py's default: 5 s
    with pytest.raises(ConfigError, match=r"socket_timeout must be .* got None"):
        RedisBackend(redis.Redis(socket_timeout=None, retry=off))
    with pytest.raises(ConfigError, match=r"socket_connect_timeout must be .* got 3"):
        RedisBackend(redis.Redis(socket_timeout=0.5, socket_connect_timeout=3, retry=off))
    with pytest.raises(ConfigError, match=r"retry must be off .* got '10 retries'"):
        RedisBackend(redis.Redis(socket_timeout=0.5, socket_connect_timeout=0.5))
    with pytest.raises(ConfigError, match=r"not redis\.asyncio\.Redis"):
        RedisBackend(redis.asyncio.Redis(socket_timeout=0.5, socket_connect_timeout=0.5))
    with pytest.raises(ConfigError, match="url_or_client"):
        RedisBackend("http://cache:6379")
    with pytest.raises(ConfigError, match="timeout"):
        RedisBackend("redis://cache:6379", timeout=5)
    with pytest.raises(ConfigError, match="namespace"):
        RedisBackend("redis://cache:6379", namespace="a{b}")
    good = redis.Redis(socket_timeout=0.5, socket_connect_timeout=0.5, retry=off)
    backend = RedisBackend(good, flusher=False)
    assert backend.client is good
    backend.close()
    good.close()


def test_importing_stormproof_fleet_does_not_import_redis() -> None:
    code = (
        "import sys, stormproof.fleet, stormproof.events\n"
        "from stormproof.fleet import FleetBudget, MemoryBackend\n"
        "FleetBudget(MemoryBackend(flusher=False), name='x')\n"
        "assert 'redis' not in sys.modules, sorted(m for m in sys.modules if 'redis' in m)\n"
        "stormproof.fleet.RedisBackend('redis://127.0.0.1:1', flusher=False)\n"
        "assert 'redis' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"\s*", done.stdout)
