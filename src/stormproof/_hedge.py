"""Hedge: when an async call is slow to answer, start another attempt in parallel.

After ``delay`` without an answer a hedged attempt starts (up to ``max_hedges``);
an attempt that fails with an error ``on`` matches starts the next one at once. The
first success wins and the others are cancelled. Hedges draw from a retry budget,
so that under trouble they stop instead of doubling the load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from ._budget import RetryBudget, budgets_option, combine_budgets
from ._classify import TRANSIENT, ErrorClass, classify
from ._core import events
from ._core.clock import MONOTONIC, Clock
from ._core.events import Event, Listener
from ._core.options import Configured, Options
from ._core.validate import (
    ExceptionFilter,
    check_exceptions,
    check_int,
    check_number,
    now_function,
)
from ._core.waiting import wait_first
from ._policy import Policy

__all__ = ["Hedge", "HedgeStarted"]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class HedgeStarted(Event):
    kind: ClassVar[str] = "hedge.started"
    attempt: int
    reason: str  # "delay": nobody answered in time; "failure": an attempt failed


@dataclass(frozen=True)
class HedgeOptions(Options):
    """Hedge's options (see ``Hedge``), validated when built; ``replace()`` copies."""

    delay: float
    max_hedges: int = 1
    budget: RetryBudget | Iterable[RetryBudget] | None = None
    on: ExceptionFilter = Exception
    name: str = "hedge"
    clock: Clock = MONOTONIC
    listeners: Iterable[Listener] = ()

    def _check(self) -> None:
        self._set("delay", check_number("delay", self.delay, low=0.0))
        check_int("max_hedges", self.max_hedges, low=1)
        self._set("budget", budgets_option(self.budget))
        check_exceptions("on", self.on)


_D = HedgeOptions(delay=0.0)
"""Hedge's defaults, where its constructor reads them."""


class Hedge(Policy, Configured[HedgeOptions]):
    """Start up to ``max_hedges`` extra attempts of a slow async call, ``delay``
    seconds apart; the first success wins. Async calls only."""

    options_type = HedgeOptions

    __slots__ = (
        "_budget",
        "_clock",
        "_delay",
        "_listeners",
        "_max_hedges",
        "_name",
        "_now",
        "_on",
        "_on_types",
        "_options",
    )

    supports_sync = False

    def __init__(
        self,
        delay: float,
        *,
        max_hedges: int = _D.max_hedges,
        budget: RetryBudget | Iterable[RetryBudget] | None = _D.budget,
        on: ExceptionFilter = _D.on,
        name: str = _D.name,
        clock: Clock = _D.clock,
        listeners: Iterable[Listener] = _D.listeners,
    ) -> None:
        self._configure(
            HedgeOptions(
                delay=delay,
                max_hedges=max_hedges,
                budget=budget,
                on=on,
                name=name,
                clock=clock,
                listeners=listeners,
            )
        )

    def _configure(self, options: HedgeOptions) -> None:
        self._options = options
        self._delay = options.delay
        self._max_hedges = options.max_hedges
        self._budget = combine_budgets(options.budget)
        self._on_types, self._on = check_exceptions("on", options.on)
        self._name = options.name
        self._clock = options.clock
        self._now = now_function(self._clock)
        self._listeners = events.check_listeners(options.listeners)

    def __repr__(self) -> str:
        return (
            f"Hedge(delay={self._delay:g}, max_hedges={self._max_hedges}, "
            f"budget={self._budget!r}, name={self._name!r})"
        )

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        self._require_sync(fn)
        raise AssertionError("unreachable")  # pragma: no cover

    def started(self, attempt: int, reason: str, now: float | None = None) -> None:
        """A hedged attempt, the ``attempt``-th of its call, started for ``reason``
        (``"delay"`` or ``"failure"``): tell the listeners (``hedge.started``). For
        drivers of your own, such as a simulator; ``now`` defaults to the clock's."""
        if events.active(self._listeners):
            when = self._now() if now is None else now
            events.emit(HedgeStarted(self._name, when, attempt, reason), self._listeners)

    def _matches(self, error: BaseException) -> bool:
        if not isinstance(error, Exception):
            return False
        types = self._on_types
        return isinstance(error, types) if types is not None else bool(self._on(error))

    async def _arun(
        self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        result, error = await self._race(fn, args, kwargs)
        if error is not None:
            try:
                raise error
            finally:
                error = None  # no cycle through this frame: the error's traceback holds it
        return result  # type: ignore[no-any-return]

    async def _race(
        self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, BaseException | None]:
        """Run the attempts; returns the winner's result, or the error that ends the call
        (returned, not raised, so that nothing here is held by its traceback)."""
        budget = self._budget
        if budget is not None:
            budget.on_request()
        pending: set[asyncio.Future[Any]] = {asyncio.ensure_future(fn(*args, **kwargs))}
        hedges = 0
        last_error: BaseException | None = None
        try:
            while pending:
                may_hedge = hedges < self._max_hedges
                done = await wait_first(self._clock, pending, self._delay if may_hedge else None)
                failed: list[ErrorClass] = []
                for task in done:
                    pending.discard(task)
                    error = task.exception()
                    if error is None:
                        if budget is not None:
                            # A plain success: hedges cost, and a winning hedge never
                            # refunds its cost, so slow answers drain the budget.
                            budget.on_success(None)
                        return task.result(), None
                    if not self._matches(error):
                        return None, error
                    error_class = classify(error)
                    if budget is not None:
                        budget.on_failure(error_class)
                    last_error = error
                    failed.append(error_class)
                # Nobody answered within the delay: one hedge. Attempts failed: one
                # each, at once, whatever else is still pending.
                for error_class in failed or [TRANSIENT]:
                    if hedges >= self._max_hedges:
                        break
                    if budget is not None and budget.try_retry(error_class) is None:
                        hedges = self._max_hedges  # the budget said no: no more hedges
                        break
                    hedges += 1
                    pending.add(asyncio.ensure_future(fn(*args, **kwargs)))
                    self.started(hedges + 1, "failure" if failed else "delay")
            return None, last_error
        finally:
            for task in pending:
                if not task.done():
                    task.cancel()
                elif not task.cancelled():
                    task.exception()  # retrieved: a losing attempt's error is not news
