"""A retry budget stopping a retry storm, in virtual time.

80 requests per second go to a dependency that can serve 100 attempts per second.
From t=30 s to t=120 s its DNS record is empty: every attempt fails. Each strategy
below is a real ``stormproof.Retry``, driven through its sans-I/O state machine
(``retry.begin`` / ``state.on_exception``) on a virtual clock, so the whole run takes
well under a second and waits for nothing.

Run:  python examples/retry_storm.py
"""

from __future__ import annotations

import heapq
import random
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from stormproof import (
    Backoff,
    Rejected,
    Retry,
    TokenBucketBudget,
)
from stormproof.retry import RetryState

RATE = 80.0  # requests per second offered by the callers (open loop)
CAPACITY = 100  # attempts per second the dependency can serve
OUTAGE = (30.0, 120.0)  # the DNS record is empty during this window
DURATION = 180.0
SEED = 7


class VirtualClock:
    """The simulation's clock: time moves only when the event loop says so."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float, /) -> None:
        raise RuntimeError("the simulation never sleeps")

    async def asleep(self, seconds: float, /) -> None:
        raise RuntimeError("the simulation never sleeps")


@dataclass
class Tally:
    attempts: Counter[int] = field(default_factory=Counter)  # per second, at the dependency
    requests: Counter[int] = field(default_factory=Counter)  # per second, by the callers
    successes: Counter[int] = field(default_factory=Counter)  # per second of arrival


def dependency(now: float, tally: Tally) -> None:
    """One attempt: fails during the outage, and when over capacity."""
    second = int(now)
    tally.attempts[second] += 1
    if OUTAGE[0] <= now < OUTAGE[1]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    if tally.attempts[second] > CAPACITY:
        raise ConnectionError("503 Service Unavailable: overloaded")


def simulate(make_retry: Callable[[VirtualClock, random.Random], Retry]) -> Tally:
    clock = VirtualClock()
    rng = random.Random(SEED)
    retry = make_retry(clock, random.Random(SEED + 1))
    tally = Tally()
    events: list[tuple[float, int, float, RetryState | None]] = []
    sequence = 0
    t = rng.expovariate(RATE)
    while t < DURATION:  # arrivals: (time, tie-breaker, arrival time, state)
        events.append((t, sequence, t, None))
        sequence += 1
        t += rng.expovariate(RATE)
    heapq.heapify(events)
    while events:
        now, _, arrived, state = heapq.heappop(events)
        clock.t = now
        if state is None:
            tally.requests[int(arrived)] += 1
            try:
                state = retry.begin(now)
            except Rejected:  # shed locally: never reached the dependency
                continue
        try:
            dependency(now, tally)
        except OSError as error:
            delay = state.on_exception(error, now)
            if delay is not None:
                sequence += 1
                heapq.heappush(events, (now + delay, sequence, arrived, state))
        else:
            state.on_success()
            tally.successes[int(arrived)] += 1
    return tally


def report(name: str, tally: Tally) -> str:
    start, end = (int(x) for x in OUTAGE)
    during = range(start, end)
    attempts_during = sum(tally.attempts[s] for s in during)
    requests_during = sum(tally.requests[s] for s in during)
    peak = max(tally.attempts.values()) / CAPACITY
    requests = sum(tally.requests.values())
    success = sum(tally.successes.values()) / requests
    baseline = sum(tally.successes[s] / tally.requests[s] for s in range(5, start)) / (start - 5)
    recovery = "never"
    for s in range(end, int(DURATION) - 10):
        window = range(s, s + 10)
        if all(tally.successes[w] >= 0.95 * baseline * tally.requests[w] for w in window):
            recovery = f"{s - end} s"
            break
    return (
        f"{name:<44} {attempts_during / requests_during:>8.2f}x {peak:>9.2f}x "
        f"{success:>8.1%} {recovery:>9}"
    )


def main() -> None:
    def no_jitter_ten_attempts(clock: VirtualClock, rng: random.Random) -> Retry:
        # botocore's legacy DynamoDB profile, as during the October 2025 outage.
        return Retry(
            on=OSError,
            attempts=10,
            clock=clock,
            backoff=Backoff(base=0.05, cap=20.0, jitter="none"),
        )

    def jittered(clock: VirtualClock, rng: random.Random) -> Retry:
        return Retry(
            on=OSError, attempts=3, clock=clock, backoff=Backoff(base=0.05, random=rng.random)
        )

    def with_budget(clock: VirtualClock, rng: random.Random) -> Retry:
        return Retry(
            on=OSError,
            attempts=3,
            clock=clock,
            backoff=Backoff(base=0.05, random=rng.random),
            budget=TokenBucketBudget.aws_2026(),
        )

    strategies = [
        ("10 attempts, 50 ms doubling, no jitter", no_jitter_ten_attempts),
        ("3 attempts, full jitter", jittered),
        ("3 attempts, full jitter + shared budget", with_budget),
    ]
    print(
        f"{RATE:g} requests/s offered to a dependency serving {CAPACITY} attempts/s; "
        f"DNS empty from t={OUTAGE[0]:g} s to t={OUTAGE[1]:g} s; {DURATION:g} s simulated.\n"
    )
    print(f"{'strategy':<44} {'amplif.':>9} {'peak load':>10} {'success':>8} {'recovery':>9}")
    print(f"{'':<44} {'(outage)':>9} {'/capacity':>10} {'(all)':>8} {'(after)':>9}")
    for name, make_retry in strategies:
        print(report(name, simulate(make_retry)))
    print(
        "\namplification: attempts at the dependency per request, during the outage.\n"
        "A shared budget keeps it near 1: retries stop once the budget is spent, and\n"
        "refill from successes once the dependency is back."
    )


if __name__ == "__main__":
    main()
