"""The protocol a retry budget implements, for budgets of your own.

The built-in budgets (``TokenBucketBudget``, ``RatioBudget``, ``RetryThrottle``,
``AdaptiveThrottle``) are exported from ``stormproof`` itself.
"""

from ._budget import RetryBudget

__all__ = ["RetryBudget"]
