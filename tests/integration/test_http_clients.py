"""What every HTTP integration does, run through each of them against a real HTTP/1.1
server on loopback that counts what reaches it: httpx's sync transport, its async
transport, and the requests adapter. A rule broken by one of them fails here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests

from stormproof import CircuitBreaker, CircuitOpen, DeadlineExceeded, Retry, deadline
from stormproof.chaos import dns_outage, resolve
from stormproof.classify import TRANSIENT, is_connection_error, is_dns_failure
from stormproof.events import Recorder, RetryGaveUp, RetryScheduled
from stormproof.integrations import httpx as for_httpx
from stormproof.integrations import requests as for_requests
from stormproof.integrations.http import IDEMPOTENT_METHODS, is_retryable_error
from stormproof.testing import FakeClock

from ._http_server import T0, Answer, Ledger, Server, http_date


@dataclass(frozen=True)
class Reply:
    status_code: int
    text: str


class Client:
    """One client through an integration: ``request(method, url, body)`` -> ``Reply``."""

    def __init__(self, send: Callable[[str, str, bytes | None], Reply]) -> None:
        self.request = send

    def get(self, url: str) -> Reply:
        return self.request("GET", url, None)


@dataclass(frozen=True)
class Driver:
    name: str
    open: Callable[..., contextlib.AbstractContextManager[Client]]
    connect_error: type[BaseException]

    def __repr__(self) -> str:
        return self.name


@contextlib.contextmanager
def _httpx(**options: Any) -> Iterator[Client]:
    with httpx.Client(
        transport=for_httpx.RetryTransport(**options), trust_env=False, timeout=60
    ) as http:

        def send(method: str, url: str, body: bytes | None) -> Reply:
            response = http.request(method, url, content=body)
            return Reply(response.status_code, response.text)

        yield Client(send)


@contextlib.contextmanager
def _httpx_async(**options: Any) -> Iterator[Client]:
    loop = asyncio.new_event_loop()
    http = httpx.AsyncClient(
        transport=for_httpx.AsyncRetryTransport(**options), trust_env=False, timeout=60
    )

    async def request(method: str, url: str, body: bytes | None) -> Reply:
        response = await http.request(method, url, content=body)
        return Reply(response.status_code, response.text)

    def send(method: str, url: str, body: bytes | None) -> Reply:
        return loop.run_until_complete(request(method, url, body))

    try:
        yield Client(send)
    finally:
        loop.run_until_complete(http.aclose())
        loop.close()


@contextlib.contextmanager
def _requests(**options: Any) -> Iterator[Client]:
    with requests.Session() as http:
        http.trust_env = False  # no proxy from the environment between us and the server
        http.mount("http://", for_requests.RetryAdapter(**options))

        def send(method: str, url: str, body: bytes | None) -> Reply:
            response = http.request(method, url, data=body)
            return Reply(response.status_code, response.text)

        yield Client(send)


DRIVERS = [
    Driver("httpx", _httpx, httpx.ConnectError),
    Driver("httpx-async", _httpx_async, httpx.ConnectError),
    Driver("requests", _requests, requests.ConnectionError),
]


@pytest.fixture(params=DRIVERS, ids=[driver.name for driver in DRIVERS])
def driver(request: pytest.FixtureRequest) -> Driver:
    chosen: Driver = request.param
    return chosen


def retry(clock: FakeClock, **options: Any) -> Retry:
    return Retry(on=is_retryable_error, clock=clock, **options)


def methods(server: Server) -> list[str]:
    return [seen.method for seen in server.requests]


# -- Retry-After ---------------------------------------------------------------------


def test_429_with_retry_after_2_waits_exactly_2_seconds(
    driver: Driver, server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(429, {"Retry-After": "2"}), Answer(200, body=b"done"))
    with driver.open(retry=retry(clock)) as http:
        assert http.get(server.url()) == Reply(200, "done")
    assert clock.sleeps == [2.0]
    assert server.hits == 2


def test_retry_after_as_an_http_date_counts_from_the_answers_date(
    driver: Driver, server: Server, clock: FakeClock
) -> None:
    headers = {"Date": http_date(T0), "Retry-After": http_date(T0 + 3)}
    server.answer(Answer(503, headers), Answer(200))
    with driver.open(retry=retry(clock)) as http:
        assert http.get(server.url()).status_code == 200
    assert clock.sleeps == [3.0]


# -- which answers and requests are retried ----------------------------------------------


def test_503_then_200(driver: Driver, server: Server, clock: FakeClock) -> None:
    server.answer(Answer(503), Answer(200, body=b"fine"))
    with driver.open(retry=retry(clock)) as http:
        assert http.get(server.url()).text == "fine"
    assert server.hits == 2


def test_500_three_times_gives_the_caller_the_last_500(
    driver: Driver, server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(500, body=b"1"), Answer(500, body=b"2"), Answer(500, body=b"3"))
    recorder = Recorder()
    with driver.open(retry=retry(clock, attempts=3, listeners=[recorder])) as http:
        assert http.get(server.url()) == Reply(500, "3")
    assert server.hits == 3
    assert [event.error_class for event in recorder.of(RetryScheduled)] == [TRANSIENT] * 2
    assert [event.reason for event in recorder.of(RetryGaveUp)] == ["attempts"]


def test_429_and_503_are_throttling_500_502_504_transient(
    driver: Driver, server: Server, clock: FakeClock
) -> None:
    server.answer(*(Answer(status) for status in (429, 503, 500, 502, 504)), Answer(200))
    recorder = Recorder()
    with driver.open(retry=retry(clock, attempts=6, listeners=[recorder])) as http:
        assert http.get(server.url()).status_code == 200
    classes = [event.error_class for event in recorder.of(RetryScheduled)]
    assert classes == ["throttling", "throttling", TRANSIENT, TRANSIENT, TRANSIENT]


def test_other_statuses_are_answers_not_failures(
    driver: Driver, server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(404), Answer(501))
    with driver.open(retry=retry(clock)) as http:
        assert http.get(server.url()).status_code == 404
        assert http.get(server.url()).status_code == 501
    assert server.hits == 2
    assert clock.sleeps == []


def test_post_and_patch_are_not_retried_unless_asked(
    driver: Driver, server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(503), Answer(503))
    with driver.open(retry=retry(clock)) as http:
        assert http.request("POST", server.url(), b"order").status_code == 503
        assert http.request("PATCH", server.url(), b"change").status_code == 503
    assert methods(server) == ["POST", "PATCH"]
    assert clock.sleeps == []
    server.answer(Answer(503), Answer(200))
    with driver.open(retry=retry(clock), methods={*IDEMPOTENT_METHODS, "post"}) as http:
        assert http.request("POST", server.url(), b'{"n": 1}').status_code == 200
    assert methods(server)[2:] == ["POST", "POST"]
    assert server.requests[2].body == server.requests[3].body == b'{"n": 1}'


@pytest.mark.parametrize("method", sorted(IDEMPOTENT_METHODS))
def test_idempotent_methods_are_retried(
    driver: Driver, server: Server, clock: FakeClock, method: str
) -> None:
    server.answer(Answer(502), Answer(200))
    with driver.open(retry=retry(clock)) as http:
        assert http.request(method, server.url(), None).status_code == 200
    assert methods(server) == [method, method]


# -- errors --------------------------------------------------------------------------


def test_connection_refused_is_retried_as_a_connection_error(
    driver: Driver, closed_port: int, clock: FakeClock
) -> None:
    recorder = Recorder()
    with (
        driver.open(retry=retry(clock, listeners=[recorder])) as http,
        pytest.raises(driver.connect_error) as raised,
    ):
        http.get(f"http://127.0.0.1:{closed_port}/")
    assert is_connection_error(raised.value)
    assert [event.error_class for event in recorder.of(RetryScheduled)] == [TRANSIENT] * 2
    assert len(clock.sleeps) == 2  # 3 attempts, the client's own retries none


def test_a_dns_failure_is_retried_and_the_callers_error_is_raised(
    driver: Driver, server: Server, clock: FakeClock
) -> None:
    host = "api.stormproof.test"
    recorder = Recorder()
    with (
        resolve({host: "127.0.0.1"}),
        driver.open(retry=retry(clock, listeners=[recorder])) as http,
    ):
        with dns_outage(host, mode="empty"), pytest.raises(driver.connect_error) as raised:
            http.get(f"http://{host}:{server.port}/")
        assert is_dns_failure(raised.value)
        assert len(recorder.of(RetryScheduled)) == 2
        assert server.hits == 0
        assert http.get(f"http://{host}:{server.port}/").status_code == 200  # DNS is back


# -- the deadline and the budget -----------------------------------------------------


def test_no_retry_whose_wait_ends_past_the_callers_deadline(
    driver: Driver, server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(429, {"Retry-After": "2"}), Answer(200))
    with driver.open(retry=retry(clock)) as http, deadline(1.5, clock=clock):
        assert http.get(server.url()).status_code == 429
    assert server.hits == 1
    assert clock.sleeps == []


def test_no_attempt_once_the_deadline_has_passed(
    driver: Driver, server: Server, clock: FakeClock
) -> None:
    with driver.open(retry=retry(clock)) as http, deadline(1.0, clock=clock):
        clock.advance(1.0)
        with pytest.raises(DeadlineExceeded):
            http.get(server.url())
    assert server.hits == 0


def test_the_budget_is_told_what_retry_tells_it(
    driver: Driver, server: Server, clock: FakeClock
) -> None:
    ledger = Ledger()
    server.answer(Answer(429), Answer(500), Answer(200), Answer(503))
    with driver.open(retry=retry(clock, budget=ledger)) as http:
        assert http.get(server.url()).status_code == 200
        assert ledger.told == [
            ("request", None),
            ("failure", "throttling"),
            ("try_retry", "throttling"),
            ("failure", TRANSIENT),
            ("try_retry", TRANSIENT),
            ("success", "receipt"),
        ]
        ledger.told.clear()
        assert http.request("POST", server.url(), None).status_code == 503  # one attempt
        assert ledger.told == [("request", None), ("failure", "throttling")]


# -- nesting and the policies around each attempt -------------------------------------


def test_inside_another_retry_each_outer_attempt_is_one_request(
    driver: Driver, server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(503), repeat=True)
    outer = Retry(on=ConnectionError, retry_on_result=lambda r: r.status_code == 503, clock=clock)
    with driver.open(retry=retry(clock, attempts=5)) as http:
        assert outer.call(http.get, server.url()).status_code == 503
    assert server.hits == 3  # the outer Retry's 3 attempts, not 3 x 5


def test_a_breaker_around_each_attempt_counts_failed_statuses(
    driver: Driver, server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(503), repeat=True)
    breaker = CircuitBreaker("api", window=2, minimum_calls=2, clock=clock)
    with (
        driver.open(retry=retry(clock, attempts=5), around=breaker) as http,
        pytest.raises(CircuitOpen),
    ):
        http.get(server.url())
    assert server.hits == 2  # the breaker opened after two 503s and refused the third


# -- connections ---------------------------------------------------------------------


def test_no_connection_leaks_over_retried_calls(
    driver: Driver, server: Server, clock: FakeClock
) -> None:
    calls = 200 if driver.name == "httpx-async" else 1000
    server.answer(Answer(503, {"Retry-After": "0"}, b"busy"), Answer(200), repeat=True)
    with driver.open(retry=retry(clock)) as http:
        for _ in range(calls):
            assert http.get(server.url()).status_code == 200
    assert server.hits == 2 * calls
    assert server.connections == 1  # every retried answer was read: its connection reused
    assert len(clock.sleeps) == calls


def test_a_long_retried_body_is_not_read_its_connection_is_closed(
    driver: Driver, server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(503, body=b"x" * 1_000_000), Answer(200))
    with driver.open(retry=retry(clock)) as http:
        assert http.get(server.url()).status_code == 200
    assert server.hits == 2
    assert server.connections == 2
