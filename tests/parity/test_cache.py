"""Cache behaves the same through every driver: the decorator (sync and async), ``call``,
``acall``, and the simulator's cache driver. Concurrent callers are threads for the
sync drivers, tasks for the async ones and processes in the simulator."""

from __future__ import annotations

import pytest

from stormproof import Cache, DeadlineExceeded, deadline

from .drivers import CACHE, Driver, driving, fail, ok

drive = driving(CACHE)


def make(drive: Driver, **options: object) -> Cache:
    options = {"ttl": 10.0, "stale_ttl": 100.0, **options}
    return Cache(clock=drive.clock, **options)  # type: ignore[arg-type]


# -- hits, misses, stale ------------------------------------------------------------------------


def test_a_fresh_hit_skips_the_origin(drive: Driver) -> None:
    cache = make(drive)
    origin = drive.script(ok("v1"), ok("v2"))
    assert drive.call(cache, origin, "k") == "v1"
    drive.advance(9.0)
    assert drive.call(cache, origin, "k") == "v1"
    assert len(origin) == 1


def test_past_ttl_the_origin_is_called_again(drive: Driver) -> None:
    cache = make(drive)
    origin = drive.script(ok("v1"), ok("v2"))
    assert drive.call(cache, origin, "k") == "v1"
    drive.advance(10.0)
    assert drive.call(cache, origin, "k") == "v2"
    assert origin.times == [0.0, 10.0]


def test_the_key_comes_from_the_callers_arguments(drive: Driver) -> None:
    cache = make(drive)
    origin = drive.script(ok("for a"), ok("for b"), ok("unexpected"))
    assert drive.call(cache, origin, "a") == "for a"
    assert drive.call(cache, origin, "b") == "for b"
    assert drive.call(cache, origin, "a") == "for a"
    assert [call.args for call in origin.calls] == [("a",), ("b",)]


def test_a_stale_value_answers_when_the_origin_fails(drive: Driver) -> None:
    cache = make(drive)
    origin = drive.script(ok("v1"), fail(ConnectionError()))
    assert drive.call(cache, origin, "k") == "v1"
    drive.advance(50.0)
    assert drive.call(cache, origin, "k") == "v1"
    assert len(origin) == 2


def test_past_the_stale_window_the_origins_error_propagates_unchanged(drive: Driver) -> None:
    cache = make(drive)
    error = ConnectionError("down")
    origin = drive.script(ok("v1"), fail(error))
    assert drive.call(cache, origin, "k") == "v1"
    drive.advance(110.0)
    with pytest.raises(ConnectionError) as raised:
        drive.call(cache, origin, "k")
    assert raised.value is error


def test_a_miss_with_a_failing_origin_raises_its_error(drive: Driver) -> None:
    error = ConnectionError("down")
    with pytest.raises(ConnectionError) as raised:
        drive.call(make(drive), drive.script(fail(error)), "k")
    assert raised.value is error


# -- negative caching ---------------------------------------------------------------------------


def test_negative_on_errors_are_cached_for_negative_ttl(drive: Driver) -> None:
    cache = make(drive, negative_on=KeyError, negative_ttl=5.0)
    error = KeyError("k")
    origin = drive.script(fail(error), ok("found"))
    with pytest.raises(KeyError) as first:
        drive.call(cache, origin, "k")
    assert first.value is error
    drive.advance(4.0)
    with pytest.raises(KeyError) as second:
        drive.call(cache, origin, "k")
    assert second.value is not error  # a copy of its own
    assert second.value.args == error.args
    assert len(origin) == 1
    drive.advance(1.0)
    assert drive.call(cache, origin, "k") == "found"
    assert len(origin) == 2


def test_errors_negative_on_does_not_match_are_not_cached(drive: Driver) -> None:
    cache = make(drive, negative_on=KeyError, negative_ttl=5.0)
    origin = drive.script(fail(ConnectionError()), ok("value"))
    with pytest.raises(ConnectionError):
        drive.call(cache, origin, "k")
    assert drive.call(cache, origin, "k") == "value"
    assert len(origin) == 2


def test_negative_if_results_are_cached_for_negative_ttl(drive: Driver) -> None:
    cache = make(drive, negative_if=lambda value: value is None, negative_ttl=5.0)
    origin = drive.script(ok(None), ok("found"))
    assert drive.call(cache, origin, "k") is None
    drive.advance(4.0)
    assert drive.call(cache, origin, "k") is None
    assert len(origin) == 1
    drive.advance(1.0)
    assert drive.call(cache, origin, "k") == "found"


# -- coalescing ----------------------------------------------------------------------------------


def test_concurrent_misses_make_one_origin_call(drive: Driver) -> None:
    cache = make(drive)
    gate = drive.gate()
    origin = drive.script(ok("value", gate=gate), ok("second call"))
    leader = drive.start(cache, origin, "k")
    followers = [drive.start(cache, origin, "k") for _ in range(3)]
    gate.open()
    assert [call.result() for call in (leader, *followers)] == ["value"] * 4
    assert len(origin) == 1


def test_coalesced_callers_each_get_their_own_copy_of_the_error(drive: Driver) -> None:
    cache = make(drive)
    gate = drive.gate()
    error = ConnectionError("down")
    origin = drive.script(fail(error, gate=gate), ok("second call"))
    leader = drive.start(cache, origin, "k")
    followers = [drive.start(cache, origin, "k") for _ in range(2)]
    gate.open()
    with pytest.raises(ConnectionError) as raised:
        leader.result()
    assert raised.value is error  # the caller that made the call gets the original
    copies = []
    for follower in followers:
        with pytest.raises(ConnectionError) as raised:
            follower.result()
        copies.append(raised.value)
    assert all(type(copy) is ConnectionError and copy.args == error.args for copy in copies)
    assert len({id(error), *map(id, copies)}) == 3
    assert len(origin) == 1


def test_a_waiting_caller_takes_over_when_the_caller_making_the_call_is_interrupted(
    drive: Driver,
) -> None:
    cache = make(drive)
    gate = drive.gate()
    origin = drive.script(ok("never", gate=gate), ok("value"))
    leader = drive.start(cache, origin, "k")
    follower = drive.start(cache, origin, "k")
    gate.interrupt()
    with pytest.raises(drive.interrupted):
        leader.result()
    assert follower.result() == "value"
    assert len(origin) == 2


def test_a_waiting_caller_answers_stale_when_its_deadline_passes(drive: Driver) -> None:
    cache = make(drive)
    origin = drive.script(ok("v1"), ok("v2", gate=(gate := drive.gate())))
    assert drive.call(cache, origin, "k") == "v1"
    drive.advance(20.0)
    leader = drive.start(cache, origin, "k")
    with deadline(2.0, clock=drive.clock):
        follower = drive.start(cache, origin, "k")
    assert follower.result() == "v1"
    assert drive.now() == 22.0
    gate.open()
    assert leader.result() == "v2"
    assert len(origin) == 2


def test_a_waiting_caller_with_nothing_stale_gets_deadline_exceeded(drive: Driver) -> None:
    cache = make(drive)
    gate = drive.gate()
    origin = drive.script(ok("value", gate=gate))
    leader = drive.start(cache, origin, "k")
    with deadline(2.0, clock=drive.clock):
        follower = drive.start(cache, origin, "k")
    with pytest.raises(DeadlineExceeded):
        follower.result()
    gate.open()
    assert leader.result() == "value"
    assert len(origin) == 1


def test_without_coalescing_every_miss_calls_the_origin(drive: Driver) -> None:
    cache = make(drive, coalesce=False)
    gate = drive.gate()
    origin = drive.script(ok("value", gate=gate))
    calls = [drive.start(cache, origin, "k") for _ in range(3)]
    gate.open()
    assert [call.result() for call in calls] == ["value"] * 3
    assert len(origin) == 3
