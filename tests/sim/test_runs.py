"""Whole runs on small scenarios: determinism, and what each strategy does."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stormproof.sim import (
    RunResult,
    Scenario,
    StrategySpec,
    load_scenario,
    run,
    run_strategies,
    strategies_for,
)

OUTAGE = """\
name = "small-outage"
duration = 240
strategies = ["naive", "aws-legacy", "seed-patterns", "stormproof"]

[clients]
instances = 4
rate = 40
keys = 200
deadline = 2.0
attempt_timeout = 1.0

[dns]
ttl = 30
negative_ttl = 5

[[regions]]
name = "east"
hostname = "db.east.test"
capacity = 8
service_time = { distribution = "lognormal", mean = 0.05 }

[[regions]]
name = "west"
hostname = "db.west.test"
capacity = 4
service_time = { distribution = "lognormal", mean = 0.05 }

[[triggers]]
kind = "dns_empty"
hostname = "db.east.test"
start = 60
end = 180
"""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("scenario") / "outage.toml"
    path.write_text(OUTAGE)
    return load_scenario(str(path))


def test_same_seed_same_result_bit_for_bit(scenario) -> None:  # type: ignore[no-untyped-def]
    strategy = strategies_for(scenario)["stormproof"]
    first, second = run(scenario, strategy), run(scenario, strategy)
    assert first.summary == second.summary
    assert first.series == second.series
    other = run(scenario, strategy, seed=scenario.seed + 1)
    assert other.series["requests"] != first.series["requests"]


def test_parallel_runs_equal_sequential_runs(scenario) -> None:  # type: ignore[no-untyped-def]
    specs = [strategies_for(scenario)[name] for name in ("naive", "stormproof")]
    parallel = run_strategies(scenario, specs, workers=2)
    sequential = run_strategies(scenario, specs, workers=1)
    assert [r.summary for r in parallel] == [r.summary for r in sequential]


def test_what_each_strategy_does_to_the_dependency(scenario) -> None:  # type: ignore[no-untyped-def]
    known = strategies_for(scenario)
    results = {name: run(scenario, known[name]).summary for name in scenario.strategies}
    # Naive and legacy retries multiply the attempts during the outage...
    assert results["naive"]["amplification_during_trigger"] > 4
    assert results["aws-legacy"]["amplification_during_trigger"] > 5
    # ...and fail the requests that reach the dead endpoint.
    assert results["naive"]["success_rate"] < 0.7
    # The stormproof pipeline fails over (and serves stale), keeping users answered.
    assert results["stormproof"]["success_rate"] > 0.98
    assert results["stormproof"]["amplification_during_trigger"] < 1.2
    assert results["stormproof"]["recovery_s"] is not None
    assert results["stormproof"]["recovery_s"] <= 60
    for summary in results.values():
        assert summary["requests"] == results["naive"]["requests"]  # same arrivals
        assert 0 <= summary["success_rate"] <= 1
        assert summary["stale_rate"] <= summary["success_rate"]


def test_a_scenario_with_one_region_runs_every_strategy(tmp_path: Path) -> None:
    text = (
        OUTAGE.split("[[regions]]", maxsplit=1)[0] + "[[regions]]" + OUTAGE.split("[[regions]]")[1]
    )
    text = text.replace('db.east.test"\nstart', 'db.east.test"\nstart')
    path = tmp_path / "one.toml"
    path.write_text(
        text
        + """
[[triggers]]
kind = "partition"
region = "east"
start = 60
end = 70
"""
    )
    scenario = load_scenario(str(path))
    known = strategies_for(scenario)
    for name in ("aws-standard", "aws-2026", "stormproof"):
        summary = run(scenario, known[name]).summary
        assert summary["requests"] > 0


def test_closed_loop_clients_never_outnumber_their_users(tmp_path: Path) -> None:
    # Ten users against a server that holds one request at a time: however slow it
    # gets, at most ten requests are ever waiting, so nothing is throttled.
    text = """\
name = "closed"
duration = 120
strategies = ["naive"]

[clients]
loop = "closed"
users = 10
think_time = 0.1
instances = 2
read_share = 0.0

[[regions]]
name = "db"
hostname = "db.test"
capacity = 1
queue = 9
service_time = { distribution = "constant", mean = 0.05 }
"""
    path = tmp_path / "closed.toml"
    path.write_text(text)
    scenario = load_scenario(str(path))
    result = run(scenario, strategies_for(scenario)["naive"])
    s = result.summary
    assert s["success_rate"] == 1.0
    assert s["amplification"] == 1.0
    # 20 requests/s at most: the server's 20/s, every user always waiting in its queue.
    assert s["requests"] == pytest.approx(120 * 20, rel=0.02)


def run_both_ways(
    scenario: Scenario, strategy: StrategySpec, monkeypatch: pytest.MonkeyPatch
) -> RunResult:
    """Run retry-only requests as chains of calls (the default), then as processes; the
    two runs must be the same to the bit. Returns the first."""
    from stormproof.sim import _run

    direct = run(scenario, strategy)
    build = _run.build_client

    def as_processes(*args, **kwargs):  # type: ignore[no-untyped-def]
        client = build(*args, **kwargs)
        assert client.immediate
        client.immediate = False
        return client

    monkeypatch.setattr(_run, "build_client", as_processes)
    processes = run(scenario, strategy)
    assert direct.summary == processes.summary
    assert direct.series == processes.series
    return direct


@pytest.mark.parametrize("name", ["naive", "aws-legacy", "aws-standard", "one-try"])
def test_requests_run_alike_with_or_without_a_process(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = OUTAGE + '\n[[strategy]]\nname = "one-try"\n'
    text = text.replace("capacity = 8", "capacity = 2\nqueue = 20\nerror_rate = 0.05")
    path = tmp_path / "outage.toml"
    path.write_text(text)
    scenario = load_scenario(str(path))
    result = run_both_ways(scenario, strategies_for(scenario)[name], monkeypatch)
    assert result.summary["attempts"] > result.summary["requests"] or name == "one-try"


def test_a_partition_runs_alike_with_or_without_a_process(monkeypatch: pytest.MonkeyPatch) -> None:
    metastable = load_scenario("metastable")
    partition = replace(metastable.triggers[0], start=30.0, end=40.0)
    scenario = replace(metastable, duration=100.0, triggers=(partition,))
    result = run_both_ways(scenario, strategies_for(scenario)["one-retry"], monkeypatch)
    assert result.summary["recovery_s"] is None  # the metastable failure, both ways


def test_shared_errors_do_not_collect_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service refuses with one shared error value; a cache or failover that raises it
    and catches it again must not leave the frames on it (they would pile up all run)."""
    from stormproof.sim import _service

    services: list[_service.Service] = []
    init = _service.Service.__init__

    def keep(self: _service.Service, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        services.append(self)

    monkeypatch.setattr(_service.Service, "__init__", keep)
    text = OUTAGE.replace("capacity = 8", "capacity = 1\nqueue = 0")
    text = text.replace("capacity = 4", "capacity = 1\nqueue = 0")
    text += '\n[[strategy]]\nname = "cached"\ncache = { ttl = 1.0 }\n'
    path = tmp_path / "throttled.toml"
    path.write_text(text)
    sc = load_scenario(str(path))
    for name in ("cached", "stormproof"):
        services.clear()
        result = run(sc, strategies_for(sc)[name])
        assert result.summary["success_rate"] < 1.0  # throttled requests did fail
        assert [s._throttled.__traceback__ for s in services] == [None, None], name


@pytest.mark.parametrize("name", ["naive", "stormproof"])  # a chain of calls; processes
def test_each_instance_resolves_again_once_its_answer_expired(scenario, name) -> None:  # type: ignore[no-untyped-def]
    queries = run(scenario, strategies_for(scenario)[name]).series["offered:dns"]
    # Before the trigger: every instance asks when its first request comes (second 0)
    # and again once the 30 s answer expired (second 30), and never in between.
    assert [(s, q) for s, q in enumerate(queries[:60]) if q] == [(0, 4.0), (30, 4.0)]
