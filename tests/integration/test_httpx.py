"""stormproof.integrations.httpx against a real HTTP/1.1 server on loopback, which
answers what each test tells it and counts what reaches it.

The server (``Server``) is shared with test_requests.py."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import io
import socket
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from stormproof import (
    Backoff,
    CircuitBreaker,
    CircuitOpen,
    ConfigError,
    DeadlineExceeded,
    Pipeline,
    Retry,
    deadline,
)
from stormproof.chaos import dns_outage, resolve
from stormproof.classify import TIMEOUT, TRANSIENT, is_connection_error, is_dns_failure
from stormproof.events import Recorder, RetryGaveUp, RetryScheduled
from stormproof.integrations.httpx import (
    IDEMPOTENT_METHODS,
    AsyncRetryTransport,
    RetryTransport,
    StatusFailure,
    is_retryable_error,
)
from stormproof.testing import FakeClock

# -- the server ----------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What the server answers to one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


@dataclass(frozen=True)
class Seen:
    """One request as it reached the server."""

    method: str
    path: str
    body: bytes


class Server:
    """A real HTTP/1.1 server (keep-alive) on 127.0.0.1, in threads of this process.

    ``answer(*answers)`` sets what the next requests get, in order (then ``200 ok``;
    ``repeat=True``: the sequence again and again). ``requests`` lists every request
    that reached it; ``connections`` counts the connections it accepted, ``open`` those
    still open. Only the headers an answer names are sent (no ``Date`` of its own).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[Answer] = deque()
        self._repeat: tuple[Answer, ...] = ()
        self.requests: list[Seen] = []
        self.connections = 0
        self.open = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @classmethod
    @contextlib.contextmanager
    def running(cls) -> Iterator[Server]:
        server = cls()
        server._thread.start()
        try:
            yield server
        finally:
            server._httpd.shutdown()
            server._httpd.server_close()
            server._thread.join(timeout=10)

    def answer(self, *answers: Answer, repeat: bool = False) -> None:
        with self._lock:
            self._script = deque(answers)
            self._repeat = answers if repeat else ()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def hits(self) -> int:
        """Requests that reached the server."""
        with self._lock:
            return len(self.requests)

    def _next(self, seen: Seen) -> Answer:
        with self._lock:
            self.requests.append(seen)
            if not self._script and self._repeat:
                self._script.extend(self._repeat)
            return self._script.popleft() if self._script else Answer()

    def _connected(self, change: int) -> None:
        with self._lock:
            self.open += change
            self.connections += max(change, 0)


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: connections are reused
        disable_nagle_algorithm = True
        timeout = 30  # a connection left open by a test ends, eventually

        def setup(self) -> None:
            super().setup()
            server._connected(+1)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                server._connected(-1)

        def answer(self) -> None:
            answer = server._next(Seen(self.command, self.path, self._body()))
            self.send_response_only(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_TRACE = answer

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(parts)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    with Server.running() as server:
        yield server


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port where nothing listens (held, so nobody else takes it)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def http_date(seconds: float) -> str:
    return email.utils.formatdate(seconds, usegmt=True)


T0 = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT


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


def test_429_with_retry_after_2_waits_exactly_2_seconds(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(429, {"Retry-After": "2"}), Answer(200, body=b"done"))
    with client(RetryTransport(retry=retry(clock))) as http:
        response = http.get(server.url())
    assert (response.status_code, response.text) == (200, "done")
    assert clock.sleeps == [2.0]
    assert clock.now() == 2.0
    assert server.hits == 2


def test_retry_after_as_an_http_date_counts_from_the_answers_date(
    server: Server, clock: FakeClock
) -> None:
    server.answer(
        Answer(503, {"Date": http_date(T0), "Retry-After": http_date(T0 + 3)}), Answer(200)
    )
    with client(RetryTransport(retry=retry(clock))) as http:
        assert http.get(server.url()).status_code == 200
    assert clock.sleeps == [3.0]
    assert server.hits == 2


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


# -- which requests and answers are retried ------------------------------------------


def test_503_then_200(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(503), Answer(200, body=b"fine"))
    with client(RetryTransport(retry=retry(clock))) as http:
        assert http.get(server.url()).text == "fine"
    assert server.hits == 2


def test_500_three_times_gives_the_caller_the_last_500(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(500, body=b"1"), Answer(500, body=b"2"), Answer(500, body=b"3"))
    recorder = Recorder()
    with client(RetryTransport(retry=retry(clock, attempts=3, listeners=[recorder]))) as http:
        response = http.get(server.url())
    assert (response.status_code, response.text) == (500, "3")
    assert server.hits == 3
    assert [event.error_class for event in recorder.of(RetryScheduled)] == [TRANSIENT] * 2
    assert [event.reason for event in recorder.of(RetryGaveUp)] == ["attempts"]


def test_429_and_503_are_throttling_500_502_504_transient(server: Server, clock: FakeClock) -> None:
    server.answer(*(Answer(status) for status in (429, 503, 500, 502, 504)), Answer(200))
    recorder = Recorder()
    with client(RetryTransport(retry=retry(clock, attempts=6, listeners=[recorder]))) as http:
        assert http.get(server.url()).status_code == 200
    classes = [event.error_class for event in recorder.of(RetryScheduled)]
    assert classes == ["throttling", "throttling", TRANSIENT, TRANSIENT, TRANSIENT]


def test_other_statuses_are_answers_not_failures(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(404), Answer(501))
    with client(RetryTransport(retry=retry(clock))) as http:
        assert http.get(server.url()).status_code == 404
        assert http.get(server.url()).status_code == 501
    assert server.hits == 2
    assert clock.sleeps == []


def test_post_and_patch_are_not_retried_by_default(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(503), Answer(503))
    with client(RetryTransport(retry=retry(clock))) as http:
        assert http.post(server.url(), content=b"order").status_code == 503
        assert http.patch(server.url(), content=b"change").status_code == 503
    assert statuses(server) == ["POST", "PATCH"]
    assert clock.sleeps == []


def test_post_is_retried_when_asked(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(503), Answer(200))
    transport = RetryTransport(retry=retry(clock), methods={*IDEMPOTENT_METHODS, "post"})
    with client(transport) as http:
        assert http.post(server.url(), json={"n": 1}).status_code == 200
    assert statuses(server) == ["POST", "POST"]
    assert server.requests[0].body == server.requests[1].body == b'{"n":1}'


@pytest.mark.parametrize("method", sorted(IDEMPOTENT_METHODS))
def test_idempotent_methods_are_retried(server: Server, clock: FakeClock, method: str) -> None:
    server.answer(Answer(502), Answer(200))
    with client(RetryTransport(retry=retry(clock))) as http:
        assert http.request(method, server.url()).status_code == 200
    assert statuses(server) == [method, method]


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


def test_connection_refused_is_retried_as_a_connection_error(
    closed_port: int, clock: FakeClock
) -> None:
    recorder = Recorder()
    with (
        client(RetryTransport(retry=retry(clock, listeners=[recorder]))) as http,
        pytest.raises(httpx.ConnectError) as raised,
    ):
        http.get(f"http://127.0.0.1:{closed_port}/")
    assert is_connection_error(raised.value)
    scheduled = recorder.of(RetryScheduled)
    assert [event.error_class for event in scheduled] == [TRANSIENT, TRANSIENT]
    assert all(isinstance(event.error, httpx.ConnectError) for event in scheduled)
    assert len(clock.sleeps) == 2  # 3 attempts


def test_a_dns_failure_is_retried_and_the_callers_error_is_raised(
    server: Server, clock: FakeClock
) -> None:
    host = "api.stormproof.test"
    recorder = Recorder()
    with (
        resolve({host: "127.0.0.1"}),
        client(RetryTransport(retry=retry(clock, listeners=[recorder]))) as http,
    ):
        with dns_outage(host, mode="empty"), pytest.raises(httpx.ConnectError) as raised:
            http.get(f"http://{host}:{server.port}/")
        assert is_dns_failure(raised.value)
        assert len(recorder.of(RetryScheduled)) == 2
        assert server.hits == 0
        assert http.get(f"http://{host}:{server.port}/").status_code == 200  # DNS is back


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


def test_no_retry_whose_wait_ends_past_the_callers_deadline(
    server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(429, {"Retry-After": "2"}), Answer(200))
    with client(RetryTransport(retry=retry(clock))) as http, deadline(1.5, clock=clock):
        assert http.get(server.url()).status_code == 429
    assert server.hits == 1
    assert clock.sleeps == []


def test_no_attempt_once_the_deadline_has_passed(server: Server, clock: FakeClock) -> None:
    with client(RetryTransport(retry=retry(clock))) as http, deadline(1.0, clock=clock):
        clock.advance(1.0)
        with pytest.raises(DeadlineExceeded):
            http.get(server.url())
    assert server.hits == 0


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


class Ledger:
    """A retry budget that grants everything and writes down what it is told."""

    name = "ledger"

    def __init__(self) -> None:
        self.told: list[tuple[str, object]] = []

    def on_request(self) -> None:
        self.told.append(("request", None))

    def try_retry(self, error_class: str) -> object | None:
        self.told.append(("try_retry", error_class))
        return "receipt"

    def cancel_retry(self, receipt: object) -> None:
        self.told.append(("cancel", receipt))

    def on_success(self, receipt: object | None) -> None:
        self.told.append(("success", receipt))

    def on_failure(self, error_class: str | None) -> None:
        self.told.append(("failure", error_class))


def test_the_budget_is_told_what_retry_tells_it(server: Server, clock: FakeClock) -> None:
    ledger = Ledger()
    transport = RetryTransport(retry=retry(clock, budget=ledger))
    server.answer(Answer(429), Answer(500), Answer(200), Answer(503))
    with client(transport) as http:
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
        assert http.post(server.url()).status_code == 503  # one attempt, still counted
        assert ledger.told == [("request", None), ("failure", "throttling")]


# -- nesting and the policies around each attempt -------------------------------------


def test_inside_another_retry_each_outer_attempt_is_one_request(
    server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(503), repeat=True)
    outer = Retry(on=ConnectionError, retry_on_result=lambda r: r.status_code == 503, clock=clock)
    with client(RetryTransport(retry=retry(clock, attempts=5))) as http:
        assert outer.call(http.get, server.url()).status_code == 503
    assert server.hits == 3  # the outer Retry's 3 attempts, not 3 x 5


def test_a_breaker_around_each_attempt_counts_failed_statuses(
    server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(503), repeat=True)
    breaker = CircuitBreaker("api", window=2, minimum_calls=2, clock=clock)
    transport = RetryTransport(retry=retry(clock, attempts=5), around=breaker)
    with client(transport) as http, pytest.raises(CircuitOpen):
        http.get(server.url())
    assert server.hits == 2  # the breaker opened after two 503s and refused the third


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


def test_no_connection_leaks_over_1000_retried_calls(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(503, {"Retry-After": "0"}, b"busy"), Answer(200), repeat=True)
    transport = RetryTransport(retry=retry(clock))
    with client(transport) as http:
        for _ in range(1000):
            assert http.get(server.url()).status_code == 200
        assert server.hits == 2000
        pool = transport.transport._pool  # type: ignore[attr-defined]
        assert len(pool.connections) == 1
        assert all(connection.is_idle() for connection in pool.connections)
    assert server.connections == 1  # every retried answer was read: its connection reused
    assert len(clock.sleeps) == 1000


def test_a_long_retried_body_is_not_read_its_connection_is_closed(
    server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(503, body=b"x" * 1_000_000), Answer(200))
    with client(RetryTransport(retry=retry(clock))) as http:
        assert http.get(server.url()).status_code == 200
    assert server.hits == 2
    assert server.connections == 2


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


def test_async_429_with_retry_after_2_waits_exactly_2_seconds(
    server: Server, clock: FakeClock
) -> None:
    server.answer(Answer(429, {"Retry-After": "2"}), Answer(200, body=b"done"))

    async def main() -> httpx.Response:
        async with aclient(AsyncRetryTransport(retry=retry(clock))) as http:
            response = await http.get(server.url())
            await response.aread()
            return response

    response = asyncio.run(main())
    assert (response.status_code, response.text) == (200, "done")
    assert clock.sleeps == [2.0]
    assert clock.now() == 2.0
    assert server.hits == 2


def test_async_http_date_and_500_three_times(server: Server, clock: FakeClock) -> None:
    server.answer(
        Answer(503, {"Date": http_date(T0), "Retry-After": http_date(T0 + 4)}),
        Answer(500, body=b"2"),
        Answer(500, body=b"3"),
    )

    async def main() -> tuple[int, bytes]:
        async with aclient(AsyncRetryTransport(retry=retry(clock))) as http:
            response = await http.get(server.url())
            return response.status_code, response.content

    assert asyncio.run(main()) == (500, b"3")
    assert clock.sleeps[0] == 4.0
    assert server.hits == 3


def test_async_post_is_retried_only_when_asked(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(503), Answer(503), Answer(200))

    async def main() -> list[int]:
        plain = AsyncRetryTransport(retry=retry(clock))
        asked = AsyncRetryTransport(retry=retry(clock), methods=["POST"])
        async with aclient(plain) as first, aclient(asked) as second:
            return [
                (await first.post(server.url())).status_code,
                (await second.post(server.url())).status_code,
            ]

    assert asyncio.run(main()) == [503, 200]
    assert statuses(server) == ["POST", "POST", "POST"]


def test_async_connection_refused_is_retried(closed_port: int, clock: FakeClock) -> None:
    recorder = Recorder()

    async def main() -> None:
        async with aclient(AsyncRetryTransport(retry=retry(clock, listeners=[recorder]))) as http:
            await http.get(f"http://127.0.0.1:{closed_port}/")

    with pytest.raises(httpx.ConnectError) as raised:
        asyncio.run(main())
    assert is_connection_error(raised.value)
    assert len(recorder.of(RetryScheduled)) == 2


def test_async_deadline(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(429, {"Retry-After": "2"}), Answer(200))

    async def main() -> int:
        async with aclient(AsyncRetryTransport(retry=retry(clock))) as http:
            with deadline(1.5, clock=clock):
                return (await http.get(server.url())).status_code

    assert asyncio.run(main()) == 429
    assert server.hits == 1


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


def test_async_breaker_around_each_attempt(server: Server, clock: FakeClock) -> None:
    server.answer(Answer(503), repeat=True)
    breaker = CircuitBreaker("api", window=2, minimum_calls=2, clock=clock)
    transport = AsyncRetryTransport(retry=retry(clock, attempts=5), around=Pipeline(breaker))

    async def main() -> None:
        async with aclient(transport) as http:
            await http.get(server.url())

    with pytest.raises(CircuitOpen):
        asyncio.run(main())
    assert server.hits == 2


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
