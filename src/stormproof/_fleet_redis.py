"""RedisBackend: fleet state in Redis or Valkey, one Lua script call per exchange.

``redis`` (redis-py, the ``redis`` extra) is imported when a ``RedisBackend`` is built,
never before. Keys are ``{<namespace>:<policy name>}:<suffix>``: the hash tag puts every
key of one policy in one Redis Cluster slot. Values are plain hashes of integers.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterable
from typing import Any

from ._backoff import Backoff
from ._core.clock import Clock
from ._core.errors import ConfigError
from ._core.events import Listener
from ._core.validate import check_name, check_number
from ._fleet import KEY_TTL, RECONNECT, Args, FleetBackend, Script, check_key_part

__all__ = ["MAX_CLIENT_TIMEOUT", "RedisBackend"]

DEFAULT_TIMEOUT = 0.2
"""Socket and connect timeouts (seconds) of a client built from a URL."""

MAX_CLIENT_TIMEOUT = 1.0
"""The longest socket timeout (seconds) allowed for a client: one exchange of the
flusher never waits longer for a slow or paused server."""

_SCHEMES = ("redis://", "rediss://", "unix://")
_CLIENT = "a redis://, rediss:// or unix:// URL, or a synchronous redis-py client"


class RedisBackend(FleetBackend):
    """Fleet state in Redis (or Valkey): every process of the fleet builds one with the
    same URL and namespace, and its policies with the same names share their state.

    ``url_or_client``: a ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL (a password
    in the URL is sent with AUTH), for which a client is built with ``timeout``-second
    socket and connect timeouts and redis-py's retries off; or a synchronous redis-py
    client of your own (``redis.Redis``, ``redis.RedisCluster``), which must have both
    timeouts set and at most ``MAX_CLIENT_TIMEOUT`` (1 s) and retries off, or a
    ``ConfigError`` names the setting. Nothing connects until the first exchange: a
    server that is down when the process starts is a degraded backend, not an error.
    """

    def __init__(
        self,
        url_or_client: str | Any,
        *,
        namespace: str = "sp",
        name: str = "fleet-redis",
        timeout: float = DEFAULT_TIMEOUT,
        clock: Clock | None = None,
        listeners: Iterable[Listener] | None = None,
        backoff: Backoff = RECONNECT,
        flusher: bool = True,
        key_ttl: float = KEY_TTL,
    ) -> None:
        self._namespace = check_key_part("namespace", namespace, "sp")
        timeout = check_number("timeout", timeout, low=0.0, high=MAX_CLIENT_TIMEOUT, low_open=True)
        self._owned = isinstance(url_or_client, str)
        client = _client(url_or_client, timeout) if self._owned else url_or_client
        _check_client(client)
        self._client: Any = client
        self._shas: dict[str, str] = {}
        super().__init__(
            name=check_name("name", name, "fleet-redis"),
            clock=clock,
            listeners=listeners,
            backoff=backoff,
            flusher=flusher,
            key_ttl=key_ttl,
        )

    @property
    def client(self) -> Any:
        """The redis-py client the flusher uses."""
        return self._client

    def _key(self, policy: str, suffix: str) -> str:
        return f"{{{self._namespace}:{policy}}}:{suffix}"

    def _run(self, script: Script, policy: str, args: Args) -> list[int]:
        from redis.exceptions import NoScriptError  # noqa: PLC0415 - redis only when used

        keys = [self._key(policy, suffix) for suffix in script.suffixes]
        sha = self._shas.get(script.name)
        if sha is None:
            sha = self._shas[script.name] = hashlib.sha1(script.lua.encode()).hexdigest()
        arguments = (*keys, *args, self._key_ttl_ms)
        try:
            reply = self._client.evalsha(sha, len(keys), *arguments)
        except NoScriptError:  # a new or restarted server: load it, then run it
            self._client.script_load(script.lua)
            reply = self._client.evalsha(sha, len(keys), *arguments)
        return [int(value) for value in reply]

    def _closed_hook(self) -> None:
        if self._owned:
            self._client.close()

    def __repr__(self) -> str:
        kwargs = self._client.get_connection_kwargs()
        where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
        return f"RedisBackend({where!r}, namespace={self._namespace!r}, name={self._name!r})"


def _client(url: str, timeout: float) -> Any:
    """A client for ``url``: short timeouts, no retries of its own, no health checks
    (the flusher is the only user, and it has a backoff of its own)."""
    if not url.startswith(_SCHEMES):
        raise ConfigError("url_or_client", _CLIENT, url.rsplit("@", maxsplit=1)[-1])
    try:
        import redis  # noqa: PLC0415 - importing stormproof.fleet never imports redis
        from redis.backoff import NoBackoff  # noqa: PLC0415
        from redis.retry import Retry as RedisRetry  # noqa: PLC0415
    except ImportError as error:  # pragma: no cover - the extra is installed in tests
        raise ImportError("RedisBackend needs redis-py: pip install 'stormproof[redis]'") from error
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=RedisRetry(NoBackoff(), 0),
        health_check_interval=0,
    )


def _check_client(client: Any) -> None:
    """A synchronous client whose waits are bounded and which does not retry."""
    if isinstance(client, type):
        raise ConfigError("url_or_client", f"{_CLIENT} (an instance, not the class)", client)
    evalsha = getattr(client, "evalsha", None)
    kwargs_of = getattr(client, "get_connection_kwargs", None)
    if not callable(evalsha) or not callable(kwargs_of):
        raise ConfigError("url_or_client", _CLIENT, client)
    if type(client).__module__.startswith("redis.asyncio") or inspect.iscoroutinefunction(evalsha):
        raise ConfigError(
            "url_or_client",
            f"{_CLIENT}: the flusher runs in a thread of its own, never on an event loop "
            "(pass redis.Redis, not redis.asyncio.Redis)",
            client,
        )
    kwargs = kwargs_of()
    settings = ["socket_timeout"]
    if "path" not in kwargs:  # a TCP connection: connecting can hang too
        settings.append("socket_connect_timeout")
    for setting in settings:
        value = kwargs.get(setting)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0 < value <= MAX_CLIENT_TIMEOUT
        ):
            raise ConfigError(
                setting,
                f"set on the client, and at most {MAX_CLIENT_TIMEOUT:g} s (the flusher "
                "must never wait longer on a slow or paused server)",
                value,
            )
    if kwargs.get("retry_on_timeout"):
        raise ConfigError(
            "retry_on_timeout", "False (the flusher retries on its own backoff)", True
        )
    get_retry = getattr(client, "get_retry", None)
    retry = get_retry() if callable(get_retry) else getattr(client, "retry", None)
    retries = retry.get_retries() if retry is not None else 0
    if retries:
        raise ConfigError(
            "retry",
            "off on the client: redis.retry.Retry(NoBackoff(), 0) (the flusher retries on "
            "its own backoff)",
            f"{retries} retries",
        )
