"""Fault injection as ordinary policies, so faults can sit anywhere in a Pipeline.

``Chaos.fault`` raises, ``Chaos.latency`` delays (on the policy's clock), and
``Chaos.outcome`` answers in place of the call, each for a share of calls (``rate``)
while ``enabled``, optionally only between two instants on the clock or following a
scripted sequence of calls (``["fail", "fail", "pass"]``).
"""

from __future__ import annotations

import math
import random as _random
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypedDict, TypeVar, cast

from ._core import events
from ._core.clock import MONOTONIC, Clock, RandomSource
from ._core.errors import ConfigError, fresh_copy
from ._core.events import Event, Listener
from ._core.options import Configured, Options
from ._core.validate import (
    check_callable,
    check_number,
    now_function,
)
from ._policy import Policy

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Chaos", "ChaosInjected", "ChaosSettings"]

R = TypeVar("R")

Kind = Literal["fault", "latency", "outcome"]
_INJECT = frozenset({"fail", "inject", "slow", "answer"})
_PASS: Any = object()  # no fault for this call
_DELAY: Any = object()  # wait, then call
_PASS = frozenset({"pass", "skip"})


@dataclass(frozen=True, slots=True)
class ChaosInjected(Event):
    kind: ClassVar[str] = "chaos.injected"
    fault: str


ErrorSpec = BaseException | type[BaseException] | Callable[[], BaseException]
"""What a fault raises: an exception type, an exception (copied each time), or a
zero-argument factory of them."""


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


@dataclass(frozen=True)
class ChaosOptions(Options):
    """Chaos's options (see ``Chaos``), validated when built; ``replace()`` copies.
    ``name=None`` names it ``chaos-<kind>``."""

    kind: Kind
    rate: float = 1.0
    error: ErrorSpec = ConnectionError
    seconds: float = 1.0
    value: Any = None
    enabled: bool | Callable[[], bool] = True
    between: tuple[float, float] | None = None
    sequence: Sequence[str | bool] | None = None
    random: RandomSource = _random.random
    clock: Clock = MONOTONIC
    name: str | None = None
    listeners: Iterable[Listener] = ()

    def _check(self) -> None:
        if self.kind not in ("fault", "latency", "outcome"):
            raise ConfigError("kind", "'fault', 'latency' or 'outcome'", self.kind)
        self._set("rate", check_number("rate", self.rate, low=0.0, high=1.0))
        if self.kind == "fault":
            _check_error(self.error)
        self._set("seconds", check_number("seconds", self.seconds, low=0.0))
        if not isinstance(self.enabled, bool):
            check_callable(
                "enabled",
                self.enabled,
                arguments=0,
                requirement="True, False or a zero-argument callable returning one",
            )
        self._set("between", _check_between(self.between))
        if self.sequence is not None:
            self._set("sequence", tuple(_check_sequence(self.sequence)))


class ChaosSettings(TypedDict, total=False):
    """The options every kind of fault takes (``Chaos.fault(rate, error, **these)``)."""

    enabled: bool | Callable[[], bool]
    between: tuple[float, float] | None
    sequence: Sequence[str | bool] | None
    random: RandomSource
    clock: Clock
    name: str | None
    listeners: Iterable[Listener]


_D = ChaosOptions(kind="outcome")
"""Chaos's defaults, where its constructor and factories read them."""


class Chaos(Policy, Configured[ChaosOptions]):
    """A fault injector. Build one with ``Chaos.fault``, ``Chaos.latency`` or
    ``Chaos.outcome``."""

    options_type = ChaosOptions

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
        "_options",
        "_random",
        "_rate",
        "_seconds",
        "_sequence",
        "_value",
    )

    def __init__(
        self,
        kind: Kind,
        rate: float = _D.rate,
        *,
        error: ErrorSpec = _D.error,
        seconds: float = _D.seconds,
        value: Any = _D.value,
        enabled: bool | Callable[[], bool] = _D.enabled,
        between: tuple[float, float] | None = _D.between,
        sequence: Sequence[str | bool] | None = _D.sequence,
        random: RandomSource = _D.random,
        clock: Clock = _D.clock,
        name: str | None = _D.name,
        listeners: Iterable[Listener] = _D.listeners,
    ) -> None:
        self._configure(
            ChaosOptions(
                kind=kind,
                rate=rate,
                error=error,
                seconds=seconds,
                value=value,
                enabled=enabled,
                between=between,
                sequence=sequence,
                random=random,
                clock=clock,
                name=name,
                listeners=listeners,
            )
        )

    def _configure(self, options: ChaosOptions) -> None:
        """Precompute what every call reads; a scripted ``sequence`` starts over."""
        self._options = options
        self._kind = options.kind
        self._rate = options.rate
        self._error = _check_error(options.error) if options.kind == "fault" else None
        self._seconds = options.seconds
        self._value = options.value
        self._enabled = options.enabled
        self._between = options.between
        self._sequence = None if options.sequence is None else iter(options.sequence)
        self._random = options.random
        self._clock = options.clock
        self._now = now_function(self._clock)
        self._name = options.name or f"chaos-{options.kind}"
        self._listeners = events.check_listeners(options.listeners)
        self._lock = threading.Lock()

    @classmethod
    def fault(
        cls, rate: float = _D.rate, error: ErrorSpec = _D.error, **options: Unpack[ChaosSettings]
    ) -> Chaos:
        """Raise ``error`` (a type, an instance, or a factory; a fresh exception each time)
        instead of making the call."""
        return cls("fault", rate, error=error, **options)

    @classmethod
    def latency(
        cls, rate: float = _D.rate, seconds: float = _D.seconds, **options: Unpack[ChaosSettings]
    ) -> Chaos:
        """Wait ``seconds`` on the policy's clock before making the call."""
        return cls("latency", rate, seconds=seconds, **options)

    @classmethod
    def outcome(
        cls, rate: float = _D.rate, value: Any = _D.value, **options: Unpack[ChaosSettings]
    ) -> Chaos:
        """Return ``value`` instead of making the call."""
        return cls("outcome", rate, value=value, **options)

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

    def _inject(self) -> Any:
        """This call's fault, decided and reported: raises the fault's error; returns
        ``_PASS`` (no fault), ``_DELAY`` (wait ``seconds``, then call) or ``(value,)``
        (answer it instead of calling)."""
        if not self.injects():
            return _PASS
        self._injected()
        if self._kind == "fault":
            factory = self._error
            assert factory is not None
            raise factory()
        return _DELAY if self._kind == "latency" else (self._value,)

    # -- drivers -----------------------------------------------------------------------------

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        action = self._inject()
        if action is _DELAY:
            self._clock.sleep(self._seconds)
        elif action is not _PASS:
            return action[0]  # type: ignore[no-any-return]
        return fn(*args, **kwargs)

    async def _arun(
        self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        action = self._inject()
        if action is _DELAY:
            await self._clock.asleep(self._seconds)
        elif action is not _PASS:
            return action[0]  # type: ignore[no-any-return]
        return await fn(*args, **kwargs)
