"""Stateful tests: each budget against a simple model, under any sequence of events."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from stormproof import AdaptiveThrottle, RatioBudget, RetryThrottle, TokenBucketBudget
from stormproof.testing import FakeClock

error_classes = st.sampled_from(["transient", "timeout", "throttling"])


class TokenBucketMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.budget = TokenBucketBudget(
            capacity=50, retry_cost=5, timeout_cost=10, throttling_cost=1, success_reward=1
        )
        self.model = 50
        self.receipts: list[object] = []

    @rule(error_class=error_classes)
    def try_retry(self, error_class: str) -> None:
        cost = {"transient": 5, "timeout": 10, "throttling": 1}[error_class]
        receipt = self.budget.try_retry(error_class)  # type: ignore[arg-type]
        if self.model >= cost:
            assert receipt == cost
            self.model -= cost
            self.receipts.append(receipt)
        else:
            assert receipt is None

    @rule()
    def first_attempt_success(self) -> None:
        self.budget.on_success(None)
        self.model = min(50, self.model + 1)

    @precondition(lambda self: self.receipts)
    @rule(cancel=st.booleans())
    def settle_a_retry(self, cancel: bool) -> None:
        receipt = self.receipts.pop()
        if cancel:
            self.budget.cancel_retry(receipt)
        else:
            self.budget.on_success(receipt)
        assert isinstance(receipt, (int, float))
        self.model = min(50, self.model + receipt)

    @invariant()
    def matches_the_model_and_stays_in_bounds(self) -> None:
        assert self.budget.available == self.model
        assert 0 <= self.budget.available <= self.budget.capacity


class RetryThrottleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.throttle = RetryThrottle(max_tokens=10, token_ratio=0.1)
        self.milli = 10_000

    @rule(error_class=st.none() | error_classes)
    def failure(self, error_class: str | None) -> None:
        self.throttle.on_failure(error_class)  # type: ignore[arg-type]
        if error_class is not None:
            self.milli = max(0, self.milli - 1000)

    @rule()
    def success(self) -> None:
        self.throttle.on_success(None)
        self.milli = min(10_000, self.milli + 100)

    @invariant()
    def matches_the_model(self) -> None:
        assert self.throttle.available == self.milli / 1000
        assert 0 <= self.throttle.available <= 10
        allowed = self.throttle.try_retry("transient") is not None
        assert allowed == (self.milli > 5000)


class WindowedMachine(RuleBasedStateMachine):
    """Ratio budget and adaptive throttle: bounds hold whatever the traffic and time."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.ratio = RatioBudget(ratio=0.2, min_per_second=1, window=10, clock=self.clock)
        self.throttle = AdaptiveThrottle(
            k=2, window=60, max_reject=0.8, minimum_requests=5, clock=self.clock, random=lambda: 0.5
        )
        self.granted: list[object] = []

    @rule(seconds=st.floats(min_value=0, max_value=30))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def request(self) -> None:
        self.ratio.on_request()
        try:
            self.throttle.on_request()
        except Exception:
            pass

    @rule()
    def retry(self) -> None:
        receipt = self.ratio.try_retry("transient")
        if receipt is not None:
            self.granted.append(receipt)
        self.throttle.try_retry("transient")

    @precondition(lambda self: self.granted)
    @rule()
    def cancel(self) -> None:
        self.ratio.cancel_retry(self.granted.pop())

    @rule(ok=st.booleans())
    def outcome(self, ok: bool) -> None:
        if ok:
            self.throttle.on_success(None)
        else:
            self.throttle.on_failure("transient")

    @invariant()
    def bounded(self) -> None:
        assert self.ratio.available >= 0
        assert 0.0 <= self.throttle.rejection_probability <= 0.8


TestTokenBucket = TokenBucketMachine.TestCase
TestRetryThrottle = RetryThrottleMachine.TestCase
TestWindowed = WindowedMachine.TestCase
