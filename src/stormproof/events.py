"""Events that policies emit, and the listeners that receive them.

``subscribe(listener)`` receives every event; a policy's ``listeners=`` receive its
own. ``LoggingListener`` logs one line per event; ``Recorder`` collects them.
"""

from ._breaker import BreakerRejected, BreakerStateChanged
from ._bulkhead import BulkheadRejected
from ._cache import CacheStaleServed, CacheStoreFailed
from ._chaos import ChaosInjected
from ._core.events import Event, Listener, LoggingListener, Recorder, subscribe, unsubscribe
from ._failover import FailoverSwitched
from ._fallback import FallbackUsed
from ._fleet import FleetDegraded, FleetRecovered
from ._fleet_breaker import FleetBreakerStateChanged
from ._hedge import HedgeStarted
from ._retry import RetryGaveUp, RetryScheduled
from ._throttle import ThrottleRejected
from ._timeout import TimeoutExpired, TimeoutOverran

__all__ = [
    "BreakerRejected",
    "BreakerStateChanged",
    "BulkheadRejected",
    "CacheStaleServed",
    "CacheStoreFailed",
    "ChaosInjected",
    "Event",
    "FailoverSwitched",
    "FallbackUsed",
    "FleetBreakerStateChanged",
    "FleetDegraded",
    "FleetRecovered",
    "HedgeStarted",
    "Listener",
    "LoggingListener",
    "Recorder",
    "RetryGaveUp",
    "RetryScheduled",
    "ThrottleRejected",
    "TimeoutExpired",
    "TimeoutOverran",
    "subscribe",
    "unsubscribe",
]
