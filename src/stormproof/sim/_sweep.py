"""Sweeps: a scenario run once per value of one parameter, ``repeat`` times each, for
every strategy, in parallel processes when there are cores for it.

Each point is the mean over the repeats of every numeric summary metric. The repeats
use seeds ``seed``, ``seed + 1``, ...: every strategy and every value sees the same
seeds (common random numbers), so differences between strategies are not noise from
different draws.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._metrics import METRICS
from ._run import run
from ._runner import run_in_pool
from ._scenario import Scenario
from ._strategy_spec import StrategySpec
from ._sweep_spec import with_value

__all__ = ["SweepResult", "run_sweep"]


@dataclass
class SweepResult:
    """One strategy across a sweep: ``points[i]`` holds the mean metrics at
    ``values[i]``."""

    scenario: str
    strategy: str
    parameter: str
    values: list[float]
    repeat: int
    seed: int
    points: list[dict[str, float | None]] = field(default_factory=list)
    cpu_seconds: float = 0.0


def _mean(summaries: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """The mean of every numeric metric; runs where a metric is None (a client that
    never finished, no requests) are left out of that metric's mean, and ``<metric>_runs``
    says how many counted when some were."""
    point: dict[str, float | None] = {}
    for name, first in summaries[0].items():
        if isinstance(first, bool) or not isinstance(first, (int, float, type(None))):
            continue
        counted = [s[name] for s in summaries if s.get(name) is not None]
        point[name] = sum(counted) / len(counted) if counted else None
        if len(counted) < len(summaries):
            point[METRICS[name].runs_name] = float(len(counted))
    return point


def _point(
    scenario: Scenario, strategy: StrategySpec, value: float, seeds: Sequence[int]
) -> tuple[dict[str, float | None], float]:
    assert scenario.sweep is not None
    varied = with_value(scenario, scenario.sweep.parameter, value)
    results = [run(varied, strategy, seed=seed) for seed in seeds]
    return _mean([r.summary for r in results]), sum(r.cpu_seconds for r in results)


def run_sweep(
    scenario: Scenario,
    strategies: Sequence[StrategySpec],
    *,
    seed: int | None = None,
    workers: int | None = None,
    progress: Callable[[list[float]], None] | None = None,
) -> list[SweepResult]:
    """Run the scenario's sweep for every strategy. ``progress`` receives, per strategy,
    the share of its points done. On Ctrl-C (or an exception from ``progress``) the
    workers are stopped at once and the exception goes on."""
    sweep = scenario.sweep
    if sweep is None:
        raise ValueError(f"scenario {scenario.name!r} has no [sweep] table")
    first = scenario.seed if seed is None else seed
    seeds = [first + i for i in range(sweep.repeat)]
    results = [
        SweepResult(
            scenario.name,
            strategy.name,
            sweep.parameter,
            list(sweep.values),
            sweep.repeat,
            first,
            [{} for _ in sweep.values],
        )
        for strategy in strategies
    ]
    tasks = [(s, v) for s in range(len(strategies)) for v in range(len(sweep.values))]
    done = [0] * len(strategies)

    def record(task: tuple[int, int], outcome: tuple[dict[str, float | None], float]) -> None:
        s, v = task
        results[s].points[v] = outcome[0]
        results[s].cpu_seconds += outcome[1]
        done[s] += 1
        if progress is not None:
            progress([d / len(sweep.values) for d in done])

    if workers is None:
        workers = min(len(tasks), os.cpu_count() or 1)
    if workers <= 1:
        for task in tasks:
            s, v = task
            record(task, _point(scenario, strategies[s], sweep.values[v], seeds))
        return results
    # The largest values usually cost the most: start them first so the pool ends evenly.
    order = sorted(tasks, key=lambda t: -sweep.values[t[1]])
    run_in_pool(
        workers,
        [(_point, (scenario, strategies[s], sweep.values[v], seeds)) for s, v in order],
        lambda index, outcome: record(order[index], outcome),
    )
    return results
