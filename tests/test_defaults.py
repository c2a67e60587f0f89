"""One set of defaults: each policy's options type holds them, the policy's constructor
reads them from there, and its docs page's Defaults table lists every option with the
same default. A difference anywhere fails here."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

import stormproof
from stormproof import options as opts
from stormproof.fleet import FleetBreaker, FleetBudget

DOCS = Path(__file__).parent.parent / "docs"

# Each options type: the policy (or factory) built from it, and its Defaults table:
# the page, and which table on it (counting tables whose header starts "| Option").
TABLES: dict[type[opts.Options], tuple[Any, str, int]] = {
    opts.RetryOptions: (stormproof.Retry, "retry.md", 0),
    opts.BreakerOptions: (stormproof.CircuitBreaker, "breaker.md", 0),
    opts.BulkheadOptions: (stormproof.Bulkhead, "bulkhead.md", 0),
    opts.TimeoutOptions: (stormproof.Timeout, "timeouts.md", 0),
    opts.HedgeOptions: (stormproof.Hedge, "hedge.md", 0),
    opts.FallbackOptions: (stormproof.Fallback, "fallback.md", 0),
    opts.CacheOptions: (stormproof.Cache, "cache.md", 0),
    opts.FailoverOptions: (stormproof.Failover, "failover.md", 0),
    opts.ChaosOptions: (stormproof.Chaos, "chaos.md", 0),
    opts.TokenBucketOptions: (stormproof.TokenBucketBudget, "budgets.md", 0),
    opts.FleetBudgetOptions: (FleetBudget, "fleet.md", 0),
    opts.FleetBreakerOptions: (FleetBreaker, "fleet.md", 2),
    opts.RatioBudgetOptions: (stormproof.RatioBudget, "budgets.md", 1),
    opts.RetryThrottleOptions: (stormproof.RetryThrottle, "budgets.md", 2),
    opts.AdaptiveThrottleOptions: (stormproof.AdaptiveThrottle, "throttling.md", 0),
}


def defaults_table(page: str, index: int) -> dict[str, str]:
    """Option name -> its Default cell, from the page's index-th options table."""
    tables: list[dict[str, str]] = []
    rows: dict[str, str] | None = None
    for line in (DOCS / page).read_text().splitlines():
        if line.startswith("| Option"):
            rows = {}
            tables.append(rows)
        elif rows is not None and line.startswith("|"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            match = re.match(r"`(?:\w+\()?(\w+)=?\)?`", cells[0])
            if match:
                rows[match.group(1)] = cells[1]
        else:
            rows = None
    return tables[index]


def literal(cell: str) -> tuple[bool, object]:
    """The cell's value if it is one Python literal in backticks."""
    match = re.fullmatch(r"`([^`]+)`", cell)
    if not match:
        return False, None
    try:
        return True, ast.literal_eval(match.group(1))
    except (ValueError, SyntaxError):
        return False, None


@pytest.mark.parametrize("options_type", TABLES, ids=lambda kind: kind.__name__)
def test_the_docs_list_every_option_with_its_default(options_type: type[opts.Options]) -> None:
    _, page, index = TABLES[options_type]
    table = defaults_table(page, index)
    for field in dataclasses.fields(options_type):  # type: ignore[arg-type]
        if field.name == "kind":  # Chaos's kind is its factory: fault, latency, outcome
            continue
        assert field.name in table, f"{page} does not list {field.name!r}"
        cell = table[field.name]
        if field.default is dataclasses.MISSING:
            assert "required" in cell, f"{page}: {field.name} is required, the table says {cell}"
            continue
        known, value = literal(cell)
        if known:
            assert value == field.default, f"{page}: {field.name} is {field.default!r}, not {cell}"


@pytest.mark.parametrize("options_type", TABLES, ids=lambda kind: kind.__name__)
def test_the_constructor_reads_its_defaults_from_the_options_type(
    options_type: type[opts.Options],
) -> None:
    policy = TABLES[options_type][0]
    parameters = inspect.signature(policy).parameters
    for name, default in options_type.defaults().items():
        if name in parameters and parameters[name].default is not inspect.Parameter.empty:
            assert parameters[name].default == default, f"{policy.__name__}({name}=...)"
    assert policy.options_type is options_type
