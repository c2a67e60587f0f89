"""stormproof.integrations.botocore against a real HTTP server on loopback that speaks
DynamoDB's JSON protocol: attempts are counted at the server."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from stormproof import (
    Bulkhead,
    BulkheadFull,
    Cache,
    CircuitBreaker,
    CircuitOpen,
    ConfigError,
    Retry,
    TokenBucketBudget,
)
from stormproof.chaos import dns_outage, resolve
from stormproof.classify import classify, is_connection_error, is_dns_failure, is_throttling
from stormproof.integrations.botocore import RegionalClient, protect, protection, retryable
from stormproof.retry import SDKRetriesWarning
from stormproof.testing import FakeClock

ITEM = {"Item": {"id": {"S": "1"}}}
INTERNAL = (500, {"__type": "com.amazon.coral.service#InternalFailure"}, {})
THROTTLED = (
    400,
    {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "slow down"},
    {},
)
OK = (200, ITEM, {})


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a pooled connection closed as its client goes) is
        not an error of the test."""
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class Table:
    """A DynamoDB endpoint on loopback: answers from ``script`` in turn (the last
    answer repeats) and counts the requests it received."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, Any], dict[str, str]]] = [OK]
        self.requests = 0
        self.lock = threading.Lock()
        table = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with table.lock:
                    index = min(table.requests, len(table.script) - 1)
                    table.requests += 1
                    status, body, headers = table.script[index]
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def answer(self, *script: tuple[int, dict[str, Any], dict[str, str]]) -> None:
        self.script = list(script)
        self.requests = 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def table() -> Iterator[Table]:
    served = Table()
    yield served
    served.close()


def client_for(url: str, **retries: Any) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries=retries or {"mode": "standard"}, connect_timeout=1, read_timeout=5),
    )


def protected(table: Table, clock: FakeClock, attempts: int, **options: Any) -> Any:
    """A client of ``table``, protected by a Retry of ``attempts`` on ``clock``."""
    budget = options.pop("budget", None)
    retry = Retry(on=retryable, attempts=attempts, budget=budget, clock=clock)
    return protect(client_for(f"http://127.0.0.1:{table.port}"), retry=retry, **options)


def get(client: Any) -> Any:
    return client.get_item(TableName="t", Key={"id": {"S": "1"}})


# -- exactly the attempts stormproof decides ---------------------------------------------------


def test_retry_sends_exactly_its_attempts(table: Table, clock: FakeClock) -> None:
    table.answer(INTERNAL)
    client = protected(table, clock, 3)
    with pytest.raises(ClientError) as caught:
        get(client)
    assert table.requests == 3
    assert caught.value.response["Error"]["Code"] == "InternalFailure"
    assert clock.now() > 0  # the backoff was slept on the Retry's clock, not for real


@pytest.mark.parametrize("mode", ["legacy", "standard", "adaptive"])
def test_the_sdks_retries_are_off_in_every_mode(table: Table, clock: FakeClock, mode: str) -> None:
    table.answer(INTERNAL)
    client = protect(
        client_for(f"http://127.0.0.1:{table.port}", mode=mode),
        retry=Retry(on=retryable, attempts=2, clock=clock),
    )
    with pytest.raises(ClientError):
        get(client)
    assert table.requests == 2
    handlers = _handlers(client, "before-send.dynamodb.GetItem")
    assert not [
        h for h in handlers if type(getattr(h, "__self__", None)).__name__.endswith("Limiter")
    ]


def test_success_after_failures(table: Table, clock: FakeClock) -> None:
    table.answer(INTERNAL, INTERNAL, OK)
    client = protected(table, clock, 3)
    assert get(client)["Item"] == ITEM["Item"]
    assert table.requests == 3


def test_an_exhausted_budget_sends_one_attempt(table: Table, clock: FakeClock) -> None:
    table.answer(INTERNAL)
    budget = TokenBucketBudget(capacity=4, retry_cost=5)  # cannot pay for a retry
    client = protected(table, clock, 3, budget=budget)
    with pytest.raises(ClientError):
        get(client)
    assert table.requests == 1


def test_the_default_retry_has_a_quota_of_its_own_per_client(table: Table) -> None:
    client = protect(client_for(f"http://127.0.0.1:{table.port}"))
    found = protection(client)
    assert found is not None
    assert found.retry is not None
    assert found.retry.options.attempts == 3
    assert found.retry.options.on is retryable
    other = protection(protect(client_for(f"http://127.0.0.1:{table.port}")))
    assert other is not None
    assert other.retry is not found.retry


def test_a_throttling_answer_waits_at_least_the_servers_hint(
    table: Table, clock: FakeClock
) -> None:
    status, body, _ = THROTTLED
    table.answer((status, body, {"x-amz-retry-after": "1500"}), OK)
    client = protected(table, clock, 3)
    get(client)
    assert table.requests == 2
    assert clock.now() >= 1.5


def test_retries_stop_at_the_callers_deadline(table: Table, clock: FakeClock) -> None:
    import stormproof

    table.answer(INTERNAL)
    client = protected(table, clock, 10)
    with stormproof.deadline(0.12, clock=clock), pytest.raises(ClientError):
        get(client)
    assert 1 < table.requests < 10
    assert clock.now() <= 0.12


def test_errors_that_are_not_retryable_are_not_retried(table: Table, clock: FakeClock) -> None:
    table.answer((400, {"__type": "com.amazon.coral.validate#ValidationException"}, {}))
    client = protected(table, clock, 3)
    with pytest.raises(ClientError) as caught:
        get(client)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert table.requests == 1


# -- classification -----------------------------------------------------------------------


def test_a_dns_outage_is_a_dns_failure_and_a_refused_connection_is_not(
    table: Table, clock: FakeClock
) -> None:
    retry = Retry(on=retryable, attempts=2, clock=clock)
    with resolve({"dynamodb.stormproof.test": "127.0.0.1"}):
        client = protect(client_for(f"http://dynamodb.stormproof.test:{table.port}"), retry=retry)
        assert get(client)["Item"] == ITEM["Item"]
        with dns_outage("dynamodb.stormproof.test", mode="empty"):
            with pytest.raises(EndpointConnectionError) as outage:
                get(client)
    assert is_dns_failure(outage.value)
    assert retryable(outage.value)
    assert table.requests == 1  # nothing reached the server during the outage
    refused_port = table.port
    table.close()
    refused = protect(
        client_for(f"http://127.0.0.1:{refused_port}"),
        retry=Retry(on=retryable, attempts=2, clock=clock),
    )
    with pytest.raises(EndpointConnectionError) as caught:
        get(refused)
    assert not is_dns_failure(caught.value)
    assert is_connection_error(caught.value)
    assert classify(caught.value) == "transient"  # refused: not a timeout (it costs 5, not 10)
    table.server = _Closed()  # type: ignore[assignment]


class _Closed:
    def shutdown(self) -> None:
        pass

    def server_close(self) -> None:
        pass


def test_throttling_codes_are_throttling(table: Table, clock: FakeClock) -> None:
    table.answer(THROTTLED)
    client = protected(table, clock, 1)
    with pytest.raises(ClientError) as caught:
        get(client)
    assert is_throttling(caught.value)


# -- breakers and bulkheads guard each attempt ---------------------------------------------


def test_an_open_breaker_refuses_before_sending(table: Table, clock: FakeClock) -> None:
    table.answer(INTERNAL)
    breaker = CircuitBreaker("dynamodb", window=4, minimum_calls=2, open_for=30, clock=clock)
    client = protected(table, clock, 3, breaker=breaker)
    with pytest.raises(CircuitOpen):
        get(client)  # two failed attempts trip it; the third is refused, not sent
    assert table.requests == 2
    with pytest.raises(CircuitOpen):
        get(client)
    assert table.requests == 2


def test_a_full_bulkhead_refuses_and_permits_come_back(table: Table, clock: FakeClock) -> None:
    bulkhead = Bulkhead(1)
    client = protected(table, clock, 2, bulkhead=bulkhead)
    for _ in range(3):
        get(client)
    assert bulkhead.active == 0
    assert bulkhead.try_acquire()
    with pytest.raises(BulkheadFull):
        get(client)
    bulkhead.release()
    assert table.requests == 3


# -- never silently nested -----------------------------------------------------------------


def test_protecting_twice_or_something_else_is_refused(table: Table) -> None:
    client = protect(client_for(f"http://127.0.0.1:{table.port}"))
    with pytest.raises(ConfigError, match="client must be a client not protected yet"):
        protect(client)
    with pytest.raises(ConfigError, match="client must be a boto3 or botocore client"):
        protect(object())
    with pytest.raises(ConfigError, match="retry must be a Retry or None"):
        protect(client_for(f"http://127.0.0.1:{table.port}"), retry=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="breaker must be a CircuitBreaker or None"):
        protect(client_for(f"http://127.0.0.1:{table.port}"), breaker="on")  # type: ignore[arg-type]


def test_a_retry_around_a_protected_client_decides_alone(table: Table, clock: FakeClock) -> None:
    table.answer(INTERNAL)
    client = protected(table, clock, 3)
    outer = Retry(on=retryable, attempts=2, clock=clock)
    with pytest.raises(ClientError):
        outer.call(get, client)
    assert table.requests == 2  # not 2 x 3


def test_the_sdks_own_retries_beneath_a_retry_are_reported(
    table: Table, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(
        botocore.endpoint, "time", types.SimpleNamespace(sleep=slept.append, time=time.time)
    )
    table.answer(INTERNAL)
    client = client_for(f"http://127.0.0.1:{table.port}", mode="standard", total_max_attempts=4)
    retry = Retry(on=retryable, attempts=3, clock=clock)
    with pytest.warns(SDKRetriesWarning, match="already retried the call 3 times"):
        with pytest.raises(ClientError):
            retry.call(get, client)
    assert table.requests == 12  # what protect() prevents: 3 x 4
    assert len(slept) == 9


def _handlers(client: Any, event: str) -> list[Any]:
    return list(client.meta.events._emitter._handlers.prefix_search(event))


def test_the_handlers_the_sdk_needs_stay(table: Table) -> None:
    s3 = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard"}),
    )
    before = _handlers(s3, "needs-retry.s3.GetObject")
    protect(s3)
    after = _handlers(s3, "needs-retry.s3.GetObject")
    kept = [h for h in before if h in after]
    assert len(kept) == len(before) - 1  # only the SDK's retry handler went
    assert any("redirect" in getattr(h, "__name__", "") for h in kept)


# -- aiobotocore -----------------------------------------------------------------------------


def aio_run(url: str, work: Any, **retries: Any) -> Any:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    async def main() -> Any:
        config = AioConfig(retries=retries or {"mode": "standard"}, connect_timeout=1)
        async with get_session().create_client(
            "dynamodb",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=config,
        ) as client:
            return await work(client)

    return asyncio.run(main())


@pytest.mark.parametrize("mode", ["standard", "adaptive"])
def test_aiobotocore_sends_exactly_the_retrys_attempts(
    table: Table, clock: FakeClock, mode: str
) -> None:
    table.answer(INTERNAL, INTERNAL, OK)

    async def work(client: Any) -> Any:
        protect(client, retry=Retry(on=retryable, attempts=3, clock=clock))
        return await client.get_item(TableName="t", Key={"id": {"S": "1"}})

    assert aio_run(f"http://127.0.0.1:{table.port}", work, mode=mode)["Item"] == ITEM["Item"]
    assert table.requests == 3
    assert clock.now() > 0  # backoffs slept on the Retry's clock

    table.answer(INTERNAL)

    async def failing(client: Any) -> Any:
        protect(client, retry=Retry(on=retryable, attempts=2, clock=clock))
        with pytest.raises(ClientError):
            await client.get_item(TableName="t", Key={"id": {"S": "1"}})

    aio_run(f"http://127.0.0.1:{table.port}", failing, mode=mode)
    assert table.requests == 2


def test_aiobotocore_breaker_refuses_before_sending(table: Table, clock: FakeClock) -> None:
    table.answer(INTERNAL)
    breaker = CircuitBreaker("dynamodb", window=4, minimum_calls=2, open_for=30, clock=clock)

    async def work(client: Any) -> None:
        protect(client, retry=Retry(on=retryable, attempts=3, clock=clock), breaker=breaker)
        for _ in range(2):
            with pytest.raises(CircuitOpen):
                await client.get_item(TableName="t", Key={"id": {"S": "1"}})

    aio_run(f"http://127.0.0.1:{table.port}", work)
    assert table.requests == 2


# -- one table in two regions: failover, and stale reads ---------------------------------------


@pytest.fixture
def west() -> Iterator[Table]:
    served = Table()
    yield served
    served.close()


def regional(east: Table, west: Table, clock: FakeClock, **options: Any) -> RegionalClient:
    return RegionalClient(
        {
            "us-east-1": client_for(f"http://127.0.0.1:{east.port}"),
            "us-west-2": client_for(f"http://127.0.0.1:{west.port}"),
        },
        retry=Retry(on=retryable, attempts=3, clock=clock),
        **options,
    )


WEST_ITEM = {"Item": {"id": {"S": "west"}}}


def test_a_failing_region_fails_over_to_the_next(
    table: Table, west: Table, clock: FakeClock
) -> None:
    table.answer(INTERNAL)
    west.answer((200, WEST_ITEM, {}))
    orders = regional(table, west, clock)
    for _ in range(2):
        assert orders.get_item(TableName="t", Key={"id": {"S": "1"}})["Item"] == WEST_ITEM["Item"]
    # Each call: one attempt at the east (the outer Retry decides; the east client's
    # own Retry makes a single attempt), then the west answers.
    assert (table.requests, west.requests) == (2, 2)


def test_an_error_that_is_not_regional_does_not_fail_over(
    table: Table, west: Table, clock: FakeClock
) -> None:
    table.answer((400, {"__type": "com.amazon.coral.validate#ValidationException"}, {}))
    orders = regional(table, west, clock)
    with pytest.raises(ClientError):
        orders.put_item(TableName="t", Item={"id": {"S": "1"}})
    assert (table.requests, west.requests) == (1, 0)


def test_reads_are_served_stale_when_every_region_fails(
    table: Table, west: Table, clock: FakeClock
) -> None:
    orders = regional(table, west, clock, cache=Cache(ttl=60, stale_ttl=3600, clock=clock))
    key = {"id": {"S": "1"}}
    first = orders.get_item(TableName="t", Key=key)
    assert orders.get_item(TableName="t", Key=key) is first  # fresh: no request
    assert (table.requests, west.requests) == (1, 0)
    clock.advance(120)  # stale now
    table.answer(INTERNAL)
    west.answer(INTERNAL)
    assert orders.get_item(TableName="t", Key=key) is first  # served stale
    assert table.requests + west.requests > 1
    # Writes are never served from the cache, nor a key that was never read: they fail
    # (with the regions' last error, or a refusal once their breakers are open).
    with pytest.raises((ClientError, CircuitOpen)):
        orders.put_item(TableName="t", Item=key)
    with pytest.raises((ClientError, CircuitOpen)):
        orders.get_item(TableName="t", Key={"id": {"S": "2"}})


def test_regional_clients_are_checked(table: Table, west: Table) -> None:
    east = client_for(f"http://127.0.0.1:{table.port}")
    with pytest.raises(ConfigError, match="clients must be a mapping of at least two regions"):
        RegionalClient({"us-east-1": east})
    with pytest.raises(ConfigError, match=r"clients\['b'\] must be a boto3 or botocore client"):
        RegionalClient({"a": east, "b": object()})
    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    with pytest.raises(ConfigError, match="clients must be clients of one service"):
        RegionalClient({"a": east, "b": s3})
    with pytest.raises(ConfigError, match="cached must be a collection of operation names"):
        RegionalClient({"a": east, "b": client_for("http://127.0.0.1:1")}, cached="GetItem")
    bare = RegionalClient({"a": east, "b": client_for("http://127.0.0.1:1")}, retry=None)
    with pytest.raises(AttributeError):
        getattr(bare, "no_such_operation")  # noqa: B009 - the attribute is the point


def test_aiobotocore_regions_fail_over(table: Table, west: Table, clock: FakeClock) -> None:
    from aiobotocore.session import get_session

    table.answer(INTERNAL)
    west.answer((200, WEST_ITEM, {}))

    async def main() -> Any:
        session = get_session()
        creds = {"region_name": "us-east-1", "aws_access_key_id": "t", "aws_secret_access_key": "t"}
        async with (
            session.create_client(
                "dynamodb", endpoint_url=f"http://127.0.0.1:{table.port}", **creds
            ) as east,
            session.create_client(
                "dynamodb", endpoint_url=f"http://127.0.0.1:{west.port}", **creds
            ) as w,
        ):
            orders = RegionalClient(
                {"us-east-1": east, "us-west-2": w},
                retry=Retry(on=retryable, attempts=3, clock=clock),
            )
            return await orders.get_item(TableName="t", Key={"id": {"S": "1"}})

    assert asyncio.run(main())["Item"] == WEST_ITEM["Item"]
    assert (table.requests, west.requests) == (1, 1)
