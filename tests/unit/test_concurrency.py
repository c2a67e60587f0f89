"""Bounded thread stress on shared budgets: counts must come out exact."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from stormproof import AdaptiveThrottle, RatioBudget, Retry, RetryThrottle, TokenBucketBudget
from stormproof.testing import FakeClock

THREADS = 16


def hammer(work: Callable[[int], None], threads: int = THREADS) -> None:
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            work(index)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    assert errors == []


def test_token_bucket_grants_exactly_its_capacity() -> None:
    budget = TokenBucketBudget(capacity=500, retry_cost=5)
    granted = [0] * THREADS

    def work(index: int) -> None:
        for _ in range(2000):
            if budget.try_retry("transient") is not None:
                granted[index] += 1

    hammer(work)
    assert sum(granted) == 100
    assert budget.available == 0


def test_token_bucket_refunds_balance_exactly() -> None:
    budget = TokenBucketBudget(capacity=500, retry_cost=5)

    def work(index: int) -> None:
        for _ in range(3000):
            receipt = budget.try_retry("transient")
            if receipt is not None:
                budget.on_success(receipt)

    hammer(work)
    assert budget.available == 500


def test_retry_through_a_shared_budget_spends_it_exactly() -> None:
    budget = TokenBucketBudget(capacity=500, retry_cost=5)
    retry = Retry(on=ConnectionError, attempts=4, budget=budget, clock=FakeClock())
    attempts = [0] * THREADS
    calls_per_thread = 300

    def work(index: int) -> None:
        def down() -> None:
            attempts[index] += 1
            raise ConnectionError

        for _ in range(calls_per_thread):
            with pytest.raises(ConnectionError):
                retry.call(down)

    hammer(work)
    # Every call made its first attempt; the budget paid for exactly 100 retries.
    assert sum(attempts) == THREADS * calls_per_thread + 100


def test_retry_throttle_counts_exactly() -> None:
    throttle = RetryThrottle(max_tokens=1000, token_ratio=0.1)

    def failures(index: int) -> None:
        for _ in range(50):
            throttle.on_failure("transient")

    hammer(failures)
    assert throttle.available == 1000 - THREADS * 50

    def successes(index: int) -> None:
        for _ in range(100):
            throttle.on_success(None)

    hammer(successes)
    assert throttle.available == 1000 - THREADS * 50 + THREADS * 100 * 0.1


def test_ratio_budget_grants_exactly_its_share() -> None:
    budget = RatioBudget(ratio=0.1, min_per_second=10, window=10, clock=FakeClock())

    def requests(index: int) -> None:
        for _ in range(500):
            budget.on_request()

    hammer(requests)
    granted = [0] * THREADS

    def retries(index: int) -> None:
        for _ in range(200):
            if budget.try_retry("transient") is not None:
                granted[index] += 1

    hammer(retries)
    assert sum(granted) == 100 + THREADS * 500 // 10


def test_adaptive_throttle_counts_exactly() -> None:
    throttle = AdaptiveThrottle(
        k=2, minimum_requests=0, max_reject=1.0, clock=FakeClock(), random=lambda: 0.999999
    )

    def work(index: int) -> None:
        for _ in range(1000):
            throttle.on_request()
            if index % 2:
                throttle.on_success(None)

    hammer(work)
    requests, accepts = THREADS * 1000, THREADS // 2 * 1000
    assert throttle.rejection_probability == pytest.approx(
        max(0.0, (requests - 2 * accepts) / (requests + 1))
    )
