"""Optimistic-concurrency contention: the workload of the 2015 AWS Architecture Blog
experiment on backoff and jitter.

One row with a version number. ``occ.clients`` clients start together; each updates
the row once: it reads the version, then writes conditionally on it. The write
succeeds only if nobody wrote in between; otherwise the client gets a ``Conflict``
and its strategy's ``Retry`` (the real object, on the simulation's clock) decides
whether and when to read and try again. Every message crosses the network once, with
a delay drawn from ``occ.network_delay``.

Metrics: ``calls`` (writes the row received: the work), ``completion_s`` (when the last
client finished), ``amplification`` (writes per client) and ``success_rate``.
"""

from __future__ import annotations

import time
from typing import Any

from ._engine import Simulation
from ._metrics import (
    AMPLIFICATION,
    ATTEMPTS,
    CALLS,
    COMPLETION,
    CONFLICTS,
    REQUESTS,
    SUCCESS_RATE,
    UNFINISHED,
    Metric,
)
from ._result import RunResult
from ._scenario import Scenario
from ._strategies import build_retry
from ._strategy_spec import StrategySpec

__all__ = ["Conflict", "run_occ"]


class Conflict(Exception):
    """The row changed between the read and the conditional write (HTTP 409 style)."""

    status_code = 409


_CONFLICT = Conflict("the row's version changed since it was read")


def run_occ(scenario: Scenario, strategy: StrategySpec, seed: int | None = None) -> RunResult:
    """Simulate the contention of ``scenario.occ`` with every client running ``strategy``."""
    occ = scenario.occ
    if occ is None:
        raise ValueError(f"scenario {scenario.name!r} has no [occ] table")
    started_cpu = time.process_time()
    sim = Simulation(scenario.seed if seed is None else seed)
    delay = occ.network_delay.sampler(sim.stream("network"))
    row = [0]  # the version
    writes = [0]
    finished: list[float] = []
    failed: list[float] = []
    deadline = scenario.clients.deadline

    def client() -> Any:
        retry = None if strategy.retry is None else build_retry(strategy.retry, sim, deadline)
        state = None
        if retry is not None:
            try:
                state = retry.begin(sim.now)
            except Exception:  # refused locally (an adaptive throttle): never sent
                failed.append(sim.now)
                return
        while True:
            yield delay()  # the read travels to the row
            seen = row[0]
            yield delay()  # its answer travels back
            yield delay()  # the conditional write travels
            writes[0] += 1
            won = row[0] == seen
            if won:
                row[0] += 1
            yield delay()  # its answer travels back
            if won:
                if state is not None:
                    state.on_success()
                finished.append(sim.now)
                return
            pause = None if state is None else state.on_exception(_CONFLICT, sim.now)
            if pause is None:
                failed.append(sim.now)
                return
            if pause > 0:
                yield pause

    for _ in range(occ.clients):
        sim.start(client())
    sim.run(scenario.duration)
    clients = occ.clients
    done = len(finished)
    ends = finished + failed
    values: dict[Metric, Any] = {
        REQUESTS: clients,
        ATTEMPTS: writes[0],
        CALLS: writes[0],
        AMPLIFICATION: writes[0] / clients,
        SUCCESS_RATE: done / clients,
        COMPLETION: max(ends) if len(ends) == clients else None,
        UNFINISHED: clients - len(ends),
        CONFLICTS: writes[0] - done,
    }
    return RunResult(
        scenario=scenario.name,
        strategy=strategy.name,
        seed=sim.seed,
        summary={metric.name: value for metric, value in values.items()},
        series={},
        cpu_seconds=time.process_time() - started_cpu,
    )
