"""Running a scenario's strategies, in parallel processes when there are cores for it;
``run_in_pool``, the process pool that sweeps use too, stopped at once on Ctrl-C."""

from __future__ import annotations

import multiprocessing
import multiprocessing.sharedctypes  # now, rather than while the workers start
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, TypeVar

from ._run import RunResult, run
from ._scenario import Scenario
from ._strategy_spec import StrategySpec

__all__ = ["run_in_pool", "run_strategies"]

T = TypeVar("T")

RUNNING = 0.999
"""The largest share a run reports while it runs: 1.0 means its result is ready (the
run reaches the end of the scenario before it drains and sums up)."""

_progress: Any = None


def _start_worker(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    """A worker leaves Ctrl-C to the parent (which stops the pool), so that a Ctrl-C
    at a terminal, sent to every process, prints no worker's traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if initializer is not None:
        initializer(*initargs)


@contextmanager
def _sigint_held() -> Iterator[None]:
    """Hold Ctrl-C back while workers start (they would get it before they ignore
    it); one pressed meanwhile arrives as soon as they have."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _stop(pool: ProcessPoolExecutor) -> None:
    """End the pool now: its workers are killed, not waited for."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14
    if terminate is not None:  # pragma: no cover - Python 3.14
        terminate()
    else:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            process.terminate()
        for process in processes:
            process.join()
        # A worker killed while sending its result leaves half a message in the results
        # pipe, and the pool's reader waits for the rest for ever (shutdown would wait
        # for it): with the workers gone, closing this process's end of the pipe turns
        # that wait into an end of file, which the pool reads as broken and stops.
        writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
        if writer is not None:
            writer.close()
    pool.shutdown(wait=True, cancel_futures=True)


def run_in_pool(
    workers: int,
    tasks: Sequence[tuple[Callable[..., T], tuple[Any, ...]]],
    done: Callable[[int, T], None],
    *,
    tick: Callable[[], None] | None = None,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> None:
    """Run each task (a function and its arguments) in a pool of ``workers``
    processes; ``done(index, result)`` as each finishes, ``tick()`` every 0.2 s and
    after each. If anything stops it early (Ctrl-C, an error in a task, ``done`` or
    ``tick``), the workers are killed before the exception goes on: no work is left
    running and no worker prints a traceback."""
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(),
        initializer=_start_worker,
        initargs=(initializer, initargs),
    )
    try:
        with _sigint_held():
            futures: dict[Future[T], int] = {
                pool.submit(function, *arguments): index
                for index, (function, arguments) in enumerate(tasks)
            }
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=futures.__getitem__):
                done(futures[future], future.result())
            if tick is not None:
                tick()
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown()


def _init(progress: Any) -> None:
    global _progress  # noqa: PLW0603  (the worker's handle on the shared progress array)
    _progress = progress


def _work(scenario: Scenario, strategy: StrategySpec, seed: int | None, slot: int) -> RunResult:
    def report(fraction: float) -> None:
        if _progress is not None:
            _progress[slot] = min(fraction, RUNNING)

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
    more than one core is available. ``progress`` receives each run's completed share
    (1.0 once its result is ready). On Ctrl-C (or an exception from ``progress``) the
    workers are stopped at once and the exception goes on."""
    if workers is None:
        workers = min(len(strategies), os.cpu_count() or 1)
    shares = [0.0] * len(strategies)
    if workers <= 1 or len(strategies) == 1:
        results = []
        for index, strategy in enumerate(strategies):

            def report(fraction: float, index: int = index) -> None:
                shares[index] = min(fraction, RUNNING)
                if progress is not None:
                    progress(list(shares))

            results.append(run(scenario, strategy, seed=seed, progress=report))
            shares[index] = 1.0
            if progress is not None:
                progress(list(shares))
        return results
    shared = multiprocessing.get_context().Array("d", len(strategies), lock=False)
    found: dict[int, RunResult] = {}

    def finished(index: int, result: RunResult) -> None:
        found[index] = result

    def tick() -> None:
        if progress is not None:
            progress([1.0 if i in found else share for i, share in enumerate(shared)])

    tasks = [(_work, (scenario, strategy, seed, i)) for i, strategy in enumerate(strategies)]
    run_in_pool(workers, tasks, finished, tick=tick, initializer=_init, initargs=(shared,))
    return [found[index] for index in range(len(strategies))]
