"""Pipeline: policies composed around one call, outermost first.

Recommended order, outermost first, and why:

1. ``Fallback``: sees every failure below it, rejections included, and answers last.
2. ``Cache``: a fresh or stale answer needs none of the machinery below.
3. ``Timeout`` (total): bounds everything below, retries and their sleeps included.
4. ``Retry`` with a budget: each retry goes through everything below it again.
5. ``Failover``: a regional failure moves the next attempt to another region.
6. ``CircuitBreaker``: fails fast without spending an attempt's time on a dead
   dependency, and sees every attempt, not every request.
7. ``Bulkhead``: limits the calls actually in flight.
8. ``Timeout`` (per attempt): bounds one attempt, so a retry can follow.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ._core.errors import ConfigError
from ._core.validate import check_name
from ._policy import NO_KWARGS, PIPELINE_STEPS, Policy
from ._retry import Retry

__all__ = ["Pipeline"]

R = TypeVar("R")


class Pipeline(Policy):
    """Run a call through ``policies``, the first one outermost.

    Building it rejects clear mistakes with ``ConfigError``: an empty pipeline,
    something that is not a policy, and a ``Retry`` inside another ``Retry``
    (attempts would multiply) unless the inner one has ``retry_when_nested=True``.
    """

    __slots__ = (
        "_arunners",
        "_astep_bound",
        "_name",
        "_policies",
        "_runners",
        "_size",
        "_step_bound",
    )

    _policies: tuple[Policy, ...]

    def __init__(self, *policies: Policy, name: str | None = None) -> None:
        flat: list[Policy] = []
        for policy in policies:
            if isinstance(policy, Pipeline):
                flat.extend(policy._policies)
            elif isinstance(policy, Policy):
                flat.append(policy)
            else:
                raise ConfigError("policies", "policies (Retry, CircuitBreaker, ...)", policy)
        if not flat:
            raise ConfigError("policies", "at least one policy", ())
        outer_retry: tuple[int, Retry] | None = None
        for position, policy in enumerate(flat, start=1):
            if not isinstance(policy, Retry):
                continue
            if outer_retry is not None and not policy.retries_when_nested:
                raise ConfigError(
                    "policies",
                    f"at most one Retry (Retry {policy.name!r} at position {position} is "
                    f"inside Retry {outer_retry[1].name!r} at position {outer_retry[0]}, so "
                    "attempts would multiply; pass retry_when_nested=True to the inner one "
                    "if that is really meant)",
                    policy,
                )
            outer_retry = outer_retry or (position, policy)
        self._policies = tuple(flat)
        self._size = len(flat)
        self._bind_stages()
        self._step_bound = self._step
        self._astep_bound = self._astep
        self._name = check_name("name", name, "pipeline")

    def _bind_stages(self) -> None:
        """Bound once (and again when metering changes the stages' classes): the hot
        path does no attribute lookups it can avoid."""
        self._runners = tuple(policy._run for policy in self._policies)
        self._arunners = tuple(policy._arun for policy in self._policies)

    @property
    def policies(self) -> tuple[Policy, ...]:
        return self._policies

    def __repr__(self) -> str:
        return f"Pipeline({', '.join(repr(p) for p in self._policies)})"

    def describe(self) -> str:
        """The composition, outermost first, one policy per line."""
        lines = [f"Pipeline {self._name!r} (outermost first):"]
        lines += [f"  {n}. {p.describe()}" for n, p in enumerate(self._policies, start=1)]
        return "\n".join(lines)

    def _require_sync(self, fn: object) -> None:
        for policy in self._policies:
            policy._require_sync(fn)

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        return self._step(0, fn, args, kwargs)

    def _step(
        self, index: int, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        if index == self._size:
            return fn(*args, **kwargs)
        result: R = self._runners[index](self._step_bound, (index + 1, fn, args, kwargs), NO_KWARGS)
        return result

    async def _arun(
        self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        return await self._astep(0, fn, args, kwargs)

    def _astep(
        self,
        index: int,
        fn: Callable[..., Awaitable[R]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Awaitable[R]:
        # A plain function returning the next stage's awaitable: one coroutine per
        # policy, not two.
        if index == self._size:
            return fn(*args, **kwargs)
        arun = self._arunners[index]
        return arun(self._astep_bound, (index + 1, fn, args, kwargs), NO_KWARGS)


PIPELINE_STEPS.update({Pipeline._step, Pipeline._astep})
