"""Fallback: answer with a substitute when the call fails in a chosen way."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from ._core import events
from ._core.clock import Clock
from ._core.errors import ConfigError
from ._core.events import Event, Listener
from ._core.validate import (
    check_callable,
    check_clock,
    check_exceptions,
    check_name,
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


class Fallback(Policy):
    """On an exception that ``on`` matches (any ``Exception`` by default, rejections
    included), return ``value``, or ``handler(exception)``.

    A handler is a plain callable; in async calls it may also return an awaitable,
    which is awaited. Cancellation is never caught.
    """

    __slots__ = ("_handler", "_listeners", "_name", "_now", "_on", "_on_types", "_value")

    def __init__(
        self,
        value: Any = _MISSING,
        *,
        handler: Callable[[Exception], Any] | None = None,
        on: type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool] = Exception,
        name: str | None = None,
        clock: Clock | None = None,
        listeners: Iterable[Listener] | None = None,
    ) -> None:
        if (value is _MISSING) == (handler is None):
            raise ConfigError("value/handler", "exactly one of the two", (value, handler))
        self._value = value
        self._handler = check_callable(
            "handler",
            handler,
            optional=True,
            arguments=1,
            requirement="a callable taking one argument (the exception)",
        )
        self._on_types, self._on = check_exceptions("on", on)
        self._name = check_name("name", name, "fallback")
        self._now = now_function(check_clock(clock))
        self._listeners = events.check_listeners(listeners)

    @property
    def name(self) -> str:
        return self._name

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
