"""Running a scenario's strategies, in parallel processes when there are cores for it."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from ._run import RunResult, run
from ._scenario import Scenario
from ._strategy_spec import StrategySpec

__all__ = ["run_strategies"]

_progress: Any = None


def _init(progress: Any) -> None:
    global _progress  # noqa: PLW0603  (the worker's handle on the shared progress array)
    _progress = progress


def _work(scenario: Scenario, strategy: StrategySpec, seed: int | None, slot: int) -> RunResult:
    def report(fraction: float) -> None:
        if _progress is not None:
            _progress[slot] = fraction

    return run(scenario, strategy, seed=seed, progress=report)


def run_strategies(
    scenario: Scenario,
    strategies: Sequence[StrategySpec],
    *,
    seed: int | None = None,
    workers: int | None = None,
    progress: Callable[[list[float]], None] | None = None,
) -> list[RunResult]:
    """Run every strategy on ``scenario`` (same seed for each), in parallel processes when
    more than one core is available. ``progress`` receives each run's completed share."""
    if workers is None:
        workers = min(len(strategies), os.cpu_count() or 1)
    if workers <= 1 or len(strategies) == 1:
        results = []
        shares = [0.0] * len(strategies)
        for index, strategy in enumerate(strategies):

            def report(fraction: float, index: int = index) -> None:
                shares[index] = fraction
                if progress is not None:
                    progress(list(shares))

            results.append(run(scenario, strategy, seed=seed, progress=report))
        return results
    context = multiprocessing.get_context()
    shared = context.Array("d", len(strategies), lock=False)
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init, initargs=(shared,)
    ) as pool:
        futures: dict[Future[RunResult], int] = {
            pool.submit(_work, scenario, strategy, seed, index): index
            for index, strategy in enumerate(strategies)
        }
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                shared[futures[future]] = 1.0
            if progress is not None:
                progress(list(shared))
        return [future.result() for future in sorted(futures, key=futures.__getitem__)]
