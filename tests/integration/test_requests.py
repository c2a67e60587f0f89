"""stormproof.integrations.requests against a real HTTP/1.1 server on loopback (the
counting server of ``_http_server``): what only the requests adapter does. What every
HTTP client does is in test_http_clients.py."""

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
    ConfigError,
    Retry,
    deadline,
)
from stormproof.integrations.http import is_retryable_error
from stormproof.integrations.requests import RetryAdapter
from stormproof.testing import FakeClock

from ._http_server import T0, Answer, Server, http_date


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


def test_urllib3_retries_nothing_beneath_it() -> None:
    adapter = RetryAdapter()
    assert adapter.max_retries.total == 0
    assert adapter.max_retries.read is False
    assert not adapter.max_retries.status_forcelist


# -- the deadline and the budget -----------------------------------------------------


# -- nesting and the policies around each attempt -------------------------------------


# -- connections ---------------------------------------------------------------------


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


def sent_timeouts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The ``timeout`` of every attempt urllib3 is asked to send, in order."""
    sent: list[Any] = []
    real_send = requests.adapters.HTTPAdapter.send

    def spy(self: Any, request: Any, **kwargs: Any) -> requests.Response:
        sent.append(kwargs["timeout"])
        return real_send(self, request, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", spy)
    return sent


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
    sent = sent_timeouts(monkeypatch)
    with session(RetryAdapter(retry=retry(clock))) as http:
        with deadline(2.0, clock=clock):
            assert http.get(server.url(), timeout=given).status_code == 200
        assert http.get(server.url(), timeout=given).status_code == 200
    assert sent == [expected, given]


def test_a_urllib3_timeout_gets_a_total_by_the_deadline(
    server: Server, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = sent_timeouts(monkeypatch)
    given = urllib3.Timeout(connect=1.0, read=30.0)
    with session(RetryAdapter(retry=retry(clock))) as http, deadline(2.0, clock=clock):
        assert http.get(server.url(), timeout=given).status_code == 200
    [timeout] = sent
    assert (timeout.total, timeout.connect_timeout) == (2.0, 1.0)
    assert given.total is None  # the caller's is unchanged
