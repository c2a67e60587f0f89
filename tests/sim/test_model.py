from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Generator
from typing import Any

import pytest

from stormproof.sim import TIMED_OUT, Simulation, Within
from stormproof.sim._dns import ASK, HostCache, Resolver
from stormproof.sim._errors import NameNotResolved, ServiceThrottled
from stormproof.sim._load import ClosedLoop, KeySpace, OpenLoop, RequestMix
from stormproof.sim._series import Series
from stormproof.sim._service import Distribution, Job, Service, Slowdown


def service(sim: Simulation, **options: Any) -> Service:
    settings: dict[str, Any] = {
        "capacity": 1,
        "service_time": Distribution("constant", 1.0),
        "queue": 10,
        "slowdown": None,
        "drop_expired": False,
        "setup_time": 0.0,
        "error_rate": 0.0,
        "series": Series(1000),
    }
    settings.update(options)
    return Service(sim, "db", **settings)


def answer_times(
    sim: Simulation, svc: Service, count: int, *, at: float = 0.0, timeout: float = 1e9
) -> list[Any]:
    results: list[Any] = []

    def client(n: int) -> Generator[Any, Any, None]:
        answer = svc.submit(sim.now + timeout, setup=False)
        if isinstance(answer, ServiceThrottled):  # refused at once: a full queue
            results.append((n, "throttled", sim.now))
            return
        outcome = yield Within(answer, timeout)
        results.append((n, "timeout" if outcome is TIMED_OUT else "ok", sim.now))

    for n in range(count):
        sim.at(at, lambda _, n=n: sim.start(client(n)))
    return results


def test_capacity_queue_and_throttling() -> None:
    sim = Simulation()
    svc = service(sim, capacity=2, queue=2)
    results = answer_times(sim, svc, 5)
    sim.run(100)
    assert sorted(results) == [
        (0, "ok", 1.0),
        (1, "ok", 1.0),
        (2, "ok", 2.0),
        (3, "ok", 2.0),
        (4, "throttled", 0.0),
    ]


def test_a_service_answers_once_its_state_is_settled_in_the_order_it_settled_them() -> None:
    sim = Simulation()
    svc = service(sim, capacity=1, queue=10, drop_expired=True)
    log: list[tuple[float, str, str, int]] = []

    class Client(Job):
        def __init__(self, name: str, deadline: float) -> None:
            super().__init__(deadline, setup=False)
            self.name = name

        def reply(self, answer: Any) -> None:
            log.append((sim.now, self.name, type(answer).__name__, svc.in_system))
            if self.name == "first":  # sends its next request from its answer, at once
                svc.send(Client("again", 1e9))

    for name, deadline in (("first", 1e9), ("late", 0.5), ("next", 1e9)):
        svc.send(Client(name, deadline))
    sim.run(10)
    # At 1 s "first" is served: the service drops "late" (expired) and starts "next",
    # then answers, in that order; "again" finds "next" in service and waits its turn.
    assert log == [
        (1.0, "late", "ServiceThrottled", 1),
        (1.0, "first", "NoneType", 1),
        (2.0, "next", "NoneType", 1),
        (3.0, "again", "NoneType", 0),
    ]


def test_timed_out_clients_leave_work_behind() -> None:
    sim = Simulation()
    svc = service(sim, capacity=1, queue=100)
    results = answer_times(sim, svc, 3, timeout=1.5)
    sim.run(100)
    assert [r[1] for r in sorted(results)] == ["ok", "timeout", "timeout"]
    assert sum(svc._series.data["served:db"]) == 3  # the server did all three anyway
    assert sum(svc._series.data["wasted:db"]) == 2


def test_expired_requests_can_be_dropped() -> None:
    sim = Simulation()
    svc = service(sim, capacity=1, queue=100, drop_expired=True)
    answer_times(sim, svc, 3, timeout=0.5)
    sim.run(100)
    assert sum(svc._series.data["served:db"]) == 1


def test_partition_holds_requests_until_it_heals() -> None:
    sim = Simulation()
    svc = service(sim, capacity=10)
    svc.reachable = False
    results = answer_times(sim, svc, 3, timeout=2.0)
    sim.at(5.0, lambda _: svc.heal())
    sim.run(100)
    assert [r[1] for r in results] == ["timeout"] * 3
    assert sum(svc._series.data["offered:db"][5:6]) == 3  # they all arrive at the heal


@pytest.mark.parametrize(
    ("slowdown", "expected"),
    [
        (Slowdown("concurrency", above=2, factor=10), 10.0),
        (Slowdown("linear", above=2, factor=1.0), 1.5),
        (Slowdown("rate", above=2, factor=10), 10.0),
    ],
)
def test_slowdowns(slowdown: Slowdown, expected: float) -> None:
    sim = Simulation()
    svc = service(sim, capacity=10, slowdown=slowdown)
    results = answer_times(sim, svc, 3)
    sim.run(100)
    assert max(r[2] for r in results) == pytest.approx(expected)


def test_dns_cache_ttl_negative_ttl_and_capacity() -> None:
    sim = Simulation()
    resolver = Resolver(sim, capacity=1000, latency=0.01, series=Series(1000))
    cache = HostCache(sim, resolver, ttl=60, negative_ttl=5)
    outcomes: list[str] = []

    def lookup() -> Generator[Any, Any, None]:
        failure = cache.lookup("db.test")
        if failure is ASK:
            yield resolver.latency
            failure = cache.ask("db.test")
        if isinstance(failure, NameNotResolved):
            outcomes.append(f"failed {failure.errno}")
        else:
            outcomes.append("ok")

    def at(time: float) -> None:
        sim.at(time, lambda _: sim.start(lookup()))

    at(0)  # resolves, cached for 60 s
    sim.at(10, lambda _: resolver.broken.__setitem__("db.test", "empty"))
    at(30)  # still cached: ok
    at(61)  # expired: asks, "no address", cached 5 s
    at(62)
    sim.at(63, lambda _: resolver.broken.clear())
    at(64)  # negative answer still cached
    at(67)  # asks again: ok
    sim.run(100)
    assert outcomes == ["ok", "ok", "failed -5", "failed -5", "failed -5", "ok"]
    assert sum(resolver._series.data["offered:dns"]) == 3


def test_an_overloaded_resolver_answers_servfail() -> None:
    sim = Simulation()
    resolver = Resolver(sim, capacity=2, latency=0.0, series=Series(10))
    assert [resolver.answer("x") for _ in range(3)] == [None, None, "servfail"]


def test_zipf_keys() -> None:
    sim = Simulation(seed=3)
    keys = KeySpace(sim, 100, 1.0)
    counts = Counter(keys.sample() for _ in range(100_000))
    harmonic = sum(1 / rank for rank in range(1, 101))
    assert counts[0] / 100_000 == pytest.approx(1 / harmonic, rel=0.05)
    assert counts[0] > counts[1] > counts[9]
    uniform = KeySpace(sim, 10, 0.0)
    spread = Counter(uniform.sample() for _ in range(50_000))
    assert min(spread.values()) > 4500


def test_open_loop_rate() -> None:
    sim = Simulation(seed=5)
    arrivals = Counter[int]()
    asked = Counter[str]()
    requests = [0.0] * 201

    def at(instance: int) -> Callable[[str, int], None]:
        def arrive(op: str, key: int) -> None:
            arrivals.update([instance])
            asked.update([op])
            assert key == 0  # no key space: nothing drawn

        return arrive

    mix = RequestMix(sim, 0.0, None)
    assert mix.fixed
    OpenLoop(sim, 200, [at(i) for i in range(4)], mix, requests, until=100)
    sim.run(200)
    assert sum(arrivals.values()) == pytest.approx(20_000, rel=0.03)
    assert set(arrivals) == {0, 1, 2, 3}
    assert asked == {"write": sum(arrivals.values())}
    assert sum(requests) == sum(arrivals.values())  # counted in the second they arrived
    assert requests[100:] == [0.0] * 101


def test_request_mix_draws_operations_and_keys() -> None:
    sim = Simulation(seed=5)
    mix = RequestMix(sim, 0.8, KeySpace(sim, 10, 0.0))
    assert not mix.fixed
    drawn = [mix.draw() for _ in range(20_000)]
    reads = sum(1 for op, _ in drawn if op == "read")
    assert reads / 20_000 == pytest.approx(0.8, rel=0.03)
    assert {key for _, key in drawn} == set(range(10))
    assert RequestMix(sim, 1.0, None).draw() == ("read", 0)


def test_closed_loop_waits_for_each_answer() -> None:
    sim = Simulation(seed=5)
    started = Counter[int]()
    in_flight = [0, 0]  # now, most

    def request(instance: int) -> Generator[Any, Any, None]:
        started.update([instance])
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        yield 1.0  # every request takes 1 s
        in_flight[0] -= 1

    loop = ClosedLoop(sim, users=10, think_time=1.0, instances=5, request=request, until=1000)
    sim.run(1100)
    # Each user cycles in 2 s on average (1 s thinking, 1 s waiting): 5 requests/s.
    assert sum(started.values()) == pytest.approx(5000, rel=0.05)
    assert in_flight[1] <= 10
    assert set(started) == {0, 1, 2, 3, 4}
    assert loop.factor == 1.0


def test_closed_loop_factor_shortens_thinking() -> None:
    sim = Simulation(seed=5)
    count = [0]

    def request(instance: int) -> Generator[Any, Any, None]:
        count[0] += 1
        yield 0.0

    loop = ClosedLoop(sim, users=10, think_time=1.0, instances=1, request=request, until=2000)
    sim.run(1000)
    first = count[0]
    loop.factor = 2.0
    sim.run(2000)
    assert first == pytest.approx(10_000, rel=0.05)
    assert count[0] - first == pytest.approx(20_000, rel=0.05)
