"""Checked by mypy --strict (tests/unit/test_typing.py); never executed."""

from __future__ import annotations

from typing_extensions import assert_type

import stormproof
from stormproof import Backoff, Retry, TokenBucketBudget
from stormproof.budget import RetryBudget
from stormproof.classify import ErrorClass, classify
from stormproof.testing import FakeClock

retry = Retry(on=ConnectionError, budget=TokenBucketBudget(), clock=FakeClock())


@retry
def fetch(key: str, *, timeout: float = 1.0) -> bytes:
    return key.encode()


@retry
async def afetch(key: str) -> int:
    return len(key)


assert_type(fetch("k"), bytes)
assert_type(fetch("k", timeout=2.0), bytes)
assert_type(retry.call(fetch, "k"), bytes)


async def use_acall() -> None:
    assert_type(await afetch("k"), int)
    assert_type(await retry.acall(afetch, "k"), int)
    async for attempt in retry:
        async with attempt:
            assert_type(attempt.number, int)


for attempt in retry:
    with attempt:
        assert_type(attempt.number, int)

budget: RetryBudget = stormproof.RatioBudget()
budget = stormproof.AdaptiveThrottle()
budget = stormproof.RetryThrottle()
error_class: ErrorClass = classify(TimeoutError())
assert_type(Backoff().delay(1), float)

fetch(1)  # type: ignore[arg-type]
fetch("k", timeout="slow")  # type: ignore[arg-type]
retry.call(fetch, 1)  # type: ignore[arg-type]
