"""What the HTTP integrations share (httpx's sync and async transports, the requests
adapter): their options, which requests may be sent again, which answers failed,
the ``Retry-After`` hint, and the one core that carries a request's attempts out.

The client modules only adapt their client to it: how to send one attempt, read a
status and headers, tell whether a body can be sent again, and drop a body.
"""

from __future__ import annotations

import contextlib
import email.utils
import math
import re
import ssl
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timezone
from http import HTTPStatus
from typing import Any

from stormproof import Backoff, ConfigError, Pipeline, Retry, TokenBucketBudget
from stormproof._core.context import RETRYING
from stormproof._core.drive import CALL, Core, Failure, Io, adrive, drive
from stormproof._core.validate import check_instance
from stormproof.classify import (
    THROTTLING,
    causes,
    classify_status,
    is_connection_error,
    is_timeout,
)
from stormproof.options import Options
from stormproof.policy import Policy
from stormproof.retry import RetryState

__all__ = [
    "DRAIN_LIMIT",
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "Configured",
    "Decisions",
    "HTTPOptions",
    "StatusFailure",
    "adrain",
    "capped",
    "capped_timeouts",
    "default_retry",
    "drain",
    "is_retryable_error",
    "parse_retry_after",
]

IDEMPOTENT_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
"""The methods retried by default: those RFC 9110 calls idempotent (sending one twice
has the effect of sending it once). POST and PATCH are not among them."""

RETRY_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})
"""The statuses that count as a failed attempt by default: 429 and 503 (throttling,
``stormproof.classify.classify_status``), 500, 502 and 504 (transient server errors)."""

DRAIN_LIMIT = 65_536
"""The most bytes of a retried answer's body read (and dropped) so that its connection
can serve the next attempt; a longer body is not read, and its connection is closed."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_TIMEOUT_KEYS = ("connect", "read", "write", "pool")

# httpx (httpcore) names a server that hung up before answering a protocol error.
_DISCONNECTS = frozenset({"RemoteProtocolError"})


def is_retryable_error(error: Exception) -> bool:
    """May a request that can be sent again be sent again after this error?

    Yes for a connection that could not be made or was lost (DNS failures, refused or
    reset connections, a server that hung up without answering) and for timeouts,
    found anywhere in the chain of causes by ``stormproof.classify``; no for a TLS
    certificate that failed verification (it will fail again) and for everything else
    (an invalid URL, an error in the caller's own code). The default ``on=`` of the
    integrations' Retry.
    """
    for cause in causes(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return False
    if is_connection_error(error) or is_timeout(error):
        return True
    return any(type(cause).__name__ in _DISCONNECTS for cause in causes(error))


def default_retry() -> Retry:
    """The Retry of a transport or adapter built without one: 3 attempts on
    ``is_retryable_error`` and failed statuses, a 1 s base backoff after throttling,
    and a retry budget of its own (AWS's 2026 token bucket)."""
    return Retry(
        on=is_retryable_error,
        throttling_backoff=Backoff(base=1.0),
        budget=TokenBucketBudget.aws_2026(name="http"),
        name="http",
    )


# -- Retry-After -------------------------------------------------------------------


def parse_retry_after(
    value: str | None, *, date: str | None = None, now: float | None = None
) -> float | None:
    """Seconds to wait, from a ``Retry-After`` header (RFC 9110, section 10.2.3).

    ``value`` is delay-seconds (``"120"``; a decimal fraction is accepted) or an
    HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``, and the two obsolete forms). A
    date is counted from the answer's own ``Date`` header when ``date`` is a valid one
    (so the client's and the server's clocks need not agree), else from ``now``
    (seconds since the epoch; default: the system's time). None: no header, junk, or
    a date already past.
    """
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        try:
            seconds = float(text)
        except (ValueError, OverflowError):
            return None
        return seconds if math.isfinite(seconds) else None
    when = _http_date(text)
    if when is None:
        return None
    reference = None if date is None else _http_date(date.strip())
    if reference is None:
        reference = time.time() if now is None else now
    delay = when - reference
    return delay if delay >= 0.0 else None


def _http_date(text: str) -> float | None:
    """An HTTP-date as seconds since the epoch; None if it is not one."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # asctime's form has no zone: HTTP-dates are in GMT
        when = when.replace(tzinfo=timezone.utc)
    try:
        return when.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


# -- answers that failed -----------------------------------------------------------


class StatusFailure(Exception):
    """An answer whose status counts as a failed attempt (``statuses=``; 429, 500,
    502, 503 and 504 by default), as the Retry and the policies around each attempt
    see it.

    The Retry's ``classify`` is given it in place of the response: ``throttling``
    (429 and 503: ``stormproof.classify.classify_status``), ``status_code`` and
    ``retry_after`` (seconds, from the ``Retry-After`` header, or None) say what it
    is, and ``response`` is the client's response. Policies ``around=`` each attempt
    (a ``CircuitBreaker``) see it raised, so that they count a failed status as a
    failure. The caller never does: after the last attempt it gets the response.
    """

    def __init__(self, response: Any, status_code: int, retry_after: float | None) -> None:
        super().__init__(status_code)
        self.response = response
        self.status_code = status_code
        self.throttling = classify_status(status_code) == THROTTLING
        self.retry_after = retry_after

    def __str__(self) -> str:
        try:
            phrase = HTTPStatus(self.status_code).phrase
        except ValueError:
            phrase = "(unknown status)"
        return f"HTTP {self.status_code} {phrase}"

    def __repr__(self) -> str:
        return f"StatusFailure({self.status_code}, retry_after={self.retry_after!r})"


def _answer(outcome: Any) -> Any:
    """What the caller gets for an attempt's outcome: a failed answer's response."""
    return outcome.response if type(outcome) is StatusFailure else outcome


# -- options -----------------------------------------------------------------------


@dataclass(frozen=True)
class HTTPOptions(Options):
    """The options the HTTP integrations share, validated when built."""

    retry: Retry | None = None
    around: Policy | None = None
    methods: Iterable[str] = IDEMPOTENT_METHODS
    statuses: Iterable[int] = RETRY_STATUSES

    def _check(self) -> None:
        retry = self.retry
        if retry is not None:
            check_instance("retry", retry, "a Retry")
            if not isinstance(retry, Retry):
                raise ConfigError("retry", "a Retry, or None for the default one", retry)
            if retry.options.retry_on_result is not None:
                raise ConfigError(
                    "retry",
                    "a Retry without retry_on_result (the answers retried are those whose "
                    "status is in statuses=)",
                    retry,
                )
        around = self.around
        if around is not None:
            check_instance("around", around, "a policy")
            if not isinstance(around, Policy):
                raise ConfigError(
                    "around",
                    "a policy (CircuitBreaker, Bulkhead, Timeout, a Pipeline of them) or None",
                    around,
                )
            inside = around.policies if isinstance(around, Pipeline) else (around,)
            if any(isinstance(policy, Retry) for policy in inside):
                raise ConfigError(
                    "around",
                    "policies without a Retry (retry= is the one Retry of each request; "
                    "another around each attempt would multiply the attempts)",
                    around,
                )
        self._set("methods", _methods(self.methods))
        self._set("statuses", _statuses(self.statuses))


def _members(name: str, value: object, requirement: str, valid: Callable[[Any], bool]) -> list[Any]:
    """The members of option ``name``, an iterable (not a string), each ``valid``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(name, requirement, value)
    members = list(value)
    for member in members:
        if not valid(member):
            raise ConfigError(name, f"{requirement}; {member!r} is not one", value)
    return members


def _methods(value: object) -> frozenset[str]:
    requirement = "an iterable of HTTP method names, such as ('GET', 'PUT')"
    methods = _members(
        "methods",
        value,
        requirement,
        lambda m: isinstance(m, str) and _TOKEN.fullmatch(m) is not None,
    )
    return frozenset(method.upper() for method in methods)


def _statuses(value: object) -> frozenset[int]:
    requirement = "an iterable of HTTP status codes (integers in [100, 599])"
    return frozenset(
        _members(
            "statuses",
            value,
            requirement,
            lambda s: not isinstance(s, bool) and isinstance(s, int) and 100 <= s <= 599,
        )
    )


# -- the decisions -----------------------------------------------------------------


class Decisions:
    """The decisions of one transport or adapter: which Retry a request gets, whether
    an answer failed, and the core that carries a request's attempts out, by ``run``
    in a thread or ``arun`` in a task."""

    __slots__ = ("around", "methods", "options", "retry", "single", "statuses")

    def __init__(self, options: HTTPOptions) -> None:
        self.options = options
        retry = default_retry() if options.retry is None else options.retry
        self.retry = retry
        # Requests that may not be sent twice still go through the Retry's deadline
        # and budget, with one attempt (the budget is shared: it is the same object).
        self.single = retry if retry.attempts == 1 else retry.replace(attempts=1)
        self.around = options.around
        self.methods: frozenset[str] = options.methods  # type: ignore[assignment]
        self.statuses: frozenset[int] = options.statuses  # type: ignore[assignment]

    def retry_for(self, method: str, replayable: bool) -> Retry:
        """The Retry of a request: the one with several attempts only for a method that
        may be retried and a body that can be sent again."""
        return self.retry if replayable and method.upper() in self.methods else self.single

    def judge(self, response: Any, status: int, retry_after: str | None, date: str | None) -> Any:
        """``response``, or a ``StatusFailure`` in its place if ``status`` failed."""
        if status not in self.statuses:
            return response
        return StatusFailure(response, status, parse_retry_after(retry_after, date=date))

    def run(
        self,
        retry: Retry,
        attempt: Callable[..., Any],
        args: tuple[Any, ...],
        close: Callable[[Any], None],
        aclose: Callable[[Any], Awaitable[None]],
    ) -> Any:
        """Make the attempts of one request in this thread; ``attempt(*args)`` sends it
        once (returning the response, or a ``StatusFailure``), ``close`` drops the
        body of a response that is retried."""
        if RETRYING.get() and not retry.retries_when_nested:
            return _answer(attempt(*args))  # inside another Retry: it decides
        state = retry.begin()
        token = RETRYING.set(True)
        try:
            core = _attempts(state, retry.clock.now, close, aclose)
            return drive(core, attempt, args, {}, retry.clock)
        finally:
            RETRYING.reset(token)

    async def arun(
        self,
        retry: Retry,
        attempt: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        close: Callable[[Any], None],
        aclose: Callable[[Any], Awaitable[None]],
    ) -> Any:
        """``run`` in a task."""
        if RETRYING.get() and not retry.retries_when_nested:
            return _answer(await attempt(*args))
        state = retry.begin()
        token = RETRYING.set(True)
        try:
            core = _attempts(state, retry.clock.now, close, aclose)
            return await adrive(core, attempt, args, {}, retry.clock)
        finally:
            RETRYING.reset(token)

    def through(self, send: Callable[..., Any], *args: Any) -> Any:
        """One attempt, ``send(*args)``, inside the ``around`` policies, which see a
        failed answer raised (a breaker counts it)."""
        if self.around is None:
            return send(*args)
        try:
            return self.around.call(_raising, send, args)
        except StatusFailure as failure:
            failure.__traceback__ = None
            return failure

    async def athrough(self, send: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``through`` in a task."""
        if self.around is None:
            return await send(*args)
        try:
            return await self.around.acall(_araising, send, args)
        except StatusFailure as failure:
            failure.__traceback__ = None
            return failure


def _raising(send: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    outcome = send(*args)
    if type(outcome) is StatusFailure:
        raise outcome
    return outcome


async def _araising(send: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> Any:
    outcome = await send(*args)
    if type(outcome) is StatusFailure:
        raise outcome
    return outcome


def _attempts(
    state: RetryState,
    now: Callable[[], float],
    close: Callable[[Any], None],
    aclose: Callable[[Any], Awaitable[None]],
) -> Core:
    """The attempts of one request, as ``state`` decides: an error or a failed answer
    is retried after the wait it answers, a failed answer's body dropped first (so
    its connection is free again); the last outcome ends the call, unread."""
    while True:
        outcome = yield CALL
        if type(outcome) is Failure:
            delay = state.on_exception(outcome.error, now())
            if delay is None:
                return outcome
        elif type(outcome) is StatusFailure:
            delay = state.on_retryable_result(outcome, now())
            if delay is None:
                return outcome.response
            yield Io(close, aclose, (outcome.response,))
        else:
            state.on_success()
            return outcome
        outcome = None  # nothing of a failed attempt is held through the wait
        yield delay


# -- what the clients' adapters share -----------------------------------------------


def capped(seconds: float | None, left: float | None) -> float | None:
    """A client's timeout (None: none) within the time ``left`` before the caller's
    deadline (None: no deadline)."""
    if left is None:
        return seconds
    return left if seconds is None else min(seconds, left)


def capped_timeouts(timeouts: object, left: float) -> dict[str, Any]:
    """httpcore's timeouts (a dict: connect, read, write, pool) within ``left``."""
    given: dict[str, Any] = dict(timeouts) if isinstance(timeouts, dict) else {}
    for key in _TIMEOUT_KEYS:
        value = given.get(key)
        given[key] = capped(value if isinstance(value, (int, float)) else None, left)
    return given


class _Budget:
    """How much of a body may still be read and dropped: ``take(chunk)`` is False once
    more than ``DRAIN_LIMIT`` bytes have come."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = DRAIN_LIMIT

    def take(self, chunk: bytes) -> bool:
        self.left -= len(chunk)
        return self.left >= 0


def drain(chunks: Iterable[bytes]) -> bool:
    """Read and drop a body, at most ``DRAIN_LIMIT`` bytes; whether it was read to the
    end. Errors are not news: the response is closed next, whatever happened."""
    iterator = iter(chunks)
    budget = _Budget()
    try:
        return all(budget.take(chunk) for chunk in iterator)
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            getattr(iterator, "close", _nothing)()


async def adrain(chunks: AsyncIterable[bytes]) -> bool:
    """``drain`` in a task."""
    iterator = chunks.__aiter__()
    budget = _Budget()
    try:
        async for chunk in iterator:
            if not budget.take(chunk):
                return False
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await getattr(iterator, "aclose", _anothing)()
    return True


def _nothing() -> None:
    return None


async def _anothing() -> None:
    return None


class Configured:
    """An integration's options, read back: ``retry``, ``around``, ``methods`` and
    ``statuses`` (kept by its ``Decisions``)."""

    __slots__ = ()

    _decisions: Decisions

    @property
    def retry(self) -> Retry:
        """The Retry of requests that may be sent again."""
        return self._decisions.retry

    @property
    def around(self) -> Policy | None:
        return self._decisions.around

    @property
    def methods(self) -> frozenset[str]:
        return self._decisions.methods

    @property
    def statuses(self) -> frozenset[int]:
        return self._decisions.statuses
