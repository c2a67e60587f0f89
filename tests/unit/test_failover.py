from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from stormproof import CircuitBreaker, CircuitOpen, ConfigError, Failover, deadline
from stormproof.events import FailoverSwitched, Recorder
from stormproof.testing import FakeClock


class Region:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.error: BaseException | None = None

    def __call__(self, key: str) -> str:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return f"{self.name}:{key}"

    async def acall(self, key: str) -> str:
        await asyncio.sleep(0)
        return self(key)


def dns_down() -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def regions() -> tuple[Region, Region]:
    return Region("east"), Region("west")


def test_calls_go_to_the_preferred_region(clock: FakeClock) -> None:
    east, west = regions()
    failover = Failover({"east": east, "west": west}, clock=clock)
    assert failover("k") == "east:k"
    assert (east.calls, west.calls, failover.active_region) == (1, 0, "east")


def test_a_regional_failure_moves_the_call_on(clock: FakeClock) -> None:
    east, west = regions()
    east.error = dns_down()
    failover = Failover({"east": east, "west": west}, clock=clock)
    assert failover("k") == "west:k"
    assert failover.active_region == "east"  # one failure does not move traffic


def test_traffic_moves_when_the_breaker_opens_then_fails_back_after_probing(
    clock: FakeClock,
) -> None:
    east, west = regions()
    recorder = Recorder()
    breaker = CircuitBreaker("db", window=4, minimum_calls=4, open_for=10, clock=clock)
    failover = Failover(
        {"east": east, "west": west},
        breaker=breaker,
        failback_after=30,
        probe_interval=5,
        clock=clock,
        listeners=[recorder],
    )
    east.error = dns_down()
    for _ in range(4):
        assert failover("k") == "west:k"
    assert failover.active_region == "west"
    assert failover.breaker("east").state == "open"
    calls_while_open = east.calls
    for _ in range(20):
        failover("k")
    assert east.calls == calls_while_open  # the open breaker keeps calls away

    east.error = None  # DNS is back
    served = []
    for _ in range(12):
        clock.advance(5)
        served.append(failover("k").split(":")[0])
    # A probe goes east every 5 s; after 30 s of healthy probes, traffic returns.
    assert failover.active_region == "east"
    switches = [(e.previous, e.region, e.reason) for e in recorder.of(FailoverSwitched)]
    assert switches == [("east", "west", "failover"), ("west", "east", "failback")]
    failback = recorder.of(FailoverSwitched)[1]
    first_probe = served.index("east")
    assert failback.time - (first_probe + 1) * 5 >= 30


def test_a_failed_probe_restarts_the_failback_clock(clock: FakeClock) -> None:
    east, west = regions()
    breaker = CircuitBreaker("db", window=2, minimum_calls=2, open_for=1, clock=clock)
    failover = Failover(
        {"east": east, "west": west},
        breaker=breaker,
        failback_after=20,
        probe_interval=5,
        clock=clock,
    )
    east.error = dns_down()
    failover("k")
    failover("k")
    assert failover.active_region == "west"
    east.error = None
    for _ in range(3):  # healthy for 10 s...
        clock.advance(5)
        failover("k")
    east.error = dns_down()  # ...then a relapse
    clock.advance(5)
    failover("k")
    east.error = None
    for _ in range(4):
        clock.advance(5)
        failover("k")
    assert failover.active_region == "west"  # 20 s have not passed since the relapse
    for _ in range(2):
        clock.advance(5)
        failover("k")
    assert failover.active_region == "east"


def test_non_regional_errors_propagate_at_once(clock: FakeClock) -> None:
    east, west = regions()
    east.error = KeyError("no such item")
    failover = Failover({"east": east, "west": west}, clock=clock)
    with pytest.raises(KeyError):
        failover("k")
    assert west.calls == 0
    assert failover.breaker("east").metrics().failures == 0  # the region answered


def test_every_region_failing_raises_the_last_error(clock: FakeClock) -> None:
    east, west = regions()
    east.error = dns_down()
    west_error = ConnectionRefusedError("west refused")
    west.error = west_error
    failover = Failover({"east": east, "west": west}, clock=clock)
    with pytest.raises(ConnectionRefusedError) as caught:
        failover("k")
    assert caught.value is west_error


def test_open_breakers_everywhere_raise_circuit_open(clock: FakeClock) -> None:
    east, west = regions()
    failover = Failover({"east": east, "west": west}, clock=clock)
    failover.breaker("east").force_open()
    failover.breaker("west").force_open()
    with pytest.raises(CircuitOpen):
        failover("k")
    assert east.calls == west.calls == 0


def test_no_region_is_tried_once_the_deadline_has_passed(clock: FakeClock) -> None:
    _, west = regions()

    def slow_failure(key: str) -> str:
        clock.advance(2)
        raise TimeoutError

    failover = Failover({"east": slow_failure, "west": west}, clock=clock)
    with deadline(1, clock=clock), pytest.raises(TimeoutError):
        failover("k")
    assert west.calls == 0


def test_async_regions(clock: FakeClock) -> None:
    east, west = regions()
    east.error = TimeoutError()
    failover = Failover({"east": east.acall, "west": west.acall}, clock=clock)
    assert asyncio.run(failover.acall("k")) == "west:k"
    # Sync callables work in acall too; async ones are refused by the sync call.
    assert asyncio.run(Failover({"a": east, "b": west}, clock=clock).acall("k")) == "west:k"
    with pytest.raises(ConfigError, match="use acall for async ones"):
        failover("k")


def test_custom_failover_on_and_breaker_factory(clock: FakeClock) -> None:
    east, west = regions()
    east.error = ValueError("treated as regional here")
    made: list[str] = []

    def factory(region: str) -> CircuitBreaker:
        made.append(region)
        return CircuitBreaker(f"custom:{region}", clock=clock)

    failover = Failover(
        {"east": east, "west": west}, breaker=factory, failover_on=ValueError, clock=clock
    )
    assert failover("k") == "west:k"
    assert made == ["east", "west"]
    assert failover.breaker("west").name == "custom:west"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"regions": {"only": print}}, "regions must be a mapping of at least two region"),
        ({"regions": [print, print]}, "regions must be a mapping"),
        ({"regions": {"a": print, "b": 3}}, "regions['b'] must be callable, got 3"),
        ({"breaker": "cb"}, "breaker must be a CircuitBreaker template, a factory, or None"),
        ({"breaker": lambda r: 1}, "breaker must be a factory returning CircuitBreakers"),
        ({"failback_after": -1}, "failback_after must be >= 0, got -1"),
        ({"probe_interval": 0}, "probe_interval must be > 0, got 0"),
        ({"failover_on": 42}, "failover_on must be an exception type"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    options: dict[str, Any] = {"regions": {"a": print, "b": print}, **kwargs}
    with pytest.raises(ConfigError) as caught:
        Failover(**options)
    assert str(caught.value).startswith(message)


def test_unknown_region() -> None:
    with pytest.raises(ConfigError, match="region must be one of"):
        Failover({"a": print, "b": print}).breaker("c")
