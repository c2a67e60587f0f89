"""Every policy's options as a value: one frozen, validated type per policy.

Build a policy from them with ``Policy.from_options(options)``, read a policy's with
``policy.options``, and copy with changes with ``options.replace(...)`` or
``policy.replace(...)``. Their field defaults are the policies' defaults, the same
for the library and the Outage Lab.
"""

from ._breaker import BreakerOptions
from ._budget import TokenBucketOptions
from ._bulkhead import BulkheadOptions
from ._cache import CacheOptions
from ._chaos import ChaosOptions
from ._core.options import Options
from ._failover import FailoverOptions
from ._fallback import FallbackOptions
from ._fleet_breaker import FleetBreakerOptions
from ._fleet_budget import FleetBudgetOptions
from ._hedge import HedgeOptions
from ._ratio_budget import RatioBudgetOptions
from ._retry import RetryOptions
from ._retry_throttle import RetryThrottleOptions
from ._throttle import AdaptiveThrottleOptions
from ._timeout import TimeoutOptions

__all__ = [
    "AdaptiveThrottleOptions",
    "BreakerOptions",
    "BulkheadOptions",
    "CacheOptions",
    "ChaosOptions",
    "FailoverOptions",
    "FallbackOptions",
    "FleetBreakerOptions",
    "FleetBudgetOptions",
    "HedgeOptions",
    "Options",
    "RatioBudgetOptions",
    "RetryOptions",
    "RetryThrottleOptions",
    "TimeoutOptions",
    "TokenBucketOptions",
]
