from __future__ import annotations

import logging

import pytest

from stormproof import ConfigError, Retry
from stormproof._core import events
from stormproof.events import LoggingListener, Recorder, RetryScheduled, subscribe, unsubscribe
from stormproof.testing import FakeClock


def failing_twice() -> object:
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise ConnectionError("down")
        return "ok"

    return fn


def test_global_subscription_and_unsubscribe() -> None:
    seen: list[str] = []
    stop = subscribe(lambda event: seen.append(event.kind))
    try:
        Retry(on=ConnectionError, clock=FakeClock()).call(failing_twice())  # type: ignore[arg-type]
    finally:
        stop()
    assert seen == ["retry.scheduled", "retry.scheduled"]
    Retry(on=ConnectionError, clock=FakeClock()).call(failing_twice())  # type: ignore[arg-type]
    assert len(seen) == 2
    unsubscribe(print)  # unknown listeners are ignored


def test_events_are_frozen() -> None:
    recorder = Recorder()
    Retry(on=ConnectionError, clock=FakeClock(), listeners=[recorder]).call(failing_twice())  # type: ignore[arg-type]
    event = recorder.of(RetryScheduled)[0]
    with pytest.raises(AttributeError):
        event.delay = 0.0  # type: ignore[misc]
    assert event.fields()["attempt"] == 1


def test_a_broken_listener_never_breaks_the_call(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    recorder = Recorder()
    retry = Retry(on=ConnectionError, clock=FakeClock(), listeners=[broken, recorder])
    assert retry.call(failing_twice()) == "ok"  # type: ignore[arg-type]
    assert len(recorder) == 2
    assert "listener bug" in caplog.text


def test_logging_listener(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="stormproof")
    retry = Retry(on=ConnectionError, clock=FakeClock(), name="db", listeners=[LoggingListener()])
    retry.call(failing_twice())  # type: ignore[arg-type]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("retry.scheduled policy=db attempt=1 delay=")
    assert "error=ConnectionError('down')" in lines[0]


def test_logging_listener_validation() -> None:
    with pytest.raises(ConfigError, match="logger"):
        LoggingListener(logger=42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="level"):
        LoggingListener(level="INFO")  # type: ignore[arg-type]


def test_listeners_option_is_validated() -> None:
    with pytest.raises(ConfigError, match="listeners must be callables taking one argument"):
        Retry(on=ConnectionError, listeners=[42])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="listeners"):
        Retry(on=ConnectionError, listeners=42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="listener must be a callable taking one argument"):
        subscribe(42)  # type: ignore[arg-type]


def test_recorder_keeps_its_behaviour() -> None:
    recorder = Recorder()
    with recorder as entered:
        assert entered is recorder
        Retry(on=ConnectionError, clock=FakeClock(), listeners=[recorder]).call(failing_twice())  # type: ignore[arg-type]
    # A Recorder keeps what it hears, as often as it hears it.
    assert recorder.kinds() == ["retry.scheduled"] * 4
    assert len(recorder.of(RetryScheduled)) == 4
    assert list(recorder) == recorder.events
    recorder.clear()
    assert len(recorder) == 0
    assert recorder not in events._registry.listeners


def test_recorder_nested_blocks_leave_nothing_subscribed() -> None:
    recorder = Recorder()
    with recorder, recorder:
        pass
    assert recorder not in events._registry.listeners
    recorder.__exit__(None, None, None)  # an extra exit does nothing
