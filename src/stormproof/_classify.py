"""What kind of failure is this? One place that answers, for budgets, retries and
failover.

Recognises errors by duck typing (attributes, class names, and the chain of causes
that HTTP clients build around the original error: ``__cause__``, ``__context__``,
``reason``, ``os_error``, exception arguments), so it works with botocore, httpx,
requests, urllib3, aiohttp and gRPC errors without importing any of them.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Final, Literal

from ._core.errors import Rejected

ErrorClass = Literal["transient", "timeout", "throttling"]
TRANSIENT: Final = "transient"
TIMEOUT: Final = "timeout"
THROTTLING: Final = "throttling"

THROTTLING_CODES: Final = frozenset(
    {
        # AWS error codes that mean "slow down" (botocore's standard retry mode list).
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        # gRPC status.
        "RESOURCE_EXHAUSTED",
    }
)

THROTTLING_STATUSES: Final = frozenset({429, 503})
"""HTTP statuses that mean "slow down", for answers from HTTP clients (see
``classify_status``)."""

_TIMEOUT_TYPES: tuple[type[BaseException], ...] = (TimeoutError, asyncio.TimeoutError)


def classify(error: object) -> ErrorClass:
    """``"throttling"``, ``"timeout"`` or ``"transient"`` (the default).

    - throttling: a truthy ``throttling`` attribute, HTTP status 429, or a known
      throttling error code (AWS codes such as ``ThrottlingException``, gRPC
      ``RESOURCE_EXHAUSTED``);
    - timeout: ``TimeoutError`` (which includes ``socket.timeout``),
      ``asyncio.TimeoutError``, or an exception class named like ``...Timeout...``
      (``ReadTimeoutError``, ``httpx.ConnectTimeout``, ...), anywhere in the chain of
      causes; a DNS failure is not a timeout, even where a client's class says so;
    - transient: everything else, DNS failures included.

    Works on results too (an HTTP response with ``status_code == 429`` is throttling).
    Never raises.
    """
    try:
        if is_throttling(error):
            return THROTTLING
        if is_timeout(error):
            return TIMEOUT
    except Exception:  # a misbehaving attribute must not hide the caller's error
        return TRANSIENT
    return TRANSIENT


def classify_status(status: int) -> ErrorClass:
    """The class of a failed HTTP answer with this status, as an HTTP client counts it:
    ``"throttling"`` for 429 Too Many Requests and 503 Service Unavailable (the server
    says it is overloaded, and often when to come back: ``Retry-After``), ``"transient"``
    for any other status (500, 502, 504, ...). Which statuses are failures at all is
    the caller's choice (the HTTP integrations: 429, 500, 502, 503 and 504).

    For answers of HTTP clients (httpx, requests). ``classify`` itself is unchanged: it
    sees a 503 on an error or result as a transient server error, as the AWS SDKs do
    (AWS says "slow down" with error codes such as ``SlowDown``, not with 503 alone).
    """
    return THROTTLING if status in THROTTLING_STATUSES else TRANSIENT


_MAX_CAUSES = 16
_LINKS = ("reason", "os_error", "original_error")


def causes(error: object) -> Iterator[BaseException]:
    """``error`` and the errors behind it: ``__cause__``, ``__context__``, and what
    clients keep as ``reason`` (urllib3, urllib), ``os_error`` (aiohttp), ``kwargs
    ["error"]`` (botocore) or an exception among ``args`` (requests). Each once,
    at most 16."""
    if not isinstance(error, BaseException):
        return
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending and len(seen) < _MAX_CAUSES:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked: list[object] = [current.__cause__, current.__context__]
        linked.extend(getattr(current, name, None) for name in _LINKS)
        extra = getattr(current, "kwargs", None)
        if isinstance(extra, dict):
            linked.append(extra.get("error"))
        linked.extend(current.args)
        pending.extend(link for link in linked if isinstance(link, BaseException))


_DNS_NAMES = frozenset({"NameResolutionError", "ClientConnectorDNSError"})
_CONNECTION_NAMES = (
    "ConnectError",
    "ConnectionError",
    "ClientConnectorError",
    "EndpointConnectionError",
    "ConnectionClosedError",
    "NewConnectionError",
    "RemoteDisconnected",
    "ServerDisconnectedError",
)


def is_dns_failure(error: object) -> bool:
    """Name resolution failed: ``socket.gaierror`` (NXDOMAIN, an empty record,
    SERVFAIL), or a client's wrapper of it, anywhere in the chain of causes."""
    for cause in causes(error):
        if isinstance(cause, socket.gaierror) or type(cause).__name__ in _DNS_NAMES:
            return True
    return False


def is_connection_error(error: object) -> bool:
    """No connection could be made or kept: DNS failures, refused or reset
    connections, and the clients' connection errors, anywhere in the chain."""
    for cause in causes(error):
        if isinstance(cause, (ConnectionError, socket.gaierror)):
            return True
        names = [klass.__name__ for klass in type(cause).__mro__]
        if any(name in _DNS_NAMES or name in _CONNECTION_NAMES for name in names):
            return True
    return False


def is_server_error(error: object) -> bool:
    """The dependency answered with a 5xx status (HTTP or AWS), anywhere in the chain."""
    for cause in causes(error) if isinstance(error, BaseException) else iter((error,)):
        status = _status(cause)
        if status is not None and 500 <= status <= 599:
            return True
    if not isinstance(error, BaseException):
        status = _status(error)
        return status is not None and 500 <= status <= 599
    return False


def is_regional_failure(error: object) -> bool:
    """Is this the place failing, so that another region may well succeed? DNS and
    connection failures, timeouts, 5xx answers, throttling, and rejections by a
    policy in front of the region (an open circuit breaker, a full bulkhead)."""
    if isinstance(error, Rejected):
        return True
    try:
        return (
            is_connection_error(error)
            or is_timeout(error)
            or is_server_error(error)
            or is_throttling(error)
        )
    except Exception:
        return False


# What a class alone tells us, cached per class: classification runs on every failed
# attempt (and, in the simulator, millions of times). Bounded: cleared when full.
_by_type: dict[type, tuple[bool, bool]] = {}
_ATTRIBUTES = frozenset({"throttling", "status_code", "status", "code", "response"})


def _named_timeout(kind: type) -> bool:
    """A class named like a timeout, or deriving from one, unless it is a connection or
    DNS error first: urllib3's ``NewConnectionError`` (a refused connection) derives
    from its ``ConnectTimeoutError`` for history's sake, and is no timeout."""
    for klass in kind.__mro__:
        name = klass.__name__
        if "Timeout" in name:
            return True
        if name in _DNS_NAMES or name in _CONNECTION_NAMES:
            return False
    return False


def _type_facts(kind: type) -> tuple[bool, bool]:
    """(named or typed like a timeout, has class-level attributes throttling looks at)."""
    facts = _by_type.get(kind)
    if facts is None:
        timeout = issubclass(kind, _TIMEOUT_TYPES) or (
            issubclass(kind, BaseException) and _named_timeout(kind)
        )
        attributes = hasattr(kind, "__getattr__") or any(
            hasattr(kind, name) for name in _ATTRIBUTES
        )
        facts = (timeout, attributes)
        if len(_by_type) >= 1024:
            _by_type.clear()
        _by_type[kind] = facts
    return facts


def is_timeout(error: object) -> bool:
    """A timeout, anywhere in the chain of causes; DNS failures are not timeouts (urllib3
    files its name-resolution error under a connect-timeout class)."""
    if _type_facts(type(error))[0] and type(error).__name__ not in _DNS_NAMES:
        return not isinstance(error, socket.gaierror) and not is_dns_failure(error)
    if not isinstance(error, BaseException) or (
        error.__cause__ is None and error.__context__ is None and not error.args
    ):
        return False
    return any(_type_facts(type(cause))[0] for cause in causes(error)) and not is_dns_failure(error)


def is_throttling(error: object) -> bool:
    if not _type_facts(type(error))[1]:
        # Nothing on the class; only instance attributes can say "throttling".
        instance = getattr(error, "__dict__", None)
        if not instance or _ATTRIBUTES.isdisjoint(instance):
            return False
    flag = getattr(error, "throttling", None)
    if flag is not None and not callable(flag):
        return bool(flag)
    if _status(error) == 429:
        return True
    code = _error_code(error)
    return code is not None and code in THROTTLING_CODES


def _status(error: object) -> int | None:
    for name in ("status_code", "status", "code"):
        value = getattr(error, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    response = getattr(error, "response", None)
    if response is None:
        return None
    if isinstance(response, dict):  # botocore ClientError.response
        metadata = response.get("ResponseMetadata")
        status = metadata.get("HTTPStatusCode") if isinstance(metadata, dict) else None
        return status if isinstance(status, int) else None
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def _error_code(error: object) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        details = response.get("Error")
        code = details.get("Code") if isinstance(details, dict) else None
        if isinstance(code, str):
            return code
    code = getattr(error, "code", None)
    if callable(code):  # grpc.RpcError.code() -> StatusCode
        try:
            code = code()
        except Exception:
            return None
        name = getattr(code, "name", None)
        return name if isinstance(name, str) else None
    if isinstance(code, str):
        return code
    name = getattr(code, "name", None)
    return name if isinstance(name, str) else None
