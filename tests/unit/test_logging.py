"""enable_logging(): every event as one structured log line, through the standard
library's logging (caplog) or structlog (its own capture_logs), never leaking an
exception's message unless asked."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

import stormproof.events
from stormproof import CircuitBreaker, ConfigError, Fallback, Retry
from stormproof.breaker import BreakerState
from stormproof.events import (
    BreakerRejected,
    BreakerStateChanged,
    BulkheadRejected,
    CacheStaleServed,
    CacheStoreFailed,
    ChaosInjected,
    Event,
    FailoverSwitched,
    FallbackUsed,
    FleetBreakerStateChanged,
    FleetDegraded,
    FleetRecovered,
    HedgeStarted,
    RetryGaveUp,
    RetryScheduled,
    ThrottleRejected,
    TimeoutExpired,
    TimeoutOverran,
)
from stormproof.instrumentation import enable_logging
from stormproof.instrumentation._logging import structured
from stormproof.testing import FakeClock

SECRET = "https://admin:hunter2@db.internal/orders?token=s3cr3t"


class VendorError(Exception):
    """An error of some client library, whose message holds what it was given."""


def failing(times: int, error: Exception | None = None) -> object:
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error or ConnectionError(SECRET)
        return "ok"

    return fn


def retry(name: str = "db") -> Retry:
    return Retry(on=Exception, clock=FakeClock(), name=name)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="stormproof")
    return caplog


def stormproof_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if hasattr(record, "stormproof")]


def data(record: logging.LogRecord) -> dict[str, object]:
    """The event's data, as ``extra={"stormproof": ...}`` set it on the record."""
    value: dict[str, object] = getattr(record, "stormproof")  # noqa: B009
    return value


# -- the standard library ----------------------------------------------------------------------


def test_one_record_per_event_with_its_data(logs: pytest.LogCaptureFixture) -> None:
    stop = enable_logging()
    try:
        retry("db").call(failing(1))  # type: ignore[arg-type]
    finally:
        stop()
    (record,) = stormproof_records(logs)
    assert record.name == "stormproof.events"
    assert record.levelno == logging.INFO
    delay = data(record)["delay"]
    assert record.getMessage() == (
        f"retry.scheduled policy=db attempt=1 delay={delay:.6g} error_class=transient "
        "error_type=ConnectionError"
    )
    assert data(record) == {
        "kind": "retry.scheduled",
        "policy": "db",
        "clock_time": 0.0,
        "attempt": 1,
        "delay": delay,
        "error_class": "transient",
        "error_type": "ConnectionError",
    }
    assert getattr(record, "stormproof_kind") == "retry.scheduled"  # noqa: B009
    assert getattr(record, "stormproof_policy") == "db"  # noqa: B009
    assert record.exc_info is None


def test_no_exception_message_leaks_by_default(logs: pytest.LogCaptureFixture) -> None:
    stop = enable_logging(level=logging.WARNING)
    try:
        with pytest.raises(VendorError):
            retry("db").call(failing(5, VendorError(SECRET)))  # type: ignore[arg-type]
        Fallback("cached", name="fallback").call(failing(1))  # type: ignore[arg-type]
    finally:
        stop()
    records = stormproof_records(logs)
    assert [getattr(r, "stormproof_kind") for r in records] == [  # noqa: B009
        "retry.scheduled",
        "retry.scheduled",
        "retry.gave_up",
        "fallback.used",
    ]
    assert SECRET not in logs.text
    for record in records:
        everything = json.dumps(record.__dict__, default=repr)
        assert "hunter2" not in everything
        assert "s3cr3t" not in everything
        assert record.exc_info is None
        assert not any(isinstance(arg, BaseException) for arg in record.args or ())
    assert data(records[0])["error_type"] == f"{__name__}.VendorError"
    # Fallback's events carry no class of their own: stormproof classifies the error.
    assert data(records[-1])["error_type"] == "ConnectionError"
    assert data(records[-1])["error_class"] == "transient"
    assert "error_message" not in data(records[-1])


def test_messages_when_asked_for_cut_to_500_characters(logs: pytest.LogCaptureFixture) -> None:
    stop = enable_logging(error_messages=True)
    try:
        Fallback(None).call(failing(1, ConnectionError("reset\nby peer")))  # type: ignore[arg-type]
        Fallback(None).call(failing(1, ConnectionError("x" * 2000)))  # type: ignore[arg-type]
    finally:
        stop()
    short, long = stormproof_records(logs)
    assert data(short)["error_message"] == "reset\nby peer"
    assert short.getMessage().endswith("error_message='reset\\nby peer'")  # one line
    assert data(long)["error_message"] == "x" * 497 + "..."


def test_events_without_an_error_log_none(logs: pytest.LogCaptureFixture) -> None:
    stop = enable_logging(error_messages=True)
    try:
        policy = Retry(
            on=ConnectionError, retry_on_result=lambda r: r is None, clock=FakeClock(), name="db"
        )
        answers = iter([None, "row"])
        policy.call(lambda: next(answers))
    finally:
        stop()
    (record,) = stormproof_records(logs)
    assert data(record)["error_type"] is None
    assert data(record)["error_message"] is None
    assert data(record)["error_class"] == "transient"


def test_stormproof_errors_are_named_where_users_import_them(
    logs: pytest.LogCaptureFixture,
) -> None:
    breaker = CircuitBreaker("payments", clock=FakeClock())
    breaker.force_open()
    stop = enable_logging()
    try:
        Fallback(None, name="fb").call(breaker.call, lambda: None)
    finally:
        stop()
    rejected, used = stormproof_records(logs)
    assert data(rejected) == {
        "kind": "breaker.rejected",
        "policy": "payments",
        "clock_time": 0.0,
        "state": "forced_open",
        "retry_after": None,
    }
    assert type(data(rejected)["state"]) is str  # the enum's value, not the enum
    assert data(used)["error_type"] == "stormproof.CircuitOpen"


def test_logger_level_and_stop(logs: pytest.LogCaptureFixture) -> None:
    logs.set_level(logging.DEBUG, logger="tests.named")
    logs.set_level(logging.DEBUG, logger="tests.given")
    named = enable_logging("tests.named", "debug")
    given = enable_logging(logging.getLogger("tests.given"), level="WARNING")
    try:
        retry().call(failing(1))  # type: ignore[arg-type]
    finally:
        named()
        given()
    named()  # a second stop does nothing
    retry().call(failing(1))  # type: ignore[arg-type]
    records = stormproof_records(logs)
    assert [(r.name, r.levelname) for r in records] == [
        ("tests.named", "DEBUG"),
        ("tests.given", "WARNING"),
    ]


def test_a_disabled_level_logs_nothing(logs: pytest.LogCaptureFixture) -> None:
    logs.set_level(logging.WARNING, logger="stormproof")
    stop = enable_logging(level=logging.INFO)
    try:
        retry().call(failing(1))  # type: ignore[arg-type]
    finally:
        stop()
    assert stormproof_records(logs) == []


def test_a_json_formatter_gets_the_data(logs: pytest.LogCaptureFixture) -> None:
    class JSONFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return json.dumps({"message": record.getMessage(), **data(record)})

    stop = enable_logging()
    try:
        retry("db").call(failing(1))  # type: ignore[arg-type]
    finally:
        stop()
    (record,) = stormproof_records(logs)
    line = json.loads(JSONFormatter().format(record))
    assert line["kind"] == "retry.scheduled"
    assert line["attempt"] == 1


# -- every event's data --------------------------------------------------------------------------

ERROR = VendorError(SECRET)

SAMPLES: list[Event] = [
    RetryScheduled("db", 1.0, 1, 0.25, "throttling", ERROR),
    RetryGaveUp("db", 2.0, 3, "deadline", "timeout", None),
    ThrottleRejected("adaptive-throttle", 3.0, 0.5, True),
    BreakerStateChanged("b", 4.0, BreakerState.CLOSED, BreakerState.OPEN, 0.6, None, 30.0),
    BreakerRejected("b", 5.0, BreakerState.OPEN, 29.5),
    BulkheadRejected("pool", 6.0, 10, 2, True),
    CacheStaleServed("cache", 7.0, "('user', 42)", 75.0, "error", ERROR),
    CacheStoreFailed("cache", 7.5, "get", "('user', 42)", TimeoutError("Timeout reading")),
    ChaosInjected("chaos-fault", 8.0, "fault"),
    FailoverSwitched("failover", 9.0, "us-east-1", "us-west-2", "failover"),
    FallbackUsed("fallback", 10.0, ERROR),
    FleetBreakerStateChanged("db", 10.25, BreakerState.CLOSED, BreakerState.OPEN, 0.6, 3, 30.0),
    FleetDegraded("fleet-redis", 10.5, "timeout", ERROR),
    FleetRecovered("fleet-redis", 10.75, 12.5, 3),
    HedgeStarted("hedge", 11.0, 2, "delay"),
    TimeoutExpired("timeout", 12.0, 1.5),
    TimeoutOverran("timeout", 13.0, 1.5, 2.25),
]


def test_the_samples_cover_every_event() -> None:
    exported = {
        obj
        for name in stormproof.events.__all__
        if isinstance(obj := getattr(stormproof.events, name), type)
        and issubclass(obj, Event)
        and obj is not Event
    }
    assert {type(sample) for sample in SAMPLES} == exported


@pytest.mark.parametrize("event", SAMPLES, ids=lambda event: event.kind)
def test_every_event_is_plain_data(event: Event) -> None:
    data = structured(event)
    assert json.loads(json.dumps(data)) == data  # strings, numbers, bools and None
    assert all(type(value) in (str, int, float, bool, type(None)) for value in data.values())
    expected = ["kind", "policy", "clock_time"]
    for field in dataclasses.fields(event):
        if field.name == "error":
            expected.append("error_type")
            if "error_class" not in expected:
                expected.append("error_class")
        elif field.name not in ("policy", "time"):
            expected.append(field.name)
    assert list(data) == expected
    assert (data["kind"], data["policy"], data["clock_time"]) == (
        event.kind,
        event.policy,
        event.time,
    )
    assert "hunter2" not in json.dumps(data)
    with_messages = structured(event, error_messages=True)
    if "error_type" in data:
        assert set(with_messages) - set(data) == {"error_message"}
    else:
        assert with_messages == data


# -- structlog ------------------------------------------------------------------------------------


def test_structlog_gets_the_kind_as_event_and_the_data_as_keys() -> None:
    stop = enable_logging(structlog=True)
    try:
        with capture_logs() as logs, pytest.raises(ConnectionError):
            retry("db").call(failing(3))  # type: ignore[arg-type]
    finally:
        stop()
    assert [entry["event"] for entry in logs] == [
        "retry.scheduled",
        "retry.scheduled",
        "retry.gave_up",
    ]
    gave_up = logs[-1]
    assert gave_up == {
        "event": "retry.gave_up",
        "log_level": "info",
        "policy": "db",
        "clock_time": gave_up["clock_time"],
        "attempts": 3,
        "reason": "attempts",
        "error_class": "transient",
        "error_type": "ConnectionError",
    }
    assert SECRET not in repr(logs)


def test_structlog_with_messages_a_level_and_a_logger_of_ones_own() -> None:
    bound = structlog.get_logger().bind(service="orders")
    stop = enable_logging(level="WARNING", structlog=bound, error_messages=True)
    try:
        with capture_logs() as logs:
            Fallback(None).call(failing(1))  # type: ignore[arg-type]
    finally:
        stop()
    (entry,) = logs
    assert entry["log_level"] == "warning"
    assert entry["service"] == "orders"
    assert entry["event"] == "fallback.used"
    assert entry["error_message"] == SECRET
    assert entry["error_class"] == "transient"


def test_structlog_stops() -> None:
    stop = enable_logging("app", logging.DEBUG, structlog=True)
    stop()
    with capture_logs() as logs:
        retry().call(failing(1))  # type: ignore[arg-type]
    assert logs == []


def test_structlog_is_imported_only_when_asked_for() -> None:
    code = """
import logging, sys
from stormproof import Retry
from stormproof.instrumentation import enable_logging
from stormproof.testing import FakeClock
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
stop = enable_logging()
answers = iter([ConnectionError(), "ok"])
def call():
    answer = next(answers)
    if isinstance(answer, Exception):
        raise answer
    return answer
Retry(on=ConnectionError, clock=FakeClock(), name="db").call(call)
stop()
assert "structlog" not in sys.modules, "structlog imported"
"""
    # The stormproof under test, wherever the subprocess starts.
    source = str(Path(stormproof.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": source + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("retry.scheduled policy=db attempt=1 ")


def test_structlog_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "structlog", None)  # as if not installed
    with pytest.raises(ImportError, match=r"structlog=True\) needs structlog: pip install"):
        enable_logging(structlog=True)
    enable_logging()()  # the standard library needs nothing


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"logger": 42}, "logger must be a logging.Logger, a logger name or None, got 42"),
        ({"logger": ""}, "logger must be a logging.Logger, a logger name or None, got ''"),
        ({"level": "LOUD"}, "level must be a logging level: a number such as logging.INFO"),
        ({"level": True}, "level must be a logging level.*, got True"),
        ({"level": -1}, "level must be a logging level.*, got -1"),
        ({"level": 2.5}, "level must be a logging level.*, got 2.5"),
        ({"error_messages": "yes"}, "error_messages must be True or False, got 'yes'"),
        ({"structlog": "yes"}, "structlog must be None, False, True, or a structlog logger"),
        ({"structlog": 1}, "structlog must be None, False, True, .*, got 1"),
        (
            {"structlog": logging.getLogger("x")},
            r"structlog must be True or a structlog logger \(a logging.Logger goes in logger=\)",
        ),
        (
            {"structlog": True, "level": 25},
            "level must be DEBUG, INFO, WARNING, ERROR or CRITICAL with structlog, got 25",
        ),
        ({"structlog": True, "logger": 42}, "logger must be a logging.Logger.*, got 42"),
        (
            {"structlog": structlog.get_logger(), "logger": "app"},
            "logger must be None when structlog is a logger of its own, got 'app'",
        ),
    ],
)
def test_bad_arguments_are_named(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        enable_logging(**options)  # type: ignore[arg-type]


def test_nothing_is_subscribed_when_the_arguments_are_bad() -> None:
    from stormproof._core import events

    before = events._registry.listeners
    with pytest.raises(ConfigError):
        enable_logging(level="LOUD")
    assert events._registry.listeners == before
