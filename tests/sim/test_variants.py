"""Variants: a scenario with one key assumption changed at a time, every strategy run in
each, and what holds across them."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from stormproof.cli import main
from stormproof.sim import ScenarioError, load_scenario, parse_scenario, strategies_for
from stormproof.sim._metrics import GOODPUT_RATE
from stormproof.sim._robustness import (
    Robustness,
    findings,
    robustness_document,
    robustness_html,
    robustness_table,
    run_labels,
    run_with_variants,
)
from stormproof.sim._variant_spec import set_field

BASE = """\
name = "variants"
duration = 240
seed = 3
strategies = ["naive", "aws-2026", "stormproof"]

[clients]
instances = 4
rate = 20
deadline = 2.0
attempt_timeout = 1.0

[dns]
ttl = 60

[[regions]]
name = "us-east-1"
hostname = "east"
capacity = 4
service_time = { distribution = "lognormal", mean = 0.05, sigma = 0.5 }

[[regions]]
name = "us-west-2"
hostname = "west"
capacity = 1
service_time = { distribution = "lognormal", mean = 0.05, sigma = 0.5 }

[[triggers]]
kind = "dns_empty"
hostname = "east"
start = 60
end = 150
"""

VARIANTS = """
[[variants]]
assumption = "outage length"
name = "30 s"
set = { "triggers[0].end" = 90 }

[[variants]]
assumption = "replica capacity"
name = "as written, restated"
set = { "regions[1].capacity" = 1 }

[[variants]]
assumption = "replica capacity"
name = "none to speak of"
set = { "regions[1].service_time.mean" = 2.0 }
"""


def scenario(text: str = BASE + VARIANTS):  # type: ignore[no-untyped-def]
    return parse_scenario(text, "variants.toml")


def test_each_variant_is_the_scenario_with_its_fields_set() -> None:
    read = scenario()
    shorter, same, slow = read.variants
    assert shorter.label == "outage length: 30 s"
    assert shorter.scenario.triggers[0].end == 90
    assert shorter.scenario.regions == read.regions
    assert same.scenario.regions == read.regions
    assert slow.scenario.regions[1].service_time.mean == 2.0
    assert slow.scenario.triggers == read.triggers
    assert all(v.scenario.variants == () for v in read.variants)


def test_set_field_walks_tables_and_arrays() -> None:
    data = {"clients": {"rate": 1}, "regions": [{"name": "a"}, {"name": "b"}]}
    set_field(data, "clients.key_skew", 0.8)
    set_field(data, "regions[1].service_time.mean", 0.1)
    set_field(data, "dns.ttl", 5)
    assert data == {
        "clients": {"rate": 1, "key_skew": 0.8},
        "regions": [{"name": "a"}, {"name": "b", "service_time": {"mean": 0.1}}],
        "dns": {"ttl": 5},
    }
    with pytest.raises(KeyError, match="regions has 2 entries, no \\[2\\]"):
        set_field(data, "regions[2].capacity", 1)
    with pytest.raises(KeyError, match="no array of tables 'triggers'"):
        set_field(data, "triggers[0].end", 1)
    with pytest.raises(KeyError, match="not a field name"):
        set_field(data, "clients.-rate", 1)


@pytest.mark.parametrize(
    ("variant", "words"),
    [
        ('set = { "regions[5].capacity" = 2 }', "regions has 2 entries, no [5]"),
        ('set = { "clients.rate" = -1 }', "clients.rate must be > 0"),
        ('set = { "clients.rat" = 5 }', "did you mean 'rate'"),
        ('set = { "strategies" = ["naive"] }', "not its name, seed or strategies"),
        ("set = {}", "a table of fields to set"),
        ('set = { "clients.rate" = "fast" }', "clients.rate must be a number"),
    ],
)
def test_a_bad_variant_is_refused_naming_it(variant: str, words: str) -> None:
    text = BASE + f'\n[[variants]]\nassumption = "load"\nname = "x"\n{variant}\n'
    with pytest.raises(ScenarioError) as raised:
        scenario(text)
    message = str(raised.value)
    assert "variants[0]" in message
    assert words in message


def test_variant_names_are_unique_within_an_assumption() -> None:
    twice = '\n[[variants]]\nassumption = "a"\nname = "x"\nset = { "clients.rate" = 10 }\n'
    with pytest.raises(ScenarioError, match=r"variants\[1\]\.name must be unique"):
        scenario(BASE + twice + twice)


def test_a_sweep_takes_no_variants() -> None:
    sweep = '\n[sweep]\nparameter = "clients.rate"\nvalues = [10, 20]\n'
    with pytest.raises(ScenarioError, match="variants must be left out of a sweep"):
        scenario(BASE + sweep + VARIANTS)


def test_a_variant_that_changes_nothing_runs_exactly_as_written() -> None:
    # Common random numbers: the same seed, the same arrivals, the same summary.
    read = scenario()
    known = strategies_for(read)
    robustness = run_with_variants(read, [known[n] for n in read.strategies], workers=1)
    assert robustness.variants[1] == [r.summary for r in robustness.base]
    assert robustness.variants[0] != robustness.variants[1]  # a shorter outage differs


def test_ranks_share_a_place_when_values_look_the_same() -> None:
    read = scenario()
    known = strategies_for(read)
    robustness = run_with_variants(read, [known[n] for n in read.strategies], workers=1)
    goodput = [robustness.value(0, s, GOODPUT_RATE) for s in range(3)]
    ranks = robustness.ranks(0)
    order = sorted(range(3), key=lambda s: -(goodput[s] or 0))
    assert ranks[order[0]] == 1
    for a in range(3):
        for b in range(3):
            if f"{100 * goodput[a]:.2f}" == f"{100 * goodput[b]:.2f}":  # type: ignore[operator]
                assert ranks[a] == ranks[b]
            elif goodput[a] > goodput[b]:  # type: ignore[operator]
                assert ranks[a] < ranks[b]


def test_findings_name_the_variants_where_a_conclusion_does_not_hold() -> None:
    read = scenario()
    known = strategies_for(read)
    robustness = run_with_variants(read, [known[n] for n in read.strategies], workers=1)
    lines = findings(robustness)
    goodput = next(line for line in lines if line.startswith("Goodput"))
    # With no replica to speak of, failover has nowhere to go: the as-written winner
    # keeps its place only if it still has the best goodput there.
    slow = robustness.ranks(3)
    winners = [s for s, r in enumerate(robustness.ranks(0)) if r == 1]
    if any(slow[s] == 1 for s in winners):
        assert "none to speak of" not in goodput
    else:
        assert "none to speak of" in goodput
    text = robustness_table(robustness)
    assert "3 variants of 2 assumptions" in text
    assert "outage length: 30 s" in text
    page = robustness_html(robustness)
    assert "regions[1].service_time.mean = 2.0" in page
    document = json.loads(json.dumps(robustness_document(robustness)))
    assert [v["name"] for v in document["variants"]] == [
        "30 s",
        "as written, restated",
        "none to speak of",
    ]
    assert set(document["variants"][0]["strategies"]) == set(read.strategies)


def test_parallel_and_serial_runs_agree() -> None:
    read = scenario()
    known = strategies_for(read)
    chosen = [known[n] for n in read.strategies]
    one = run_with_variants(read, chosen, workers=1)
    two = run_with_variants(read, chosen, workers=2)
    assert one.variants == two.variants
    assert [r.summary for r in one.base] == [r.summary for r in two.base]


def test_builtin_scenarios_with_variants_read(tmp_path: Path) -> None:
    for name in ("us-east-1",):
        read = load_scenario(name)
        for variant in read.variants:
            assert variant.scenario.name == read.name


QUICK = (
    '\n[quick]\nname = "the outage cut to 20 s"\nset = { "triggers[0].end" = 80, duration = 120 }\n'
)


def test_a_quick_version_is_the_scenario_with_its_fields_set_and_no_variants() -> None:
    read = scenario(BASE + VARIANTS + QUICK)
    assert read.quick is not None
    assert read.quick.name == "the outage cut to 20 s"
    quick = read.quick.scenario
    assert (quick.duration, quick.triggers[0].end) == (120, 80)
    assert quick.variants == ()
    assert quick.quick is None
    with pytest.raises(ScenarioError, match=r"quick\.set must be values the scenario takes"):
        scenario(BASE + QUICK.replace("duration = 120", "duration = 70"))


def test_the_cli_runs_the_variants_and_reports_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "variants.toml"
    path.write_text(BASE + VARIANTS + QUICK)
    out = tmp_path / "out"
    assert main(["simulate", str(path), "--out", str(out), "--workers", "1"]) == 0
    printed = capsys.readouterr()
    assert "as written and in 3 variants (12 runs)" in printed.err
    # Without a terminal, a line per run as it finishes: each strategy as written and
    # in each variant, so a long run says how far it is.
    finished = [line for line in printed.err.splitlines() if ": finished after " in line]
    assert len(finished) == 12
    assert finished[-1].endswith("(12 of 12)")
    assert any(line.startswith("aws-2026 (outage length: 30 s): ") for line in finished)
    assert "simulated 12 runs in " in printed.err
    assert "Robustness: 3 variants of 2 assumptions" in printed.out
    document = json.loads((out / "results.json").read_text())
    assert [v["name"] for v in document["robustness"]["variants"]] == [
        "30 s",
        "as written, restated",
        "none to speak of",
    ]
    assert "Robustness: does the conclusion hold?" in (out / "report.html").read_text()

    assert main(["simulate", str(path), "--out", str(out), "--workers", "1", "--no-variants"]) == 0
    printed = capsys.readouterr()
    assert "Robustness" not in printed.out
    assert "robustness" not in json.loads((out / "results.json").read_text())

    assert main(["simulate", str(path), "--out", str(out), "--workers", "1", "--quick"]) == 0
    printed = capsys.readouterr()
    assert "quick run: the outage cut to 20 s" in printed.err
    assert "Robustness" not in printed.out
    assert json.loads((out / "results.json").read_text())["duration_s"] == 120


def test_quick_needs_a_quick_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plain.toml"
    path.write_text(BASE)
    assert main(["simulate", str(path), "--out", str(tmp_path), "--quick"]) == 2
    assert "has no quick version (no [quick] table)" in capsys.readouterr().err


def test_run_labels_follow_the_progress_order() -> None:
    read = scenario()
    assert run_labels(read, ["a", "b"]) == [
        "a",
        "b",
        "a (outage length: 30 s)",
        "b (outage length: 30 s)",
        "a (replica capacity: as written, restated)",
        "b (replica capacity: as written, restated)",
        "a (replica capacity: none to speak of)",
        "b (replica capacity: none to speak of)",
    ]
    shares: list[list[float]] = []
    known = strategies_for(read)
    run_with_variants(read, [known["naive"], known["aws-2026"]], workers=1, progress=shares.append)
    assert [sum(s) for s in shares] == list(range(1, 9))
    assert shares[0] == [1.0] + [0.0] * 7  # naive as written first


def test_ranks_count_the_strategies_shown_better() -> None:
    # Two strategies whose goodput looks the same in a table share a place, and the next
    # one down is third, whatever their unrounded values.
    read = scenario()
    robustness = Robustness(
        read,
        ["a", "b", "c", "d"],
        [],
        [],
    )
    values = [0.5, 0.119501, 0.119499, 0.1]
    robustness.value = lambda variant, strategy, metric: values[strategy]  # type: ignore[method-assign]
    assert robustness.ranks(0) == [1, 2, 2, 4]


def test_an_interrupt_stops_the_variants_workers() -> None:
    read = scenario()
    known = strategies_for(read)

    def stop(_: list[float]) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_with_variants(read, [known[n] for n in read.strategies], workers=2, progress=stop)
    assert multiprocessing.active_children() == []
