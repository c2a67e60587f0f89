"""What a scenario is: clients, DNS, regions, triggers, the strategies to compare and
an optional contention workload and sweep, read and checked from a scenario file's
data into frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ._fields import Locator, Section
from ._service import Distribution, Slowdown
from ._strategy_spec import StrategySpec, parse_strategy
from ._sweep_spec import SweepSpec, check_sweep, parse_sweep
from ._triggers import Trigger, parse_trigger
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
    answer, then think ``think_time`` seconds on average, before the next request."""

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

    def describe(self) -> str:
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
    name: str
    hostname: str
    capacity: int
    service_time: Distribution
    queue: int = 1000
    slowdown: Slowdown | None = None
    drop_expired: bool = False
    setup_time: float = 0.0
    error_rate: float = 0.0

    @property
    def capacity_rps(self) -> float:
        """The most requests per second it can sustain: ``capacity / mean service time``,
        or, for a server that slows down with load, the best rate it reaches slowed."""
        mean = self.service_time.mean
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
    def trigger_window(self) -> tuple[float, float] | None:
        if not self.triggers:
            return None
        return (min(t.start for t in self.triggers), max(t.end for t in self.triggers))


# -- reading a scenario's data ------------------------------------------------------------


def _distribution(section: Section) -> Distribution:
    kind = section.string(
        "distribution", "lognormal", choices=("constant", "exponential", "lognormal", "normal")
    )
    spec = Distribution(
        kind, section.number("mean", low=0.0, low_open=True), section.number("sigma", 0.5, low=0.0)
    )
    section.done()
    return spec


def _region(section: Section) -> RegionSpec:
    slowdown = None
    if (part := section.optional_section("slowdown")) is not None:
        slowdown = Slowdown(
            part.string("kind", choices=("rate", "concurrency", "linear")),
            part.number("above", low=0.0, low_open=True),
            part.number("factor", low=0.0, low_open=True),
            part.number("window", 1.0, low=0.0, low_open=True),
        )
        part.done()
    spec = RegionSpec(
        name=section.string("name"),
        hostname=section.string("hostname"),
        capacity=section.integer("capacity", low=1),
        service_time=_distribution(section.section("service_time")),
        queue=section.integer("queue", 1000),
        slowdown=slowdown,
        drop_expired=section.boolean("drop_expired", False),
        setup_time=section.number("setup_time", 0.0, low=0.0),
        error_rate=section.number("error_rate", 0.0, low=0.0, high=1.0),
    )
    section.done()
    return spec


def _clients(c: Section) -> ClientsSpec:
    loop = c.string("loop", "open", choices=("open", "closed"))
    unused = ("users", "think_time") if loop == "open" else ("rate",)
    for name in unused:
        if c.has(name):
            raise c.fail(name, f"left out with {loop}-loop clients (loop = {loop!r})", c.raw(name))
    closed = loop == "closed"
    spec = ClientsSpec(
        instances=c.integer("instances", 10, low=1),
        rate=100.0 if closed else c.number("rate", 100.0, low=0.0, low_open=True),
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
    )
    c.done()
    return spec


def _occ(part: Section) -> OCCSpec:
    spec = OCCSpec(
        clients=part.integer("clients", 10, low=1),
        network_delay=_distribution(part.section("network_delay")),
    )
    part.done()
    return spec


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
    clients = _clients(root.section("clients"))
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
    regions: dict[str, RegionSpec] = {}
    for section in region_sections:
        region = _region(section)
        if region.name in regions:
            raise section.fail("name", "unique", region.name)
        regions[region.name] = region
    triggers = tuple(
        parse_trigger(s, duration, tuple(regions.values())) for s in root.sections("triggers")
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
