"""One registry of metrics: every summary's keys, every table and chart take their
names, titles and formats from it."""

from __future__ import annotations

import pytest

from stormproof.sim import METRICS, parse_scenario, run, strategies_for, table
from stormproof.sim._metrics import AMPLIFICATION, P99_LATENCY, RECOVERY, STALE_RATE, SUCCESS_RATE

from .test_sweeps import CONTENTION
from .test_triggers import scenario


def test_every_metric_of_a_run_is_in_the_registry() -> None:
    triggered = parse_scenario(scenario('kind = "load_spike"\nfactor = 3\nstart = 10\nend = 20\n'))
    summary = run(triggered, strategies_for(triggered)["naive"]).summary
    assert set(summary) <= set(METRICS)
    contention = parse_scenario(CONTENTION)  # run once, without its sweep
    occ = run(contention, strategies_for(contention)["give-up"]).summary
    assert set(occ) <= set(METRICS)
    breakdowns = {name for name, metric in METRICS.items() if not metric.scalar}
    assert breakdowns == {
        "peak_load_ratios",
        "utilisations",
        "mean_queue_lengths",
        "max_queue_lengths",
    }
    for name in breakdowns:  # a value per region
        assert set(summary[name]) >= {region.name for region in triggered.regions}


@pytest.mark.parametrize(
    ("metric", "value", "shown"),
    [
        (SUCCESS_RATE, 0.98765, "98.77%"),
        (STALE_RATE, 0.5, "50.0%"),
        (AMPLIFICATION, 2.0, "2.00x"),
        (P99_LATENCY, 0.01234, "0.0123 s"),
        (RECOVERY, 42.4, "42 s"),
        (RECOVERY, None, "never"),
        (AMPLIFICATION, None, "-"),
        (METRICS["calls"], 12345, "12,345"),
    ],
)
def test_how_a_metric_is_shown(metric: object, value: float | None, shown: str) -> None:
    assert metric.show(value) == shown  # type: ignore[attr-defined]


def test_the_table_takes_its_columns_from_the_registry() -> None:
    quiet = parse_scenario(scenario("").rsplit("[[triggers]]", 1)[0])
    result = run(quiet, strategies_for(quiet)["naive"])
    header, _, row, *legend = table(quiet, [result]).splitlines()
    assert header.split() == [
        "strategy",
        "success",
        "stale",
        "goodput",
        "amplif.",
        "in",
        "trigger",
        "peak",
        "load",
        "p50",
        "p99",
        "recovery",
    ]
    assert row.split()[0] == "naive"
    assert row.split()[-1] == "-"  # no trigger: no recovery to measure
    # Under the table, every column in the registry's words.
    text = " ".join(line.strip() for line in legend)
    assert legend[:2] == ["", "Columns:"]
    assert "amplif.: amplification: attempts / requests (a ratio)." in text
    assert "in trigger: during trigger: attempts / requests, counting only the trigger's" in text
    assert "p50: the median time to an answer or an error, over all requests (seconds)." in text
    for heading in ("success", "stale", "goodput", "peak load", "p99", "recovery"):
        assert f" {heading}: " in f" {text}"
