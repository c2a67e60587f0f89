"""The models of a user's own service, each held to first principles: network round
trips, per-operation service times, a request-rate limit (token bucket), queue
disciplines (FIFO, LIFO, CoDel), dropping abandoned work, random outages, arrivals from
a trace, and the metrics that measure them (utilisation, queue length, wasted time)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stormproof.sim import Simulation, parse_scenario, run, strategies_for
from stormproof.sim._errors import ServiceThrottled
from stormproof.sim._fields import ScenarioError
from stormproof.sim._series import Names, Series
from stormproof.sim._service import Distribution, Job, Service, lognormal_sigma
from stormproof.sim._sweep_spec import with_value

GUARDED = """
[[strategy]]
name = "guarded"
summary = "a breaker: attempts run as processes"
breaker = { failure_rate = 0.5, window = 100, minimum_calls = 20, open_for = 30 }
"""


def scenario_text(
    region: str = "",
    *,
    clients: str = "",
    rate: float = 20.0,
    duration: float = 500.0,
    service: str = 'service_time = { distribution = "constant", mean = 0.01 }',
    extra: str = "",
) -> str:
    """A one-region scenario without DNS delays: what a request waits is the model's."""
    return f"""
name = "models"
duration = {duration}
strategies = ["naive", "seed-patterns", "guarded"]

[clients]
instances = 2
{f"rate = {rate}" if "arrivals" not in clients and "loop" not in clients else ""}
read_share = 1.0
keys = 100000
key_skew = 0.0
deadline = 5.0
attempt_timeout = 1.0
{clients}

[dns]
ttl = 100000
latency = 0.0

[[regions]]
name = "db"
hostname = "db.test"
capacity = 50
{service}
{region}
{extra}
{GUARDED}
"""


def run_summary(text: str, strategy: str, source: str = "<scenario>") -> dict[str, Any]:
    scenario = parse_scenario(text, source)
    return run(scenario, strategies_for(scenario)[strategy]).summary


# -- network round-trip time ---------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["naive", "guarded"])
def test_a_constant_round_trip_adds_exactly_itself_to_every_latency(strategy: str) -> None:
    # naive attempts as a chain of calls, guarded as processes: both paths add it.
    without = run_summary(scenario_text(), strategy)
    within = run_summary(scenario_text("rtt = 0.08"), strategy)
    assert within["requests"] == without["requests"] > 9000
    assert within["success_rate"] == without["success_rate"] == 1.0
    assert within["mean_latency_s"] == pytest.approx(without["mean_latency_s"] + 0.08, abs=1e-9)
    assert within["p50_latency_s"] == pytest.approx(without["p50_latency_s"] + 0.08, abs=1e-9)
    assert within["p99_latency_s"] == pytest.approx(without["p99_latency_s"] + 0.08, abs=1e-9)


def test_a_round_trip_drawn_from_a_distribution_adds_its_mean() -> None:
    base = run_summary(scenario_text(), "naive")
    rtt = 'rtt = { distribution = "exponential", mean = 0.03 }'
    spread = run_summary(scenario_text(rtt), "naive")
    # about 10,000 requests: the mean of their round trips is within 3% of 0.03 s
    assert spread["mean_latency_s"] - base["mean_latency_s"] == pytest.approx(0.03, rel=0.03)


@pytest.mark.parametrize("strategy", ["naive", "guarded"])
def test_an_answer_still_in_flight_when_the_timeout_expires_is_a_timeout(strategy: str) -> None:
    # 0.8 s of round trip and 0.3 s of service: every answer comes 0.1 s too late.
    text = scenario_text(
        "rtt = 0.8",
        service='service_time = { distribution = "constant", mean = 0.3 }',
        rate=2.0,
        duration=200.0,
    )
    scenario = parse_scenario(text)
    result = run(scenario, strategies_for(scenario)[strategy])
    summary = result.summary
    assert summary["success_rate"] == 0.0
    served = sum(result.series[Names.served("db")])
    # Every attempt reached the service and was served, for nobody: all wasted, the
    # part of each service after the answer could still arrive in time (0.1 s of 0.3).
    assert served == summary["attempts"]
    assert summary["wasted_work"] == served
    assert summary["wasted_seconds"] == pytest.approx(0.1 * served, rel=1e-9)


def test_a_round_trip_is_checked() -> None:
    with pytest.raises(ScenarioError, match=r"regions\[0\]\.rtt must be >= 0, got -1"):
        parse_scenario(scenario_text("rtt = -1"))
    with pytest.raises(ScenarioError, match=r"regions\[0\]\.rtt\.mean must be given"):
        parse_scenario(scenario_text('rtt = { distribution = "exponential" }'))


# -- per-operation service times -----------------------------------------------------------


def test_per_operation_service_times_average_by_the_mix() -> None:
    per_op = """service_time.read = { distribution = "constant", mean = 0.01 }
service_time.write = { distribution = "constant", mean = 0.05 }"""
    reads = run_summary(scenario_text(service=per_op), "naive")
    assert reads["mean_latency_s"] == pytest.approx(0.01, abs=1e-12)
    mixed_text = scenario_text(service=per_op).replace("read_share = 1.0", "read_share = 0.5")
    scenario = parse_scenario(mixed_text)
    assert scenario.regions[0].mean_service_time == pytest.approx(0.03)
    assert scenario.regions[0].capacity_rps == pytest.approx(50 / 0.03)
    mixed = run(scenario, strategies_for(scenario)["naive"]).summary
    # ~10,000 requests, each a write with probability 1/2: the share of writes is within
    # 1.5% of 1/2 (3 standard deviations), so the mean within 0.0006 s of 0.03 s.
    assert mixed["mean_latency_s"] == pytest.approx((0.01 + 0.05) / 2, abs=6e-4)
    assert min(abs(mixed["p50_latency_s"] - t) for t in (0.01, 0.05)) < 1e-9


def test_per_operation_service_times_are_both_given() -> None:
    half = 'service_time.read = { distribution = "constant", mean = 0.01 }'
    with pytest.raises(ScenarioError, match=r"service_time\.write must be given with `read`"):
        parse_scenario(scenario_text(service=half))


# -- spreads with units --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "message"),
    [
        (
            '{ distribution = "normal", mean = 0.01 }',
            r"service_time\.stddev must be given",
        ),
        (
            '{ distribution = "normal", mean = 0.01, sigma = 0.5 }',
            r"service_time\.sigma must be left out of a normal distribution \(give its "
            r"standard deviation as `stddev`, in seconds\)",
        ),
        (
            '{ distribution = "constant", mean = 0.01, sigma = 0.5 }',
            r"service_time\.sigma must be left out of a constant distribution",
        ),
        (
            '{ distribution = "exponential", mean = 0.01, stddev = 0.5 }',
            r"service_time\.stddev must be left out of a exponential distribution",
        ),
        (
            '{ distribution = "lognormal", mean = 0.01, stddev = 0.005 }',
            r"service_time\.stddev must be left out of a lognormal distribution \(give `sigma`",
        ),
        (
            '{ distribution = "lognormal", mean = 0.01, sigma = 0.5, p99 = 0.05 }',
            r"service_time\.p99 must be left out when `sigma` is given",
        ),
        (
            '{ distribution = "lognormal", mean = 0.01, p99 = 0.5 }',
            r"service_time\.p99 must be above the mean \(0\.01 s\) and at most 0\.1497 s",
        ),
    ],
)
def test_a_spread_is_given_in_its_unit(service: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(scenario_text(service=f"service_time = {service}"))


def test_a_normal_distribution_has_the_standard_deviation_it_is_given() -> None:
    sample = Distribution("normal", 10.0, stddev=0.5).sampler(Simulation().stream("x"))
    values = [sample() for _ in range(20_000)]
    mean = sum(values) / len(values)
    deviation = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    assert mean == pytest.approx(10.0, abs=0.02)
    assert deviation == pytest.approx(0.5, rel=0.03)


def test_a_lognormal_distribution_from_its_p99_has_that_p99() -> None:
    sigma = lognormal_sigma(0.05, 0.2)
    assert sigma is not None
    scenario = parse_scenario(
        scenario_text(
            service='service_time = { distribution = "lognormal", mean = 0.05, p99 = 0.2 }'
        )
    )
    assert scenario.regions[0].service_time.sigma == sigma
    sample = scenario.regions[0].service_time.sampler(Simulation().stream("x"))
    values = sorted(sample() for _ in range(100_000))
    assert sum(values) / len(values) == pytest.approx(0.05, rel=0.02)
    assert values[98_999] == pytest.approx(0.2, rel=0.03)


# -- a request-rate limit: a token bucket --------------------------------------------------


def limited_service(sim: Simulation, rate: float, burst: float, **options: Any) -> Service:
    settings: dict[str, Any] = {
        "capacity": 10_000,
        "service_time": Distribution("constant", 0.001),
        "queue": 10_000,
        "slowdown": None,
        "drop_expired": False,
        "setup_time": 0.0,
        "error_rate": 0.0,
        "series": Series(1000),
        "rate_limit": rate,
        "burst": burst,
    }
    settings.update(options)
    return Service(sim, "db", **settings)


class Recorded(Job):
    """A job that keeps when it arrived, and its answer and when it came."""

    def __init__(self, sim: Simulation, log: list[Recorded], deadline: float = 1e9) -> None:
        super().__init__(deadline, setup=False)
        self.sim = sim
        self.arrived = sim.now
        self.answered = math.nan
        self.answer: Any = None
        self.log = log

    def reply(self, answer: Any) -> None:
        self.answered = self.sim.now
        self.answer = answer
        self.log.append(self)


def poisson(sim: Simulation, rate: float, until: float, send: Callable[[], None]) -> None:
    stream = sim.stream("test-arrivals")

    def arrive(_: object) -> None:
        if sim.now < until:
            send()
            sim.after(stream.expovariate(rate), arrive)

    sim.after(stream.expovariate(rate), arrive)


@pytest.mark.parametrize(("rate", "burst"), [(50.0, 20.0), (200.0, 10.0), (10.0, 300.0)])
def test_the_admitted_requests_stay_within_the_token_bucket_bound(
    rate: float, burst: float
) -> None:
    sim = Simulation(3)
    svc = limited_service(sim, rate, burst)
    log: list[Recorded] = []
    refused = [0]
    seconds = 20.0

    def send() -> None:
        if svc.send(Recorded(sim, log)) is not None:
            refused[0] += 1

    poisson(sim, 5 * rate, seconds, send)  # five times the limit
    sim.run(seconds + 10)
    admitted = len(log)
    bound = burst + rate * seconds
    assert admitted <= bound
    # Overloaded, the bucket is nearly always empty: it admits almost all it can.
    assert admitted >= 0.98 * bound
    assert refused[0] > 0
    assert all(job.answer is None for job in log)


def test_a_bucket_of_one_token_admits_one_request_per_refill_and_arrival() -> None:
    # With room for one token, each admission waits for the token (1 / rate) and then
    # for the next arrival (Poisson: 1 / arrival rate on average, whenever it starts).
    sim = Simulation(5)
    svc = limited_service(sim, 200.0, 1.0)
    log: list[Recorded] = []
    poisson(sim, 1000.0, 100.0, lambda: svc.send(Recorded(sim, log)))
    sim.run(110)
    assert len(log) == pytest.approx(100.0 / (1 / 200 + 1 / 1000), rel=0.02)


def test_under_the_limit_nothing_is_refused() -> None:
    sim = Simulation(4)
    svc = limited_service(sim, 100.0, 10.0)
    log: list[Recorded] = []
    sent = [0]

    def send() -> None:
        sent[0] += 1
        assert svc.send(Recorded(sim, log)) is None

    poisson(sim, 20.0, 50.0, send)
    sim.run(100)
    assert len(log) == sent[0] > 800


def test_a_scenario_rate_limit_throttles_its_clients() -> None:
    text = scenario_text("rate_limit = 10\nburst = 5", rate=40.0, duration=100.0)
    scenario = parse_scenario(text)
    assert scenario.regions[0].capacity_rps == 10.0
    result = run(scenario, strategies_for(scenario)["naive"])
    served = sum(result.series[Names.served("db")])
    assert served <= 5 + 10 * 100
    assert served >= 0.98 * (5 + 10 * 100)
    assert result.summary["success_rate"] < 0.5


def test_a_rate_limit_is_checked() -> None:
    with pytest.raises(ScenarioError, match=r"regions\[0\]\.burst must be left out without"):
        parse_scenario(scenario_text("burst = 5"))
    with pytest.raises(ScenarioError, match=r"regions\[0\]\.burst must be >= 1, got 0\.5"):
        parse_scenario(scenario_text("rate_limit = 10\nburst = 0.5"))
    with pytest.raises(ScenarioError, match=r"regions\[0\]\.rate_limit must be > 0"):
        parse_scenario(scenario_text("rate_limit = 0"))


# -- queue disciplines ---------------------------------------------------------------------


def queue_run(
    discipline: str, load: float, *, service: Distribution, seconds: float, **options: Any
) -> list[Recorded]:
    """One server under Poisson arrivals at ``load`` times its capacity."""
    sim = Simulation(11)
    settings: dict[str, Any] = {
        "capacity": 1,
        "service_time": service,
        "queue": 1_000_000,
        "slowdown": None,
        "drop_expired": False,
        "setup_time": 0.0,
        "error_rate": 0.0,
        "series": Series(2 * seconds),
        "discipline": discipline,
    }
    settings.update(options)
    svc = Service(sim, "db", **settings)
    log: list[Recorded] = []
    poisson(sim, load / service.mean, seconds, lambda: svc.send(Recorded(sim, log)))
    sim.run(1.5 * seconds)
    return log


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def test_lifo_and_fifo_have_the_same_mean_and_different_tails() -> None:
    exponential = Distribution("exponential", 1.0)
    fifo = queue_run("fifo", 0.8, service=exponential, seconds=100_000)
    lifo = queue_run("lifo", 0.8, service=exponential, seconds=100_000)
    assert len(fifo) == len(lifo) > 75_000
    fifo_times = [job.answered - job.arrived for job in fifo]
    lifo_times = [job.answered - job.arrived for job in lifo]
    # The same arrivals and the same service times in the order served: the number in
    # the system is the same at every instant, so the mean time in it is too.
    assert sum(lifo_times) / len(lifo_times) == pytest.approx(
        sum(fifo_times) / len(fifo_times), rel=1e-9
    )
    # M/M/1 under FIFO: the time in the system is exponential with rate mu - lambda
    # (0.2 per second): mean 5 s, 99th percentile 5 ln(100) s.
    assert sum(fifo_times) / len(fifo_times) == pytest.approx(5.0, rel=0.1)
    assert quantile(fifo_times, 0.99) == pytest.approx(5.0 * math.log(100), rel=0.1)
    # LIFO serves most requests sooner and some much later: a longer tail.
    assert quantile(lifo_times, 0.5) < 0.6 * quantile(fifo_times, 0.5)
    assert quantile(lifo_times, 0.99) > 1.5 * quantile(fifo_times, 0.99)


def test_codel_keeps_the_queueing_delay_near_its_target_under_overload() -> None:
    constant = Distribution("constant", 0.01)
    target = 0.005
    fifo = queue_run("fifo", 1.5, service=constant, seconds=200)
    codel = queue_run(
        "codel", 1.5, service=constant, seconds=200, codel_target=target, codel_interval=0.1
    )
    served = [job for job in codel if job.answer is None]
    shed = [job for job in codel if isinstance(job.answer, ServiceThrottled)]
    assert len(served) + len(shed) == len(codel)
    waits = [job.answered - job.arrived - 0.01 for job in served]
    fifo_waits = [job.answered - job.arrived - 0.01 for job in fifo]
    # FIFO's queue grows the whole time (arrivals at 1.5x capacity): tens of seconds.
    assert sum(fifo_waits) / len(fifo_waits) > 10.0
    # CoDel judges each 0.1 s interval by the least a request waited in it: above the
    # target, the next interval sheds requests that waited more than twice the target.
    # The delay then swings between intervals that shed and intervals that let a queue
    # form again: a few targets on average, below about an interval for nearly all.
    mean_wait = sum(waits) / len(waits)
    assert target < mean_wait < 6 * target
    assert quantile(waits, 0.5) < 4 * target
    assert quantile(waits, 0.99) < 0.1 + 2 * target
    # It sheds the excess and keeps the server busy most of the time.
    assert 0.9 * 200 / 0.01 < len(served) <= 200 / 0.01 + 1
    assert len(shed) == len(codel) - len(served)


def test_abandoned_work_is_dropped_under_every_discipline() -> None:
    for discipline in ("fifo", "lifo", "codel"):
        constant = Distribution("constant", 1.0)
        sim = Simulation()
        svc = Service(
            sim,
            "db",
            capacity=1,
            service_time=constant,
            queue=10,
            slowdown=None,
            drop_expired=True,
            setup_time=0.0,
            error_rate=0.0,
            series=Series(100),
            discipline=discipline,
        )
        log: list[Recorded] = []
        svc.send(Recorded(sim, log))
        svc.send(Recorded(sim, log, deadline=0.5))  # its client gives up while it waits
        svc.send(Recorded(sim, log))
        sim.run(10)
        outcomes = sorted((job.answered, type(job.answer).__name__) for job in log)
        # LIFO takes the last first: the abandoned one comes up (and is dropped) last.
        dropped_at = 2.0 if discipline == "lifo" else 1.0
        assert outcomes == sorted(
            [(1.0, "NoneType"), (dropped_at, "ServiceThrottled"), (2.0, "NoneType")]
        )


def test_queue_disciplines_and_abandoned_work_are_checked() -> None:
    lifo = run_summary(scenario_text('queue_discipline = "lifo"\nabandoned = "drop"'), "naive")
    assert lifo["success_rate"] == 1.0
    with pytest.raises(ScenarioError, match=r"queue_discipline must be one of 'fifo', 'lifo'"):
        parse_scenario(scenario_text('queue_discipline = "random"'))
    with pytest.raises(ScenarioError, match=r"codel_target must be left out with queue_disc"):
        parse_scenario(scenario_text("codel_target = 0.01"))
    with pytest.raises(ScenarioError, match=r"abandoned must be one of 'serve', 'drop'"):
        parse_scenario(scenario_text('abandoned = "keep"'))
    with pytest.raises(ScenarioError, match=r"drop_expired must be left out when `abandoned`"):
        parse_scenario(scenario_text('abandoned = "drop"\ndrop_expired = true'))
    old = parse_scenario(scenario_text("drop_expired = true")).regions[0]
    assert old.abandoned == "drop"
    assert old.drop_expired


# -- random outages ------------------------------------------------------------------------

OUTAGES = """
[[triggers]]
kind = "random_outages"
region = "db"
mtbf = 20
mttr = 5
start = 100
end = 19100
"""


def test_random_outages_keep_the_region_down_mttr_over_mtbf_plus_mttr() -> None:
    text = scenario_text(rate=2.0, duration=19200.0, extra=OUTAGES)
    scenario = parse_scenario(text)
    result = run(scenario, strategies_for(scenario)["guarded"])
    down = result.series[Names.down("db")]
    window = 19_000.0
    # About 760 cycles of up (exponential, mean 20 s) then down (mean 5 s): the share
    # of time down is 5 / 25, within 0.02 (about 3 standard deviations).
    assert sum(down) / window == pytest.approx(5 / 25, abs=0.02)
    assert sum(down[:100]) == sum(down[19_100:]) == 0
    # Every instance sees the same outages: requests fail in the seconds it is down.
    errors = result.series[Names.ERRORS]
    requests = result.series[Names.REQUESTS]
    failed = sum(errors[100:19_100]) / sum(requests[100:19_100])
    assert failed == pytest.approx(sum(down) / window, abs=0.02)
    again = run(scenario, strategies_for(scenario)["naive"])
    assert again.series[Names.down("db")] == down  # the same outages for every strategy


def test_random_outages_can_partition_and_fail_a_share() -> None:
    partition = OUTAGES.replace("mttr = 5", 'mttr = 5\neffect = "partition"')
    scenario = parse_scenario(scenario_text(rate=2.0, duration=19200.0, extra=partition))
    result = run(scenario, strategies_for(scenario)["guarded"])
    assert result.summary["wasted_work"] > 0  # held requests arrive when it heals
    half = OUTAGES.replace("mttr = 5", "mttr = 5\nrate = 0.5")
    scenario = parse_scenario(scenario_text(rate=2.0, duration=19200.0, extra=half))
    result = run(scenario, strategies_for(scenario)["guarded"])
    errors = result.series[Names.ERRORS]
    requests = result.series[Names.REQUESTS]
    failed = sum(errors[100:19_100]) / sum(requests[100:19_100])
    assert failed == pytest.approx(0.5 * sum(result.series[Names.down("db")]) / 19_000, abs=0.02)
    bad = OUTAGES.replace("mttr = 5", 'mttr = 5\neffect = "partition"\nrate = 0.5')
    with pytest.raises(ScenarioError, match=r"triggers\[0\]\.rate must be left out with effect"):
        parse_scenario(scenario_text(extra=bad, duration=19200.0))


# -- arrivals from a trace -----------------------------------------------------------------


def write_trace(folder: Path, rows: list[str], header: str = "time,op,key") -> Path:
    path = folder / "requests.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_a_run_sees_exactly_the_requests_of_its_trace(tmp_path: Path) -> None:
    times = [0.25 * n + 0.125 for n in range(400)] + [150.0, 150.0, 199.5]
    rows = [f"{t},{'write' if n % 4 == 0 else 'read'},user{n % 7}" for n, t in enumerate(times)]
    write_trace(tmp_path, rows)
    per_op = """service_time.read = { distribution = "constant", mean = 0.01 }
service_time.write = { distribution = "constant", mean = 0.05 }"""
    text = scenario_text(
        service=per_op, clients='arrivals = "trace"\ntrace = "requests.csv"', duration=200.0
    )
    source = str(tmp_path / "scenario.toml")
    scenario = parse_scenario(text, source)
    trace = scenario.clients.trace
    assert trace is not None
    assert trace.times == tuple(times)
    assert trace.keys is not None
    assert set(trace.keys) == set(range(7))
    result = run(scenario, strategies_for(scenario)["naive"])
    expected = [0] * len(result.series[Names.REQUESTS])
    for t in times:
        expected[int(t)] += 1
    assert result.series[Names.REQUESTS] == expected
    assert result.summary["requests"] == len(times)
    # The trace's operations: one write in four, a write taking 0.05 s, a read 0.01 s.
    writes = sum(1 for n in range(len(times)) if n % 4 == 0)
    mean = (writes * 0.05 + (len(times) - writes) * 0.01) / len(times)
    assert result.summary["mean_latency_s"] == pytest.approx(mean, abs=1e-12)


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (["1.0,read,a", "0.5,read,b"], "time,op,key", r"requests\.csv:3: time must be >= the row"),
        (["1.0,read,a", "250,read,b"], "time,op,key", r"requests\.csv:3: time must be >= 0 and <"),
        (["soon,read,a"], "time,op,key", r"requests\.csv:2: time must be a number of seconds"),
        (["1.0,delete,a"], "time,op,key", r"requests\.csv:2: op must be 'read' or 'write'"),
        (["1.0,a"], "when,key", r"requests\.csv:1: header must be a row of column names"),
        (["1.0,a"], "time,user", r"requests\.csv:1: header must be columns time, op and key"),
    ],
)
def test_a_trace_is_checked(tmp_path: Path, rows: list[str], header: str, message: str) -> None:
    write_trace(tmp_path, rows, header)
    text = scenario_text(clients='arrivals = "trace"\ntrace = "requests.csv"', duration=200.0)
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(text, str(tmp_path / "scenario.toml"))


def test_a_trace_file_must_exist_and_go_with_trace_arrivals(tmp_path: Path) -> None:
    source = str(tmp_path / "scenario.toml")
    text = scenario_text(clients='arrivals = "trace"\ntrace = "missing.csv"')
    with pytest.raises(ScenarioError, match=r"clients\.trace must be a CSV file that exists"):
        parse_scenario(text, source)
    write_trace(tmp_path, ["1.0"], "time")
    with pytest.raises(ScenarioError, match=r"clients\.trace must be left out unless arrivals"):
        parse_scenario(scenario_text(clients='trace = "requests.csv"'), source)
    spike = """
[[triggers]]
kind = "load_spike"
factor = 2
start = 10
end = 20
"""
    text = scenario_text(clients='arrivals = "trace"\ntrace = "requests.csv"', extra=spike)
    with pytest.raises(ScenarioError, match=r"triggers\[0\]\.kind must be a kind that leaves"):
        parse_scenario(text, source)


# -- metrics -------------------------------------------------------------------------------


def test_utilisation_and_queue_length_of_an_mm1_queue() -> None:
    # M/M/1 at rho = 0.5: utilisation 0.5, mean queue length rho^2 / (1 - rho) = 0.5.
    text = scenario_text(
        "",
        service='service_time = { distribution = "exponential", mean = 0.02 }',
        rate=25.0,
        duration=4000.0,
    ).replace("capacity = 50", "capacity = 1")
    summary = run_summary(text, "naive")
    assert summary["utilisation"] == pytest.approx(0.5, rel=0.02)
    assert summary["utilisations"] == {"db": summary["utilisation"]}
    assert summary["mean_queue_length"] == pytest.approx(0.5, rel=0.1)
    assert summary["mean_queue_lengths"] == {"db": summary["mean_queue_length"]}
    assert summary["max_queue_length"] >= 10
    # Little's law: the mean time in the system is 1 / (mu - lambda) = 0.04 s.
    assert summary["mean_latency_s"] == pytest.approx(0.04, rel=0.05)


def test_wasted_seconds_are_the_service_after_the_client_gave_up() -> None:
    sim = Simulation()
    counts = Series(100)
    svc = Service(
        sim,
        "db",
        capacity=1,
        service_time=Distribution("constant", 1.0),
        queue=10,
        slowdown=None,
        drop_expired=False,
        setup_time=0.0,
        error_rate=0.0,
        series=counts,
    )
    log: list[Recorded] = []
    svc.send(Recorded(sim, log, deadline=0.25))  # gives up a quarter into its service
    svc.send(Recorded(sim, log, deadline=0.5))  # gives up before its service starts
    svc.send(Recorded(sim, log, deadline=5.0))  # waits for its answer
    sim.run(10)
    series = counts.data
    assert svc.wasted_time == pytest.approx(0.75 + 1.0)
    assert sum(series[Names.wasted("db")]) == 2
    assert svc.busy_time == 3.0
    assert svc.max_queued == 2


def test_sweeps_report_every_scalar_metric() -> None:
    sweep = """
[sweep]
parameter = "clients.rate"
values = [10, 20]
metrics = ["recovery_s", "mean_latency_s", "utilisation", "mean_queue_length",
           "max_queue_length", "wasted_seconds"]
"""
    scenario = parse_scenario(scenario_text(extra=sweep))
    assert scenario.sweep is not None
    assert "utilisation" in scenario.sweep.metrics
    with pytest.raises(ScenarioError, match=r"sweep\.metrics must be a list of metric names"):
        parse_scenario(scenario_text(extra=sweep.replace('"utilisation",', '"utilisations",')))


def test_sweeps_set_a_round_trip_and_a_rate_limit_as_a_file_does() -> None:
    sweep = """
[sweep]
parameter = "regions[0].{field}"
values = [0, 0.05]
"""
    scenario = parse_scenario(scenario_text(extra=sweep.format(field="rtt")))
    assert with_value(scenario, "regions[0].rtt", 0.05).regions[0].rtt == Distribution(
        "constant", 0.05
    )
    assert with_value(scenario, "regions[0].rtt", 0).regions[0].rtt is None
    limited = with_value(scenario, "regions[0].rate_limit", 40)
    assert (limited.regions[0].rate_limit, limited.regions[0].burst) == (40.0, 40.0)
    again = with_value(limited, "regions[0].rate_limit", 80)
    assert (again.regions[0].rate_limit, again.regions[0].burst) == (80.0, 40.0)
    with pytest.raises(ScenarioError, match=r"sweep\.values must be values that regions\[0\]"):
        parse_scenario(scenario_text(extra=sweep.format(field="rate_limit")))


def test_a_swept_read_share_moves_the_capacity_at_the_mix() -> None:
    per_op = """service_time.read = { distribution = "constant", mean = 0.01 }
service_time.write = { distribution = "constant", mean = 0.05 }"""
    scenario = parse_scenario(scenario_text(service=per_op))
    writes = with_value(scenario, "clients.read_share", 0.0)
    assert writes.regions[0].capacity_rps == pytest.approx(50 / 0.05)


def test_per_operation_service_times_as_tables_as_the_guide_writes_them() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "scenarios" / "writing.md").read_text()
    tables = guide.split("```toml\n[regions.service_time.read]", 1)[1].split("```", 1)[0]
    text = scenario_text(service="", extra="[regions.service_time.read]" + tables)
    region = parse_scenario(text).regions[0]
    assert region.service_time.mean == 0.004
    assert region.write_service_time is not None
    assert region.write_service_time.sigma == lognormal_sigma(0.012, 0.06)


# -- a second tier: a region's service calling a service of its own ------------------------

TIER = """
[regions.calls]
name = "db"
capacity = 50
service_time = {{ distribution = "constant", mean = {mean} }}
timeout = {timeout}
attempts = {attempts}
{extra}
"""


def tiered(
    *, mean: float = 0.02, timeout: float = 0.5, attempts: int = 1, extra: str = "", **options: Any
) -> str:
    calls = TIER.format(mean=mean, timeout=timeout, attempts=attempts, extra=extra)
    text = scenario_text(calls, **options)
    return text.replace('name = "db"\nhostname = "db.test"', 'name = "api"\nhostname = "api.test"')


def test_a_called_service_adds_its_time_and_its_round_trip() -> None:
    alone = run_summary(scenario_text(), "naive")
    scenario = parse_scenario(tiered(extra="rtt = 0.004"))
    assert [s.name for s in scenario.services] == ["api", "db"]
    result = run(scenario, strategies_for(scenario)["naive"])
    summary = result.summary
    assert summary["success_rate"] == 1.0
    # At low load nothing waits: 0.01 s at the api, then 0.004 s of round trip and
    # 0.02 s at the database, for every request.
    assert summary["mean_latency_s"] == pytest.approx(
        alone["mean_latency_s"] + 0.004 + 0.02, abs=1e-9
    )
    assert sum(result.series[Names.served("db")]) == summary["requests"]
    # The api holds each request's place while it waits: 0.034 s of its time each.
    api = summary["utilisations"]["api"]
    assert api == pytest.approx(20 * 0.034 / 50, rel=0.03)
    assert summary["utilisations"]["db"] == pytest.approx(20 * 0.02 / 50, rel=0.03)


def test_a_called_service_failing_a_share_fails_requests_after_every_attempt() -> None:
    # The database fails half its requests, at random: with 3 calls per request, a
    # request fails with probability 1/8, each call independent.
    text = tiered(attempts=3, extra="error_rate = 0.5", duration=1000.0)
    scenario = parse_scenario(text)
    strategy = strategies_for(scenario)["guarded"]  # no retries of its own
    result = run(scenario, strategy)
    summary = result.summary
    assert summary["success_rate"] == pytest.approx(1 - 0.5**3, abs=0.01)
    # Calls per request: 1 + 1/2 + 1/4 on average.
    calls = sum(result.series[Names.offered("db")])
    assert calls / summary["requests"] == pytest.approx(1.75, rel=0.02)


def test_a_slow_called_service_times_out_and_holds_its_callers_places() -> None:
    # Every call takes 0.3 s and times out at 0.1 s: two calls hold the api's place
    # 0.01 + 2 x 0.1 s, and every attempt fails; naive makes 5 attempts per request.
    text = tiered(mean=0.3, timeout=0.1, attempts=2, rate=5.0, duration=400.0)
    scenario = parse_scenario(text)
    result = run(scenario, strategies_for(scenario)["naive"])
    summary = result.summary
    assert summary["success_rate"] == 0.0
    assert summary["amplification"] == 5.0
    assert summary["mean_latency_s"] == pytest.approx(5 * (0.01 + 2 * 0.1), abs=1e-9)
    assert summary["utilisations"]["api"] == pytest.approx(5 * 5 * 0.21 / 50, rel=0.05)
    # The database serves every call, all of it after its caller gave up on it.
    assert summary["wasted_seconds"] == pytest.approx(
        sum(result.series[Names.served("db")]) * (0.3 - 0.1), rel=0.01
    )


def test_triggers_act_on_a_called_service() -> None:
    partition = """
[[triggers]]
kind = "partition"
region = "db"
start = 100
end = 200
"""
    scenario = parse_scenario(tiered(extra=partition, duration=300.0))
    result = run(scenario, strategies_for(scenario)["naive"])
    errors = result.series[Names.ERRORS]
    assert sum(errors[:100]) == 0
    # A request fails after 5 attempts of 0.51 s each, unless the partition heals first.
    assert sum(errors[101:197]) == sum(result.series[Names.REQUESTS][101:197]) > 0
    assert sum(errors[201:300]) == 0


def test_a_called_service_is_checked() -> None:
    with pytest.raises(ScenarioError, match=r"regions\[0\]\.calls\.hostname must be left out"):
        parse_scenario(tiered(extra='hostname = "db.internal"'))
    with pytest.raises(ScenarioError, match=r"regions\[0\]\.calls\.timeout must be given"):
        parse_scenario(tiered().replace("timeout = 0.5\n", ""))
    with pytest.raises(ScenarioError, match=r"regions\[0\]\.calls\.attempts must be an integer"):
        parse_scenario(tiered(attempts=0))
    clash = tiered().replace('name = "db"\ncapacity = 50', 'name = "api"\ncapacity = 50')
    with pytest.raises(ScenarioError, match=r"calls\.name must be unique among regions"):
        parse_scenario(clash)
    outage = '\n[[triggers]]\nkind = "dns_empty"\nhostname = "db"\nstart = 1\nend = 2\n'
    with pytest.raises(
        ScenarioError, match=r"hostname must be the hostname of a region \('api\.test'\)"
    ):
        parse_scenario(tiered(extra=outage))


def test_the_guides_called_service_parses() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "scenarios" / "writing.md").read_text()
    table = guide.split("```toml\n[regions.calls]", 1)[1].split("```", 1)[0]
    region = parse_scenario(scenario_text(extra="[regions.calls]" + table)).regions[0]
    assert region.calls is not None
    assert (region.calls.service.name, region.calls.timeout, region.calls.attempts) == (
        "payments-db",
        0.25,
        2,
    )


def test_three_tiers_add_their_times() -> None:
    third = """
[regions.calls.calls]
name = "disk"
capacity = 50
service_time = { distribution = "constant", mean = 0.005 }
timeout = 0.5
"""
    alone = run_summary(scenario_text(), "naive")
    scenario = parse_scenario(tiered(extra=third))
    assert [s.name for s in scenario.services] == ["api", "db", "disk"]
    summary = run(scenario, strategies_for(scenario)["naive"]).summary
    assert summary["mean_latency_s"] == pytest.approx(
        alone["mean_latency_s"] + 0.02 + 0.005, abs=1e-9
    )
    assert set(summary["utilisations"]) == {"api", "db", "disk"}
