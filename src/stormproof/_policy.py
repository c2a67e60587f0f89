"""What every policy shares: the decorator, ``call`` and ``acall``, built on two
driver methods each policy implements (``_run`` for sync calls, ``_arun`` for async)."""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, ParamSpec, TypeVar, cast

from ._core.errors import ConfigError

__all__ = ["NO_KWARGS", "PIPELINE_STEPS", "Policy", "original_call"]

P = ParamSpec("P")
R = TypeVar("R")

NO_KWARGS: dict[str, Any] = {}
"""Shared empty keyword arguments for internal calls; never mutated."""

PIPELINE_STEPS: set[Any] = set()
"""The functions a Pipeline hands to its stages as ``fn`` (registered by Pipeline)."""


def original_call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """The caller's own function and arguments, seen through a Pipeline's stages.

    Inside a Pipeline a stage is handed the next stage, not the caller's function;
    policies that need the caller's arguments (a cache key) look through it here.
    """
    if getattr(fn, "__func__", None) in PIPELINE_STEPS:
        _, fn, args, kwargs = args
    return fn, args, kwargs


class Policy(ABC):
    """Base class of every policy: usable as a decorator, with ``call`` and ``acall``,
    and as a stage of a ``Pipeline``.

    A policy implements ``_run(fn, args, kwargs)`` (sync) and ``_arun(fn, args,
    kwargs)`` (async), which call ``fn(*args, **kwargs)`` under the policy.
    """

    __slots__ = ()

    supports_sync: ClassVar[bool] = True
    """False for policies that only make sense around async calls (``Hedge``)."""

    @property
    def name(self) -> str:
        return type(self).__name__.lower()

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate a function (sync or ``async def``); its signature is kept."""
        if not callable(fn):
            raise ConfigError("fn", "a callable", fn)
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise ConfigError("fn", "a function or coroutine function, not a generator", fn)
        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004  (an object with ``async def __call__``)
        ):
            arun = self._arun
            afn = cast(Callable[..., Awaitable[Any]], fn)

            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await arun(afn, args, kwargs)

            return cast(Callable[P, R], functools.update_wrapper(async_wrapper, fn))
        self._require_sync()
        run = self._run

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return run(fn, args, kwargs)

        return cast(Callable[P, R], functools.update_wrapper(wrapper, fn))

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``fn(*args, **kwargs)`` under this policy."""
        return self._run(fn, args, kwargs)

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn(*args, **kwargs)`` under this policy."""
        return await self._arun(fn, args, kwargs)

    def _require_sync(self) -> None:
        if not self.supports_sync:
            raise ConfigError(
                "fn", f"a coroutine function ({type(self).__name__} works on async calls)", None
            )

    @abstractmethod
    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        """Call ``fn(*args, **kwargs)`` under the policy (sync driver)."""

    @abstractmethod
    async def _arun(
        self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        """Await ``fn(*args, **kwargs)`` under the policy (async driver)."""

    def describe(self) -> str:
        """This policy's configuration, in one readable line."""
        return repr(self)
