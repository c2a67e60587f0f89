"""The names of stormproof's metrics and of their attributes, chosen once.

Instrumentation exports them (OpenTelemetry instrument names; a Prometheus exporter
writes the dots as underscores and adds ``_total`` to counters and ``_seconds`` to
durations), and the Outage Lab reports its time series under the same names, so a
simulated outage can be set beside what a dashboard showed. Attribute values are
bounded: policy names the user gave, the kinds below, stormproof's error classes;
never messages, URLs or arguments.
"""

from __future__ import annotations

__all__ = [
    "ATTEMPT",
    "ATTEMPTS",
    "ATTEMPT_DURATION",
    "BREAKER_STATE",
    "BREAKER_TRANSITIONS",
    "BUDGET_AVAILABLE",
    "BULKHEAD_IN_FLIGHT",
    "CACHE_LOOKUPS",
    "CALLS",
    "CALL_DURATION",
    "ERROR_TYPE",
    "FAILOVER_SWITCHES",
    "OUTCOME",
    "POLICY",
    "POLICY_KIND",
    "REASON",
    "REJECTIONS",
    "RESULT",
    "RETRIES",
    "STATE",
]

# -- instruments -------------------------------------------------------------------------

CALLS = "stormproof.calls"
"""Calls made through a policy: a counter, unit ``{call}``. Attributes: ``policy``,
``policy.kind``, ``outcome`` (``success`` or ``failure``), ``error.type`` on failures."""

ATTEMPTS = "stormproof.attempts"
"""Attempts a policy sent (the first try and every retry): a counter, unit
``{attempt}``. Attributes: ``policy``, ``policy.kind``, ``outcome``, ``attempt``
(``1``, ``2``, ``3``, ``4+``), ``error.type`` on failures."""

RETRIES = "stormproof.retries"
"""Retries a policy decided to make: a counter, unit ``{retry}``. Attributes:
``policy``, ``policy.kind``, ``reason`` (the ``error.type`` retried)."""

REJECTIONS = "stormproof.rejections"
"""Calls or retries refused without trying: a counter, unit ``{call}``. Attributes:
``policy``, ``policy.kind``, ``reason`` (``breaker_open``, ``budget``, ``throttled``,
``bulkhead_full``, ``deadline``)."""

BREAKER_STATE = "stormproof.breaker.state"
"""A circuit breaker's state: a gauge, unit ``1``, 1 for the state it is in and 0 for
the others. Attributes: ``policy``, ``state`` (``closed``, ``open``, ``half_open``)."""

BREAKER_TRANSITIONS = "stormproof.breaker.transitions"
"""A circuit breaker's changes of state: a counter, unit ``{transition}``.
Attributes: ``policy``, ``state`` (the state entered)."""

BUDGET_AVAILABLE = "stormproof.budget.available"
"""What a retry budget has left (tokens, or retries allowed): a gauge, unit ``1``.
Attributes: ``policy``, ``policy.kind``."""

BULKHEAD_IN_FLIGHT = "stormproof.bulkhead.in_flight"
"""Calls a bulkhead holds at once: a gauge (an up-down counter), unit ``{call}``.
Attributes: ``policy``."""

CACHE_LOOKUPS = "stormproof.cache.lookups"
"""Cache lookups: a counter, unit ``{lookup}``. Attributes: ``policy``, ``result``
(``hit``, ``stale``: answered from an expired entry, ``miss``, ``negative``)."""

FAILOVER_SWITCHES = "stormproof.failover.switches"
"""Times a failover moved calls to another target: a counter, unit ``{switch}``.
Attributes: ``policy``."""

CALL_DURATION = "stormproof.call.duration"
"""A call's duration through a policy, retries and waits included: a histogram, unit
``s`` (seconds). Attributes: ``policy``, ``policy.kind``, ``outcome``."""

ATTEMPT_DURATION = "stormproof.attempt.duration"
"""One attempt's duration: a histogram, unit ``s`` (seconds). Attributes: ``policy``,
``policy.kind``, ``outcome``, ``attempt``."""

# -- attributes ------------------------------------------------------------------------

POLICY = "policy"
"""The name the user gave the policy object."""

POLICY_KIND = "policy.kind"
"""The policy's class: ``retry``, ``breaker``, ``cache``, ``bulkhead``, ..."""

OUTCOME = "outcome"
"""``success`` or ``failure``."""

ERROR_TYPE = "error.type"
"""The failure's stormproof class name (never its message)."""

ATTEMPT = "attempt"
"""The attempt's number, bucketed: ``1``, ``2``, ``3``, ``4+``."""

REASON = "reason"
"""Why a retry was made (the error's type) or a call refused (see ``REJECTIONS``)."""

RESULT = "result"
"""A cache lookup's result (see ``CACHE_LOOKUPS``)."""

STATE = "state"
"""A circuit breaker's state (see ``BREAKER_STATE``)."""
