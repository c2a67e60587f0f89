"""The built-in scenarios and strategies (data files, each one a user can print and
copy), and loading scenario files."""

from __future__ import annotations

import os
from functools import cache
from importlib import resources
from pathlib import Path

from ._fields import Locator, ScenarioError, Section, did_you_mean
from ._files import parse_json, parse_toml, parse_yaml, read_toml
from ._scenario import Scenario, build_scenario
from ._strategy_spec import StrategySpec, parse_strategy

__all__ = [
    "builtin_scenarios",
    "builtin_strategies",
    "load_scenario",
    "parse_scenario",
    "strategies_for",
    "strategy_file",
]

FORMATS = {".toml": "toml", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}
"""How a scenario file is read, by the end of its name."""

_ORDER = ("naive", "seed-patterns", "aws-legacy", "aws-standard", "aws-2026", "stormproof")
"""How the built-in strategies are listed: from the loop many start with to stormproof's
composition (any other file in ``strategies/`` after them, by name)."""


def _files(folder: str) -> dict[str, Path]:
    entries = (resources.files("stormproof.sim") / folder).iterdir()
    return {
        entry.name.removesuffix(".toml"): Path(str(entry))
        for entry in sorted(entries, key=lambda e: e.name)
        if entry.name.endswith(".toml")
    }


def strategy_file(name: str) -> Path:
    """The file of built-in strategy ``name``: a ``[[strategy]]`` table, ready to copy
    into a scenario file."""
    files = _files("strategies")
    if name not in files:
        known = ", ".join(_strategies())
        requirement = f"a built-in strategy ({known})" + did_you_mean(name, files)
        raise ScenarioError("strategies", "name", requirement, name)
    return files[name]


def _read_strategy(path: Path) -> StrategySpec:
    data, text = read_toml(path)
    root = Section(data, "", Locator(path.name, text))
    tables = root.sections("strategy")
    if len(tables) != 1:
        raise root.fail("strategy", "one [[strategy]] table", len(tables))
    root.done()
    spec = parse_strategy(tables[0])
    if spec.name != path.stem:
        raise tables[0].fail("name", f"the file's name ({path.stem!r})", spec.name)
    return spec


@cache
def _strategies() -> dict[str, StrategySpec]:
    files = _files("strategies")
    names = [name for name in _ORDER if name in files]
    names += [name for name in files if name not in _ORDER]
    return {name: _read_strategy(files[name]) for name in names}


def builtin_strategies() -> dict[str, StrategySpec]:
    """The built-in strategies, by name (each read from its file, ``strategy_file``)."""
    return dict(_strategies())


def builtin_scenarios() -> dict[str, Path]:
    """The built-in scenarios: each one's name and file."""
    return _files("scenarios")


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a scenario file by path: TOML (``.toml``), JSON
    (``.json``) or YAML (``.yaml``, ``.yml``)."""
    builtins = builtin_scenarios()
    if name_or_path in builtins:
        path = builtins[name_or_path]
        return _build(path.read_text(encoding="utf-8"), path.name, "toml")
    return _build(_read(name_or_path, builtins), name_or_path, FORMATS[_suffix(name_or_path)])


def _suffix(path: str) -> str:
    return Path(path).suffix.lower()


def _read(path: str, builtins: dict[str, Path]) -> str:
    """The text of scenario file ``path``; when there is none, an error that says
    why (not found, a folder, unreadable, not a scenario file's extension)."""

    def refuse(problem: str) -> ScenarioError:
        return ScenarioError(
            path, "scenario file", problem, path, message=f"scenario file {path!r} {problem}"
        )

    try:
        is_file = os.path.isfile(path)
        exists = is_file or os.path.lexists(path)
    except (OSError, ValueError):  # a name too long, or with a NUL character
        is_file = exists = False
    if not exists:
        if os.sep not in path and "/" not in path and not Path(path).suffix:
            hint = did_you_mean(path, builtins) or " (`stormproof scenarios` lists them)"
            raise ScenarioError(
                path,
                "scenario",
                "a built-in scenario or a scenario file",
                path,
                message=f"scenario {path!r} not found: no built-in scenario and no file "
                f"of that name{hint}",
            )
        raise refuse("not found")
    if os.path.isdir(path):
        raise refuse("is a folder, not a file")
    if not is_file:
        raise refuse("is not a regular file (a broken link, a device or a pipe)")
    if _suffix(path) not in FORMATS:
        ends = ", ".join(FORMATS)
        raise refuse(
            f"has an unknown extension ({Path(path).suffix or 'none'}): scenario files "
            f"end in {ends} (TOML, JSON, YAML)"
        )
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise refuse(f"cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise refuse(f"is not UTF-8 text ({error.reason} at byte {error.start})") from None


def _build(text: str, source: str, kind: str) -> Scenario:
    """A scenario from a file's ``text`` in format ``kind`` (``"toml"``, ``"json"`` or
    ``"yaml"``); errors name ``source`` and the line."""
    if kind == "toml":
        return build_scenario(parse_toml(text, source), source, text, tuple(_strategies()))
    parse = parse_yaml if kind == "yaml" else parse_json
    data, lines = parse(text, source)
    return build_scenario(data, source, None, tuple(_strategies()), lines)


def parse_scenario(
    text: str, source: str = "<scenario>", *, yaml: bool = False, json: bool = False
) -> Scenario:
    """A scenario from the text of a scenario file (TOML, or YAML with ``yaml=True``,
    or JSON with ``json=True``); errors name ``source`` and the line."""
    if yaml and json:
        raise ValueError("a scenario's text is YAML or JSON, not both")
    return _build(text, source, "yaml" if yaml else "json" if json else "toml")


def strategies_for(scenario: Scenario) -> dict[str, StrategySpec]:
    """Every strategy the scenario can run: the built-ins and its own."""
    return {**_strategies(), **scenario.custom}
