"""Whatever the dependency does, Retry stays within its bounds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stormproof import Backoff, Retry, TokenBucketBudget
from stormproof.testing import FakeClock


@given(
    outcomes=st.lists(st.sampled_from(["fail", "timeout", "ok"]), min_size=1, max_size=30),
    attempts=st.integers(min_value=1, max_value=12),
    deadline=st.none() | st.floats(min_value=0.01, max_value=30.0),
    attempt_duration=st.floats(min_value=0.0, max_value=2.0),
    capacity=st.integers(min_value=0, max_value=60),
    r=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_retry_is_bounded(
    outcomes: list[str],
    attempts: int,
    deadline: float | None,
    attempt_duration: float,
    capacity: int,
    r: float,
) -> None:
    clock = FakeClock()
    budget = TokenBucketBudget(capacity=capacity, retry_cost=5, timeout_cost=10)
    backoff = Backoff(base=0.1, cap=5.0, random=lambda: r)
    retry = Retry(
        on=(ConnectionError, TimeoutError),
        attempts=attempts,
        deadline=deadline,
        budget=budget,
        backoff=backoff,
        clock=clock,
    )
    script = iter(outcomes)
    made = []

    def fn() -> str:
        made.append(clock.now())
        clock.advance(attempt_duration)
        outcome = next(script, "fail")
        if outcome == "fail":
            raise ConnectionError
        if outcome == "timeout":
            raise TimeoutError
        return "ok"

    try:
        retry.call(fn)
    except (ConnectionError, TimeoutError):
        pass
    assert 1 <= len(made) <= attempts
    assert len(clock.sleeps) == len(made) - 1
    assert all(0.0 <= s <= 5.0 for s in clock.sleeps)
    if deadline is not None:
        # No retry starts unless its backoff ends within the deadline.
        assert all(start <= deadline for start in made)
    assert 0 <= budget.available <= capacity
    # Retries made cost at least 5 each, out of what the bucket held.
    assert (len(made) - 1) * 5 <= capacity
