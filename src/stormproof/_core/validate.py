"""Option validation, shared by every policy.

Each check names the parameter and quotes the bad value, and raises ConfigError
(which is also a ValueError) before any state is built, so nothing is half-done.
"""

from __future__ import annotations

import inspect
import math
import random as _random
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any, cast

from .clock import MONOTONIC, Clock, MonotonicClock, RandomSource
from .errors import ConfigError

__all__ = [
    "ExceptionFilter",
    "check_bool",
    "check_callable",
    "check_choice",
    "check_clock",
    "check_exceptions",
    "check_instance",
    "check_int",
    "check_name",
    "check_number",
    "check_random",
    "exact",
    "now_function",
    "takes",
]


def check_number(
    parameter: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> float:
    """A finite real number (bool excluded) within the given bounds, as a float."""
    if value is None and optional:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(
            parameter, _describe("a finite number", low, high, low_open, high_open), value
        )
    number = float(value)
    if (low is not None and (number < low or (low_open and number == low))) or (
        high is not None and (number > high or (high_open and number == high))
    ):
        raise ConfigError(parameter, _describe("", low, high, low_open, high_open).strip(), value)
    return number


def _describe(
    kind: str, low: float | None, high: float | None, low_open: bool, high_open: bool
) -> str:
    if low is not None and high is not None:
        opening = "(" if low_open else "["
        closing = ")" if high_open else "]"
        return f"{kind} in {opening}{_fmt(low)}, {_fmt(high)}{closing}".strip()
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {_fmt(low)}".strip()
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {_fmt(high)}".strip()
    return kind


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(number)


def check_int(parameter: str, value: object, *, low: int, high: int | None = None) -> int:
    """An integer (bool excluded) that is at least ``low`` (and at most ``high``)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        requirement = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise ConfigError(parameter, requirement, value)
    return value


def exact(value: float) -> Fraction:
    """``value`` as the decimal it is written as (0.55 is 11/20, not the binary float
    just above it), for arithmetic that must not drift and thresholds that must hold
    exactly ("at least this rate")."""
    return Fraction(repr(float(value)))


ExceptionMatcher = tuple[tuple[type[Exception], ...] | None, Callable[[Exception], bool]]

ExceptionFilter = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]
"""What ``on=`` (and ``ignore=``, ...) take: an exception type, a tuple of them, or a
predicate taking the exception."""


def check_bool(parameter: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(parameter, "True or False", value)
    return value


def check_exceptions(
    parameter: str, value: object, *, allow_empty: bool = False
) -> ExceptionMatcher:
    """An exception type, a tuple of them, or a predicate: as (the types, or None for a
    predicate; a predicate). Only subclasses of Exception: cancellation, KeyboardInterrupt
    and SystemExit are never caught."""
    requirement = (
        "an exception type (a subclass of Exception), a tuple of them, or a predicate "
        "taking one argument (the exception)"
    )
    if isinstance(value, (type, tuple)):
        types = (value,) if isinstance(value, type) else value
        valid = all(isinstance(t, type) and issubclass(t, Exception) for t in types)
        if not valid or (not types and not allow_empty):
            raise ConfigError(parameter, requirement, value)
        return types, lambda error: isinstance(error, types)
    if callable(value) and takes(value, 1):
        return None, cast(Callable[[Exception], bool], value)
    raise ConfigError(parameter, requirement, value)


def takes(fn: Callable[..., Any], count: int) -> bool:
    """Whether ``fn`` can be called with ``count`` positional arguments. True when its
    signature cannot be read (some builtins): only a sure mismatch is refused."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    try:
        signature.bind(*(None,) * count)
    except TypeError:
        return False
    return True


def check_choice(parameter: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(parameter, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def check_callable(
    parameter: str,
    value: object,
    *,
    optional: bool = False,
    arguments: int | None = None,
    requirement: str = "callable",
) -> Any:
    """A callable that is not a class (a class where a function is expected is almost
    always a missing call), taking ``arguments`` positional arguments when given."""
    if value is None and optional:
        return None
    if (
        not callable(value)
        or isinstance(value, type)
        or (arguments is not None and not takes(value, arguments))
    ):
        raise ConfigError(parameter, requirement, value)
    return value


def check_instance(parameter: str, value: object, requirement: str) -> None:
    """Refuse a class where an instance is expected (``Backoff`` for ``Backoff()``)."""
    if isinstance(value, type):
        raise ConfigError(parameter, f"{requirement} (an instance, not the class itself)", value)


def check_name(parameter: str, value: object, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(parameter, "a non-empty string", value)
    return value


def check_clock(value: object) -> Clock:
    if value is None:
        return MONOTONIC
    check_instance("clock", value, "a clock")
    if not isinstance(value, Clock):
        raise ConfigError("clock", "an object with now(), sleep() and asleep()", value)
    return value


def check_random(value: object) -> RandomSource:
    if value is None:
        return _random.random
    return cast(
        RandomSource,
        check_callable(
            "random",
            value,
            arguments=0,
            requirement="a zero-argument callable returning a float in [0, 1), such as "
            "random.Random(seed).random",
        ),
    )


def now_function(clock: Clock) -> Callable[[], float]:
    """The cheapest callable that reads ``clock``: the C function for the default clock."""
    if type(clock) is MonotonicClock:
        return time.monotonic
    return clock.now
