"""What a scenario is: clients, DNS, regions, triggers and the strategies to compare,
parsed and validated from TOML (or plain dicts) into frozen dataclasses."""

from __future__ import annotations

import copy
import re
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ._fields import Locator, ScenarioError, Section

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    try:
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        tomllib = None
try:
    import yaml
except ImportError:  # pragma: no cover - without the cli extra
    yaml = None  # type: ignore[assignment]
from ._service import Distribution, Slowdown

__all__ = [
    "BackoffSpec",
    "BreakerSpec",
    "BudgetSpec",
    "CacheSpec",
    "ClientsSpec",
    "DNSSpec",
    "FailoverSpec",
    "OCCSpec",
    "RegionSpec",
    "RetrySpec",
    "Scenario",
    "StrategySpec",
    "SweepSpec",
    "ThrottleSpec",
    "TriggerSpec",
    "parse_scenario",
    "parse_strategy",
    "read_toml",
    "read_yaml",
    "with_value",
]

JITTERS = ("none", "full", "equal", "decorrelated")
BUDGETS = ("aws-standard", "aws-2026", "ratio", "grpc")
SWEEP_METRICS = (
    "amplification",
    "success_rate",
    "goodput_rate",
    "p99_latency_s",
    "peak_load_ratio",
    "calls",
    "completion_s",
)
TRIGGERS = ("dns_empty", "partition", "capacity_drop", "load_spike", "load_ramp", "errors")


@dataclass(frozen=True)
class BackoffSpec:
    base: float = 0.05
    cap: float = 20.0
    multiplier: float = 2.0
    jitter: str = "full"


@dataclass(frozen=True)
class ThrottleSpec:
    k: float = 2.0
    window: float = 30.0
    max_reject: float = 0.9
    minimum_requests: int = 10


@dataclass(frozen=True)
class BudgetSpec:
    """A token bucket of your own (``TokenBucketBudget``'s options)."""

    capacity: float = 500.0
    retry_cost: float = 5.0
    timeout_cost: float = 10.0
    throttling_cost: float | None = None
    success_reward: float = 1.0
    refund: bool = True


@dataclass(frozen=True)
class BreakerSpec:
    failure_rate: float = 0.5
    window: int = 20
    minimum_calls: int = 10
    open_for: float = 10.0
    open_for_max: float | None = 60.0
    half_open_calls: int = 1


@dataclass(frozen=True)
class RetrySpec:
    attempts: int = 3
    on: str = "regional"
    backoff: BackoffSpec = BackoffSpec()
    throttling_backoff: BackoffSpec | None = None
    budget: str | BudgetSpec | None = None
    throttle: ThrottleSpec | None = None
    breaker: BreakerSpec | None = None  # a circuit breaker that only stops retries
    deadline: bool = False


@dataclass(frozen=True)
class CacheSpec:
    ttl: float = 300.0
    stale_ttl: float = 0.0
    coalesce: bool = True


@dataclass(frozen=True)
class FailoverSpec:
    failback_after: float = 30.0
    probe_interval: float = 5.0


@dataclass(frozen=True)
class StrategySpec:
    """A client configuration: which policies each app instance runs, and how."""

    name: str
    summary: str = ""
    kind: str = "composed"  # or "seed-patterns": the post-mortem snippets, flaws included
    retry: RetrySpec | None = None
    cache: CacheSpec | None = None
    breaker: BreakerSpec | None = None
    failover: FailoverSpec | None = None
    bulkhead: int | None = None


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
class TriggerSpec:
    kind: str
    start: float
    end: float
    target: str = ""
    mode: str = "empty"
    factor: float = 1.0
    until_factor: float = 1.0
    rate: float = 0.0


@dataclass(frozen=True)
class OCCSpec:
    """Optimistic-concurrency contention: ``clients`` start together and each updates one
    row once (read its version, then write conditionally on it), retrying on conflict."""

    clients: int
    network_delay: Distribution


@dataclass(frozen=True)
class SweepSpec:
    """Run the scenario once per value of ``parameter`` (``repeat`` times, seeds
    ``seed``, ``seed + 1``, ...) and report each metric against the parameter."""

    parameter: str
    values: tuple[float, ...]
    repeat: int = 1
    metrics: tuple[str, ...] = ("amplification", "success_rate")


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
    triggers: tuple[TriggerSpec, ...]
    custom: dict[str, StrategySpec] = field(default_factory=dict)
    source: str = ""
    occ: OCCSpec | None = None
    sweep: SweepSpec | None = None

    @property
    def trigger_window(self) -> tuple[float, float] | None:
        if not self.triggers:
            return None
        return (min(t.start for t in self.triggers), max(t.end for t in self.triggers))


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    if tomllib is None:  # pragma: no cover - Python 3.10 without tomli
        raise ScenarioError(
            str(path),
            "reading scenario files",
            "possible: on Python 3.10 install stormproof[cli] (it brings tomli)",
            None,
        )
    text = path.read_text(encoding="utf-8")
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(str(path), "the file", f"valid TOML ({error})", path.name) from None


if yaml is not None:

    class _YAMLLoader(yaml.SafeLoader):
        """YAML as people write scenario files: only ``true`` and ``false`` are booleans
        (YAML 1.1 also reads ``on``, ``off``, ``yes`` and ``no`` so, and ``on`` is a field
        here), and ``1e-3`` is a number, as in YAML 1.2."""

    _YAMLLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith((":bool", ":float"))]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _YAMLLoader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    _YAMLLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?"
            r"|[0-9][0-9_]*[eE][-+]?[0-9]+|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )


def read_yaml(path: Path) -> tuple[Any, dict[str, int]]:
    """A YAML scenario file: its data, and the line of every field."""
    if yaml is None:  # pragma: no cover - without the cli extra
        raise ScenarioError(
            str(path), "reading YAML scenario files", "possible: install stormproof[cli]", None
        )
    text = path.read_text(encoding="utf-8")
    loader = _YAMLLoader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as error:
        reason = " ".join(str(error).split())
        raise ScenarioError(str(path), "the file", f"valid YAML ({reason})", path.name) from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if node is not None:
        _node_lines(node, "", lines)
    return data, lines


def _node_lines(node: Any, path: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = f"{path}.{key.value}" if path else str(key.value)
            lines.setdefault(name, key.start_mark.line + 1)
            _node_lines(value, name, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            name = f"{path}[{index}]"
            lines.setdefault(name, item.start_mark.line + 1)
            _node_lines(item, name, lines)


# -- strategies -----------------------------------------------------------------------------


def _backoff(section: Section) -> BackoffSpec:
    spec = BackoffSpec(
        base=section.number("base", 0.05, low=0.0),
        cap=section.number("cap", 20.0, low=0.0),
        multiplier=section.number("multiplier", 2.0, low=1.0),
        jitter=section.string("jitter", "full", choices=JITTERS),
    )
    if spec.cap < spec.base:
        raise section.fail("cap", f">= base ({spec.base:g})", spec.cap)
    section.done()
    return spec


def _breaker(part: Section) -> BreakerSpec:
    window = part.integer("window", 20, low=1)
    minimum = part.integer("minimum_calls", 10, low=1)
    if minimum > window:
        raise part.fail("minimum_calls", f"<= window ({window})", minimum)
    open_for = part.number("open_for", 10.0, low=0.0, low_open=True)
    open_max = part.raw("open_for_max", 60.0)
    if open_max is not None:
        open_max = part.number("open_for_max", 60.0, low=open_for)
    spec = BreakerSpec(
        failure_rate=part.number("failure_rate", 0.5, low=0.0, high=1.0, low_open=True),
        window=window,
        minimum_calls=minimum,
        open_for=open_for,
        open_for_max=open_max,
        half_open_calls=part.integer("half_open_calls", 1, low=1),
    )
    part.done()
    return spec


def _budget(part: Section) -> str | BudgetSpec | None:
    value = part.data.get("budget")
    if isinstance(value, dict):
        table = part.section("budget")
        throttling = table.raw("throttling_cost")
        spec = BudgetSpec(
            capacity=table.number("capacity", 500.0, low=0.0),
            retry_cost=table.number("retry_cost", 5.0, low=0.0),
            timeout_cost=table.number("timeout_cost", 10.0, low=0.0),
            throttling_cost=None
            if throttling is None
            else table.number("throttling_cost", low=0.0),
            success_reward=table.number("success_reward", 1.0, low=0.0),
            refund=table.boolean("refund", True),
        )
        table.done()
        return spec
    budget = part.raw("budget")
    if budget is not None and budget not in BUDGETS:
        raise part.fail(
            "budget",
            "one of " + ", ".join(repr(b) for b in BUDGETS) + " or a table of token-bucket options",
            budget,
        )
    return budget  # type: ignore[no-any-return]


def parse_strategy(section: Section) -> StrategySpec:
    name = section.string("name")
    kind = section.string("kind", "composed", choices=("composed", "seed-patterns"))
    retry = cache = breaker = failover = None
    if (part := section.optional_section("retry")) is not None:
        backoff = _backoff(part.section("backoff"))
        throttling = part.optional_section("throttling_backoff")
        throttle = None
        if (t := part.optional_section("throttle")) is not None:
            throttle = ThrottleSpec(
                k=t.number("k", 2.0, low=1.0),
                window=t.number("window", 30.0, low=0.0, low_open=True),
                max_reject=t.number("max_reject", 0.9, low=0.0, high=1.0),
                minimum_requests=t.integer("minimum_requests", 10),
            )
            t.done()
        budget = _budget(part)
        retry_breaker = part.optional_section("breaker")
        retry = RetrySpec(
            attempts=part.integer("attempts", 3, low=1),
            on=part.string("on", "regional", choices=("regional", "all")),
            backoff=backoff,
            throttling_backoff=None if throttling is None else _backoff(throttling),
            budget=budget,
            throttle=throttle,
            breaker=None if retry_breaker is None else _breaker(retry_breaker),
            deadline=part.boolean("deadline", False),
        )
        part.done()
    if (part := section.optional_section("cache")) is not None:
        cache = CacheSpec(
            ttl=part.number("ttl", 300.0, low=0.0),
            stale_ttl=part.number("stale_ttl", 0.0, low=0.0),
            coalesce=part.boolean("coalesce", True),
        )
        part.done()
    if (part := section.optional_section("breaker")) is not None:
        breaker = _breaker(part)
    if (part := section.optional_section("failover")) is not None:
        failover = FailoverSpec(
            failback_after=part.number("failback_after", 30.0, low=0.0),
            probe_interval=part.number("probe_interval", 5.0, low=0.0, low_open=True),
        )
        part.done()
    bulkhead = None
    if section.has("bulkhead"):
        bulkhead = section.integer("bulkhead", low=1)
    spec = StrategySpec(
        name=name,
        summary=str(section.raw("summary", "")),
        kind=kind,
        retry=retry,
        cache=cache,
        breaker=breaker,
        failover=failover,
        bulkhead=bulkhead,
    )
    section.done()
    return spec


# -- scenarios ------------------------------------------------------------------------------


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


def _trigger(section: Section, duration: float, regions: dict[str, RegionSpec]) -> TriggerSpec:
    kind = section.string("kind", choices=TRIGGERS)
    start = section.number("start", low=0.0)
    end = section.number("end", low=0.0)
    if end <= start:
        raise section.fail("end", f"> start ({start:g})", end)
    if end > duration:
        raise section.fail("end", f"<= duration ({duration:g})", end)
    target = ""
    if kind == "dns_empty":
        target = section.string("hostname")
        known = {r.hostname for r in regions.values()}
        if target not in known:
            raise section.fail("hostname", "the hostname of a region", target)
    elif kind in ("partition", "capacity_drop", "errors"):
        target = section.string("region", choices=list(regions))
    spec = TriggerSpec(
        kind=kind,
        start=start,
        end=end,
        target=target,
        mode=section.string("mode", "empty", choices=("empty", "nxdomain", "servfail"))
        if kind == "dns_empty"
        else "empty",
        factor=section.number("factor", 1.0, low=0.0)
        if kind in ("capacity_drop", "load_spike", "load_ramp")
        else 1.0,
        until_factor=section.number("until_factor", 1.0, low=0.0) if kind == "load_ramp" else 1.0,
        rate=section.number("rate", 0.0, low=0.0, high=1.0) if kind == "errors" else 0.0,
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


def _sweep(part: Section) -> SweepSpec:
    values = part.raw("values")
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    ):
        raise part.fail("values", "a non-empty list of numbers", values)
    metrics = part.raw("metrics", ["amplification", "success_rate"])
    if not isinstance(metrics, list) or not metrics or not all(m in SWEEP_METRICS for m in metrics):
        raise part.fail("metrics", "a list of " + ", ".join(SWEEP_METRICS), metrics)
    return SweepSpec(
        parameter=part.string("parameter"),
        values=tuple(values),
        repeat=part.integer("repeat", 1, low=1),
        metrics=tuple(metrics),
    )


def _check_sweep(
    part: Section,
    data: dict[str, Any],
    scenario: Scenario,
    known_strategies: tuple[str, ...],
) -> None:
    """Every swept value must make a valid scenario, checked before anything runs: the
    field must exist and take numbers of that kind, and the scenario with the value in
    place must pass every check a file passes."""
    sweep = scenario.sweep
    assert sweep is not None
    parameter = sweep.parameter
    for value in sweep.values:
        try:
            with_value(scenario, parameter, value)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise part.fail(
                "parameter", f"a field of the scenario that takes these values ({error})", parameter
            ) from None
        varied = copy.deepcopy(data)
        del varied["sweep"]
        table, key = _field_of(varied, parameter)
        table[key] = value
        try:
            parse_scenario(varied, scenario.source, None, known_strategies)
        except ScenarioError as error:
            reason = str(error).split(": ", 1)[-1]
            raise part.fail("values", f"values that {parameter} takes ({reason})", value) from None
    part.done()


def _field_of(data: dict[str, Any], parameter: str) -> tuple[dict[str, Any], str]:
    """The table of raw scenario data that holds ``parameter``, and its key there."""
    head, _, name = parameter.partition(".")
    if not name:
        return data, head
    if head.startswith("regions["):
        return data["regions"][int(head[len("regions[") : -1])], name
    return data.setdefault(head, {}), name


def parse_scenario(
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
    triggers = tuple(_trigger(s, duration, regions) for s in root.sections("triggers"))
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
    sweep = None if sweep_part is None else _sweep(sweep_part)
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
        _check_sweep(sweep_part, data, scenario, known_strategies)
    root.done()
    return scenario


def with_value(scenario: Scenario, parameter: str, value: float) -> Scenario:
    """The scenario with one field set: ``"clients.instances"``, ``"occ.clients"``,
    ``"dns.ttl"``, ``"regions[0].error_rate"``, or ``"duration"``."""
    head, _, name = parameter.partition(".")
    if not name:
        if head != "duration":
            raise KeyError(f"no field {parameter!r}")
        return replace(scenario, duration=_typed(scenario.duration, value, parameter))
    if head.startswith("regions[") and head.endswith("]"):
        index = int(head[len("regions[") : -1])
        regions = list(scenario.regions)
        regions[index] = _replaced(regions[index], name, value, parameter)
        return replace(scenario, regions=tuple(regions))
    if head not in ("clients", "dns", "occ"):
        raise KeyError(f"no table {head!r}")
    part = getattr(scenario, head)
    if part is None:
        raise KeyError(f"the scenario has no [{head}] table")
    return replace(scenario, **{head: _replaced(part, name, value, parameter)})


def _replaced(spec: Any, name: str, value: float, parameter: str) -> Any:
    if name not in {f.name for f in fields(spec)}:
        raise KeyError(f"no field {parameter!r}")
    return replace(spec, **{name: _typed(getattr(spec, name), value, parameter)})


def _typed(current: object, value: float, parameter: str) -> Any:
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        raise TypeError(f"{parameter} is not a number")
    if isinstance(current, int) and not float(value).is_integer():
        raise TypeError(f"{parameter} takes whole numbers")
    if value < 0:
        raise ValueError(f"{parameter} cannot be negative")
    return int(value) if isinstance(current, int) else float(value)
