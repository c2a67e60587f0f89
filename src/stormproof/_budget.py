"""Retry budgets: one object shared by every call (and thread) to one destination.

A budget bounds retries across *all* callers, which per-call backoff cannot do for
open-loop traffic: when a dependency is down, retries stop once the budget is spent,
so the load on it stays close to the load callers offer.

Every budget implements the small ``RetryBudget`` protocol that ``Retry`` drives;
the methods never block and never do I/O.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from . import _metering
from ._classify import THROTTLING, TIMEOUT, ErrorClass
from ._core.errors import BudgetExhausted, ConfigError
from ._core.options import Configured, Options
from ._core.validate import (
    check_bool,
    check_instance,
    check_number,
    exact,
)

__all__ = [
    "RetryBudget",
    "TokenBucketBudget",
    "budgets_option",
    "combine_budgets",
]


@runtime_checkable
class RetryBudget(Protocol):
    """What ``Retry`` asks of a budget. Implement it to plug in your own.

    - ``on_request()``: a request's first attempt is about to start; may raise a
      ``Rejected`` subclass to refuse it (client-side throttling does).
    - ``try_retry(error_class)``: may a retry start after a failure of this class?
      Takes its cost and returns a receipt, or returns ``None`` to refuse.
    - ``cancel_retry(receipt)``: undo a ``try_retry`` whose retry did not start.
    - ``on_success(receipt)``: the request succeeded; ``receipt`` is the one from its
      last retry, or ``None`` when it succeeded at the first attempt.
    - ``on_failure(error_class)``: an attempt failed with a retryable error of this
      class, or with a non-retryable error (``None``: the dependency answered).
    """

    @property
    def name(self) -> str: ...

    def on_request(self) -> None: ...

    def try_retry(self, error_class: ErrorClass) -> object | None: ...

    def cancel_retry(self, receipt: object) -> None: ...

    def on_success(self, receipt: object | None) -> None: ...

    def on_failure(self, error_class: ErrorClass | None) -> None: ...


_MIN_WINDOW = 0.001
"""The shortest time window a budget may look at: its slices must stay measurable."""


def _in_units(amounts: dict[str, float]) -> tuple[dict[str, int], int]:
    """The amounts as whole multiples of one unit, the largest that divides them all as
    written (0.1 and 5 are 1 and 50 tenths), and that unit's size (10: a tenth)."""
    exact_amounts = {key: exact(value) for key, value in amounts.items()}
    unit = math.lcm(*(value.denominator for value in exact_amounts.values()))
    return {key: int(value * unit) for key, value in exact_amounts.items()}, unit


@dataclass(frozen=True)
class TokenBucketOptions(Options):
    """TokenBucketBudget's options, validated when built; ``replace()`` copies."""

    capacity: float = 500
    retry_cost: float = 5
    timeout_cost: float = 10
    throttling_cost: float | None = None
    success_reward: float = 1
    refund: bool = True
    name: str = "token-bucket"

    def _check(self) -> None:
        check_bool("refund", self.refund)
        for parameter in ("capacity", "retry_cost", "timeout_cost", "success_reward"):
            self._set(parameter, check_number(parameter, getattr(self, parameter), low=0.0))
        if self.throttling_cost is not None:
            self._set(
                "throttling_cost", check_number("throttling_cost", self.throttling_cost, low=0.0)
            )


_TB = TokenBucketOptions()


class _Budget(ABC):
    """Shared by the built-in budgets: a name and the raising form of ``try_retry``."""

    __slots__ = ("__weakref__", "_lock", "_name", "_options")

    def _start(self, name: str) -> None:
        """A name, and a lock of its own (every built-in budget's state is guarded);
        its level is a gauge while metrics are exported."""
        self._name = name
        self._lock = threading.Lock()
        _metering.register_budget(self)

    @property
    def name(self) -> str:
        return self._name

    @abstractmethod
    def try_retry(self, error_class: ErrorClass) -> object | None: ...

    @abstractmethod
    def on_success(self, receipt: object | None) -> None: ...

    def acquire(self, error_class: ErrorClass = "transient") -> object:
        """Take the cost of one retry, or raise ``BudgetExhausted``.

        For code that runs its own retry loop; ``Retry`` uses ``try_retry``.
        """
        receipt = self.try_retry(error_class)
        if receipt is None:
            raise BudgetExhausted(self._name, self._retry_after())
        return receipt

    def _retry_after(self) -> float | None:
        return None

    def on_request(self) -> None:
        return None

    def cancel_retry(self, receipt: object) -> None:
        return None

    def on_failure(self, error_class: ErrorClass | None) -> None:
        return None


class TokenBucketBudget(_Budget, Configured[TokenBucketOptions]):
    """The AWS SDK standard-mode retry quota.

    A retry takes ``retry_cost`` tokens (``timeout_cost`` after a timeout,
    ``throttling_cost`` after throttling) or is not made at all. A request that
    succeeds at its first attempt adds ``success_reward``; one that succeeds after
    retries refunds the cost of its last retry (with ``refund=False`` it adds
    ``success_reward`` like any success: the plain token bucket of Brooker's retry
    experiments and of gRPC). Tokens stay within [0, capacity].

    Arithmetic is exact: tokens are counted in whole units of the largest fraction
    that divides every option as written (0.1 is a tenth), so ten rewards of 0.1 make
    exactly one token, however long the process runs.
    """

    options_type = TokenBucketOptions

    __slots__ = ("_capacity", "_costs", "_refund_last", "_reward", "_tokens", "_unit")

    def __init__(
        self,
        *,
        capacity: float = _TB.capacity,
        retry_cost: float = _TB.retry_cost,
        timeout_cost: float = _TB.timeout_cost,
        throttling_cost: float | None = _TB.throttling_cost,
        success_reward: float = _TB.success_reward,
        refund: bool = _TB.refund,
        name: str = _TB.name,
    ) -> None:
        self._configure(
            TokenBucketOptions(
                capacity=capacity,
                retry_cost=retry_cost,
                timeout_cost=timeout_cost,
                throttling_cost=throttling_cost,
                success_reward=success_reward,
                refund=refund,
                name=name,
            )
        )

    def _configure(self, options: TokenBucketOptions) -> None:
        """Count in units of the options; a full bucket."""
        self._options = options
        self._start(options.name)
        self._refund_last = options.refund
        amounts = {
            "capacity": options.capacity,
            "transient": options.retry_cost,
            TIMEOUT: options.timeout_cost,
            THROTTLING: (
                options.retry_cost if options.throttling_cost is None else options.throttling_cost
            ),
            "reward": options.success_reward,
        }
        units, self._unit = _in_units(amounts)
        self._capacity = units["capacity"]
        self._costs = {key: units[key] for key in ("transient", TIMEOUT, THROTTLING)}
        self._reward = units["reward"]
        self._tokens = self._capacity

    @classmethod
    def aws_standard(cls, *, name: str = _TB.name) -> TokenBucketBudget:
        """AWS SDK standard mode: 500 tokens, retries cost 5, timeouts 10, success adds 1."""
        return cls(capacity=500, retry_cost=5, timeout_cost=10, success_reward=1, name=name)

    @classmethod
    def aws_2026(cls, *, name: str = _TB.name) -> TokenBucketBudget:
        """AWS SDK retry behaviour from 2026: transient errors and timeouts cost 14,
        throttling 5, success adds 1."""
        return cls(
            capacity=500,
            retry_cost=14,
            timeout_cost=14,
            throttling_cost=5,
            success_reward=1,
            name=name,
        )

    @property
    def capacity(self) -> float:
        return self._capacity / self._unit

    @property
    def available(self) -> float:
        """Tokens left now."""
        return self._tokens / self._unit

    def cost(self, error_class: ErrorClass) -> float:
        return self._costs.get(error_class, self._costs["transient"]) / self._unit

    def try_retry(self, error_class: ErrorClass) -> object | None:
        cost = self._costs.get(error_class, self._costs["transient"])
        with self._lock:
            if self._tokens < cost:
                return None
            self._tokens -= cost
        return cost

    def cancel_retry(self, receipt: object) -> None:
        self._refund(receipt)

    def on_success(self, receipt: object | None) -> None:
        if receipt is None or not self._refund_last:
            # The common case: a full bucket and a first-attempt success. Reading the
            # count is atomic; only a change takes the lock.
            if self._tokens >= self._capacity or not self._reward:
                return
            with self._lock:
                self._tokens = min(self._capacity, self._tokens + self._reward)
        else:
            self._refund(receipt)

    def _refund(self, receipt: object) -> None:
        if type(receipt) is int and receipt:
            with self._lock:
                self._tokens = min(self._capacity, self._tokens + receipt)

    def __repr__(self) -> str:
        costs = self._costs
        unit = self._unit
        return (
            f"TokenBucketBudget(capacity={self._capacity / unit:g}, "
            f"retry_cost={costs['transient'] / unit:g}, timeout_cost={costs[TIMEOUT] / unit:g}, "
            f"throttling_cost={costs[THROTTLING] / unit:g}, "
            f"success_reward={self._reward / unit:g}, refund={self._refund_last}, "
            f"name={self._name!r}; available={self._tokens / unit:g})"
        )


class _Combined:
    """Several budgets acting as one: a retry must be granted by all of them."""

    __slots__ = ("_budgets", "_name")

    def __init__(self, budgets: tuple[RetryBudget, ...]) -> None:
        self._budgets = budgets
        self._name = "+".join(budget.name for budget in budgets)

    @property
    def name(self) -> str:
        return self._name

    def on_request(self) -> None:
        for budget in self._budgets:
            budget.on_request()

    def try_retry(self, error_class: ErrorClass) -> object | None:
        receipts: list[object] = []
        for budget in self._budgets:
            receipt = budget.try_retry(error_class)
            if receipt is None:
                for granted, taken in zip(self._budgets, receipts, strict=False):
                    granted.cancel_retry(taken)
                return None
            receipts.append(receipt)
        return tuple(receipts)

    def cancel_retry(self, receipt: object) -> None:
        assert isinstance(receipt, tuple)
        for budget, taken in zip(self._budgets, receipt, strict=True):
            budget.cancel_retry(taken)

    def on_success(self, receipt: object | None) -> None:
        if receipt is None:
            for budget in self._budgets:
                budget.on_success(None)
        else:
            assert isinstance(receipt, tuple)
            for budget, taken in zip(self._budgets, receipt, strict=True):
                budget.on_success(taken)

    def on_failure(self, error_class: ErrorClass | None) -> None:
        for budget in self._budgets:
            budget.on_failure(error_class)

    def __repr__(self) -> str:
        return "(" + ", ".join(repr(budget) for budget in self._budgets) + ")"


def combine_budgets(value: RetryBudget | Iterable[RetryBudget] | None) -> RetryBudget | None:
    """Validate ``Retry(budget=...)``: one budget, several (all must grant), or None."""
    if value is None:
        return None
    requirement = "a retry budget, a sequence of them, or None"
    check_instance("budget", value, requirement)
    if isinstance(value, RetryBudget):
        return value
    try:
        budgets = tuple(value)
    except TypeError:
        raise ConfigError("budget", requirement, value) from None
    if not budgets or not all(
        isinstance(budget, RetryBudget) and not isinstance(budget, type) for budget in budgets
    ):
        raise ConfigError("budget", requirement, value)
    return budgets[0] if len(budgets) == 1 else _Combined(budgets)


def budgets_option(
    value: RetryBudget | Iterable[RetryBudget] | None,
) -> RetryBudget | tuple[RetryBudget, ...] | None:
    """Validate a ``budget=`` option and keep it as a value: one budget, a tuple of them
    (from any iterable, read once), or None."""
    if value is None or isinstance(value, (RetryBudget, type)):
        return combine_budgets(value)  # the budget itself, or None (a class is refused)
    try:
        budgets = tuple(value)
    except TypeError:
        raise ConfigError("budget", "a retry budget, a sequence of them, or None", value) from None
    try:
        combine_budgets(budgets)
    except ConfigError:
        raise ConfigError("budget", "a retry budget, a sequence of them, or None", value) from None
    return budgets
