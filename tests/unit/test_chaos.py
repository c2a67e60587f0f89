from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stormproof import Chaos, ConfigError, Pipeline, Retry
from stormproof.events import ChaosInjected, Recorder
from stormproof.testing import FakeClock


def ok() -> str:
    return "ok"


def test_fault_raises_a_fresh_exception_each_time() -> None:
    template = ConnectionError("injected")
    chaos = Chaos.fault(1.0, template)
    errors = []
    for _ in range(2):
        with pytest.raises(ConnectionError) as caught:
            chaos.call(ok)
        errors.append(caught.value)
    assert errors[0] is not errors[1]
    assert errors[0].args == ("injected",)
    with pytest.raises(TimeoutError):
        Chaos.fault(1.0, TimeoutError).call(ok)
    with pytest.raises(KeyError):
        Chaos.fault(1.0, lambda: KeyError("made")).call(ok)


def test_rate_with_injected_randomness() -> None:
    draws = iter([0.05, 0.5, 0.09, 0.95])
    chaos = Chaos.fault(0.1, ConnectionError, random=lambda: next(draws))
    outcomes = []
    for _ in range(4):
        try:
            outcomes.append(chaos.call(ok))
        except ConnectionError:
            outcomes.append("fault")
    assert outcomes == ["fault", "ok", "fault", "ok"]


def test_latency_on_the_clock(clock: FakeClock) -> None:
    chaos = Chaos.latency(1.0, 2.5, clock=clock)
    assert chaos.call(ok) == "ok"
    assert clock.sleeps == [2.5]

    async def aok() -> str:
        return "ok"

    assert asyncio.run(chaos.acall(aok)) == "ok"
    assert clock.now() == 5.0


def test_outcome_replaces_the_call() -> None:
    calls = []
    assert Chaos.outcome(1.0, {"status": 503}).call(lambda: calls.append(1)) == {"status": 503}
    assert calls == []


def test_enabled_switch_and_time_window(clock: FakeClock) -> None:
    switch = {"on": False}
    chaos = Chaos.fault(1.0, ConnectionError, enabled=lambda: switch["on"])
    assert chaos.call(ok) == "ok"
    switch["on"] = True
    with pytest.raises(ConnectionError):
        chaos.call(ok)

    window = Chaos.fault(1.0, ConnectionError, between=(10.0, 20.0), clock=clock)
    assert window.call(ok) == "ok"
    clock.advance(10)
    with pytest.raises(ConnectionError):
        window.call(ok)
    clock.advance(10)
    assert window.call(ok) == "ok"
    assert Chaos.fault(1.0, enabled=False).call(ok) == "ok"


def test_scripted_sequence_through_a_retry(clock: FakeClock) -> None:
    recorder = Recorder()
    chaos = Chaos.fault(sequence=["fail", "fail", "pass"], listeners=[recorder])
    retry = Retry(on=ConnectionError, attempts=3, clock=clock)
    assert Pipeline(retry, chaos).call(ok) == "ok"
    assert len(recorder.of(ChaosInjected)) == 2
    assert chaos.call(ok) == "ok"  # the script has run out: no more faults


@pytest.mark.parametrize(
    ("factory", "kwargs", "message"),
    [
        (Chaos.fault, {"rate": 1.5}, "rate must be in [0, 1], got 1.5"),
        (Chaos.fault, {"error": "boom"}, "error must be an exception type, an exception"),
        (Chaos.latency, {"seconds": -1}, "seconds must be >= 0, got -1"),
        (
            Chaos.outcome,
            {"enabled": "yes"},
            "enabled must be True, False or a zero-argument callable",
        ),
        (Chaos.fault, {"between": (5, 1)}, "between must be a (start, end) pair"),
        (Chaos.fault, {"sequence": "fail"}, "sequence must be a list of steps"),
        (Chaos.fault, {"sequence": ["fail", "explode"]}, "sequence must be steps"),
    ],
)
def test_bad_options(factory: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        factory(**kwargs)
    assert str(caught.value).startswith(message)
