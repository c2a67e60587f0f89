"""Checked by mypy --strict (tests/unit/test_typing.py); never executed."""

from __future__ import annotations

from typing_extensions import assert_type

from stormproof import (
    Bulkhead,
    CircuitBreaker,
    Fallback,
    Hedge,
    Pipeline,
    Retry,
    Timeout,
    deadline,
    remaining,
)
from stormproof.breaker import BreakerState
from stormproof.clock import Deadline

breaker = CircuitBreaker("db")
pipeline = Pipeline(Fallback(None), Retry(on=ConnectionError), breaker, Bulkhead(4), Timeout(1))


@pipeline
def get(key: str) -> bytes:
    return key.encode()


@breaker
async def aget(key: str) -> int:
    return len(key)


assert_type(get("k"), bytes)
assert_type(pipeline.call(get, "k"), bytes)
assert_type(breaker.state, BreakerState)
assert_type(remaining(), "float | None")
assert_type(breaker.acquire(), int)


async def use() -> None:
    assert_type(await aget("k"), int)
    assert_type(await Hedge(0.05).acall(aget, "k"), int)
    with deadline(2.0) as active:
        assert_type(active, Deadline)


get(1)  # type: ignore[arg-type]
