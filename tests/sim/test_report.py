"""The report: its charts (Plotly, checked in a real headless browser), the table's
legend, and the per-second series of results.json and series.csv under the
instrumentation's metric names."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stormproof import _metric_names as names
from stormproof.sim import (
    PlottingUnavailable,
    RunResult,
    Scenario,
    _charts,
    html_report,
    load_scenario,
    require_plotting,
    results_document,
    run,
    run_sweep,
    strategies_for,
    sweep_document,
    sweep_html,
    table,
    write_csv,
    write_json,
)

from .test_sweeps import CONTENTION

# Longer than 10 minutes (so charted in 10 s buckets, in minutes), with three triggers:
# two partitions that overlap (each its own band) and a capacity drop, and both regions
# cut off long enough (past the cache's 5 fresh minutes) that stormproof serves stale.
STORM = """\
name = "storm"
title = "Two partitions and a capacity drop"
duration = 720
seed = 5
strategies = ["naive", "aws-standard", "stormproof"]

[clients]
instances = 2
rate = 20
keys = 300
deadline = 2.0
attempt_timeout = 1.0

[[regions]]
name = "a"
hostname = "a.test"
capacity = 8
service_time = { distribution = "lognormal", mean = 0.05 }

[[regions]]
name = "b"
hostname = "b.test"
capacity = 4
service_time = { distribution = "lognormal", mean = 0.05 }

[[triggers]]
kind = "capacity_drop"
region = "a"
factor = 0.25
start = 20
end = 80

[[triggers]]
kind = "partition"
region = "a"
start = 100
end = 650

[[triggers]]
kind = "partition"
region = "b"
start = 150
end = 650
"""

# Constant service, no queueing (a request in service at most rarely), names that stay
# resolved: every answered request takes exactly the service time, 50 ms.
STEADY = """\
name = "steady"
duration = 60
seed = 2
strategies = ["naive"]

[clients]
instances = 1
rate = 5
deadline = 2.0
attempt_timeout = 1.0

[dns]
ttl = 100000

[[regions]]
name = "a"
hostname = "a.test"
capacity = 1000
service_time = { distribution = "constant", mean = 0.05 }
"""


def load(tmp_path: Path, text: str, name: str) -> Scenario:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return load_scenario(str(path))


@pytest.fixture(scope="module")
def storm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scenario, list[RunResult]]:
    scenario = load(tmp_path_factory.mktemp("storm"), STORM, "storm")
    known = strategies_for(scenario)
    return scenario, [run(scenario, known[n]) for n in scenario.strategies]


@pytest.fixture(scope="module")
def page(storm: tuple[Scenario, list[RunResult]]) -> str:
    scenario, results = storm
    return html_report(scenario, strategies_for(scenario), results)


def figures(page: str) -> list[dict[str, Any]]:
    """The Plotly figures of a page, as its scripts hand them to Plotly."""
    found = re.findall(r"var f=(\{.*?\});Plotly\.newPlot", page)
    return [json.loads(text.replace("<\\/", "</")) for text in found]


def captions(page: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<figcaption>(.*?)</figcaption>", page)]


def chart(page: str, title: str) -> tuple[str, dict[str, Any]]:
    for caption, figure in zip(captions(page), figures(page), strict=True):
        if caption.startswith(title):
            return caption, figure
    raise AssertionError(f"no chart titled {title!r} in {captions(page)}")


# -- the charts ------------------------------------------------------------------------------


def test_a_long_run_is_charted_in_minutes_per_10_s(
    storm: tuple[Scenario, list[RunResult]], page: str
) -> None:
    assert page.count('<figure class="chart">') == len(figures(page)) == 10
    caption, figure = chart(page, "User-visible errors")
    assert "mean per 10 s" in caption
    xaxis = figure["layout"]["xaxis"]
    assert xaxis["title"]["text"] == "time into the run (minutes)"
    assert xaxis["range"] == [0, 12]  # 720 s; Plotly picks the ticks
    x = figure["data"][0]["x"]
    assert len(x) == 72
    assert x[:2] == [pytest.approx(5 / 60), pytest.approx(15 / 60)]  # bucket middles
    assert "Each point is a 10-second bucket" in page


def test_a_short_run_is_charted_per_second(tmp_path: Path) -> None:
    scenario = load(tmp_path, STEADY, "steady")
    known = strategies_for(scenario)
    page = html_report(scenario, known, [run(scenario, known["naive"])])
    caption, figure = chart(page, "User-visible errors")
    assert "mean per second" in caption
    assert figure["layout"]["xaxis"]["title"]["text"] == "time into the run (s)"
    assert figure["data"][0]["x"][:2] == [0.5, 1.5]
    assert "Each point is one second." in page
    assert "No triggers." in page


def test_each_trigger_is_its_own_labelled_band(page: str) -> None:
    for _, figure in zip(captions(page), figures(page), strict=True):
        shapes = figure["layout"]["shapes"]
        assert [s["name"] for s in shapes] == [
            "T1 capacity_drop",
            "T2 partition",
            "T3 partition",
        ]
        assert [(s["x0"], s["x1"]) for s in shapes] == [
            pytest.approx((20 / 60, 80 / 60)),
            pytest.approx((100 / 60, 650 / 60)),
            pytest.approx((150 / 60, 650 / 60)),
        ]
        assert len({s["fillcolor"] for s in shapes}) == 3
        assert all(s["showlegend"] for s in shapes)
        assert [a["text"] for a in figure["layout"]["annotations"]] == ["T1", "T2", "T3"]
    assert "<b>T1</b>: capacity_drop (region a, factor 0.25), from 20 s to 1 min 20 s" in page
    assert "<b>T3</b>: partition (region b), from 2 min 30 s to 10 min 50 s" in page


def test_the_load_chart_shows_the_tables_peak_and_capacity_follows_the_drop(
    storm: tuple[Scenario, list[RunResult]], page: str
) -> None:
    scenario, results = storm
    caption, figure = chart(page, "Offered load at a vs its capacity")
    assert "busiest second in each 10 s" in caption
    lines = {trace["name"]: trace["y"] for trace in figure["data"]}
    capacity = scenario.regions[0].capacity_rps
    for result in results:
        peak = max(v for v in lines[result.strategy] if v is not None)
        assert peak / capacity == pytest.approx(result.summary["peak_load_ratios"]["a"])
    # The capacity line: the lowest capacity in force in each bucket.
    assert lines["capacity"][:2] == [capacity, capacity]
    assert set(lines["capacity"][2:8]) == {capacity * 0.25}
    assert set(lines["capacity"][8:]) == {capacity}
    assert figure["data"][-1]["line"]["shape"] == "hvh"


def test_the_run_records_capacity_in_force_per_second(
    storm: tuple[Scenario, list[RunResult]],
) -> None:
    scenario, results = storm
    capacity = results[0].series["capacity:a"][:720]
    base = scenario.regions[0].capacity_rps
    assert capacity[:20] == [base] * 20
    assert capacity[20:80] == [base * 0.25] * 60
    assert capacity[80:] == [base] * 640
    assert results[0].series["capacity:b"][:720] == [scenario.regions[1].capacity_rps] * 720


def test_lines_stay_apart_when_equal(page: str) -> None:
    _, figure = chart(page, "Goodput")
    looks = [(t["line"]["color"], t["line"]["dash"], t["line"]["width"]) for t in figure["data"]]
    assert len({color for color, _, _ in looks}) == 3
    assert len({dash for _, dash, _ in looks}) == 3
    widths = [width for _, _, width in looks]
    assert widths == sorted(widths, reverse=True)  # widest below: equal lines show stripes
    assert figure["layout"]["hovermode"] == "x unified"
    assert figure["layout"]["showlegend"] is True


def test_the_stale_chart_is_there_when_a_strategy_served_stale(
    storm: tuple[Scenario, list[RunResult]], page: str
) -> None:
    _, results = storm
    stale = {r.strategy: r.summary["stale_rate"] for r in results}
    assert stale["stormproof"] > 0.05
    _, figure = chart(page, "Stale share")
    line = next(t["y"] for t in figure["data"] if t["name"] == "stormproof")
    assert max(v for v in line if v is not None) > 0.5
    assert "Left out" not in page


def test_charts_without_data_are_left_out_and_said_so(tmp_path: Path) -> None:
    scenario = load(tmp_path, STEADY, "steady")
    known = strategies_for(scenario)
    page = html_report(scenario, known, [run(scenario, known["naive"])])
    titles = captions(page)
    assert not any(t.startswith("Stale share") for t in titles)
    assert not any(t.startswith("Open breakers") for t in titles)
    assert "Left out: stale answers (no strategy answered from a stale cache entry)" in page
    # The resolver's capacity dwarfs its queries: said, not drawn.
    caption, figure = chart(page, "DNS queries")
    assert "its capacity, 10,000/s, is far above (not drawn)" in caption
    assert [t["name"] for t in figure["data"]] == ["naive"]


def test_latency_quantiles_of_answered_requests(tmp_path: Path) -> None:
    """Every answered request takes the constant service time: each second's p50 and p99
    are 50 ms exactly; seconds without an answered request have none."""
    scenario = load(tmp_path, STEADY, "steady")
    result = run(scenario, strategies_for(scenario)["naive"])
    p50 = result.series["latency_p50"][:60]
    p99 = result.series["latency_p99"][:60]
    answered = result.series["successes"][:60]
    assert sum(answered) > 200
    for second in range(1, 60):
        if answered[second]:
            assert p50[second] == pytest.approx(0.05)
            assert p99[second] == pytest.approx(0.05)
        else:
            assert math.isnan(p50[second])
    page = html_report(scenario, strategies_for(scenario), [result])
    caption, figure = chart(page, "Latency p99 of answered requests")
    assert "errors left out" in caption
    assert figure["layout"]["yaxis"]["type"] == "log"


def test_bucketed_latency_is_the_quantile_of_the_bucket(
    storm: tuple[Scenario, list[RunResult]],
) -> None:
    """A 10 s bucket's p99 is that of its requests, not a mean of per-second p99s: it
    lies between the smallest and the largest per-second p99 of the bucket."""
    _, results = storm
    series = results[0].series
    per_second, bucketed = series["latency_p99"], series["latency_p99/10s"]
    assert len(bucketed) == math.ceil(len(per_second) / 10)
    for bucket in range(10):  # before the partitions
        seconds = [v for v in per_second[bucket * 10 : bucket * 10 + 10] if not math.isnan(v)]
        assert min(seconds) <= bucketed[bucket] <= max(seconds)


# -- the table ---------------------------------------------------------------------------------


def test_the_html_table_has_p50_visible_swatches_and_a_legend(page: str) -> None:
    head = re.search(r"<table><tr>(.*?)</tr>", page)
    assert head is not None
    headings = re.findall(r"<th[^>]*>(.*?)</th>", head.group(1))
    assert headings[6:9] == ["peak load", "p50", "p99"]
    rows = re.findall(r"<tr><td>(<svg class=\"swatch\".*?</svg>)naive</td>", page)
    assert rows
    assert 'stroke="#d62728"' in rows[0]
    assert 'stroke-width="3"' in rows[0]
    legend = re.search(r'<dl class="legend">(.*?)</dl>', page)
    assert legend is not None
    defined = re.findall(r"<dt>(.*?)</dt>", legend.group(1))
    assert defined == headings[1:]
    assert "<dt>p50</dt><dd>the median time to an answer or an error" in page


def test_the_text_table_has_p50_and_a_legend(storm: tuple[Scenario, list[RunResult]]) -> None:
    scenario, results = storm
    text = table(scenario, results)
    header = text.splitlines()[0].split()
    assert header[header.index("p50") + 1] == "p99"
    legend = text.split("Columns:\n", 1)[1]
    assert "  peak load: the highest offered load at a dependency" in legend
    assert "  recovery: from the end of the trigger until goodput" in legend
    assert max(len(line) for line in legend.splitlines()) <= 88


# -- results.json and series.csv ---------------------------------------------------------------


def test_results_hold_every_charted_series_per_second(
    tmp_path: Path, storm: tuple[Scenario, list[RunResult]]
) -> None:
    scenario, results = storm
    document = results_document(scenario, strategies_for(scenario), results)
    path = tmp_path / "results.json"
    write_json(document, str(path))
    text = path.read_text()
    loaded = json.loads(text)
    series = loaded["series"]
    assert (series["step_s"], series["seconds"]) == (1, 720)
    entries = series["strategies"]["stormproof"]
    keyed = {(e["name"], json.dumps(e["attributes"], sort_keys=True)): e for e in entries}

    def values(name: str, unit: str, **attributes: str) -> list[Any]:
        entry = keyed[(name, json.dumps(attributes, sort_keys=True))]
        assert entry["unit"] == unit
        assert len(entry["values"]) == 720
        return list(entry["values"])

    stormproof = results[2].series
    assert values(names.CALLS, "1/s") == stormproof["requests"][:720]
    assert values(names.CALLS, "1/s", outcome="success") == stormproof["successes"][:720]
    assert values(names.CALLS, "1/s", outcome="failure") == stormproof["errors"][:720]
    assert values(names.CACHE_LOOKUPS, "1/s", result="stale") == stormproof["stale"][:720]
    assert values(names.ATTEMPTS, "1/s") == stormproof["attempts"][:720]
    assert values(names.ATTEMPTS, "1/s", region="b") == stormproof["attempts:b"][:720]
    assert values(names.BREAKER_STATE, "1", state="open")[200] == pytest.approx(
        stormproof["breaker_open"][200]
    )
    assert values("stormproof.sim.goodput", "1/s") == stormproof["goodput"][:720]
    offered = values("stormproof.sim.dependency.offered", "1/s", dependency="a")
    assert offered == stormproof["offered:a"][:720]
    assert values("stormproof.sim.dependency.offered", "1/s", dependency="dns")
    capacity = values("stormproof.sim.dependency.capacity", "1/s", dependency="a")
    assert capacity[30] == pytest.approx(scenario.regions[0].capacity_rps * 0.25)
    assert values("stormproof.sim.dependency.capacity", "1/s", dependency="dns")[0] == 10_000
    p99 = values(names.CALL_DURATION, "s", outcome="success", quantile="0.99")
    assert p99[5] == pytest.approx(stormproof["latency_p99"][5], rel=1e-5)
    naive = next(
        e["values"]
        for e in series["strategies"]["naive"]
        if e["name"] == names.CALL_DURATION and e["attributes"]["quantile"] == "0.99"
    )
    assert naive[300] is None  # both regions cut off: nothing answered that second
    assert not any("/" in e["name"] or "10s" in str(e["attributes"]) for e in entries)
    # Each series' values on one line: the file stays readable and small.
    assert max(len(line) for line in text.splitlines()) > 720
    assert [t["kind"] for t in loaded["triggers"]] == ["capacity_drop", "partition", "partition"]

    csv_path = tmp_path / "series.csv"
    write_csv(document, str(csv_path))
    with csv_path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    assert header[0] == "time_s"
    assert len(rows) == 721
    assert [row[0] for row in rows[1:3]] == ["0", "1"]
    column = header.index("stormproof/stormproof.attempts{region=b}")
    assert [float(row[column]) for row in rows[1:]] == stormproof["attempts:b"][:720]
    latency = header.index("naive/stormproof.call.duration{outcome=success,quantile=0.5}")
    assert "" in [row[latency] for row in rows[1:]]
    assert len(header) == 1 + sum(len(e) for e in series["strategies"].values())


def test_sweep_and_contention_documents_as_csv(tmp_path: Path) -> None:
    scenario = load(tmp_path, CONTENTION, "contention")
    known = strategies_for(scenario)
    results = run_sweep(scenario, [known[n] for n in scenario.strategies], workers=1)
    document = sweep_document(scenario, known, results)
    write_csv(document, str(tmp_path / "sweep.csv"))
    with (tmp_path / "sweep.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:4] == ["strategy", "occ.clients", "requests", "attempts"]
    assert len(rows) == 1 + 3 * 2
    assert rows[1][:2] == ["retry-at-once", "2"]
    single = run(scenario, known["give-up"])
    plain = results_document(scenario, known, [single])
    assert "series" not in plain  # a contention run has no time series
    write_csv(plain, str(tmp_path / "occ.csv"))
    with (tmp_path / "occ.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "strategy"
    assert "calls" in rows[0]
    assert rows[1][0] == "give-up"


# -- without Plotly ----------------------------------------------------------------------------


def test_a_report_without_plotly_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, storm: tuple[Scenario, list[RunResult]]
) -> None:
    scenario, results = storm
    _charts._plotly_js.cache_clear()
    monkeypatch.setitem(sys.modules, "plotly.offline", None)
    try:
        with pytest.raises(PlottingUnavailable, match=r"pip install 'stormproof\[cli\]'"):
            require_plotting()
        with pytest.raises(PlottingUnavailable, match="--no-plots"):
            html_report(scenario, strategies_for(scenario), results)
    finally:
        _charts._plotly_js.cache_clear()


# -- in a browser ------------------------------------------------------------------------------

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


needs_browser = pytest.mark.skipif(
    browser() is None,
    reason=f"no headless browser on PATH (looked for {', '.join(BROWSERS)})",
)


def rendered(path: Path, width: int) -> str:
    """The page's DOM after its scripts ran, in headless Chromium ``width`` px wide."""
    found = browser()
    assert found is not None
    done = subprocess.run(
        [
            found,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--allow-file-access-from-files",  # a page may read a framed page's DOM
            f"--window-size={width},2000",
            "--virtual-time-budget=30000",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stdout


def drawn(dom: str) -> dict[str, tuple[int, int]]:
    """Per chart that Plotly drew: its width (px) and how many lines or bars it drew."""
    out: dict[str, tuple[int, int]] = {}
    for part in dom.split('<figure class="chart">')[1:]:
        opening = re.search(r'<div class="([^"]*)" id="(chart-[0-9a-f]+)"', part)
        assert opening is not None
        if "js-plotly-plot" not in opening.group(1):
            continue
        svg = re.search(r'<svg class="main-svg"[^>]* width="(\d+)"', part)
        assert svg is not None
        marks = len(re.findall(r'class="js-line"[^>]* d="M', part))
        marks += len(re.findall(r'<g class="point"><path', part))
        out[opening.group(2)] = (int(svg.group(1)), marks)
    return out


def assert_every_chart_drawn(path: Path, width: int) -> dict[str, tuple[int, int]]:
    page = path.read_text()
    expected = re.findall(r'id="(chart-[0-9a-f]+)"', page)
    assert expected
    charts = drawn(rendered(path, width))
    assert sorted(charts) == sorted(expected), "some charts were not drawn"
    for ident, (chart_width, marks) in charts.items():
        assert marks > 0, f"{ident} drew nothing"
        assert chart_width <= width, f"{ident} is wider than the window"
    return charts


@needs_browser
def test_every_chart_renders_in_a_browser(tmp_path: Path, page: str) -> None:
    path = tmp_path / "report.html"
    path.write_text(page)
    wide = assert_every_chart_drawn(path, 1280)
    narrow = assert_every_chart_drawn(path, 600)
    assert len(wide) == 10
    for ident in wide:  # charts follow the window's width
        assert narrow[ident][0] < wide[ident][0]


# Headless Chromium's window is at least 500 px wide: a phone's width is checked by
# framing the report 375 px wide and reading the frame's layout from the outer page.
PHONE = """<!doctype html><html><body>
<iframe id="f" src="report.html" style="width:375px;height:2000px;border:0"></iframe>
<pre id="out">not loaded</pre>
<script>
document.getElementById("f").addEventListener("load", function () {
  var d = this.contentDocument;
  var out = {page: d.documentElement.scrollWidth, window: d.documentElement.clientWidth,
             plots: []};
  d.querySelectorAll(".js-plotly-plot").forEach(function (p) {
    out.plots.push(Number(p.querySelector("svg.main-svg").getAttribute("width")));
  });
  document.getElementById("out").textContent = JSON.stringify(out);
});
</script></body></html>
"""


@needs_browser
def test_the_report_fits_a_phone(tmp_path: Path, page: str) -> None:
    (tmp_path / "report.html").write_text(page)
    phone = tmp_path / "phone.html"
    phone.write_text(PHONE)
    found = re.search(r'<pre id="out">([^<]*)</pre>', rendered(phone, 800))
    assert found is not None
    layout = json.loads(found.group(1))
    assert layout["window"] <= 375
    assert layout["page"] <= layout["window"]  # nothing sticks out sideways
    assert len(layout["plots"]) == 10
    assert all(200 < width <= layout["window"] for width in layout["plots"])


@needs_browser
def test_sweep_and_contention_reports_render_in_a_browser(tmp_path: Path) -> None:
    scenario = load(tmp_path, CONTENTION, "contention")
    known = strategies_for(scenario)
    results = run_sweep(scenario, [known[n] for n in scenario.strategies], workers=1)
    sweep = tmp_path / "sweep.html"
    sweep.write_text(sweep_html(scenario, known, results))
    assert len(assert_every_chart_drawn(sweep, 1000)) == 2
    contention = tmp_path / "contention.html"
    runs = [run(scenario, known[n]) for n in scenario.strategies]
    contention.write_text(html_report(scenario, known, runs))
    assert len(assert_every_chart_drawn(contention, 1000)) == 2


@needs_browser
def test_the_rehearsal_report_renders_in_a_browser(tmp_path: Path) -> None:
    """The rehearsal's page, drawn with the same charts: here from Lab runs standing in
    for the measured ones (the page is what is checked, not a measurement)."""
    from stormproof.rehearse import Measured, Rehearsal, RehearsalOptions, lab_scenario
    from stormproof.rehearse import html_report as rehearsal_report

    options = RehearsalOptions(seconds=20, threads=4, strategies=("aws-legacy", "stormproof"))
    scenario = lab_scenario(options, service_time=0.004)
    known = strategies_for(scenario)
    predicted = {name: run(scenario, known[name]) for name in options.strategies}
    measured = [
        Measured(name, dict(result.summary), result.series, 20.0)
        for name, result in predicted.items()
    ]
    rehearsal = Rehearsal(options, measured, predicted, scenario, 0.004, 40.0)
    path = tmp_path / "rehearsal.html"
    path.write_text(rehearsal_report(rehearsal))
    charts = assert_every_chart_drawn(path, 1000)
    assert len(charts) == 6
    assert "Measured vs the Outage Lab" in path.read_text()
