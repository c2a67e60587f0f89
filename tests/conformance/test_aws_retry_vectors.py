"""The AWS SDK retry conformance cases, reproduced through Retry and TokenBucketBudget.

Standard mode (the SDKs' retry-behaviour test suite): base 1 s with the random factor
fixed at 1, max backoff 20 s, quota 500, retry cost 5, success reward 1.
2026 behaviour: base 50 ms (25 ms for DynamoDB), transient errors cost 14,
throttling 5, max backoff applied before jitter.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stormproof import Backoff, Retry, TokenBucketBudget
from stormproof.testing import FakeClock


class ServiceError(Exception):
    def __init__(self, status: int, code: str = "InternalError") -> None:
        super().__init__(status, code)
        self.response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}


class Script:
    """Answers with the given HTTP statuses in order; records the quota after each."""

    def __init__(
        self, statuses: list[int], budget: TokenBucketBudget, code: str = "InternalError"
    ) -> None:
        self._statuses: Iterator[int] = iter(statuses)
        self._budget = budget
        self._code = code
        self.quota_seen: list[float] = []

    def __call__(self) -> str:
        self.quota_seen.append(self._budget.available)
        status = next(self._statuses)
        if status >= 400:
            raise ServiceError(status, self._code)
        return "ok"


def run(
    statuses: list[int],
    *,
    attempts: int,
    budget: TokenBucketBudget,
    base: float,
    cap: float = 20.0,
    code: str = "InternalError",
    throttling_base: float | None = None,
) -> tuple[object, list[float], list[float]]:
    clock = FakeClock()
    script = Script(statuses, budget, code)
    throttling = (
        None
        if throttling_base is None
        else Backoff(base=throttling_base, cap=cap, random=lambda: 1.0)
    )
    retry = Retry(
        on=ServiceError,
        attempts=attempts,
        budget=budget,
        clock=clock,
        backoff=Backoff(base=base, cap=cap, random=lambda: 1.0),
        throttling_backoff=throttling,
    )
    try:
        outcome: object = retry.call(script)
    except ServiceError as error:
        outcome = error
    # Quota after each retry decision: what the next attempt saw, then the final value.
    return outcome, [*script.quota_seen[1:], budget.available], clock.sleeps


# -- standard mode ---------------------------------------------------------------


def test_standard_retry_eventually_succeeds() -> None:
    outcome, quota, delays = run(
        [500, 500, 200], attempts=3, budget=TokenBucketBudget.aws_standard(), base=1.0
    )
    assert outcome == "ok"
    assert quota == [495, 490, 495]
    assert delays == [1, 2]


def test_standard_fails_when_max_attempts_reached() -> None:
    outcome, quota, delays = run(
        [500, 502, 503], attempts=3, budget=TokenBucketBudget.aws_standard(), base=1.0
    )
    assert isinstance(outcome, ServiceError)
    assert outcome.args[0] == 503
    assert quota == [495, 490, 490]
    assert delays == [1, 2]


def test_standard_quota_reached_after_a_single_retry() -> None:
    outcome, quota, delays = run(
        [500, 502], attempts=3, budget=TokenBucketBudget(capacity=5), base=1.0
    )
    assert isinstance(outcome, ServiceError)
    assert outcome.args[0] == 502
    assert quota == [0, 0]
    assert delays == [1]


def test_standard_no_retries_at_all_if_quota_is_zero() -> None:
    outcome, _, delays = run([500], attempts=3, budget=TokenBucketBudget(capacity=0), base=1.0)
    assert isinstance(outcome, ServiceError)
    assert delays == []


def test_standard_exponential_backoff_timing() -> None:
    outcome, quota, delays = run(
        [500] * 5, attempts=5, budget=TokenBucketBudget.aws_standard(), base=1.0
    )
    assert isinstance(outcome, ServiceError)
    assert quota == [495, 490, 485, 480, 480]
    assert delays == [1, 2, 4, 8]


def test_standard_max_backoff_time() -> None:
    _, _, delays = run(
        [500] * 5, attempts=5, budget=TokenBucketBudget.aws_standard(), base=1.0, cap=3.0
    )
    assert delays == [1, 2, 3, 3]


# -- the 2026 behaviour ----------------------------------------------------------


def test_2026_five_failed_attempts() -> None:
    outcome, quota, delays = run(
        [500] * 5, attempts=5, budget=TokenBucketBudget.aws_2026(), base=0.05
    )
    assert isinstance(outcome, ServiceError)
    assert delays == pytest.approx([0.05, 0.1, 0.2, 0.4])
    assert quota == [486, 472, 458, 444, 444]


def test_2026_two_failures_then_success() -> None:
    outcome, quota, delays = run(
        [500, 500, 200], attempts=5, budget=TokenBucketBudget.aws_2026(), base=0.05
    )
    assert outcome == "ok"
    assert quota == [486, 472, 486]
    assert delays == pytest.approx([0.05, 0.1])


def test_2026_throttling_costs_five_and_waits_from_one_second() -> None:
    outcome, quota, delays = run(
        [400, 400, 200],
        attempts=5,
        budget=TokenBucketBudget.aws_2026(),
        base=0.05,
        code="ThrottlingException",
        throttling_base=1.0,
    )
    assert outcome == "ok"
    assert quota == [495, 490, 495]
    assert delays == [1.0, 2.0]


def test_2026_dynamodb_profile() -> None:
    """DynamoDB: 4 attempts, 25 ms base."""
    outcome, quota, delays = run(
        [500] * 4, attempts=4, budget=TokenBucketBudget.aws_2026(), base=0.025
    )
    assert isinstance(outcome, ServiceError)
    assert delays == pytest.approx([0.025, 0.05, 0.1])
    assert quota == [486, 472, 458, 458]


def test_2026_cap_applies_before_jitter() -> None:
    randoms = iter([1.0, 1.0, 0.5])
    budget = TokenBucketBudget.aws_2026()
    clock = FakeClock()
    retry = Retry(
        on=ServiceError,
        attempts=4,
        budget=budget,
        clock=clock,
        backoff=Backoff(base=0.05, cap=0.1, random=lambda: next(randoms)),
    )
    with pytest.raises(ServiceError):
        retry.call(Script([500] * 4, budget))
    assert clock.sleeps == pytest.approx([0.05, 0.1, 0.05])  # jittered below the cap
