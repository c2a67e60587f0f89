from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stormproof import ConfigError, Hedge, TokenBucketBudget
from stormproof.events import HedgeStarted, Recorder
from stormproof.testing import FakeClock


class Backend:
    """Attempt n answers after the n-th gate opens (or fails, if told to)."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.started = 0
        self.cancelled = 0
        self.gates: list[asyncio.Event] = []

    async def __call__(self) -> str:
        index = self.started
        self.started += 1
        gate = asyncio.Event()
        self.gates.append(gate)
        answer = self.answers[index]
        try:
            if answer.startswith("slow"):
                await gate.wait()
            else:
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if answer.endswith("fail"):
            raise ConnectionError(f"attempt {index + 1} failed")
        return f"answer {index + 1}"


def test_a_slow_first_attempt_is_hedged_and_the_first_answer_wins(clock: FakeClock) -> None:
    backend = Backend(["slow", "fast"])
    recorder = Recorder()
    hedge = Hedge(0.05, clock=clock, listeners=[recorder])
    assert asyncio.run(hedge.acall(backend)) == "answer 2"
    assert (backend.started, backend.cancelled) == (2, 1)
    (event,) = recorder.of(HedgeStarted)
    assert (event.attempt, event.reason) == (2, "delay")


def test_a_fast_answer_needs_no_hedge(clock: FakeClock) -> None:
    backend = Backend(["fast"])
    assert asyncio.run(Hedge(0.05, clock=clock).acall(backend)) == "answer 1"
    assert backend.started == 1


def test_a_failure_starts_the_next_attempt_at_once(clock: FakeClock) -> None:
    backend = Backend(["fail", "fast"])
    recorder = Recorder()
    assert asyncio.run(Hedge(10, clock=clock, listeners=[recorder]).acall(backend)) == "answer 2"
    assert [e.reason for e in recorder.of(HedgeStarted)] == ["failure"]


def test_all_attempts_failing_raises_the_last_error(clock: FakeClock) -> None:
    backend = Backend(["fail", "fail", "fail"])
    with pytest.raises(ConnectionError, match="attempt 3 failed"):
        asyncio.run(Hedge(0.05, max_hedges=2, clock=clock).acall(backend))


def test_unlisted_errors_stop_everything(clock: FakeClock) -> None:
    async def invalid() -> None:
        raise ValueError("bad request")

    with pytest.raises(ValueError):
        asyncio.run(Hedge(0.05, on=ConnectionError, clock=clock).acall(invalid))


def test_hedges_draw_from_a_budget(clock: FakeClock) -> None:
    budget = TokenBucketBudget(capacity=10, retry_cost=10, success_reward=0)

    async def main() -> list[int]:
        started = []
        for _ in range(3):
            backend = Backend(["slow", "slow", "slow"])
            task = asyncio.create_task(
                Hedge(0.05, max_hedges=2, budget=budget, clock=clock).acall(backend)
            )
            for _ in range(10):
                await asyncio.sleep(0)
            for gate in backend.gates:
                gate.set()
            await task
            started.append(backend.started)
        return started

    # The budget holds one hedge: the second is refused, and the winner's success
    # refunds the first, so every call gets exactly one hedge.
    assert asyncio.run(main()) == [2, 2, 2]
    assert budget.available == 10


def test_cancelling_the_caller_cancels_every_attempt(clock: FakeClock) -> None:
    backend = Backend(["slow", "slow"])

    async def main() -> None:
        task = asyncio.create_task(Hedge(0.05, clock=clock).acall(backend))
        for _ in range(10):
            await asyncio.sleep(0)
        assert backend.started == 2
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)

    asyncio.run(main())
    assert backend.cancelled == 2


def test_sync_use_is_refused() -> None:
    hedge = Hedge(0.05)
    with pytest.raises(ConfigError, match="Hedge works on async calls"):
        hedge(lambda: None)
    with pytest.raises(ConfigError, match="Hedge works on async calls"):
        hedge.call(lambda: None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"delay": -1}, "delay must be >= 0, got -1"),
        ({"delay": 1, "max_hedges": 0}, "max_hedges must be an integer >= 1, got 0"),
        ({"delay": 1, "budget": 3}, "budget must be a retry budget"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Hedge(**kwargs)
    assert str(caught.value).startswith(message)


def test_an_empty_budget_means_no_hedges(clock: FakeClock) -> None:
    budget = TokenBucketBudget(capacity=0)
    backend = Backend(["slow", "slow"])

    async def main() -> str:
        task = asyncio.create_task(Hedge(0.05, budget=budget, clock=clock).acall(backend))
        for _ in range(10):
            await asyncio.sleep(0)
        backend.gates[0].set()
        return await task

    assert asyncio.run(main()) == "answer 1"
    assert backend.started == 1
