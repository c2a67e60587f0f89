"""A strategy's tables are the library's options types: the same names, the same
defaults, the same checks. The built-in strategies are files that read back as
themselves when pasted into a scenario."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from stormproof import Backoff, ConfigError
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
    ScenarioError,
    StrategySpec,
    builtin_strategies,
    parse_scenario,
    strategy_file,
)
from stormproof.sim._strategy_spec import settable

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
    assert "--show must be a built-in strategy (naive, " in err
    assert "got 'nope'" in err
