from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from stormproof.classify import THROTTLING, TIMEOUT, TRANSIENT, classify


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
