"""Reading scenario files: typed fields with errors that name the file, the line, the
field and the bad value, and that refuse unknown fields (a typo is not a default)."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from typing import Any

from stormproof._core.errors import ConfigError

__all__ = ["Locator", "ScenarioError", "Section"]


class ScenarioError(ConfigError):
    """A scenario (or strategy) definition is invalid: where, which field, what value."""

    def __init__(self, where: str, field: str, requirement: str, value: object) -> None:
        self.where = where
        self.parameter = field
        self.value = value
        ValueError.__init__(self, f"{where}: {field} must be {requirement}, got {value!r}")


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
                else:
                    table = name
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
        self, field: str, default: str | None = None, *, choices: Iterable[str] | None = None
    ) -> str:
        value = self.raw(field, default)
        if not isinstance(value, str) or not value:
            raise self.fail(field, "a non-empty string", value)
        if choices is not None:
            options = list(choices)
            if value not in options:
                raise self.fail(field, "one of " + ", ".join(repr(o) for o in options), value)
        return value

    def boolean(self, field: str, default: bool) -> bool:
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
                close = difflib.get_close_matches(name, list(self.used), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.fail(name, f"a known field{hint}", field)
