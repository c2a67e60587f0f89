"""What the HTTP integrations (``stormproof.integrations.httpx`` and
``stormproof.integrations.requests``) share: the methods retried by default, the
statuses that count as a failed attempt, the error a policy around each attempt sees
for a failed status, and which errors are worth sending a request again for.

Their rules:

- Errors are retried as the Retry's ``on=`` says (by default ``is_retryable_error``:
  connection failures and timeouts, by ``stormproof.classify``); answers whose status
  is in ``statuses=`` (429, 500, 502, 503, 504) are retried, 429 and 503 as throttling.
  After the last attempt the caller gets the last response (or its own exception).
- ``Retry-After`` (seconds or an HTTP-date) is honoured, clamped to the Retry's
  ``max_retry_after``; the caller's deadline (``stormproof.deadline``) bounds the
  attempts, the waits and each attempt's timeouts.
- Only idempotent methods are retried (``methods=``), and only requests whose body can
  be sent again; a retried response's body is dropped and its connection released
  before the wait; the last one is returned unread, so streaming works.

Their options (``RetryTransport``, ``AsyncRetryTransport``, ``RetryAdapter``):

- ``retry``: the ``Retry`` that decides (default: 3 attempts on
  ``is_retryable_error`` and failed statuses, a budget of the transport's or
  adapter's own);
- ``around``: a policy (or ``Pipeline``) around each attempt, such as a
  ``CircuitBreaker`` or a ``Bulkhead``; it sees a failed status as a
  ``StatusFailure`` raised;
- ``methods``: the methods retried (default: the idempotent ones, not POST/PATCH);
- ``statuses``: the statuses that count as a failed attempt (429, 500, 502, 503, 504).

Waits go through the Retry's clock: ``Retry(..., clock=FakeClock())`` in tests.
"""

from ._http import IDEMPOTENT_METHODS, RETRY_STATUSES, StatusFailure, is_retryable_error

__all__ = ["IDEMPOTENT_METHODS", "RETRY_STATUSES", "StatusFailure", "is_retryable_error"]
