"""stormproof: resilience policies that cannot become a retry storm.

The public surface is exactly ``__all__``; submodules ``stormproof.testing``,
``stormproof.events``, ``stormproof.classify``, ``stormproof.clock`` and
``stormproof.budget`` hold the supporting pieces.
"""

from ._backoff import Backoff
from ._breaker import CircuitBreaker, CircuitOpen
from ._budget import TokenBucketBudget
from ._bulkhead import Bulkhead, BulkheadFull
from ._cache import Cache
from ._chaos import Chaos
from ._core.deadline import deadline, remaining
from ._core.errors import (
    BudgetExhausted,
    ConfigError,
    DeadlineExceeded,
    Rejected,
    StormproofError,
    Throttled,
)
from ._failover import Failover
from ._fallback import Fallback
from ._hedge import Hedge
from ._pipeline import Pipeline
from ._ratio_budget import RatioBudget
from ._retry import Retry
from ._retry_throttle import RetryThrottle
from ._throttle import AdaptiveThrottle
from ._timeout import Timeout

__all__ = [
    "AdaptiveThrottle",
    "Backoff",
    "BudgetExhausted",
    "Bulkhead",
    "BulkheadFull",
    "Cache",
    "Chaos",
    "CircuitBreaker",
    "CircuitOpen",
    "ConfigError",
    "DeadlineExceeded",
    "Failover",
    "Fallback",
    "Hedge",
    "Pipeline",
    "RatioBudget",
    "Rejected",
    "Retry",
    "RetryThrottle",
    "StormproofError",
    "Throttled",
    "Timeout",
    "TokenBucketBudget",
    "deadline",
    "remaining",
]

__version__ = "0.1.0.dev0"
