"""The contention workload, sweeps, and the scenario pieces they brought: retry-only
breakers, custom token buckets, sustainable capacity."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from stormproof import CircuitBreaker
from stormproof.cli import main
from stormproof.sim import (
    ScenarioError,
    load_scenario,
    run,
    run_sweep,
    strategies_for,
    sweep_document,
    sweep_html,
    sweep_table,
)
from stormproof.sim._engine import Simulation
from stormproof.sim._scenario import RegionSpec
from stormproof.sim._service import Distribution, Slowdown
from stormproof.sim._strategies import RetryBreaker
from stormproof.sim._sweep_spec import with_value

CONTENTION = """\
name = "contention"
duration = 600
strategies = ["retry-at-once", "full-jitter", "give-up"]

[occ]
clients = 2
network_delay = { distribution = "constant", mean = 0.01 }

[sweep]
parameter = "occ.clients"
values = [2, 8]
repeat = 3
metrics = ["amplification", "completion_s"]

[[strategy]]
name = "retry-at-once"
retry = { attempts = 1000, on = "all", backoff = { base = 0.0, cap = 0.0, jitter = "none" } }

[[strategy]]
name = "full-jitter"
retry = { attempts = 1000, on = "all", backoff = { base = 0.01, cap = 2.0 } }

[[strategy]]
name = "give-up"
"""


def write(tmp_path: Path, text: str, name: str = "scenario.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture
def contention(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_scenario(write(tmp_path, CONTENTION))


# -- the contention workload --------------------------------------------------------------


def test_one_client_reads_then_writes_once(contention) -> None:  # type: ignore[no-untyped-def]
    alone = with_value(contention, "occ.clients", 1)
    result = run(alone, strategies_for(alone)["retry-at-once"])
    s = result.summary
    assert (s["calls"], s["success_rate"], s["conflicts"]) == (1, 1.0, 0)
    assert s["completion_s"] == pytest.approx(0.04)  # four one-way trips of 10 ms


def test_two_clients_conflict_once(contention) -> None:  # type: ignore[no-untyped-def]
    # Both read version 0 at 10 ms and write at 30 ms: the first write wins, the second
    # conflicts, learns of it at 40 ms, reads again and writes at 70 ms.
    result = run(contention, strategies_for(contention)["retry-at-once"])
    s = result.summary
    assert (s["calls"], s["conflicts"], s["amplification"]) == (3, 1, 1.5)
    assert s["completion_s"] == pytest.approx(0.08)


def test_without_retries_the_loser_fails(contention) -> None:  # type: ignore[no-untyped-def]
    s = run(contention, strategies_for(contention)["give-up"]).summary
    assert (s["calls"], s["success_rate"]) == (2, 0.5)


def test_conflicts_are_not_regional_failures(tmp_path: Path) -> None:
    at_once = 'on = "all", backoff = { base = 0.0'
    text = CONTENTION.replace(at_once, at_once.replace('"all"', '"regional"'))
    scenario = load_scenario(write(tmp_path, text))
    s = run(scenario, strategies_for(scenario)["retry-at-once"]).summary
    assert s["success_rate"] == 0.5  # on="regional" does not retry a conflict


def test_contention_is_deterministic(contention) -> None:  # type: ignore[no-untyped-def]
    crowded = with_value(contention, "occ.clients", 20)
    jitter = strategies_for(crowded)["full-jitter"]
    assert run(crowded, jitter, seed=4).summary == run(crowded, jitter, seed=4).summary
    assert run(crowded, jitter, seed=4).summary != run(crowded, jitter, seed=5).summary


def test_jitter_cuts_the_work_of_contending_clients(tmp_path: Path) -> None:
    # The blog's result on a small case: 40 clients, 10 seeds. Retrying at once makes
    # every write race every other; jitter spreads them out.
    text = CONTENTION.replace(
        'network_delay = { distribution = "constant", mean = 0.01 }',
        'network_delay = { distribution = "normal", mean = 0.01, stddev = 0.002 }',
    )
    scenario = with_value(load_scenario(write(tmp_path, text)), "occ.clients", 40)
    known = strategies_for(scenario)

    def work(name: str) -> float:
        runs = [run(scenario, known[name], seed=seed).summary["calls"] for seed in range(10)]
        return sum(runs) / len(runs) / 40

    at_once, jittered = work("retry-at-once"), work("full-jitter")
    assert at_once > 8.0
    assert jittered < at_once / 1.5


# -- sweeps ---------------------------------------------------------------------------------


def test_a_sweep_averages_each_value_over_shared_seeds(contention) -> None:  # type: ignore[no-untyped-def]
    known = strategies_for(contention)
    chosen = [known[n] for n in contention.strategies]
    results = run_sweep(contention, chosen, workers=1)
    assert [r.strategy for r in results] == list(contention.strategies)
    at_once = results[0]
    assert at_once.values == [2, 8]
    assert at_once.points[0]["calls"] == 3  # the two-client case, the same every run
    by_hand = [
        run(with_value(contention, "occ.clients", 8), known["full-jitter"], seed=s).summary
        for s in (1, 2, 3)
    ]
    expected = sum(r["calls"] for r in by_hand) / 3
    assert results[1].points[1]["calls"] == pytest.approx(expected)
    assert results[2].points[1]["success_rate"] == pytest.approx(1 / 8)


def test_parallel_sweeps_equal_sequential_ones(contention) -> None:  # type: ignore[no-untyped-def]
    known = strategies_for(contention)
    chosen = [known[n] for n in contention.strategies]
    shares: list[list[float]] = []
    alone = run_sweep(contention, chosen, workers=1, progress=shares.append)
    together = run_sweep(contention, chosen, workers=2)
    assert [r.points for r in alone] == [r.points for r in together]
    assert shares[-1] == [1.0, 1.0, 1.0]


def test_a_metric_missing_from_some_runs_says_how_many_counted(tmp_path: Path) -> None:
    # One second is too short for 8 clients retrying with backoff: some never finish.
    text = CONTENTION.replace("duration = 600", "duration = 0.2")
    scenario = load_scenario(write(tmp_path, text))
    jitter = strategies_for(scenario)["full-jitter"]
    sweep = replace(scenario.sweep, values=(30,), repeat=4)
    (result,) = run_sweep(replace(scenario, sweep=sweep), [jitter], workers=1)
    point = result.points[0]
    assert point["unfinished"] is not None
    assert point["unfinished"] > 0
    assert point["completion_s"] is None
    assert point["completion_s_runs"] == 0.0


def test_sweep_reports(contention) -> None:  # type: ignore[no-untyped-def]
    known = strategies_for(contention)
    results = run_sweep(contention, [known[n] for n in contention.strategies], workers=1)
    text = sweep_table(contention, results)
    assert "Amplification: attempts per request (mean of 3 runs per point)" in text
    assert "occ.clients  retry-at-once  full-jitter  give-up" in text
    assert "1.50x" in text
    document = sweep_document(contention, known, results)
    assert document["sweep"] == {
        "parameter": "occ.clients",
        "values": [2, 8],
        "repeat": 3,
        "metrics": ["amplification", "completion_s"],
    }
    points = document["strategies"]["retry-at-once"]["points"]
    assert points[0]["value"] == 2
    assert points[0]["calls"] == 3
    json.dumps(document, allow_nan=False)
    page = sweep_html(contention, known, results)
    assert page.count('<figure class="chart">') == 2
    assert "Time until the last client is done" in page


# -- scenario files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('parameter = "occ.clients"', 'parameter = "occ.cilents"'),
            "sweep.parameter must be a field of the scenario that takes these values "
            "(\"no field 'occ.cilents'\"), got 'occ.cilents'",
        ),
        (
            ('parameter = "occ.clients"', 'parameter = "clients.read_share"'),
            "sweep.values must be values that clients.read_share takes "
            "(clients.read_share must be <= 1, got 2), got 2",
        ),
        (
            ("values = [2, 8]", "values = [2, 8.5]"),
            "(occ.clients takes whole numbers)",
        ),
        (("values = [2, 8]", "values = [2, -8]"), "(occ.clients cannot be negative)"),
        (("values = [2, 8]", "values = []"), "sweep.values must be a non-empty list of numbers"),
        (("values = [2, 8]", 'values = ["two"]'), "sweep.values must be a non-empty list"),
        (
            ('metrics = ["amplification", "completion_s"]', 'metrics = ["speed"]'),
            "sweep.metrics must be a list of metric names (requests, attempts, amplification,",
        ),
        (
            ('metrics = ["amplification", "completion_s"]', 'metrics = ["amplificaton"]'),
            "completion_s, unfinished, conflicts) (did you mean 'amplification'?), "
            "got 'amplificaton'",
        ),
        (("repeat = 3", "repeat = 0"), "sweep.repeat must be an integer >= 1, got 0"),
        (("clients = 2\n", "clients = 0\n"), "occ.clients must be an integer >= 1, got 0"),
        (
            ('distribution = "constant"', 'distribution = "cauchy"'),
            "occ.network_delay.distribution must be one of",
        ),
    ],
)
def test_sweep_and_contention_errors(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    text = CONTENTION.replace(*edit)
    assert text != CONTENTION
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, text))
    assert message in str(caught.value), str(caught.value)


def test_every_swept_value_is_checked_before_anything_runs(tmp_path: Path) -> None:
    text = (
        CONTENTION.replace("[occ]\nclients = 2\n", "")
        .replace(
            'network_delay = { distribution = "constant", mean = 0.01 }\n',
            '[[regions]]\nname = "db"\nhostname = "db.test"\ncapacity = 4\n'
            'service_time = { distribution = "exponential", mean = 0.01 }\n',
        )
        .replace('parameter = "occ.clients"', 'parameter = "regions[0].error_rate"')
    )
    with pytest.raises(ScenarioError, match=r"the scenario has no \[occ\] table"):
        load_scenario(write(tmp_path, text.replace("regions[0].error_rate", "occ.clients")))
    with pytest.raises(ScenarioError, match=r"regions\[0\]\.error_rate must be <= 1"):
        load_scenario(write(tmp_path, text))
    scenario = load_scenario(write(tmp_path, text.replace("values = [2, 8]", "values = [0, 1]")))
    assert with_value(scenario, "regions[0].error_rate", 0.5).regions[0].error_rate == 0.5
    with pytest.raises(ScenarioError, match=r"regions\[3\]"):
        load_scenario(
            write(
                tmp_path,
                text.replace("regions[0].error_rate", "regions[3].error_rate").replace(
                    "values = [2, 8]", "values = [0, 1]"
                ),
            )
        )


def test_a_scenario_needs_regions_unless_it_is_contention(tmp_path: Path) -> None:
    text = CONTENTION.replace("[occ]\nclients = 2\n", "[unused]\n").replace(
        'network_delay = { distribution = "constant", mean = 0.01 }\n', ""
    )
    with pytest.raises(ScenarioError, match="regions must be at least one"):
        load_scenario(write(tmp_path, text))


def test_custom_token_buckets_and_retry_breakers(tmp_path: Path) -> None:
    text = (
        CONTENTION
        + """
[[strategy]]
name = "bucket"
retry = { on = "regional", budget = { capacity = 10, retry_cost = 1, refund = false } }

[[strategy]]
name = "breaker"
retry = { on = "regional", breaker = { failure_rate = 0.1, window = 20, minimum_calls = 10 } }
"""
    )
    known = strategies_for(load_scenario(write(tmp_path, text)))
    bucket = known["bucket"].retry
    assert bucket is not None
    assert not isinstance(bucket.budget, str)
    assert bucket.budget is not None
    assert (bucket.budget.capacity, bucket.budget.refund) == (10, False)
    breaker = known["breaker"].retry
    assert breaker is not None
    assert breaker.breaker is not None
    assert breaker.breaker.failure_rate == 0.1
    bad = text.replace("minimum_calls = 10 }", "minimum_calls = 30 }")
    with pytest.raises(ScenarioError, match=r"retry\.breaker\.minimum_calls must be <= window"):
        load_scenario(write(tmp_path, bad))
    bad = text.replace("refund = false", "refund = 3")
    with pytest.raises(ScenarioError, match=r"retry\.budget\.refund must be"):
        load_scenario(write(tmp_path, bad))


def test_a_retry_breaker_stops_retries_but_never_first_attempts() -> None:
    sim = Simulation(1)
    breaker = CircuitBreaker(
        "retries", failure_rate=0.5, window=4, minimum_calls=4, open_for=10.0, clock=sim.clock
    )
    gate = RetryBreaker(breaker, sim)
    assert gate.try_retry("transient") is not None
    for _ in range(4):
        gate.on_failure("transient")
    assert gate.try_retry("transient") is None  # open: retries stop
    sim.run(11.0)
    gate.on_success(None)  # a first attempt's success is the half-open probe
    assert gate.try_retry("transient") is not None


# -- capacity of a server that slows down ---------------------------------------------------


@pytest.mark.parametrize(
    ("slowdown", "capacity", "expected"),
    [
        (None, 10, 1000.0),
        (Slowdown("rate", 300, 10.0), 10, 300.0),  # the metastable database
        (Slowdown("rate", 300, 2.0), 10, 500.0),  # slowed, it still does better than 300
        (Slowdown("concurrency", 5, 10.0), 10, 500.0),
        (Slowdown("linear", 20, 1.0), 2000, 2000.0),  # tends to above / (mean * factor)
        (Slowdown("linear", 20, 1.0), 10, 1000.0),  # never slowed: capacity is below 20
    ],
)
def test_sustainable_capacity(slowdown: Slowdown | None, capacity: int, expected: float) -> None:
    region = RegionSpec(
        "db", "db.test", capacity, Distribution("constant", 0.01), slowdown=slowdown
    )
    assert region.capacity_rps == pytest.approx(expected, rel=0.02)


# -- the command ----------------------------------------------------------------------------


def test_simulate_a_sweep_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    code = main(["simulate", write(tmp_path, CONTENTION), "--out", str(out), "--repeat", "2"])
    assert code == 0
    printed = capsys.readouterr()
    assert "2 values of occ.clients, 2 runs each, 3 strategies" in printed.err
    assert "Time until the last client is done (s) (mean of 2 runs per point)" in printed.out
    document = json.loads((out / "results.json").read_text())
    assert document["sweep"]["repeat"] == 2
    assert set(document["strategies"]) == {"retry-at-once", "full-jitter", "give-up"}
    assert "<svg" in (out / "report.html").read_text()


def test_repeat_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["simulate", "jitter", "--repeat", "0"])
    assert "--repeat: must be >= 1, got 0" in capsys.readouterr().err


def test_the_documented_contention_and_sweep_tables_are_valid(tmp_path: Path) -> None:
    guide = Path(__file__).parents[2] / "docs" / "scenarios" / "writing.md"
    blocks = [b.split("```", 1)[0] for b in guide.read_text().split("```toml\n")[1:]]
    occ = next(b for b in blocks if b.startswith("[occ]"))
    sweep = next(b for b in blocks if b.startswith("[sweep]"))
    contention = load_scenario(write(tmp_path, 'name = "x"\nduration = 60\n' + occ))
    assert contention.occ is not None
    assert contention.occ.clients == 50
    region = (
        '[[regions]]\nname = "db"\nhostname = "db.test"\ncapacity = 4\n'
        'service_time = { distribution = "exponential", mean = 0.01 }\n'
    )
    swept = load_scenario(write(tmp_path, 'name = "y"\nduration = 60\n' + sweep + region))
    assert swept.sweep is not None
    assert swept.sweep.values == (0.0, 0.1, 0.2, 0.5, 1.0)


def test_a_contention_run_without_a_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    single = CONTENTION.replace(
        '[sweep]\nparameter = "occ.clients"\nvalues = [2, 8]\nrepeat = 3\n'
        'metrics = ["amplification", "completion_s"]\n',
        "",
    )
    assert "[sweep]" not in single
    out = tmp_path / "report"
    assert main(["simulate", write(tmp_path, single), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "strategy       success  writes  per client  conflicts  last done" in printed
    assert "retry-at-once  100.00%       3       1.50x          1     0.08 s" in printed
    document = json.loads((out / "results.json").read_text())
    assert document["strategies"]["give-up"]["success_rate"] == 0.5
    assert "2 clients contending for one row" in (out / "report.html").read_text()


def test_repeat_is_for_sweeps_only(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["simulate", "us-east-1", "--repeat", "3", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "--repeat is for sweeps only: scenario 'us-east-1' has no [sweep] table" in error
    assert "Traceback" not in error
    with pytest.raises(SystemExit):  # `outage` is never a sweep: it has no --repeat
        main(["outage", "--repeat", "3"])
