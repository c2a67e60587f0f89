"""What a scenario is: clients, DNS, regions, triggers, the strategies to compare and
an optional contention workload and sweep, read and checked from a scenario file's
data into frozen dataclasses."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._fields import Locator, ScenarioError, Section
from ._load import Trace
from ._service import DISCIPLINES, Distribution, Slowdown, lognormal_sigma
from ._strategy_spec import StrategySpec, parse_strategy
from ._sweep_spec import SweepSpec, check_sweep, parse_sweep
from ._triggers import LoadRamp, LoadSpike, Trigger, parse_trigger
from ._variant_spec import Variant, parse_quick, parse_variants

__all__ = [
    "ClientsSpec",
    "DNSSpec",
    "OCCSpec",
    "RegionSpec",
    "Scenario",
    "build_scenario",
]


@dataclass(frozen=True)
class ClientsSpec:
    """The callers. ``loop = "open"``: requests arrive at ``rate`` per second whatever
    the latency (a web front end); ``"closed"``: ``users`` users each wait for their
    answer, then think ``think_time`` seconds on average, before the next request.
    Open-loop ``arrivals`` are ``"poisson"`` (at ``rate``) or ``"trace"``: at the
    instants of ``trace``, read from a CSV file."""

    instances: int = 10
    rate: float = 100.0
    read_share: float = 0.9
    keys: int = 10_000
    key_skew: float = 1.0
    deadline: float = 2.0
    attempt_timeout: float = 1.0
    connections: int = 10
    loop: str = "open"
    users: int = 0
    think_time: float = 1.0
    connection_lifetime: float | None = None
    arrivals: str = "poisson"
    trace: Trace | None = None

    def describe(self) -> str:
        if self.trace is not None:
            return (
                f"{len(self.trace.times)} requests from a trace ({self.trace.path}) in "
                f"{self.instances} app instances"
            )
        if self.loop == "closed":
            return (
                f"{self.users} users (closed loop, {self.think_time:g} s think time) in "
                f"{self.instances} app instances"
            )
        return f"{self.rate:g} requests/s from {self.instances} app instances"


@dataclass(frozen=True)
class DNSSpec:
    ttl: float = 60.0
    negative_ttl: float = 5.0
    capacity: float = 10_000.0
    latency: float = 0.002


@dataclass(frozen=True)
class RegionSpec:
    """A region: its service (``service_time``: reads', and writes' too unless
    ``write_service_time`` says otherwise; ``read_share``: the clients' share of reads,
    at which ``capacity_rps`` is counted), the network's round-trip time to it
    (``rtt``, None: none), a request-rate limit (``rate_limit`` per second, ``burst``
    requests; None: none), its queue's discipline (``"fifo"``, ``"lifo"`` or
    ``"codel"``, with ``codel_target`` and ``codel_interval`` in seconds), what it
    does with queued work whose client gave up (``abandoned``: ``"serve"`` or
    ``"drop"``), and the service it calls for every request (``calls``; None: none).
    A service only other services call has no ``hostname`` ("")."""

    name: str
    hostname: str
    capacity: int
    service_time: Distribution
    queue: int = 1000
    slowdown: Slowdown | None = None
    abandoned: str = "serve"
    setup_time: float = 0.0
    error_rate: float = 0.0
    write_service_time: Distribution | None = None
    read_share: float = 1.0
    rtt: Distribution | None = None
    rate_limit: float | None = None
    burst: float = 0.0
    queue_discipline: str = "fifo"
    codel_target: float = 0.005
    codel_interval: float = 0.1
    calls: Dependency | None = None

    @property
    def drop_expired(self) -> bool:
        """Whether it drops queued work whose client gave up (``abandoned = "drop"``)."""
        return self.abandoned == "drop"

    @property
    def mean_service_time(self) -> float:
        """Seconds, at the clients' mix of reads and writes."""
        read = self.service_time.mean
        write = self.write_service_time
        if write is None:
            return read
        return self.read_share * read + (1.0 - self.read_share) * write.mean

    @property
    def capacity_rps(self) -> float:
        """The most requests per second it can sustain: ``capacity / mean service time``,
        or, for a server that slows down with load, the best rate it reaches slowed; at
        most its ``rate_limit``."""
        if self.rate_limit is not None:
            return min(self._capacity_rps, self.rate_limit)
        return self._capacity_rps

    @property
    def _capacity_rps(self) -> float:
        mean = self.mean_service_time
        base = self.capacity / mean
        slow = self.slowdown
        if slow is None:
            return base
        if slow.kind == "rate":  # fast only while at most `above` arrive per second
            return max(min(base, slow.above), base / slow.factor)
        fast = min(self.capacity, slow.above) / mean  # the most it serves unslowed
        if slow.kind == "concurrency":
            return max(fast, base / slow.factor)
        if self.capacity <= slow.above:
            return base
        excess = slow.factor * (self.capacity - slow.above) / slow.above
        return max(fast, base / (1.0 + excess))  # linear: every thread busy, all slowed


@dataclass(frozen=True)
class Dependency:
    """A service a region's service calls for every request, once its own work is
    done, holding the request's place meanwhile: each call waits at most ``timeout``
    seconds and is made again at once on a failure or a timeout, ``attempts`` calls
    in all; when none succeeded, the request fails (HTTP 500)."""

    service: RegionSpec
    timeout: float
    attempts: int = 1


@dataclass(frozen=True)
class OCCSpec:
    """Optimistic-concurrency contention: ``clients`` start together and each updates one
    row once (read its version, then write conditionally on it), retrying on conflict."""

    clients: int
    network_delay: Distribution


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    description: str
    duration: float
    seed: int
    strategies: tuple[str, ...]
    clients: ClientsSpec
    dns: DNSSpec
    regions: tuple[RegionSpec, ...]
    triggers: tuple[Trigger, ...]
    custom: dict[str, StrategySpec] = field(default_factory=dict)
    source: str = ""
    occ: OCCSpec | None = None
    sweep: SweepSpec | None = None
    variants: tuple[Variant, ...] = ()
    """The scenario with one key assumption changed at a time (``[[variants]]``)."""
    quick: Variant | None = None
    """A shorter version for quick runs (``[quick]``), if the scenario has one."""

    @property
    def services(self) -> tuple[RegionSpec, ...]:
        """Every service: the regions', and the ones they call (each after its caller)."""
        found: list[RegionSpec] = []
        for region in self.regions:
            spec: RegionSpec | None = region
            while spec is not None:
                found.append(spec)
                spec = None if spec.calls is None else spec.calls.service
        return tuple(found)

    @property
    def trigger_window(self) -> tuple[float, float] | None:
        if not self.triggers:
            return None
        return (min(t.start for t in self.triggers), max(t.end for t in self.triggers))


# -- reading a scenario's data ------------------------------------------------------------


_SPREADS = {
    "normal": "give its standard deviation as `stddev`, in seconds",
    "lognormal": "give `sigma` (the standard deviation of the logarithm, unit-less) or `p99` "
    "(the 99th percentile, in seconds)",
}


def _distribution(section: Section) -> Distribution:
    """A distribution of times in seconds: ``distribution``, ``mean``, and its spread:
    ``stddev`` (seconds) for a normal one, ``sigma`` (unit-less) or ``p99`` (seconds)
    for a lognormal one, none for the others."""
    kind = section.string(
        "distribution", "lognormal", choices=("constant", "exponential", "lognormal", "normal")
    )
    mean = section.number("mean", low=0.0, low_open=True)
    allowed = {"normal": ("stddev",), "lognormal": ("sigma", "p99")}.get(kind, ())
    for spread in ("sigma", "stddev", "p99"):
        if section.has(spread) and spread not in allowed:
            how = _SPREADS.get(kind, "it has no spread to give (the mean sets it)")
            requirement = f"left out of a {kind} distribution ({how})"
            raise section.fail(spread, requirement, section.raw(spread))
    if kind == "normal":
        spec = Distribution(kind, mean, stddev=section.number("stddev", low=0.0))
    elif kind == "lognormal" and section.has("p99"):
        if section.has("sigma"):
            raise section.fail(
                "p99", "left out when `sigma` is given (one or the other)", section.raw("p99")
            )
        p99 = section.number("p99", low=0.0, low_open=True)
        sigma = lognormal_sigma(mean, p99)
        if sigma is None:
            highest = mean * math.exp(2.3263478740408408**2 / 2.0)
            raise section.fail(
                "p99",
                f"above the mean ({mean:g} s) and at most {highest:.4g} s (no lognormal "
                "distribution with that mean has a higher 99th percentile)",
                p99,
            )
        spec = Distribution(kind, mean, sigma=sigma)
    else:
        spec = Distribution(kind, mean, sigma=section.number("sigma", 0.5, low=0.0))
    section.done()
    return spec


def _service_times(section: Section) -> tuple[Distribution, Distribution | None]:
    """``service_time``: one distribution, or one per operation (``read`` and
    ``write``, a table each)."""
    if not (section.has("read") or section.has("write")):
        return _distribution(section), None
    for op, other in (("read", "write"), ("write", "read")):
        if not section.has(op):
            raise section.fail(op, f"given with `{other}` (a table each)", None)
    read = _distribution(section.section("read"))
    write = _distribution(section.section("write"))
    section.done()
    return read, write


def _rtt(section: Section) -> Distribution | None:
    """``rtt``: seconds (a number: constant; 0: none), or a distribution's table."""
    value = section.raw("rtt", None)
    if value is None:
        return None
    if isinstance(value, dict):
        return _distribution(section.section("rtt"))
    seconds = section.number("rtt", low=0.0)
    return Distribution("constant", seconds) if seconds > 0 else None


def _abandoned(section: Section) -> str:
    """``abandoned``, or its older form ``drop_expired`` (true: ``"drop"``)."""
    if section.has("drop_expired"):
        if section.has("abandoned"):
            raise section.fail(
                "drop_expired",
                "left out when `abandoned` is given (it is `abandoned`'s older name)",
                section.raw("drop_expired"),
            )
        return "drop" if section.boolean("drop_expired") else "serve"
    return section.string("abandoned", "serve", choices=("serve", "drop"))


def _dependency(section: Section, read_share: float) -> Dependency:
    """``calls``: a service of its own (a region's fields but ``hostname``), with the
    policy of its callers' calls (``timeout``, seconds; ``attempts``)."""
    timeout = section.number("timeout", low=0.0, low_open=True)
    attempts = section.integer("attempts", 1, low=1)
    return Dependency(_region(section, read_share, called=True), timeout, attempts)


def _region(section: Section, read_share: float, called: bool = False) -> RegionSpec:
    """A ``[[regions]]`` table, or (``called``) the table of a service regions call."""
    slowdown = None
    if (part := section.optional_section("slowdown")) is not None:
        slowdown = Slowdown(
            part.string("kind", choices=("rate", "concurrency", "linear")),
            part.number("above", low=0.0, low_open=True),
            part.number("factor", low=0.0, low_open=True),
            part.number("window", 1.0, low=0.0, low_open=True),
        )
        part.done()
    read, write = _service_times(section.section("service_time"))
    rate_limit = None
    burst = 0.0
    if section.has("rate_limit"):
        rate_limit = section.number("rate_limit", low=0.0, low_open=True)
        burst = section.number("burst", rate_limit if rate_limit >= 1.0 else 1.0, low=1.0)
    elif section.has("burst"):
        raise section.fail("burst", "left out without a `rate_limit`", section.raw("burst"))
    discipline = section.string("queue_discipline", "fifo", choices=DISCIPLINES)
    codel = {"codel_target": 0.005, "codel_interval": 0.1}
    for name, default in codel.items():
        if discipline == "codel":
            codel[name] = section.number(name, default, low=0.0, low_open=True)
        elif section.has(name):
            requirement = f'left out with queue_discipline = "{discipline}" (a CoDel setting)'
            raise section.fail(name, requirement, section.raw(name))
    spec = RegionSpec(
        name=section.string("name"),
        hostname=_hostname(section, called),
        capacity=section.integer("capacity", low=1),
        service_time=read,
        queue=section.integer("queue", 1000),
        slowdown=slowdown,
        abandoned=_abandoned(section),
        setup_time=section.number("setup_time", 0.0, low=0.0),
        error_rate=section.number("error_rate", 0.0, low=0.0, high=1.0),
        write_service_time=write,
        read_share=read_share,
        rtt=_rtt(section),
        rate_limit=rate_limit,
        burst=burst,
        queue_discipline=discipline,
        codel_target=codel["codel_target"],
        codel_interval=codel["codel_interval"],
        calls=_calls(section, read_share),
    )
    section.done()
    return spec


def _hostname(section: Section, called: bool) -> str:
    """A region's host name; a service only other services call has none."""
    if not called:
        return section.string("hostname")
    if section.has("hostname"):
        requirement = "left out of a service regions call (no client resolves its name)"
        raise section.fail("hostname", requirement, section.raw("hostname"))
    return ""


def _calls(section: Section, read_share: float) -> Dependency | None:
    part = section.optional_section("calls")
    return None if part is None else _dependency(part, read_share)


def _clients(c: Section, duration: float, source: str) -> ClientsSpec:
    loop = c.string("loop", "open", choices=("open", "closed"))
    unused = ("users", "think_time") if loop == "open" else ("rate",)
    for name in unused:
        if c.has(name):
            raise c.fail(name, f"left out with {loop}-loop clients (loop = {loop!r})", c.raw(name))
    closed = loop == "closed"
    if closed and c.has("arrivals"):
        raise c.fail("arrivals", "left out with closed-loop clients", c.raw("arrivals"))
    arrivals = (
        "poisson" if closed else c.string("arrivals", "poisson", choices=("poisson", "trace"))
    )
    trace = None
    if arrivals == "trace":
        if c.has("rate"):
            raise c.fail(
                "rate", 'left out with arrivals = "trace" (the trace sets it)', c.raw("rate")
            )
        trace = _read_trace(c, duration, source)
    elif c.has("trace"):
        raise c.fail("trace", 'left out unless arrivals = "trace"', c.raw("trace"))
    spec = ClientsSpec(
        instances=c.integer("instances", 10, low=1),
        rate=100.0
        if closed or trace is not None
        else c.number("rate", 100.0, low=0.0, low_open=True),
        read_share=c.number("read_share", 0.9, low=0.0, high=1.0),
        keys=c.integer("keys", 10_000, low=1),
        key_skew=c.number("key_skew", 1.0, low=0.0),
        deadline=c.number("deadline", 2.0, low=0.0, low_open=True),
        attempt_timeout=c.number("attempt_timeout", 1.0, low=0.0, low_open=True),
        connections=c.integer("connections", 10, low=1),
        loop=loop,
        users=c.integer("users", low=1) if closed else 0,
        think_time=c.number("think_time", 1.0, low=0.0, low_open=True) if closed else 1.0,
        connection_lifetime=(
            c.number("connection_lifetime", low=0.0, low_open=True)
            if c.has("connection_lifetime")
            else None
        ),
        arrivals=arrivals,
        trace=trace,
    )
    c.done()
    return spec


def _read_trace(c: Section, duration: float, source: str) -> Trace:
    """The ``trace`` file (CSV, relative to the scenario file's folder): a header
    naming its columns, ``time`` (seconds into the run, in order, before
    ``duration``) and optionally ``op`` (``read`` or ``write``) and ``key`` (any text:
    equal texts are the same key); a row per request."""
    name = c.string("trace", what="the path of a CSV file (relative to the scenario file)")
    path = Path(name)
    if not path.is_absolute():
        path = Path(source).parent / path
    if not path.is_file():
        raise c.fail("trace", f"a CSV file that exists (not found: {path})", name)
    times: list[float] = []
    ops: list[str] = []
    keys: list[int] = []
    numbers: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        columns = [column.strip() for column in reader.fieldnames or ()]
        if "time" not in columns:
            raise ScenarioError(f"{path}:1", "header", "a row of column names with `time`", columns)
        extra = [column for column in columns if column not in ("time", "op", "key")]
        if extra:
            raise ScenarioError(f"{path}:1", "header", "columns time, op and key only", extra[0])
        reader.fieldnames = columns
        has_op, has_key = "op" in columns, "key" in columns
        last = 0.0
        for row in reader:
            where = f"{path}:{reader.line_num}"
            text = (row.get("time") or "").strip()
            try:
                time = float(text)
            except ValueError:
                raise ScenarioError(where, "time", "a number of seconds", text) from None
            if not 0.0 <= time < duration:
                raise ScenarioError(where, "time", f">= 0 and < duration ({duration:g})", time)
            if time < last:
                raise ScenarioError(where, "time", f">= the row before's ({last:g}): sorted", time)
            last = time
            times.append(time)
            if has_op:
                op = (row.get("op") or "").strip()
                if op not in ("read", "write"):
                    raise ScenarioError(where, "op", "'read' or 'write'", op)
                ops.append(op)
            if has_key:
                key = (row.get("key") or "").strip()
                keys.append(numbers.setdefault(key, len(numbers)))
    if not times:
        raise c.fail("trace", "a CSV file with at least one request", name)
    return Trace(
        str(path),
        tuple(times),
        tuple(ops) if has_op else None,
        tuple(keys) if has_key else None,
    )


def _occ(part: Section) -> OCCSpec:
    spec = OCCSpec(
        clients=part.integer("clients", 10, low=1),
        network_delay=_distribution(part.section("network_delay")),
    )
    part.done()
    return spec


def _regions(
    sections: list[Section], read_share: float
) -> tuple[dict[str, RegionSpec], dict[str, RegionSpec]]:
    """The ``[[regions]]`` tables: the regions, and every service (the regions' and
    those they call), by name, each name unique."""
    regions: dict[str, RegionSpec] = {}
    services: dict[str, RegionSpec] = {}
    for section in sections:
        region = _region(section, read_share)
        if region.name in regions:
            raise section.fail("name", "unique", region.name)
        regions[region.name] = region
        table, service = section, region
        while True:
            if service.name in services:
                requirement = "unique among regions and the services they call"
                raise table.fail("name", requirement, service.name)
            services[service.name] = service
            if service.calls is None:
                break
            table = table.section("calls")
            service = service.calls.service
    return regions, services


def build_scenario(
    data: dict[str, Any],
    source: str,
    text: str | None = None,
    known_strategies: tuple[str, ...] = (),
    lines: dict[str, int] | None = None,
) -> Scenario:
    """Validate a scenario read from TOML (``text``) or YAML (``lines``: each field's
    line); errors name the line, field and value."""
    locator = Locator(source, text, lines)
    root = Section(data, "", locator)
    duration = root.number("duration", low=0.0, low_open=True)
    clients = _clients(root.section("clients"), duration, source)
    d = root.section("dns")
    dns = DNSSpec(
        ttl=d.number("ttl", 60.0, low=0.0),
        negative_ttl=d.number("negative_ttl", 5.0, low=0.0),
        capacity=d.number("capacity", 10_000.0, low=0.0, low_open=True),
        latency=d.number("latency", 0.002, low=0.0),
    )
    d.done()
    occ = None
    if (part := root.optional_section("occ")) is not None:
        occ = _occ(part)
    region_sections = root.sections("regions")
    if not region_sections and occ is None:
        raise root.fail("regions", "at least one [[regions]] table", [])
    regions, services = _regions(region_sections, clients.read_share)
    triggers = tuple(
        parse_trigger(s, duration, tuple(services.values())) for s in root.sections("triggers")
    )
    if clients.trace is not None:
        for index, trigger in enumerate(triggers):
            if isinstance(trigger, (LoadSpike, LoadRamp)):
                raise root.fail(
                    f"triggers[{index}].kind",
                    'a kind that leaves traffic alone with clients.arrivals = "trace"',
                    trigger.kind,
                )
    custom = {}
    for section in root.sections("strategy"):
        spec = parse_strategy(section)
        custom[spec.name] = spec
    names = root.raw("strategies", None)
    available = (*known_strategies, *custom)
    if names is None:
        names = list(available)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise root.fail("strategies", "a non-empty list of strategy names", names)
    for name in names:
        if name not in available:
            raise root.fail(
                "strategies", "names of known strategies (" + ", ".join(available) + ")", name
            )
    seed = root.integer("seed", 1)
    sweep_part = root.optional_section("sweep")
    sweep = None if sweep_part is None else parse_sweep(sweep_part)
    scenario = Scenario(
        name=root.string("name"),
        title=str(root.raw("title", "")),
        description=str(root.raw("description", "")),
        duration=duration,
        seed=seed,
        strategies=tuple(names),
        clients=clients,
        dns=dns,
        regions=tuple(regions.values()),
        triggers=triggers,
        custom=custom,
        source=source,
        occ=occ,
        sweep=sweep,
    )
    if sweep_part is not None:

        def reread(varied: dict[str, Any]) -> Scenario:
            return build_scenario(varied, source, None, known_strategies)

        check_sweep(sweep_part, data, scenario, reread)
    variant_sections = root.sections("variants")
    quick_part = root.optional_section("quick")
    if variant_sections or quick_part is not None:

        def changed(varied: dict[str, Any]) -> Scenario:
            return build_scenario(varied, source, None, known_strategies)

        if variant_sections and sweep is not None:
            raise root.fail(
                "variants", "left out of a sweep (a sweep varies one field already)", "[[variants]]"
            )
        scenario = replace(
            scenario,
            variants=parse_variants(variant_sections, data, changed),
            quick=None if quick_part is None else parse_quick(quick_part, data, changed),
        )
    root.done()
    return scenario
