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
    "DESCRIPTIONS",
    "ERROR_TYPE",
    "FAILOVER_SWITCHES",
    "FLEET_DEGRADED",
    "KINDS",
    "OUTCOME",
    "POLICY",
    "POLICY_KIND",
    "REASON",
    "REJECTIONS",
    "RESULT",
    "RETRIES",
    "STATE",
    "UNITS",
    "prometheus_label",
    "prometheus_name",
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
"""A circuit breaker's state: a gauge, unit ``{state}``, 1 for the state it is in and 0 for
the others. Attributes: ``policy``, ``state`` (``closed``, ``open``, ``half_open``)."""

BREAKER_TRANSITIONS = "stormproof.breaker.transitions"
"""A circuit breaker's changes of state: a counter, unit ``{transition}``.
Attributes: ``policy``, ``state`` (the state entered)."""

BUDGET_AVAILABLE = "stormproof.budget.available"
"""What a retry budget has left (tokens, or retries allowed): a gauge, unit ``{token}``.
Attributes: ``policy``, ``policy.kind``."""

BULKHEAD_IN_FLIGHT = "stormproof.bulkhead.in_flight"
"""Calls a bulkhead holds at once: a gauge, unit ``{call}``.
Attributes: ``policy``."""

CACHE_LOOKUPS = "stormproof.cache.lookups"
"""Cache lookups: a counter, unit ``{lookup}``. Attributes: ``policy``, ``result``
(``hit``, ``stale``: answered from an expired entry, ``miss``, ``negative``)."""

FAILOVER_SWITCHES = "stormproof.failover.switches"
"""Times a failover moved calls to another target: a counter, unit ``{switch}``.
Attributes: ``policy``."""

FLEET_DEGRADED = "stormproof.fleet.degraded"
"""Whether a fleet backend is degraded (its last exchange with Redis failed, so its
policies run on local state): a gauge, unit ``{backend}``, 1 or 0. Attributes:
``policy`` (the backend's name)."""

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

# -- what exporters need ----------------------------------------------------------------

KINDS: dict[str, str] = {
    CALLS: "counter",
    ATTEMPTS: "counter",
    RETRIES: "counter",
    REJECTIONS: "counter",
    BREAKER_TRANSITIONS: "counter",
    CACHE_LOOKUPS: "counter",
    FAILOVER_SWITCHES: "counter",
    BREAKER_STATE: "gauge",
    BUDGET_AVAILABLE: "gauge",
    BULKHEAD_IN_FLIGHT: "gauge",
    FLEET_DEGRADED: "gauge",
    CALL_DURATION: "histogram",
    ATTEMPT_DURATION: "histogram",
}
"""Each instrument's type: ``counter``, ``gauge`` or ``histogram``."""

UNITS: dict[str, str] = {
    CALLS: "{call}",
    ATTEMPTS: "{attempt}",
    RETRIES: "{retry}",
    REJECTIONS: "{call}",
    BREAKER_TRANSITIONS: "{transition}",
    CACHE_LOOKUPS: "{lookup}",
    FAILOVER_SWITCHES: "{switch}",
    BREAKER_STATE: "{state}",
    BUDGET_AVAILABLE: "{token}",
    BULKHEAD_IN_FLIGHT: "{call}",
    FLEET_DEGRADED: "{backend}",
    CALL_DURATION: "s",
    ATTEMPT_DURATION: "s",
}
"""Each instrument's unit, in UCUM as OpenTelemetry writes it. Annotations in braces
rather than ``1`` for the two gauges: the OpenTelemetry Collector's Prometheus
exporter adds ``_ratio`` to a gauge of unit ``1``, and the names must be the same on
both paths."""

DESCRIPTIONS: dict[str, str] = {
    CALLS: "Calls made through a policy.",
    ATTEMPTS: "Attempts a policy sent: the first try and every retry.",
    RETRIES: "Retries a policy decided to make, by the class of error retried.",
    REJECTIONS: "Calls or retries refused without trying, by reason.",
    BREAKER_TRANSITIONS: "A circuit breaker's changes of state, by the state entered.",
    CACHE_LOOKUPS: "Cache lookups, by result: hit, stale, miss, negative.",
    FAILOVER_SWITCHES: "Times a failover moved calls to another region.",
    BREAKER_STATE: "A circuit breaker's state: 1 for the state it is in, 0 for the others.",
    BUDGET_AVAILABLE: "What a retry budget has left: tokens, or retries allowed now.",
    BULKHEAD_IN_FLIGHT: "Calls a bulkhead holds at once.",
    FLEET_DEGRADED: "1 while a fleet backend cannot reach Redis (its policies run on local state).",
    CALL_DURATION: "A call's duration through a policy, retries and waits included.",
    ATTEMPT_DURATION: "One attempt's duration.",
}


def prometheus_name(instrument: str) -> str:
    """``stormproof.call.duration`` -> ``stormproof_call_duration_seconds``; counters'
    ``_total`` is added to their samples."""
    name = instrument.replace(".", "_")
    return name + "_seconds" if UNITS[instrument] == "s" else name


def prometheus_label(attribute: str) -> str:
    return attribute.replace(".", "_")
