"""Retry: bounded attempts, backoff with jitter, a deadline, and a shared budget.

Layout, as for every pattern: options validated at construction (``Retry``), the
pure per-call state machine (``RetryState``), thin drivers that carry its decisions
out (sync, async, and the ``for attempt in retry`` block form), and the events.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextvars import Token
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from ._backoff import Backoff, check_backoff
from ._budget import RetryBudget, budgets_option, combine_budgets
from ._classify import THROTTLING, TRANSIENT, ErrorClass
from ._classify import classify as default_classify
from ._core import events
from ._core.clock import MONOTONIC, Clock
from ._core.context import RETRYING
from ._core.deadline import _CURRENT as _CURRENT_DEADLINE
from ._core.deadline import Deadline
from ._core.drive import CALL, Core, Failure, adrive, drive, ended
from ._core.errors import Rejected
from ._core.events import Event, Listener, _registry
from ._core.options import Configured, Options
from ._core.validate import (
    ExceptionFilter,
    check_bool,
    check_callable,
    check_exceptions,
    check_int,
    check_number,
    now_function,
)
from ._policy import Policy

__all__ = [
    "Attempt",
    "Retry",
    "RetryGaveUp",
    "RetryScheduled",
    "RetryState",
    "SDKRetriesWarning",
    "retrying",
]

_INF = math.inf

R = TypeVar("R")

GiveUpReason = Literal["attempts", "deadline", "budget"]

# Set while a Retry runs the caller's code (see _core.context.RETRYING).
_ACTIVE = RETRYING


def retrying() -> bool:
    """Whether a stormproof ``Retry`` is running the current code: a Retry nested
    here makes a single attempt and leaves the decision to the outer one (unless it has
    ``retry_when_nested``). For drivers of one's own that make attempts themselves."""
    return _ACTIVE.get()


class SDKRetriesWarning(UserWarning):
    """A client beneath a stormproof ``Retry`` retried the call itself (a boto3 client
    with its own retries on: attempts multiply). Warned once per Retry."""


_DEFAULT_BACKOFF = Backoff()

_UNOPENED: tuple[float | None, Deadline | None] = (None, None)
"""What ``Retry._open`` returns for a call with no deadline and no budget."""


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    """Attempt ``attempt`` failed; the next one starts after ``delay`` seconds."""

    kind: ClassVar[str] = "retry.scheduled"
    attempt: int
    delay: float
    error_class: ErrorClass
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class RetryGaveUp(Event):
    """A retryable failure was not retried: attempts, deadline or budget ran out.

    The caller's own exception (or last result) is what the caller receives.
    """

    kind: ClassVar[str] = "retry.gave_up"
    attempts: int
    reason: GiveUpReason
    error_class: ErrorClass
    error: BaseException | None


@dataclass(frozen=True)
class RetryOptions(Options):
    """Retry's options (see ``Retry``), validated when built; ``replace()`` copies.

    The field defaults are Retry's defaults, for the library and the Outage Lab."""

    on: ExceptionFilter
    attempts: int = 3
    deadline: float | None = None
    backoff: Backoff = _DEFAULT_BACKOFF
    throttling_backoff: Backoff | None = None
    budget: RetryBudget | Iterable[RetryBudget] | None = None
    retry_on_result: Callable[[Any], bool] | None = None
    classify: Callable[[object], ErrorClass] = default_classify
    clock: Clock = MONOTONIC
    name: str = "retry"
    max_retry_after: float = 60.0
    retry_when_nested: bool = False
    retry_rejected: bool = False
    listeners: Iterable[Listener] = ()

    def _check(self) -> None:
        check_exceptions("on", self.on)
        self._set("attempts", check_int("attempts", self.attempts, low=1))
        if self.deadline is not None:
            self._set("deadline", check_number("deadline", self.deadline, low=0.0, low_open=True))
        check_backoff("backoff", self.backoff, "a Backoff")
        if self.throttling_backoff is not None:
            check_backoff("throttling_backoff", self.throttling_backoff, "a Backoff or None")
        self._set("budget", budgets_option(self.budget))
        check_callable(
            "retry_on_result",
            self.retry_on_result,
            optional=True,
            arguments=1,
            requirement="a predicate taking one argument (the result)",
        )
        check_callable(
            "classify",
            self.classify,
            arguments=1,
            requirement="a function of one argument (the error or result)",
        )
        self._set("max_retry_after", check_number("max_retry_after", self.max_retry_after, low=0.0))
        check_bool("retry_when_nested", self.retry_when_nested)
        check_bool("retry_rejected", self.retry_rejected)


_D = RetryOptions(on=Exception)
"""Retry's defaults, where its constructor reads them."""


class Retry(Policy, Configured[RetryOptions]):
    """Retry a call on chosen failures, so that retries cannot become a storm.

    ``on`` (required) says what to retry: an exception type, a tuple of them, or a
    predicate taking the exception. Attempts are always bounded (``attempts``
    counts the first one: 1 means no retry) and, with ``deadline``, so is the total
    time: a retry whose backoff would end past the deadline is not started. With a
    ``budget`` shared by every call to one destination, retries stop when the
    budget is spent. After the last attempt the caller's own exception is re-raised
    unchanged (or, for ``retry_on_result``, the last result is returned).

    ``throttling_backoff`` (default: ``backoff``) is used after throttling errors, which
    usually deserve a longer wait. A ``retry_after`` attribute on the exception (or
    result) is honoured as a lower bound on the wait, clamped to ``max_retry_after``.
    A Retry nested inside another on the same call stack makes one attempt and lets
    the outer one decide, unless ``retry_when_nested=True``.

    Use it as a decorator (sync or async), with ``call``/``acall``, or as a block::

        for attempt in retry:
            with attempt:
                ...
    """

    options_type = RetryOptions

    __slots__ = (
        "_attempts",
        "_backoff",
        "_budget",
        "_classify",
        "_classify_always",
        "_clock",
        "_deadline",
        "_defer_nested",
        "_listeners",
        "_max_retry_after",
        "_name",
        "_now",
        "_on",
        "_on_types",
        "_opens",
        "_options",
        "_plain",
        "_retry_on_result",
        "_retry_rejected",
        "_throttling_backoff",
        "_warned_sdk",
    )

    def __init__(
        self,
        *,
        on: ExceptionFilter,
        attempts: int = _D.attempts,
        deadline: float | None = _D.deadline,
        backoff: Backoff = _D.backoff,
        throttling_backoff: Backoff | None = _D.throttling_backoff,
        budget: RetryBudget | Iterable[RetryBudget] | None = _D.budget,
        retry_on_result: Callable[[Any], bool] | None = _D.retry_on_result,
        classify: Callable[[object], ErrorClass] = _D.classify,
        clock: Clock = _D.clock,
        name: str = _D.name,
        max_retry_after: float = _D.max_retry_after,
        retry_when_nested: bool = _D.retry_when_nested,
        retry_rejected: bool = _D.retry_rejected,
        listeners: Iterable[Listener] = _D.listeners,
    ) -> None:
        self._configure(
            RetryOptions(
                on=on,
                attempts=attempts,
                deadline=deadline,
                backoff=backoff,
                throttling_backoff=throttling_backoff,
                budget=budget,
                retry_on_result=retry_on_result,
                classify=classify,
                clock=clock,
                name=name,
                max_retry_after=max_retry_after,
                retry_when_nested=retry_when_nested,
                retry_rejected=retry_rejected,
                listeners=listeners,
            )
        )

    def _configure(self, options: RetryOptions) -> None:
        """Precompute what the hot path reads from the options."""
        self._options = options
        self._warned_sdk = False
        self._on_types, self._on = check_exceptions("on", options.on)
        self._attempts = options.attempts
        self._deadline = options.deadline
        self._backoff = options.backoff
        self._throttling_backoff = (
            options.backoff if options.throttling_backoff is None else options.throttling_backoff
        )
        self._budget = combine_budgets(options.budget)
        self._retry_on_result = options.retry_on_result
        self._plain = options.retry_on_result is None  # every result is a success
        # Whether a call has anything to do before its first attempt (see _open).
        self._opens = self._budget is not None or self._deadline is not None
        self._classify = options.classify
        self._classify_always = (
            self._budget is not None or self._throttling_backoff is not self._backoff
        )
        self._clock = options.clock
        self._now = now_function(self._clock)
        self._name = options.name
        self._max_retry_after = options.max_retry_after
        self._defer_nested = not options.retry_when_nested
        self._retry_rejected = options.retry_rejected
        self._listeners = events.check_listeners(options.listeners)

    # -- introspection -------------------------------------------------------------

    @property
    def attempts(self) -> int:
        return self._attempts

    @property
    def deadline(self) -> float | None:
        return self._deadline

    @property
    def backoff(self) -> Backoff:
        return self._backoff

    @property
    def budget(self) -> RetryBudget | None:
        return self._budget

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def retries_when_nested(self) -> bool:
        return not self._defer_nested

    def __repr__(self) -> str:
        on = getattr(self._options.on, "__qualname__", None) or repr(self._options.on)
        if isinstance(self._options.on, tuple):
            on = "(" + ", ".join(t.__qualname__ for t in self._options.on) + ")"
        return (
            f"Retry(on={on}, attempts={self._attempts}, deadline={self._deadline!r}, "
            f"backoff={self._backoff!r}, budget={self._budget!r}, name={self._name!r})"
        )

    # -- the state machine ---------------------------------------------------------

    def begin(self, now: float | None = None) -> RetryState:
        """Start the decisions of one call (for drivers of your own, such as a simulator).

        Tells the budget a request is starting (which may raise ``Throttled``) and
        returns the call's state machine. ``now`` defaults to the policy's clock.
        """
        ambient = _CURRENT_DEADLINE.get()
        if ambient is not None:
            ambient.check(self._name)
        if self._budget is not None:
            self._budget.on_request()
        return RetryState(self, self._now() if now is None else now, ambient)

    # -- drivers: decorator, call, acall -------------------------------------------

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self._defer_nested and _ACTIVE.get():
            return fn(*args, **kwargs)
        ambient = _CURRENT_DEADLINE.get()
        opened = self._open(ambient) if ambient is not None or self._opens else _UNOPENED
        token = _ACTIVE.set(True)
        try:
            try:
                outcome: Any = fn(*args, **kwargs)
            except Exception as error:
                outcome = Failure(error)
            if self._plain and type(outcome) is not Failure:  # the success path
                return outcome if self._budget is None else self._rewarded(outcome)
            core = self._after_first(opened, outcome)
            return ended(outcome) if core is None else drive(core, fn, args, kwargs, self._clock)
        finally:
            _ACTIVE.reset(token)
            outcome = None  # a failed first attempt: no cycle through this frame

    async def _arun(
        self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if self._defer_nested and _ACTIVE.get():
            return await fn(*args, **kwargs)
        ambient = _CURRENT_DEADLINE.get()
        opened = self._open(ambient) if ambient is not None or self._opens else _UNOPENED
        token = _ACTIVE.set(True)
        try:
            try:
                outcome: Any = await fn(*args, **kwargs)
            except Exception as error:
                outcome = Failure(error)
            if self._plain and type(outcome) is not Failure:  # the success path
                return outcome if self._budget is None else self._rewarded(outcome)
            core = self._after_first(opened, outcome)
            return (
                ended(outcome)
                if core is None
                else await adrive(core, fn, args, kwargs, self._clock)
            )
        finally:
            _ACTIVE.reset(token)
            outcome = None  # a failed first attempt: no cycle through this frame

    # -- the decisions of one call, past its first attempt --------------------------

    def _open(self, ambient: Deadline | None) -> tuple[float | None, Deadline | None]:
        """A call starts: no attempt once the current deadline has passed, and the
        budget is told (it may refuse: ``Throttled``). Returns when it started (if the
        call has a deadline of its own) and the deadline in force."""
        if ambient is not None:
            ambient.check(self._name)
        if self._budget is not None:
            self._budget.on_request()
        return (None if self._deadline is None else self._now()), ambient

    def _rewarded(self, result: R) -> R:
        """A first attempt succeeded: the budget earns its reward."""
        self._budget.on_success(None)  # type: ignore[union-attr]
        return result

    def _after_first(
        self, opened: tuple[float | None, Deadline | None], outcome: Any
    ) -> Core | None:
        """The first attempt ended with ``outcome`` (a value, or a ``Failure``). None:
        the call ends with it (a success is recorded); else the rest of the call."""
        if type(outcome) is Failure:
            if not self._warned_sdk:
                _check_sdk_retries(self, outcome.error)
            state = RetryState(self, *opened)
            delay = state.on_exception(outcome.error, self._now())
        else:
            check = self._retry_on_result
            if check is None or not check(outcome):
                if self._budget is not None:
                    self._budget.on_success(None)
                return None
            state = RetryState(self, *opened)
            delay = state.on_retryable_result(outcome, self._now())
        return None if delay is None else self._retries(state, delay)

    def _retries(self, state: RetryState, delay: float) -> Core:
        """The rest of a call whose attempt failed: wait, attempt, and again, as
        ``state`` decides. Returns the last outcome."""
        now = self._now
        while True:
            yield delay
            outcome = yield CALL
            if type(outcome) is Failure:
                next_delay = state.on_exception(outcome.error, now())
            else:
                next_delay = state.on_result(outcome, now())
            if next_delay is None:
                return outcome
            delay = next_delay

    # -- driver: the block form ----------------------------------------------------

    def __iter__(self) -> Iterator[Attempt]:
        """``for attempt in retry: with attempt: ...`` (retries on exceptions only)."""
        if self._defer_nested and _ACTIVE.get():
            yield Attempt(None, self._now)
            return
        state = self.begin()
        sleep = self._clock.sleep
        while True:
            attempt = Attempt(state, self._now)
            yield attempt
            if attempt._delay is None:
                return
            sleep(attempt._delay)

    async def __aiter__(self) -> AsyncIterator[Attempt]:
        """``async for attempt in retry: async with attempt: ...`` (``with`` works too)."""
        if self._defer_nested and _ACTIVE.get():
            yield Attempt(None, self._now)
            return
        state = self.begin()
        asleep = self._clock.asleep
        while True:
            attempt = Attempt(state, self._now)
            yield attempt
            if attempt._delay is None:
                return
            await asleep(attempt._delay)


class RetryState:
    """The retry decisions of one call: told each outcome and the time, it answers
    how long to wait before the next attempt, or ``None`` to stop.

    It never sleeps and never does I/O, so the same object drives sync calls, async
    calls, the block form and the simulator. Per-call state lives here, never on the
    shared ``Retry``.
    """

    __slots__ = ("_deadline_at", "_previous", "_receipt", "_retry", "attempt")

    def __init__(self, retry: Retry, started: float | None, ambient: Deadline | None) -> None:
        """``ambient``: the deadline in force when the call started (or None)."""
        self._retry = retry
        self.attempt = 1
        """The number of the attempt in progress (1 is the first)."""
        deadline = retry._deadline
        deadline_at = _INF if deadline is None or started is None else started + deadline
        if ambient is not None:
            deadline_at = min(deadline_at, ambient.expires_on(retry._clock, retry._now()))
        self._deadline_at = deadline_at
        self._previous: float | None = None
        self._receipt: object | None = None

    def on_exception(self, error: BaseException, now: float) -> float | None:
        """The attempt raised ``error``. Returns the delay before the next attempt,
        or ``None``: re-raise ``error``."""
        retry = self._retry
        if (
            self.attempt >= retry._attempts
            and retry._budget is None
            and not (retry._listeners or _registry.listeners)
        ):
            return None  # the last attempt failed: nothing to decide, record or tell
        if isinstance(error, Rejected):
            if not retry._retry_rejected:
                return None  # never executed: nothing was learned, and nothing to retry
            # Retried whatever ``on`` says, after its ``retry_after``; the dependency
            # was not reached, so the budget learns nothing of it (a retry still costs).
            return self._failed(error, error, now, reached=False)
        types = retry._on_types
        if types is not None:
            matched = isinstance(error, types)  # only Exception subclasses: never cancellation
        else:
            matched = isinstance(error, Exception) and retry._on(error)
        if not matched:
            if retry._budget is not None and isinstance(error, Exception):
                retry._budget.on_failure(None)
            return None
        return self._failed(error, error, now)

    def on_result(self, result: object, now: float) -> float | None:
        """The attempt returned ``result``. Returns the delay before the next attempt
        (``retry_on_result`` judged it a failure), or ``None``: the call is done."""
        check = self._retry._retry_on_result
        if check is None or not check(result):
            self.on_success()
            return None
        return self.on_retryable_result(result, now)

    def on_retryable_result(self, result: object, now: float) -> float | None:
        """Like ``on_result`` for a result already judged retryable."""
        return self._failed(result, None, now)

    def on_success(self) -> None:
        """The attempt succeeded (the block form reports success this way)."""
        budget = self._retry._budget
        if budget is not None:
            budget.on_success(self._receipt)

    def _failed(
        self, outcome: object, error: BaseException | None, now: float, reached: bool = True
    ) -> float | None:
        """A failed attempt: ``reached`` is False when it never reached the dependency
        (a rejection by an inner policy), which the budget is then not told about."""
        retry = self._retry
        budget = retry._budget
        # Classifying costs about a microsecond; only budgets, a distinct throttling
        # backoff and event listeners need the answer.
        listening = retry._listeners or _registry.listeners
        error_class = retry._classify(outcome) if retry._classify_always or listening else TRANSIENT
        if budget is not None and reached:
            budget.on_failure(error_class)
        attempt = self.attempt
        if attempt >= retry._attempts:
            if listening:
                self._give_up("attempts", error_class, error, now)
            return None
        backoff = retry._throttling_backoff if error_class == THROTTLING else retry._backoff
        delay = backoff_delay = backoff.delay(attempt, self._previous)
        if getattr(outcome, "retry_after", None) is not None:
            hint = _retry_after(outcome)
            if hint is not None:
                delay = max(delay, min(hint, retry._max_retry_after))
        if now + delay >= self._deadline_at:
            if listening:
                self._give_up("deadline", error_class, error, now)
            return None
        if budget is not None:
            receipt = budget.try_retry(error_class)
            if receipt is None:
                if listening:
                    self._give_up("budget", error_class, error, now)
                return None
            self._receipt = receipt
        self._previous = backoff_delay
        self.attempt = attempt + 1
        if listening:
            events.emit(
                RetryScheduled(retry._name, now, attempt, delay, error_class, error),
                retry._listeners,
            )
        return delay

    def _give_up(
        self,
        reason: GiveUpReason,
        error_class: ErrorClass,
        error: BaseException | None,
        now: float,
    ) -> None:
        """Tell the listeners (only called when there are some)."""
        retry = self._retry
        events.emit(
            RetryGaveUp(retry._name, now, self.attempt, reason, error_class, error),
            retry._listeners,
        )


class Attempt:
    """One attempt of the block form: a context manager (sync and async).

    Leaving it with a retryable exception suppresses the exception and the loop
    continues after the backoff; otherwise the exception propagates unchanged.
    """

    __slots__ = ("_delay", "_now", "_state", "_token", "number")

    def __init__(self, state: RetryState | None, now: Callable[[], float]) -> None:
        self._state = state
        self._now = now
        self.number = 1 if state is None else state.attempt
        self._delay: float | None = None
        self._token: Token[bool] | None = None

    def __enter__(self) -> Attempt:
        if self._state is not None:
            self._token = _ACTIVE.set(True)
        return self

    def __exit__(self, exc_type: object, error: BaseException | None, tb: object) -> bool:
        if self._token is not None:
            _ACTIVE.reset(self._token)
            self._token = None
        state = self._state
        if state is None:
            return False
        if error is None:
            state.on_success()
            return False
        self._delay = state.on_exception(error, self._now())
        return self._delay is not None

    async def __aenter__(self) -> Attempt:
        return self.__enter__()

    async def __aexit__(self, exc_type: object, error: BaseException | None, tb: object) -> bool:
        return self.__exit__(exc_type, error, tb)

    def __repr__(self) -> str:
        return f"<Attempt {self.number}>"


def _check_sdk_retries(retry: Retry, outcome: object) -> None:
    """Warn (once per Retry) when the failure says the client below already retried:
    botocore records its retries in the error's ``ResponseMetadata.RetryAttempts``."""
    response = getattr(outcome, "response", None)
    if type(response) is not dict:
        return
    metadata = response.get("ResponseMetadata")
    retried = metadata.get("RetryAttempts") if type(metadata) is dict else None
    if type(retried) is int and retried > 0:
        retry._warned_sdk = True
        warnings.warn(
            f"{retry._name}: the client beneath this Retry already retried the call "
            f"{retried} times itself, so attempts multiply (each of this Retry's "
            "attempts is several); protect the client with "
            "stormproof.integrations.botocore.protect(client) or turn its retries off",
            SDKRetriesWarning,
            stacklevel=5,
        )


def _retry_after(outcome: object) -> float | None:
    """A server's ``retry_after`` hint in seconds, if the outcome carries a valid one."""
    try:
        value = getattr(outcome, "retry_after", None)
    except Exception:
        return None
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    ):
        return float(value)
    return None
