"""The test Redis server starts, answers, pauses, dies and comes back."""

from __future__ import annotations

import pytest

from .redis_server import RedisServer

redis = pytest.importorskip("redis")


def test_the_session_server_answers(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    assert client.ping()
    client.set("k", "v")
    assert client.get("k") == b"v"
    client.close()


def test_a_server_of_its_own_can_pause_die_and_restart(own_redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(own_redis_server.url, socket_timeout=0.2, retry_on_timeout=False)
    client.set("k", "v")
    own_redis_server.pause()
    with pytest.raises(redis.exceptions.TimeoutError):
        client.get("k")
    client.close()
    own_redis_server.resume()
    fresh = redis.Redis.from_url(own_redis_server.url, socket_timeout=5)
    assert fresh.get("k") == b"v"
    fresh.close()
    own_redis_server.restart()
    fresh = redis.Redis.from_url(own_redis_server.url, socket_timeout=5)
    assert fresh.get("k") is None  # nothing is saved: a new server is empty
    fresh.close()
