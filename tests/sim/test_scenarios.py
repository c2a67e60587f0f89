from __future__ import annotations

from pathlib import Path

import pytest

from stormproof.sim import ScenarioError, builtin_scenarios, load_scenario, strategies_for

MINIMAL = """\
name = "tiny"
duration = 60

[clients]
rate = 20
instances = 2

[[regions]]
name = "east"
hostname = "db.east.test"
capacity = 4
service_time = { distribution = "exponential", mean = 0.01 }
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return str(path)


def test_builtins_load_and_list_their_strategies() -> None:
    names = set(builtin_scenarios())
    assert {"us-east-1", "metastable"} <= names
    for name in names:
        scenario = load_scenario(name)
        assert scenario.name == name
        known = strategies_for(scenario)
        assert all(strategy in known for strategy in scenario.strategies)


def test_a_minimal_file_gets_defaults(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, MINIMAL))
    assert scenario.clients.deadline == 2.0
    assert scenario.dns.ttl == 60
    assert "stormproof" in scenario.strategies
    assert scenario.trigger_window is None


def test_custom_strategies(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + """
strategies = ["mine"]

[[strategy]]
name = "mine"
summary = "a retry with a gRPC throttle"
retry = { on = "regional", attempts = 4, budget = "grpc", backoff = { jitter = "equal" } }
breaker = { window = 10, minimum_calls = 5 }
"""
    )
    text = text.replace('strategies = ["mine"]\n', "")
    text = 'strategies = ["mine"]\n' + text
    scenario = load_scenario(write(tmp_path, text))
    mine = strategies_for(scenario)["mine"]
    assert mine.retry is not None
    assert (mine.retry.options.attempts, mine.retry.budget, mine.retry.options.backoff.jitter) == (
        4,
        "grpc",
        "equal",
    )
    assert mine.breaker is not None
    assert mine.breaker.minimum_calls == 5


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("rate = 20", "rate = -5"), "scenario.toml:5: clients.rate must be > 0, got -5"),
        (
            ("rate = 20", "rtae = 20"),
            "scenario.toml:5: clients.rtae must be a known field (did you mean 'rate'?)",
        ),
        (
            ("capacity = 4", 'capacity = "lots"'),
            "scenario.toml:11: regions[0].capacity must be an integer >= 1, got 'lots'",
        ),
        (
            ('distribution = "exponential"', 'distribution = "pareto"'),
            "scenario.toml:12: regions[0].service_time.distribution must be one of",
        ),
        (("duration = 60", "duration = 0"), "scenario.toml:2: duration must be > 0, got 0"),
        (("duration = 60", 'duration = "1h"'), "duration must be a number, got '1h'"),
    ],
)
def test_errors_name_the_line_the_field_and_the_value(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    text = MINIMAL.replace(*edit)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, text))
    assert message in str(caught.value), str(caught.value)


def test_trigger_and_strategy_errors(tmp_path: Path) -> None:
    bad_trigger = (
        MINIMAL
        + """
[[triggers]]
kind = "dns_empty"
hostname = "db.east.test"
start = 30
end = 20
"""
    )
    with pytest.raises(ScenarioError, match=r"scenario.toml:18: triggers\[0\].end must be > start"):
        load_scenario(write(tmp_path, bad_trigger))
    unknown_host = bad_trigger.replace("end = 20", "end = 40").replace(
        '"db.east.test"\nstart', '"nope.test"\nstart'
    )
    with pytest.raises(ScenarioError, match="hostname must be the hostname of a region"):
        load_scenario(write(tmp_path, unknown_host))
    unknown_strategy = 'strategies = ["naive", "magic"]\n' + MINIMAL
    with pytest.raises(ScenarioError, match="strategies must be names of known strategies"):
        load_scenario(write(tmp_path, unknown_strategy))
    bad_budget = (
        MINIMAL
        + """
[[strategy]]
name = "x"
retry = { on = "regional", budget = "infinite" }
"""
    )
    with pytest.raises(ScenarioError, match=r"strategy\[0\].retry.budget must be one of"):
        load_scenario(write(tmp_path, bad_budget))


def test_syntax_errors_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="the file must be valid TOML"):
        load_scenario(write(tmp_path, "name = \n"))
    with pytest.raises(ScenarioError, match=r"scenario 'no-such-scenario' not found"):
        load_scenario("no-such-scenario")


def test_the_documented_example_scenario_is_valid(tmp_path: Path) -> None:
    guide = Path(__file__).parents[2] / "docs" / "scenarios" / "writing.md"
    text = guide.read_text().split("```toml\n", 1)[1].split("```", 1)[0]
    scenario = load_scenario(write(tmp_path, text))
    assert scenario.strategies == ("aws-2026", "stormproof", "ours")
    ours = strategies_for(scenario)["ours"]
    assert ours.cache is not None
    assert ours.failover is not None
    assert ours.bulkhead is not None
    assert ours.bulkhead.max_concurrent == 32


MINIMAL_YAML = """\
name: tiny
duration: 60
clients:
  rate: 20
  instances: 2
regions:
  - name: east
    hostname: db.east.test
    capacity: 4
    service_time: {distribution: exponential, mean: 1e-2}
strategies: [mine]
strategy:
  - name: mine
    retry:
      on: all
      attempts: 2
      deadline: yes
"""


def test_yaml_scenarios_read_like_toml_ones(tmp_path: Path) -> None:
    text = MINIMAL_YAML.replace("      deadline: yes\n", "      deadline: true\n")
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    scenario = load_scenario(str(path))
    assert scenario.regions[0].service_time.mean == 0.01  # 1e-2 is a number
    mine = strategies_for(scenario)["mine"]
    assert mine.retry is not None
    assert mine.retry.options.on is Exception  # `on` is a field name, not YAML 1.1's True
    toml_twin = load_scenario(write(tmp_path, MINIMAL))
    assert scenario.clients == toml_twin.clients
    assert scenario.regions == toml_twin.regions


def write_yaml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "scenario.yml"
    path.write_text(text)
    return str(path)


def test_yaml_errors_name_the_line_the_field_and_the_value(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write_yaml(tmp_path, MINIMAL_YAML))
    assert (
        "scenario.yml:17: strategy[0].retry.deadline must be true (the caller's), false or a "
        "number of seconds, got 'yes'" in str(caught.value)
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write_yaml(tmp_path, MINIMAL_YAML.replace("capacity: 4", "capacity: -4")))
    assert "scenario.yml:9: regions[0].capacity must be an integer >= 1, got -4" in str(
        caught.value
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write_yaml(tmp_path, MINIMAL_YAML.replace("  rate: 20", "  rtae: 20")))
    assert "scenario.yml:4: clients.rtae must be a known field (did you mean 'rate'?)" in str(
        caught.value
    )
    with pytest.raises(ScenarioError, match=r"the file must be valid YAML \(.*line 2"):
        load_scenario(write_yaml(tmp_path, "name: [x\nduration: 60\n"))
    with pytest.raises(ScenarioError, match="scenario must be a table, got 'just text'"):
        load_scenario(write_yaml(tmp_path, "just text\n"))
    with pytest.raises(ScenarioError, match="1 must be a known field"):
        load_scenario(write_yaml(tmp_path, MINIMAL_YAML.replace("yes", "true") + "1: one\n"))


def test_the_documented_yaml_example_is_valid(tmp_path: Path) -> None:
    guide = Path(__file__).parents[2] / "docs" / "scenarios" / "writing.md"
    text = guide.read_text().split("```yaml\n", 1)[1].split("```", 1)[0]
    scenario = load_scenario(write_yaml(tmp_path, text))
    ours = strategies_for(scenario)["ours"]
    assert ours.retry is not None
    assert (ours.retry.options.on, ours.retry.budget) == (Exception, "aws-2026")
    assert scenario.triggers[0].end == 1800


def test_closed_loop_clients(tmp_path: Path) -> None:
    closed = MINIMAL.replace("rate = 20\n", 'loop = "closed"\nusers = 30\nthink_time = 0.5\n')
    scenario = load_scenario(write(tmp_path, closed))
    assert (scenario.clients.loop, scenario.clients.users, scenario.clients.think_time) == (
        "closed",
        30,
        0.5,
    )
    assert "30 users (closed loop, 0.5 s think time)" in scenario.clients.describe()
    with pytest.raises(ScenarioError, match=r"clients\.rate must be left out with closed-loop"):
        load_scenario(write(tmp_path, closed.replace("users = 30\n", "users = 30\nrate = 5\n")))
    with pytest.raises(ScenarioError, match=r"clients\.users must be an integer >= 1, got None"):
        load_scenario(write(tmp_path, closed.replace("users = 30\n", "")))
    with pytest.raises(ScenarioError, match=r"clients\.think_time must be left out with open-loop"):
        load_scenario(write(tmp_path, MINIMAL.replace("rate = 20\n", "think_time = 2\n")))
