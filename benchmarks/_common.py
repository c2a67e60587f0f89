"""Helpers shared by the benchmark scripts (``bench_retry.py``, ``bench_breaker.py``).

This is not part of the package. The scripts are run as ``python benchmarks/bench_X.py``
from the repository root and put their own directory on ``sys.path`` to import it.

Method, the same for every script: a case is warmed up (a tenth of its calls), then
timed over ``REPEATS`` repeats of a loop of N calls with ``time.perf_counter_ns``,
with the garbage collector paused (as ``timeit`` does); the fastest repeat's time
per call is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import inspect
import json
import os
import platform
import sys
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from itertools import repeat
from pathlib import Path
from time import perf_counter_ns
from types import ModuleType
from typing import Any

REPEATS = 7
INSTALL_HINT = "pip install -e '.[bench]'"

Loop = Callable[[Any, int], int]
"""A timing loop: ``loop(target, n)`` makes ``n`` calls and returns the elapsed ns."""
AsyncLoop = Callable[[Any, int], Awaitable[int]]


def optional(name: str) -> ModuleType | None:
    """Import ``name``, or None if it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


@dataclass
class Row:
    label: str
    library: str
    ns: float | None  # None: skipped
    n: int
    note: str = ""

    @property
    def repeat_seconds(self) -> float | None:
        return None if self.ns is None else self.ns * self.n / 1e9


# -- timing -----------------------------------------------------------------------------


def loop(fn: Callable[[Any], Any], n: int) -> int:
    start = perf_counter_ns()
    for _ in repeat(None, n):
        fn(1)
    return perf_counter_ns() - start


async def aloop(fn: Callable[[Any], Awaitable[Any]], n: int) -> int:
    start = perf_counter_ns()
    for _ in repeat(None, n):
        await fn(1)
    return perf_counter_ns() - start


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def best_ns(timing_loop: Loop, target: Any, n: int) -> float:
    """Warm up, then the fastest of ``REPEATS`` loops of ``n`` calls, in ns per call."""
    timing_loop(target, max(1, n // 10))  # warm-up
    with gc_paused():
        best = min(timing_loop(target, n) for _ in range(REPEATS))
    return best / n


async def abest_ns(timing_loop: AsyncLoop, target: Any, n: int) -> float:
    """``best_ns`` for an async loop, run inside the current event loop."""
    await timing_loop(target, max(1, n // 10))  # warm-up
    with gc_paused():
        best = min([await timing_loop(target, n) for _ in range(REPEATS)])
    return best / n


async def maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


# -- reporting --------------------------------------------------------------------------


def find(rows: list[Row], label: str) -> float | None:
    return next((row.ns for row in rows if row.label == label), None)


def overheads(rows: list[Row], bare_label: str) -> dict[str, float]:
    bare = find(rows, bare_label)
    assert bare is not None
    return {
        row.label: row.ns - bare for row in rows if row.ns is not None and row.label != bare_label
    }


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 1 else f"{ratio:.1f}x"


def _width(rows: list[Row]) -> int:
    return max(22, *(len(row.label) + 1 for row in rows))


def print_overhead_table(
    title: str,
    rows: list[Row],
    bare_label: str,
    peers: Collection[str],
    ours: str = "stormproof",
) -> dict[str, Any]:
    """Rows with ns/call, overhead over ``bare_label`` and that overhead over ours;
    then one "overhead = Nx stormproof" line per row whose library is in ``peers``."""
    extra = overheads(rows, bare_label)
    our_extra = extra[ours]
    w = _width(rows)
    print(f"\n{title}")
    print(f"  {'library':<{w}}{'ns/call':>10}{'overhead ns':>13}{'overhead vs stormproof':>24}")
    section: dict[str, Any] = {}
    notes = []
    for row in rows:
        if row.ns is None:
            print(f"  {row.label:<{w}}{'skipped':>10}")
            notes.append(f"  {row.label}: {row.note}")
            section[row.label] = None
            continue
        entry: dict[str, Any] = {"ns_per_call": round(row.ns, 1), "calls_per_repeat": row.n}
        if row.label == bare_label:
            print(f"  {row.label:<{w}}{row.ns:>10.1f}{'-':>13}{'-':>24}")
        else:
            ratio = extra[row.label] / our_extra
            entry |= {"overhead_ns": round(extra[row.label], 1), "overhead_ratio": round(ratio, 2)}
            print(
                f"  {row.label:<{w}}{row.ns:>10.1f}{extra[row.label]:>13.1f}{fmt_ratio(ratio):>24}"
            )
        section[row.label] = entry
    for row in rows:
        if row.ns is not None and row.library in peers:
            print(f"  {row.label} overhead = {extra[row.label] / our_extra:.1f}x stormproof")
    for note in notes:
        print(note)
    return section


def print_ratio_table(title: str, rows: list[Row], ours: str = "stormproof") -> dict[str, Any]:
    """Rows with ns/call and that time over ours."""
    our_ns = find(rows, ours)
    assert our_ns is not None
    w = _width(rows)
    print(f"\n{title}")
    print(f"  {'library':<{w}}{'ns/call':>10}{'vs stormproof':>15}")
    section: dict[str, Any] = {}
    notes = []
    for row in rows:
        if row.ns is None:
            print(f"  {row.label:<{w}}{'skipped':>10}")
            notes.append(f"  {row.label}: {row.note}")
            section[row.label] = None
            continue
        ratio = row.ns / our_ns
        print(f"  {row.label:<{w}}{row.ns:>10.1f}{fmt_ratio(ratio):>15}")
        section[row.label] = {
            "ns_per_call": round(row.ns, 1),
            "ratio": round(ratio, 2),
            "calls_per_repeat": row.n,
        }
    for note in notes:
        print(note)
    return section


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def add_target(
    results: list[dict[str, Any]], target: str, value: float | None, ok: bool | None, shown: str
) -> None:
    results.append({"target": target, "measured": value, "met": ok, "shown": shown})


def print_targets(results: list[dict[str, Any]]) -> None:
    """The "Targets (stormproof)" block: one line per target, MET / MISSED / n/a
    (or a result's own "verdict")."""
    print("\nTargets (stormproof)")
    for result in results:
        shown = result.get("verdict") or (
            "n/a" if result["met"] is None else verdict(result["met"])
        )
        print(f"  {result['target']}: {shown} ({result['shown']})")


# -- the machine --------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info(peers: Mapping[str, ModuleType | None]) -> dict[str, Any]:
    return {
        "python": sys.version.replace("\n", " "),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "versions": {
            "stormproof": version("stormproof"),
            **{
                name: "not installed" if module is None else version(name)
                for name, module in peers.items()
            },
        },
    }


def print_header(what: str, info: dict[str, Any], *, quick: bool) -> None:
    print(
        f"stormproof {what} benchmark: ns per call, min of "
        f"{REPEATS} repeats{' (--quick: 10x fewer calls)' if quick else ''}"
    )
    print(f"Python {info['python']}")
    print(f"{info['platform']}; {info['cpu']}; {info['cpu_count']} CPUs")
    print("Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))


def parse_args(doc: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer calls: a smoke run")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the numbers here")
    return parser.parse_args(argv)


def write_json(path: Path | None, report: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"Wrote {path}")
