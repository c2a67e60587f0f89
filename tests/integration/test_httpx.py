"""stormproof.integrations.httpx against a real HTTP/1.1 server on loopback, which
answers what each test tells it and counts what reaches it (``_http_server``): what
only httpx's transports do. What every HTTP client does is in test_http_clients.py."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from stormproof import (
    Backoff,
    CircuitBreaker,
    ConfigError,
    Pipeline,
    Retry,
    deadline,
)
from stormproof.classify import TIMEOUT, TRANSIENT
from stormproof.events import Recorder, RetryScheduled
from stormproof.integrations.http import StatusFailure, is_retryable_error
from stormproof.integrations.httpx import AsyncRetryTransport, RetryTransport
from stormproof.testing import FakeClock

from ._http_server import T0, Answer, Server, http_date

# -- helpers -------------------------------------------------------------------------


def retry(clock: FakeClock, **options: Any) -> Retry:
    return Retry(on=is_retryable_error, clock=clock, **options)


@contextlib.contextmanager
def client(transport: httpx.BaseTransport) -> Iterator[httpx.Client]:
    with httpx.Client(transport=transport, trust_env=False, timeout=60) as made:
        yield made


@contextlib.asynccontextmanager
async def aclient(transport: httpx.AsyncBaseTransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=transport, trust_env=False, timeout=60) as made:
        yield made


def statuses(server: Server) -> list[str]:
    return [seen.method for seen in server.requests]


# -- Retry-After ---------------------------------------------------------------------


def test_a_retry_after_past_max_retry_after_is_clamped(server: Server, clock: FakeClock) -> None:
    # No Date header: the date counts from the system's time; 2055 is clamped.
    server.answer(
        Answer(503, {"Retry-After": http_date(T0 + 40 * 365 * 86400)}),
        Answer(429, {"Retry-After": "3600"}),
        Answer(200),
    )
    with client(RetryTransport(retry=retry(clock, max_retry_after=5.0))) as http:
        assert http.get(server.url()).status_code == 200
    assert clock.sleeps == [5.0, 5.0]


def test_a_body_that_cannot_be_sent_again_is_not_retried(server: Server, clock: FakeClock) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"part 1, "
        yield b"part 2"

    server.answer(Answer(503), Answer(200))
    with client(RetryTransport(retry=retry(clock))) as http:
        assert http.put(server.url(), content=chunks()).status_code == 503
    assert [seen.body for seen in server.requests] == [b"part 1, part 2"]


def test_a_multipart_upload_from_a_seekable_file_is_sent_again_whole(
    server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(503), Answer(200))
    transport = RetryTransport(retry=retry(clock), methods={"POST"})
    with client(transport) as http:
        files = {"upload": ("report.csv", io.BytesIO(b"a,b\n1,2\n"), "text/csv")}
        assert http.post(server.url(), files=files).status_code == 200
    first, second = (seen.body for seen in server.requests)
    assert b"a,b\n1,2\n" in first
    assert first.split(b"\r\n")[1:] == second.split(b"\r\n")[1:]  # the same form


# -- transport errors ----------------------------------------------------------------


def test_timeouts_and_disconnects_are_retried_other_errors_are_not(clock: FakeClock) -> None:
    errors: list[Exception] = [
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ]
    recorder = Recorder()

    def handler(request: httpx.Request) -> httpx.Response:
        if errors:
            raise errors.pop(0)
        return httpx.Response(200)

    inner = httpx.MockTransport(handler)
    transport = RetryTransport(transport=inner, retry=retry(clock, listeners=[recorder]))
    with client(transport) as http:
        assert http.get("http://api.test/").status_code == 200
        assert [event.error_class for event in recorder.of(RetryScheduled)] == [TIMEOUT, TRANSIENT]
        errors.append(httpx.UnsupportedProtocol("no such scheme"))
        with pytest.raises(httpx.UnsupportedProtocol):
            http.get("http://api.test/")
    assert len(clock.sleeps) == 2


# -- the deadline and the budget -----------------------------------------------------


def test_each_attempts_timeouts_end_by_the_deadline(clock: FakeClock) -> None:
    seen: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(503 if len(seen) == 1 else 200)

    steady = Backoff(base=0.5, jitter="none")
    transport = RetryTransport(
        transport=httpx.MockTransport(handler),
        retry=retry(clock, backoff=steady, throttling_backoff=steady),
    )
    with client(transport) as http:
        request = http.build_request("GET", "http://api.test/", timeout=httpx.Timeout(5.0))
        with deadline(2.0, clock=clock):
            assert http.send(request).status_code == 200
        assert http.get("http://api.test/").status_code == 200  # no deadline: untouched
    keys = ("connect", "read", "write", "pool")
    assert seen[0] == dict.fromkeys(keys, 2.0)
    assert seen[1] == dict.fromkeys(keys, 1.5)  # after a 0.5 s wait
    assert seen[2] == dict.fromkeys(keys, 60)  # the client's own
    assert request.extensions["timeout"] == dict.fromkeys(keys, 5.0)  # given back as it was


# -- nesting and the policies around each attempt -------------------------------------


def test_around_sees_failed_statuses_raised(server: Server, clock: FakeClock) -> None:
    seen: list[object] = []
    breaker = CircuitBreaker("api", on=lambda error: seen.append(error) or True, clock=clock)
    server.answer(Answer(429, {"Retry-After": "1"}), Answer(200))
    with client(RetryTransport(retry=retry(clock), around=breaker)) as http:
        assert http.get(server.url()).status_code == 200
    [failure] = seen
    assert isinstance(failure, StatusFailure)
    assert (failure.status_code, failure.throttling, failure.retry_after) == (429, True, 1.0)


# -- connections ---------------------------------------------------------------------


def test_the_last_response_is_returned_unread_and_streams(server: Server, clock: FakeClock) -> None:
    body = bytes(range(256)) * 1024
    server.answer(Answer(503), Answer(500, body=body))
    with (
        client(RetryTransport(retry=retry(clock, attempts=2))) as http,
        http.stream("GET", server.url()) as response,
    ):
        assert response.status_code == 500
        assert not response.is_stream_consumed
        assert b"".join(response.iter_bytes(chunk_size=4096)) == body
    assert server.hits == 2


# -- the async transport -------------------------------------------------------------


def test_async_no_connection_leaks_and_the_last_response_streams(
    server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(503, {"Retry-After": "0"}, b"busy"), Answer(200), repeat=True)
    transport = AsyncRetryTransport(retry=retry(clock))

    async def main() -> None:
        async with aclient(transport) as http:
            for _ in range(200):
                assert (await http.get(server.url())).status_code == 200
            async with http.stream("GET", server.url()) as response:
                assert not response.is_stream_consumed
                assert await response.aread() == b"ok"
            pool = transport.transport._pool  # type: ignore[attr-defined]
            assert len(pool.connections) == 1

    asyncio.run(main())
    assert server.hits == 402
    assert server.connections == 1


# -- options -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [RetryTransport, AsyncRetryTransport])
@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"retry": "3"}, "retry"),
        ({"retry": Retry}, "retry"),
        ({"retry": Retry(on=OSError, retry_on_result=lambda result: False)}, "retry"),
        ({"around": Retry(on=OSError)}, "around"),
        ({"around": Pipeline(CircuitBreaker("b"), Retry(on=OSError))}, "around"),
        ({"around": "breaker"}, "around"),
        ({"methods": "GET"}, "methods"),
        ({"methods": ["GET", "NOT A METHOD"]}, "methods"),
        ({"methods": [None]}, "methods"),
        ({"statuses": [503, 600]}, "statuses"),
        ({"statuses": [True]}, "statuses"),
        ({"statuses": 503}, "statuses"),
        ({"transport": "http"}, "transport"),
    ],
)
def test_bad_options_are_config_errors_naming_the_option(
    kind: type[Any], options: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        kind(**options)
    assert raised.value.parameter == parameter
    assert str(raised.value).startswith(f"{parameter} must be ")
    assert repr(options[parameter]) in str(raised.value)


def test_a_transport_that_retries_by_itself_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"transport must be a transport without retries"):
        RetryTransport(transport=httpx.HTTPTransport(retries=2))
    with pytest.raises(ConfigError, match=r"retries=3"):
        AsyncRetryTransport(transport=httpx.AsyncHTTPTransport(retries=3))
    with pytest.raises(ConfigError, match=r"an httpx.AsyncBaseTransport"):
        AsyncRetryTransport(transport=httpx.HTTPTransport())  # type: ignore[arg-type]


def test_the_options_are_kept_and_normalized() -> None:
    transport = RetryTransport(methods=["get", "Post"], statuses=(503,))
    assert transport.methods == {"GET", "POST"}
    assert transport.statuses == {503}
    assert transport.retry.attempts == 3
    assert transport.retry.budget is not None  # a budget of the transport's own
    assert transport.retry.backoff is not transport.retry.options.throttling_backoff
    assert transport.around is None
    assert isinstance(transport.transport, httpx.HTTPTransport)
    assert "RetryTransport(" in repr(transport)
    transport.close()


def test_closing_the_transport_closes_the_inner_one() -> None:
    closed: list[str] = []

    class Inner(httpx.BaseTransport):
        def close(self) -> None:
            closed.append("sync")

    class AsyncInner(httpx.AsyncBaseTransport):
        async def aclose(self) -> None:
            closed.append("async")

    with httpx.Client(transport=RetryTransport(transport=Inner())):
        pass

    async def main() -> None:
        async with httpx.AsyncClient(transport=AsyncRetryTransport(transport=AsyncInner())):
            pass

    asyncio.run(main())
    assert closed == ["sync", "async"]


@pytest.mark.parametrize(
    "hint",
    [
        {"Retry-After": "soon"},
        {"Retry-After": "-5"},
        {"Date": http_date(T0), "Retry-After": http_date(T0 - 60)},  # a past date
        {},
    ],
    ids=["junk", "negative", "past-date", "none"],
)
def test_junk_or_a_past_date_is_no_hint(
    server: Server, clock: FakeClock, hint: dict[str, str]
) -> None:
    server.answer(Answer(503, hint), Answer(200))
    steady = Backoff(base=0.25, jitter="none")
    transport = RetryTransport(retry=retry(clock, backoff=steady, throttling_backoff=steady))
    with client(transport) as http:
        assert http.get(server.url()).status_code == 200
    assert clock.sleeps == [0.25]  # the backoff alone
