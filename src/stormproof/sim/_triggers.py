"""Triggers: what goes wrong in a scenario, from ``start`` to ``end``.

A trigger kind is one class: a subclass of ``Trigger`` that names its ``kind``,
declares its fields with ``option`` (the scenario file's schema, its checks and the
docs' reference all come from them), and says what happens at its start and at its end
(``on_start`` and ``on_end``, given the run's ``World``). Defining the class registers
the kind: scenario files can use it at once.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from stormproof import ConfigError

from ._fields import Option, Section, option, options_of
from ._series import Names

if TYPE_CHECKING:
    from typing_extensions import Self, dataclass_transform

    from ._world import World
else:

    def dataclass_transform(**_: object) -> Callable[[type], type]:
        return lambda cls: cls


__all__ = [
    "CapacityDrop",
    "DNSEmpty",
    "Errors",
    "LoadRamp",
    "LoadSpike",
    "Partition",
    "RandomOutages",
    "Trigger",
    "parse_trigger",
    "reference",
    "trigger_kinds",
]

_KINDS: dict[str, type[Trigger]] = {}
_OPTION_TYPES = {"float": float, "int": int, "str": str, "bool": bool}


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(option,))
@dataclass(frozen=True, kw_only=True)
class Trigger:
    """Something that goes wrong from ``start`` to ``end`` (seconds into the run).

    Subclass it to add a kind of trigger, named in the class statement::

        class SlowResolver(Trigger, kind="slow_dns"):
            \"\"\"The DNS resolver answers `factor` times slower.\"\"\"

            factor: float = option(2.0, low=1.0, doc="how many times slower")

            def on_start(self, world: World) -> None:
                world.resolver.latency *= self.factor

            def on_end(self, world: World) -> None:
                world.resolver.latency /= self.factor

    The subclass is made a frozen dataclass; its fields are declared with ``option``
    (``start`` and ``end`` come with every trigger). Its docstring's first paragraph
    says what it does, in the docs' reference of triggers. ``check(section)`` may refuse
    combinations of values (``section.fail(field, requirement, value)``).
    """

    kind: ClassVar[str] = ""
    start: float = option(low=0.0, doc="when it begins, in seconds into the run")
    end: float = option(low=0.0, doc="when it ends: after `start`, at most `duration`")

    def __init_subclass__(cls, kind: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__ not in sys.modules:  # made by exec: dataclass cannot look there
            annotations = cls.__annotations__  # its own (Python 3.10+)
            for name, annotation in annotations.items():
                annotations[name] = _OPTION_TYPES.get(annotation, annotation)
        dataclass(frozen=True, kw_only=True)(cls)
        options_of(cls)  # refuses a field it cannot read
        if kind:
            known = _KINDS.get(kind)
            same = known is not None and (known.__module__, known.__qualname__) == (
                cls.__module__,
                cls.__qualname__,
            )
            if known is not None and not same:
                raise ConfigError("kind", f"a kind not taken (by {known.__qualname__})", kind)
            cls.kind = kind
            _KINDS[kind] = cls

    @classmethod
    def parse(cls, section: Section, duration: float, regions: Sequence[Any]) -> Self:
        """Read and check a trigger of this kind from its table (``regions``: the
        scenario's, for fields that refer to one)."""
        options = options_of(cls)
        start = options.pop("start").read(section)
        end = options.pop("end").read(section)
        if end <= start:
            raise section.fail("end", f"> start ({start:g})", end)
        if end > duration:
            raise section.fail("end", f"<= duration ({duration:g})", end)
        values = {name: spec.read(section, regions) for name, spec in options.items()}
        trigger = cls(start=start, end=end, **values)
        trigger.check(section)
        section.done()
        return trigger

    def check(self, section: Section) -> None:
        """Refuse values that do not go together (each was checked on its own)."""

    @property
    def target(self) -> str:
        """The region or host name it acts on ("" for the whole traffic)."""
        for name, spec in options_of(type(self)).items():
            if spec.refers:
                return str(getattr(self, name))
        return ""

    def schedule(self, world: World) -> None:
        """Schedule its start and its end in the run."""
        world.sim.at(self.start, self.on_start, world)
        world.sim.at(self.end, self.on_end, world)

    def on_start(self, world: World) -> None:
        """What happens at ``start``."""

    def on_end(self, world: World) -> None:
        """What happens at ``end``: the world as it was, as far as the trigger goes."""


def trigger_kinds() -> Mapping[str, type[Trigger]]:
    """Every kind of trigger scenario files can name, by kind."""
    return MappingProxyType(_KINDS)


def parse_trigger(section: Section, duration: float, regions: Sequence[Any]) -> Trigger:
    """A trigger read from its table: ``kind`` says which class reads the rest."""
    kind = section.string("kind", choices=_KINDS)
    return _KINDS[kind].parse(section, duration, regions)


# -- the built-in kinds --------------------------------------------------------------------


class DNSEmpty(Trigger, kind="dns_empty"):
    """The name resolves to nothing: the resolver answers `mode` for `hostname`
    (clients cache the failure for the negative TTL, and cannot open connections).
    With `recovery`, each app instance sees the name again at its own time after `end`,
    drawn uniformly over `recovery` seconds (resolvers' caches of the failure expiring
    one by one, as between 2:25 and 2:40 AM PDT on 20 October 2025)."""

    hostname: str = option(refers="hostname", doc="the name that stops resolving")
    mode: str = option(
        "empty", choices=("empty", "nxdomain", "servfail"), doc="what the resolver answers"
    )
    recovery: float = option(
        0.0,
        low=0.0,
        doc="seconds after `end` over which app instances see the name again (0: all at `end`)",
    )

    def on_start(self, world: World) -> None:
        world.resolver.broken[self.hostname] = self.mode

    def on_end(self, world: World) -> None:
        world.resolver.broken.pop(self.hostname, None)
        if self.recovery:
            draw = world.sim.stream(f"dns-recovery:{self.hostname}").uniform
            for instance in world.instances:
                instance.dns.late[self.hostname] = (self.end + draw(0, self.recovery), self.mode)


class Partition(Trigger, kind="partition"):
    """Requests to `region` are held in the network and delivered all at once when it
    heals, as TCP retransmission does; clients time out meanwhile, and reconnect."""

    region: str = option(refers="region", doc="the region cut off")

    def on_start(self, world: World) -> None:
        world.service(self.region).reachable = False

    def on_end(self, world: World) -> None:
        world.service(self.region).heal()
        _reconnect(world, self.region)


def _reconnect(world: World, region: str) -> None:
    """A partition of ``region`` healed: every client connected to it reconnects (a
    service only other services call has no clients' connections)."""
    for instance in world.instances:
        if region in instance.routes:
            instance.reconnect(region)


class CapacityDrop(Trigger, kind="capacity_drop"):
    """`region` keeps `factor` of its capacity."""

    region: str = option(refers="region", doc="the region that loses capacity")
    factor: float = option(1.0, low=0.0, doc="the share of its capacity it keeps")

    def on_start(self, world: World) -> None:
        world.service(self.region).capacity_factor = self.factor

    def on_end(self, world: World) -> None:
        service = world.service(self.region)
        service.capacity_factor = 1.0
        service.grow()


class Errors(Trigger, kind="errors"):
    """`region` fails `rate` of the requests it serves (HTTP 500)."""

    region: str = option(refers="region", doc="the region that fails requests")
    rate: float = option(0.0, low=0.0, high=1.0, doc="the share of requests it fails")

    def on_start(self, world: World) -> None:
        world.service(self.region).error_rate = self.rate

    def on_end(self, world: World) -> None:
        service = world.service(self.region)
        service.error_rate = service.base_error_rate


class LoadSpike(Trigger, kind="load_spike"):
    """Traffic times `factor`."""

    factor: float = option(1.0, low=0.0, doc="how many times the usual traffic")

    def on_start(self, world: World) -> None:
        world.load.factor = self.factor

    def on_end(self, world: World) -> None:
        world.load.factor = 1.0


class LoadRamp(Trigger, kind="load_ramp"):
    """Traffic from `factor` to `until_factor` times the usual, second by second."""

    factor: float = option(1.0, low=0.0, doc="how many times the usual traffic, at `start`")
    until_factor: float = option(1.0, low=0.0, doc="the same, reached at `end`")

    def on_start(self, world: World) -> None:
        load = world.load
        steps = max(1, math.ceil(self.end - self.start))
        for step in range(steps):
            share = step / steps
            value = self.factor + (self.until_factor - self.factor) * share
            world.sim.at(self.start + step, _set_factor, (load, value))

    def on_end(self, world: World) -> None:
        world.load.factor = 1.0


def _set_factor(argument: tuple[Any, float]) -> None:
    load, value = argument
    load.factor = value


class RandomOutages(Trigger, kind="random_outages"):
    """`region` fails at random times: up for exponential times of mean `mtbf` seconds,
    then down for exponential times of mean `mttr` seconds, and so on until `end`
    (seeded: the same outages for every strategy; every app instance sees them). Down,
    it fails `rate` of the requests it serves (`effect = "errors"`, HTTP 500; an error
    burst when `rate` < 1) or is cut off (`"partition"`, as the `partition` trigger)."""

    region: str = option(refers="region", doc="the region that fails")
    mtbf: float = option(low=0.0, low_open=True, doc="mean time between outages, in seconds")
    mttr: float = option(low=0.0, low_open=True, doc="mean time an outage lasts, in seconds")
    effect: str = option(
        "errors", choices=("errors", "partition"), doc="what an outage does to the region"
    )
    rate: float = option(
        1.0, low=0.0, high=1.0, doc='the share of requests failed during an outage ("errors")'
    )

    def check(self, section: Section) -> None:
        if self.effect == "partition" and section.has("rate"):
            raise section.fail("rate", 'left out with effect = "partition"', self.rate)

    def schedule(self, world: World) -> None:
        # Its own stream, named by what it acts on and when: the outages depend on the
        # scenario and the seed only, never on the strategy.
        stream = world.sim.stream(f"random_outages:{self.region}:{self.start:g}:{self.end:g}")
        uniform = stream.random
        moment = self.start
        down = world.series.counter(Names.down(self.region))
        while True:
            moment += -math.log(1.0 - uniform()) * self.mtbf
            if moment >= self.end:
                break
            until = min(self.end, moment - math.log(1.0 - uniform()) * self.mttr)
            world.sim.at(moment, self.on_start, world)
            world.sim.at(until, self.on_end, world)
            _count_down(down, moment, until)
            moment = until

    def on_start(self, world: World) -> None:
        service = world.service(self.region)
        if self.effect == "partition":
            service.reachable = False
        else:
            service.error_rate = self.rate

    def on_end(self, world: World) -> None:
        service = world.service(self.region)
        if self.effect == "partition":
            service.heal()
            _reconnect(world, self.region)
        else:
            service.error_rate = service.base_error_rate


def _count_down(counter: list[float], start: float, end: float) -> None:
    """Count the seconds from ``start`` to ``end`` in the per-second ``counter``, each
    part in its second."""
    moment = start
    while moment < end:
        second = int(moment)
        step = min(end, second + 1.0)
        if second < len(counter):
            counter[second] += step - moment
        moment = step


# -- the docs' reference -------------------------------------------------------------------


def _describe(spec: Option) -> str:
    what = spec.describe_kind()
    if not spec.required:
        default = spec.default
        shown = f'`"{default}"`' if isinstance(default, str) else f"{default:g}"
        what += f"; default {shown}"
    return f"`{spec.name}` ({what}): {spec.doc}"


def reference() -> str:
    """The built-in triggers' reference (a Markdown table), as the docs show it: made
    from their classes, their docstrings and their fields."""
    lines = [
        "| `kind` | From `start` to `end` | Fields |",
        "| --- | --- | --- |",
    ]
    for kind, cls in _KINDS.items():
        if cls.__module__ != __name__:
            continue  # a kind of one's own
        doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        fields = options_of(cls)
        del fields["start"], fields["end"]
        described = "; ".join(_describe(spec) for spec in fields.values()) or "none"
        lines.append(f"| `{kind}` | {doc} | {described} |")
    return "\n".join(lines) + "\n"
