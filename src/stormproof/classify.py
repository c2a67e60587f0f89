"""Failure classification shared by retries, budgets and failover."""

from ._classify import (
    THROTTLING,
    THROTTLING_CODES,
    THROTTLING_STATUSES,
    TIMEOUT,
    TRANSIENT,
    ErrorClass,
    causes,
    classify,
    classify_status,
    is_connection_error,
    is_dns_failure,
    is_regional_failure,
    is_server_error,
    is_throttling,
    is_timeout,
)

__all__ = [
    "THROTTLING",
    "THROTTLING_CODES",
    "THROTTLING_STATUSES",
    "TIMEOUT",
    "TRANSIENT",
    "ErrorClass",
    "causes",
    "classify",
    "classify_status",
    "is_connection_error",
    "is_dns_failure",
    "is_regional_failure",
    "is_server_error",
    "is_throttling",
    "is_timeout",
]
