"""Failure classification shared by retries, budgets and (later) failover."""

from ._classify import (
    THROTTLING,
    THROTTLING_CODES,
    TIMEOUT,
    TRANSIENT,
    ErrorClass,
    classify,
    is_throttling,
    is_timeout,
)

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
