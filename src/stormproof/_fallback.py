"""Fallback: answer with a substitute when the call fails in a chosen way."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from ._core import events
from ._core.clock import MONOTONIC, Clock
from ._core.errors import ConfigError
from ._core.events import Event, Listener
from ._core.options import Configured, Options
from ._core.validate import (
    ExceptionFilter,
    check_callable,
    check_exceptions,
    now_function,
)
from ._policy import Policy

__all__ = ["Fallback", "FallbackUsed"]

R = TypeVar("R")

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class FallbackUsed(Event):
    kind: ClassVar[str] = "fallback.used"
    error: BaseException


@dataclass(frozen=True)
class FallbackOptions(Options):
    """Fallback's options (see ``Fallback``), validated when built; ``replace()``
    copies. Exactly one of ``value`` and ``handler``."""

    value: Any = _MISSING
    handler: Callable[[Exception], Any] | None = None
    on: ExceptionFilter = Exception
    name: str = "fallback"
    clock: Clock = MONOTONIC
    listeners: Iterable[Listener] = ()

    def _check(self) -> None:
        if (self.value is _MISSING) == (self.handler is None):
            raise ConfigError("value/handler", "exactly one of the two", (self.value, self.handler))
        check_callable(
            "handler",
            self.handler,
            optional=True,
            arguments=1,
            requirement="a callable taking one argument (the exception)",
        )
        check_exceptions("on", self.on)


_D = FallbackOptions(value=None)
"""Fallback's defaults, where its constructor reads them."""


class Fallback(Policy, Configured[FallbackOptions]):
    """On an exception that ``on`` matches (any ``Exception`` by default, rejections
    included), return ``value``, or ``handler(exception)``.

    A handler is a plain callable; in async calls it may also return an awaitable,
    which is awaited. Cancellation is never caught.
    """

    options_type = FallbackOptions

    __slots__ = (
        "_handler",
        "_listeners",
        "_name",
        "_now",
        "_on",
        "_on_types",
        "_options",
        "_value",
    )

    def __init__(
        self,
        value: Any = _MISSING,
        *,
        handler: Callable[[Exception], Any] | None = _D.handler,
        on: ExceptionFilter = _D.on,
        name: str = _D.name,
        clock: Clock = _D.clock,
        listeners: Iterable[Listener] = _D.listeners,
    ) -> None:
        self._configure(
            FallbackOptions(
                value=value, handler=handler, on=on, name=name, clock=clock, listeners=listeners
            )
        )

    def _configure(self, options: FallbackOptions) -> None:
        self._options = options
        self._value = options.value
        self._handler = options.handler
        self._on_types, self._on = check_exceptions("on", options.on)
        self._name = options.name
        self._now = now_function(options.clock)
        self._listeners = events.check_listeners(options.listeners)

    def __repr__(self) -> str:
        what = f"handler={self._handler!r}" if self._handler else f"value={self._value!r}"
        return f"Fallback({what}, name={self._name!r})"

    def _matches(self, error: Exception) -> bool:
        types = self._on_types
        return isinstance(error, types) if types is not None else bool(self._on(error))

    def _substitute(self, error: Exception) -> Any:
        if events.active(self._listeners):
            events.emit(FallbackUsed(self._name, self._now(), error), self._listeners)
        if self._handler is None:
            return self._value
        return self._handler(error)

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            if not self._matches(error):
                raise
            substitute = self._substitute(error)
        return substitute  # type: ignore[no-any-return]

    async def _arun(
        self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        try:
            return await fn(*args, **kwargs)
        except Exception as error:
            if not self._matches(error):
                raise
            substitute = self._substitute(error)
        if inspect.isawaitable(substitute):
            substitute = await substitute
        return substitute  # type: ignore[no-any-return]
