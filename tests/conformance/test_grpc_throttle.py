"""gRPC A6 retry throttling arithmetic, through Retry."""

from __future__ import annotations

import pytest

from stormproof import Retry, RetryThrottle
from stormproof.testing import FakeClock


class Unavailable(Exception):
    pass


def test_retries_stop_at_half_the_tokens_and_resume_above() -> None:
    throttle = RetryThrottle(max_tokens=10, token_ratio=0.1)
    retry = Retry(on=Unavailable, attempts=5, budget=throttle, clock=FakeClock())
    calls = []

    def down() -> None:
        calls.append(1)
        raise Unavailable

    # Each failed attempt takes a token: 10 -> 9 -> 8 -> 7 -> 6 -> 5; at 5 (= 10/2),
    # the fifth attempt's failure finds no room: retries stop.
    with pytest.raises(Unavailable):
        retry.call(down)
    assert len(calls) == 5
    assert throttle.available == 5
    calls.clear()
    with pytest.raises(Unavailable):
        retry.call(down)
    assert len(calls) == 1  # throttled: a single attempt
    assert throttle.available == 4
    # The failure is counted before the decision, as in gRPC's RecordFailure: from 5.1,
    # a failure leaves 4.1 <= 5, so no retry.
    for _ in range(11):
        retry.call(lambda: None)
    assert throttle.available == pytest.approx(5.1)
    calls.clear()
    with pytest.raises(Unavailable):
        retry.call(down)
    assert len(calls) == 1
    # 20 successes lift 4.1 to 6.1: one failure leaves 5.1 > 5, so one retry is made.
    for _ in range(20):
        retry.call(lambda: None)
    calls.clear()
    with pytest.raises(Unavailable):
        retry.call(down)
    assert len(calls) == 2
    assert throttle.available == pytest.approx(4.1)
