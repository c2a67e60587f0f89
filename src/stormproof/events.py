"""Events that policies emit, and the listeners that receive them.

``subscribe(listener)`` receives every event; a policy's ``listeners=`` receive its
own. ``LoggingListener`` logs one line per event; ``Recorder`` collects them.
"""

from ._core.events import Event, Listener, LoggingListener, Recorder, subscribe, unsubscribe
from ._retry import RetryGaveUp, RetryScheduled
from ._throttle import ThrottleRejected

__all__ = [
    "Event",
    "Listener",
    "LoggingListener",
    "Recorder",
    "RetryGaveUp",
    "RetryScheduled",
    "ThrottleRejected",
    "subscribe",
    "unsubscribe",
]
