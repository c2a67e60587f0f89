"""Reading scenario files: typed fields with errors that name the file, the line, the
field and the bad value, and that refuse unknown fields (a typo is not a default), with
"did you mean" when a known name is close; and ``option``, the declaration of a field
that a class (a trigger kind) reads from its table."""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from stormproof import ConfigError

__all__ = ["Locator", "Option", "ScenarioError", "Section", "did_you_mean", "option", "options_of"]


class ScenarioError(ConfigError):
    """A scenario (or strategy) definition is invalid: where, which field, what value."""

    def __init__(
        self,
        where: str,
        field: str,
        requirement: str,
        value: object,
        *,
        message: str | None = None,
    ) -> None:
        """``where`` (a file and line) is left out of the message when it is the field
        itself (a command-line option: ``--seed must be ...``); ``message``, when given,
        is the whole message, for what the "``where``: ``field`` must be
        ``requirement``, got ``value``" form does not fit (``scenario file 'x.toml'
        not found``)."""
        self.where = where
        self.parameter = field
        self.requirement = requirement
        self.value = value
        if message is None:
            message = f"{field} must be {requirement}, got {value!r}"
            if where and where != field:
                message = f"{where}: {message}"
        ValueError.__init__(self, message)


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")
_INLINE_KEY = re.compile(r"([A-Za-z0-9_\-]+)\s*=")


class Locator:
    """Maps a field path (``regions[1].capacity``) to its line: found in TOML ``text``,
    or given as ``lines`` (the YAML reader takes them from its parse)."""

    def __init__(self, source: str, text: str | None, lines: dict[str, int] | None = None) -> None:
        self.source = source
        self.lines: dict[str, int] = {} if lines is None else lines
        if text is None:
            return
        table = ""
        counts: dict[str, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                name = header.group(2).replace('"', "").replace("'", "")
                if header.group(1) == "[[":
                    index = counts.get(name, 0)
                    counts[name] = index + 1
                    table = f"{name}[{index}]"
                else:  # [strategy.retry] after [[strategy]]: the last one's retry
                    head, _, rest = name.partition(".")
                    table = name
                    if rest and head in counts:
                        table = f"{head}[{counts[head] - 1}].{rest}"
                self.lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                name = key.group(1).strip("\"'")
                path = f"{table}.{name}" if table else name
                self.lines.setdefault(path, number)
                rest = line[key.end() :]
                if rest.strip().startswith("{"):
                    for inner in _INLINE_KEY.finditer(rest):
                        self.lines.setdefault(f"{path}.{inner.group(1)}", number)

    def where(self, path: str) -> str:
        probe = path
        while probe:
            if probe in self.lines:
                return f"{self.source}:{self.lines[probe]}"
            probe = probe.rsplit(".", 1)[0] if "." in probe else ""
        return self.source


class Section:
    """One table of a scenario file, read field by field."""

    def __init__(self, data: dict[str, Any], path: str, locator: Locator) -> None:
        if not isinstance(data, dict):
            raise ScenarioError(locator.where(path), path or "scenario", "a table", data)
        self.data = data
        self.path = path
        self.locator = locator
        self.used: set[str] = set()

    def _name(self, field: str) -> str:
        return f"{self.path}.{field}" if self.path else field

    def fail(self, field: str, requirement: str, value: object) -> ScenarioError:
        name = self._name(field)
        return ScenarioError(self.locator.where(name), name, requirement, value)

    def has(self, field: str) -> bool:
        return field in self.data

    def raw(self, field: str, default: Any = None) -> Any:
        self.used.add(field)
        return self.data.get(field, default)

    def number(
        self,
        field: str,
        default: float | None = None,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
    ) -> float:
        value = self.raw(field, default)
        if value is None:
            raise self.fail(field, "given", None)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise self.fail(field, "a number", value)
        if low is not None and (value < low or (low_open and value == low)):
            raise self.fail(field, f"{'>' if low_open else '>='} {low:g}", value)
        if high is not None and value > high:
            raise self.fail(field, f"<= {high:g}", value)
        return float(value)

    def integer(self, field: str, default: int | None = None, *, low: int = 0) -> int:
        value = self.raw(field, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(field, f"an integer >= {low}", value)
        return value

    def string(
        self,
        field: str,
        default: str | None = None,
        *,
        choices: Iterable[str] | None = None,
        what: str = "",
    ) -> str:
        """A non-empty string; with ``choices``, one of them (``what`` says what they
        are: "the hostname of a region")."""
        value = self.raw(field, default)
        if not isinstance(value, str) or not value:
            raise self.fail(field, what or "a non-empty string", value)
        if choices is not None:
            options = list(choices)
            if value not in options:
                listed = ", ".join(repr(o) for o in options)
                requirement = f"{what} ({listed})" if what else f"one of {listed}"
                raise self.fail(field, requirement + did_you_mean(value, options), value)
        return value

    def boolean(self, field: str, default: bool | None = None) -> bool:
        value = self.raw(field, default)
        if not isinstance(value, bool):
            raise self.fail(field, "true or false", value)
        return value

    def section(self, field: str, default: dict[str, Any] | None = None) -> Section:
        value = self.raw(field, {} if default is None else default)
        if not isinstance(value, dict):
            raise self.fail(field, "a table", value)
        return Section(value, self._name(field), self.locator)

    def optional_section(self, field: str) -> Section | None:
        if self.data.get(field) in (None, False):
            self.used.add(field)
            return None
        value = self.raw(field)
        if value is True:
            value = {}
        if not isinstance(value, dict):
            raise self.fail(field, "a table, true or false", value)
        return Section(value, self._name(field), self.locator)

    def sections(self, field: str) -> list[Section]:
        value = self.raw(field, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(field, "an array of tables ([[...]])", value)
        return [Section(v, f"{self._name(field)}[{i}]", self.locator) for i, v in enumerate(value)]

    def done(self) -> None:
        """Refuse fields nobody read: they are typos or unsupported."""
        for field in self.data:
            if field not in self.used:
                name = str(field)  # YAML keys can be numbers
                raise self.fail(name, "a known field" + did_you_mean(name, self.used), field)


def did_you_mean(value: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- fields declared by the classes that read them ------------------------------------------

_OPTION = "stormproof.sim.option"
_KINDS = {"float": "number", "int": "integer", "str": "string", "bool": "boolean"}


@dataclasses.dataclass(frozen=True)
class Option:
    """How one field is read from a scenario's table (see ``option``)."""

    name: str
    kind: str  # "number", "integer", "string" or "boolean"
    default: Any
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] | None = None
    refers: str = ""
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING

    def read(self, section: Section, regions: Sequence[Any] = ()) -> Any:
        """The field's value in ``section``, checked (``regions``: the scenario's, each
        with a ``name`` and a ``hostname``, for fields that refer to one)."""
        default = None if self.required else self.default
        name = self.name
        if self.kind == "number":
            return section.number(
                name, default, low=self.low, high=self.high, low_open=self.low_open
            )
        if self.kind == "integer":
            return section.integer(name, default, low=int(self.low or 0))
        if self.kind == "boolean":
            return section.boolean(name, default)
        if self.refers:
            attribute = "name" if self.refers == "region" else "hostname"
            known = [getattr(region, attribute) for region in regions]
            known = [value for value in known if value]  # a service without a host name
            return section.string(name, default, choices=known, what=self.describe_kind())
        return section.string(name, default, choices=self.choices)

    def describe_kind(self) -> str:
        """What values it takes, in words (Markdown)."""
        if self.refers:
            return f"the {'name' if self.refers == 'region' else 'hostname'} of a region"
        if self.choices is not None:
            quoted = [f'`"{choice}"`' for choice in self.choices]
            return ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else quoted[0]
        if self.kind in ("number", "integer"):
            kind = "a number" if self.kind == "number" else "an integer"
            if self.low is not None and self.high is not None:
                return f"{kind} from {self.low:g} to {self.high:g}"
            if self.low is not None:
                return f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
            return kind
        return "true or false" if self.kind == "boolean" else "a string"


def option(
    default: Any = dataclasses.MISSING,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    choices: Sequence[str] | None = None,
    refers: str = "",
    doc: str = "",
) -> Any:
    """Declare a field of a dataclass that reads itself from a scenario's table (a
    ``Trigger`` kind): its type (``float``, ``int``, ``str`` or ``bool``, from the
    annotation), its ``default`` (none: required), its bounds (``low``, ``high``;
    ``low_open``: above ``low``, not equal), its ``choices``, whether it ``refers`` to
    a region (``"region"``: a region's name, ``"hostname"``: its host name), and ``doc``,
    what it means (the docs' reference is made from it). Errors name the file, the
    line, the field and the value."""
    if refers not in ("", "region", "hostname"):
        raise ConfigError("refers", '"region", "hostname" or ""', refers)
    spec = {
        "default": default,
        "low": low,
        "high": high,
        "low_open": low_open,
        "choices": None if choices is None else tuple(choices),
        "refers": refers,
        "doc": doc,
    }
    return dataclasses.field(default=default, metadata={_OPTION: spec})


def options_of(cls: type) -> dict[str, Option]:
    """The fields of dataclass ``cls`` declared with ``option``, by name, in order."""
    found: dict[str, Option] = {}
    for field in dataclasses.fields(cls):
        spec: Mapping[str, Any] | None = field.metadata.get(_OPTION)
        if spec is None:
            continue
        annotation = field.type if isinstance(field.type, str) else field.type.__name__
        kind = _KINDS.get(annotation)
        if kind is None:
            raise TypeError(
                f"{cls.__name__}.{field.name}: an option is a float, int, str or bool, "
                f"not {annotation}"
            )
        found[field.name] = Option(field.name, kind, **spec)
    return found
