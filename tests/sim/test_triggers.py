"""Triggers are classes: each reads and checks its own fields, and acts on the run's
world at its start and its end; defining one registers its kind."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stormproof import ConfigError
from stormproof.sim import (
    ScenarioError,
    Trigger,
    World,
    option,
    parse_scenario,
    run,
    strategies_for,
)
from stormproof.sim._sweep_spec import with_value
from stormproof.sim._triggers import (
    CapacityDrop,
    DNSEmpty,
    Errors,
    LoadRamp,
    LoadSpike,
    Partition,
    trigger_kinds,
)

BASE = """\
name = "triggered"
duration = 60

[clients]
rate = 20
instances = 2

[[regions]]
name = "east"
hostname = "db.east.test"
capacity = 4
service_time = { distribution = "exponential", mean = 0.01 }

[[triggers]]
"""


def scenario(trigger: str) -> str:
    return BASE + trigger


def test_the_built_in_kinds_are_registered() -> None:
    kinds = trigger_kinds()
    assert {kind: kinds[kind] for kind in ("dns_empty", "partition")} == {
        "dns_empty": DNSEmpty,
        "partition": Partition,
    }
    for cls in (CapacityDrop, Errors, LoadRamp, LoadSpike):
        assert kinds[cls.kind] is cls


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        (
            'kind = "dns_empty"\nhostname = "db.east.test"\nstart = 10\nend = 20\n',
            DNSEmpty(start=10.0, end=20.0, hostname="db.east.test"),
        ),
        (
            'kind = "errors"\nregion = "east"\nrate = 0.5\nstart = 1\nend = 2\n',
            Errors(start=1.0, end=2.0, region="east", rate=0.5),
        ),
        (
            'kind = "load_ramp"\nfactor = 1\nuntil_factor = 3\nstart = 0\nend = 60\n',
            LoadRamp(start=0.0, end=60.0, factor=1.0, until_factor=3.0),
        ),
    ],
)
def test_a_trigger_reads_its_own_fields(trigger: str, expected: Trigger) -> None:
    (parsed,) = parse_scenario(scenario(trigger)).triggers
    assert parsed == expected
    assert parsed.target == {"dns_empty": "db.east.test", "errors": "east"}.get(parsed.kind, "")


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        (
            'kind = "dns_emtpy"\nstart = 1\nend = 2\n',
            "<scenario>:15: triggers[0].kind must be one of 'dns_empty', 'partition', "
            "'capacity_drop', 'errors', 'load_spike', 'load_ramp'",
        ),
        (
            'kind = "dns_emtpy"\nstart = 1\nend = 2\n',
            "(did you mean 'dns_empty'?), got 'dns_emtpy'",
        ),
        (
            'kind = "partition"\nregion = "est"\nstart = 1\nend = 2\n',
            "<scenario>:16: triggers[0].region must be the name of a region ('east') "
            "(did you mean 'east'?), got 'est'",
        ),
        (
            'kind = "partition"\nregion = "east"\nfactor = 2\nstart = 1\nend = 2\n',
            "<scenario>:17: triggers[0].factor must be a known field",
        ),
        (
            'kind = "load_spike"\nfactr = 2\nstart = 1\nend = 2\n',
            "triggers[0].factr must be a known field (did you mean 'factor'?), got 'factr'",
        ),
        (
            'kind = "errors"\nregion = "east"\nrate = 1.5\nstart = 1\nend = 2\n',
            "<scenario>:17: triggers[0].rate must be <= 1, got 1.5",
        ),
        (
            'kind = "load_spike"\nstart = 1\nend = 61\n',
            "<scenario>:17: triggers[0].end must be <= duration (60), got 61.0",
        ),
        ('kind = "dns_empty"\nstart = 1\nend = 2\n', "triggers[0].hostname must be the hostname"),
        (
            'kind = "dns_empty"\nhostname = "db.east.test"\nmode = "gone"\nstart = 1\nend = 2\n',
            "triggers[0].mode must be one of 'empty', 'nxdomain', 'servfail', got 'gone'",
        ),
    ],
)
def test_trigger_errors_name_the_line_the_field_and_the_value(trigger: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(scenario(trigger))
    assert message in str(caught.value), str(caught.value)


class Outage(Trigger, kind="test_outage"):
    """Every request to `region` fails for a while, and the test notes when."""

    region: str = option(refers="region", doc="the region that fails")
    rate: float = option(1.0, low=0.0, high=1.0, doc="the share of requests that fail")

    def on_start(self, world: World) -> None:
        world.service(self.region).error_rate = self.rate
        world.series.counter("test_outage")[world.sim.second] += 1

    def on_end(self, world: World) -> None:
        world.service(self.region).error_rate = 0.0
        world.series.counter("test_outage")[world.sim.second] += 1

    def check(self, section: object) -> None:
        assert self.rate > 0


def test_a_trigger_of_ones_own_is_one_class() -> None:
    text = scenario('kind = "test_outage"\nregion = "east"\nstart = 20\nend = 30\n')
    triggered = parse_scenario(text)
    assert triggered.triggers == (Outage(start=20.0, end=30.0, region="east"),)
    assert triggered.triggers[0].target == "east"
    result = run(triggered, strategies_for(triggered)["naive"])
    marks = result.series["test_outage"]
    assert [second for second, mark in enumerate(marks) if mark] == [20, 30]
    errors = result.series["errors"]
    assert sum(errors[:20]) == sum(errors[31:60]) == 0
    assert sum(errors[20:30]) > 0
    with pytest.raises(ScenarioError, match=r"triggers\[0\]\.rate must be <= 1"):
        parse_scenario(text.replace("start = 20", "rate = 2\nstart = 20"))


def test_a_kind_is_taken_once_and_fields_must_be_readable() -> None:
    with pytest.raises(ConfigError, match="kind must be a kind not taken"):

        class Again(Trigger, kind="partition"):
            pass

    with pytest.raises(TypeError, match="an option is a float, int, str or bool"):

        class Listed(Trigger):
            hosts: list = option(refers="hostname")  # type: ignore[type-arg]

    with pytest.raises(ConfigError, match="refers must be"):
        option(refers="zone")


def test_the_errors_trigger_restores_the_regions_own_rate() -> None:
    text = scenario('kind = "errors"\nregion = "east"\nrate = 1.0\nstart = 20\nend = 30\n')
    triggered = parse_scenario(text.replace("capacity = 4\n", "capacity = 4\nerror_rate = 0.5\n"))
    result = run(triggered, strategies_for(triggered)["naive"])
    s = result.series
    late = sum(s["errors"][35:60]) / sum(s["requests"][35:60])
    assert 0.0 < late < 0.5  # back to 50% per attempt, retried: not 0 and not all


def test_a_sweep_can_vary_a_trigger() -> None:
    text = scenario('kind = "load_spike"\nfactor = 2\nstart = 10\nend = 20\n')
    swept = parse_scenario(text + '\n[sweep]\nparameter = "triggers[0].end"\nvalues = [15, 30]\n')
    longer = with_value(swept, "triggers[0].end", 30)
    assert longer.triggers[0] == replace(swept.triggers[0], end=30.0)
    with pytest.raises(ScenarioError, match=r"values that triggers\[0\]\.end takes .* got 90"):
        parse_scenario(text + '\n[sweep]\nparameter = "triggers[0].end"\nvalues = [15, 90]\n')
