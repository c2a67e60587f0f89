"""stormproof.integrations.requests against a real HTTP/1.1 server on loopback (the
counting server of test_httpx.py)."""

from __future__ import annotations

import contextlib
import io
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import urllib3

from stormproof import (
    Backoff,
    CircuitBreaker,
    CircuitOpen,
    ConfigError,
    DeadlineExceeded,
    Retry,
    deadline,
)
from stormproof.chaos import dns_outage, resolve
from stormproof.classify import TRANSIENT, classify, is_connection_error, is_dns_failure
from stormproof.events import Recorder, RetryScheduled
from stormproof.integrations.requests import (
    IDEMPOTENT_METHODS,
    RetryAdapter,
    StatusFailure,
    is_retryable_error,
)
from stormproof.testing import FakeClock

from .test_httpx import T0, Answer, Ledger, Server, closed_port, http_date, server

__all__ = ["closed_port", "server"]  # the fixtures, from test_httpx


def retry(clock: FakeClock, **options: Any) -> Retry:
    return Retry(on=is_retryable_error, clock=clock, **options)


@contextlib.contextmanager
def session(adapter: RetryAdapter) -> Iterator[requests.Session]:
    with requests.Session() as made:
        made.trust_env = False  # no proxy from the environment between us and the server
        made.mount("http://", adapter)
        yield made


def methods(server: Server) -> list[str]:
    return [seen.method for seen in server.requests]


# -- Retry-After ---------------------------------------------------------------------


def test_429_with_retry_after_2_waits_exactly_2_seconds(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(429, {"Retry-After": "2"}), Answer(200, body=b"done"))
    with session(RetryAdapter(retry=retry(clock))) as http:
        response = http.get(server.url())
    assert (response.status_code, response.text) == (200, "done")
    assert clock.sleeps == [2.0]
    assert clock.now() == 2.0
    assert server.hits == 2


def test_retry_after_as_an_http_date(server: Server, clock: FakeClock) -> None:
    server.answer(
        Answer(503, {"Date": http_date(T0), "Retry-After": http_date(T0 + 3)}), Answer(200)
    )
    with session(RetryAdapter(retry=retry(clock))) as http:
        assert http.get(server.url()).status_code == 200
    assert clock.sleeps == [3.0]
    assert server.hits == 2


def test_retry_after_is_clamped_and_junk_is_no_hint(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(429, {"Retry-After": "3600"}), Answer(503, {"Retry-After": "junk"}))
    steady = Backoff(base=0.25, jitter="none")
    policy = retry(clock, max_retry_after=5.0, backoff=steady, throttling_backoff=steady)
    with session(RetryAdapter(retry=policy)) as http:
        assert http.get(server.url()).status_code == 200
    assert clock.sleeps == [5.0, 0.5]  # clamped; then the backoff alone (2nd retry)


# -- which requests and answers are retried ------------------------------------------


def test_503_then_200(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(503), Answer(200, body=b"fine"))
    with session(RetryAdapter(retry=retry(clock))) as http:
        assert http.get(server.url()).text == "fine"
    assert server.hits == 2


def test_500_three_times_gives_the_caller_the_last_500(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(500, body=b"1"), Answer(500, body=b"2"), Answer(500, body=b"3"))
    with session(RetryAdapter(retry=retry(clock, attempts=3))) as http:
        response = http.get(server.url())
    assert (response.status_code, response.text) == (500, "3")
    assert server.hits == 3


def test_429_and_503_are_throttling_500_502_504_transient(server: Server, clock: FakeClock) -> None:
    server.answer(*(Answer(status) for status in (429, 503, 500, 502, 504)), Answer(200))
    recorder = Recorder()
    with session(RetryAdapter(retry=retry(clock, attempts=6, listeners=[recorder]))) as http:
        assert http.get(server.url()).status_code == 200
    classes = [event.error_class for event in recorder.of(RetryScheduled)]
    assert classes == ["throttling", "throttling", TRANSIENT, TRANSIENT, TRANSIENT]


def test_post_is_not_retried_by_default_and_is_when_asked(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(503), Answer(503), Answer(200))
    with session(RetryAdapter(retry=retry(clock))) as http:
        assert http.post(server.url(), data=b"order").status_code == 503
        assert http.patch(server.url(), data=b"change").status_code == 503
    assert methods(server) == ["POST", "PATCH"]
    server.answer(Answer(503), Answer(200))
    asked = RetryAdapter(retry=retry(clock), methods={*IDEMPOTENT_METHODS, "POST"})
    with session(asked) as http:
        assert http.post(server.url(), json={"n": 1}).status_code == 200
    assert methods(server) == ["POST", "PATCH", "POST", "POST"]
    assert server.requests[2].body == server.requests[3].body == b'{"n": 1}'


@pytest.mark.parametrize("method", sorted(IDEMPOTENT_METHODS))
def test_idempotent_methods_are_retried(server: Server, clock: FakeClock, method: str) -> None:
    server.answer(Answer(502), Answer(200))
    with session(RetryAdapter(retry=retry(clock))) as http:
        assert http.request(method, server.url()).status_code == 200
    assert methods(server) == [method, method]


def test_a_body_from_an_iterator_is_not_retried(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(503), Answer(200))
    with session(RetryAdapter(retry=retry(clock))) as http:
        chunks = iter([b"part 1, ", b"part 2"])
        assert http.put(server.url(), data=chunks).status_code == 503
    assert [seen.body for seen in server.requests] == [b"part 1, part 2"]


def test_a_body_from_a_file_is_rewound_and_sent_again_whole(
    server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(503), Answer(200))
    body = io.BytesIO(b"header\ncontent of the file")
    body.readline()  # the request starts where the file is now
    with session(RetryAdapter(retry=retry(clock))) as http:
        assert http.put(server.url(), data=body).status_code == 200
    assert [seen.body for seen in server.requests] == [b"content of the file"] * 2


def test_a_multipart_upload_is_sent_again(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(503), Answer(200))
    with session(RetryAdapter(retry=retry(clock), methods={"POST"})) as http:
        files = {"upload": ("report.csv", io.BytesIO(b"a,b\n1,2\n"), "text/csv")}
        assert http.post(server.url(), files=files).status_code == 200
    first, second = (seen.body for seen in server.requests)
    assert b"a,b\n1,2\n" in first
    assert first == second


# -- transport errors ----------------------------------------------------------------


def test_connection_refused_is_retried_as_a_connection_error(
    closed_port: int, clock: FakeClock
) -> None:
    recorder = Recorder()
    with (
        session(RetryAdapter(retry=retry(clock, listeners=[recorder]))) as http,
        pytest.raises(requests.ConnectionError) as raised,
    ):
        http.get(f"http://127.0.0.1:{closed_port}/")
    assert is_connection_error(raised.value)
    scheduled = recorder.of(RetryScheduled)
    # As classify says: urllib3's NewConnectionError is a ConnectTimeoutError, so a
    # refused connection through urllib3 counts as a timeout (for botocore too).
    assert [event.error_class for event in scheduled] == [classify(raised.value)] * 2
    assert len(clock.sleeps) == 2  # 3 attempts, not urllib3's


def test_a_dns_failure_is_retried(server: Server, clock: FakeClock) -> None:
    host = "api.stormproof.test"
    recorder = Recorder()
    with (
        resolve({host: "127.0.0.1"}),
        session(RetryAdapter(retry=retry(clock, listeners=[recorder]))) as http,
    ):
        with dns_outage(host, mode="nxdomain"), pytest.raises(requests.ConnectionError) as raised:
            http.get(f"http://{host}:{server.port}/")
        assert is_dns_failure(raised.value)
        assert len(recorder.of(RetryScheduled)) == 2
        assert server.hits == 0
        assert http.get(f"http://{host}:{server.port}/").status_code == 200


def test_urllib3_retries_nothing_beneath_it() -> None:
    adapter = RetryAdapter()
    assert adapter.max_retries.total == 0
    assert adapter.max_retries.read is False
    assert not adapter.max_retries.status_forcelist


# -- the deadline and the budget -----------------------------------------------------


def test_no_retry_whose_wait_ends_past_the_callers_deadline(
    server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(429, {"Retry-After": "2"}), Answer(200))
    with session(RetryAdapter(retry=retry(clock))) as http, deadline(1.5, clock=clock):
        assert http.get(server.url()).status_code == 429
    assert server.hits == 1
    with session(RetryAdapter(retry=retry(clock))) as http, deadline(1.0, clock=clock):
        clock.advance(1.0)
        with pytest.raises(DeadlineExceeded):
            http.get(server.url())
    assert server.hits == 1


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, 2.0),
        (10, 2.0),
        (1.0, 1.0),
        ((0.5, 30.0), (0.5, 2.0)),
        ((None, None), (2.0, 2.0)),
    ],
)
def test_each_attempts_timeout_ends_by_the_deadline(
    server: Server, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, given: Any, expected: Any
) -> None:
    sent: list[Any] = []
    real_send = requests.adapters.HTTPAdapter.send

    def spy(self: Any, request: Any, **kwargs: Any) -> requests.Response:
        sent.append(kwargs["timeout"])
        return real_send(self, request, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", spy)
    with session(RetryAdapter(retry=retry(clock))) as http:
        with deadline(2.0, clock=clock):
            assert http.get(server.url(), timeout=given).status_code == 200
        assert http.get(server.url(), timeout=given).status_code == 200
    assert sent == [expected, given]


def test_a_urllib3_timeout_gets_a_total_by_the_deadline(
    server: Server, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Any] = []
    real_send = requests.adapters.HTTPAdapter.send

    def spy(self: Any, request: Any, **kwargs: Any) -> requests.Response:
        sent.append(kwargs["timeout"])
        return real_send(self, request, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", spy)
    given = urllib3.Timeout(connect=1.0, read=30.0)
    with session(RetryAdapter(retry=retry(clock))) as http, deadline(2.0, clock=clock):
        assert http.get(server.url(), timeout=given).status_code == 200
    [timeout] = sent
    assert (timeout.total, timeout.connect_timeout) == (2.0, 1.0)
    assert given.total is None  # the caller's is unchanged


def test_the_budget_is_told_what_retry_tells_it(server: Server, clock: FakeClock) -> None:
    ledger = Ledger()
    server.answer(Answer(429), Answer(200), Answer(503))
    with session(RetryAdapter(retry=retry(clock, budget=ledger))) as http:
        assert http.get(server.url()).status_code == 200
        assert http.post(server.url()).status_code == 503
    assert ledger.told == [
        ("request", None),
        ("failure", "throttling"),
        ("try_retry", "throttling"),
        ("success", "receipt"),
        ("request", None),
        ("failure", "throttling"),
    ]


# -- nesting and the policies around each attempt -------------------------------------


def test_inside_another_retry_each_outer_attempt_is_one_request(
    server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(503), repeat=True)
    outer = Retry(on=ConnectionError, retry_on_result=lambda r: r.status_code == 503, clock=clock)
    with session(RetryAdapter(retry=retry(clock, attempts=5))) as http:
        assert outer.call(http.get, server.url()).status_code == 503
    assert server.hits == 3


def test_a_breaker_around_each_attempt_counts_failed_statuses(
    server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(503), repeat=True)
    seen: list[BaseException] = []
    breaker = CircuitBreaker(
        "api", window=2, minimum_calls=2, on=lambda e: seen.append(e) or True, clock=clock
    )
    with (
        session(RetryAdapter(retry=retry(clock, attempts=5), around=breaker)) as http,
        pytest.raises(CircuitOpen),
    ):
        http.get(server.url())
    assert server.hits == 2
    assert [type(error) for error in seen] == [StatusFailure, StatusFailure]


# -- connections ---------------------------------------------------------------------


def test_no_connection_leaks_over_1000_retried_calls(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(503, {"Retry-After": "0"}, b"busy"), Answer(200), repeat=True)
    adapter = RetryAdapter(retry=retry(clock))
    with session(adapter) as http:
        for _ in range(1000):
            assert http.get(server.url()).status_code == 200
        pools = adapter.poolmanager.pools
        [pool] = [pools[key] for key in pools.keys()]  # noqa: SIM118  (it has no __iter__)
        assert pool.num_connections == 1  # urllib3 made one connection, and reused it
        assert pool.pool.qsize() == pool.pool.maxsize  # every one is back in the pool
    assert server.hits == 2000
    assert server.connections == 1


def test_a_long_retried_body_is_not_read_its_connection_is_closed(
    server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(503, body=b"x" * 1_000_000), Answer(200))
    with session(RetryAdapter(retry=retry(clock))) as http:
        assert http.get(server.url()).status_code == 200
    assert server.hits == 2
    assert server.connections == 2


def test_the_last_response_is_returned_unread_and_streams(server: Server, clock: FakeClock) -> None:
    body = bytes(range(256)) * 1024
    server.answer(Answer(503), Answer(500, body=body))
    with session(RetryAdapter(retry=retry(clock, attempts=2))) as http:
        response = http.get(server.url(), stream=True)
        assert response.status_code == 500
        assert not response._content_consumed  # type: ignore[attr-defined]
        assert b"".join(response.iter_content(4096)) == body
        response.close()
    assert server.hits == 2


# -- options -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"retry": 3}, "retry"),
        ({"retry": Retry(on=OSError, retry_on_result=lambda result: False)}, "retry"),
        ({"around": Retry(on=OSError)}, "around"),
        ({"methods": "POST"}, "methods"),
        ({"methods": ["GET", ""]}, "methods"),
        ({"statuses": [99]}, "statuses"),
        ({"statuses": ["503"]}, "statuses"),
        ({"pool_connections": 1.5}, "pool_connections"),
        ({"pool_maxsize": 0}, "pool_maxsize"),
        ({"pool_block": "yes"}, "pool_block"),
    ],
)
def test_bad_options_are_config_errors_naming_the_option(
    options: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        RetryAdapter(**options)
    assert raised.value.parameter == parameter
    assert repr(options[parameter]) in str(raised.value)


def test_the_options_are_kept() -> None:
    breaker = CircuitBreaker("api")
    adapter = RetryAdapter(methods=["get"], statuses=[503, 429], around=breaker, pool_maxsize=4)
    assert (adapter.methods, adapter.statuses) == ({"GET"}, {429, 503})
    assert adapter.around is breaker
    assert adapter.retry.attempts == 3
    assert adapter._pool_maxsize == 4  # type: ignore[attr-defined]
    assert repr(adapter).startswith("RetryAdapter(")


def test_a_pickled_adapter_keeps_its_options_or_refuses(clock: FakeClock) -> None:
    adapter = RetryAdapter(retry=Retry(on=is_retryable_error, attempts=2), methods=["GET"])
    copy = pickle.loads(pickle.dumps(adapter))
    assert (copy.retry.attempts, copy.methods) == (2, {"GET"})
    with pytest.raises(TypeError):  # the default Retry's budget holds a lock
        pickle.dumps(RetryAdapter())
