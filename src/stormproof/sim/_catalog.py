"""The built-in scenarios and strategies (data files, each one a user can print and
copy), and loading scenario files."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from ._fields import Locator, ScenarioError, Section
from ._files import parse_toml, parse_yaml, read_toml, read_yaml
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
        raise ScenarioError("strategies", "name", f"a built-in strategy ({known})", name)
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
    """A built-in scenario by name, or a scenario file by path (TOML, or YAML when it
    ends in ``.yaml`` or ``.yml``)."""
    builtins = builtin_scenarios()
    path = builtins.get(name_or_path)
    if path is None:
        path = Path(name_or_path)
        if not path.is_file():
            raise ScenarioError(
                "scenario",
                "scenario",
                "a built-in scenario (" + ", ".join(builtins) + ") or a scenario file",
                name_or_path,
            )
    shown = path.name if name_or_path in builtins else str(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        data, lines = read_yaml(path)
        return build_scenario(data, shown, None, tuple(_strategies()), lines)
    data, text = read_toml(path)
    return build_scenario(data, shown, text, tuple(_strategies()))


def parse_scenario(text: str, source: str = "<scenario>", *, yaml: bool = False) -> Scenario:
    """A scenario from the text of a scenario file (TOML, or YAML with ``yaml=True``);
    errors name ``source`` and the line."""
    if yaml:
        data, lines = parse_yaml(text, source)
        return build_scenario(data, source, None, tuple(_strategies()), lines)
    return build_scenario(parse_toml(text, source), source, text, tuple(_strategies()))


def strategies_for(scenario: Scenario) -> dict[str, StrategySpec]:
    """Every strategy the scenario can run: the built-ins and its own."""
    return {**_strategies(), **scenario.custom}
