"""What a sweep is: one field of the scenario (a path such as ``regions[0].error_rate``)
set to each of a list of values; reading and checking the ``[sweep]`` table, and
setting a field by its path."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from ._fields import ScenarioError, Section, did_you_mean
from ._metrics import AMPLIFICATION, METRICS, SUCCESS_RATE
from ._service import Distribution

if TYPE_CHECKING:
    from ._scenario import RegionSpec, Scenario

__all__ = ["SweepSpec", "check_sweep", "parse_sweep", "with_value"]

_ITEM = re.compile(r"^(\w+)\[(\d+)\]$")  # an entry of an array of tables: regions[0]
_TABLES = ("clients", "dns", "occ")


@dataclass(frozen=True)
class SweepSpec:
    """Run the scenario once per value of ``parameter`` (``repeat`` times, seeds
    ``seed``, ``seed + 1``, ...) and report each metric against the parameter."""

    parameter: str
    values: tuple[float, ...]
    repeat: int = 1
    metrics: tuple[str, ...] = (AMPLIFICATION.name, SUCCESS_RATE.name)


def parse_sweep(part: Section) -> SweepSpec:
    """The ``[sweep]`` table, each field checked on its own (``check_sweep`` then checks
    the values against the scenario)."""
    values = part.raw("values")
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    ):
        raise part.fail("values", "a non-empty list of numbers", values)
    known = [name for name, metric in METRICS.items() if metric.scalar]
    listed = "a list of metric names (" + ", ".join(known) + ")"
    metrics = part.raw("metrics", list(SweepSpec.metrics))
    if not isinstance(metrics, list) or not metrics:
        raise part.fail("metrics", listed, metrics)
    for metric in metrics:
        if metric not in known:
            raise part.fail("metrics", listed + did_you_mean(str(metric), known), metric)
    return SweepSpec(
        parameter=part.string("parameter"),
        values=tuple(values),
        repeat=part.integer("repeat", 1, low=1),
        metrics=tuple(metrics),
    )


def check_sweep(
    part: Section,
    data: dict[str, Any],
    scenario: Scenario,
    reread: Callable[[dict[str, Any]], object],
) -> None:
    """Every swept value must make a valid scenario, checked before anything runs: the
    field must exist and take numbers of that kind, and the scenario with the value in
    place (its raw ``data`` read again with ``reread``) must pass every check a file
    passes."""
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
            reread(varied)
        except ScenarioError as error:
            reason = str(error).split(": ", 1)[-1]
            raise part.fail("values", f"values that {parameter} takes ({reason})", value) from None
    part.done()


def _field_of(data: dict[str, Any], parameter: str) -> tuple[dict[str, Any], str]:
    """The table of raw scenario data that holds ``parameter``, and its key there."""
    head, _, name = parameter.partition(".")
    if not name:
        return data, head
    item = _ITEM.match(head)
    if item is not None:
        return data[item.group(1)][int(item.group(2))], name
    return data.setdefault(head, {}), name


def with_value(scenario: Scenario, parameter: str, value: float) -> Scenario:
    """The scenario with one field set: ``"duration"``, a field of a table
    (``"clients.instances"``, ``"dns.ttl"``, ``"occ.clients"``) or of an entry of an
    array of tables (``"regions[0].error_rate"``, ``"triggers[0].end"``)."""
    head, _, name = parameter.partition(".")
    if not name:
        if head != "duration":
            raise KeyError(f"no field {parameter!r}")
        return replace(scenario, duration=_typed(scenario.duration, value, parameter))
    item = _ITEM.match(head)
    if item is not None:
        array = item.group(1)
        if array not in ("regions", "triggers"):
            raise KeyError(f"no array of tables {array!r}")
        entries: list[Any] = list(getattr(scenario, array))
        index = int(item.group(2))
        entries[index] = _replaced(entries[index], name, value, parameter)
        changed: dict[str, Any] = {array: tuple(entries)}
        return replace(scenario, **changed)
    if head not in _TABLES:
        raise KeyError(f"no table {head!r}")
    part = getattr(scenario, head)
    if part is None:
        raise KeyError(f"the scenario has no [{head}] table")
    varied = replace(scenario, **{head: _replaced(part, name, value, parameter)})
    if head == "clients" and name == "read_share":  # the regions count capacity at it
        regions = tuple(replace(region, read_share=float(value)) for region in varied.regions)
        varied = replace(varied, regions=regions)
    return varied


def _replaced(spec: Any, name: str, value: float, parameter: str) -> Any:
    if name not in {f.name for f in fields(spec)}:
        raise KeyError(f"no field {parameter!r}")
    from ._scenario import RegionSpec  # noqa: PLC0415 (it imports this module)

    if isinstance(spec, RegionSpec) and name in _REGION_NUMBERS:
        return _REGION_NUMBERS[name](spec, _typed(0.0, value, parameter))
    return replace(spec, **{name: _typed(getattr(spec, name), value, parameter)})


def _with_rtt(region: RegionSpec, seconds: float) -> RegionSpec:
    """``rtt`` set to a number, as a file sets it: a constant round trip (0: none)."""
    return replace(region, rtt=Distribution("constant", seconds) if seconds > 0 else None)


def _with_rate_limit(region: RegionSpec, rate: float) -> RegionSpec:
    """``rate_limit`` set, as a file sets it: a region that had none gets the default
    ``burst`` (one second's worth, at least one request)."""
    burst = region.burst if region.rate_limit is not None else max(1.0, rate)
    return replace(region, rate_limit=rate, burst=burst)


_REGION_NUMBERS: dict[str, Callable[[RegionSpec, float], RegionSpec]] = {
    "rtt": _with_rtt,
    "rate_limit": _with_rate_limit,
}
"""Fields of a region that hold a number in a file but not in a ``RegionSpec``."""


def _typed(current: object, value: float, parameter: str) -> Any:
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        raise TypeError(f"{parameter} is not a number")
    if isinstance(current, int) and not float(value).is_integer():
        raise TypeError(f"{parameter} takes whole numbers")
    if value < 0:
        raise ValueError(f"{parameter} cannot be negative")
    return int(value) if isinstance(current, int) else float(value)
