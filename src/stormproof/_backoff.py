"""Exponential backoff with jitter: a pure function of the retry number.

The cap applies *before* jitter, so clients keep spreading out once they reach it
(a cap applied after jitter collapses every client onto the same delay).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from ._core.clock import RandomSource
from ._core.errors import ConfigError
from ._core.validate import check_choice, check_instance, check_number, check_random

__all__ = ["Backoff", "Jitter", "check_backoff"]

Jitter = Literal["none", "full", "equal", "decorrelated"]
_JITTERS: tuple[str, ...] = ("none", "full", "equal", "decorrelated")
_PRECOMPUTED = 33  # ceilings of retries 1..32 are computed once, at construction


class Backoff:
    """How long to wait before retry number ``n`` (1 is the first retry).

    ``ceiling(n) = min(cap, base * multiplier ** (n - 1))``; then, by ``jitter``:

    - ``"none"``: the ceiling itself (every client waits the same: avoid);
    - ``"full"`` (default): uniform(0, ceiling);
    - ``"equal"``: ceiling / 2 + uniform(0, ceiling / 2);
    - ``"decorrelated"``: uniform(base, min(cap, 3 * previous)), previous defaulting to
      base. This is the AWS Architecture Blog's decorrelated jitter with the cap moved
      before the draw: the same delays until ``3 * previous`` passes the cap, after
      which the blog's ``min(cap, uniform(...))`` would pile most clients onto the cap.
    """

    __slots__ = (
        "_base",
        "_cap",
        "_ceilings",
        "_jitter",
        "_multiplier",
        "_random",
        "_saturates_at",
    )

    def __init__(
        self,
        *,
        base: float = 0.05,
        cap: float = 20.0,
        multiplier: float = 2.0,
        jitter: Jitter = "full",
        random: RandomSource | None = None,
    ) -> None:
        self._base = check_number("base", base, low=0.0)
        self._cap = check_number("cap", cap, low=0.0)
        if self._cap < self._base:
            raise ConfigError("cap", f">= base ({base!r})", cap)
        self._multiplier = check_number("multiplier", multiplier, low=1.0)
        self._jitter: Jitter = check_choice("jitter", jitter, _JITTERS)  # type: ignore[assignment]
        self._random = check_random(random)
        # The first retry number whose ceiling is the cap; computing powers past it
        # would only overflow.
        if self._base == 0.0:
            self._saturates_at = 2**62  # never: a zero base means no wait at any retry
        elif self._base == self._cap:
            self._saturates_at = 1
        elif self._multiplier == 1.0:
            self._saturates_at = 2**62
        else:
            steps = (math.log(self._cap) - math.log(self._base)) / math.log(self._multiplier)
            self._saturates_at = 1 + math.ceil(steps)
        # Ceilings of the first retries, precomputed: index n holds ceiling(n).
        self._ceilings = (0.0, *(self._compute(n) for n in range(1, _PRECOMPUTED)))

    @property
    def base(self) -> float:
        return self._base

    @property
    def cap(self) -> float:
        return self._cap

    @property
    def multiplier(self) -> float:
        return self._multiplier

    @property
    def jitter(self) -> Jitter:
        return self._jitter

    def ceiling(self, retry_number: int) -> float:
        """The un-jittered delay for ``retry_number``: min(cap, base * multiplier^(n-1))."""
        if retry_number < 1:
            raise ConfigError("retry_number", "an integer >= 1", retry_number)
        if retry_number < _PRECOMPUTED:
            return self._ceilings[retry_number]
        return self._compute(retry_number)

    def _compute(self, retry_number: int) -> float:
        if retry_number >= self._saturates_at:
            return self._cap
        if self._base == 0.0:
            return 0.0
        try:
            value = self._base * self._multiplier ** (retry_number - 1)
        except OverflowError:  # a tiny base takes many doublings to reach the cap
            return self._cap
        return value if value < self._cap else self._cap

    def delay(self, retry_number: int, previous: float | None = None) -> float:
        """The delay before retry ``retry_number``. ``previous`` feeds decorrelated jitter."""
        jitter = self._jitter
        if jitter == "none":
            if 0 < retry_number < _PRECOMPUTED:
                return self._ceilings[retry_number]
            return self.ceiling(retry_number)
        if jitter == "full":
            if 0 < retry_number < _PRECOMPUTED:
                return self._random() * self._ceilings[retry_number]
            return self._random() * self.ceiling(retry_number)
        if jitter == "decorrelated":
            if retry_number < 1:
                raise ConfigError("retry_number", "an integer >= 1", retry_number)
            base = self._base
            high = 3.0 * (base if previous is None else previous)
            high = min(high, self._cap)
            return base + self._random() * (high - base)
        half = self.ceiling(retry_number) / 2.0  # equal jitter
        return half + self._random() * half

    def replace(self, **changes: Any) -> Backoff:
        """A copy with ``changes`` (validated like the original)."""
        options: dict[str, Any] = {
            "base": self._base,
            "cap": self._cap,
            "multiplier": self._multiplier,
            "jitter": self._jitter,
            "random": self._random,
        }
        unknown = set(changes) - set(options)
        if unknown:
            raise TypeError(f"Backoff has no option {sorted(unknown)[0]!r}")
        options.update(changes)
        return Backoff(**options)

    def __repr__(self) -> str:
        return (
            f"Backoff(base={self._base!r}, cap={self._cap!r}, multiplier={self._multiplier!r}, "
            f"jitter={self._jitter!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Backoff):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return (self._base, self._cap, self._multiplier, self._jitter, self._random)


def check_backoff(parameter: str, value: object, requirement: str) -> Backoff:
    """A ``Backoff`` (or an object with ``delay(n, previous)``), never the class."""
    check_instance(parameter, value, requirement)
    if not callable(getattr(value, "delay", None)):
        raise ConfigError(parameter, requirement, value)
    return value  # type: ignore[return-value]
