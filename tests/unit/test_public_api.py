"""The public surface is exactly what is listed: no more, no less."""

from __future__ import annotations

import importlib

import pytest

import stormproof

PUBLIC = {
    "stormproof": {
        "AdaptiveThrottle",
        "Backoff",
        "BudgetExhausted",
        "Bulkhead",
        "BulkheadFull",
        "Cache",
        "Chaos",
        "CircuitBreaker",
        "CircuitOpen",
        "ConfigError",
        "DeadlineExceeded",
        "Failover",
        "Fallback",
        "Hedge",
        "Pipeline",
        "RatioBudget",
        "Rejected",
        "Retry",
        "RetryThrottle",
        "StormproofError",
        "Throttled",
        "Timeout",
        "TokenBucketBudget",
        "deadline",
        "remaining",
    },
    "stormproof.breaker": {"BreakerMetrics", "BreakerState"},
    "stormproof.policy": {"Policy"},
    "stormproof.chaos": {"dns_outage", "resolve"},
    "stormproof.cache": {
        "CacheEntry",
        "CacheStore",
        "JSONSerializer",
        "MemoryStore",
        "RedisCacheStore",
        "Serializer",
        "SharedCacheStore",
        "copy_error",
    },
    "stormproof.pytest_plugin": {
        "ChaosKit",
        "DNSControl",
        "chaos",
        "dns",
        "fake_clock",
        "stormproof_chaos",
        "stormproof_dns",
        "stormproof_events",
        "stormproof_fake_clock",
    },
    "stormproof.fleet": {
        "MAX_CLIENT_TIMEOUT",
        "FleetBackend",
        "FleetBreaker",
        "FleetBreakerOptions",
        "FleetBreakerStateChanged",
        "FleetBudget",
        "FleetBudgetOptions",
        "FleetDegraded",
        "FleetRecovered",
        "MemoryBackend",
        "RedisBackend",
    },
    "stormproof.testing": {"CapturedEvents", "FakeClock", "capture_events"},
    "stormproof.instrumentation": {
        "PrometheusCollector",
        "enable_logging",
        "enable_otel",
        "enable_prometheus",
    },
    "stormproof.retry": {
        "Attempt",
        "GiveUpReason",
        "RetryState",
        "SDKRetriesWarning",
        "retrying",
    },
    "stormproof.clock": {"MONOTONIC", "Clock", "Deadline", "MonotonicClock", "RandomSource"},
    "stormproof.budget": {"RetryBudget"},
    "stormproof.options": {
        "AdaptiveThrottleOptions",
        "BreakerOptions",
        "BulkheadOptions",
        "CacheOptions",
        "ChaosOptions",
        "FailoverOptions",
        "FallbackOptions",
        "FleetBreakerOptions",
        "FleetBudgetOptions",
        "HedgeOptions",
        "Options",
        "RatioBudgetOptions",
        "RetryOptions",
        "RetryThrottleOptions",
        "TimeoutOptions",
        "TokenBucketOptions",
    },
    "stormproof.classify": {
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
    },
    "stormproof.integrations.botocore": {
        "READS",
        "TRANSIENT_CODES",
        "RegionalClient",
        "protect",
        "protection",
        "retryable",
    },
    "stormproof.integrations.http": {
        "IDEMPOTENT_METHODS",
        "RETRY_STATUSES",
        "StatusFailure",
        "is_retryable_error",
    },
    "stormproof.integrations.httpx": {"AsyncRetryTransport", "RetryTransport"},
    "stormproof.integrations.requests": {"RetryAdapter"},
    "stormproof.rehearse": {
        "STRATEGIES",
        "Measured",
        "Rehearsal",
        "RehearsalOptions",
        "compare",
        "html_report",
        "lab_scenario",
        "missing_dependencies",
        "rehearse",
        "results_document",
        "table",
        "write_json",
    },
    "stormproof.sim": {
        "METRICS",
        "REPORT_CSS",
        "TIMED_OUT",
        "Axis",
        "Band",
        "Lane",
        "Metric",
        "PlottingUnavailable",
        "Process",
        "Reference",
        "Robustness",
        "RunResult",
        "Scenario",
        "ScenarioError",
        "Signal",
        "SimClock",
        "Simulation",
        "StrategySpec",
        "Style",
        "SweepResult",
        "Timer",
        "Trigger",
        "Waitable",
        "Within",
        "World",
        "bar_chart",
        "builtin_scenarios",
        "builtin_strategies",
        "html_page",
        "html_report",
        "line_chart",
        "load_scenario",
        "option",
        "parse_scenario",
        "require_plotting",
        "results_document",
        "robustness_document",
        "robustness_html",
        "robustness_table",
        "run",
        "run_labels",
        "run_strategies",
        "run_with_variants",
        "run_sweep",
        "strategies_for",
        "strategy_file",
        "styles_for",
        "swatch",
        "sweep_document",
        "sweep_html",
        "sweep_table",
        "table",
        "write_csv",
        "write_json",
    },
    "stormproof.events": {
        "BreakerRejected",
        "BreakerStateChanged",
        "BulkheadRejected",
        "CacheStaleServed",
        "CacheStoreFailed",
        "ChaosInjected",
        "Event",
        "FailoverSwitched",
        "FallbackUsed",
        "FleetBreakerStateChanged",
        "FleetDegraded",
        "FleetRecovered",
        "HedgeStarted",
        "Listener",
        "LoggingListener",
        "Recorder",
        "RetryGaveUp",
        "RetryScheduled",
        "ThrottleRejected",
        "TimeoutExpired",
        "TimeoutOverran",
        "subscribe",
        "unsubscribe",
    },
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_is_exact(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert set(module.__all__) == PUBLIC[module_name]
    assert len(module.__all__) == len(set(module.__all__))
    for name in module.__all__:
        assert hasattr(module, name), name


def test_public_classes_live_in_private_modules() -> None:
    for name in stormproof.__all__:
        obj = getattr(stormproof, name)
        assert obj.__module__.startswith("stormproof._"), name


def test_exception_tree() -> None:
    assert issubclass(stormproof.ConfigError, stormproof.StormproofError)
    assert issubclass(stormproof.ConfigError, ValueError)
    assert issubclass(stormproof.Rejected, stormproof.StormproofError)
    assert issubclass(stormproof.BudgetExhausted, stormproof.Rejected)
    assert issubclass(stormproof.Throttled, stormproof.Rejected)
    assert issubclass(stormproof.DeadlineExceeded, stormproof.StormproofError)
    assert issubclass(stormproof.DeadlineExceeded, TimeoutError)
    assert issubclass(stormproof.CircuitOpen, stormproof.Rejected)
    assert issubclass(stormproof.BulkheadFull, stormproof.Rejected)
    assert not issubclass(stormproof.DeadlineExceeded, stormproof.Rejected)


def test_package_is_typed() -> None:
    from importlib.resources import files

    assert files("stormproof").joinpath("py.typed").is_file()


def test_core_has_no_runtime_dependencies() -> None:
    from importlib.metadata import requires

    assert [r for r in (requires("stormproof") or []) if "extra ==" not in r] == []


def test_no_private_imports_across_packages() -> None:
    """``stormproof.sim`` and the command use the library through its public names only,
    as a user's code would: a private name they need is a public name missing."""
    import ast
    from pathlib import Path

    root = Path(stormproof.__file__).parent
    modules = [*(root / "sim").glob("*.py"), root / "cli.py"]
    # The instrumentation's metric names are chosen once, in the core, and the Lab reports
    # its series under them: the one private module it may read.
    shared = {"stormproof._metric_names"}
    assert len(modules) > 10
    for module in modules:
        inside_sim = module.parent.name == "sim"
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    where = node.module or ""
                elif inside_sim and node.level == 1:
                    continue  # the package's own modules
                else:
                    where = "stormproof." * (node.level == 1 and not inside_sim) + (
                        node.module or ""
                    )
                if not where.startswith("stormproof"):
                    continue
                names = [f"{where}.{alias.name}" for alias in node.names]
                if where in shared or shared & set(names):
                    continue
                private = [part for part in where.split(".") if part.startswith("_")]
                private += [alias.name for alias in node.names if alias.name.startswith("_")]
                assert not private, f"{module.name}: from {where} import {private}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("stormproof"):
                        parts = alias.name.split(".")
                        assert not any(p.startswith("_") for p in parts), (module.name, alias.name)
