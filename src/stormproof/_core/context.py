"""The context variables that carry a call's situation through the call stack, and the
detached context that work a policy starts on its own behalf runs in."""

from __future__ import annotations

import contextvars
from contextvars import ContextVar

from .deadline import _CURRENT as _CURRENT_DEADLINE

__all__ = ["DETACHED", "RETRYING", "detached"]

RETRYING: ContextVar[bool] = ContextVar("stormproof.retry.active", default=False)
"""Set while a Retry runs the caller's code, so a Retry nested on the same call stack
makes a single attempt and leaves the decision to the outer one."""


DETACHED: ContextVar[bool] = ContextVar("stormproof.detached", default=False)
"""True in work a policy started on its own behalf (see ``detached``): what happens
there answers no caller (metering does not count a refresh's stale value as a lookup)."""


def detached() -> contextvars.Context:
    """A copy of the current context without the caller's deadline and without its
    Retry: for work a policy starts for itself (a cache's background refresh), which
    belongs to the policy, not to the caller that happened to trigger it."""
    context = contextvars.copy_context()
    context.run(_forget_the_caller)
    return context


def _forget_the_caller() -> None:
    _CURRENT_DEADLINE.set(None)
    RETRYING.set(False)
    DETACHED.set(True)
