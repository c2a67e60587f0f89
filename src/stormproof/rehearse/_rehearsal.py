"""The rehearsal: the servers, the replicator, each strategy's workload in a process of
its own, what the servers counted, and the Lab's prediction for the same parameters."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from stormproof import ConfigError
from stormproof.sim import RunResult, Scenario, parse_scenario, run, strategies_for

from ._servers import REGIONS, Replicator, Server, make_client, seed_tables
from ._workload import ERROR, STALE, STRATEGIES

__all__ = ["Measured", "Rehearsal", "RehearsalOptions", "lab_scenario", "rehearse"]

HOSTS = {
    "us-east-1": "dynamodb.us-east-1.rehearsal.test",
    "us-west-2": "dynamodb.us-west-2.rehearsal.test",
}


@dataclass(frozen=True)
class RehearsalOptions:
    """What a rehearsal runs (checked when built: the messages name the option)."""

    seconds: float = 36.0
    threads: int = 8
    think_time: float = 0.1
    read_share: float = 0.8
    keys: int = 200
    outage_start: float = 8.0
    outage_end: float = 20.0
    cache_ttl: float = 5.0
    stale_ttl: float = 3600.0
    attempt_timeout: float = 1.0
    deadline: float = 2.0
    seed: int = 1
    strategies: tuple[str, ...] = tuple(STRATEGIES)

    def __post_init__(self) -> None:
        for name in ("seconds", "think_time", "attempt_timeout", "deadline", "cache_ttl"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
                raise ConfigError(name, "a number > 0", value)
            if not math.isfinite(value):
                raise ConfigError(name, "a finite number", value)
        if self.seconds > 3600:
            raise ConfigError("seconds", "at most 3600", self.seconds)
        if not isinstance(self.stale_ttl, int | float) or not self.stale_ttl >= 0:
            raise ConfigError("stale_ttl", "a number >= 0", self.stale_ttl)
        if not isinstance(self.threads, int) or not 1 <= self.threads <= 256:
            raise ConfigError("threads", "a whole number from 1 to 256", self.threads)
        if not isinstance(self.keys, int) or self.keys < 1:
            raise ConfigError("keys", "a whole number >= 1", self.keys)
        if not isinstance(self.read_share, int | float) or not 0 <= self.read_share <= 1:
            raise ConfigError("read_share", "a number from 0 to 1", self.read_share)
        if not 0 <= self.outage_start < self.outage_end <= self.seconds:
            raise ConfigError(
                "outage",
                f"0 <= start < end <= seconds ({self.seconds:g})",
                (self.outage_start, self.outage_end),
            )
        if not self.strategies or any(s not in STRATEGIES for s in self.strategies):
            raise ConfigError(
                "strategies",
                "names of known strategies (" + ", ".join(STRATEGIES) + ")",
                ",".join(self.strategies),
            )
        if len(set(self.strategies)) != len(self.strategies):
            raise ConfigError("strategies", "each strategy once", ",".join(self.strategies))

    @classmethod
    def scaled(cls, seconds: float, **changes: Any) -> RehearsalOptions:
        """Options for a run of ``seconds``, the outage from 22% to 56% of it (as the
        defaults: 8 to 20 s of 36)."""
        return cls(
            seconds=seconds,
            outage_start=round(seconds * 8 / 36, 3),
            outage_end=round(seconds * 20 / 36, 3),
            **changes,
        )


@dataclass
class Measured:
    """One strategy's rehearsal: its ``summary`` (the Lab's metric names, plus
    ``server_attempts``, ``dns_failures``, ``errors``, ``stale``, ``attempts_by_region``,
    ``operations``), and per second ``series`` (by the second requests arrived; attempts
    by the second they were made)."""

    strategy: str
    summary: dict[str, Any]
    series: dict[str, list[float]]
    wall_s: float


@dataclass
class Rehearsal:
    """A whole rehearsal: the options, the measured runs, the Lab's predictions (same
    strategies, same parameters), and the Lab scenario they came from."""

    options: RehearsalOptions
    measured: list[Measured]
    predicted: dict[str, RunResult]
    scenario: Scenario
    service_time: float
    wall_s: float
    replicated: int = 0
    notes: list[str] = field(default_factory=list)


def _workload(options: RehearsalOptions, strategy: str, ports: dict[str, int]) -> dict[str, Any]:
    settings = {
        **asdict(options),
        "strategy": strategy,
        "tag": strategy,
        "hosts": HOSTS,
        "ports": ports,
        "outage": [options.outage_start, options.outage_end],
    }
    env = dict(os.environ)
    env.pop("AWS_NEW_RETRIES_2026", None)
    env.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    for name in ("AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "AWS_PROFILE"):
        env.pop(name, None)
    if strategy == "aws-2026":
        env["AWS_NEW_RETRIES_2026"] = "true"
    done = subprocess.run(
        [sys.executable, "-m", "stormproof.rehearse._workload"],
        input=json.dumps(settings),
        capture_output=True,
        text=True,
        env=env,
        timeout=options.seconds + 300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"the {strategy} workload failed (exit {done.returncode}): {done.stderr[-2000:]}"
        )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _measure(
    options: RehearsalOptions,
    strategy: str,
    result: dict[str, Any],
    counts: dict[str, dict[str, dict[str, dict[str, int]]]],
) -> Measured:
    seconds = math.ceil(options.seconds)
    t0 = float(result["t0"])
    length = seconds + 600
    series = {
        name: [0.0] * length
        for name in ("requests", "successes", "goodput", "stale", "errors", "attempts")
    }
    latencies: list[float] = []
    for arrived, outcome, latency in result["requests"]:
        second = int(arrived)
        series["requests"][second] += 1
        latencies.append(latency)
        if outcome == ERROR:
            series["errors"][second] += 1
            continue
        series["successes"][second] += 1
        if outcome == STALE:
            series["stale"][second] += 1
        if latency <= options.deadline:
            series["goodput"][second] += 1
    by_region: dict[str, int] = {}
    operations: dict[str, int] = {}
    for region in REGIONS:
        name = f"attempts:{region}"
        series[name] = [0.0] * length
        for tenth, ops in counts[region].get(strategy, {}).items():
            offset = math.floor((int(tenth) + 0.5) / 10 - t0)  # within 0.05 s
            index = min(max(offset, 0), length - 1)
            for operation, n in ops.items():
                series[name][index] += n
                series["attempts"][index] += n
                by_region[region] = by_region.get(region, 0) + n
                operations[operation] = operations.get(operation, 0) + n
    series["dns_failures"] = [0.0] * length
    for second, n in result["dns_failures"].items():
        index = min(int(second), length - 1)
        series["dns_failures"][index] += n
        series["attempts"][index] += n
    requests = len(result["requests"])
    server_attempts = sum(by_region.values())
    dns_failures = sum(result["dns_failures"].values())
    attempts = server_attempts + dns_failures
    start, end = int(options.outage_start), math.ceil(options.outage_end)
    in_requests = sum(series["requests"][start:end])
    in_attempts = sum(series["attempts"][start:end])
    in_server = sum(sum(series[f"attempts:{r}"][start:end]) for r in REGIONS)
    ordered = sorted(latencies)
    errors = int(sum(series["errors"]))
    stale = int(sum(series["stale"]))
    successes = sum(series["successes"])
    summary: dict[str, Any] = {
        "requests": requests,
        "attempts": attempts,
        "server_attempts": server_attempts,
        "dns_failures": dns_failures,
        "amplification": attempts / requests if requests else None,
        "amplification_during_trigger": in_attempts / in_requests if in_requests else None,
        "server_amplification_during_trigger": in_server / in_requests if in_requests else None,
        "success_rate": successes / requests if requests else None,
        "errors": errors,
        "stale": stale,
        "stale_rate": stale / requests if requests else None,
        "goodput": int(sum(series["goodput"])),
        "goodput_rate": sum(series["goodput"]) / requests if requests else None,
        "p50_latency_s": _quantile(ordered, 0.50),
        "p99_latency_s": _quantile(ordered, 0.99),
        "recovery_s": _recovery(series["requests"], series["goodput"], start, end, seconds),
        "attempts_by_region": by_region,
        "operations": operations,
    }
    return Measured(
        strategy, summary, {k: v[:seconds] for k, v in series.items()}, result["wall_s"]
    )


def _quantile(ordered: list[float], q: float) -> float | None:
    """The ``q`` quantile of values in ascending order, as the Lab takes it."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _recovery(
    requests: list[float], goodput: list[float], start: int, end: int, duration: int
) -> float | None:
    """The glossary's recovery time, as the Lab measures it: seconds from the end of the
    outage until goodput (the share of each second's requests answered within the
    deadline) is back to 95% of its level before the outage for 10 s; None if not
    within the run."""
    before = sum(requests[:start])
    if not before:
        return None
    target = 0.95 * sum(goodput[:start]) / before
    streak = 0
    for second in range(end, duration):
        asked = requests[second]
        streak = streak + 1 if (goodput[second] / asked if asked else 1.0) >= target else 0
        if streak >= 10:
            return float(second - 9 - end)
    return None


def _service_time(port: int) -> float:
    """The median time of a GetItem at the east server, as a client sees it."""
    client = make_client("us-east-1", port, "setup")
    times = []
    for i in range(30):
        began = time.perf_counter()
        client.get_item(TableName="accounts", Key={"id": {"S": f"acct-{i}"}})
        times.append(time.perf_counter() - began)
    times.sort()
    return times[len(times) // 2]


def lab_scenario(options: RehearsalOptions, service_time: float) -> Scenario:
    """The Outage Lab's model of the rehearsal: the same users, think time, mix, keys,
    outage window, attempt timeout and deadline; one app instance (one process shares
    its policies); no DNS caching (each attempt resolves the name, as each opens a
    connection); capacity high enough not to matter; and a ``stormproof`` strategy
    configured as the rehearsal's ``RegionalClient``."""
    o = options
    regions = "".join(
        f"""
[[regions]]
name = "{region}"
hostname = "{HOSTS[region]}"
capacity = 64
service_time = {{ distribution = "lognormal", mean = {service_time:.6f}, sigma = 0.5 }}
queue = 1000
"""
        for region in REGIONS
    )
    text = f"""
name = "rehearsal"
title = "The us-east-1 DNS outage, rehearsed on loopback"
description = "The Lab's model of the rehearsal's parameters."
duration = {o.seconds}
seed = {o.seed}
strategies = {json.dumps(list(o.strategies))}

[clients]
loop = "closed"
users = {o.threads}
think_time = {o.think_time}
instances = 1
read_share = {o.read_share}
keys = {o.keys}
key_skew = 0.0
deadline = {o.deadline}
attempt_timeout = {o.attempt_timeout}
connections = {max(10, o.threads)}

[dns]
ttl = 0.0
negative_ttl = 0.0
latency = 0.0001
capacity = 1000000
{regions}
[[triggers]]
kind = "dns_empty"
hostname = "{HOSTS["us-east-1"]}"
mode = "empty"
start = {o.outage_start}
end = {o.outage_end}

[[strategy]]
name = "stormproof"
summary = "{STRATEGIES["stormproof"]}"
cache = {{ ttl = {o.cache_ttl}, stale_ttl = {o.stale_ttl} }}
retry = {{ on = "regional", attempts = 3, budget = "aws-standard" }}
failover = {{ failback_after = 30.0, probe_interval = 5.0 }}
"""
    return parse_scenario(text, "<rehearsal>")


def rehearse(
    options: RehearsalOptions | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> Rehearsal:
    """Run the rehearsal: two counting moto servers, the replicator, then each
    strategy's workload in turn (a process each), and the Lab's prediction."""
    options = options or RehearsalOptions()
    say = progress or (lambda _: None)
    began = time.monotonic()
    measured: list[Measured] = []
    servers = {region: Server() for region in REGIONS}
    try:
        for server in servers.values():
            server.start()
        ports = {region: server.port for region, server in servers.items()}
        say(
            f"servers: us-east-1 on 127.0.0.1:{ports['us-east-1']}, "
            f"us-west-2 on 127.0.0.1:{ports['us-west-2']}"
        )
        seed_tables(ports, options.keys)
        service_time = _service_time(ports["us-east-1"])
        replicator = Replicator(ports).start()
        try:
            for strategy in options.strategies:
                say(f"{strategy}: {options.seconds:g} s, {options.threads} threads")
                result = _workload(options, strategy, ports)
                counts = {region: server.counts() for region, server in servers.items()}
                measured.append(_measure(options, strategy, result, counts))
        finally:
            replicator.stop()
    finally:
        for server in servers.values():
            server.stop()
    scenario = lab_scenario(options, service_time)
    known = strategies_for(scenario)
    say("the Lab's prediction")
    predicted = {name: run(scenario, known[name]) for name in options.strategies}
    return Rehearsal(
        options,
        measured,
        predicted,
        scenario,
        service_time,
        time.monotonic() - began,
        replicator.copied,
    )
