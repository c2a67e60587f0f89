"""Did a change make the hot path slower? Times the success path of ``Retry``,
``CircuitBreaker`` and ``Pipeline(Retry, CircuitBreaker, Bulkhead)`` (decorated sync
and async functions, and ``policy.call``; overhead over a bare call, in ns) for two
source trees, in alternating rounds.

Absolute figures move with the machine (the same code measured 1.5 to 2 times slower
on one day than on another, here): a change is judged against the code before it, on
the same machine, at the same time. Each round runs each tree in a fresh process
(``PYTHONPATH=<tree>/src``), so neither warms the other up; rounds alternate, so a
slow moment of the machine hits both. Reported: the fastest and the median round.

Run from the repository root, against a checkout of the code before the change::

    git worktree add /tmp/before HEAD~5      # or any clone at the commit to compare with
    python benchmarks/bench_hot_path.py --against /tmp/before
    python benchmarks/bench_hot_path.py --against /tmp/before --rounds 12
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from itertools import repeat
from pathlib import Path
from time import perf_counter_ns
from typing import Any

HERE = Path(__file__).resolve().parent.parent


def _best(loop: Callable[[], int], calls: int, repeats: int) -> float:
    best = None
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            elapsed = loop()
        finally:
            gc.enable()
        best = elapsed if best is None else min(best, elapsed)
    assert best is not None
    return best / calls


def _sync(fn: Callable[[int], Any], calls: int) -> Callable[[], int]:
    """A timing loop of ``calls`` calls of ``fn``: returns the elapsed ns."""

    def loop() -> int:
        start = perf_counter_ns()
        for _ in repeat(None, calls):
            fn(1)
        return perf_counter_ns() - start

    return loop


def _async(
    fn: Callable[[int], Awaitable[Any]], calls: int, loop: asyncio.AbstractEventLoop
) -> Callable[[], int]:
    """The same for awaited calls, timed inside ``loop``."""

    async def timed() -> int:
        start = perf_counter_ns()
        for _ in repeat(None, calls):
            await fn(1)
        return perf_counter_ns() - start

    return lambda: loop.run_until_complete(timed())


def measure(calls: int = 200_000, repeats: int = 5) -> dict[str, float]:
    """One round, in this process: overhead in ns per call, per case."""
    # Imported here: each round's process imports the tree its PYTHONPATH names.
    from stormproof import Bulkhead, CircuitBreaker, Pipeline, Retry  # noqa: PLC0415

    def f(x: int) -> int:
        return x

    async def af(x: int) -> int:
        return x

    def policies() -> dict[str, Any]:
        return {
            "retry": Retry(on=ConnectionError),
            "breaker": CircuitBreaker("bench"),
            "pipeline": Pipeline(Retry(on=ConnectionError), CircuitBreaker("b"), Bulkhead(10)),
        }

    out: dict[str, float] = {}
    bare = _best(_sync(f, calls), calls, repeats)
    for name, policy in policies().items():
        out[f"sync {name}"] = _best(_sync(policy(f), calls), calls, repeats) - bare
        call = partial(policy.call, f)
        out[f"{name}.call"] = _best(_sync(call, calls), calls, repeats) - bare
    acalls = calls // 2
    loop = asyncio.new_event_loop()
    try:
        abare = _best(_async(af, acalls, loop), acalls, repeats)
        for name, policy in policies().items():
            timed = _async(policy(af), acalls, loop)
            out[f"async {name}"] = _best(timed, acalls, repeats) - abare
    finally:
        loop.close()
    return out


def _round(tree: Path) -> dict[str, float]:
    environment = {**os.environ, "PYTHONPATH": str(tree / "src")}
    done = subprocess.run(
        [sys.executable, __file__, "--one-round"],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="the other source tree (a checkout)")
    parser.add_argument("--rounds", type=int, default=8, help="rounds per tree (default 8)")
    parser.add_argument("--one-round", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_round:
        print(json.dumps(measure()))
        return 0
    if args.against is None or not (args.against / "src" / "stormproof").is_dir():
        parser.error("--against must be a checkout of stormproof (with src/stormproof)")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    trees = {"before": args.against.resolve(), "this tree": HERE}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for number in range(args.rounds):
        for name, tree in trees.items():
            results[name].append(_round(tree))
        print(f"round {number + 1}/{args.rounds} done", file=sys.stderr)
    cases = list(results["this tree"][0])
    header = ("overhead ns/call", "before: min", "median", "this: min", "median")
    print(f"{header[0]:<18} {header[1]:>12} {header[2]:>8} {header[3]:>10} {header[4]:>8}")
    for case in cases:
        row = [case]
        for name in trees:
            values = [one[case] for one in results[name]]
            row += [f"{min(values):.1f}", f"{statistics.median(values):.1f}"]
        print(f"{row[0]:<18} {row[1]:>12} {row[2]:>8} {row[3]:>10} {row[4]:>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
