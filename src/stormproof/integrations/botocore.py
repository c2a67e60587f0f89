"""Protect a boto3/botocore client with stormproof's policies, in place of the SDK's
own retries.

``protect(client, retry=..., breaker=..., bulkhead=...)`` removes the SDK's retry
handler (so exactly the attempts stormproof decides are sent) and keeps every other
handler the SDK needs; a stormproof ``Retry`` then decides each retry (its budget,
backoff, the caller's deadline, ``x-amz-retry-after``), sleeping on its own clock, a
``CircuitBreaker`` and a ``Bulkhead`` guard every attempt, and botocore's errors are
classified by ``stormproof.classify`` (throttling codes, transient codes and 5xx,
timeouts, DNS failures apart from refused connections). It works through botocore's
documented events (``before-call``, ``before-send``, ``needs-retry``): each attempt is
still built and signed by botocore.

Works with aiobotocore's clients too (its handlers are awaited; the backoff is slept
with ``await clock.asleep``). Requires botocore (extra ``[aws]``, which brings boto3;
``[aioaws]`` brings aiobotocore).
"""

from __future__ import annotations

import inspect
import json
import weakref
from collections.abc import Callable, Collection, Mapping
from functools import partial
from typing import Any

import botocore.client
import botocore.exceptions

from stormproof import (
    Bulkhead,
    BulkheadFull,
    Cache,
    CircuitBreaker,
    ConfigError,
    Failover,
    Pipeline,
    Retry,
    TokenBucketBudget,
)
from stormproof.classify import is_connection_error, is_server_error, is_throttling, is_timeout
from stormproof.options import BreakerOptions
from stormproof.retry import RetryState, retrying

from ._http import parse_retry_after

__all__ = [
    "READS",
    "TRANSIENT_CODES",
    "RegionalClient",
    "protect",
    "protection",
    "retryable",
]

TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}
)
"""Error codes AWS SDKs retry as transient (besides 5xx statuses and throttling)."""


def retryable(error: object) -> bool:
    """What the AWS SDKs' standard mode retries: throttling, 5xx answers and the
    transient error codes, connection errors (DNS failures included) and timeouts."""
    return (
        is_throttling(error)
        or is_server_error(error)
        or is_connection_error(error)
        or is_timeout(error)
        or _code(error) in TRANSIENT_CODES
    )


def _code(error: object) -> str | None:
    """A botocore ``ClientError``'s error code."""
    response = getattr(error, "response", None)
    details = response.get("Error") if isinstance(response, dict) else None
    code = details.get("Code") if isinstance(details, dict) else None
    return code if isinstance(code, str) else None


_PROTECTED: weakref.WeakKeyDictionary[Any, _Protection] = weakref.WeakKeyDictionary()
_KEY = "stormproof"
"""Where a call's state lives in botocore's request context."""


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


_DEFAULT: Any = _Default()


class _Call:
    """One API call: its retry decisions and the permits its attempt in flight holds."""

    __slots__ = ("permit", "slot", "started", "state")

    def __init__(self, state: RetryState | None) -> None:
        self.state = state
        self.permit: int | None = None
        self.slot = False
        self.started = 0.0


def protection(client: Any) -> _Protection | None:
    """What ``protect`` installed on ``client`` (its ``retry``, ``breaker``,
    ``bulkhead``), or None."""
    return _PROTECTED.get(client)


def protect(
    client: Any,
    *,
    retry: Retry | None = _DEFAULT,
    breaker: CircuitBreaker | None = None,
    bulkhead: Bulkhead | None = None,
) -> Any:
    """Protect ``client`` (a boto3 or botocore client) and return it.

    ``retry``: the ``Retry`` deciding every retry, in place of the SDK's (default:
    ``Retry(on=retryable, attempts=3, budget=TokenBucketBudget.aws_standard())``, a
    quota of its own per client); None keeps the SDK's own retries. ``breaker`` and
    ``bulkhead`` guard each attempt: an open breaker or a full bulkhead refuses the
    attempt before it is sent (``CircuitOpen``, ``BulkheadFull``), and a refusal is not
    retried unless the Retry has ``retry_rejected``. Give each client its own breaker
    and bulkhead, or share one between clients of the same dependency.

    Protecting a client twice is a ``ConfigError``. A client in the SDK's adaptive
    retry mode loses its client-side rate limiter too (it sleeps on its own clock).
    """
    if not isinstance(client, botocore.client.BaseClient):
        raise ConfigError("client", "a boto3 or botocore client", client)
    if client in _PROTECTED:
        raise ConfigError("client", "a client not protected yet (protect it once)", client)
    service = client.meta.service_model.service_id.hyphenize()
    retry = _retry_option(retry, service)
    if breaker is not None and not isinstance(breaker, CircuitBreaker):
        raise ConfigError("breaker", "a CircuitBreaker or None", breaker)
    if bulkhead is not None and not isinstance(bulkhead, Bulkhead):
        raise ConfigError("bulkhead", "a Bulkhead or None", bulkhead)
    protection = _Protection(service, retry, breaker, bulkhead)
    events = client.meta.events
    if retry is not None:
        _remove_sdk_retries(client, service)
    decide = protection.aneeds_retry if _is_async(client) else protection.needs_retry
    events.register(f"before-call.{service}", protection.before_call, unique_id=_id("call", client))
    events.register(f"before-send.{service}", protection.before_send, unique_id=_id("send", client))
    events.register(f"needs-retry.{service}", decide, unique_id=_id("retry", client))
    events.register(
        f"after-call-error.{service}", protection.after_error, unique_id=_id("error", client)
    )
    _PROTECTED[client] = protection
    return client


def _retry_option(retry: object, service: str) -> Retry | None:
    """``retry`` checked; the default: the SDK's standard mode, decided by stormproof
    (3 attempts, a retry quota of its own)."""
    if retry is _DEFAULT:
        return Retry(
            on=retryable,
            attempts=3,
            budget=TokenBucketBudget.aws_standard(),
            name=f"aws.{service}",
        )
    if retry is not None and not isinstance(retry, Retry):
        raise ConfigError("retry", "a Retry or None", retry)
    return retry


def _is_async(client: Any) -> bool:
    """An aiobotocore client: its calls are coroutines, and it awaits its handlers."""
    return inspect.iscoroutinefunction(type(client)._make_api_call)


def _id(what: str, client: Any) -> str:
    return f"stormproof-{what}-{id(client)}"


def _remove_sdk_retries(client: Any, service: str) -> None:
    """Unregister the SDK's retry handler (any mode), the attempts seeder that goes
    with it, and adaptive mode's rate limiter; keep every other handler."""
    events = client.meta.events
    events.unregister(f"needs-retry.{service}", unique_id=f"retry-config-{service}")
    events.unregister(f"request-created.{service}", unique_id=f"seed-max-attempts-{service}")
    if client.meta.config.retries.get("mode") == "adaptive":
        _remove_rate_limiter(client, service)


def _remove_rate_limiter(client: Any, service: str) -> None:
    # Adaptive mode registers its limiter without an id: find its two bound methods.
    emitter = getattr(events := client.meta.events, "_emitter", None)
    trie = getattr(emitter, "_handlers", None)
    search: Callable[[str], Any] | None = getattr(trie, "prefix_search", None)
    found = 0
    if search is not None:
        for event in ("before-send", "needs-retry"):
            for handler in list(search(f"{event}.{service}.Operation")):
                owner = getattr(handler, "__self__", None)
                if type(owner).__name__ in ("ClientRateLimiter", "AsyncClientRateLimiter"):
                    events.unregister(event, handler)
                    found += 1
    if found != 2:
        raise ConfigError(
            "client",
            "a client in the SDK's standard or legacy retry mode (its adaptive mode's "
            "rate limiter could not be removed: create it with "
            "Config(retries={'mode': 'standard'}))",
            client,
        )


def _retry_after(http: Any) -> float | None:
    """The server's hint, in seconds: ``x-amz-retry-after`` (milliseconds) or
    ``Retry-After`` (seconds or an HTTP-date)."""
    headers = getattr(http, "headers", None)
    if headers is None:
        return None
    millis = headers.get("x-amz-retry-after")
    if millis is not None and millis.strip().isdigit():  # whole milliseconds
        return int(millis) / 1000.0
    return parse_retry_after(headers.get("retry-after"), date=headers.get("date"))


class _Protection:
    """What ``protect`` installed on one client: its policies (``retry``, ``breaker``,
    ``bulkhead``) and the event handlers that carry their decisions out."""

    __slots__ = ("__weakref__", "_clock", "breaker", "bulkhead", "retry", "service")

    def __init__(
        self,
        service: str,
        retry: Retry | None,
        breaker: CircuitBreaker | None,
        bulkhead: Bulkhead | None,
    ) -> None:
        self.service = service
        self.retry = retry
        self.breaker = breaker
        self.bulkhead = bulkhead
        clock = breaker.options.clock if breaker is not None else None
        self._clock = retry.options.clock if retry is not None else clock

    def before_call(self, context: dict[str, Any], **_: Any) -> None:
        """A call starts: its retry state (the budget may refuse it here, before any
        attempt: ``Throttled``; so may the caller's spent deadline)."""
        retry = self.retry
        state = None
        if retry is not None and (retry.retries_when_nested or not retrying()):
            state = retry.begin()
        context[_KEY] = _Call(state)

    def before_send(self, request: Any, **_: Any) -> None:
        """An attempt is about to be sent: the breaker and the bulkhead admit it, or
        refuse it (the refusal is the attempt's error)."""
        call: _Call | None = (request.context or {}).get(_KEY)
        if call is None:
            return
        breaker = self.breaker
        if breaker is not None:
            call.permit = breaker.acquire()  # raises CircuitOpen when open
            call.started = breaker.options.clock.now()
        bulkhead = self.bulkhead
        if bulkhead is not None:
            if not bulkhead.try_acquire():
                self._release(call)
                raise BulkheadFull(bulkhead.name)
            call.slot = True

    def needs_retry(self, **event: Any) -> float | None:
        """An attempt ended: record it, then decide. Returns None (no retry) or 0 after
        sleeping the backoff on the Retry's clock."""
        delay = self._decide(**event)
        if delay is None:
            return None
        if delay > 0:
            assert self._clock is not None
            self._clock.sleep(delay)
        return 0  # botocore sleeps this long: stormproof already waited, on its clock

    async def aneeds_retry(self, **event: Any) -> float | None:
        """``needs_retry`` for aiobotocore, which awaits its handlers."""
        delay = self._decide(**event)
        if delay is None:
            return None
        if delay > 0:
            assert self._clock is not None
            await self._clock.asleep(delay)
        return 0

    def _decide(
        self,
        response: Any,
        caught_exception: BaseException | None,
        request_dict: dict[str, Any],
        operation: Any,
        **_: Any,
    ) -> float | None:
        """Record the attempt's outcome (breaker, bulkhead), then ask the Retry: None
        (no retry) or the backoff, still to be slept."""
        call: _Call | None = request_dict["context"].get(_KEY)
        if call is None:
            return None
        error: BaseException | None = caught_exception
        if error is None and response is not None:
            http, parsed = response
            if http.status_code >= 300:
                answered: Any = botocore.exceptions.ClientError(parsed, operation.name)
                answered.retry_after = _retry_after(http)  # the Retry honours it
                error = answered
        self._record(call, error)
        state = call.state
        if state is None:
            return None
        if error is None:
            state.on_success()
            return None
        assert self._clock is not None  # a state comes from a Retry, which has a clock
        return state.on_exception(error, self._clock.now())

    def after_error(self, context: dict[str, Any], **_: Any) -> None:
        """The call raised out of botocore's loop (a parse error, an interruption):
        give back what its attempt held."""
        call: _Call | None = context.get(_KEY)
        if call is not None:
            self._release(call)

    def _record(self, call: _Call, error: BaseException | None) -> None:
        breaker = self.breaker
        if call.slot:
            call.slot = False
            assert self.bulkhead is not None
            self.bulkhead.release()
        permit = call.permit
        if breaker is None or permit is None:
            return
        call.permit = None
        now = breaker.options.clock.now()
        if error is None:
            breaker.on_success(permit, now - call.started, now)
        else:
            breaker.on_error(permit, error, now - call.started, now)

    def _release(self, call: _Call) -> None:
        if call.slot:
            call.slot = False
            assert self.bulkhead is not None
            self.bulkhead.release()
        if call.permit is not None and self.breaker is not None:
            self.breaker.release(call.permit)
            call.permit = None


# -- one dependency in several regions: failover, and a cache for reads ------------------------

READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "GetObject", "HeadObject"})
"""The operations a ``RegionalClient`` caches by default (when it has a cache): reads."""


def _call_region(client: Any, method: str, params: Mapping[str, Any]) -> Any:
    return getattr(client, method)(**params)


def _cache_key(method: str, params: Mapping[str, Any]) -> str:
    """A cached read's key: the operation and its parameters, canonical."""
    return method + json.dumps(params, sort_keys=True, separators=(",", ":"), default=repr)


class RegionalClient:
    """One dependency in several regions, called like a client: ``orders.get_item(
    TableName=..., Key=...)``.

    Each call goes, in the recommended order, through ``cache`` (for the operations in
    ``cached``: a fresh entry answers without a request, a stale one answers when every
    region fails), ``retry`` (with its budget; the regions' own Retries make a single
    attempt beneath it), then ``Failover`` over ``clients`` (region name to client, in
    preference order, each protected with ``protect`` if it is not yet; a breaker per
    region from ``breaker``, ``failback_after``, ``probe_interval``). aiobotocore
    clients: the methods are coroutines.
    """

    def __init__(
        self,
        clients: Mapping[str, Any],
        *,
        retry: Retry | None = _DEFAULT,
        cache: Cache | None = None,
        cached: Collection[str] = READS,
        breaker: CircuitBreaker | BreakerOptions | None = None,
        failback_after: float | None = None,
        probe_interval: float | None = None,
    ) -> None:
        if not isinstance(clients, Mapping) or len(clients) < 2:
            raise ConfigError("clients", "a mapping of at least two regions to clients", clients)
        kinds = set()
        for region, client in clients.items():
            if not isinstance(client, botocore.client.BaseClient):
                raise ConfigError(f"clients[{region!r}]", "a boto3 or botocore client", client)
            kinds.add((client.meta.service_model.service_name, _is_async(client)))
        if len(kinds) != 1:
            raise ConfigError("clients", "clients of one service, all sync or all async", clients)
        ((service, self._async),) = kinds
        if cache is not None and not isinstance(cache, Cache):
            raise ConfigError("cache", "a Cache or None", cache)
        if isinstance(cached, str) or not all(isinstance(op, str) for op in cached):
            raise ConfigError("cached", "a collection of operation names", cached)
        retry = _retry_option(retry, service)
        for client in clients.values():
            if client not in _PROTECTED:
                protect(client)
        failover_options: dict[str, Any] = {"name": f"aws.{service}"}
        if breaker is not None:
            failover_options["breaker"] = breaker
        if failback_after is not None:
            failover_options["failback_after"] = failback_after
        if probe_interval is not None:
            failover_options["probe_interval"] = probe_interval
        if retry is not None:
            failover_options["clock"] = retry.options.clock
        self._failover = Failover(
            {region: partial(_call_region, client) for region, client in clients.items()},
            **failover_options,
        )
        if cache is not None and cache.options.key is None:
            cache = cache.replace(key=_cache_key)
        self.clients = dict(clients)
        self.retry = retry
        self.cache = cache
        self.cached = frozenset(cached)
        meta = next(iter(clients.values())).meta
        self._operations: dict[str, str] = dict(meta.method_to_api_mapping)
        outer = [retry] if retry is not None else []
        reads = [cache, *outer] if cache is not None else outer
        self._plain = Pipeline(*outer) if outer else None
        self._reads = Pipeline(*reads) if reads else None

    @property
    def failover(self) -> Failover:
        """The Failover over the regions (its breakers: ``failover.breaker(region)``)."""
        return self._failover

    def __getattr__(self, method: str) -> Callable[..., Any]:
        """The client method ``method`` through the policies, made on first use and
        kept (later lookups find it in the instance)."""
        operations = self.__dict__.get("_operations", {})
        if method not in operations:
            raise AttributeError(method)
        pipeline = self._reads if operations[method] in self.cached else self._plain
        made: Callable[..., Any]
        if self._async:
            failover = self._failover.acall

            async def acall(**params: Any) -> Any:
                if pipeline is None:
                    return await failover(method, params)
                return await pipeline.acall(failover, method, params)

            made = acall
        else:
            failover_call = self._failover.call

            def call(**params: Any) -> Any:
                if pipeline is None:
                    return failover_call(method, params)
                return pipeline.call(failover_call, method, params)

            made = call
        self.__dict__[method] = made
        return made
