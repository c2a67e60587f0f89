"""What every policy shares: the decorator, ``call`` and ``acall``, built on two
driver methods each policy implements (``_run`` for sync calls, ``_arun`` for async)."""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from types import CoroutineType
from typing import Any, ClassVar, ParamSpec, TypeVar, cast

from . import _metering
from ._core.errors import ConfigError

__all__ = [
    "NO_KWARGS",
    "PIPELINE_STEPS",
    "Policy",
    "is_async",
    "original_call",
    "returned_coroutine",
]

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
    if type(fn) is _Awaiting:
        fn = fn.fn
    return fn, args, kwargs


def is_async(fn: object) -> bool:
    """Whether calling ``fn`` makes a coroutine, as far as can be told without calling
    it: an ``async def`` (or a method, partial or object whose ``__call__`` is one)."""
    code = getattr(fn, "__code__", None)  # functions and bound methods: one flag test
    if code is not None:
        return bool(code.co_flags & inspect.CO_COROUTINE)
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004  (an object with ``async def __call__``)
    )


class _WrongKind(BaseException):
    """A sync function handed to ``acall`` returned no awaitable. A ``BaseException``,
    like a cancellation, so that no policy records it, retries it or falls back on it
    on its way out; ``acall`` turns it into a ``TypeError``."""


class _Awaiting:
    """A callable that is not an ``async def``, handed to ``acall``: awaits what it
    returns, and stops the call if that is not awaitable."""

    __slots__ = ("fn", "policy")

    def __init__(self, fn: Callable[..., Any], policy: Policy) -> None:
        self.fn = fn
        self.policy = policy

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.fn(*args, **kwargs)
        if not inspect.isawaitable(result):
            raise _WrongKind(
                f"{type(self.policy).__name__}.acall: {_describe(self.fn)} returned "
                f"{type(result).__name__}, not an awaitable; for a sync function use "
                f"{type(self.policy).__name__}.call, or decorate it"
            )
        return await result


def _describe(fn: object) -> str:
    return repr(getattr(fn, "__qualname__", None) or fn)


class FirstResult:
    """The first result of a decorated sync function tells whether it makes coroutines
    (a mistake the policy could not protect): one check, not one per call."""

    __slots__ = ("checked", "fn", "policy")

    def __init__(self, policy: Policy, fn: object) -> None:
        self.policy = policy
        self.fn = fn
        self.checked = False

    def check(self, result: Any) -> Any:
        if type(result) is CoroutineType:
            raise returned_coroutine(self.policy, self.fn, result)
        self.checked = True
        return result


def returned_coroutine(policy: Policy, fn: object, result: Any) -> TypeError:
    """The error for a sync call whose function made a coroutine (which is closed, so
    Python does not also warn that it was never awaited)."""
    result.close()
    name = type(policy).__name__
    what = "is an async function" if is_async(fn) else "returned a coroutine"
    return TypeError(
        f"{name}: {_describe(fn)} {what}, so the policy protected nothing; "
        f"use await {name}.acall(...) instead, or decorate the async function"
    )


class Policy(ABC):
    """Base class of every policy: usable as a decorator, with ``call`` and ``acall``,
    and as a stage of a ``Pipeline``.

    A policy implements ``_run(fn, args, kwargs)`` (sync) and ``_arun(fn, args,
    kwargs)`` (async), which call ``fn(*args, **kwargs)`` under the policy.
    """

    __slots__ = ("__weakref__", "_meter")

    supports_sync: ClassVar[bool] = True
    """False for policies that only make sense around async calls (``Hedge``)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # Every policy is known (weakly) to metering, which meters it while an exporter
        # is on (see ``_metering``); a policy nobody exports costs nothing per call.
        policy = super().__new__(cls)
        _metering.register(policy)
        return policy

    @property
    def name(self) -> str:
        """The name in events, errors and logs (the class's, for a policy without one)."""
        name: str | None = getattr(self, "_name", None)
        return type(self).__name__.lower() if name is None else name

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate a function (sync or ``async def``); its signature is kept."""
        if not callable(fn):
            raise ConfigError("fn", "a callable", fn)
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise ConfigError("fn", "a function or coroutine function, not a generator", fn)
        if is_async(fn):
            policy = self
            afn = cast(Callable[..., Awaitable[Any]], fn)

            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await policy._arun(afn, args, kwargs)

            return cast(Callable[P, R], functools.update_wrapper(async_wrapper, fn))
        self._require_sync(fn)
        return cast(Callable[P, R], functools.update_wrapper(self._sync_decorator(fn), fn))

    def _sync_decorator(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The function that runs a decorated sync ``fn`` under this policy. A policy
        may build a faster one of its own (the breaker does, for its closed state).
        ``_run`` is looked up at each call: metering may change the policy's class."""
        policy = self
        first = FirstResult(self, fn)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = policy._run(fn, args, kwargs)
            return result if first.checked else first.check(result)

        return wrapper

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``fn(*args, **kwargs)`` under this policy. An ``async def`` (or any
        function that returns a coroutine) is a ``TypeError`` that says to use
        ``acall``: the policy would protect nothing."""
        result = self._run(fn, args, kwargs)
        if type(result) is CoroutineType:
            raise returned_coroutine(self, fn, result)
        return result

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn(*args, **kwargs)`` under this policy. ``fn`` may be any callable
        returning an awaitable (a lambda around a coroutine call, say); one that returns
        anything else is stopped with a ``TypeError`` (use ``call``), before any policy
        counts it as a failure."""
        code = getattr(fn, "__code__", None)
        if (code is not None and code.co_flags & inspect.CO_COROUTINE) or is_async(fn):
            return await self._arun(fn, args, kwargs)
        try:
            return await self._arun(_Awaiting(fn, self), args, kwargs)
        except _WrongKind as wrong:
            raise TypeError(str(wrong)) from None

    def _require_sync(self, fn: object) -> None:
        if not self.supports_sync:
            raise ConfigError(
                "fn", f"a coroutine function ({type(self).__name__} works on async calls)", fn
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
