"""stormproof's events where operators look: logs (and metrics).

- ``enable_logging()``: every event of every policy as one structured log line,
  through the standard library's ``logging`` or structlog.

Nothing here runs, and no logging or metrics library is imported, until it is asked
for.
"""

from ._logging import enable_logging

__all__ = ["enable_logging"]
