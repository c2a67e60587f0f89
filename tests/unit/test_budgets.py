from __future__ import annotations

import math
from typing import Any

import pytest

from stormproof import (
    AdaptiveThrottle,
    BudgetExhausted,
    ConfigError,
    RatioBudget,
    RetryThrottle,
    Throttled,
    TokenBucketBudget,
)
from stormproof.budget import RetryBudget
from stormproof.events import Recorder, ThrottleRejected
from stormproof.testing import FakeClock

# -- TokenBucketBudget -----------------------------------------------------------


def test_token_bucket_takes_costs_by_error_class() -> None:
    budget = TokenBucketBudget(capacity=100, retry_cost=5, timeout_cost=10, throttling_cost=1)
    assert budget.try_retry("transient") == 5
    assert budget.try_retry("timeout") == 10
    assert budget.try_retry("throttling") == 1
    assert budget.available == 84


def test_token_bucket_throttling_costs_like_any_error_by_default() -> None:
    assert TokenBucketBudget(retry_cost=7).cost("throttling") == 7


def test_token_bucket_refuses_when_short() -> None:
    budget = TokenBucketBudget(capacity=12, retry_cost=5)
    assert budget.try_retry("transient") is not None
    assert budget.try_retry("transient") is not None
    assert budget.try_retry("transient") is None
    assert budget.available == 2


def test_token_bucket_success_rewards_and_refunds() -> None:
    budget = TokenBucketBudget(capacity=100, retry_cost=5, success_reward=1)
    receipt = budget.try_retry("transient")
    budget.try_retry("transient")
    assert budget.available == 90
    budget.on_success(None)  # first-attempt success
    assert budget.available == 91
    budget.on_success(receipt)  # success after retries: refund the last cost
    assert budget.available == 96
    for _ in range(10):
        budget.on_success(None)
    assert budget.available == 100  # never above capacity


def test_token_bucket_without_refund_rewards_every_success_alike() -> None:
    budget = TokenBucketBudget(capacity=10, retry_cost=1, success_reward=0.1, refund=False)
    receipt = budget.try_retry("transient")
    budget.try_retry("transient")
    assert budget.available == 8
    budget.on_success(receipt)  # a success after retries: the reward, not the cost back
    assert budget.available == 8.1
    budget.on_success(None)
    assert budget.available == 8.2


def test_token_bucket_arithmetic_is_exact_so_earned_retries_are_granted() -> None:
    # docs/budgets.md's plain bucket: drained, then fed ten successes of 0.1.
    budget = TokenBucketBudget(capacity=10, retry_cost=1, success_reward=0.1, refund=False)
    while budget.try_retry("transient") is not None:
        pass
    assert budget.available == 0
    for _ in range(10):
        budget.on_success(None)
    assert budget.available == 1.0
    assert budget.try_retry("transient") is not None  # the retry they paid for
    assert budget.try_retry("transient") is None


def test_token_bucket_stays_exact_over_a_long_run() -> None:
    budget = TokenBucketBudget(capacity=3, retry_cost=0.3, success_reward=0.1, refund=False)
    for _ in range(100_000):
        assert budget.try_retry("transient") is not None
        for _ in range(3):
            budget.on_success(None)
    assert budget.available == 3.0


def test_ratio_budget_arithmetic_is_exact() -> None:
    clock = FakeClock()
    # A floor of 0.3 x 10 s = 3 retries exactly, and 0.1 per request: 10 requests
    # earn exactly one more (0.1 + 0.2 != 0.3 in floating point; here it is).
    budget = RatioBudget(ratio=0.1, min_per_second=0.3, window=10, clock=clock)
    assert budget.available == 3.0
    for _ in range(10):
        budget.on_request()
    assert budget.available == 4.0
    granted = 0
    while budget.try_retry("transient") is not None:
        granted += 1
    assert granted == 4


def test_token_bucket_refund_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match="refund"):
        TokenBucketBudget(refund="no")  # type: ignore[arg-type]


def test_token_bucket_zero_capacity_means_no_retries() -> None:
    budget = TokenBucketBudget(capacity=0)
    assert budget.try_retry("transient") is None


def test_token_bucket_presets() -> None:
    standard = TokenBucketBudget.aws_standard()
    assert (
        standard.capacity,
        standard.cost("transient"),
        standard.cost("timeout"),
        standard.cost("throttling"),
    ) == (500, 5, 10, 5)
    new = TokenBucketBudget.aws_2026(name="dynamodb")
    assert (new.cost("transient"), new.cost("timeout"), new.cost("throttling")) == (14, 14, 5)
    assert new.name == "dynamodb"


def test_acquire_raises_a_fresh_budget_exhausted() -> None:
    budget = TokenBucketBudget(capacity=5, retry_cost=5, name="s3")
    assert budget.acquire() == 5
    errors = []
    for _ in range(2):
        with pytest.raises(BudgetExhausted) as caught:
            budget.acquire()
        errors.append(caught.value)
    assert errors[0] is not errors[1]
    assert errors[0].policy == "s3"


def test_token_bucket_repr_shows_state() -> None:
    assert "available=500" in repr(TokenBucketBudget())


# -- RatioBudget -----------------------------------------------------------------


def test_ratio_budget_floor_then_ratio() -> None:
    clock = FakeClock()
    budget = RatioBudget(ratio=0.1, min_per_second=1, window=10, clock=clock)
    granted = sum(budget.try_retry("transient") is not None for _ in range(50))
    assert granted == 10  # the floor: 1 per second over 10 seconds
    for _ in range(100):
        budget.on_request()
    granted = sum(budget.try_retry("transient") is not None for _ in range(50))
    assert granted == 10  # 10% of 100 requests


def test_ratio_budget_forgets_old_traffic() -> None:
    clock = FakeClock()
    budget = RatioBudget(ratio=0.5, min_per_second=0, window=10, clock=clock)
    for _ in range(20):
        budget.on_request()
    assert budget.available == 10
    assert budget.try_retry("transient") is not None
    assert budget.available == 9
    clock.advance(10.5)
    assert budget.available == 0
    assert budget.try_retry("transient") is None
    with pytest.raises(BudgetExhausted) as caught:
        budget.acquire()
    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 1.0


def test_ratio_budget_cancel_gives_back() -> None:
    budget = RatioBudget(ratio=0, min_per_second=0.1, window=10, clock=FakeClock())
    receipt = budget.try_retry("transient")
    assert receipt is not None
    assert budget.try_retry("transient") is None
    budget.cancel_retry(receipt)
    assert budget.try_retry("transient") is not None


# -- RetryThrottle (gRPC A6) -----------------------------------------------------


def test_retry_throttle_arithmetic() -> None:
    throttle = RetryThrottle(max_tokens=10, token_ratio=0.1)
    assert throttle.threshold == 5
    for _ in range(4):
        throttle.on_failure("transient")
    assert throttle.available == 6
    assert throttle.try_retry("transient") is not None
    throttle.on_failure("transient")
    assert throttle.available == 5
    assert throttle.throttling
    assert throttle.try_retry("transient") is None  # at the threshold: no retries
    throttle.on_success(None)
    assert throttle.available == 5.1
    assert throttle.try_retry("transient") is not None


def test_retry_throttle_is_exact_over_many_small_increments() -> None:
    throttle = RetryThrottle(max_tokens=10, token_ratio=0.1)
    for _ in range(50):
        throttle.on_failure("transient")
    assert throttle.available == 0  # never below zero
    for _ in range(50):
        throttle.on_success(None)
    assert throttle.available == 5.0  # exactly, not 4.999999
    assert throttle.try_retry("transient") is None
    throttle.on_success(None)
    assert throttle.try_retry("transient") is not None
    for _ in range(1000):
        throttle.on_success(None)
    assert throttle.available == 10  # never above max_tokens


def test_retry_throttle_ignores_non_retryable_failures() -> None:
    throttle = RetryThrottle()
    throttle.on_failure(None)
    assert throttle.available == 10


# -- AdaptiveThrottle (SRE book) -------------------------------------------------


def test_adaptive_throttle_probability_follows_the_formula() -> None:
    clock = FakeClock()
    throttle = AdaptiveThrottle(
        k=2, minimum_requests=0, max_reject=1.0, clock=clock, random=lambda: 0.999
    )
    for _ in range(100):
        throttle.on_request()
    for _ in range(40):
        throttle.on_success(None)
    assert throttle.rejection_probability == pytest.approx((100 - 2 * 40) / 101)
    for _ in range(10):
        throttle.on_success(None)
    assert throttle.rejection_probability == 0.0


def test_adaptive_throttle_caps_and_needs_a_minimum() -> None:
    clock = FakeClock()
    throttle = AdaptiveThrottle(
        minimum_requests=10, max_reject=0.9, clock=clock, random=lambda: 0.999
    )
    for _ in range(9):
        throttle.on_request()
    assert throttle.rejection_probability == 0.0
    for _ in range(1000):
        throttle.on_request()
    assert throttle.rejection_probability == 0.9


def test_adaptive_throttle_rejects_locally_and_emits() -> None:
    clock = FakeClock()
    recorder = Recorder()
    throttle = AdaptiveThrottle(
        minimum_requests=1, clock=clock, random=lambda: 0.0, name="ddb", listeners=[recorder]
    )
    throttle.on_request()
    with pytest.raises(Throttled) as caught:
        throttle.on_request()
    assert caught.value.policy == "ddb"
    assert throttle.try_retry("transient") is None
    events = recorder.of(ThrottleRejected)
    assert [e.retry for e in events] == [False, True]
    assert events[0].probability == pytest.approx(1 / 2)


def test_adaptive_throttle_recovers_when_the_window_passes() -> None:
    clock = FakeClock()
    throttle = AdaptiveThrottle(window=120, minimum_requests=1, clock=clock, random=lambda: 0.999)
    for _ in range(100):
        throttle.on_request()
        throttle.on_failure("transient")
    assert throttle.rejection_probability == 0.9
    clock.advance(121)
    assert throttle.rejection_probability == 0.0


def test_adaptive_throttle_counts_non_retryable_errors_as_accepted() -> None:
    throttle = AdaptiveThrottle(minimum_requests=0, clock=FakeClock(), random=lambda: 0.999)
    for _ in range(10):
        throttle.on_request()
        throttle.on_failure(None)
    assert throttle.rejection_probability == 0.0


def test_adaptive_throttle_cancel_uncounts_the_request() -> None:
    throttle = AdaptiveThrottle(minimum_requests=0, clock=FakeClock(), random=lambda: 0.999)
    receipt = throttle.try_retry("transient")
    assert receipt is not None
    throttle.cancel_retry(receipt)
    assert throttle.rejection_probability == 0.0


# -- the protocol and validation -------------------------------------------------


@pytest.mark.parametrize(
    "budget",
    [TokenBucketBudget(), RatioBudget(), RetryThrottle(), AdaptiveThrottle()],
    ids=lambda b: type(b).__name__,
)
def test_builtins_implement_the_protocol(budget: Any) -> None:
    assert isinstance(budget, RetryBudget)
    assert type(budget).__name__ in repr(budget)


@pytest.mark.parametrize(
    ("factory", "kwargs", "message"),
    [
        (TokenBucketBudget, {"capacity": -1}, "capacity must be >= 0, got -1"),
        (TokenBucketBudget, {"capacity": math.inf}, "capacity must be a finite number"),
        (TokenBucketBudget, {"retry_cost": -5}, "retry_cost must be >= 0, got -5"),
        (TokenBucketBudget, {"timeout_cost": "10"}, "timeout_cost must be a finite number"),
        (TokenBucketBudget, {"throttling_cost": -1}, "throttling_cost must be >= 0, got -1"),
        (TokenBucketBudget, {"success_reward": math.nan}, "success_reward must be a finite"),
        (TokenBucketBudget, {"name": ""}, "name must be a non-empty string"),
        (RatioBudget, {"ratio": -0.1}, "ratio must be in [0, 1000], got -0.1"),
        (RatioBudget, {"min_per_second": -1}, "min_per_second must be in [0, 1000000000], got -1"),
        (RatioBudget, {"window": 0}, "window must be in [0.001, 1000000000], got 0"),
        (RatioBudget, {"window": 1e-305}, "window must be in [0.001, 1000000000], got 1e-305"),
        (RetryThrottle, {"max_tokens": 0.0004}, "max_tokens must be at least 0.001"),
        (RatioBudget, {"clock": 1}, "clock must be an object with now()"),
        (RetryThrottle, {"max_tokens": 0}, "max_tokens must be"),
        (RetryThrottle, {"token_ratio": 0}, "token_ratio must be"),
        (RetryThrottle, {"token_ratio": 0.0001}, "token_ratio must be at least 0.001"),
        (AdaptiveThrottle, {"k": 0.5}, "k must be >= 1, got 0.5"),
        (AdaptiveThrottle, {"window": -1}, "window must be >= 0.001, got -1"),
        (AdaptiveThrottle, {"max_reject": 1.5}, "max_reject must be in [0, 1], got 1.5"),
        (AdaptiveThrottle, {"minimum_requests": -1}, "minimum_requests must be an integer >= 0"),
        (AdaptiveThrottle, {"random": "r"}, "random must be a zero-argument callable"),
    ],
)
def test_bad_options(factory: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        factory(**kwargs)
    assert str(caught.value).startswith(message)
