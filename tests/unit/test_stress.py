"""Bounded thread stress through a full pipeline: every count must come out exact."""

from __future__ import annotations

import random
import threading

from stormproof import Backoff, Bulkhead, CircuitBreaker, Pipeline, Retry, TokenBucketBudget
from stormproof.testing import FakeClock

THREADS = 16
CALLS = 2500  # per thread: 40,000 calls in all


class Flaky(Exception):
    pass


def test_sixteen_threads_through_retry_breaker_bulkhead() -> None:
    clock = FakeClock()
    budget = TokenBucketBudget(capacity=10**9, retry_cost=1, success_reward=0)
    breaker = CircuitBreaker("db", failure_rate=1.0, window=10**6, minimum_calls=10**6, clock=clock)
    bulkhead = Bulkhead(4, max_queue=THREADS, max_wait=3600)
    pipeline = Pipeline(
        Retry(on=Flaky, attempts=3, budget=budget, clock=clock, backoff=Backoff(base=0.0, cap=0.0)),
        breaker,
        bulkhead,
    )
    lock = threading.Lock()
    inside = peak = attempts = failures = 0
    outcomes = {"ok": 0, "failed": 0}
    retries = refunds = 0
    barrier = threading.Barrier(THREADS)
    local = threading.local()

    def work(rng: random.Random) -> str:
        nonlocal inside, peak, attempts, failures
        local.attempts += 1
        with lock:
            inside += 1
            peak = max(peak, inside)
            attempts += 1
        try:
            if rng.random() < 0.3:
                with lock:
                    failures += 1
                raise Flaky
            return "ok"
        finally:
            with lock:
                inside -= 1

    def caller(seed: int) -> None:
        nonlocal retries, refunds
        rng = random.Random(seed)
        local.attempts = 0
        barrier.wait()
        for _ in range(CALLS):
            before = local.attempts
            try:
                pipeline.call(work, rng)
                result = "ok"
            except Flaky:
                result = "failed"
            made = local.attempts - before
            with lock:
                outcomes[result] += 1
                retries += made - 1
                refunds += result == "ok" and made > 1  # success after retries: refund

    threads = [threading.Thread(target=caller, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert outcomes["ok"] + outcomes["failed"] == THREADS * CALLS
    assert peak <= 4  # the bulkhead was never exceeded
    assert (bulkhead.active, bulkhead.queued) == (0, 0)  # every permit came back
    metrics = breaker.metrics()
    assert (metrics.calls, metrics.failures) == (attempts, failures)  # exact counts
    # Every call made one attempt, plus one retry per failed attempt but the last.
    assert attempts == THREADS * CALLS + failures - outcomes["failed"]
    # The shared budget paid for every retry and got back one cost per success
    # after retries: exactly, whatever the interleaving.
    assert budget.available == 10**9 - retries + refunds
