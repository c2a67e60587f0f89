"""RetryThrottle: gRPC retry throttling (proposal A6)."""

from __future__ import annotations

from dataclasses import dataclass

from ._budget import _Budget
from ._classify import ErrorClass
from ._core.errors import ConfigError
from ._core.options import Configured, Options
from ._core.validate import check_number

__all__ = ["RetryThrottle", "RetryThrottleOptions"]


@dataclass(frozen=True)
class RetryThrottleOptions(Options):
    """RetryThrottle's options, validated when built; ``replace()`` copies. Kept to
    thousandths, as gRPC does: a value that rounds to none is refused."""

    max_tokens: float = 10
    token_ratio: float = 0.1
    name: str = "retry-throttle"

    def _check(self) -> None:
        for parameter in ("max_tokens", "token_ratio"):
            value = getattr(self, parameter)
            number = check_number(parameter, value, low=0.0, low_open=True, high=1e12)
            if round(number * 1000) == 0:
                raise ConfigError(parameter, "at least 0.001 (three decimal places)", value)
            self._set(parameter, number)


_RT = RetryThrottleOptions()


class RetryThrottle(_Budget, Configured[RetryThrottleOptions]):
    """gRPC retry throttling (proposal A6).

    Tokens start at ``max_tokens``. Each failed attempt with a retryable error takes 1,
    each successful request adds ``token_ratio``; no retry is made while tokens are at
    or below ``max_tokens / 2``. Arithmetic is exact (thousandths of a token, as gRPC
    does), so the threshold is reached after exactly the documented number of events.
    """

    options_type = RetryThrottleOptions

    __slots__ = ("_max", "_ratio", "_tokens")

    _SCALE = 1000

    def __init__(
        self,
        *,
        max_tokens: float = _RT.max_tokens,
        token_ratio: float = _RT.token_ratio,
        name: str = _RT.name,
    ) -> None:
        self._configure(
            RetryThrottleOptions(max_tokens=max_tokens, token_ratio=token_ratio, name=name)
        )

    def _configure(self, options: RetryThrottleOptions) -> None:
        """Thousandths, as gRPC keeps them; a full count."""
        self._options = options
        self._start(options.name)
        self._max = round(options.max_tokens * self._SCALE)
        self._ratio = round(options.token_ratio * self._SCALE)
        self._tokens = self._max

    @property
    def available(self) -> float:
        return self._tokens / self._SCALE

    @property
    def threshold(self) -> float:
        return self._max / (2 * self._SCALE)

    @property
    def throttling(self) -> bool:
        """True while retries are refused."""
        return self._tokens * 2 <= self._max

    def try_retry(self, error_class: ErrorClass) -> object | None:
        return None if self._tokens * 2 <= self._max else 0

    def on_success(self, receipt: object | None) -> None:
        if self._tokens >= self._max:
            return
        with self._lock:
            self._tokens = min(self._max, self._tokens + self._ratio)

    def on_failure(self, error_class: ErrorClass | None) -> None:
        if error_class is None:
            return  # the dependency answered: not a failure of the kind A6 counts
        with self._lock:
            self._tokens = max(0, self._tokens - self._SCALE)

    def __repr__(self) -> str:
        return (
            f"RetryThrottle(max_tokens={self._max / self._SCALE:g}, token_ratio="
            f"{self._ratio / self._SCALE:g}, name={self._name!r}; available={self.available:g})"
        )
