"""capture_events(), the stormproof_events fixture, and the Recorder they build on."""

from __future__ import annotations

import threading

import pytest

from stormproof import CircuitBreaker, CircuitOpen, ConfigError, Fallback, Retry
from stormproof._core import events as seam
from stormproof.events import (
    BreakerRejected,
    BreakerStateChanged,
    Event,
    FallbackUsed,
    RetryGaveUp,
    RetryScheduled,
)
from stormproof.testing import CapturedEvents, FakeClock, capture_events


def failing(times: int, error: Exception | None = None) -> object:
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error or ConnectionError("down")
        return "ok"

    return fn


def retry(name: str = "db", **options: object) -> Retry:
    return Retry(on=ConnectionError, clock=FakeClock(), name=name, **options)  # type: ignore[arg-type]


def test_a_block_captures_every_policy_and_stops_at_its_end() -> None:
    with capture_events() as events:
        retry("db").call(failing(1))  # type: ignore[arg-type]
        retry("cache").call(failing(1))  # type: ignore[arg-type]
    assert isinstance(events, CapturedEvents)
    assert events.kinds() == ["retry.scheduled", "retry.scheduled"]
    retry("db").call(failing(1))  # type: ignore[arg-type]
    assert len(events) == 2
    assert events not in seam._registry.listeners


def test_as_a_listener_it_hears_its_policy_alone() -> None:
    events = capture_events()
    retry("db", listeners=[events]).call(failing(2))  # type: ignore[arg-type]
    retry("other").call(failing(2))  # type: ignore[arg-type]
    assert [event.policy for event in events] == ["db", "db"]


def test_an_event_heard_both_ways_is_kept_once() -> None:
    with capture_events() as events:
        retry("db", listeners=[events, events]).call(failing(2))  # type: ignore[arg-type]
    assert events.kinds() == ["retry.scheduled", "retry.scheduled"]
    assert [event.attempt for event in events.of(RetryScheduled)] == [1, 2]


def test_filters_by_type_policy_and_fields() -> None:
    breaker = CircuitBreaker("payments", clock=FakeClock())
    with capture_events() as events:
        with pytest.raises(ConnectionError):
            retry("db").call(failing(3))  # type: ignore[arg-type]
        breaker.force_open()
        with pytest.raises(CircuitOpen):
            breaker.call(lambda: None)
    assert events.kinds() == [
        "retry.scheduled",
        "retry.scheduled",
        "retry.gave_up",
        "breaker.state_changed",
        "breaker.rejected",
    ]
    assert len(events.of(RetryScheduled)) == 2
    assert events.of(RetryScheduled, policy="payments") == []
    assert len(events.of(Event, policy="payments")) == 2
    assert [e.kind for e in events.from_policy("payments")] == [
        "breaker.state_changed",
        "breaker.rejected",
    ]
    assert len(events.matching(RetryScheduled, policy="db", error_class="transient")) == 2
    (second,) = events.matching(RetryScheduled, attempt=2, error=ConnectionError)
    assert second.attempt == 2
    assert events.matching(RetryScheduled, error=TimeoutError) == []
    assert events.matching(BreakerStateChanged, state="forced_open", previous="closed")
    assert events.matching(BreakerRejected, retry_after=None)


def test_assert_emitted_returns_the_first_match() -> None:
    with capture_events() as events:
        retry("db").call(failing(2))  # type: ignore[arg-type]
    event = events.assert_emitted(RetryScheduled, policy="db", attempt=2)
    assert event is events.of(RetryScheduled)[1]
    assert events.assert_emitted(RetryScheduled) is events.of(RetryScheduled)[0]
    assert events.assert_emitted(RetryScheduled, delay=pytest.approx(event.delay), attempt=2)


def test_assert_emitted_lists_what_was_captured_when_it_fails() -> None:
    with capture_events() as events:
        retry("db").call(failing(2))  # type: ignore[arg-type]
    with pytest.raises(AssertionError) as failure:
        events.assert_emitted(RetryScheduled, policy="db", attempt=3)
    message = str(failure.value)
    first, *lines = message.splitlines()
    assert first == (
        "expected a RetryScheduled event with policy='db', attempt=3; "
        "none of the 2 events captured matches:"
    )
    assert lines[0].startswith("  1. retry.scheduled policy='db' time=0.0 attempt=1 delay=")
    assert lines[1].startswith("  2. retry.scheduled policy='db' time=")
    assert "error=ConnectionError('down')" in lines[1]

    with pytest.raises(AssertionError, match=r"expected a RetryGaveUp event with error=OSError"):
        events.assert_emitted(RetryGaveUp, error=OSError)


def test_assert_emitted_on_nothing_captured() -> None:
    events = capture_events()
    with pytest.raises(
        AssertionError, match=r"^expected a FallbackUsed event; no event was captured$"
    ):
        events.assert_emitted(FallbackUsed)


def test_assert_emitted_names_the_only_event() -> None:
    events = capture_events()
    Fallback("cached", listeners=[events]).call(failing(1))  # type: ignore[arg-type]
    with pytest.raises(AssertionError) as failure:
        events.assert_emitted(FallbackUsed, policy="other")
    assert str(failure.value).splitlines() == [
        "expected a FallbackUsed event with policy='other'; the one event captured does not match:",
        f"  1. fallback.used policy='fallback' time={events.of(FallbackUsed)[0].time!r} "
        "error=ConnectionError('down')",
    ]


def test_assert_not_emitted_lists_the_matches() -> None:
    with capture_events() as events, pytest.raises(ConnectionError):
        retry("db").call(failing(3))  # type: ignore[arg-type]
    events.assert_not_emitted(RetryScheduled, attempt=3)
    events.assert_not_emitted(FallbackUsed)
    with pytest.raises(AssertionError) as failure:
        events.assert_not_emitted(RetryGaveUp, reason="attempts")
    first, *lines = str(failure.value).splitlines()
    assert first == (
        "expected no RetryGaveUp event with reason='attempts'; 1 of the 3 events captured match:"
    )
    assert len(lines) == 1
    assert lines[0].startswith("  3. retry.gave_up policy='db' ")
    with pytest.raises(AssertionError, match=r"^expected no event; 3 of the 3 events captured"):
        events.assert_not_emitted()
    events.clear()
    events.assert_not_emitted()


def test_a_long_capture_is_listed_in_part() -> None:
    events = capture_events()
    for n in range(60):
        events(RetryScheduled("db", float(n), n + 1, 0.1, "transient", None))
    with pytest.raises(AssertionError) as failure:
        events.assert_emitted(RetryGaveUp)
    lines = str(failure.value).splitlines()
    assert len(lines) == 1 + 50 + 1
    assert lines[-1] == "  ... and 10 more"
    assert repr(events).startswith("<CapturedEvents: 60 events: retry.scheduled, ")
    assert repr(events).endswith(", ...>")


def test_a_misspelt_field_or_a_wrong_type_is_refused() -> None:
    events = capture_events()
    with pytest.raises(ConfigError, match=r"^atempt must be a field of RetryScheduled \(policy"):
        events.assert_not_emitted(RetryScheduled, atempt=1)
    with pytest.raises(ConfigError, match="state must be a field of Event"):
        events.matching(Event, state="open")
    with pytest.raises(ConfigError, match="event_type must be an Event class"):
        events.assert_emitted("retry.scheduled")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="event_type must be an Event class"):
        events.of(ValueError)  # type: ignore[type-var]


def test_clear_forgets_and_captures_again() -> None:
    events = capture_events()
    policy = retry("db", listeners=[events])
    policy.call(failing(1))  # type: ignore[arg-type]
    events.clear()
    assert len(events) == 0
    policy.call(failing(1))  # type: ignore[arg-type]
    assert events.kinds() == ["retry.scheduled"]


def test_nested_blocks_each_undo_their_own_subscription() -> None:
    events = capture_events()
    with events:
        with events:
            retry().call(failing(1))  # type: ignore[arg-type]
        retry().call(failing(1))  # type: ignore[arg-type]
    retry().call(failing(1))  # type: ignore[arg-type]
    assert len(events) == 2
    assert events not in seam._registry.listeners


def test_events_from_many_threads_are_all_kept() -> None:
    events = capture_events()
    start = threading.Barrier(8)

    def emit_many(thread: int) -> None:
        start.wait()
        for n in range(500):
            seam.emit(RetryScheduled(f"t{thread}", 0.0, n, 0.0, "transient", None), (events,))

    with events:
        threads = [threading.Thread(target=emit_many, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(events) == 8 * 500  # each once, though each arrived twice
    assert len(events.from_policy("t3")) == 500
    assert [event.attempt for event in events.of(RetryScheduled, policy="t5")] == list(range(500))


def test_the_fixture_captures_the_test(stormproof_events: CapturedEvents) -> None:
    retry("db").call(failing(1))  # type: ignore[arg-type]
    stormproof_events.assert_emitted(RetryScheduled, policy="db", attempt=1)
    assert stormproof_events in seam._registry.listeners
