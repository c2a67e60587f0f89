"""A strategy's tables are the library's options types: the same names, the same
defaults, the same checks. The built-in strategies are files that read back as
themselves when pasted into a scenario."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
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
from stormproof.sim._strategy_spec import settable
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
]
LEFT_OUT = {"retry_when_nested", "stale_while_revalidate", "negative_ttl", "max_queue", "max_wait"}
BAD = [-1, 0, 10**9, 0.5, -0.5]


def table(path: str, body: str) -> str:
    parts = path.split(".")
    if len(parts) == 1:
        return f"[strategy.{path}]\n{body}\n"
    return f'[strategy.{parts[0]}]\non = "all"\n{parts[1]} = {{ {body} }}\n'


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
    assert "name must be a built-in strategy (naive, " in err
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


def test_an_attempt_with_no_time_left_ends_with_the_librarys_deadline_error() -> None:
    sim = Simulation(1)
    series = Series(10.0)
    resolver = Resolver(sim, capacity=100, latency=0.5, series=series)
    service = Service(
        sim,
        "east",
        capacity=1,
        service_time=Distribution("constant", 0.01),
        queue=10,
        slowdown=None,
        drop_expired=False,
        setup_time=0.0,
        error_rate=0.0,
        series=series,
    )
    instance = Instance(0, HostCache(sim, resolver, 60.0, 5.0), 1)
    world = World(sim, series, resolver, [Region("east", "db.east.test", service)], [instance], 1.0)
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
