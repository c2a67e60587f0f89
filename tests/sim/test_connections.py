"""Name resolution and connections against the published record of a DNS outage:
clients see the name again one by one as resolvers' caches of the failure expire."""

from __future__ import annotations

import math

import pytest

from stormproof.sim import parse_scenario, run, strategies_for
from stormproof.sim._series import Names

PLAIN = """\
name = "dns"
duration = 400
seed = 7
strategies = ["plain"]

[clients]
instances = 200
rate = 400
deadline = 5.0
attempt_timeout = 1.0

[dns]
ttl = 1
negative_ttl = 0.5

[[regions]]
name = "east"
hostname = "east"
capacity = 200
service_time = { distribution = "constant", mean = 0.01 }

[[triggers]]
kind = "dns_empty"
hostname = "east"
start = 50
end = 150
recovery = {recovery}

[[strategy]]
name = "plain"
"""


def per_second_success(recovery: float) -> list[float]:
    scenario = parse_scenario(PLAIN.replace("{recovery}", str(recovery)), "dns.toml")
    result = run(scenario, strategies_for(scenario)["plain"])
    requests = result.series[Names.REQUESTS]
    successes = result.series[Names.SUCCESSES]
    return [s / r if r else 0.0 for s, r in zip(successes, requests, strict=False)]


def test_instances_see_the_name_again_spread_uniformly_over_the_recovery() -> None:
    share = per_second_success(200.0)
    assert min(share[2:49]) == 1.0  # before the outage
    assert max(share[52:149]) == 0.0  # during it (after the last cached addresses expired)
    # After `end`, the share of instances that see the name again grows linearly over
    # the 200 s recovery: at end + x about x / 200 (each second's share is that of
    # 200 instances; allow binomial noise, 4 standard deviations).
    for x in range(10, 200, 10):
        expected = x / 200
        noise = 4 * (expected * (1 - expected) / 200) ** 0.5 + 0.02
        assert abs(share[150 + x] - expected) <= noise, (x, share[150 + x])
    assert min(share[352:400]) == 1.0


def test_without_a_recovery_every_instance_sees_the_name_at_the_end() -> None:
    share = per_second_success(0)
    assert max(share[52:149]) == 0.0
    assert min(share[152:400]) == 1.0


POOLED = (
    PLAIN.replace(
        "attempt_timeout = 1.0", "attempt_timeout = 1.0\nconnections = 1\nconnection_lifetime = 40"
    )
    .replace("instances = 200", "instances = 600")
    .replace("rate = 400", "rate = 1200")
    .replace("duration = 400", "duration = 200")
    .replace("{recovery}", "0")
)


def pooled_success() -> list[float]:
    scenario = parse_scenario(POOLED, "pooled.toml")
    result = run(scenario, strategies_for(scenario)["plain"])
    requests = result.series[Names.REQUESTS]
    successes = result.series[Names.SUCCESSES]
    return [s / r if r else 0.0 for s, r in zip(successes, requests, strict=False)]


def test_open_connections_keep_working_through_a_dns_outage_until_they_close() -> None:
    # Each instance's one connection lives Exp(mean 40 s); once it closes, opening a new
    # one needs the name, which no longer resolves (after the 1 s cached address). So
    # x seconds into the outage about exp(-x / 40) of the instances still get answers
    # (the middle of second x; 4 standard deviations of 600 instances' draws, and 0.03
    # for the connections that closed just before the outage and the 1 s cache).
    share = pooled_success()
    assert min(share[2:49]) == 1.0
    for x in (5, 10, 20, 30, 40, 60, 80):
        expected = math.exp(-(x + 0.5) / 40)
        noise = 4 * (expected * (1 - expected) / 600) ** 0.5 + 0.03
        assert abs(share[50 + x] - expected) <= noise, (x, share[50 + x], expected)
    assert min(share[152:200]) == 1.0  # new connections open again when the name returns


def test_without_kept_connections_every_attempt_needs_the_name_after_its_ttl() -> None:
    share = per_second_success(0)
    assert max(share[52:149]) == 0.0  # two seconds in: every cached address expired


def test_a_kept_connection_adds_exactly_the_round_trip() -> None:
    # Constant service time and round trip, connections open: every answered request's
    # latency is the service time plus the round trip, to the float.
    text = (
        PLAIN.replace("{recovery}", "0")
        .replace("duration = 400", "duration = 40")
        .replace("start = 50\nend = 150", "start = 30\nend = 35")
        .replace("attempt_timeout = 1.0", "attempt_timeout = 1.0\nconnection_lifetime = 1000")
        .replace(
            'hostname = "east"\ncapacity = 200', 'hostname = "east"\nrtt = 0.08\ncapacity = 200'
        )
    )
    scenario = parse_scenario(text, "rtt.toml")
    result = run(scenario, strategies_for(scenario)["plain"])
    assert result.summary["p50_latency_s"] == pytest.approx(0.09, abs=1e-9)
    assert result.summary["success_rate"] > 0.85  # connections outlive the 5 s outage
