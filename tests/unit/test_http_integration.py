"""What the HTTP integrations share (stormproof.integrations._http): Retry-After,
which errors and answers are retried, the options, and the one core that both
drivers (a thread, a task) carry out alike."""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import re
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import urllib3

from stormproof import (
    Backoff,
    Bulkhead,
    CircuitBreaker,
    ConfigError,
    Pipeline,
    Retry,
    TokenBucketBudget,
)
from stormproof._core.context import RETRYING
from stormproof.classify import THROTTLING, TRANSIENT, classify, is_server_error
from stormproof.integrations import _http
from stormproof.integrations._http import (
    DRAIN_LIMIT,
    IDEMPOTENT_METHODS,
    RETRY_STATUSES,
    Decisions,
    HTTPOptions,
    StatusFailure,
    adrain,
    capped,
    capped_timeouts,
    default_retry,
    drain,
    is_retryable_error,
    parse_retry_after,
)
from stormproof.testing import FakeClock

T0 = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT


def http_date(seconds: float) -> str:
    return email.utils.formatdate(seconds, usegmt=True)


# -- Retry-After -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("0", 0.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("007", 7.0),
        ("-1", None),
        ("+3", None),
        ("1e3", None),
        ("inf", None),
        ("nan", None),
        ("", None),
        ("soon", None),
        ("²", None),  # a digit, but not an ASCII one
        ("9" * 400, None),  # past what a float holds
        (None, None),
    ],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 21 Oct 2015 07:28:03 GMT",  # IMF-fixdate
        "Wednesday, 21-Oct-15 07:28:03 GMT",  # obsolete RFC 850
        "Wed Oct 21 07:28:03 2015",  # obsolete asctime (no zone: GMT)
    ],
)
def test_retry_after_dates_in_every_form_rfc_9110_allows(value: str) -> None:
    assert parse_retry_after(value, now=T0) == 3.0
    assert parse_retry_after(value, date=http_date(T0), now=T0 - 1000) == 3.0


def test_a_date_counts_from_the_answers_date_header_when_it_has_a_valid_one() -> None:
    later = http_date(T0 + 30)
    assert parse_retry_after(later, date=http_date(T0), now=T0 + 25) == 30.0  # skew ignored
    assert parse_retry_after(later, date="junk", now=T0 + 25) == 5.0  # from now
    assert parse_retry_after(later, date=None, now=T0 + 25) == 5.0


def test_a_past_date_is_no_hint() -> None:
    assert parse_retry_after(http_date(T0 - 1), now=T0) is None
    assert parse_retry_after(http_date(T0), now=T0) == 0.0
    assert parse_retry_after(http_date(T0), date=http_date(T0 + 60)) is None


def test_without_now_a_date_counts_from_the_systems_time() -> None:
    hint = parse_retry_after(http_date(4_102_444_800.0))  # 2100-01-01
    assert hint is not None
    assert hint > 365 * 86400


# -- errors ----------------------------------------------------------------------------


def caused(error: BaseException, wrapper: BaseException) -> BaseException:
    wrapper.__cause__ = error
    return wrapper


def refused_through_urllib3() -> BaseException:
    reason = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(),
        ConnectionResetError(),
        TimeoutError(),
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        caused(ConnectionRefusedError(), httpx.ConnectError("refused")),
        httpx.ConnectTimeout("connect"),
        httpx.ReadTimeout("read"),
        httpx.PoolTimeout("pool"),
        caused(ConnectionResetError(), httpx.ReadError("reset")),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        refused_through_urllib3(),
        requests.ReadTimeout("read"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_retryable_errors(error: Exception) -> None:
    assert is_retryable_error(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bug"),
        KeyError("missing"),
        httpx.UnsupportedProtocol("ftp"),
        httpx.LocalProtocolError("bad header"),
        httpx.InvalidURL("no host"),
        requests.exceptions.InvalidURL("no host"),
        caused(ssl.SSLCertVerificationError("certificate verify failed"), httpx.ConnectError("x")),
        requests.exceptions.SSLError(ssl.SSLCertVerificationError("certificate verify failed")),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_not_retried(error: Exception) -> None:
    assert not is_retryable_error(error)


# -- failed answers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(429, THROTTLING), (503, THROTTLING), (500, TRANSIENT), (502, TRANSIENT), (504, TRANSIENT)],
)
def test_a_failed_answer_is_classified_by_stormproof_classify(
    status: int, error_class: str
) -> None:
    failure = StatusFailure("response", status, None)
    assert classify(failure) == error_class
    assert is_server_error(failure) == (status >= 500)
    assert failure.response == "response"


def test_a_failed_answer_reads_well() -> None:
    failure = StatusFailure(None, 503, 2.0)
    assert str(failure) == "HTTP 503 Service Unavailable"
    assert repr(failure) == "StatusFailure(503, retry_after=2.0)"
    assert str(StatusFailure(None, 599, None)) == "HTTP 599 (unknown status)"


def test_judge() -> None:
    decisions = Decisions(HTTPOptions(retry=Retry(on=OSError)))
    assert decisions.judge("ok", 200, "5", None) == "ok"
    assert decisions.judge("not found", 404, None, None) == "not found"
    failure = decisions.judge("busy", 429, "5", None)
    assert isinstance(failure, StatusFailure)
    assert (failure.response, failure.throttling, failure.retry_after) == ("busy", True, 5.0)


# -- options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry": 3}, "retry must be a Retry, or None for the default one, got 3"),
        ({"retry": Retry}, "retry must be a Retry (an instance, not the class itself), got <"),
        (
            {"retry": Retry(on=OSError, retry_on_result=lambda result: True)},
            "retry must be a Retry without retry_on_result (the answers retried are those "
            "whose status is in statuses=), got Retry(",
        ),
        (
            {"around": Retry(on=OSError)},
            "around must be policies without a Retry (retry= is the one Retry of each "
            "request; another around each attempt would multiply the attempts), got Retry(",
        ),
        ({"around": CircuitBreaker}, "around must be a policy (an instance, not the class"),
        ({"around": print}, "around must be a policy (CircuitBreaker, Bulkhead, Timeout, a "),
        (
            {"methods": "GET"},
            "methods must be an iterable of HTTP method names, such as ('GET', 'PUT'), got 'GET'",
        ),
        (
            {"methods": ("GET", "G T")},
            "methods must be an iterable of HTTP method names, such as ('GET', 'PUT'); "
            "'G T' is not one, got ('GET', 'G T')",
        ),
        (
            {"statuses": (503, 600)},
            "statuses must be an iterable of HTTP status codes (integers in [100, 599]); "
            "600 is not one, got (503, 600)",
        ),
        ({"statuses": None}, "statuses must be an iterable of HTTP status codes"),
        ({"statuses": [503.0]}, "503.0 is not one"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        HTTPOptions(**options)
    assert message in str(raised.value)
    assert str(raised.value).startswith(raised.value.parameter + " must be ")
    assert isinstance(raised.value, ValueError)


def test_options_are_normalized_and_copied_with_replace() -> None:
    options = HTTPOptions(methods=["get", "Post"], statuses=[503, 503, 429])
    assert options.methods == frozenset({"GET", "POST"})
    assert options.statuses == frozenset({429, 503})
    assert options.replace(statuses=()).statuses == frozenset()
    idempotent = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}
    assert HTTPOptions().methods == IDEMPOTENT_METHODS == idempotent
    assert HTTPOptions().statuses == RETRY_STATUSES == {429, 500, 502, 503, 504}
    around = Pipeline(CircuitBreaker("api"), Bulkhead(4))
    assert HTTPOptions(around=around).around is around


def test_the_default_retry() -> None:
    retry = default_retry()
    assert retry.attempts == 3
    assert retry.options.on is is_retryable_error
    assert retry.options.throttling_backoff == Backoff(base=1.0)
    assert isinstance(retry.budget, TokenBucketBudget)
    assert retry.budget.options == TokenBucketBudget.aws_2026(name="http").options
    assert default_retry().budget is not retry.budget  # one per transport or adapter


def test_requests_that_may_not_be_sent_twice_get_one_attempt_of_the_same_retry() -> None:
    budget = TokenBucketBudget()
    retry = Retry(on=OSError, attempts=4, budget=budget, deadline=9.0)
    decisions = Decisions(HTTPOptions(retry=retry))
    assert decisions.retry_for("GET", True) is retry
    assert decisions.retry_for("get", True) is retry
    single = decisions.retry_for("POST", True)
    assert decisions.retry_for("GET", False) is single
    assert single.attempts == 1
    assert single.budget is budget
    assert single.deadline == 9.0
    one = Retry(on=OSError, attempts=1)
    assert Decisions(HTTPOptions(retry=one)).retry_for("POST", True) is one


# -- the core, through both drivers -------------------------------------------------------


class Script:
    """Attempts that answer from a list: a response (a str), a failed answer (an int
    status) or an error; and what was closed."""

    def __init__(self, decisions: Decisions, *outcomes: object) -> None:
        self.decisions = decisions
        self.outcomes = list(outcomes)
        self.attempts = 0
        self.closed: list[object] = []

    def send(self) -> Any:
        self.attempts += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        if isinstance(outcome, tuple):
            status, retry_after = outcome
            return self.decisions.judge(f"answer {status}", status, retry_after, None)
        return outcome

    async def asend(self) -> Any:
        await asyncio.sleep(0)
        return self.send()

    def attempt(self) -> Any:
        return self.decisions.through(self.send)

    async def aattempt(self) -> Any:
        return await self.decisions.athrough(self.asend)

    def close(self, response: object) -> None:
        self.closed.append(response)

    async def aclose(self, response: object) -> None:
        self.closed.append(response)


def both_drivers(
    outcomes: list[object], **options: Any
) -> Iterator[tuple[str, Script, FakeClock, Any]]:
    """Run the same script through ``run`` and ``arun``: (driver, script, clock, what
    the call gave: its result, or the exception it raised)."""
    for driver in ("thread", "task"):
        clock = FakeClock()
        steady = Backoff(base=0.5, jitter="none")
        retry = Retry(on=OSError, clock=clock, backoff=steady, throttling_backoff=steady)
        decisions = Decisions(HTTPOptions(retry=retry, **options))
        script = Script(decisions, *outcomes)
        try:
            if driver == "thread":
                given: Any = decisions.run(retry, script.attempt, (), script.close, script.aclose)
            else:
                given = asyncio.run(
                    decisions.arun(retry, script.aattempt, (), script.close, script.aclose)
                )
        except Exception as error:
            given = error
        yield driver, script, clock, given


def test_a_failed_answer_is_closed_then_retried_after_its_hint() -> None:
    for _, script, clock, given in both_drivers([(503, "2"), (500, None), "fine"]):
        assert given == "fine"
        assert script.attempts == 3
        assert script.closed == ["answer 503", "answer 500"]
        assert clock.sleeps == [2.0, 1.0]


def test_the_last_failed_answer_is_returned_unclosed() -> None:
    for _, script, clock, given in both_drivers([(500, None), (502, None), (504, None)]):
        assert given == "answer 504"
        assert script.closed == ["answer 500", "answer 502"]
        assert clock.sleeps == [0.5, 1.0]


def test_errors_are_retried_as_on_says_and_the_last_is_raised_unchanged() -> None:
    last = ConnectionResetError("last")
    for _, script, clock, given in both_drivers([ConnectionRefusedError(), (429, "7"), last]):
        assert given is last
        assert script.closed == ["answer 429"]
        assert clock.sleeps == [0.5, 7.0]
    bug = KeyError("bug")
    for _, script, _, given in both_drivers([bug, "never"]):
        assert given is bug
        assert script.attempts == 1


def test_policies_around_each_attempt_see_failed_answers_raised() -> None:
    seen: list[BaseException] = []

    def on(error: Exception) -> bool:
        seen.append(error)
        return True

    for _, script, _, given in both_drivers(
        [(503, None), "fine"], around=CircuitBreaker("api", on=on)
    ):
        assert given == "fine"
        assert script.closed == ["answer 503"]
    assert [type(error) for error in seen] == [StatusFailure, StatusFailure]
    assert all(error.__traceback__ is None for error in seen)


def test_inside_another_retry_one_attempt_and_the_answer_as_it_is() -> None:
    token = RETRYING.set(True)
    try:
        for _, script, clock, given in both_drivers([(503, "1"), "never"]):
            assert given == "answer 503"
            assert script.attempts == 1
            assert script.closed == []
            assert clock.sleeps == []
    finally:
        RETRYING.reset(token)


def test_the_attempts_run_as_a_retry_so_retries_nested_in_them_defer() -> None:
    inner = Retry(on=OSError, attempts=5, clock=FakeClock())
    calls = 0

    def nested() -> str:
        nonlocal calls
        calls += 1
        raise ConnectionResetError

    decisions = Decisions(HTTPOptions(retry=Retry(on=OSError, attempts=2, clock=FakeClock())))

    def attempt() -> Any:
        return inner.call(nested)

    with pytest.raises(ConnectionResetError):
        decisions.run(decisions.retry, attempt, (), print, adrain)  # type: ignore[arg-type]
    assert calls == 2  # one per attempt of the outer decisions, not 2 x 5
    assert not RETRYING.get()


# -- timeouts and bodies ----------------------------------------------------------------


def test_capped() -> None:
    assert capped(None, None) is None
    assert capped(5.0, None) == 5.0
    assert capped(None, 2.0) == 2.0
    assert capped(5.0, 2.0) == 2.0
    assert capped(1.0, 2.0) == 1.0


def test_capped_timeouts() -> None:
    given = {"connect": 5.0, "read": None, "write": 1.0, "pool": 5.0, "other": "kept"}
    assert capped_timeouts(given, 2.0) == {
        "connect": 2.0,
        "read": 2.0,
        "write": 1.0,
        "pool": 2.0,
        "other": "kept",
    }
    assert given["connect"] == 5.0  # a copy
    assert capped_timeouts(None, 3.0) == dict.fromkeys(("connect", "read", "write", "pool"), 3.0)


class Chunks:
    """An iterator of chunks that says whether it was closed."""

    def __init__(self, size: int, count: int) -> None:
        self.left = count
        self.size = size
        self.given = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if not self.left:
            raise StopIteration
        self.left -= 1
        self.given += 1
        return b"x" * self.size

    def close(self) -> None:
        self.closed = True


def test_drain_reads_a_short_body_to_its_end() -> None:
    chunks = Chunks(1024, 10)
    assert drain(chunks)
    assert chunks.given == 10
    assert chunks.closed


def test_drain_stops_past_the_limit() -> None:
    chunks = Chunks(1024, 1000)
    assert not drain(chunks)
    assert chunks.given == DRAIN_LIMIT // 1024 + 1
    assert chunks.closed


def test_drain_takes_errors_as_the_end() -> None:
    def failing() -> Iterator[bytes]:
        yield b"x"
        raise httpx.ReadError("reset")

    assert not drain(failing())


def test_adrain() -> None:
    closed: list[bool] = []

    async def chunks(count: int) -> AsyncIterator[bytes]:
        try:
            for _ in range(count):
                yield b"x" * 1024
        finally:
            closed.append(True)

    async def failing() -> AsyncIterator[bytes]:
        yield b"x"
        raise httpx.ReadError("reset")

    assert asyncio.run(adrain(chunks(10)))
    assert not asyncio.run(adrain(chunks(1000)))
    assert not asyncio.run(adrain(failing()))
    assert closed == [True, True]


# -- the docs, and the core without the clients -------------------------------------------

DOCS = Path(__file__).parent.parent.parent / "docs" / "httpx.md"


def test_the_docs_defaults_table_lists_every_option_with_its_default() -> None:
    rows: dict[str, str] = {}
    for line in DOCS.read_text().splitlines():
        match = re.match(r"\| `(\w+)` \| (.+?) \|", line)
        if match:
            rows[match.group(1)] = match.group(2)
    for field in dataclasses.fields(HTTPOptions):
        assert field.name in rows, field.name
    assert rows["retry"].startswith("`None`")
    assert rows["around"] == "`None`"
    for name in ("methods", "statuses"):
        listed = set(re.findall(r"\w+", rows[name]))
        assert {str(value) for value in HTTPOptions.defaults()[name]} <= listed, name
    assert "transport" in rows


def test_the_core_imports_without_httpx_or_requests() -> None:
    code = textwrap.dedent(
        """
        import sys
        for name in ("httpx", "requests", "urllib3"):
            sys.modules[name] = None  # as if not installed
        import stormproof, stormproof.classify, stormproof.integrations
        import stormproof.integrations._http
        for name in ("httpx", "requests"):
            try:
                __import__("stormproof.integrations." + name)
            except ImportError:
                pass
            else:
                raise AssertionError(name + " imported without its client")
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_the_module_lists_what_it_shares() -> None:
    assert set(_http.__all__) <= set(dir(_http))
