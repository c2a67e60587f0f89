"""What the HTTP integrations (``stormproof.integrations.httpx`` and
``stormproof.integrations.requests``) share: the methods retried by default, the
statuses that count as a failed attempt, the error a policy around each attempt sees
for a failed status, and which errors are worth sending a request again for."""

from ._http import IDEMPOTENT_METHODS, RETRY_STATUSES, StatusFailure, is_retryable_error

__all__ = ["IDEMPOTENT_METHODS", "RETRY_STATUSES", "StatusFailure", "is_retryable_error"]
