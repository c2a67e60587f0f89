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


def test_hedges_draw_from_a_budget_and_a_winning_hedge_refunds_nothing(clock: FakeClock) -> None:
    budget = TokenBucketBudget(capacity=10, retry_cost=10, success_reward=0)

    async def main() -> list[int]:
        started = []
        for _ in range(3):
            backend = Backend(["slow", "slow", "slow"])
            task = asyncio.create_task(
                Hedge(0.05, max_hedges=2, budget=budget, clock=clock).acall(backend)
            )
            await clock.asleep(1.0)  # every hedge the budget allows has started by now
            for gate in backend.gates:
                gate.set()
            await task
            started.append(backend.started)
        return started

    # The budget holds one hedge. The winner's success is a plain success (no reward
    # here), never a refund of the hedge's cost: the next calls get no hedge.
    assert asyncio.run(main()) == [2, 1, 1]
    assert budget.available == 0


def test_slow_answers_drain_the_budget_and_hedging_stops(clock: FakeClock) -> None:
    # docs/hedge.md's budget: when every attempt is slow (30 ms against a 10 ms delay)
    # but succeeds, each hedge costs 5 and each success earns 1: hedging stops.
    budget = TokenBucketBudget(capacity=50, retry_cost=5)
    attempts = 0

    async def slow_read() -> str:
        nonlocal attempts
        attempts += 1
        await clock.asleep(0.03)
        return "ok"

    hedge = Hedge(0.01, budget=budget, clock=clock)

    async def main() -> list[int]:
        made = []
        for _ in range(40):
            before = attempts
            assert await hedge.acall(slow_read) == "ok"
            made.append(attempts - before)
        return made

    made = asyncio.run(main())
    # 50 tokens, 4 net per hedged call (cost 5, success reward 1): 12 hedged calls...
    assert made[:12] == [2] * 12
    # ...then a hedge only once successes have earned its cost back: one call in five.
    assert made[12:] == [1, 1, 1] + [2, 1, 1, 1, 1] * 5


def test_a_failure_starts_the_next_attempt_at_once_while_another_is_pending(
    clock: FakeClock,
) -> None:
    backend = Backend(["slow", "fail", "fast"])
    recorder = Recorder()
    hedge = Hedge(0.05, max_hedges=2, clock=clock, listeners=[recorder])

    async def main() -> str:
        task = asyncio.create_task(hedge.acall(backend))
        answer = await task
        backend.gates[0].set()
        return answer

    assert asyncio.run(main()) == "answer 3"
    # The second attempt started after the delay and failed; the third started at
    # once, not a delay later.
    assert clock.now() == 0.05
    reasons = [event.reason for event in recorder.of(HedgeStarted)]
    assert reasons == ["delay", "failure"]


def test_cancelling_the_caller_cancels_every_attempt(clock: FakeClock) -> None:
    backend = Backend(["slow", "slow"])

    async def main() -> None:
        task = asyncio.create_task(Hedge(0.05, clock=clock).acall(backend))
        await clock.asleep(0.1)
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
        await clock.asleep(0.1)
        backend.gates[0].set()
        return await task

    assert asyncio.run(main()) == "answer 1"
    assert backend.started == 1


def test_an_instant_answer_moves_no_fake_time(clock: FakeClock) -> None:
    async def fast() -> str:
        return "ok"

    async def main() -> None:
        for _ in range(3):
            assert await Hedge(2, clock=clock).acall(fast) == "ok"

    asyncio.run(main())
    assert clock.now() == 0.0
