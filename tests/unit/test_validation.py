"""Every public constructor refuses bad input at once, and says what was wrong.

The rule: every public constructor (and public factory) refuses wrong types, NaN,
infinities where meaningless, negatives, zeros where meaningless, and values that
would overflow later, with a ``ConfigError`` (a ``ValueError``) or a ``TypeError``
whose message names the parameter and quotes the bad value.

Extreme but plausible values ("forever": a wait of 1e10 seconds, a window of 1e-305
seconds, a count window of 10**13) must either be refused at construction like any
bad value, or be accepted and then work: each is built and exercised once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from stormproof import (
    AdaptiveThrottle,
    Backoff,
    Bulkhead,
    BulkheadFull,
    Cache,
    Chaos,
    CircuitBreaker,
    CircuitOpen,
    ConfigError,
    Failover,
    Fallback,
    Hedge,
    Pipeline,
    RatioBudget,
    Retry,
    RetryThrottle,
    Timeout,
    TokenBucketBudget,
    deadline,
    remaining,
)
from stormproof.cache import MemoryStore
from stormproof.chaos import dns_outage, resolve
from stormproof.events import LoggingListener, Recorder
from stormproof.testing import FakeClock

NAN = math.nan
INF = math.inf

# -- how a case is written ---------------------------------------------------------------


@dataclass(frozen=True)
class L:
    """A value with a readable label for the test id, and optionally the texts of
    which one must appear in the message (default: the value's repr, or the name of
    a class or function)."""

    label: str
    value: object
    shown: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bad:
    """One refusal: ``build()`` must raise, naming ``parameter`` and showing one of
    ``shown``."""

    id: str
    parameter: str
    build: Callable[[], object]
    shown: tuple[str, ...]


def _label(value: object) -> str:
    if isinstance(value, L):
        return value.label
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**6:
        exponent = len(str(abs(value))) - 1
        if abs(value) == 10**exponent:
            return f"{'-' if value < 0 else ''}10**{exponent}"
    if isinstance(value, type):
        return f"{value.__name__}-class"
    if type(value) is object:
        return "object()"
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    return repr(value)


def _shown(value: object) -> tuple[str, ...]:
    """What may stand for ``value`` in a message: its repr, or its name."""
    texts = [repr(value)]
    if isinstance(value, type) or callable(value):
        for attribute in ("__qualname__", "__name__"):
            name = getattr(value, attribute, None)
            if isinstance(name, str):
                texts.append(name)
    return tuple(texts)


def _cases(what: str, factory: Callable[..., object], table: dict[str, list[Any]]) -> list[Bad]:
    """One case per (parameter, bad value): ``factory(**{parameter: value})``."""
    cases = []
    for parameter, values in table.items():
        for item in values:
            value = item.value if isinstance(item, L) else item
            shown = item.shown if isinstance(item, L) and item.shown else _shown(value)
            cases.append(
                Bad(
                    f"{what}-{parameter}-{_label(item)}",
                    parameter,
                    lambda factory=factory, parameter=parameter, value=value: factory(
                        **{parameter: value}
                    ),
                    shown,
                )
            )
    return cases


def _case(
    id: str, parameter: str, build: Callable[[], object], value: object = None, *shown: str
) -> Bad:
    """A case built by hand; ``shown`` defaults to what stands for ``value``."""
    return Bad(id, parameter, build, shown or _shown(value))


# -- bad values of each kind -------------------------------------------------------------

# A number where a number is meant: wrong types (bool included), NaN, infinities,
# negatives. Zero is added where it is meaningless.
NOT_A_NUMBER: list[Any] = ["1", None, L("empty-list", []), L("object()", object()), True]
NOT_A_NUMBER_OPTIONAL: list[Any] = ["1", L("empty-list", []), L("object()", object()), True]
NON_FINITE_OR_NEGATIVE: list[Any] = [NAN, INF, -INF, -1.0]
BAD_FLOAT = [*NOT_A_NUMBER, *NON_FINITE_OR_NEGATIVE]
BAD_OPTIONAL_FLOAT = [*NOT_A_NUMBER_OPTIONAL, *NON_FINITE_OR_NEGATIVE]
BAD_POSITIVE_FLOAT = [*BAD_FLOAT, 0.0]
BAD_OPTIONAL_POSITIVE_FLOAT = [*BAD_OPTIONAL_FLOAT, 0.0]
BAD_COUNT = ["3", None, 2.5, True, NAN, INF, -1]  # an integer >= 0
BAD_POSITIVE_COUNT = [*BAD_COUNT, 0]  # an integer >= 1
BAD_RATE = [*BAD_FLOAT, 1.5]  # a share in [0, 1]
BAD_POSITIVE_RATE = [*BAD_RATE, 0.0]  # a share in (0, 1]
BAD_BOOL = ["yes", 1, None]
BAD_NAME = ["", "   ", 5, b"db", L("object()", object())]

# Something that decides on an exception: a type, a tuple of types, or a predicate
# taking one argument.
BAD_EXCEPTIONS: list[Any] = [
    L("lambda-no-args", lambda: True),
    L("lambda-two-args", lambda error, extra: True),
    "ValueError",
    42,
    L("object()", object()),
    L("list", [ValueError]),
    L("ValueError-instance", ValueError("x")),
    L("KeyboardInterrupt-class", KeyboardInterrupt),
    L("int-class", int),
    L("tuple-with-str", (ValueError, "x")),
]
BAD_CLOCKS: list[Any] = [
    L("FakeClock-class", FakeClock),
    "clock",
    L("object()", object()),
    L("time.monotonic", time.monotonic),
]
BAD_RANDOM: list[Any] = [
    L("lambda-one-arg", lambda seed: 0.5),
    0.5,
    "x",
    L("random.Random-class", random.Random),
]


def _no_args() -> None:
    return None


BAD_LISTENERS: list[Any] = [
    L("list-with-function-no-args", [_no_args], _shown([_no_args]) + _shown(_no_args)),
    L("list-with-Recorder-class", [Recorder], _shown([Recorder]) + _shown(Recorder)),
    L("list-with-None", [None]),
    5,
    L("str", "x", ("'x'",)),
]
BAD_BUDGETS: list[Any] = [
    L("TokenBucketBudget-class", TokenBucketBudget),
    L("RatioBudget-class", RatioBudget),
    L("list-with-class", [TokenBucketBudget(), TokenBucketBudget], _shown(TokenBucketBudget)),
    L("empty-list", []),
    "x",
    5,
    L("object()", object()),
]


def _ok() -> str:
    return "ok"


def _error_needing_a_message(message: str) -> Exception:
    return ValueError(message)


SHARED_BREAKER = CircuitBreaker("shared")
REGIONS = {"a": _ok, "b": _ok}
AN_OBJECT = object()
A_FAILOVER = Failover(REGIONS)
INNER_RETRY = Retry(on=ValueError, name="inner")


def _retry(**options: Any) -> Retry:
    return Retry(**{"on": ValueError, **options})


def _breaker(**options: Any) -> CircuitBreaker:
    return CircuitBreaker(**{"name": "db", **options})


def _bulkhead(**options: Any) -> Bulkhead:
    return Bulkhead(**{"max_concurrent": 1, **options})


def _hedge(**options: Any) -> Hedge:
    return Hedge(**{"delay": 0.1, **options})


def _cache(**options: Any) -> Cache:
    return Cache(**{"ttl": 60.0, **options})


def _negative_cache(**options: Any) -> Cache:
    return Cache(**{"ttl": 60.0, "negative_ttl": 1.0, **options})


def _failover(**options: Any) -> Failover:
    return Failover(**{"regions": REGIONS, **options})


def _chaos(**options: Any) -> Chaos:
    return Chaos(**{"kind": "fault", "error": ConnectionError, **options})


def _latency(**options: Any) -> Chaos:
    return Chaos(**{"kind": "latency", **options})


# -- the table -----------------------------------------------------------------------------

CASES: list[Bad] = [
    # Backoff
    *_cases(
        "Backoff",
        Backoff,
        {
            "base": BAD_FLOAT,
            "cap": [*BAD_FLOAT, L("below-base", 0.01)],
            "multiplier": [*BAD_FLOAT, 0.0, 0.5],
            "jitter": ["FULL", "fast", None, 1, True],
            "random": BAD_RANDOM,
        },
    ),
    # Retry
    *_cases(
        "Retry",
        _retry,
        {
            "on": [*BAD_EXCEPTIONS, None, L("empty-tuple", ())],
            "attempts": [*BAD_POSITIVE_COUNT, 3.0],
            "deadline": BAD_OPTIONAL_POSITIVE_FLOAT,
            "backoff": [
                L("Backoff-class", Backoff),
                "x",
                0.5,
                L("object()", object()),
                L("function", lambda retry_number, previous=None: 1.0),
            ],
            "throttling_backoff": [L("Backoff-class", Backoff), "x", L("object()", object())],
            "budget": BAD_BUDGETS,
            "retry_on_result": [
                L("lambda-no-args", lambda: True),
                L("lambda-two-args", lambda result, extra: True),
                "x",
                5,
                L("object()", object()),
            ],
            "classify": [L("lambda-no-args", lambda: "transient"), "transient", 5],
            "clock": BAD_CLOCKS,
            "name": BAD_NAME,
            "max_retry_after": BAD_FLOAT,
            "retry_when_nested": BAD_BOOL,
            "retry_rejected": BAD_BOOL,
            "listeners": BAD_LISTENERS,
        },
    ),
    # TokenBucketBudget and its presets
    *_cases(
        "TokenBucketBudget",
        TokenBucketBudget,
        {
            "capacity": BAD_FLOAT,
            "retry_cost": BAD_FLOAT,
            "timeout_cost": BAD_FLOAT,
            "throttling_cost": BAD_OPTIONAL_FLOAT,
            "success_reward": BAD_FLOAT,
            "refund": BAD_BOOL,
            "name": BAD_NAME,
        },
    ),
    *_cases("TokenBucketBudget.aws_standard", TokenBucketBudget.aws_standard, {"name": BAD_NAME}),
    *_cases("TokenBucketBudget.aws_2026", TokenBucketBudget.aws_2026, {"name": BAD_NAME}),
    # RatioBudget
    *_cases(
        "RatioBudget",
        RatioBudget,
        {
            "ratio": [*BAD_FLOAT, 1001.0],
            "min_per_second": BAD_FLOAT,
            "window": BAD_POSITIVE_FLOAT,
            "clock": BAD_CLOCKS,
            "name": BAD_NAME,
        },
    ),
    # RetryThrottle: values that would round to zero thousandths are refused too
    *_cases(
        "RetryThrottle",
        RetryThrottle,
        {
            "max_tokens": [*BAD_POSITIVE_FLOAT, L("rounds-to-zero-0.0004", 0.0004)],
            "token_ratio": [*BAD_POSITIVE_FLOAT, L("rounds-to-zero-0.0004", 0.0004)],
            "name": BAD_NAME,
        },
    ),
    # AdaptiveThrottle
    *_cases(
        "AdaptiveThrottle",
        AdaptiveThrottle,
        {
            "k": [*BAD_FLOAT, 0.0, 0.5],
            "window": BAD_POSITIVE_FLOAT,
            "max_reject": BAD_RATE,
            "minimum_requests": BAD_COUNT,
            "clock": BAD_CLOCKS,
            "random": BAD_RANDOM,
            "name": BAD_NAME,
            "listeners": BAD_LISTENERS,
        },
    ),
    # CircuitBreaker
    *_cases(
        "CircuitBreaker",
        _breaker,
        {
            "name": [*BAD_NAME, None],
            "failure_rate": BAD_POSITIVE_RATE,
            "window": BAD_POSITIVE_COUNT,
            "window_seconds": BAD_OPTIONAL_POSITIVE_FLOAT,
            "minimum_calls": [*BAD_POSITIVE_COUNT, L("above-window-101", 101)],
            "slow_call_duration": BAD_OPTIONAL_POSITIVE_FLOAT,
            "slow_call_rate": BAD_POSITIVE_RATE,
            "open_for": BAD_POSITIVE_FLOAT,
            "open_for_max": [*BAD_OPTIONAL_FLOAT, L("below-open_for", 1.0)],
            "half_open_calls": BAD_POSITIVE_COUNT,
            "on": [*BAD_EXCEPTIONS, None, L("empty-tuple", ())],
            "ignore": [*BAD_EXCEPTIONS, None],
            "clock": BAD_CLOCKS,
            "listeners": BAD_LISTENERS,
        },
    ),
    # Bulkhead
    *_cases(
        "Bulkhead",
        _bulkhead,
        {
            "max_concurrent": BAD_POSITIVE_COUNT,
            "max_queue": BAD_COUNT,
            "max_wait": BAD_FLOAT,
            "name": BAD_NAME,
            "clock": BAD_CLOCKS,
            "listeners": BAD_LISTENERS,
        },
    ),
    _case(
        "Bulkhead-max_wait-zero-with-a-queue",
        "max_wait",
        lambda: Bulkhead(1, max_queue=1, max_wait=0.0),
        0.0,
    ),
    # Timeout
    *_cases(
        "Timeout",
        lambda **options: Timeout(**{"seconds": 1.0, **options}),
        {
            "seconds": BAD_POSITIVE_FLOAT,
            "name": BAD_NAME,
            "clock": BAD_CLOCKS,
            "listeners": BAD_LISTENERS,
        },
    ),
    # Hedge
    *_cases(
        "Hedge",
        _hedge,
        {
            "delay": BAD_FLOAT,
            "max_hedges": BAD_POSITIVE_COUNT,
            "budget": BAD_BUDGETS,
            "on": [*BAD_EXCEPTIONS, None, L("empty-tuple", ())],
            "name": BAD_NAME,
            "clock": BAD_CLOCKS,
            "listeners": BAD_LISTENERS,
        },
    ),
    # Fallback
    *_cases(
        "Fallback",
        Fallback,
        {
            "handler": [
                L("lambda-no-args", lambda: 1),
                L("lambda-two-args", lambda error, extra: 1),
                "x",
                5,
                L("object()", object()),
            ],
        },
    ),
    *_cases(
        "Fallback",
        lambda **options: Fallback(**{"value": 0, **options}),
        {
            "on": [*BAD_EXCEPTIONS, None, L("empty-tuple", ())],
            "name": BAD_NAME,
            "clock": BAD_CLOCKS,
            "listeners": BAD_LISTENERS,
        },
    ),
    _case("Fallback-handler-missing", "handler", Fallback, None, "handler"),
    _case(
        "Fallback-handler-and-value-both",
        "handler",
        lambda: Fallback(0, handler=str),
        str,
        "<class 'str'>",
    ),
    # Cache and its store
    *_cases(
        "Cache",
        _cache,
        {
            "ttl": [*NOT_A_NUMBER, NAN, -INF, -1.0],
            "stale_ttl": [*NOT_A_NUMBER, NAN, -INF, -1.0],
            "max_entries": BAD_POSITIVE_COUNT,
            "negative_ttl": [*NOT_A_NUMBER, NAN, -INF, -1.0],
            "coalesce": BAD_BOOL,
            "key": ["x", 5, L("object()", object())],
            "store": [
                L("MemoryStore-class", MemoryStore),
                "x",
                L("dict", {}),
                L("object()", object()),
            ],
            "clock": BAD_CLOCKS,
            "stale_while_revalidate": BAD_BOOL,
            "name": BAD_NAME,
            "listeners": BAD_LISTENERS,
        },
    ),
    *_cases(
        "Cache",
        _negative_cache,
        {
            "negative_on": BAD_EXCEPTIONS,
            "negative_if": [
                L("lambda-no-args", lambda: True),
                L("lambda-two-args", lambda value, extra: True),
                "x",
                5,
            ],
        },
    ),
    _case(
        "Cache-stale_ttl-zero-with-stale_while_revalidate",
        "stale_ttl",
        lambda: Cache(60, stale_while_revalidate=True),
        0.0,
    ),
    _case(
        "Cache-negative_ttl-zero-with-negative_on",
        "negative_ttl",
        lambda: Cache(60, negative_on=LookupError),
        0.0,
    ),
    *_cases("MemoryStore", MemoryStore, {"max_entries": BAD_POSITIVE_COUNT}),
    # Failover
    *_cases(
        "Failover",
        _failover,
        {
            "regions": [
                L("empty", {}),
                L("one-region", {"a": _ok}),
                L("list-of-pairs", [("a", _ok), ("b", _ok)]),
                "ab",
                None,
                L("not-callable", {"a": _ok, "b": 5}, ("got 5",)),
                L("empty-name", {"": _ok, "b": _ok}, ("''",)),
                L("int-name", {1: _ok, "b": _ok}, ("got 1",)),
            ],
            "breaker": [
                L("factory-no-args", lambda: CircuitBreaker("x")),
                "x",
                5,
                L("factory-returns-None", lambda region: None),
                L("factory-returns-shared", lambda region: SHARED_BREAKER),
            ],
            "failover_on": BAD_EXCEPTIONS,
            "failback_after": [*NOT_A_NUMBER, NAN, -INF, -1.0],
            "probe_interval": [*NOT_A_NUMBER, NAN, -INF, -1.0, 0.0],
            "clock": BAD_CLOCKS,
            "name": BAD_NAME,
            "listeners": BAD_LISTENERS,
        },
    ),
    # Chaos, and its factories
    *_cases(
        "Chaos",
        _chaos,
        {
            "kind": ["boom", "FAULT", None, 5],
            "rate": BAD_RATE,
            "error": [
                "x",
                5,
                None,
                L("object()", object()),
                L("factory-one-arg", _error_needing_a_message),
            ],
            "enabled": ["yes", 1, None, L("lambda-one-arg", lambda now: True)],
            "between": [
                L("(nan,5)", (NAN, 5)),
                L("(0,nan)", (0, NAN)),
                L("start-after-end-(5,1)", (5, 1)),
                L("list", [0, 5]),
                L("one-item", (0,)),
                L("(True,5)", (True, 5)),
                "05",
            ],
            "sequence": [
                L("str", "fail"),
                L("unknown-step", ["boom"], ("'boom'",)),
                5,
            ],
            "random": BAD_RANDOM,
            "clock": BAD_CLOCKS,
            "name": BAD_NAME,
            "listeners": BAD_LISTENERS,
        },
    ),
    *_cases("Chaos-latency", _latency, {"seconds": BAD_FLOAT}),
    *_cases(
        "Chaos.fault",
        Chaos.fault,
        {
            "rate": [NAN, 1.5, "1"],
            "error": ["x", L("factory-one-arg", _error_needing_a_message)],
            "between": [L("(nan,5)", (NAN, 5)), L("start-after-end-(5,1)", (5, 1))],
            "enabled": [L("lambda-one-arg", lambda now: True)],
            "random": [L("lambda-one-arg", lambda seed: 0.5)],
        },
    ),
    *_cases(
        "Chaos.latency",
        Chaos.latency,
        {"rate": [NAN, -0.5], "seconds": [NAN, INF, -1.0, "1", True]},
    ),
    *_cases(
        "Chaos.outcome",
        Chaos.outcome,
        {"rate": [NAN, 1.5], "enabled": [L("lambda-one-arg", lambda now: True)]},
    ),
    # Pipeline
    _case("Pipeline-policies-none", "policies", Pipeline, (), "()"),
    _case("Pipeline-policies-str", "policies", lambda: Pipeline("x"), "x"),
    _case("Pipeline-policies-Retry-class", "policies", lambda: Pipeline(Retry), Retry),
    _case("Pipeline-policies-object()", "policies", lambda: Pipeline(AN_OBJECT), AN_OBJECT),
    _case("Pipeline-policies-function", "policies", lambda: Pipeline(_ok), _ok),
    _case("Pipeline-policies-Failover", "policies", lambda: Pipeline(A_FAILOVER), A_FAILOVER),
    _case(
        "Pipeline-policies-Retry-inside-Retry",
        "policies",
        lambda: Pipeline(Retry(on=ValueError, name="outer"), INNER_RETRY),
        INNER_RETRY,
    ),
    *_cases(
        "Pipeline",
        lambda **options: Pipeline(Timeout(1.0), **options),
        {"name": BAD_NAME},
    ),
    # deadline
    *_cases(
        "deadline",
        lambda **options: deadline(**{"seconds": 1.0, **options}),
        {"seconds": BAD_FLOAT, "clock": BAD_CLOCKS},
    ),
    # testing.FakeClock, and the durations it is given
    *_cases(
        "FakeClock", FakeClock, {"start": ["0", None, L("empty-list", []), True, NAN, INF, -INF]}
    ),
    *_cases(
        "FakeClock.sleep",
        lambda seconds: FakeClock().sleep(seconds),
        {"seconds": BAD_FLOAT},
    ),
    *_cases(
        "FakeClock.advance",
        lambda seconds: FakeClock().advance(seconds),
        {"seconds": BAD_FLOAT},
    ),
    # chaos.dns_outage and chaos.resolve
    _case("dns_outage-hostnames-none", "hostnames", dns_outage, (), "()"),
    *_cases(
        "dns_outage",
        lambda hostnames: dns_outage(hostnames),  # noqa: PLW0108  (*hostnames: no keyword)
        {"hostnames": ["", 5, None, L("list", ["a.test", "b.test"])]},
    ),
    *_cases(
        "dns_outage",
        lambda mode: dns_outage("a.test", mode=mode),
        {"mode": ["bogus", "EMPTY", None, 1]},
    ),
    *_cases(
        "resolve",
        resolve,
        {
            "mapping": [
                L("empty", {}),
                "a.test",
                None,
                L("list-of-pairs", [("a.test", "127.0.0.1")]),
                L("address-not-str", {"a.test": 5}, ("5",)),
                L("empty-address", {"a.test": ""}, ("''",)),
            ]
        },
    ),
    # CircuitBreaker.clone: a public factory
    *_cases(
        "CircuitBreaker.clone",
        SHARED_BREAKER.clone,
        {"name": [*BAD_NAME, None]},
    ),
    # events.LoggingListener
    *_cases(
        "LoggingListener",
        LoggingListener,
        {
            "logger": [
                5,
                L("object()", object()),
                L("Logger-class", logging.Logger),
                L("logging-module", logging),
            ],
            "level": ["INFO", None, True, 2.5, NAN],
        },
    ),
]


def _names(message: str, parameter: str) -> bool:
    """``parameter`` appears in ``message`` as a word (``window`` is not ``window_seconds``)."""
    return re.search(rf"(?<![\w.]){re.escape(parameter)}(?!\w)", message) is not None


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_option_is_refused_naming_the_parameter_and_the_value(case: Bad) -> None:
    with pytest.raises((ConfigError, TypeError)) as caught:
        case.build()
    message = str(caught.value)
    assert _names(message, case.parameter), f"the message does not name {case.parameter!r}"
    assert any(text in message for text in case.shown), (
        f"the message does not quote the value (one of {case.shown!r})"
    )


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


# -- extreme but plausible values: refused at construction, or they work -------------------


@dataclass(frozen=True)
class Extreme:
    """``build()`` either refuses (naming ``parameter`` and showing ``shown``), or
    returns something that ``exercise`` then uses once without an error."""

    id: str
    parameter: str
    shown: str
    build: Callable[[], Any]
    exercise: Callable[[Any], None]


def _fails(error: type[Exception] = ConnectionError) -> Callable[[], None]:
    def fail() -> None:
        raise error("down")

    return fail


def _exercise_breaker(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        with pytest.raises(ConnectionError):
            breaker.call(_fails())
    breaker.metrics()
    try:
        breaker.call(_ok)
    except CircuitOpen:
        pass
    assert breaker.state in ("closed", "open", "half_open")


def _exercise_budget(budget: TokenBucketBudget | RatioBudget | AdaptiveThrottle) -> None:
    for _ in range(3):
        budget.on_request()
        receipt = budget.try_retry("transient")
        budget.on_failure("transient")
        budget.on_success(receipt)
        budget.on_success(None)
    if isinstance(budget, AdaptiveThrottle):
        assert 0.0 <= budget.rejection_probability <= 1.0
    else:
        assert budget.available >= 0.0
    assert repr(budget)


def _exercise_backoff(backoff: Backoff) -> None:
    for number in (1, 2, 32, 33, 64, 1050, 5000, 10**6):
        delay = backoff.delay(number)
        assert 0.0 <= delay <= backoff.cap
        assert backoff.ceiling(number) <= backoff.cap


def _exercise_open_for(breaker: CircuitBreaker) -> None:
    with pytest.raises(ConnectionError):
        breaker.call(_fails())
    with pytest.raises(CircuitOpen) as caught:
        breaker.call(_ok)
    assert caught.value.retry_after == pytest.approx(1e10)


def _exercise_retry(retry: Retry) -> None:
    outcomes: list[BaseException | None] = [ConnectionError("down"), None]

    def flaky() -> str:
        error = outcomes.pop(0)
        if error is not None:
            raise error
        return "ok"

    assert retry.call(flaky) == "ok"


class _Throttled(Exception):
    retry_after = 1e10


def _exercise_retry_after(retry: Retry) -> None:
    clock = retry.clock
    assert isinstance(clock, FakeClock)
    outcomes: list[BaseException | None] = [_Throttled("slow down"), None]

    def throttled() -> str:
        error = outcomes.pop(0)
        if error is not None:
            raise error
        return "ok"

    assert retry.call(throttled) == "ok"
    assert clock.slept == pytest.approx(1e10)


def _exercise_bulkhead_on_fake_clock(bulkhead: Bulkhead) -> None:
    assert bulkhead.try_acquire()
    with pytest.raises(BulkheadFull):  # waits max_wait on the fake clock, at once
        bulkhead.call(_ok)
    assert (bulkhead.active, bulkhead.queued) == (1, 0)
    bulkhead.release()
    assert bulkhead.call(_ok) == "ok"
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


def _latency_on_fake_clock(seconds: float) -> tuple[Chaos, FakeClock]:
    clock = FakeClock()
    return Chaos.latency(seconds=seconds, clock=clock), clock


def _exercise_latency(built: tuple[Chaos, FakeClock]) -> None:
    chaos, clock = built
    assert chaos.call(_ok) == "ok"

    async def answer() -> str:
        return "ok"

    assert asyncio.run(chaos.acall(answer)) == "ok"
    assert clock.slept == pytest.approx(2e10)


def _exercise_sync_timeout(timeout: Timeout) -> None:
    def inside() -> float | None:
        return remaining()

    left = timeout.call(inside)
    assert left is not None
    assert left > 1e9


def _exercise_async_timeout(timeout: Timeout) -> None:
    async def inside() -> float | None:
        await asyncio.sleep(0)
        return remaining()

    left = asyncio.run(timeout.acall(inside))
    assert left is not None
    assert left > 1e9


def _exercise_hedge(hedge: Hedge) -> None:
    async def answer() -> str:
        await asyncio.sleep(0)
        return "ok"

    assert asyncio.run(hedge.acall(answer)) == "ok"


def _exercise_deadline(block: deadline) -> None:
    with block:
        left = remaining()
        assert left is not None
        assert left > 1e9


EXTREMES = [
    Extreme(
        "CircuitBreaker-window-10**13",
        "window",
        "10000000000000",
        lambda: CircuitBreaker("db", window=10**13, minimum_calls=1, clock=FakeClock()),
        _exercise_breaker,
    ),
    Extreme(
        "CircuitBreaker-window_seconds-1e-305",
        "window_seconds",
        "1e-305",
        lambda: CircuitBreaker("db", window_seconds=1e-305, minimum_calls=1, clock=FakeClock(1e6)),
        _exercise_breaker,
    ),
    Extreme(
        "CircuitBreaker-open_for-1e10",
        "open_for",
        "10000000000.0",
        lambda: CircuitBreaker(
            "db", window=1, minimum_calls=1, open_for=1e10, open_for_max=1e300, clock=FakeClock()
        ),
        _exercise_open_for,
    ),
    Extreme(
        "RatioBudget-window-1e-305",
        "window",
        "1e-305",
        lambda: RatioBudget(window=1e-305, clock=FakeClock(1e6)),
        _exercise_budget,
    ),
    Extreme(
        "AdaptiveThrottle-window-1e-305",
        "window",
        "1e-305",
        lambda: AdaptiveThrottle(window=1e-305, clock=FakeClock(1e6)),
        _exercise_budget,
    ),
    Extreme(
        "RatioBudget-min_per_second-1e300",
        "min_per_second",
        "1e+300",
        lambda: RatioBudget(min_per_second=1e300, window=1e10, clock=FakeClock()),
        _exercise_budget,
    ),
    Extreme(
        "TokenBucketBudget-retry_cost-5e-324",
        "retry_cost",
        "5e-324",
        lambda: TokenBucketBudget(capacity=1e308, retry_cost=5e-324, success_reward=0.1),
        _exercise_budget,
    ),
    Extreme(
        "Backoff-base-1e-320",
        "base",
        "1e-320",
        lambda: Backoff(base=1e-320, jitter="none"),
        _exercise_backoff,
    ),
    Extreme(
        "Backoff-cap-1e308",
        "cap",
        "1e+308",
        lambda: Backoff(base=1.0, cap=1e308, multiplier=1e308, jitter="equal"),
        _exercise_backoff,
    ),
    Extreme(
        "Retry-deadline-1e10",
        "deadline",
        "10000000000.0",
        lambda: Retry(on=ConnectionError, deadline=1e10, clock=FakeClock()),
        _exercise_retry,
    ),
    Extreme(
        "Retry-max_retry_after-1e10",
        "max_retry_after",
        "10000000000.0",
        lambda: Retry(on=_Throttled, max_retry_after=1e10, clock=FakeClock()),
        _exercise_retry_after,
    ),
    Extreme(
        "Bulkhead-max_wait-1e10-FakeClock",
        "max_wait",
        "10000000000.0",
        lambda: Bulkhead(1, max_queue=1, max_wait=1e10, clock=FakeClock()),
        _exercise_bulkhead_on_fake_clock,
    ),
    Extreme(
        "Chaos.latency-seconds-1e10-FakeClock",
        "seconds",
        "10000000000.0",
        lambda: _latency_on_fake_clock(1e10),
        _exercise_latency,
    ),
    Extreme(
        "Timeout-seconds-1e10-sync",
        "seconds",
        "10000000000.0",
        lambda: Timeout(1e10),
        _exercise_sync_timeout,
    ),
    Extreme(
        "Timeout-seconds-1e10-async",
        "seconds",
        "10000000000.0",
        lambda: Timeout(1e10),
        _exercise_async_timeout,
    ),
    Extreme(
        "Hedge-delay-1e10-async",
        "delay",
        "10000000000.0",
        lambda: Hedge(1e10),
        _exercise_hedge,
    ),
    Extreme(
        "deadline-seconds-1e10",
        "seconds",
        "10000000000.0",
        lambda: deadline(1e10),
        _exercise_deadline,
    ),
]


@pytest.mark.parametrize("case", EXTREMES, ids=[case.id for case in EXTREMES])
def test_extreme_value_is_refused_or_works_when_exercised(case: Extreme) -> None:
    try:
        built = case.build()
    except (ConfigError, TypeError) as error:
        message = str(error)
        assert _names(message, case.parameter)
        assert case.shown in message
        return
    case.exercise(built)


# -- waits of 1e10 seconds on the real clock (threads) ------------------------------------

_PATIENCE = 10.0  # seconds a thread may take to reach a point; only reached on a failure


def _blocked_in_a_wait(thread: threading.Thread) -> bool:
    """Is ``thread`` blocked in a ``threading`` wait (on an Event, Condition or Lock)?"""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "wait" and frame.f_code.co_filename == threading.__file__:
            return True
        frame = frame.f_back
    return False


def _until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (a few ms apart, bounded): for state another thread changes."""
    give_up = time.monotonic() + _PATIENCE
    while not condition() and time.monotonic() < give_up:
        threading.Event().wait(0.001)


def test_bulkhead_thread_waits_1e10_seconds_on_the_real_clock_without_overflow() -> None:
    bulkhead = Bulkhead(1, max_queue=1, max_wait=1e10)
    assert bulkhead.try_acquire()
    outcome: list[object] = []

    def caller() -> None:
        try:
            outcome.append(bulkhead.call(_ok))
        except BaseException as error:
            outcome.append(error)

    waiter = threading.Thread(target=caller)
    waiter.start()
    _until(lambda: bulkhead.queued == 1 or not waiter.is_alive())
    releaser = threading.Thread(target=bulkhead.release)  # the holder lets go at once
    releaser.start()
    releaser.join(_PATIENCE)
    waiter.join(_PATIENCE)
    assert not waiter.is_alive()
    assert outcome == ["ok"]
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


def test_bulkhead_task_waits_1e10_seconds_on_the_real_clock() -> None:
    bulkhead = Bulkhead(1, max_queue=1, max_wait=1e10)

    async def answer() -> str:
        return "ok"

    async def scenario() -> object:
        assert bulkhead.try_acquire()
        waiter = asyncio.ensure_future(bulkhead.acall(answer))
        for _ in range(100):
            if bulkhead.queued == 1 or waiter.done():
                break
            await asyncio.sleep(0)
        bulkhead.release()
        return await waiter

    assert asyncio.run(scenario()) == "ok"
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


def test_cache_follower_waits_under_a_1e10_second_deadline_on_the_real_clock() -> None:
    cache = Cache(60)
    started = threading.Event()
    finish = threading.Event()
    calls: list[str] = []

    def origin(key: str) -> str:
        calls.append(key)
        started.set()
        finish.wait(_PATIENCE)
        return f"{key}-value"

    outcomes: dict[str, object] = {}

    def call(who: str, seconds: float | None) -> None:
        try:
            if seconds is None:
                outcomes[who] = cache.call(origin, "k")
            else:
                with deadline(seconds):
                    outcomes[who] = cache.call(origin, "k")
        except BaseException as error:
            outcomes[who] = error

    leader = threading.Thread(target=call, args=("leader", None))
    leader.start()
    assert started.wait(_PATIENCE)
    follower = threading.Thread(target=call, args=("follower", 1e10))
    follower.start()
    _until(lambda: _blocked_in_a_wait(follower) or not follower.is_alive())
    finish.set()
    leader.join(_PATIENCE)
    follower.join(_PATIENCE)
    assert outcomes == {"leader": "k-value", "follower": "k-value"}
    assert calls == ["k"]  # the follower waited for the leader's call


def test_cache_async_follower_waits_under_a_1e10_second_deadline_on_the_real_clock() -> None:
    cache = Cache(60)
    calls: list[str] = []

    async def scenario() -> list[object]:
        finish = asyncio.Event()

        async def origin(key: str) -> str:
            calls.append(key)
            await finish.wait()
            return f"{key}-value"

        async def follow() -> str:
            with deadline(1e10):
                return await cache.acall(origin, "k")

        leader = asyncio.ensure_future(cache.acall(origin, "k"))
        await asyncio.sleep(0)
        follower = asyncio.ensure_future(follow())
        for _ in range(5):
            await asyncio.sleep(0)
        finish.set()
        return list(await asyncio.gather(leader, follower, return_exceptions=True))

    assert asyncio.run(scenario()) == ["k-value", "k-value"]
    assert calls == ["k"]


# -- quiet corruption is refused --------------------------------------------------------------


def test_bulkhead_release_without_acquire_raises_and_keeps_the_count() -> None:
    bulkhead = Bulkhead(1)
    with pytest.raises((RuntimeError, ValueError)):
        bulkhead.release()
    assert bulkhead.active == 0
    assert bulkhead.try_acquire()
    assert not bulkhead.try_acquire()  # still one permit, not two


def test_bulkhead_release_more_than_acquired_raises() -> None:
    bulkhead = Bulkhead(2)
    assert bulkhead.try_acquire()
    bulkhead.release()
    with pytest.raises((RuntimeError, ValueError)):
        bulkhead.release()
    assert bulkhead.active == 0


def test_retry_throttle_refuses_max_tokens_that_round_to_zero() -> None:
    with pytest.raises(ConfigError) as caught:
        RetryThrottle(max_tokens=0.0004)
    assert _names(str(caught.value), "max_tokens")
    assert "0.0004" in str(caught.value)
