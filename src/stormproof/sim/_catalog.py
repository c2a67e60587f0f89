"""The built-in scenarios and strategies, and loading scenario files."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ._fields import Locator, ScenarioError, Section
from ._files import parse_toml, parse_yaml, read_toml, read_yaml
from ._scenario import Scenario, build_scenario
from ._strategies import BUILT_IN
from ._strategy_spec import StrategySpec, parse_strategy

__all__ = ["builtin_scenarios", "load_scenario", "parse_scenario", "strategies_for"]

_STRATEGIES = {
    name: parse_strategy(
        Section({"name": name, **spec}, f"strategies.{name}", Locator("built-in", None))
    )
    for name, spec in BUILT_IN.items()
}


def builtin_scenarios() -> dict[str, Path]:
    """The built-in scenarios: each one's name and file."""
    folder = resources.files("stormproof.sim") / "scenarios"
    return {
        entry.name.removesuffix(".toml"): Path(str(entry))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".toml")
    }


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
        return build_scenario(data, shown, None, tuple(_STRATEGIES), lines)
    data, text = read_toml(path)
    return build_scenario(data, shown, text, tuple(_STRATEGIES))


def parse_scenario(text: str, source: str = "<scenario>", *, yaml: bool = False) -> Scenario:
    """A scenario from the text of a scenario file (TOML, or YAML with ``yaml=True``);
    errors name ``source`` and the line."""
    if yaml:
        data, lines = parse_yaml(text, source)
        return build_scenario(data, source, None, tuple(_STRATEGIES), lines)
    return build_scenario(parse_toml(text, source), source, text, tuple(_STRATEGIES))


def strategies_for(scenario: Scenario) -> dict[str, StrategySpec]:
    """Every strategy the scenario can run: the built-ins and its own."""
    return {**_STRATEGIES, **scenario.custom}
