"""FleetBudget on a MemoryBackend: options, the budget protocol, the lease, and what
happens while the backend is unreachable."""

from __future__ import annotations

import asyncio
import threading

import pytest

from stormproof import BudgetExhausted, ConfigError, Retry
from stormproof.budget import RetryBudget
from stormproof.fleet import FleetBudget, FleetBudgetOptions, MemoryBackend
from stormproof.testing import FakeClock


@pytest.fixture
def backend(clock: FakeClock) -> MemoryBackend:
    return MemoryBackend(clock=clock, flusher=False)


def test_it_is_a_retry_budget(backend: MemoryBackend) -> None:
    budget = FleetBudget(backend, name="orders")
    assert isinstance(budget, RetryBudget)
    assert budget.name == "orders"
    assert budget.options.lease == 10
    copy = budget.replace(lease=3)
    assert copy.options.lease == 3
    assert FleetBudget.from_options(copy.options).options == copy.options


@pytest.mark.parametrize(
    ("changes", "parameter"),
    [
        ({"backend": "redis://x"}, "backend"),
        ({"name": ""}, "name"),
        ({"name": "a{b"}, "name"),
        ({"capacity": -1}, "capacity"),
        ({"retry_cost": float("nan")}, "retry_cost"),
        ({"throttling_cost": -1}, "throttling_cost"),
        ({"refund": 1}, "refund"),
        ({"lease": 0}, "lease"),
        ({"lease": 2.5}, "lease"),
        ({"flush_interval": 0}, "flush_interval"),
        ({"lease_ttl": 1.0}, "lease_ttl"),  # below 2 x flush_interval
    ],
)
def test_options_are_validated(
    backend: MemoryBackend, changes: dict[str, object], parameter: str
) -> None:
    options: dict[str, object] = {"backend": backend, "name": "orders", **changes}
    with pytest.raises(ConfigError) as raised:
        FleetBudgetOptions(**options)  # type: ignore[arg-type]
    assert raised.value.parameter == parameter


def test_costs_and_refusals_like_a_token_bucket(backend: MemoryBackend) -> None:
    budget = FleetBudget(backend, name="orders", capacity=30, retry_cost=5, timeout_cost=10)
    backend.flush()
    assert budget.leased == 30  # a lease of 10 retries: all of it
    assert budget.cost("timeout") == 10
    assert budget.try_retry("timeout") == 10
    assert budget.try_retry("throttling") == 5
    receipt = budget.acquire("transient")
    budget.cancel_retry(receipt)
    assert budget.leased == 15
    budget.on_success(budget.try_retry("timeout"))  # a success after a retry: refunded
    assert budget.leased == 15
    assert budget.try_retry("timeout") == 10
    assert budget.try_retry("timeout") is None  # 5 left
    with pytest.raises(BudgetExhausted) as raised:
        budget.acquire("timeout")
    assert raised.value.policy == "orders"


def test_a_new_budget_holds_nothing_until_its_first_exchange(backend: MemoryBackend) -> None:
    budget = FleetBudget(backend, name="orders")
    assert budget.try_retry("transient") is None
    assert budget.available == 0
    backend.flush()
    assert budget.try_retry("transient") == 5


def test_while_unreachable_the_lease_is_a_local_bucket(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    backend.unreachable = True
    budget = FleetBudget(backend, name="orders", capacity=500, retry_cost=5, lease=2)
    assert backend.flush() == 1
    assert backend.degraded
    assert budget.leased == 10  # never reached the fleet: full
    retry = Retry(on=ConnectionError, attempts=5, budget=budget, clock=FakeClock())
    attempts = []

    def down() -> None:
        attempts.append(1)
        raise ConnectionError("down")

    for _ in range(5):
        with pytest.raises(ConnectionError):
            retry.call(down)
    assert len(attempts) == 5 + 2  # the local bucket paid for 2 retries, no more
    for _ in range(7):
        assert retry.call(lambda: "ok") == "ok"
    assert budget.leased == 7  # its own rewards, not the fleet's
    backend.unreachable = False
    clock.advance(60.0)
    assert backend.flush(only_due=True) == 1
    assert not backend.degraded
    assert budget.leased == 10
    assert backend._read("orders", "bucket") == {
        "tokens": 490,
        "unit": 1,
        "leased": 10,
        "updated_ms": 60_000,
    }


def test_the_flusher_thread_takes_the_lease_and_stops_on_close() -> None:
    backend = MemoryBackend()
    done = threading.Event()
    original = backend._run

    def run(*args: object) -> list[int]:
        reply = original(*args)  # type: ignore[arg-type]
        done.set()
        return reply

    backend._run = run  # type: ignore[method-assign, assignment]
    budget = FleetBudget(backend, name="orders", lease=1)
    assert done.wait(timeout=10)
    assert budget.leased == 10

    async def main() -> str:
        retry = Retry(on=ConnectionError, budget=budget)
        return await retry.acall(ok)

    assert asyncio.run(main()) == "ok"
    backend.close()
    assert backend._thread is not None
    assert not backend._thread.is_alive()
    assert budget.leased == 0  # given back
    with pytest.raises(ConfigError):
        FleetBudget(backend, name="late")


async def ok() -> str:
    return "ok"


def test_a_forked_child_holds_nothing_of_its_parents_lease(backend: MemoryBackend) -> None:
    budget = FleetBudget(backend, name="orders")
    backend.flush()
    assert budget.leased == 50
    backend._forked()  # what os.register_at_fork runs in a child
    assert budget.leased == 0
    assert budget._fleet_news


def test_repr_names_the_state(backend: MemoryBackend) -> None:
    budget = FleetBudget(backend, name="orders", lease=1)
    backend.flush()
    assert "name='orders'" in repr(budget)
    assert "leased=10" in repr(budget)
    assert "fleet=490" in repr(budget)
