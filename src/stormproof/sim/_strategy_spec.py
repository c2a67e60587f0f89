"""What a client strategy is: the policies each app instance runs and their options,
read and checked from a ``[[strategy]]`` table (or a built-in strategy's)."""

from __future__ import annotations

from dataclasses import dataclass

from ._fields import Section

__all__ = [
    "BUDGETS",
    "JITTERS",
    "BackoffSpec",
    "BreakerSpec",
    "BudgetSpec",
    "CacheSpec",
    "FailoverSpec",
    "RetrySpec",
    "StrategySpec",
    "ThrottleSpec",
    "parse_strategy",
]

JITTERS = ("none", "full", "equal", "decorrelated")
BUDGETS = ("aws-standard", "aws-2026", "ratio", "grpc")


@dataclass(frozen=True)
class BackoffSpec:
    base: float = 0.05
    cap: float = 20.0
    multiplier: float = 2.0
    jitter: str = "full"


@dataclass(frozen=True)
class ThrottleSpec:
    k: float = 2.0
    window: float = 30.0
    max_reject: float = 0.9
    minimum_requests: int = 10


@dataclass(frozen=True)
class BudgetSpec:
    """A token bucket of your own (``TokenBucketBudget``'s options)."""

    capacity: float = 500.0
    retry_cost: float = 5.0
    timeout_cost: float = 10.0
    throttling_cost: float | None = None
    success_reward: float = 1.0
    refund: bool = True


@dataclass(frozen=True)
class BreakerSpec:
    failure_rate: float = 0.5
    window: int = 20
    minimum_calls: int = 10
    open_for: float = 10.0
    open_for_max: float | None = 60.0
    half_open_calls: int = 1


@dataclass(frozen=True)
class RetrySpec:
    attempts: int = 3
    on: str = "regional"
    backoff: BackoffSpec = BackoffSpec()
    throttling_backoff: BackoffSpec | None = None
    budget: str | BudgetSpec | None = None
    throttle: ThrottleSpec | None = None
    breaker: BreakerSpec | None = None  # a circuit breaker that only stops retries
    deadline: bool = False


@dataclass(frozen=True)
class CacheSpec:
    ttl: float = 300.0
    stale_ttl: float = 0.0
    coalesce: bool = True


@dataclass(frozen=True)
class FailoverSpec:
    failback_after: float = 30.0
    probe_interval: float = 5.0


@dataclass(frozen=True)
class StrategySpec:
    """A client configuration: which policies each app instance runs, and how."""

    name: str
    summary: str = ""
    kind: str = "composed"  # or "seed-patterns": the post-mortem snippets, flaws included
    retry: RetrySpec | None = None
    cache: CacheSpec | None = None
    breaker: BreakerSpec | None = None
    failover: FailoverSpec | None = None
    bulkhead: int | None = None


# -- reading a [[strategy]] table ----------------------------------------------------------


def _backoff(section: Section) -> BackoffSpec:
    spec = BackoffSpec(
        base=section.number("base", 0.05, low=0.0),
        cap=section.number("cap", 20.0, low=0.0),
        multiplier=section.number("multiplier", 2.0, low=1.0),
        jitter=section.string("jitter", "full", choices=JITTERS),
    )
    if spec.cap < spec.base:
        raise section.fail("cap", f">= base ({spec.base:g})", spec.cap)
    section.done()
    return spec


def _breaker(part: Section) -> BreakerSpec:
    window = part.integer("window", 20, low=1)
    minimum = part.integer("minimum_calls", 10, low=1)
    if minimum > window:
        raise part.fail("minimum_calls", f"<= window ({window})", minimum)
    open_for = part.number("open_for", 10.0, low=0.0, low_open=True)
    open_max = part.raw("open_for_max", 60.0)
    if open_max is not None:
        open_max = part.number("open_for_max", 60.0, low=open_for)
    spec = BreakerSpec(
        failure_rate=part.number("failure_rate", 0.5, low=0.0, high=1.0, low_open=True),
        window=window,
        minimum_calls=minimum,
        open_for=open_for,
        open_for_max=open_max,
        half_open_calls=part.integer("half_open_calls", 1, low=1),
    )
    part.done()
    return spec


def _budget(part: Section) -> str | BudgetSpec | None:
    value = part.data.get("budget")
    if isinstance(value, dict):
        table = part.section("budget")
        throttling = table.raw("throttling_cost")
        spec = BudgetSpec(
            capacity=table.number("capacity", 500.0, low=0.0),
            retry_cost=table.number("retry_cost", 5.0, low=0.0),
            timeout_cost=table.number("timeout_cost", 10.0, low=0.0),
            throttling_cost=None
            if throttling is None
            else table.number("throttling_cost", low=0.0),
            success_reward=table.number("success_reward", 1.0, low=0.0),
            refund=table.boolean("refund", True),
        )
        table.done()
        return spec
    budget = part.raw("budget")
    if budget is not None and budget not in BUDGETS:
        raise part.fail(
            "budget",
            "one of " + ", ".join(repr(b) for b in BUDGETS) + " or a table of token-bucket options",
            budget,
        )
    return budget  # type: ignore[no-any-return]


def parse_strategy(section: Section) -> StrategySpec:
    name = section.string("name")
    kind = section.string("kind", "composed", choices=("composed", "seed-patterns"))
    retry = cache = breaker = failover = None
    if (part := section.optional_section("retry")) is not None:
        backoff = _backoff(part.section("backoff"))
        throttling = part.optional_section("throttling_backoff")
        throttle = None
        if (t := part.optional_section("throttle")) is not None:
            throttle = ThrottleSpec(
                k=t.number("k", 2.0, low=1.0),
                window=t.number("window", 30.0, low=0.0, low_open=True),
                max_reject=t.number("max_reject", 0.9, low=0.0, high=1.0),
                minimum_requests=t.integer("minimum_requests", 10),
            )
            t.done()
        budget = _budget(part)
        retry_breaker = part.optional_section("breaker")
        retry = RetrySpec(
            attempts=part.integer("attempts", 3, low=1),
            on=part.string("on", "regional", choices=("regional", "all")),
            backoff=backoff,
            throttling_backoff=None if throttling is None else _backoff(throttling),
            budget=budget,
            throttle=throttle,
            breaker=None if retry_breaker is None else _breaker(retry_breaker),
            deadline=part.boolean("deadline", False),
        )
        part.done()
    if (part := section.optional_section("cache")) is not None:
        cache = CacheSpec(
            ttl=part.number("ttl", 300.0, low=0.0),
            stale_ttl=part.number("stale_ttl", 0.0, low=0.0),
            coalesce=part.boolean("coalesce", True),
        )
        part.done()
    if (part := section.optional_section("breaker")) is not None:
        breaker = _breaker(part)
    if (part := section.optional_section("failover")) is not None:
        failover = FailoverSpec(
            failback_after=part.number("failback_after", 30.0, low=0.0),
            probe_interval=part.number("probe_interval", 5.0, low=0.0, low_open=True),
        )
        part.done()
    bulkhead = None
    if section.has("bulkhead"):
        bulkhead = section.integer("bulkhead", low=1)
    spec = StrategySpec(
        name=name,
        summary=str(section.raw("summary", "")),
        kind=kind,
        retry=retry,
        cache=cache,
        breaker=breaker,
        failover=failover,
        bulkhead=bulkhead,
    )
    section.done()
    return spec
