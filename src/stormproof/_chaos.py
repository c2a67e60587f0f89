"""Fault injection as ordinary policies, so faults can sit anywhere in a Pipeline.

``Chaos.fault`` raises, ``Chaos.latency`` delays (on the policy's clock), and
``Chaos.outcome`` answers in place of the call, each for a share of calls (``rate``)
while ``enabled``, optionally only between two instants on the clock or following a
scripted sequence of calls (``["fail", "fail", "pass"]``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar, cast

from ._core import events
from ._core.clock import Clock, RandomSource
from ._core.errors import ConfigError, fresh_copy
from ._core.events import Event, Listener
from ._core.validate import (
    check_callable,
    check_clock,
    check_name,
    check_number,
    check_random,
    now_function,
)
from ._policy import Policy

__all__ = ["Chaos", "ChaosInjected"]

R = TypeVar("R")

Kind = Literal["fault", "latency", "outcome"]
_INJECT = frozenset({"fail", "inject", "slow", "answer"})
_PASS = frozenset({"pass", "skip"})


@dataclass(frozen=True, slots=True)
class ChaosInjected(Event):
    kind: ClassVar[str] = "chaos.injected"
    fault: str


class Chaos(Policy):
    """A fault injector. Build one with ``Chaos.fault``, ``Chaos.latency`` or
    ``Chaos.outcome``."""

    __slots__ = (
        "_between",
        "_clock",
        "_enabled",
        "_error",
        "_kind",
        "_listeners",
        "_lock",
        "_name",
        "_now",
        "_random",
        "_rate",
        "_seconds",
        "_sequence",
        "_value",
    )

    def __init__(
        self,
        kind: Kind,
        rate: float = 1.0,
        *,
        error: BaseException | type[BaseException] | Callable[[], BaseException] | None = None,
        seconds: float = 0.0,
        value: Any = None,
        enabled: bool | Callable[[], bool] = True,
        between: tuple[float, float] | None = None,
        sequence: Sequence[str | bool] | None = None,
        random: RandomSource | None = None,
        clock: Clock | None = None,
        name: str | None = None,
        listeners: Iterable[Listener] | None = None,
    ) -> None:
        if kind not in ("fault", "latency", "outcome"):
            raise ConfigError("kind", "'fault', 'latency' or 'outcome'", kind)
        self._kind = kind
        self._rate = check_number("rate", rate, low=0.0, high=1.0)
        self._error = _check_error(error) if kind == "fault" else None
        self._seconds = check_number("seconds", seconds, low=0.0)
        self._value = value
        if not isinstance(enabled, bool):
            check_callable(
                "enabled",
                enabled,
                arguments=0,
                requirement="True, False or a zero-argument callable returning one",
            )
        self._enabled = enabled
        self._between = _check_between(between)
        self._sequence = None if sequence is None else iter(_check_sequence(sequence))
        self._random = check_random(random)
        self._clock = check_clock(clock)
        self._now = now_function(self._clock)
        self._name = check_name("name", name, f"chaos-{kind}")
        self._listeners = events.check_listeners(listeners)
        self._lock = threading.Lock()

    @classmethod
    def fault(
        cls,
        rate: float = 1.0,
        error: BaseException | type[BaseException] | Callable[[], BaseException] = ConnectionError,
        **options: Any,
    ) -> Chaos:
        """Raise ``error`` (a type, an instance, or a factory; a fresh exception each time)
        instead of making the call."""
        return cls("fault", rate, error=error, **options)

    @classmethod
    def latency(cls, rate: float = 1.0, seconds: float = 1.0, **options: Any) -> Chaos:
        """Wait ``seconds`` on the policy's clock before making the call."""
        return cls("latency", rate, seconds=seconds, **options)

    @classmethod
    def outcome(cls, rate: float = 1.0, value: Any = None, **options: Any) -> Chaos:
        """Return ``value`` instead of making the call."""
        return cls("outcome", rate, value=value, **options)

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        detail = {
            "fault": f"error={self._error!r}",
            "latency": f"seconds={self._seconds:g}",
            "outcome": f"value={self._value!r}",
        }[self._kind]
        return f"Chaos.{self._kind}(rate={self._rate:g}, {detail}, name={self._name!r})"

    # -- the decision ----------------------------------------------------------------------

    def injects(self) -> bool:
        """Decide whether this call gets the fault (consumes one step of a sequence)."""
        enabled = self._enabled
        if not (enabled if isinstance(enabled, bool) else enabled()):
            return False
        if self._between is not None:
            start, end = self._between
            if not start <= self._now() < end:
                return False
        if self._sequence is not None:
            with self._lock:
                step = next(self._sequence, None)
            return step is not None and (step is True or step in _INJECT)
        return self._rate >= 1.0 or self._random() < self._rate

    def _injected(self) -> None:
        if events.active(self._listeners):
            events.emit(ChaosInjected(self._name, self._now(), self._kind), self._listeners)

    def _raise(self) -> None:
        factory = self._error
        assert factory is not None
        raise factory()

    # -- drivers -----------------------------------------------------------------------------

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        if self.injects():
            self._injected()
            if self._kind == "fault":
                self._raise()
            elif self._kind == "outcome":
                return self._value  # type: ignore[no-any-return]
            else:
                self._clock.sleep(self._seconds)
        return fn(*args, **kwargs)

    async def _arun(
        self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        if self.injects():
            self._injected()
            if self._kind == "fault":
                self._raise()
            elif self._kind == "outcome":
                return self._value  # type: ignore[no-any-return]
            else:
                await self._clock.asleep(self._seconds)
        return await fn(*args, **kwargs)


def _check_error(
    error: BaseException | type[BaseException] | Callable[[], BaseException] | None,
) -> Callable[[], BaseException]:
    """A factory of fresh exceptions: re-raising one object would grow its traceback."""
    if isinstance(error, type) and issubclass(error, BaseException):
        kind = error
        return lambda: kind("injected by stormproof.Chaos")
    if isinstance(error, BaseException):
        template = error
        return lambda: fresh_copy(template).with_traceback(None)
    return cast(
        Callable[[], BaseException],
        check_callable(
            "error",
            error,
            arguments=0,
            requirement="an exception type, an exception, or a zero-argument factory of them",
        ),
    )


def _check_between(between: object) -> tuple[float, float] | None:
    if between is None:
        return None
    if (
        not isinstance(between, tuple)
        or len(between) != 2
        or not all(
            isinstance(t, (int, float)) and not isinstance(t, bool) and not math.isnan(t)
            for t in between
        )
        or not between[0] <= between[1]
    ):
        raise ConfigError(
            "between", "a (start, end) pair of clock times (not NaN), start <= end", between
        )
    return (float(between[0]), float(between[1]))


def _check_sequence(sequence: object) -> list[str | bool]:
    if isinstance(sequence, (str, bytes)) or not isinstance(sequence, Sequence):
        raise ConfigError("sequence", 'a list of steps such as ["fail", "fail", "pass"]', sequence)
    steps = list(sequence)
    for step in steps:
        if not (isinstance(step, bool) or step in _INJECT or step in _PASS):
            raise ConfigError(
                "sequence", 'steps "fail"/"inject" or "pass"/"skip" (or True/False)', step
            )
    return steps
