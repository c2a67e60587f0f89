"""What exporters need to know of each instrument: its type, unit and description,
and the Prometheus form of the names."""

from __future__ import annotations

from stormproof import _metric_names as names

__all__ = ["DESCRIPTIONS", "KINDS", "UNITS", "prometheus_label", "prometheus_name"]

KINDS: dict[str, str] = {
    names.CALLS: "counter",
    names.ATTEMPTS: "counter",
    names.RETRIES: "counter",
    names.REJECTIONS: "counter",
    names.BREAKER_TRANSITIONS: "counter",
    names.CACHE_LOOKUPS: "counter",
    names.FAILOVER_SWITCHES: "counter",
    names.BREAKER_STATE: "gauge",
    names.BUDGET_AVAILABLE: "gauge",
    names.BULKHEAD_IN_FLIGHT: "gauge",
    names.CALL_DURATION: "histogram",
    names.ATTEMPT_DURATION: "histogram",
}
"""Each instrument's type: ``counter``, ``gauge`` or ``histogram``."""

UNITS: dict[str, str] = {
    names.CALLS: "{call}",
    names.ATTEMPTS: "{attempt}",
    names.RETRIES: "{retry}",
    names.REJECTIONS: "{call}",
    names.BREAKER_TRANSITIONS: "{transition}",
    names.CACHE_LOOKUPS: "{lookup}",
    names.FAILOVER_SWITCHES: "{switch}",
    names.BREAKER_STATE: "1",
    names.BUDGET_AVAILABLE: "1",
    names.BULKHEAD_IN_FLIGHT: "{call}",
    names.CALL_DURATION: "s",
    names.ATTEMPT_DURATION: "s",
}
"""Each instrument's unit, in UCUM as OpenTelemetry writes it."""

DESCRIPTIONS: dict[str, str] = {
    names.CALLS: "Calls made through a policy.",
    names.ATTEMPTS: "Attempts a policy sent: the first try and every retry.",
    names.RETRIES: "Retries a policy decided to make, by the class of error retried.",
    names.REJECTIONS: "Calls or retries refused without trying, by reason.",
    names.BREAKER_TRANSITIONS: "A circuit breaker's changes of state, by the state entered.",
    names.CACHE_LOOKUPS: "Cache lookups, by result: hit, stale, miss, negative.",
    names.FAILOVER_SWITCHES: "Times a failover moved calls to another region.",
    names.BREAKER_STATE: "A circuit breaker's state: 1 for the state it is in, 0 for the others.",
    names.BUDGET_AVAILABLE: "What a retry budget has left: tokens, or retries allowed now.",
    names.BULKHEAD_IN_FLIGHT: "Calls a bulkhead holds at once.",
    names.CALL_DURATION: "A call's duration through a policy, retries and waits included.",
    names.ATTEMPT_DURATION: "One attempt's duration.",
}


def prometheus_name(instrument: str) -> str:
    """``stormproof.call.duration`` -> ``stormproof_call_duration_seconds``; counters'
    ``_total`` is added to their samples."""
    name = instrument.replace(".", "_")
    return name + "_seconds" if UNITS[instrument] == "s" else name


def prometheus_label(attribute: str) -> str:
    return attribute.replace(".", "_")
