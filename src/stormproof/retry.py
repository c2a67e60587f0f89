"""The pieces of Retry that drivers of your own need: its per-call state machine
(``Retry.begin()`` returns one) and the block form's ``Attempt``."""

from ._retry import Attempt, GiveUpReason, RetryState

__all__ = ["Attempt", "GiveUpReason", "RetryState"]
