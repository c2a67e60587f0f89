"""Nothing of a failed call outlives it: no reference cycle through a policy's frames
keeps the origin's frame (and everything its locals hold) alive until the cyclic
garbage collector happens to run. Checked with the collector switched off."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stormproof import (
    Bulkhead,
    Cache,
    CircuitBreaker,
    Failover,
    Fallback,
    Hedge,
    Pipeline,
    Retry,
    Timeout,
)
from stormproof.testing import FakeClock


class Payload:
    """Something large a failing call holds in a local variable."""


class Origin:
    """Fails with ``error`` each call, holding a Payload in its frame; remembers a weak
    reference to each Payload."""

    def __init__(self, error: type[Exception] = ConnectionError) -> None:
        self.error = error
        self.payloads: list[weakref.ref[Payload]] = []

    def __call__(self, *args: Any) -> Any:
        payload = Payload()
        self.payloads.append(weakref.ref(payload))
        raise self.error("failed")

    async def acall(self, *args: Any) -> Any:
        payload = Payload()
        self.payloads.append(weakref.ref(payload))
        await asyncio.sleep(0)
        raise self.error("failed")

    def alive(self) -> int:
        return sum(ref() is not None for ref in self.payloads)


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def regions(origin: Origin, asynchronous: bool) -> dict[str, Callable[..., Any]]:
    work = origin.acall if asynchronous else origin
    return {"us-east-1": work, "us-west-2": work}


# Each builds a policy (or a callable taking the function) on a fresh clock.
POLICIES: dict[str, Callable[[FakeClock], Any]] = {
    "Retry": lambda clock: Retry(on=ConnectionError, attempts=3, clock=clock),
    "CircuitBreaker": lambda clock: CircuitBreaker("db", clock=clock),
    "Bulkhead": lambda clock: Bulkhead(2, clock=clock),
    "Timeout": lambda clock: Timeout(5, clock=clock),
    "Timeout on the real clock": lambda clock: Timeout(5),
    "Fallback not matching": lambda clock: Fallback("x", on=KeyError, clock=clock),
    "Fallback answering": lambda clock: Fallback("x", clock=clock),
    "Cache": lambda clock: Cache(10, clock=clock),
    "Cache with a stale entry": lambda clock: Cache(
        10, stale_ttl=100, key=lambda key: key, clock=clock
    ),
    "Cache with negative caching": lambda clock: Cache(
        10, negative_ttl=5, negative_on=ConnectionError, clock=clock
    ),
    "Pipeline": lambda clock: Pipeline(
        Fallback("x", on=KeyError),
        Cache(10, clock=clock),
        Timeout(5, clock=clock),
        Retry(on=ConnectionError, attempts=2, clock=clock),
        CircuitBreaker("db", clock=clock),
        Bulkhead(2, clock=clock),
    ),
}


def _sync(policy: Any, origin: Origin) -> None:
    try:
        policy.call(origin, "k")
    except Exception:
        pass


async def _async(policy: Any, origin: Origin) -> None:
    try:
        await policy.acall(origin.acall, "k")
    except Exception:
        pass


@pytest.mark.usefixtures("no_collector")
@pytest.mark.parametrize("name", [name for name in POLICIES if "real clock" not in name])
def test_a_failed_sync_call_leaves_nothing_behind(name: str) -> None:
    clock = FakeClock()
    policy = POLICIES[name](clock)
    origin = Origin()
    if name == "Cache with a stale entry":
        policy.call(lambda key: "old", "k")
        clock.advance(11)
        policy.call(origin, "k")  # served stale
    _sync(policy, origin)
    _sync(policy, origin)
    assert origin.payloads
    assert origin.alive() == 0


@pytest.mark.usefixtures("no_collector")
@pytest.mark.parametrize("name", POLICIES)
def test_a_failed_async_call_leaves_nothing_behind(name: str) -> None:
    clock = FakeClock()
    policy = POLICIES[name](clock)
    origin = Origin()

    async def old(key: str) -> str:
        return "old"

    async def main() -> None:
        if name == "Cache with a stale entry":
            await policy.acall(old, "k")
            clock.advance(11)
        await _async(policy, origin)
        await _async(policy, origin)

    asyncio.run(main())
    assert origin.payloads
    assert origin.alive() == 0


@pytest.mark.usefixtures("no_collector")
def test_coalesced_waiters_of_a_failed_call_leave_nothing_behind() -> None:
    cache = Cache(10)
    origin = Origin()

    async def main() -> None:
        await asyncio.gather(*(_async(cache, origin) for _ in range(10)))

    asyncio.run(main())
    assert len(origin.payloads) == 1
    assert origin.alive() == 0


@pytest.mark.usefixtures("no_collector")
def test_a_hedged_call_whose_attempts_all_fail_leaves_nothing_behind() -> None:
    origin = Origin()
    hedge = Hedge(0.05, max_hedges=2, clock=FakeClock())
    asyncio.run(_async(hedge, origin))
    assert len(origin.payloads) == 3
    assert origin.alive() == 0


@pytest.mark.usefixtures("no_collector")
@pytest.mark.parametrize("error", [ConnectionError, KeyError], ids=["regional", "not regional"])
def test_a_failed_failover_call_leaves_nothing_behind(error: type[Exception]) -> None:
    origin = Origin(error)
    sync = Failover(regions(origin, asynchronous=False), clock=FakeClock())
    for _ in range(2):
        try:
            sync("k")
        except Exception:
            pass
    asynchronous = Failover(regions(origin, asynchronous=True), clock=FakeClock())

    async def main() -> None:
        for _ in range(2):
            try:
                await asynchronous.acall("k")
            except Exception:
                pass

    asyncio.run(main())
    assert origin.payloads
    assert origin.alive() == 0
