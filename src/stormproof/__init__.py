"""stormproof: resilience policies that cannot become a retry storm.

The public surface is exactly ``__all__``; submodules ``stormproof.testing``,
``stormproof.events``, ``stormproof.classify``, ``stormproof.clock`` and
``stormproof.budget`` hold the supporting pieces.
"""

from ._backoff import Backoff
from ._budget import RatioBudget, RetryThrottle, TokenBucketBudget
from ._core.errors import (
    BudgetExhausted,
    ConfigError,
    DeadlineExceeded,
    Rejected,
    StormproofError,
    Throttled,
)
from ._retry import Retry
from ._throttle import AdaptiveThrottle

__all__ = [
    "AdaptiveThrottle",
    "Backoff",
    "BudgetExhausted",
    "ConfigError",
    "DeadlineExceeded",
    "RatioBudget",
    "Rejected",
    "Retry",
    "RetryThrottle",
    "StormproofError",
    "Throttled",
    "TokenBucketBudget",
]

__version__ = "0.1.0.dev0"
