"""Scenario files by extension (TOML, JSON, YAML), and the errors of files that are not
there, not files, unreadable or of an unknown kind."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from stormproof.sim import ScenarioError, load_scenario, parse_scenario, strategy_file
from stormproof.sim._files import parse_toml

from .test_runs import OUTAGE
from .test_scenarios import MINIMAL, MINIMAL_YAML

JSON = """\
{
  "name": "tiny",
  "duration": 60,
  "clients": {"rate": 20, "instances": 2},
  "regions": [
    {
      "name": "east",
      "hostname": "db.east.test",
      "capacity": 4,
      "service_time": {"distribution": "exponential", "mean": 0.01}
    }
  ],
  "strategies": ["mine"],
  "strategy": [
    {"name": "mine", "retry": {"on": "all", "attempts": 2, "deadline": true}}
  ]
}
"""


def test_a_json_scenario_is_read_as_json_and_equals_its_yaml_twin(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(JSON)
    scenario = load_scenario(str(path))
    yaml = tmp_path / "tiny.yaml"
    yaml.write_text(MINIMAL_YAML.replace("deadline: yes", "deadline: true"))
    twin = load_scenario(str(yaml))
    assert replace(scenario, source="") == replace(twin, source="")
    assert scenario.strategies == ("mine",)
    assert replace(parse_scenario(JSON, "tiny.json", json=True), source="") == replace(
        twin, source=""
    )


def test_json_errors_name_the_line_the_field_and_the_value(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(JSON.replace('"capacity": 4', '"capacity": -4'))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(str(path))
    assert f"{path}:9: regions[0].capacity must be an integer >= 1, got -4" in str(caught.value)
    path.write_text(JSON.replace('"rate": 20', '"rtae": 20'))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(str(path))
    assert f"{path}:4: clients.rtae must be a known field (did you mean 'rate'?)" in str(
        caught.value
    )
    path.write_text(JSON.replace('"attempts": 2,', '"attempts": 2,,'))
    with pytest.raises(ScenarioError, match=r"the file must be valid JSON \(.* at line 15, column"):
        load_scenario(str(path))
    path.write_text('["a list"]\n')
    with pytest.raises(ScenarioError, match=r"scenario must be a table, got \['a list'\]"):
        load_scenario(str(path))


def test_the_same_data_in_toml_and_json_is_the_same_scenario(tmp_path: Path) -> None:
    toml = tmp_path / "outage.toml"
    toml.write_text(OUTAGE)
    path = tmp_path / "outage.json"
    path.write_text(json.dumps(parse_toml(OUTAGE, "outage.toml"), indent=2))
    assert replace(load_scenario(str(path)), source="") == replace(
        load_scenario(str(toml)), source=""
    )


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere" / "my-service.toml")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(missing)
    assert str(caught.value) == f"scenario file {missing!r} not found"


def test_a_missing_name_is_not_found_with_did_you_mean() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario("us-east")
    assert str(caught.value) == (
        "scenario 'us-east' not found: no built-in scenario and no file of that name "
        "(did you mean 'us-east-1'?)"
    )
    with pytest.raises(ScenarioError, match="`stormproof scenarios` lists them"):
        load_scenario("zzzz")


def test_a_folder_is_not_a_scenario_file(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios.toml"
    folder.mkdir()
    with pytest.raises(ScenarioError) as caught:
        load_scenario(str(folder))
    assert str(caught.value) == f"scenario file {str(folder)!r} is a folder, not a file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "secret.toml"
    path.write_text(MINIMAL)
    path.chmod(0)
    with pytest.raises(ScenarioError, match=r"secret.toml' cannot be read \(Permission denied\)"):
        load_scenario(str(path))


def test_a_file_that_is_not_text_says_so(tmp_path: Path) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(b"name = \xff\xfe\n")
    with pytest.raises(ScenarioError, match=r"binary.toml' is not UTF-8 text"):
        load_scenario(str(path))


@pytest.mark.parametrize("name", ["service.txt", "service.tml", "service"])
def test_an_unknown_extension_names_the_supported_ones(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(MINIMAL)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(str(path))
    message = str(caught.value)
    assert message.startswith(f"scenario file {str(path)!r} has an unknown extension")
    assert "end in .toml, .json, .yaml, .yml" in message


def test_the_extension_is_read_whatever_its_case(tmp_path: Path) -> None:
    path = tmp_path / "TINY.JSON"
    path.write_text(JSON)
    assert load_scenario(str(path)).name == "tiny"


def test_an_unknown_strategy_file_says_did_you_mean() -> None:
    with pytest.raises(ScenarioError, match=r"\(did you mean 'stormproof'\?\), got 'stormprof'"):
        strategy_file("stormprof")
