"""The exception tree.

Only *rejections* (work that was never executed) get stormproof types. A call that
ran and failed re-raises the caller's own exception, unchanged.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = [
    "BudgetExhausted",
    "ConfigError",
    "DeadlineExceeded",
    "Rejected",
    "StormproofError",
    "Throttled",
    "fresh_copy",
]

E = TypeVar("E", bound=BaseException)


def fresh_copy(error: E) -> E:
    """A new exception like ``error``, to raise in its place where one object would be
    raised more than once (waiters sharing a failure, a cached "not found"): each raise
    adds frames to an exception's traceback, so a shared one would grow and keep other
    callers' frames alive. Same type, arguments and attributes, same cause and context;
    no traceback. ``__init__`` is not called again (its signature may differ from
    ``args``). ``error`` itself if it cannot be copied."""
    kind = type(error)
    try:
        copy = kind.__new__(kind, *error.args)
        copy.args = error.args
        state = dict(error.__dict__)
        if "__notes__" in state:
            state["__notes__"] = list(state["__notes__"])
        copy.__dict__.update(state)
    except Exception:
        return error
    copy.__cause__ = error.__cause__
    copy.__context__ = error.__context__
    copy.__suppress_context__ = error.__suppress_context__
    return copy


class StormproofError(Exception):
    """Base class of every exception stormproof raises itself."""


class ConfigError(StormproofError, ValueError):
    """An option was given a bad value. Names the parameter and quotes the value."""

    def __init__(self, parameter: str, requirement: str, value: object) -> None:
        self.parameter = parameter
        self.requirement = requirement
        self.value = value
        super().__init__(f"{parameter} must be {requirement}, got {value!r}")


class Rejected(StormproofError):
    """The call was never executed: a policy refused it.

    ``policy`` is the name of the policy that refused; ``retry_after`` is a hint in
    seconds for when asking again may succeed, or ``None`` when there is no estimate.
    A fresh instance is raised for every rejection, so tracebacks never accumulate.
    """

    def __init__(self, policy: str, retry_after: float | None = None) -> None:
        # Rejections are raised on hot paths (an open breaker refuses every call), so
        # the message is only built when someone asks for it.
        super().__init__(policy, retry_after)
        self.policy = policy
        self.retry_after = retry_after

    _reason = "rejected"

    def __str__(self) -> str:
        hint = "" if self.retry_after is None else f"; retry after {self.retry_after:.3g}s"
        return f"{self.policy}: {self._reason}{hint}"

    def __reduce__(self) -> tuple[type[Rejected], tuple[str, float | None]]:
        return (type(self), (self.policy, self.retry_after))


class BudgetExhausted(Rejected):
    """A retry budget has no room for another retry."""

    _reason = "retry budget exhausted"


class Throttled(Rejected):
    """Client-side adaptive throttling refused the request locally."""

    _reason = "throttled locally (the dependency is rejecting most requests)"


class DeadlineExceeded(StormproofError, TimeoutError):
    """The time allowed for the operation has run out."""
