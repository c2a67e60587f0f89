"""What a scenario's variants are: the same scenario with one key assumption changed
(``[[variants]]`` tables: the assumption, a name, and the fields it ``set``s), read and
checked into scenarios of their own, so a run can show which conclusions hold across
the assumptions and which depend on one."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._fields import ScenarioError, Section

if TYPE_CHECKING:
    from ._scenario import Scenario

__all__ = ["Variant", "apply_changes", "parse_quick", "parse_variants", "set_field"]

_STEP = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?$")
"""One step of a field path: ``clients``, ``regions[1]``."""


@dataclass(frozen=True)
class Variant:
    """The scenario with one ``assumption`` changed (``name`` says how): ``changes``
    are the fields set, as (path, value) pairs; ``scenario`` is the result, checked."""

    assumption: str
    name: str
    changes: tuple[tuple[str, Any], ...]
    scenario: Scenario

    @property
    def label(self) -> str:
        """How tables name it: ``"outage length: 30 min"``."""
        return f"{self.assumption}: {self.name}"


def set_field(data: dict[str, Any], path: str, value: Any) -> None:
    """Set the field at ``path`` (``"duration"``, ``"clients.key_skew"``,
    ``"regions[1].capacity"``, ``"regions[0].service_time.mean"``) in a scenario's raw
    data. The tables on the way must exist (an entry of an array of tables, a table the
    file has or that has defaults); the last step may be a field the file left to its
    default. Raises ``KeyError`` naming what is missing."""
    steps = path.split(".")
    table: Any = data
    for number, step in enumerate(steps):
        match = _STEP.match(step)
        if match is None:
            raise KeyError(f"{step!r} is not a field name (names, or name[index])")
        name, index = match.group(1), match.group(2)
        last = number == len(steps) - 1
        if not isinstance(table, dict):
            raise KeyError(f"{'.'.join(steps[:number])} is not a table")
        if index is not None:
            entries = table.get(name)
            if not isinstance(entries, list):
                raise KeyError(f"the scenario has no array of tables {name!r}")
            if int(index) >= len(entries):
                raise KeyError(f"{name} has {len(entries)} entries, no [{index}]")
            if last:
                entries[int(index)] = value
                return
            table = entries[int(index)]
        elif last:
            table[name] = value
        else:
            table = table.setdefault(name, {})


_RESERVED = ("name", "seed", "strategies", "strategy", "sweep", "variants", "quick")
"""Fields a variant cannot set: they are not the world's."""


def apply_changes(
    section: Section,
    data: dict[str, Any],
    reread: Callable[[dict[str, Any]], Scenario],
) -> tuple[tuple[tuple[str, Any], ...], Scenario]:
    """The scenario that ``section``'s ``set`` table makes of the file's raw ``data``
    (read again with ``reread``, so it passes every check a file passes), and the
    changes. Errors name the table, the field and the value."""
    changes = section.raw("set")
    if not isinstance(changes, dict) or not changes:
        raise section.fail("set", 'a table of fields to set, e.g. {"clients.rate" = 50}', changes)
    varied = copy.deepcopy(data)
    for reserved in ("variants", "quick"):
        varied.pop(reserved, None)
    for path, value in changes.items():
        if path.split(".")[0].split("[")[0] in _RESERVED:
            raise section.fail(
                "set", "fields of the scenario's world (not its name, seed or strategies)", path
            )
        try:
            set_field(varied, path, value)
        except KeyError as error:
            raise section.fail(
                "set", f"paths of fields of the scenario ({error.args[0]})", path
            ) from None
    try:
        scenario = reread(varied)
    except ScenarioError as error:
        reason = str(error).split(": ", 1)[-1]
        raise section.fail("set", f"values the scenario takes ({reason})", changes) from None
    return tuple(changes.items()), scenario


def parse_variants(
    sections: list[Section],
    data: dict[str, Any],
    reread: Callable[[dict[str, Any]], Scenario],
) -> tuple[Variant, ...]:
    """The ``[[variants]]`` tables, each with its scenario (``apply_changes``)."""
    variants: list[Variant] = []
    labels: set[str] = set()
    for section in sections:
        assumption = section.string("assumption")
        name = section.string("name")
        changes, scenario = apply_changes(section, data, reread)
        variant = Variant(assumption, name, changes, scenario)
        if variant.label in labels:
            raise section.fail("name", f"unique within assumption {assumption!r}", name)
        labels.add(variant.label)
        section.done()
        variants.append(variant)
    return tuple(variants)


def parse_quick(
    section: Section,
    data: dict[str, Any],
    reread: Callable[[dict[str, Any]], Scenario],
) -> Variant:
    """The ``[quick]`` table: the fields a quick run (``--quick``) sets, such as a
    shorter outage, and ``name``: what it gives up, for the run to say."""
    name = section.string("name")
    changes, scenario = apply_changes(section, data, reread)
    section.done()
    return Variant("quick", name, changes, scenario)
