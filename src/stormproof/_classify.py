"""What kind of failure is this? One place that answers, for budgets and retries.

Recognises errors by duck typing (attributes and class names), so it works with
botocore, httpx, requests, urllib3, aiohttp and gRPC errors without importing any
of them.
"""

from __future__ import annotations

import asyncio
from typing import Final, Literal

__all__ = [
    "THROTTLING",
    "THROTTLING_CODES",
    "TIMEOUT",
    "TRANSIENT",
    "ErrorClass",
    "classify",
    "is_throttling",
    "is_timeout",
]

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

_TIMEOUT_TYPES: tuple[type[BaseException], ...] = (TimeoutError, asyncio.TimeoutError)


def classify(error: object) -> ErrorClass:
    """``"throttling"``, ``"timeout"`` or ``"transient"`` (the default).

    - throttling: a truthy ``throttling`` attribute, HTTP status 429, or a known
      throttling error code (AWS codes such as ``ThrottlingException``, gRPC
      ``RESOURCE_EXHAUSTED``);
    - timeout: ``TimeoutError`` (which includes ``socket.timeout``),
      ``asyncio.TimeoutError``, or an exception class named like ``...Timeout...``
      (``ReadTimeoutError``, ``httpx.ConnectTimeout``, ...);
    - transient: everything else.

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


# What a class alone tells us, cached per class: classification runs on every failed
# attempt (and, in the simulator, millions of times). Bounded: cleared when full.
_by_type: dict[type, tuple[bool, bool]] = {}
_ATTRIBUTES = frozenset({"throttling", "status_code", "status", "code", "response"})


def _type_facts(kind: type) -> tuple[bool, bool]:
    """(named or typed like a timeout, has class-level attributes throttling looks at)."""
    facts = _by_type.get(kind)
    if facts is None:
        timeout = issubclass(kind, _TIMEOUT_TYPES) or (
            issubclass(kind, BaseException)
            and any("Timeout" in klass.__name__ for klass in kind.__mro__)
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
    return _type_facts(type(error))[0]


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
