"""The `fleet` scenario and a strategy's fleet-wide retry budget (`scope = "fleet"`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stormproof.fleet import FleetBudget
from stormproof.sim import ScenarioError, load_scenario, run, strategies_for
from stormproof.sim._fleet_scope import FleetScoped
from stormproof.sim._sweep_spec import with_value

BASE = """\
name = "tiny-fleet"
duration = 5
clients = { rate = 100, instances = 4, read_share = 0.0 }
[[regions]]
name = "service"
hostname = "service.internal"
capacity = 100
service_time = { distribution = "exponential", mean = 0.01 }
error_rate = 0.5

[[strategy]]
name = "shared"
retry = { attempts = 3, on = "regional", budget = { BUDGET } }
"""


def scenario_file(tmp_path: Path, budget: str) -> str:
    path = tmp_path / "tiny-fleet.toml"
    path.write_text(BASE.replace("BUDGET", budget))
    return str(path)


def test_the_fleet_scenario_loads_and_runs_short() -> None:
    fleet = load_scenario("fleet")
    assert fleet.sweep is not None
    assert fleet.sweep.parameter == "clients.instances"
    assert fleet.regions[0].error_rate == 0.5
    strategies = strategies_for(fleet)
    budget = strategies["fleet"].retry.budget  # type: ignore[union-attr]
    assert isinstance(budget, FleetScoped)
    assert budget.lease == 1
    short = with_value(with_value(fleet, "duration", 2), "clients.instances", 4)
    for name in ("per-process", "fleet"):
        summary = run(short, strategies[name]).summary
        assert summary["requests"] > 1000
        assert 1.0 <= summary["amplification"] < 2.1


def test_fleet_amplification_does_not_grow_with_instances_while_per_process_does() -> None:
    fleet = load_scenario("fleet")
    strategies = strategies_for(fleet)
    short = with_value(fleet, "duration", 3)
    found = {}
    for n in (2, 20):
        sized = with_value(short, "clients.instances", n)
        for name in ("per-process", "fleet"):
            found[name, n] = run(sized, strategies[name]).summary["amplification"]
    assert found["per-process", 20] > found["per-process", 2] + 0.02
    assert found["fleet", 20] <= found["fleet", 2] + 0.005
    assert found["fleet", 20] < found["per-process", 20]


def test_fleet_runs_are_deterministic() -> None:
    fleet = with_value(load_scenario("fleet"), "duration", 2)
    shared = strategies_for(fleet)["fleet"]
    first, second = run(fleet, shared), run(fleet, shared)
    assert first.summary == second.summary
    assert first.series == second.series


def test_every_instance_gets_a_fleet_budget_on_one_backend(tmp_path: Path) -> None:
    from stormproof.sim._engine import Simulation
    from stormproof.sim._fleet_scope import fleet_budget

    path = scenario_file(
        tmp_path, 'scope = "fleet", lease = 2, capacity = 10, retry_cost = 1, timeout_cost = 1'
    )
    spec = strategies_for(load_scenario(path))["shared"].retry.budget  # type: ignore[union-attr]
    assert isinstance(spec, FleetScoped)
    sim = Simulation(1)
    one, two = fleet_budget(spec, sim), fleet_budget(spec, sim)
    assert isinstance(one, FleetBudget)
    assert one.backend is two.backend
    sim.run(0.0)  # the first leases, at once
    assert one.leased == two.leased == 2
    assert (one.fleet_available, two.fleet_available) == (8, 6)
    assert fleet_budget(spec, Simulation(1)).backend is not one.backend


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ('scope = "world"', r"retry\.budget\.scope must be one of 'instance', 'fleet'"),
        ("scope = 1", r"retry\.budget\.scope must be a non-empty string, got 1"),
        ("lease = 2", r'retry\.budget\.lease must be given only with scope = "fleet", got 2'),
        ('scope = "fleet", lease = 0', r"retry\.budget\.lease must be .*1.*, got 0"),
        ('scope = "fleet", lease = 1.5', r"retry\.budget\.lease must be .*integer.*, got 1\.5"),
        (
            'scope = "fleet", flush_interval = 0',
            r"retry\.budget\.flush_interval must be .*, got 0",
        ),
        ('scope = "fleet", leese = 1', r"retry\.budget\.leese must be a known field.*'lease'"),
        ('scope = "fleet", capacity = -1', r"retry\.budget\.capacity must be"),
    ],
)
def test_bad_scope_options_are_refused_with_the_field_and_value(
    tmp_path: Path, budget: str, message: str
) -> None:
    path = scenario_file(tmp_path, budget)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)


def test_instance_scope_is_the_default_token_bucket(tmp_path: Path) -> None:
    from stormproof.options import TokenBucketOptions

    path = scenario_file(tmp_path, 'scope = "instance", capacity = 10')
    budget = strategies_for(load_scenario(path))["shared"].retry.budget  # type: ignore[union-attr]
    assert isinstance(budget, TokenBucketOptions)
    assert budget.capacity == 10
