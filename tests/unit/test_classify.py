from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from stormproof import CircuitOpen
from stormproof.classify import (
    THROTTLING,
    THROTTLING_STATUSES,
    TIMEOUT,
    TRANSIENT,
    causes,
    classify,
    classify_status,
    is_connection_error,
    is_dns_failure,
    is_regional_failure,
    is_server_error,
    is_timeout,
)


class ReadTimeoutError(Exception):
    """Named like urllib3's and botocore's timeout errors."""


class ClientError(Exception):
    """Shaped like botocore's ClientError."""

    def __init__(self, code: str, status: int) -> None:
        super().__init__(code)
        self.response = {
            "Error": {"Code": code, "Message": "..."},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }


class HTTPStatusError(Exception):
    """Shaped like httpx.HTTPStatusError."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.response = type("Response", (), {"status_code": status})()


class RpcError(Exception):
    """Shaped like grpc.RpcError: code() returns an enum member."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._name = name

    def code(self) -> Any:
        return type("StatusCode", (), {"name": self._name})()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (TimeoutError(), TIMEOUT),
        (socket.timeout(), TIMEOUT),  # noqa: UP041  (the socket module's name for it)
        (asyncio.TimeoutError(), TIMEOUT),
        (ReadTimeoutError(), TIMEOUT),
        (ConnectionError(), TRANSIENT),
        (socket.gaierror(-2, "Name or service not known"), TRANSIENT),
        (ClientError("ThrottlingException", 400), THROTTLING),
        (ClientError("ProvisionedThroughputExceededException", 400), THROTTLING),
        (ClientError("InternalServerError", 500), TRANSIENT),
        (ClientError("Whatever", 429), THROTTLING),
        (HTTPStatusError(429), THROTTLING),
        (HTTPStatusError(503), TRANSIENT),
        (RpcError("RESOURCE_EXHAUSTED"), THROTTLING),
        (RpcError("UNAVAILABLE"), TRANSIENT),
        (type("E", (Exception,), {"throttling": True})(), THROTTLING),
        (type("E", (Exception,), {"status_code": 429})(), THROTTLING),
        (type("E", (Exception,), {"code": "SlowDown"})(), THROTTLING),
    ],
)
def test_classify(error: BaseException, expected: str) -> None:
    assert classify(error) == expected


def test_classify_results_too() -> None:
    response = type("Response", (), {"status_code": 429})()
    assert classify(response) == THROTTLING
    assert classify({"status": 200}) == TRANSIENT


def test_classify_never_raises() -> None:
    class Hostile(Exception):
        @property
        def throttling(self) -> bool:
            raise RuntimeError("boom")

    assert classify(Hostile()) == TRANSIENT


def test_instance_attributes_set_after_construction_count() -> None:
    error = ConnectionError("too many requests")
    error.status_code = 429  # type: ignore[attr-defined]
    assert classify(error) == THROTTLING
    assert classify(ConnectionError("plain")) == TRANSIENT  # the class is unchanged


def test_slots_and_dynamic_attributes_are_seen() -> None:
    class Slotted:
        __slots__ = ("status_code",)

        def __init__(self, status: int) -> None:
            self.status_code = status

    class Proxy:
        def __getattr__(self, name: str) -> object:
            if name == "status":
                return 429
            raise AttributeError(name)

    assert classify(Slotted(429)) == THROTTLING
    assert classify(Slotted(200)) == TRANSIENT
    assert classify(Proxy()) == THROTTLING


def test_the_per_class_cache_is_bounded() -> None:
    from stormproof import _classify

    for n in range(3000):
        classify(type(f"Error{n}", (Exception,), {})())
    assert len(_classify._by_type) <= 1024


# -- DNS, connection and regional failures, through the clients' wrappers -----------


class ConnectTimeoutError(TimeoutError):
    """urllib3 files name-resolution failures under a connect-timeout class."""


class NewConnectionError(ConnectTimeoutError):
    pass


class NameResolutionError(NewConnectionError):
    def __init__(self, host: str, reason: socket.gaierror) -> None:
        super().__init__(f"Failed to resolve {host!r}")
        self.reason = reason


class MaxRetryError(Exception):
    def __init__(self, url: str, reason: BaseException) -> None:
        super().__init__(url)
        self.reason = reason


class RequestsConnectionError(Exception):
    """requests.ConnectionError(MaxRetryError(...)): the cause is an argument."""


class EndpointConnectionError(Exception):
    """botocore keeps the original error in kwargs["error"]."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("Could not connect to the endpoint URL")
        self.kwargs = kwargs


class ClientConnectorDNSError(OSError):
    """aiohttp, 3.10 and later."""


def empty_record() -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def wrapped(error: BaseException, wrapper: BaseException) -> BaseException:
    try:
        try:
            raise error
        except BaseException as inner:
            raise wrapper from inner
    except BaseException as outer:
        return outer


@pytest.mark.parametrize(
    "error",
    [
        empty_record(),
        NameResolutionError("dynamodb.us-east-1.amazonaws.com", empty_record()),
        MaxRetryError("/", NameResolutionError("h", empty_record())),
        RequestsConnectionError(MaxRetryError("/", NameResolutionError("h", empty_record()))),
        EndpointConnectionError(error=NameResolutionError("h", empty_record())),
        wrapped(empty_record(), ConnectionError("httpx.ConnectError: [Errno -2]")),
        ClientConnectorDNSError("Cannot connect to host"),
    ],
    ids=["gaierror", "urllib3", "urllib3-retry", "requests", "botocore", "httpx", "aiohttp"],
)
def test_dns_failures_are_found_through_wrappers(error: BaseException) -> None:
    assert is_dns_failure(error)
    assert is_connection_error(error)
    assert is_regional_failure(error)
    assert not is_timeout(error)  # even where the client's class says "timeout"
    assert classify(error) == TRANSIENT


def test_not_dns() -> None:
    for error in (ConnectionRefusedError(), TimeoutError(), KeyError("k"), ValueError()):
        assert not is_dns_failure(error)


def test_connection_errors() -> None:
    assert is_connection_error(ConnectionResetError())
    assert is_connection_error(wrapped(ConnectionRefusedError(), RuntimeError("wrapped")))
    assert not is_connection_error(KeyError("missing"))


def test_timeouts_found_through_the_chain() -> None:
    error = wrapped(TimeoutError("read timed out"), RuntimeError("request failed"))
    assert is_timeout(error)
    assert classify(error) == TIMEOUT


def test_server_errors() -> None:
    assert is_server_error(HTTPStatusError(503))
    assert is_server_error(ClientError("InternalError", 500))
    assert not is_server_error(HTTPStatusError(404))
    assert is_server_error(type("Response", (), {"status_code": 502})())


def test_regional_failures() -> None:
    assert is_regional_failure(CircuitOpen("us-east-1"))
    assert is_regional_failure(HTTPStatusError(503))
    assert is_regional_failure(HTTPStatusError(429))
    assert is_regional_failure(TimeoutError())
    assert not is_regional_failure(HTTPStatusError(404))
    assert not is_regional_failure(KeyError("not found"))
    assert not is_regional_failure(ValueError("validation"))


def test_causes_is_bounded_and_handles_cycles() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    assert list(causes(a)) == [a, b]
    chain: BaseException = ValueError(0)
    for n in range(1, 100):
        chain = wrapped(chain, ValueError(n))
    assert len(list(causes(chain))) == 16


# -- HTTP statuses, as HTTP clients' answers count ----------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, THROTTLING),
        (503, THROTTLING),
        (500, TRANSIENT),
        (502, TRANSIENT),
        (504, TRANSIENT),
        (501, TRANSIENT),
        (404, TRANSIENT),
        (200, TRANSIENT),
    ],
)
def test_classify_status(status: int, expected: str) -> None:
    assert classify_status(status) == expected


def test_throttling_statuses() -> None:
    assert frozenset({429, 503}) == THROTTLING_STATUSES
    assert all(classify_status(status) == THROTTLING for status in THROTTLING_STATUSES)


def test_an_aws_or_bare_503_keeps_its_classification() -> None:
    """classify_status is for HTTP clients' answers; classify is unchanged: a 503 on an
    AWS error or a bare response is a transient server error, as botocore counts it."""
    assert classify(ClientError("ServiceUnavailable", 503)) == TRANSIENT
    assert classify(ClientError("SlowDown", 503)) == THROTTLING  # by its code
    assert classify(HTTPStatusError(503)) == TRANSIENT
    assert classify(type("Response", (), {"status_code": 503})()) == TRANSIENT
    assert is_server_error(ClientError("ServiceUnavailable", 503))


def test_a_refused_connection_through_urllib3_is_not_a_timeout() -> None:
    """urllib3's NewConnectionError derives from its ConnectTimeoutError for history's
    sake; a refused connection is a connection error, and a connect timeout a timeout."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    refused = NewConnectionError(None, "Failed to establish a new connection: refused")
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert not is_timeout(refused)
    assert classify(refused) == TRANSIENT
    assert is_connection_error(refused)
    assert is_timeout(ConnectTimeoutError("connect timed out"))
