"""The pieces of Retry that drivers of your own need: its per-call state machine
(``Retry.begin()`` returns one), ``retrying()`` (whether a Retry runs the current code,
so one nested here defers to it), the block form's ``Attempt``, and
``SDKRetriesWarning`` (a client beneath a Retry retried by itself)."""

from ._retry import Attempt, GiveUpReason, RetryState, SDKRetriesWarning, retrying

__all__ = ["Attempt", "GiveUpReason", "RetryState", "SDKRetriesWarning", "retrying"]
