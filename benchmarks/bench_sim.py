"""Outage Lab against SimPy: simulated requests per CPU second, same model twice.

What is measured, all in one process run:

1. **stormproof**: ``stormproof.sim.run`` on the built-in ``metastable`` scenario
   (Bronson et al., "Metastable Failures in Distributed Systems", HotOS 2021) with its
   ``one-retry`` strategy, the paper's client: two attempts, no backoff, on every
   error, driven through stormproof's real ``Retry`` object on the virtual clock.
2. **SimPy**: the same model written a second time, as idiomatic SimPy written for
   speed: one process per request, a ``Store`` of jobs served by 10 worker processes
   (the database), the client timeout as ``done | env.timeout(1.0)``, and a process
   for the partition; a full queue rejects synchronously (the fastest form, the one
   the target is checked against). Two other idiomatic forms are timed for context:
   a ``Resource`` with one process per database job, and the Store form with each
   rejection fired through the client's event.
   Every parameter is read from the scenario object, so the models cannot drift apart:

   - Poisson arrivals at 280/s for 300 s of simulated traffic (then 600 s of drain,
     as ``stormproof.sim.run`` does, so the database finishes its queue);
   - a database with 10 concurrent workers, exponential service times with mean
     10 ms, a FIFO queue of at most 5000 (requests beyond are rejected at once);
   - service times x10 while more than 300 requests per second arrived over the last
     10 s (arrival times kept in a sliding 10 s window, pruned on each arrival and
     read when a request starts service, as ``stormproof.sim._service`` does);
   - a partition from t=60 to t=70: requests sent meanwhile are held and all
     delivered when it heals; the database works on requests whose clients gave up;
   - clients wait at most 1 s per attempt and retry once, at once, on any failure
     or timeout (2 attempts in all).

   DNS is left out of the SimPy model: in the scenario the record is cached for an
   hour (longer than the 900 s simulated), the resolver's latency is 0 and nothing
   breaks it, so it costs one zero-delay event per app instance (10 in all) and a
   cache lookup per attempt, and never fails.

3. **plain Python floor**: the same model once more as flat callbacks on a heap, with
   no processes, no policy objects and no metrics: how fast the model can run in
   CPython at all, and so whether a target over SimPy is reachable.

For each: simulated requests (arrivals), CPU seconds (``time.process_time`` around
the whole run, building the model included), requests per CPU second, and outcome
numbers showing that the two models behave alike (they use different random streams,
so they agree in shape, not to the request). Each side is run 5 times with the same
seed, in rounds (every side once per round, so the machine's changes of speed touch
every side alike); the best (lowest) CPU time is reported. The garbage collector stays
on (as in real use); a collection runs before each repeat.

It also times ``stormproof outage`` with its defaults (the us-east-1 scenario, every
strategy, one process per core) as a subprocess, wall clock (skipped with --quick).

Run from the repository root::

    python benchmarks/bench_sim.py               # full run, about 65 s on 2 cores
    python benchmarks/bench_sim.py --quick       # 100 s simulated, partition at 30-40 s
    python benchmarks/bench_sim.py --json out.json

SimPy is optional (``pip install -e '.[bench]'``); without it only stormproof runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import heapq
import itertools
import random
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Generator
from pathlib import Path
from types import ModuleType
from typing import Any

from stormproof.sim import Scenario, StrategySpec, load_scenario, run, strategies_for
from stormproof.sim._run import DRAIN

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _common, run as a script

from _common import (
    INSTALL_HINT,
    add_target,
    machine_info,
    optional,
    print_targets,
    write_json,
)

REPEATS = 5
TARGET_RATIO = 3.0  # stormproof requests per CPU second >= 3x SimPy's
TARGET_OUTAGE_S = 90.0  # "about a minute on a 2-core machine": counted as met up to 90 s
TAIL_S = 100.0  # "success in the last N seconds" of traffic (half the traffic if shorter)
OUTAGE_OUT = "/tmp/bench-outage"

simpy = optional("simpy")
PEERS: dict[str, ModuleType | None] = {"simpy": simpy}


# -- the model's parameters, read from the scenario ----------------------------------------


@dataclasses.dataclass(frozen=True)
class Params:
    duration: float
    drain: float
    rate: float
    workers: int
    service_mean: float
    queue: int
    slow_above: float
    slow_factor: float
    slow_window: float
    partition_start: float
    partition_end: float
    attempt_timeout: float
    attempts: int
    seed: int
    tail: float  # the outcome's "last N seconds of traffic"


def params_of(sc: Scenario, strategy: StrategySpec) -> Params:
    """The scenario's numbers, after checking it is the model the SimPy side implements."""
    (region,) = sc.regions
    (trigger,) = sc.triggers
    retry = strategy.retry
    slowdown = region.slowdown
    checks = {
        "exponential service times": region.service_time.kind == "exponential",
        "a rate slowdown": slowdown is not None and slowdown.kind == "rate",
        "no expiry, setup time or errors": not region.drop_expired
        and region.setup_time == 0
        and region.error_rate == 0,
        "one partition of the database": trigger.kind == "partition"
        and trigger.target == region.name,
        "retry on every error": retry is not None and retry.options.on is Exception,
        "no backoff": retry is not None
        and retry.options.backoff.base == retry.options.backoff.cap == 0,
        "no budget, throttle or deadline": retry is not None
        and retry.budget is None
        and retry.throttle is None
        and retry.breaker is None
        and not retry.caller_deadline
        and retry.options.deadline is None,
        "no cache, breaker or bulkhead": strategy.cache is None
        and strategy.breaker is None
        and strategy.bulkhead is None,
        "writes only": sc.clients.read_share == 0.0,
        # DNS: cached longer than the whole run, answered at once, never broken, so it
        # adds one zero-delay event per app instance and never fails.
        "DNS cached for the whole run, no latency": sc.dns.ttl > sc.duration + DRAIN
        and sc.dns.latency == 0,
        "a DNS resolver that never overloads": sc.dns.capacity >= sc.clients.rate * 10,
    }
    wrong = [what for what, ok in checks.items() if not ok]
    if wrong:
        raise SystemExit(f"the scenario is no longer the model SimPy implements: {wrong}")
    assert retry is not None
    assert slowdown is not None
    return Params(
        duration=sc.duration,
        drain=DRAIN,
        rate=sc.clients.rate,
        workers=region.capacity,
        service_mean=region.service_time.mean,
        queue=region.queue,
        slow_above=slowdown.above,
        slow_factor=slowdown.factor,
        slow_window=slowdown.window,
        partition_start=trigger.start,
        partition_end=trigger.end,
        attempt_timeout=sc.clients.attempt_timeout,
        attempts=retry.options.attempts,
        seed=sc.seed,
        tail=min(TAIL_S, sc.duration / 2),
    )


@dataclasses.dataclass
class Outcome:
    requests: int
    attempts: int
    successes: int
    before_requests: int  # arrived before the partition
    before_successes: int
    tail_requests: int  # arrived in the last Params.tail seconds of traffic
    tail_successes: int

    def numbers(self) -> dict[str, float]:
        return {
            "success_before_partition": self.before_successes / self.before_requests,
            "success_overall": self.successes / self.requests,
            "success_tail": self.tail_successes / self.tail_requests,
            "attempts_per_request": self.attempts / self.requests,
        }


# -- stormproof ------------------------------------------------------------------------------


def stormproof_once(sc: Scenario, strategy: StrategySpec, p: Params) -> tuple[float, Outcome]:
    gc.collect()
    started = time.process_time()
    result = run(sc, strategy)
    cpu = time.process_time() - started
    s = result.series
    start, end, tail = int(p.partition_start), int(p.duration), int(p.duration - p.tail)
    return cpu, Outcome(
        requests=result.summary["requests"],
        attempts=result.summary["attempts"],
        successes=round(sum(s["successes"])),
        before_requests=round(sum(s["requests"][:start])),
        before_successes=round(sum(s["successes"][:start])),
        tail_requests=round(sum(s["requests"][tail:end])),
        tail_successes=round(sum(s["successes"][tail:end])),
    )


# -- SimPy -------------------------------------------------------------------------------------


VARIANTS = {
    "simpy": "Store + 10 worker processes; a full queue rejects synchronously (no event)",
    "simpy (Resource)": "a Resource(capacity=10) and one process per database job",
    "simpy (reject via event)": "Store + workers, a rejection fires the client's event",
}
"""The SimPy rows. The first, the fastest, is the competitor the target is checked
against; the other two are the idiomatic alternatives, reported for context."""

FLOOR = "plain Python floor"
FLOOR_WHAT = "the model as flat callbacks on a heap: no processes, policies or metrics"


def simpy_model(p: Params, seed: int, variant: str = "simpy") -> Outcome:
    """The metastable model in idiomatic SimPy, written for speed (locals bound once).

    A request's attempt is an event (``done``) its client waits for with
    ``done | env.timeout(1.0)``; the database succeeds it with True when served
    (whether or not anyone still waits) or with False when it is rejected.
    """
    assert simpy is not None
    assert variant in VARIANTS, variant
    env = simpy.Environment()
    timeout = env.timeout
    event = env.event
    process = env.process
    arrivals_rng = random.Random(f"{seed}:arrivals")
    service_rng = random.Random(f"{seed}:service")
    arrival_gap = arrivals_rng.expovariate
    service_time = service_rng.expovariate
    arrival_rate = p.rate
    service_rate = 1.0 / p.service_mean
    duration = p.duration
    partition_start = p.partition_start
    tail_from = duration - p.tail
    attempt_timeout = p.attempt_timeout
    attempts_range = range(p.attempts)
    workers = p.workers
    queue_limit = p.queue
    window = p.slow_window
    slow_above = p.slow_above
    slow_factor = p.slow_factor

    recent: deque[float] = deque()  # arrival times within the slowdown window
    popleft = recent.popleft
    held: list[Any] = []  # requests sent during the partition
    reachable = True
    counts = [0] * 7  # requests, attempts, successes, before, before ok, tail, tail ok

    def counted() -> float:
        """Counts an arrival at the database in the window; returns the time."""
        now = env.now
        recent.append(now)
        cutoff = now - window
        while recent[0] <= cutoff:
            popleft()
        return now

    if variant == "simpy (Resource)":
        db = simpy.Resource(env, capacity=workers)
        users = db.users
        waiting = db.queue
        request = db.request

        def job(done: Any) -> Generator[Any, Any, None]:
            with request() as turn:
                yield turn
                factor = slow_factor if len(recent) / window > slow_above else 1.0
                yield timeout(service_time(service_rate) * factor)
            done.succeed(True)  # the client may have given up long ago

        def arrive(done: Any) -> bool:
            """A request reaches the database; False: rejected, the queue is full."""
            counted()
            if len(users) >= workers and len(waiting) >= queue_limit:
                return False
            process(job(done))
            return True

    else:
        jobs = simpy.Store(env)  # FIFO; each job is the event its client waits for
        items = jobs.items
        idle = jobs.get_queue  # pending gets: idle workers
        put = jobs.put
        via_event = variant == "simpy (reject via event)"

        def worker() -> Generator[Any, Any, None]:
            get = jobs.get
            while True:
                done = yield get()
                factor = slow_factor if len(recent) / window > slow_above else 1.0
                yield timeout(service_time(service_rate) * factor)
                done.succeed(True)  # the client may have given up long ago

        def arrive(done: Any) -> bool:
            """A request reaches the database; False: rejected, the queue is full."""
            counted()
            if len(items) - len(idle) >= queue_limit:
                if via_event:
                    done.succeed(False)
                    return True
                return False
            put(done)
            return True

        for _ in range(workers):
            process(worker())

    def client(arrived: float) -> Generator[Any, Any, None]:
        counts[0] += 1
        for _ in attempts_range:
            counts[1] += 1
            done = event()
            if reachable:
                if not arrive(done):
                    continue  # rejected at once: retry at once
            else:
                held.append(done)
            yield done | timeout(attempt_timeout)
            if done.triggered and done.value:
                counts[2] += 1
                if arrived < partition_start:
                    counts[4] += 1
                if arrived >= tail_from:
                    counts[6] += 1
                break
        if arrived < partition_start:
            counts[3] += 1
        if arrived >= tail_from:
            counts[5] += 1

    def traffic() -> Generator[Any, Any, None]:
        while True:
            yield timeout(arrival_gap(arrival_rate))
            now = env.now
            if now >= duration:
                return
            process(client(now))

    def partition() -> Generator[Any, Any, None]:
        nonlocal reachable
        yield timeout(p.partition_start)
        reachable = False
        yield timeout(p.partition_end - p.partition_start)
        reachable = True
        for done in held:  # the held requests all arrive now
            if not arrive(done):
                done.succeed(False)  # rejected: a client still waiting retries
        held.clear()

    process(traffic())
    process(partition())
    env.run(until=duration + p.drain)
    return Outcome(*counts)


# -- the floor: the same model as flat callbacks --------------------------------------------


def floor_model(p: Params, seed: int) -> Outcome:
    """The model with nothing but a heap of callbacks, in plain Python: no processes, no
    policy objects, no per-second metrics, every step inlined. It shows how fast this
    model can run in CPython at all, and so whether a target is reachable."""
    heap: list[tuple[float, int, Callable[[Any], None], Any]] = []
    push, pop = heapq.heappush, heapq.heappop
    ticket = itertools.count()
    arrival_gap = random.Random(f"{seed}:arrivals").expovariate
    service_time = random.Random(f"{seed}:service").expovariate
    rate, service_rate = p.rate, 1.0 / p.service_mean
    window, slow_above, slow_factor = p.slow_window, p.slow_above, p.slow_factor
    workers, queue_limit, timeout = p.workers, p.queue, p.attempt_timeout
    tail_from = p.duration - p.tail
    recent: deque[float] = deque()
    waiting: deque[list[Any]] = deque()
    held: list[list[Any]] = []
    busy, now, reachable = 0, 0.0, True
    counts = [0] * 7  # as Outcome

    def start(job: list[Any]) -> None:
        nonlocal busy
        busy += 1
        factor = slow_factor if len(recent) / window > slow_above else 1.0
        push(heap, (now + service_time(service_rate) * factor, next(ticket), finish, job))

    def submit(job: list[Any]) -> bool:
        recent.append(now)
        while recent[0] <= now - window:
            recent.popleft()
        if busy < workers:
            start(job)
        elif len(waiting) < queue_limit:
            waiting.append(job)
        else:
            return False
        return True

    def attempt(client: list[Any]) -> None:
        while client[1]:
            client[1] -= 1
            counts[1] += 1
            job = [client, True]  # the client, and whether it still waits
            if not reachable:
                held.append(job)
            elif not submit(job):
                continue  # rejected at once: retry at once
            push(heap, (now + timeout, next(ticket), give_up, job))
            return
        done(client, ok=False)

    def done(client: list[Any], ok: bool) -> None:
        arrived = client[0]
        if ok:
            counts[2] += 1
            counts[4] += arrived < p.partition_start
            counts[6] += arrived >= tail_from
        counts[3] += arrived < p.partition_start
        counts[5] += arrived >= tail_from

    def finish(job: list[Any]) -> None:
        nonlocal busy
        busy -= 1
        while waiting and busy < workers:
            start(waiting.popleft())
        if job[1]:
            job[1] = False
            done(job[0], ok=True)

    def give_up(job: list[Any]) -> None:
        if job[1]:
            job[1] = False
            attempt(job[0])

    def arrival(_: object) -> None:
        if now >= p.duration:
            return
        counts[0] += 1
        attempt([now, p.attempts])
        push(heap, (now + arrival_gap(rate), next(ticket), arrival, None))

    def partition(_: object) -> None:
        nonlocal reachable
        reachable = False

    def heal(_: object) -> None:
        nonlocal reachable
        reachable = True
        for job in held:
            if not submit(job) and job[1]:
                job[1] = False
                attempt(job[0])
        held.clear()

    push(heap, (arrival_gap(rate), next(ticket), arrival, None))
    push(heap, (p.partition_start, next(ticket), partition, None))
    push(heap, (p.partition_end, next(ticket), heal, None))
    end = p.duration + p.drain
    while heap and heap[0][0] <= end:
        now, _, action, argument = pop(heap)
        action(argument)
    return Outcome(*counts)


def floor_once(p: Params) -> tuple[float, Outcome]:
    gc.collect()
    started = time.process_time()
    outcome = floor_model(p, p.seed)
    return time.process_time() - started, outcome


def simpy_once(p: Params, variant: str) -> tuple[float, Outcome]:
    gc.collect()
    started = time.process_time()
    outcome = simpy_model(p, p.seed, variant)
    return time.process_time() - started, outcome


# -- running and reporting -----------------------------------------------------------------------


def best_of(
    measures: dict[str, Callable[[], tuple[float, Outcome]]],
) -> dict[str, tuple[float, list[float], Outcome]]:
    """Each side ``REPEATS`` times, in rounds (every side once per round), so a change
    in the machine's speed during the run touches every side alike; the best (lowest)
    CPU time of each."""
    times: dict[str, list[float]] = {name: [] for name in measures}
    outcomes: dict[str, Outcome] = {}
    for _ in range(REPEATS):
        for name, measure in measures.items():
            cpu, outcomes[name] = measure()
            times[name].append(cpu)
    return {name: (min(times[name]), times[name], outcomes[name]) for name in measures}


def quick_scenario(sc: Scenario) -> Scenario:
    """100 s of traffic, the partition at 30-40 s."""
    trigger = dataclasses.replace(sc.triggers[0], start=30.0, end=40.0)
    return dataclasses.replace(sc, duration=100.0, triggers=(trigger,))


def time_outage() -> dict[str, Any]:
    exe = Path(sys.executable).with_name("stormproof")
    command = [str(exe) if exe.exists() else (shutil.which("stormproof") or "stormproof")]
    command += ["outage", "--out", OUTAGE_OUT]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    return {
        "command": "stormproof outage --out " + OUTAGE_OUT,
        "wall_seconds": round(wall, 1),
        "returncode": done.returncode,
        "stdout_tail": done.stdout.strip().splitlines()[-3:],
        "stderr_tail": done.stderr.strip().splitlines()[-3:],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="100 s simulated (partition at 30-40 s), no `stormproof outage` timing",
    )
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the numbers here")
    return parser.parse_args(argv)


def labels(p: Params) -> dict[str, str]:
    return {
        "success_before_partition": "success before partition",
        "success_overall": "success overall",
        "success_tail": f"success, last {p.tail:g} s",
        "attempts_per_request": "attempts/request",
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine_info(PEERS)
    print(
        f"stormproof Outage Lab vs SimPy: simulated requests per CPU second, best of {REPEATS}"
        f"{' (--quick: 100 s simulated, partition at 30-40 s)' if args.quick else ''}"
    )
    print(f"Python {info['python']}")
    print(f"{info['platform']}; {info['cpu']}; {info['cpu_count']} CPUs")
    print("Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    started = time.monotonic()

    sc = load_scenario("metastable")
    strategy = strategies_for(sc)["one-retry"]
    if args.quick:
        sc = quick_scenario(sc)
    p = params_of(sc, strategy)
    print(
        f"\nModel: {p.rate:g}/s Poisson for {p.duration:g} s (+{p.drain:g} s drain); "
        f"{p.workers} workers, exp. service mean {p.service_mean * 1000:g} ms, queue "
        f"{p.queue}; x{p.slow_factor:g} above {p.slow_above:g}/s over {p.slow_window:g} s; "
        f"partition {p.partition_start:g}-{p.partition_end:g} s; {p.attempts} attempts, "
        f"{p.attempt_timeout:g} s each, no backoff; seed {p.seed}"
    )

    measures: dict[str, Callable[[], tuple[float, Outcome]]] = {
        "stormproof": lambda: stormproof_once(sc, strategy, p)
    }
    if simpy is not None:
        for variant in VARIANTS:
            measures[variant] = lambda variant=variant: simpy_once(p, variant)
    measures[FLOOR] = lambda: floor_once(p)
    sides = best_of(measures)

    w = max(len(name) for name in sides) + 2
    print(f"\nThroughput (CPU seconds: time.process_time of the whole run, best of {REPEATS})")
    print(
        f"  {'simulator':<{w}}{'requests':>10}{'attempts':>10}{'CPU s':>9}"
        f"{'requests/CPU-s':>16}{'stormproof vs':>15}   all repeats (CPU s)"
    )
    report: dict[str, Any] = {
        "machine": info,
        "repeats": REPEATS,
        "quick": args.quick,
        "model": dataclasses.asdict(p),
    }
    rates = {name: side[2].requests / side[0] for name, side in sides.items()}
    for name, (cpu, times, outcome) in sides.items():
        ratio = rates["stormproof"] / rates[name]
        shown = ", ".join(f"{t:.3f}" for t in times)
        print(
            f"  {name:<{w}}{outcome.requests:>10}{outcome.attempts:>10}{cpu:>9.3f}"
            f"{rates[name]:>16,.0f}{ratio:>14.2f}x   {shown}"
        )
        report[name] = {
            "requests": outcome.requests,
            "attempts": outcome.attempts,
            "cpu_seconds_best": round(cpu, 4),
            "cpu_seconds_all": [round(t, 4) for t in times],
            "requests_per_cpu_second": round(rates[name]),
            "stormproof_ratio": round(ratio, 3),
            "outcome": {k: round(v, 4) for k, v in outcome.numbers().items()},
        }
    if simpy is None:
        print(f"  simpy: skipped, not installed ({INSTALL_HINT})")
        report["simpy"] = None
    else:
        for name, what in VARIANTS.items():
            print(f"  {name}: {what}")
        print(f"  {FLOOR}: {FLOOR_WHAT}")
        print("  'stormproof vs': stormproof's requests/CPU-s over the row's")

    print("\nBehaviour (SimPy uses other random streams than stormproof: shape, not digits)")
    columns = labels(p)
    print(f"  {'simulator':<{w}}" + " | ".join(columns.values()))
    for name, side in sides.items():
        numbers = side[2].numbers()
        cells = [f"{numbers[key]:>{len(label)}.3f}" for key, label in columns.items()]
        print(f"  {name:<{w}}" + " | ".join(cells))

    targets: list[dict[str, Any]] = []
    if simpy is not None:
        ratio = rates["stormproof"] / rates["simpy"]
        report["ratio"] = round(ratio, 2)
        print(
            f"\nstormproof requests/CPU-s / SimPy requests/CPU-s = {ratio:.2f}x"
            f" (target >= {TARGET_RATIO:g}x)"
        )
        floor = rates[FLOOR] / rates["simpy"]
        report["floor_ratio"] = round(floor, 2)
        print(
            f"{FLOOR} requests/CPU-s / SimPy requests/CPU-s = {floor:.2f}x: the fastest this "
            "model ran in CPython here, with no policy objects and no metrics"
        )
        add_target(
            targets,
            f"stormproof simulates >= {TARGET_RATIO:g}x SimPy's requests per CPU second",
            round(ratio, 2),
            ratio >= TARGET_RATIO,
            f"{ratio:.2f}x",
        )
    else:
        report["ratio"] = None
        add_target(targets, f">= {TARGET_RATIO:g}x SimPy", None, None, "SimPy not installed")

    if args.quick:
        report["outage"] = None
        print("\n`stormproof outage`: skipped (--quick)")
        add_target(targets, "`stormproof outage` in about a minute", None, None, "--quick")
    else:
        print(f"\nTiming `stormproof outage --out {OUTAGE_OUT}` (defaults, wall clock) ...")
        outage = time_outage()
        report["outage"] = outage
        wall = outage["wall_seconds"]
        print(f"  {wall:.1f} s wall, exit code {outage['returncode']}")
        for line in outage["stdout_tail"] + outage["stderr_tail"]:
            print(f"  | {line}")
        add_target(
            targets,
            f"`stormproof outage` about a minute (<= {TARGET_OUTAGE_S:g} s) on this machine",
            wall,
            outage["returncode"] == 0 and wall <= TARGET_OUTAGE_S,
            f"{wall:.1f} s wall",
        )
    print_targets(targets)
    report["targets"] = targets
    print(f"\nTotal time: {time.monotonic() - started:.1f} s")
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
