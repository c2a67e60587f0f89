"""A strategy's tables are the library's options types: the same names, the same
defaults, the same checks. The built-in strategies are files that read back as
themselves when pasted into a scenario."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from stormproof import Backoff, ConfigError, DeadlineExceeded
from stormproof.classify import is_regional_failure
from stormproof.cli import main
from stormproof.options import (
    AdaptiveThrottleOptions,
    BreakerOptions,
    BulkheadOptions,
    CacheOptions,
    FailoverOptions,
    FallbackOptions,
    HedgeOptions,
    Options,
    RetryOptions,
    TokenBucketOptions,
)
from stormproof.sim import (
    RunResult,
    ScenarioError,
    Simulation,
    StrategySpec,
    builtin_strategies,
    parse_scenario,
    run,
    strategy_file,
)
from stormproof.sim._dns import HostCache, Resolver
from stormproof.sim._series import Series
from stormproof.sim._service import Distribution, Service
from stormproof.sim._strategies import build_client
from stormproof.sim._strategy_spec import FALLBACK, settable
from stormproof.sim._world import Instance, Region, World

SCENARIO = """\
name = "tiny"
duration = 60

[clients]
rate = 20

[[regions]]
name = "east"
hostname = "db.east.test"
capacity = 4
service_time = { distribution = "exponential", mean = 0.01 }

[[regions]]
name = "west"
hostname = "db.west.test"
capacity = 4
service_time = { distribution = "exponential", mean = 0.01 }
"""


def strategy(text: str) -> StrategySpec:
    scenario = parse_scenario(SCENARIO + '\n[[strategy]]\nname = "mine"\n' + text, "s.toml")
    return scenario.custom["mine"]


def error(text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        strategy(text)
    return str(caught.value)


# -- one set of defaults -------------------------------------------------------------------


def same_options(made: Options, expected: Options, *, but: tuple[str, ...] = ()) -> None:
    for field in dataclasses.fields(made):  # type: ignore[arg-type]
        if field.name not in but:
            assert getattr(made, field.name) == getattr(expected, field.name), field.name


def test_empty_tables_give_the_librarys_defaults() -> None:
    spec = strategy(
        '[strategy.retry]\non = "all"\nbudget = {}\nthrottle = {}\nbreaker = {}\n'
        "[strategy.cache]\nttl = 5\n"
        "[strategy.breaker]\n"
        "[strategy.failover]\n"
    )
    assert spec.retry is not None
    same_options(spec.retry.options, RetryOptions(on=Exception))
    assert isinstance(spec.retry.budget, TokenBucketOptions)
    same_options(spec.retry.budget, TokenBucketOptions())
    assert spec.retry.throttle is not None
    same_options(spec.retry.throttle, AdaptiveThrottleOptions(), but=("random",))
    assert spec.retry.breaker is not None
    same_options(spec.retry.breaker, BreakerOptions(name="retries"))
    assert spec.cache is not None
    same_options(spec.cache, CacheOptions(ttl=5))
    assert spec.breaker is not None
    same_options(spec.breaker, BreakerOptions(name="dependency"))
    assert spec.failover is not None
    same_options(spec.failover, FailoverOptions(regions={"a": print, "b": print}), but=("regions",))


def test_a_backoff_table_is_backoffs_options() -> None:
    spec = strategy('retry = { on = "all", backoff = {} }\n')
    assert spec.retry is not None
    default = Backoff()
    made = spec.retry.options.backoff
    for name in ("base", "cap", "multiplier", "jitter"):
        assert getattr(made, name) == getattr(default, name), name
    spec = strategy('retry = { on = "all" }\n')  # no table: Retry's own default backoff
    assert spec.retry is not None
    assert spec.retry.options.backoff is RetryOptions.defaults()["backoff"]


def test_on_names_the_error_filter() -> None:
    spec = strategy('retry = { on = "regional" }\nbreaker = { on = "regional" }\n')
    assert spec.retry is not None
    assert spec.breaker is not None
    assert spec.retry.options.on is is_regional_failure
    assert spec.breaker.on is is_regional_failure
    assert "strategy[0].retry.on must be given, 'regional' or 'all'" in error("retry = {}\n")
    assert "did you mean 'regional'?" in error('retry = { on = "regionl" }\n')


def test_bulkhead_is_a_number_or_a_table() -> None:
    assert strategy("bulkhead = 7\n").bulkhead == BulkheadOptions(max_concurrent=7)
    assert strategy("bulkhead = { max_concurrent = 7 }\n").bulkhead == BulkheadOptions(7)
    assert "s.toml:21: strategy[0].bulkhead must be" in error("bulkhead = 0\n")
    assert "bulkhead.max_queue must be left out (the Outage Lab's bulkheads" in error(
        "bulkhead = { max_concurrent = 7, max_queue = 3 }\n"
    )


# -- the same checks -----------------------------------------------------------------------

# Each table of a strategy, the options type it is, and what the options need besides.
TABLES: list[tuple[str, type[Options], dict[str, Any], str]] = [
    ("retry", RetryOptions, {"on": Exception}, 'on = "all", '),
    ("retry.budget", TokenBucketOptions, {}, ""),
    ("retry.throttle", AdaptiveThrottleOptions, {}, ""),
    ("retry.breaker", BreakerOptions, {"name": "x"}, ""),
    ("cache", CacheOptions, {"ttl": 5.0}, "ttl = 5, "),
    ("breaker", BreakerOptions, {"name": "x"}, ""),
    ("failover", FailoverOptions, {"regions": {"a": print, "b": print}}, ""),
    ("bulkhead", BulkheadOptions, {"max_concurrent": 2}, "max_concurrent = 2, "),
    ("hedge", HedgeOptions, {"delay": 0.1}, "delay = 0.1, "),
    ("hedge.budget", TokenBucketOptions, {}, ""),
    ("throttle", AdaptiveThrottleOptions, {}, 'on = "all", '),
]
PARENTS = {"retry": 'on = "all"', "hedge": "delay = 0.1"}
"""What a table holding a sub-table needs besides."""
LEFT_OUT = {"retry_when_nested", "stale_while_revalidate", "negative_ttl", "max_queue", "max_wait"}
BAD = [-1, 0, 10**9, 0.5, -0.5]


def table(path: str, body: str) -> str:
    parts = path.split(".")
    if len(parts) == 1:
        return f"[strategy.{path}]\n{body}\n"
    return f"[strategy.{parts[0]}]\n{PARENTS[parts[0]]}\n{parts[1]} = {{ {body} }}\n"


def cases() -> list[tuple[str, type[Options], dict[str, Any], str, str, Any]]:
    found = []
    for path, options_type, given, needed in TABLES:
        for name in settable(options_type):
            if name in LEFT_OUT or name in given or name == "deadline":
                continue
            found.extend((path, options_type, given, needed, name, value) for value in BAD)
    return found


@pytest.mark.parametrize(("path", "options_type", "given", "needed", "name", "value"), cases())
def test_every_option_is_checked_by_the_librarys_own_rules(
    path: str,
    options_type: type[Options],
    given: dict[str, Any],
    needed: str,
    name: str,
    value: Any,
) -> None:
    """A value the library refuses, the Lab refuses with the same words, naming the
    file, the line and the field; a value the library takes, the Lab takes."""
    kind = settable(options_type)[name]
    if kind.startswith("integer") and isinstance(value, float):
        value = int(value * 4) or 3  # an integer field gets integers
    if kind.startswith("boolean"):
        value = "yes"
    try:
        options_type(**given, **{name: value})
    except ConfigError as refused:
        library: str | None = str(refused)
    else:
        library = None
    if kind.startswith("boolean"):
        library = f"{name} must be true or false, got 'yes'"
    shown = repr(value) if isinstance(value, str) else value
    body = f"{needed}{name} = {shown}"
    if path.count(".") == 0:
        body = body.replace(", ", "\n")
    text = table(path, body)
    if library is None:
        strategy(text)  # taken
        return
    message = error(text)
    assert message.startswith("s.toml:2"), message  # the line, in the strategy
    assert message.endswith(f"strategy[0].{path}.{library}"), (message, library)


@pytest.mark.parametrize("value", [-1, 0, 0.25, "soon", True])
def test_a_hedges_delay_is_checked_by_the_librarys_own_rules(value: Any) -> None:
    try:
        HedgeOptions(delay=value)
    except ConfigError as refused:
        library: str | None = str(refused)
    else:
        library = None
    if isinstance(value, (str, bool)):
        library = f"delay must be a number, got {value!r}"
    shown = f'"{value}"' if isinstance(value, str) else str(value).lower()
    text = f"[strategy.hedge]\ndelay = {shown}\n"
    if library is None:
        spec = strategy(text)
        assert spec.hedge is not None
        assert spec.hedge.options.delay == value
        return
    message = error(text)
    assert message.startswith("s.toml:2"), message
    assert message.endswith(f"strategy[0].hedge.{library}"), (message, library)


def test_hedge_fallback_and_throttle_tables() -> None:
    spec = strategy(
        '[strategy.hedge]\ndelay = 0.05\nmax_hedges = 2\non = "regional"\nbudget = "grpc"\n'
        "[strategy.fallback]\n"
        '[strategy.throttle]\non = "regional"\nwindow = 10\n'
    )
    assert spec.hedge is not None
    assert spec.hedge.options == HedgeOptions(delay=0.05, max_hedges=2, on=is_regional_failure)
    assert spec.hedge.budget == "grpc"
    assert spec.fallback == FallbackOptions(value=FALLBACK, on=Exception)
    assert spec.throttle is not None
    assert spec.throttle.on is is_regional_failure
    same_options(spec.throttle.options, AdaptiveThrottleOptions(window=10), but=("random",))
    assert "strategy[0].hedge.delay must be given" in error("hedge = {}\n")
    assert "strategy[0].throttle.on must be given, 'regional' or 'all'" in error("throttle = {}\n")
    assert "strategy[0].fallback.value must be a known field" in error(
        'fallback = { value = "x" }\n'
    )
    assert "strategy[0].hedge.budget must be one of 'aws-standard'" in error(
        'hedge = { delay = 1, budget = "lots" }\n'
    )
    assert "did you mean 'max_hedges'?" in error("hedge = { delay = 1, max_hedge = 2 }\n")


def test_options_the_lab_does_not_model_are_refused_with_the_reason() -> None:
    assert "cache.stale_while_revalidate must be left out (the Outage Lab does not model" in (
        error("cache = { ttl = 5, stale_while_revalidate = true }\n")
    )
    assert "retry.retry_when_nested must be left out" in error(
        'retry = { on = "all", retry_when_nested = true }\n'
    )


def test_a_misspelt_option_is_not_a_default() -> None:
    assert "strategy[0].breaker.windw must be a known field (did you mean 'window'?)" in error(
        "breaker = { windw = 10 }\n"
    )
    assert "retry.backoff.jiter must be a known field (did you mean 'jitter'?)" in error(
        'retry = { on = "all", backoff = { jiter = "none" } }\n'
    )


def test_errors_name_the_line_of_a_sub_table() -> None:
    message = error('[strategy.retry]\non = "all"\n\nattempts = 0\n')
    assert message.startswith("s.toml:24: strategy[0].retry.attempts must be"), message


# -- the built-in strategies are files --------------------------------------------------------


@pytest.mark.parametrize("name", list(builtin_strategies()))
def test_a_built_in_strategy_pasted_into_a_scenario_is_itself(name: str) -> None:
    text = strategy_file(name).read_text()
    copied = text.replace(f'name = "{name}"', 'name = "copy"')
    scenario = parse_scenario(SCENARIO + copied, "s.toml")
    copy = scenario.custom["copy"]
    assert dataclasses.replace(copy, name=name) == builtin_strategies()[name]


def test_the_strategies_command_lists_and_shows_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["strategies"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == list(builtin_strategies())
    assert main(["strategies", "--show", "stormproof"]) == 0
    assert capsys.readouterr().out == strategy_file("stormproof").read_text()
    assert main(["strategies", "--show", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--show must be a built-in strategy (naive, " in err
    assert "got 'nope'" in err


# -- the caller's deadline ---------------------------------------------------------------------

UNANSWERED = """\
name = "unanswered"
duration = 30

[clients]
instances = 2
rate = 10
deadline = 1.5
attempt_timeout = 1.0

[dns]
ttl = 3600
latency = {latency}

[[regions]]
name = "east"
hostname = "db.east.test"
capacity = 4
service_time = {{ distribution = "constant", mean = 0.01 }}

[[triggers]]
kind = "partition"
region = "east"
start = 0
end = 30

[[strategy]]
name = "mine"

[strategy.retry]
on = "all"
attempts = 3
deadline = {honours}
backoff = {{ base = 0.0, cap = 0.0, jitter = "none" }}
"""


def unanswered(honours: bool, latency: float = 0.0) -> RunResult:
    """Every attempt times out (a partition for the whole run): each request makes its
    attempts back to back."""
    text = UNANSWERED.format(honours=str(honours).lower(), latency=latency)
    scenario = parse_scenario(text, "s.toml")
    return run(scenario, scenario.custom["mine"])


def test_a_strategy_that_honours_the_deadline_cuts_attempts_at_it() -> None:
    # Attempts at 0 s (1 s timeout) and 1 s (the 0.5 s left); at 1.5 s no time is
    # left: Retry makes no further attempt, and the request ends at its deadline.
    summary = unanswered(honours=True).summary
    assert summary["attempts"] == 2 * summary["requests"]
    assert summary["p50_latency_s"] == pytest.approx(1.5, abs=1e-9)
    assert summary["p99_latency_s"] == pytest.approx(1.5, abs=1e-9)
    assert summary["success_rate"] == 0.0


def test_a_strategy_that_does_not_honour_it_uses_the_full_timeout_every_time() -> None:
    # Every attempt waits the whole 1 s attempt timeout, past the 1.5 s deadline too.
    summary = unanswered(honours=False).summary
    assert summary["attempts"] == 3 * summary["requests"]
    assert summary["p50_latency_s"] == pytest.approx(3.0, abs=1e-9)
    assert summary["p99_latency_s"] == pytest.approx(3.0, abs=1e-9)


def test_no_attempt_is_sent_once_no_time_is_left() -> None:
    # The name takes 1.6 s to resolve (the caches are empty at first): the attempts
    # that resolve it find no time left once they have the address, and are not sent.
    honoured = unanswered(honours=True, latency=1.6)
    unsent = honoured.summary["attempts"] - sum(honoured.series["offered:east"])
    early = sum(honoured.series["requests"][:2])  # those arriving before the answer
    assert 0 < unsent <= early
    ignored = unanswered(honours=False, latency=1.6)
    assert sum(ignored.series["offered:east"]) == ignored.summary["attempts"]


TEN_MS = Distribution("constant", 0.01)


def small_world(
    latency: float, service_time: Distribution = TEN_MS
) -> tuple[Simulation, World, Instance]:
    """One instance, one region (``east``, 4 at once), a resolver answering after
    ``latency`` seconds, a 1 s attempt timeout."""
    sim = Simulation(1)
    series = Series(100.0)
    resolver = Resolver(sim, capacity=100, latency=latency, series=series)
    service = Service(
        sim,
        "east",
        capacity=4,
        service_time=service_time,
        queue=10,
        slowdown=None,
        drop_expired=False,
        setup_time=0.0,
        error_rate=0.0,
        series=series,
    )
    instance = Instance(0, HostCache(sim, resolver, 60.0, 5.0), 1)
    world = World(sim, series, resolver, [Region("east", "db.east.test", service)], [instance], 1.0)
    return sim, world, instance


def test_an_attempt_with_no_time_left_ends_with_the_librarys_deadline_error() -> None:
    sim, world, instance = small_world(latency=0.5)
    series = world.series
    route = instance.routes["east"]
    outcomes: list[Any] = []

    def attempt(deadline: float | None) -> Generator[Any, Any, None]:
        outcomes.append((yield from route.attempt(deadline)))

    sim.start(attempt(0.4))  # resolving takes 0.5 s: no time left then
    sim.run(1.0)
    sim.start(attempt(1.0))  # the deadline is now: not even counted
    sim.start(attempt(1.005))  # 5 ms left: sent, and timed out at the deadline
    sim.run(2.0)
    first, second, third = outcomes
    assert isinstance(first, DeadlineExceeded)
    assert isinstance(second, DeadlineExceeded)
    assert "db.east.test: the deadline has passed" in str(first)
    assert isinstance(third, TimeoutError)
    world.close()
    assert sum(series.data["attempts"]) == 2
    assert sum(series.data["offered:east"]) == 1


# -- hedging, fallback and adaptive throttling, from first principles ---------------------------

STEADY = """\
name = "steady"
duration = {duration}
seed = 3

[clients]
instances = {instances}
rate = {rate}
read_share = {read_share}
deadline = 2.0
attempt_timeout = 1.0

[dns]
ttl = 3600
latency = 0.0

[[regions]]
name = "east"
hostname = "db.east.test"
capacity = {capacity}
queue = {queue}
service_time = {{ distribution = "{distribution}", mean = {mean} }}
error_rate = {error_rate}

[[strategy]]
name = "mine"
{strategy}
"""


def steady(strategy: str, **model: Any) -> RunResult:
    values = {
        "duration": 600,
        "instances": 4,
        "rate": 100,
        "read_share": 1.0,
        "capacity": 1000,
        "queue": 1000,
        "distribution": "exponential",
        "mean": 0.01,
        "error_rate": 0.0,
        **model,
    }
    scenario = parse_scenario(STEADY.format(strategy=strategy, **values), "s.toml")
    return run(scenario, scenario.custom["mine"])


def test_hedging_cuts_the_tail_as_the_minimum_of_two_draws_predicts() -> None:
    # Exponential service times (mean m), no queueing: unhedged, P(T > t) = exp(-t/m).
    # Hedged after d: T = min(X1, d + X2), so past d, P(T > t) = exp(-(2t - d)/m), and
    # the p99 is (d + m ln 100) / 2 (when that is past d); a hedge is sent for the
    # share exp(-d/m) of requests that had no answer by d.
    m, d = 0.01, 0.02
    plain = steady("")
    hedged = steady(f"hedge = {{ delay = {d} }}")
    assert plain.summary["p99_latency_s"] == pytest.approx(m * math.log(100), rel=0.05)
    assert hedged.summary["p99_latency_s"] == pytest.approx((d + m * math.log(100)) / 2, rel=0.05)
    assert hedged.summary["amplification"] == pytest.approx(1 + math.exp(-d / m), rel=0.02)
    # Below the delay nothing changes: the median is the same draw.
    assert hedged.summary["p50_latency_s"] == pytest.approx(m * math.log(2), rel=0.05)
    assert plain.summary["amplification"] == 1.0


def test_a_hedge_budget_bounds_the_extra_load() -> None:
    # A token bucket of 10 paying 5 a hedge and earning 1 a success: once drained,
    # hedges are paid by successes, one hedge per five calls at most.
    budget = "budget = { capacity = 10, retry_cost = 5, success_reward = 1 }"
    hedged = steady(f"hedge = {{ delay = 0.0, {budget} }}")  # every call would hedge at once
    assert hedged.summary["amplification"] == pytest.approx(1.2, abs=0.01)


def test_adaptive_throttling_rejects_as_the_sre_formula_says_at_steady_state() -> None:
    # One instance, 100 requests/s against a server that takes one request at a time
    # (constant 20 ms, no queue: it refuses what arrives while busy). Locally refused
    # requests are never sent, so the refused share is 1 - attempts / requests; the
    # formula reads the same window's requests and accepts (the successes): both
    # settle at p = 1 - k * accepts / requests = 0.5 here (50/s sent, 25/s accepted).
    result = steady(
        'throttle = { on = "all", window = 30 }',
        instances=1,
        capacity=1,
        queue=0,
        distribution="constant",
        mean=0.02,
    )
    series = result.series
    window = slice(120, 600)  # past the warm-up
    requests = sum(series["requests"][window])
    attempts = sum(series["attempts"][window])
    accepts = sum(series["successes"][window])
    refused = 1 - attempts / requests
    assert refused == pytest.approx(max(0.0, (requests - 2 * accepts) / (requests + 1)), abs=0.01)
    assert refused == pytest.approx(0.5, abs=0.02)


def test_a_fallback_answers_the_reads_that_fail_and_only_those() -> None:
    # The server fails 20% of requests; 70% of requests are reads. The reads that fail
    # get the fallback's degraded answer: a success, not goodput. Writes fail.
    result = steady("[strategy.fallback]\n", read_share=0.7, error_rate=0.2, duration=300, rate=200)
    summary = result.summary
    assert summary["fallback_rate"] == pytest.approx(0.7 * 0.2, abs=0.01)
    assert summary["success_rate"] == pytest.approx(1 - 0.3 * 0.2, abs=0.01)
    assert summary["goodput_rate"] == pytest.approx(0.8, abs=0.01)
    assert sum(result.series["fallback"]) == round(summary["fallback_rate"] * summary["requests"])
    plain = steady("", read_share=0.7, error_rate=0.2, duration=300, rate=200).summary
    assert plain["fallback_rate"] == 0.0
    assert plain["goodput_rate"] == summary["goodput_rate"]  # the same requests, answered


def test_a_lost_hedge_gives_back_its_bulkhead_place() -> None:
    # Hedges at once (delay 0) through a bulkhead of 2: each call takes both places,
    # and the loser's is given back when it is cancelled, as the call ends (its request
    # stays at the server). One call at a time, so none is refused for want of room.
    sim, world, instance = small_world(latency=0.0, service_time=Distribution("exponential", 0.01))
    spec = strategy("bulkhead = 2\nhedge = { delay = 0.0 }\n")
    ended: list[Any] = []

    class Done:
        def finish(self, arrived: float, outcome: Any) -> None:
            ended.append(outcome)
            assert client.bulkheads["east"].active == 0  # type: ignore[attr-defined]

    client = build_client(world, instance, spec, 2.0, Done())
    for second in range(50):
        sim.at(float(second), lambda _: client.handle_now("read", 0))
    sim.run(60.0)
    assert ended == [None] * 50
    bulkhead = client.bulkheads["east"]  # type: ignore[attr-defined]
    assert bulkhead.active == 0
    assert sum(world.series.data["attempts:east"]) == 100


def test_the_guides_examples_of_hedging_and_fallbacks_read_and_run() -> None:
    guide = Path(__file__).parents[2] / "docs" / "scenarios" / "writing.md"
    example = guide.read_text().split("Two examples to copy:\n\n```toml\n")[1].split("```")[0]
    scenario = parse_scenario(SCENARIO + example, "s.toml")
    assert set(scenario.custom) == {"hedged", "degraded"}
    for spec in scenario.custom.values():
        assert run(scenario, spec).summary["success_rate"] == 1.0
